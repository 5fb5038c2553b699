-- The seed's Listing 8.4 (mapper), as printed. It names the field
-- `arrydelay`, and so do 8.5 and 8.6: the three agree, so no fix is needed.
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'

local from_socket = 'tcp://localhost:5555'
local to_socket = 'tcp://localhost:5556'


ZmqRx.Subject.fromZmqSocket(from_socket) -- receive from 'tcp://localhost:5555'
  :map(
    function(value)
      if not value then return {} end

      local array = csv.parse(value)
      local event = {}
      event.uniquecarrier = array[9]
      event.arrydelay = array[15]

      return event
    end
)
:subscribeToSocket(to_socket) -- send to 'tcp://localhost:5556'
