-- Stand-in for telescope's actions: closing a picker.
return {
  close = function(prompt_bufnr)
    require('telescope.actions.state')._pickers[prompt_bufnr] = nil
    for _, win in ipairs(vim.api.nvim_list_wins()) do
      if vim.api.nvim_win_get_config(win).relative ~= '' then
        vim.api.nvim_win_close(win, true)
      end
    end
  end,
}
