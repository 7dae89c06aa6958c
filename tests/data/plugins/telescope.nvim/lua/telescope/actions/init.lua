-- Stand-in for telescope's actions: closing a picker closes its windows together (their ids are
-- gone after) and goes back to normal mode.
return {
  close = function(prompt_bufnr)
    local state = require('telescope.actions.state')
    local picker = state._pickers[prompt_bufnr]
    state._pickers[prompt_bufnr] = nil
    for _, win in ipairs(picker and picker.windows or {}) do
      if vim.api.nvim_win_is_valid(win) then
        vim.api.nvim_win_close(win, true)
      end
    end
    vim.cmd('stopinsert')
  end,
}
