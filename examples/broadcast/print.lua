-- The printer of the broadcast example: one result per worker of the
-- broadcast stage (EXPECT of them, from the environment, default 3), all
-- equal since each worker saw every event; prints it once. A missing or
-- differing copy fails the run.
local ZmqRx = require 'zmq-rx'

local expect = tonumber(os.getenv('EXPECT') or '3')
local results = {}

ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :subscribe(
    function(r) results[#results + 1] = r end,
    function(e) print(e) end,
    function()
      if #results ~= expect then
        error(('%d results, expected one from each of the %d workers')
              :format(#results, expect))
      end
      for i = 2, #results do
        if results[i].count ~= results[1].count or
           results[i].total ~= results[1].total then
          error('the workers of the broadcast stage disagree')
        end
      end
      print(('delayed flights: %d, total delay: %d minutes (from each of '
             .. '%d workers)'):format(math.tointeger(results[1].count),
                                      math.tointeger(results[1].total),
                                      #results))
      ZmqRx.sendZmqCompleted()
    end)
