-- Stand-in for telescope's finders: a table of results through the caller's entry_maker.
local finders = {}

function finders.new_table(opts)
  local results = {}
  for _, item in ipairs(opts.results) do
    table.insert(results, opts.entry_maker and opts.entry_maker(item) or { value = item, display = item, ordinal = item })
  end
  return { results = results }
end

return finders
