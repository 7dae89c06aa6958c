-- kdevbox.verify: what every neovim check script does: collect the warnings and errors neovim
-- notifies (harness.problems), run the check (harness.run), and quit: status 1 and the reason on
-- stderr when it fails. Loaded by the scripts beside it with dofile.
local harness = { problems = {} }
local notify = vim.notify
vim.notify = function(msg, level, opts)
  if level == vim.log.levels.ERROR or level == vim.log.levels.WARN then
    table.insert(harness.problems, tostring(msg))
  end
  return notify(msg, level, opts)
end

function harness.run(check)
  local ok, err = pcall(check)
  if not ok then
    io.stderr:write(tostring(err) .. '\n')
    vim.cmd('cquit 1')
  end
  vim.cmd('qall!')
end

return harness
