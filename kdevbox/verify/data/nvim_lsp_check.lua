-- kdevbox.verify: opening a C file starts clangd through neovim's LSP client and it initializes.
local get_clients = vim.lsp.get_clients or vim.lsp.get_active_clients
local function ready()
  for _, client in ipairs(get_clients()) do
    local caps = client.server_capabilities or client.resolved_capabilities
    if client.name:find('clangd') and caps and next(caps) ~= nil then
      return true
    end
  end
  return false
end
if not vim.wait(30000, ready, 100) then
  io.stderr:write('clangd did not attach to ' .. vim.api.nvim_buf_get_name(0) .. '\n')
  vim.cmd('cquit 1')
end
vim.cmd('qall!')
