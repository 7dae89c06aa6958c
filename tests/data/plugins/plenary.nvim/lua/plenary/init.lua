return { path = {}, job = {} }
