-- The broadcast stage: every worker gets every batch (broadcast: true in
-- pipeline.yml) and counts the delayed flights and their total delay, so
-- that each worker's result is the whole dataset's.
local ZmqRx = require 'zmq-rx'

ZmqRx.Subject.fromZmqSocket(os.getenv('FROM'))
  :filter(function(event) return (tonumber(event.arrdelay) or 0) > 0 end)
  :reduce(function(acc, event)
      return { count = acc.count + 1,
               total = acc.total + tonumber(event.arrdelay) }
    end, { count = 0, total = 0 })
  :subscribeToSocket(os.getenv('TO'))
