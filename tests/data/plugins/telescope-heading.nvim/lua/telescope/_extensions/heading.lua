-- Stand-in for telescope-heading at its pinned commit: a picker of the current buffer's headings,
-- read by tree-sitter when the `treesitter` setting is on and neovim has the file type's parser
-- loaded, else by the plain parser; other file types get a warning and no picker.
local telescope = require('telescope')
local config = require('telescope._extensions.heading.config')

local function headings()
  local ft = vim.bo.filetype
  local ok, format = pcall(require, 'telescope._extensions.heading.format.' .. ft)
  if not ok then
    vim.notify('The file type is not supported by telescope-heading', vim.log.levels.WARN)
    return nil
  end
  local path = vim.api.nvim_buf_get_name(0)
  if config.treesitter then
    if vim._ts_has_language(ft) then
      return format.ts_get_headings(path, vim.api.nvim_get_current_buf())
    end
    vim.notify('No treesitter language parser installed for [' .. ft .. ']. Fallback to normal parser.',
      vim.log.levels.WARN)
  end
  return format.get_headings(path, 1, vim.fn.line('$'))
end

local function pick(opts)
  local found = headings()
  if found == nil then
    return
  end
  require('telescope.pickers').new(opts or {}, {
    prompt_title = 'Select a heading',
    finder = require('telescope.finders').new_table({
      results = found,
      entry_maker = function(entry)
        return { value = entry.line, display = entry.heading, ordinal = entry.heading, filename = entry.path, lnum = entry.line }
      end,
    }),
    previewer = require('telescope.config').values.qflist_previewer(opts or {}),
    sorter = require('telescope.config').values.file_sorter(opts or {}),
  }):find()
end

return telescope.register_extension({ setup = config.setup, exports = { heading = pick } })
