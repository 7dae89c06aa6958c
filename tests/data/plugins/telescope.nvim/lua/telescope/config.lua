-- Stand-in for telescope's config: the previewer and sorter constructors extensions ask for.
return {
  values = {
    qflist_previewer = function() return {} end,
    file_sorter = function() return {} end,
    generic_sorter = function() return {} end,
  },
}
