-- The seed's Listing 8.6 (reducer), as printed (its `arrydelay` is the
-- field Listing 8.4 sets).
local ZmqRx = require 'zmq-rx'

local from_socket = 'tcp://localhost:5557'
local to_socket = 'tcp://localhost:5558'

ZmqRx.Subject.fromZmqSocket(from_socket) -- receive from 'tcp://localhost:5557'
:reduce(
    function(accumulator, event)
        carrier = accumulator[event.uniquecarrier] or {}
        accumulator[event.uniquecarrier] = { count = (carrier.count
            or 0) + 1, total = (carrier.total or 0) + event.arrydelay }

        return accumulator
    end, {}
)
:subscribeToSocket(to_socket) -- send to 'tcp://localhost:5558'
