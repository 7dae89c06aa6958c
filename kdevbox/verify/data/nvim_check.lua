-- kdevbox.verify: the config loaded, telescope and its heading extension work, keymaps exist.
local ok, err = pcall(function()
  local telescope = require('telescope')
  require('telescope.builtin')
  assert(telescope.extensions.heading, 'the heading extension is not loaded')
  for _, lhs in ipairs({ '<leader>ff', '<leader>fg', '<leader>fb', '<leader>fh' }) do
    assert(vim.fn.maparg(lhs, 'n') ~= '', 'no normal-mode mapping for ' .. lhs)
  end
end)
if not ok then
  io.stderr:write(tostring(err) .. '\n')
  vim.cmd('cquit 1')
end
vim.cmd('qall!')
