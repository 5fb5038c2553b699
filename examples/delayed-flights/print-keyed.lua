-- DelayedFlights, the printer of pipeline-keyed.yml: the reduce is
-- partitioned by carrier, so each carrier's result comes from exactly one
-- reduce worker and nothing is merged here. A carrier that arrives twice
-- means the partitioning failed: the run fails instead of printing.
local ZmqRx = require 'zmq-rx'

local from_socket = os.getenv('FROM') or 'tcp://localhost:5558'
local results = {}

ZmqRx.Subject.fromZmqSocket(from_socket)
  :subscribe(
    function(datas)
      for k, v in pairs(datas) do
        if results[k] then
          error('carrier ' .. tostring(k) .. ' has results from two ' ..
                'reduce workers: the stage is not partitioned by carrier')
        end
        results[k] = v
      end
    end,
    function(error)
      print(error)
    end,
    function()
      local carriers = {}
      for k in pairs(results) do carriers[#carriers + 1] = k end
      table.sort(carriers)
      for _, k in ipairs(carriers) do
        local v = results[k]
        print(string.format(
          'Delays for carrier %s -> %.2f average mins - %d delayed flights',
          k, v.count == 0 and 0 or v.total / v.count,
          math.tointeger(v.count)))
      end
      ZmqRx.sendZmqCompleted()
    end
  )
