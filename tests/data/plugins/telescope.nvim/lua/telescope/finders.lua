-- Stand-in for telescope's finders: a table of results through the caller's entry_maker, or the
-- results of a function of the prompt (what live_grep runs).
local finders = {}

local function entries(items, entry_maker)
  local made = {}
  for _, item in ipairs(items) do
    table.insert(made, entry_maker and entry_maker(item) or { value = item, display = item, ordinal = item })
  end
  return made
end

function finders.new_table(opts)
  return { results = entries(opts.results, opts.entry_maker) }
end

function finders.new_dynamic(fn)
  return { fn = function(prompt) return entries(fn(prompt)) end }
end

return finders
