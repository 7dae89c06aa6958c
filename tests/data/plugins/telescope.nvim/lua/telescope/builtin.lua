local builtin = {}
for _, name in ipairs({ 'find_files', 'live_grep', 'buffers' }) do
  builtin[name] = function()
    if name == 'live_grep' and vim.fn.executable('rg') == 0 then
      vim.notify("'ripgrep', or similar alternative, is a required dependency for the live_grep picker.",
        vim.log.levels.ERROR)
      return
    end
    local buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_open_win(buf, true, { relative = 'editor', row = 1, col = 1, width = 20, height = 5 })
  end
end
return builtin
