-- Stand-in for telescope's pickers: a results and a prompt window (filetype TelescopePrompt, in
-- insert mode) like telescope's, an entry manager (false until the finder first runs) filled from
-- the event loop, the finder run again on each prompt change, and <C-c> (insert) or <Esc> (normal)
-- closing both windows together, as telescope does.
local state = require('telescope.actions.state')

local pickers = {}
local Picker = {}
Picker.__index = Picker

function pickers.new(opts, spec)
  return setmetatable({ opts = opts or {}, spec = spec, finder = spec.finder, manager = false }, Picker)
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

function Picker:_refresh()
  local prompt = vim.api.nvim_buf_get_lines(self.prompt_bufnr, 0, 1, false)[1] or ''
  local found = self.finder.results or self.finder.fn(prompt)
  local entries = {}
  for _, entry in ipairs(found) do
    table.insert(entries, entry)
  end
  self.manager = manager(entries)
  local lines = {}
  for _, entry in ipairs(entries) do
    table.insert(lines, '  ' .. tostring(entry.display))
  end
  vim.api.nvim_buf_set_lines(self.results_bufnr, 0, -1, false, lines)
end

function Picker:find()
  self.results_bufnr = vim.api.nvim_create_buf(false, true)
  self.windows = {
    vim.api.nvim_open_win(self.results_bufnr, false, { relative = 'editor', row = 1, col = 1, width = 60, height = 10 }),
  }
  local prompt = vim.api.nvim_create_buf(false, true)
  self.prompt_bufnr = prompt
  vim.api.nvim_buf_set_option(prompt, 'filetype', 'TelescopePrompt')
  table.insert(self.windows, vim.api.nvim_open_win(prompt, true, { relative = 'editor', row = 12, col = 1, width = 60, height = 1 }))
  state._pickers[prompt] = self
  local close = function() require('telescope.actions').close(prompt) end
  vim.keymap.set('i', '<C-c>', close, { buffer = prompt })
  vim.keymap.set('n', '<Esc>', close, { buffer = prompt })
  if self.spec.attach_mappings then
    self.spec.attach_mappings(prompt, function() end)
  end
  vim.api.nvim_buf_attach(prompt, false, {
    on_lines = function()
      vim.schedule(function()
        if state._pickers[prompt] then
          self:_refresh()
        end
      end)
    end,
  })
  vim.schedule(function() self:_refresh() end)
  vim.cmd('startinsert')
end

return pickers
