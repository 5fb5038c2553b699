-- The seed's Listing 8.8 (mapper in SGX), as printed (it already
-- spells arrdelay).
local ZmqRx = require 'sgx-rx'
local csv = require 'csv'

local from_socket = 'tcp://localhost:5555'
local to_socket = 'tcp://localhost:5556'


ZmqRx.Subject.fromZmqSocket(from_socket) -- receive from 'tcp://localhost:5555'
  :mapSGX(
    function(value)
      if not value then return {} end

      local array = csv.parse(value)
      local event = {}
      event.uniquecarrier = array[9]
      event.arrdelay = array[15]

      return event
    end
)
:subscribeToSocket(to_socket) -- send to 'tcp://localhost:5556'
