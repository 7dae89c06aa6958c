-- Stand-in for telescope: setup keeps each extension's settings, load_extension hands them to the
-- extension's setup, as telescope does.
local telescope = { extensions = {}, _config = {} }

function telescope.setup(opts)
  telescope._config = (opts or {}).extensions or {}
end

function telescope.register_extension(ext)
  return ext
end

function telescope.load_extension(name)
  require('plenary')
  local ext = require('telescope._extensions.' .. name)
  if ext.setup then
    ext.setup(telescope._config[name] or {}, {})
  end
  telescope.extensions[name] = ext.exports
  return ext.exports
end

return telescope
