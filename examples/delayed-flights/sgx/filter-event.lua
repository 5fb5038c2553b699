-- DelayedFlights, stage 2: keep delayed flights (the seed's Listing 8.9).
local ZmqRx = require 'sgx-rx'

local from_socket = os.getenv('FROM') or 'tcp://localhost:5556'
local to_socket = os.getenv('TO') or 'tcp://localhost:5557'

ZmqRx.Subject.fromZmqSocket(from_socket)
  :filterSGX(
    function(event)
      return (tonumber(event.arrdelay) or 0) > 0
    end
  )
  :subscribeToSocket(to_socket)
