-- Stand-in for telescope's action sets: `select:replace(fn)` as extensions call it.
return { select = { replace = function() end } }
