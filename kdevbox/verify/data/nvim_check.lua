-- kdevbox.verify: the config loaded with the leader the settings name, telescope and its heading
-- extension load, every picker is mapped, and each builtin one works as a person uses it in the
-- project neovim was started in: its mapping pressed, a query typed where it needs one, the entry
-- it must list listed, <C-c> closes it and every window it opened (real telescope closes its
-- prompt, results and preview windows together). The heading picker is pressed in an rst file by
-- nvim_headings.lua. `:checkhealth telescope` reports no ERROR (ripgrep and fd present).
local harness = dofile(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':h') .. '/nvim_harness.lua')

-- In sample_project: lhs pressed, query typed, an entry that must be listed.
local PICKERS = {
  { lhs = '<leader>ff', lists = 'lib/util.c' },
  { lhs = '<leader>fg', query = 'return 42', lists = 'lib/util.c' },
  { lhs = '<leader>fb', lists = 'main.c' },
}

local function lists(picker, wanted)
  for entry in picker.manager:iter() do
    for _, key in ipairs({ 'filename', 'ordinal', 'value' }) do
      local field = entry[key]
      if type(field) == 'string' and field:find(wanted, 1, true) then
        return true
      end
    end
  end
  return false
end

harness.run(function()
  local leader = harness.expect.leader
  assert(vim.g.mapleader == leader, 'mapleader is ' .. vim.inspect(vim.g.mapleader) .. ', not ' .. vim.inspect(leader))
  local telescope = require('telescope')
  local state = require('telescope.actions.state')
  assert(telescope.extensions.heading, 'the heading extension is not loaded')
  for _, lhs in ipairs({ '<leader>ff', '<leader>fg', '<leader>fb', '<leader>fh' }) do
    assert(vim.fn.maparg(lhs, 'n') ~= '', 'no normal-mode mapping for ' .. lhs)
  end
  for _, case in ipairs(PICKERS) do
    local window = vim.api.nvim_get_current_win()
    harness.press(case.lhs)
    harness.wait(function()
      return vim.bo.filetype == 'TelescopePrompt' and vim.api.nvim_get_mode().mode == 'i'
    end, case.lhs .. ' opened no picker to type in')
    local picker = state.get_current_picker(vim.api.nvim_get_current_buf())
    if case.query then
      harness.press(case.query)
    end
    harness.wait(function()
      return picker.manager and lists(picker, case.lists)
    end, case.lhs .. (case.query and (' with ' .. case.query) or '') .. ' does not list ' .. case.lists)
    harness.press('<C-c>')
    harness.wait(function()
      return vim.api.nvim_get_current_win() == window and #harness.floats() == 0
    end, case.lhs .. ': <C-c> did not close the picker')
  end
  vim.cmd('silent checkhealth telescope')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  assert(not report:find('ERROR'), ':checkhealth telescope reports an error:\n' .. report)
  assert(report:find('telescope'), ':checkhealth telescope found no health check:\n' .. report)
end)
