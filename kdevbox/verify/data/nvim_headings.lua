-- kdevbox.verify: <leader>fh pressed in the file neovim shows opens the heading picker; the entries
-- it lists are printed as JSON [[line, heading], ...] after `kdevbox-headings `, then nvim quits.
-- A warning or an error on the way (no rst parser, say) fails the check.
local harness = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_harness.lua')
local problems = harness.problems

harness.run(function()
  local keys = vim.api.nvim_replace_termcodes('<leader>fh', true, false, true)
  vim.api.nvim_feedkeys(keys, 'mx', false)
  local prompt = vim.api.nvim_get_current_buf()
  vim.wait(5000, function()
    prompt = vim.api.nvim_get_current_buf()
    return vim.bo[prompt].filetype == 'TelescopePrompt'
  end)
  assert(#problems == 0, '<leader>fh: ' .. table.concat(problems, '; '))
  assert(vim.bo[prompt].filetype == 'TelescopePrompt', '<leader>fh opened no picker: ' .. vim.v.errmsg)
  local picker = require('telescope.actions.state').get_current_picker(prompt)
  -- The finder fills the picker from the event loop: wait until its count stops changing.
  local count = -1
  vim.wait(10000, function()
    local now = picker.manager and picker.manager:num_results() or -1
    local settled = now > 0 and now == count
    count = now
    return settled
  end, 200)
  assert(count > 0, 'the heading picker lists nothing')
  local listed = {}
  for entry in picker.manager:iter() do
    local text = type(entry.display) == 'string' and entry.display or entry.ordinal
    table.insert(listed, { entry.lnum, text })
  end
  assert(#problems == 0, '<leader>fh: ' .. table.concat(problems, '; '))
  io.stdout:write('kdevbox-headings ' .. vim.fn.json_encode(listed) .. '\n')
end)
