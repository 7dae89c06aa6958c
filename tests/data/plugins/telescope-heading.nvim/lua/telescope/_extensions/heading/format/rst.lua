-- Stand-in for telescope-heading's rst headings, with the plain parser's flaw kept: a line made of
-- one adornment character marks a heading, an empty line counts as such a line, and an overline
-- that is never closed leaves it waiting, so every title after a double blank line is missed.
local rst = {}

local function adornment(line)
  local char = line:sub(1, 1)
  return line == '' or (char:match('[=%-`:%.\'"~%^_%*%+#]') ~= nil and line == char:rep(#line))
end

function rst.get_headings(path, first, last)
  local found, previous, overline = {}, '', nil
  for index = first, last do
    local line = vim.fn.getline(index)
    if adornment(line) then
      local title
      if previous == '' then
        overline = #line
      elseif overline then
        title = (overline == #previous and #previous == #line) and previous or nil
      elseif #previous == #line then
        title = previous
      end
      if title then
        table.insert(found, { heading = vim.trim(title), line = index, path = path })
        overline = nil
      end
    end
    previous = line
  end
  return found
end

function rst.ts_get_headings(path, bufnr)
  local parse = vim.treesitter.query.parse or vim.treesitter.parse_query
  local query = parse('rst', '(section (title) @title)')
  local root = vim.treesitter.get_parser(bufnr, 'rst'):parse()[1]:root()
  local found = {}
  for _, node in query:iter_captures(root, bufnr, 0, -1) do
    local row = node:range()
    table.insert(found, { heading = vim.trim(vim.fn.getline(row + 1)), line = row + 1, path = path })
  end
  return found
end

return rst
