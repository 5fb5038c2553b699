-- DelayedFlights, stage 3: count and sum delays per carrier (the seed's
-- Listing 8.6). Each reduce worker emits its partial result at the end;
-- the printer merges them.
local ZmqRx = require 'sgx-rx'

local from_socket = os.getenv('FROM') or 'tcp://localhost:5557'
local to_socket = os.getenv('TO') or 'tcp://localhost:5558'

ZmqRx.Subject.fromZmqSocket(from_socket)
  :reduceSGX(
    function(accumulator, event)
      local carrier = accumulator[event.uniquecarrier] or {}
      accumulator[event.uniquecarrier] = {
        count = (carrier.count or 0) + 1,
        total = (carrier.total or 0) + tonumber(event.arrdelay)
      }
      return accumulator
    end, {}
  )
  :subscribeToSocket(to_socket)
