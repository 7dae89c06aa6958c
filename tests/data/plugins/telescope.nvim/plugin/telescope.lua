-- Stand-in for telescope's :Telescope command: a builtin picker, else an extension's picker of the
-- same name, looked up when the command runs.
vim.api.nvim_create_user_command('Telescope', function(args)
  local name = args.fargs[1]
  local builtin = require('telescope.builtin')
  if builtin[name] then
    return builtin[name]()
  end
  local extensions = require('telescope').extensions
  assert(extensions[name], "'" .. tostring(name) .. "' is not a telescope picker")
  extensions[name][name]()
end, { nargs = 1 })
