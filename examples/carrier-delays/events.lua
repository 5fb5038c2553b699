-- Carrier delays, stage 1: a CSV line -> { c = carrier, m = month, d =
-- arrival delay } with the month as a number of months since year 0 (the
-- event time). Flights without an arrival delay (NA: cancelled or
-- diverted) are left out.
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'

ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or 'tcp://localhost:5555')
  :map(function(line)
    local row = csv.parse(line)
    local delay = tonumber(row[15])
    if not delay then return nil end
    return { c = row[9], m = tonumber(row[1]) * 12 + tonumber(row[2]) - 1,
             d = delay }
  end)
  :filter(function(event) return event ~= nil end)
  :subscribeToSocket(os.getenv('TO') or 'tcp://localhost:5556')
