-- Stand-in for telescope's builtin pickers: the files under the working directory, rg's matches
-- for the prompt (a required dependency, as telescope says), the listed buffers.
local pickers = require('telescope.pickers')
local finders = require('telescope.finders')

local builtin = {}

function builtin.find_files()
  local files = vim.fn.systemlist({ 'rg', '--files' })
  pickers.new({}, { prompt_title = 'Find Files', finder = finders.new_table({ results = files }) }):find()
end

function builtin.live_grep()
  if vim.fn.executable('rg') == 0 then
    vim.notify("'ripgrep', or similar alternative, is a required dependency for the live_grep picker.",
      vim.log.levels.ERROR)
    return
  end
  local grep = function(prompt)
    if prompt == '' then
      return {}
    end
    return vim.fn.systemlist({ 'rg', '--vimgrep', '--fixed-strings', '--', prompt })
  end
  pickers.new({}, { prompt_title = 'Live Grep', finder = finders.new_dynamic(grep) }):find()
end

function builtin.buffers()
  local listed = {}
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.bo[buf].buflisted then
      table.insert(listed, buf .. ' : ' .. vim.api.nvim_buf_get_name(buf))
    end
  end
  pickers.new({}, { prompt_title = 'Buffers', finder = finders.new_table({ results = listed }) }):find()
end

return builtin
