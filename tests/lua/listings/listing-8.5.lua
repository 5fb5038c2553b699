-- The seed's Listing 8.5 (filter), as printed (its `arrydelay` is the
-- field Listing 8.4 sets).
local ZmqRx = require 'zmq-rx'

local from_socket = 'tcp://localhost:5556'
local to_socket = 'tcp://localhost:5557'

ZmqRx.Subject.fromZmqSocket(from_socket) -- receive from 'tcp://localhost:5556'
:filter(
    function(event)
        return (tonumber(event.arrydelay) or 0) > 0
    end
)
:subscribeToSocket(to_socket) -- send to 'tcp://localhost:5557'
