-- spec/author/client_bounds.test.mjs: a handler that dials a native endpoint which never reads, and
-- writes 1 MiB frames until the client refuses one (its unwritten bytes are bounded).
local neffos = require "neffos"

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      flood = function(_, msg)
        local conn, err = neffos.dial(msg.body, { [""] = {} }, { native = true, timeout = 5 })
        if not conn then return nil, err end
        local chunk = string.rep("x", 1 << 20)
        for i = 1, 200 do
          local ok, werr = conn:write(chunk)
          if not ok then
            conn:close()
            return ("refused after %d MiB: %s"):format(i - 1, werr)
          end
        end
        conn:close()
        return "all 200 MiB queued"
      end,
    },
  },
}
