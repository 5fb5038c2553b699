-- The seed's Listing 8.2 (DelayedFlights in one process), as printed but
-- for: arrydelay -> arrdelay; the reduce returns its accumulator (as in
-- Listing 8.6); `io.output(file)` (file is undefined) -> io.output(output)
-- and `io.close(ouput)` -> io.close(), so the elapsed time goes to
-- output.log; `local ZmqRx = require 'zmq-rx'` for sendZmqCompleted; a space
-- before "delayed flights", as Listing 8.7 prints it.
local Rx = require 'rx'
local csv = require 'csv'
local ZmqRx = require 'zmq-rx'

local input = 'data.csv'
local output = 'output.log'
local start = os.time()
local results = {}

io.output(output)

Rx.Subject.fromFileByLine(input)
  :map(
    function(value)
      if not value then return {} end

      local array = csv.parse(value)
      local event = {}
      event.uniquecarrier = array[9]
      event.arrdelay = array[15]

      return event
    end
  )
  :filter(
    function(event)
        return (tonumber(event.arrdelay) or 0) > 0
    end
)
:reduce(
    function(accumulator, event)
        carrier = accumulator[event.uniquecarrier] or {}
        accumulator[event.uniquecarrier] = { count = (carrier.count
            or 0) + 1, total = (carrier.total or 0) + event.arrdelay }
        return accumulator
    end, {}
)
:subscribe(
    function(datas)
        for k,v in pairs(datas) do
            carrier = results[k] or {}
            results[k] = { count = (carrier.count or 0) + v.count,
                total = (carrier.total or 0) + v.total }
        end
    end,
    function(error)
        print(error)
    end,
    function()
        io.write((os.time() - start) .. "\n")
        io.close()

        for k,v in pairs(results) do
            print('Delays for carrier ' .. k .. ' > ' .. (v.count == 0
                and 0 or (v.total / v.count)) .. ' average mins - ' ..
                math.tointeger(v.count) .. " delayed flights")
        end
        ZmqRx.sendZmqCompleted()
        print('completed!')
    end
)
