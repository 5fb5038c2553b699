-- DelayedFlights, the printer (the seed's Listing 8.7): merges the
-- reducers' partial results and prints one line per carrier, sorted, in
-- the seed's form. The elapsed time goes to OUTPUT (default output.log).
local ZmqRx = require 'zmq-rx'

local from_socket = os.getenv('FROM') or 'tcp://localhost:5558'
local output = os.getenv('OUTPUT') or 'output.log'
local start = os.time()
local results = {}

ZmqRx.Subject.fromZmqSocket(from_socket)
  :subscribe(
    function(datas)
      for k, v in pairs(datas) do
        local carrier = results[k] or {}
        results[k] = { count = (carrier.count or 0) + v.count,
                       total = (carrier.total or 0) + v.total }
      end
    end,
    function(error)
      print(error)
    end,
    function()
      local f = io.open(output, 'w')
      if f then
        f:write((os.time() - start) .. "\n")
        f:close()
      end

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
