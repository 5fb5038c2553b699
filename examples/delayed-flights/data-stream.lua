-- DelayedFlights, a data stream written in Lua (the seed's Listing 8.3).
-- `sstream run` uses the native source instead (pipeline.yml, source:),
-- which is much faster; this script shows the seed's way and runs with
--   DATA_FILE=flights.csv TO=ipc:///tmp/r1 sstream lua data-stream.lua
local ZmqRx = require 'zmq-rx'

local input = os.getenv('DATA_FILE') or 'data.csv'
local to_socket = os.getenv('TO') or 'tcp://localhost:5555'

ZmqRx.Subject.fromFileByLine(input)
  :subscribeToSocket(to_socket)
