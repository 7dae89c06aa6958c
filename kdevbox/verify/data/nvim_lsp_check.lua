-- kdevbox.verify: opening a C file starts clangd through neovim's LSP client and it initializes.
local harness = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_harness.lua')
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

harness.run(function()
  harness.wait(ready, 'clangd did not attach to ' .. vim.api.nvim_buf_get_name(0))
end)
