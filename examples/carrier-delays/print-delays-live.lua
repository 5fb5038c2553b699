-- Carrier delays, the live printer (pipeline-live.yml): one line per
-- carrier and month as soon as its window closes, while the input still
-- grows, in the format of print-delays.lua:
--   YYYY-MM CARRIER FLIGHTS TOTAL_DELAY AVERAGE NAME
-- Windows close in month order; the carriers of one month come in no
-- particular order (sort the output to compare it with print-delays.lua).
-- stdout is flushed after each line: a pipe would otherwise hold them.
local ZmqRx = require 'zmq-rx'

local function emit(line)
  if io and io.stdout then
    io.stdout:write(line, '\n')
    io.stdout:flush()
  else
    print(line)
  end
end

ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or 'tcp://localhost:5558')
  :subscribe(
    function(r)
      emit(string.format('%04d-%02d %s %d %d %.2f %s',
        r.month // 12, r.month % 12 + 1, r.carrier, r.n, r.sum,
        r.sum / r.n, r.name or '-'))
    end,
    function(e) emit('error: ' .. tostring(e)) end,
    function() ZmqRx.sendZmqCompleted() end)
