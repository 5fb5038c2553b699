-- Carrier delays, the printer: one line per carrier and month, sorted,
--   YYYY-MM CARRIER FLIGHTS TOTAL_DELAY AVERAGE NAME
-- (a record without a name, from a pipeline without the names stage,
-- prints "-").
local ZmqRx = require 'zmq-rx'

local rows = {}

ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or 'tcp://localhost:5558')
  :subscribe(
    function(r) rows[#rows + 1] = r end,
    function(e) print('error: ' .. tostring(e)) end,
    function()
      table.sort(rows, function(a, b)
        if a.month ~= b.month then return a.month < b.month end
        return a.carrier < b.carrier
      end)
      for _, r in ipairs(rows) do
        print(string.format('%04d-%02d %s %d %d %.2f %s',
          r.month // 12, r.month % 12 + 1, r.carrier, r.n, r.sum,
          r.sum / r.n, r.name or '-'))
      end
      ZmqRx.sendZmqCompleted()
    end)
