-- Stand-in for telescope's pickers: a results window and a prompt buffer (filetype
-- TelescopePrompt) like telescope's, and an entry manager filled from the event loop.
local state = require('telescope.actions.state')

local pickers = {}
local Picker = {}
Picker.__index = Picker

function pickers.new(opts, spec)
  return setmetatable({ opts = opts or {}, spec = spec }, Picker)
end

local function manager(entries)
  return {
    num_results = function() return #entries end,
    iter = function()
      local index = 0
      return function()
        index = index + 1
        return entries[index]
      end
    end,
  }
end

function Picker:find()
  local entries = {}
  self.manager = manager(entries)
  local results = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_open_win(results, false, { relative = 'editor', row = 1, col = 1, width = 60, height = 10 })
  local prompt = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_option(prompt, 'filetype', 'TelescopePrompt')
  vim.api.nvim_open_win(prompt, true, { relative = 'editor', row = 12, col = 1, width = 60, height = 1 })
  state._pickers[prompt] = self
  if self.spec.attach_mappings then
    self.spec.attach_mappings(prompt, function() end)
  end
  vim.schedule(function()
    for _, entry in ipairs(self.spec.finder.results) do
      table.insert(entries, entry)
    end
    local lines = {}
    for _, entry in ipairs(entries) do
      table.insert(lines, '  ' .. entry.display)
    end
    vim.api.nvim_buf_set_lines(results, 0, -1, false, lines)
  end)
end

return pickers
