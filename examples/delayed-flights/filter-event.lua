-- DelayedFlights, stage 2: keep delayed flights (the seed's Listing 8.5).
local ZmqRx = require 'zmq-rx'

local from_socket = os.getenv('FROM') or 'tcp://localhost:5556'
local to_socket = os.getenv('TO') or 'tcp://localhost:5557'

ZmqRx.Subject.fromZmqSocket(from_socket)
  :filter(
    function(event)
      return (tonumber(event.arrdelay) or 0) > 0
    end
  )
  :subscribeToSocket(to_socket)
