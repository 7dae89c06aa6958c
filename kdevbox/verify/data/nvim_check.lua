-- kdevbox.verify: the config loaded, telescope and its heading extension work, every picker is
-- mapped, and each builtin one opens as a person opens it (its mapping pressed) without an error,
-- then closes. The heading picker is pressed in an rst file by nvim_headings.lua.
-- `:checkhealth telescope` reports no ERROR (ripgrep and fd present).
local harness = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_harness.lua')
local problems = harness.problems

local function close_floats()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(win).relative ~= '' then
      pcall(vim.api.nvim_win_close, win, true)
    end
  end
  vim.cmd('stopinsert')
end

harness.run(function()
  local telescope = require('telescope')
  require('telescope.builtin')
  assert(telescope.extensions.heading, 'the heading extension is not loaded')
  for _, lhs in ipairs({ '<leader>ff', '<leader>fg', '<leader>fb', '<leader>fh' }) do
    assert(vim.fn.maparg(lhs, 'n') ~= '', 'no normal-mode mapping for ' .. lhs)
  end
  for _, lhs in ipairs({ '<leader>ff', '<leader>fg', '<leader>fb' }) do
    local keys = vim.api.nvim_replace_termcodes(lhs, true, false, true)
    local pressed, why = pcall(vim.api.nvim_feedkeys, keys, 'mx', false)
    assert(pressed, lhs .. ': ' .. tostring(why))
    vim.wait(300)
    close_floats()
    assert(vim.v.errmsg == '', lhs .. ': ' .. vim.v.errmsg)
    assert(#problems == 0, lhs .. ': ' .. table.concat(problems, '; '))
  end
  vim.cmd('silent checkhealth telescope')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  assert(not report:find('ERROR'), ':checkhealth telescope reports an error:\n' .. report)
  assert(report:find('telescope'), ':checkhealth telescope found no health check:\n' .. report)
end)
