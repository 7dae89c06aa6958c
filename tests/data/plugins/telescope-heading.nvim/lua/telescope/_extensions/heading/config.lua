-- Stand-in for telescope-heading's settings: `treesitter` is off unless setup turns it on.
local config = { treesitter = false }

function config.setup(opts)
  config.picker_opts = opts.picker_opts or {}
  config.treesitter = opts.treesitter == true
end

return config
