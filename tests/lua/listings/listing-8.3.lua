-- The seed's Listing 8.3 (data stream), as printed.
local ZmqRx = require 'zmq-rx'

local input = 'data.csv'
local to_socket = 'tcp://localhost:5555'

ZmqRx.Subject.fromFileByLine(input)
  :subscribeToSocket(to_socket) -- send to 'tcp://localhost:5555'
