local health = vim.health or require('health')
local ok = health.ok or health.report_ok
local error = health.error or health.report_error
local start = health.start or health.report_start
return {
  check = function()
    start('Checking external dependencies')
    for _, tool in ipairs({ 'rg', 'fdfind' }) do
      if vim.fn.executable(tool) == 1 then ok(tool .. ': found') else error(tool .. ': not found') end
    end
  end,
}
