-- DelayedFlights' map, filter and reduce (examples/delayed-flights) as one
-- stage: what chaining the three stages into one process saves at most
-- (bench/callgrind/pipeline.sh ... chained).
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :map(function(value)
      if not value then return {} end
      local array = csv.parse(value)
      local event = {}
      event.uniquecarrier = array[9]
      event.arrdelay = array[15]
      return event
    end)
  :filter(function(event) return (tonumber(event.arrdelay) or 0) > 0 end)
  :reduce(function(accumulator, event)
      local carrier = accumulator[event.uniquecarrier] or {}
      accumulator[event.uniquecarrier] = {
        count = (carrier.count or 0) + 1,
        total = (carrier.total or 0) + tonumber(event.arrdelay)
      }
      return accumulator
    end, {})
  :subscribeToSocket(os.getenv('TO'))
