-- Carrier delays, stage 2: one tumbling window of one month per carrier,
-- folding the delays into a count and a sum. A carrier's window goes out
-- as soon as a later month of that carrier arrives (its watermark passed
-- the window's end); the last ones at the end of the stream. The
-- watermark is kept per carrier, so the stage may be partitioned by
-- carrier over several workers (pipeline-keyed.yml). Late events (a month that is already closed)
-- are counted and reported at the end, in the worker's log.
local ZmqRx = require 'zmq-rx'

local stats = {}

ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or 'tcp://localhost:5556')
  :tumblingWindow({
    size = 1,
    time = function(e) return e.m end,
    key = function(e) return e.c end,
    lateness = 0,
    keyedWatermark = true, -- a watermark per carrier: the same windows
                           -- when the stage is partitioned by carrier
    seed = function() return { n = 0, sum = 0 } end,
    reduce = function(acc, e)
      acc.n = acc.n + 1
      acc.sum = acc.sum + e.d
      return acc
    end,
    stats = stats,
  })
  :map(function(w)
    return { carrier = w.key, month = w.from, n = w.value.n, sum = w.value.sum }
  end)
  :tap(nil, nil, function()
    print(string.format('window: %d events, %d windows, %d late',
      stats.events, stats.windows, stats.late))
  end)
  :subscribeToSocket(os.getenv('TO') or 'tcp://localhost:5557')
