-- zmq-rx: the seed's ZeroMQ extension of RxLua (section 8.3.2), served by
-- the SecureStreams runtime. It returns the rx module itself, extended:
--
--   ZmqRx.Subject.fromZmqSocket(addr)   the stage's input stream
--   observable:subscribeToSocket(addr)  the stage's output
--   ZmqRx.sendZmqCompleted()            the sink says the run is complete
--
-- The sockets themselves live in C (credit-based links to routers); this
-- file only connects the Rx chain to them through the private `ss.host`
-- module. The addresses given here are used unless the component was
-- started with --from / --to (as `sstream run` does), which win.
local Rx = require 'rx'

local ok, host = pcall(require, 'ss.host')
if not ok then host = nil end
if host then Rx.config.hostErrors = host.hostErrors end

local function needHost(what)
  error(what .. ': not inside a SecureStreams component (run the script '
        .. 'with sstream worker, sstream sink or sstream lua)', 3)
end

function Rx.Observable.fromZmqSocket(addr)
  if not host then needHost('fromZmqSocket') end
  local subject = Rx.Subject.create()
  host.input(subject, addr)
  return subject
end
Rx.Subject.fromZmqSocket = Rx.Observable.fromZmqSocket

function Rx.Observable:subscribeToSocket(addr)
  if not host then needHost('subscribeToSocket') end
  local emit, fail, done = host.output(addr)
  return self:subscribe(emit, fail, done)
end

function Rx.sendZmqCompleted()
  if host then host.done() end
end

return Rx
