-- kdevbox.verify: the heading picker opened in the file neovim shows, as a person opens it: the keys
-- in expect.json's `open` pressed (<leader>fh, or `:Telescope heading<CR>` typed). Its result is
-- the entries listed, [[line, heading], ...], once all the headings it found are; <C-c> then
-- closes it. A warning or an error on the way (no rst parser, say) fails the check.
local harness = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_harness.lua')

harness.run(function()
  local open = harness.expect.open
  local window = vim.api.nvim_get_current_win()
  harness.press(open)
  harness.wait(function()
    return vim.bo.filetype == 'TelescopePrompt' or #harness.problems > 0
  end, open .. ' opened no picker')
  assert(#harness.problems == 0, open .. ': ' .. table.concat(harness.problems, '; '))
  local picker = require('telescope.actions.state').get_current_picker(vim.api.nvim_get_current_buf())
  -- The finder (a table of every heading) fills the picker from the event loop: wait for all of it.
  harness.wait(function()
    return picker.manager and picker.manager:num_results() == #picker.finder.results
  end, open .. ' did not list the headings it found')
  assert(#picker.finder.results > 0, open .. ' lists nothing')
  local listed = {}
  for entry in picker.manager:iter() do
    local text = type(entry.display) == 'string' and entry.display or entry.ordinal
    table.insert(listed, { entry.lnum, text })
  end
  harness.press(vim.api.nvim_get_mode().mode == 'i' and '<C-c>' or '<Esc>')
  harness.wait(function()
    return vim.api.nvim_get_current_win() == window and #harness.floats() == 0
  end, open .. ': the picker did not close')
  return listed
end)
