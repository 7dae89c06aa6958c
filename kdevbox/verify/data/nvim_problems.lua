-- kdevbox.verify: every warning and error neovim notifies from now on, for a check to assert none.
-- Loaded by the check scripts beside it: `local problems = dofile(dir .. '/nvim_problems.lua')`.
local problems = {}
local notify = vim.notify
vim.notify = function(msg, level, opts)
  if level == vim.log.levels.ERROR or level == vim.log.levels.WARN then
    table.insert(problems, tostring(msg))
  end
  return notify(msg, level, opts)
end
return problems
