-- kdevbox.verify: what every neovim check script does. harness.run(check) runs the check as a
-- coroutine, so it can press keys that neovim reads as typed (harness.press) and wait on neovim's
-- own event loop for what they do (harness.wait): a picker opening, its finder listing, its windows
-- closing. Warnings and errors neovim reports on the way are problems, and so is anything it said
-- while starting. The verdict is one line in the file `verdict` beside the scripts, written before
-- neovim quits: what the connection prints (ssh's warnings on stderr) cannot pass or fail a check.
-- harness.expect holds `expect.json` beside the scripts, when the caller wrote one.
local uv = vim.uv or vim.loop
local here = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h')
local BOUND_MS = 60000 -- what a check waits for and has not seen by then fails it
local harness = { problems = {}, expect = {} }

if vim.fn.filereadable(here .. '/expect.json') == 1 then
  harness.expect = vim.fn.json_decode(table.concat(vim.fn.readfile(here .. '/expect.json'), '\n'))
end
local started_raw = vim.fn.execute('messages')
local started = vim.trim(started_raw)
if started ~= '' then
  table.insert(harness.problems, 'neovim said while starting: ' .. started)
end

local notify = vim.notify
vim.notify = function(msg, level, opts)
  if level == vim.log.levels.ERROR or level == vim.log.levels.WARN then
    table.insert(harness.problems, tostring(msg))
  end
  return notify(msg, level, opts)
end

local step -- resumes the running check

--- keys as a person presses them (key names as in a mapping's lhs, or text), mappings applied.
function harness.press(keys)
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), 'mt', false)
end

--- Let neovim run (read the keys pressed, run jobs and timers) until done() holds; fails with what
--- when it does not within BOUND_MS.
function harness.wait(done, what)
  local deadline = uv.now() + BOUND_MS
  local function poll()
    local ok, met = pcall(done)
    if not ok or met or uv.now() > deadline then
      step()
    else
      vim.defer_fn(poll, 20)
    end
  end
  vim.defer_fn(poll, 0)
  coroutine.yield()
  assert(done(), what .. ' (waited ' .. BOUND_MS / 1000 .. ' s)')
end

--- The floating windows open now (a picker's prompt, results and preview), each still valid.
function harness.floats()
  local open = {}
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_is_valid(win) and vim.api.nvim_win_get_config(win).relative ~= '' then
      table.insert(open, win)
    end
  end
  return open
end

local function finish(ok, err, result)
  if ok and #harness.problems > 0 then
    ok, err = false, table.concat(harness.problems, '; ')
  end
  -- What neovim showed during the check (an error in a mapping, say). Not v:errmsg: runtime files
  -- set it under :silent! (0.11's rst syntax does) where a person sees nothing.
  local said = vim.trim(vim.fn.execute('messages'):sub(#started_raw + 1))
  if ok and said ~= '' then
    ok, err = false, 'neovim said: ' .. said
  end
  local verdict = { ok = ok, error = ok and '' or tostring(err), result = result }
  vim.fn.writefile({ 'kdevbox-verdict ' .. vim.fn.json_encode(verdict) }, here .. '/verdict')
  vim.cmd(ok and 'qall!' or 'cquit 1')
end

--- Run check (a function; what it returns is the verdict's result), write the verdict, quit.
function harness.run(check)
  local co = coroutine.create(check)
  step = function()
    local ok, result = coroutine.resume(co)
    if not ok then
      finish(false, result)
    elseif coroutine.status(co) == 'dead' then
      finish(true, nil, result)
    end
  end
  step()
end

return harness
