-- The seed's Listing 8.5 (filter), as printed but for arrydelay.
local ZmqRx = require 'zmq-rx'

local from_socket = 'tcp://localhost:5556'
local to_socket = 'tcp://localhost:5557'

ZmqRx.Subject.fromZmqSocket(from_socket) -- receive from 'tcp://localhost:5556'
:filter(
    function(event)
        return (tonumber(event.arrdelay) or 0) > 0
    end
)
:subscribeToSocket(to_socket) -- send to 'tcp://localhost:5557'
