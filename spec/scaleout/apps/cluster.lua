-- Test app of the scale-out suite: every event sends through server:broadcast or
-- server:ask, so what a client sees depends on the other processes of the cluster.
local neffos = require "neffos"

local NS = "default"

local function decode(body)
  local t = neffos.json.decode(body)
  if type(t) == "table" then return t end
end

return neffos.server {
  endpoint = "/cluster",

  id = function(req)
    return req.headers["x-username"]
  end,

  namespaces = {
    [NS] = {
      -- To the whole namespace, the sender included.
      all = function(ns, msg)
        ns.server:broadcast { namespace = NS, event = "news", body = msg.body }
      end,
      -- To the whole namespace but the sender (except = the ns connection).
      others = function(ns, msg)
        ns.server:broadcast { namespace = NS, event = "news", body = msg.body, except = ns }
      end,
      -- To a room the sender joined, but the sender.
      room = function(ns, msg)
        ns.server:broadcast { namespace = NS, room = msg.room, event = "chat", body = msg.body, except = ns }
      end,
      -- {"to": id, "text": ...}: to one connection, wherever it is.
      direct = function(ns, msg)
        local m = decode(msg.body)
        ns.server:broadcast { namespace = NS, event = "direct", body = m.text, to = m.to }
      end,
      -- {"except": id, "text": ...}: to everybody but that ID, wherever it is.
      except_id = function(ns, msg)
        local m = decode(msg.body)
        ns.server:broadcast { namespace = NS, event = "news", body = m.text, except = m.except }
      end,
      -- {"to": id, "timeout": s}: asks that client "question" and answers with its reply.
      ask_other = function(ns, msg)
        local m = decode(msg.body)
        local r, err = ns.server:ask { to = m.to, namespace = NS, event = "question",
                                       body = "from " .. ns.id, timeout = m.timeout or 5 }
        if not r then return nil, "ask failed: " .. tostring(err) end
        return "answer: " .. r.body
      end,
    },
  },
}
