-- Stand-in for telescope's action state: the picker behind a prompt buffer.
local state = { _pickers = {} }

function state.get_current_picker(prompt_bufnr)
  return state._pickers[prompt_bufnr]
end

function state.get_selected_entry()
  return nil
end

return state
