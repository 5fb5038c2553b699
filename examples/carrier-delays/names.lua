-- Carrier delays, stage 3: the carrier's name, from carriers.csv (read
-- once, when the stage starts; CARRIERS names another file). A code that
-- is not in the file keeps its row, named "(unknown)".
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'

local function here()
  local source = debug and debug.getinfo(1, 'S').source or ''
  return source:match('^@(.*/)') or ''
end

local function load(path)
  local names, n = {}, 0
  for line in io.lines(path) do
    n = n + 1
    local f = csv.fields(line)
    if n > 1 and f[1] ~= '' then names[f[1]] = f[2] end
  end
  return names
end

local carriers = load(os.getenv('CARRIERS') or (here() .. 'carriers.csv'))

ZmqRx.Subject.fromZmqSocket(os.getenv('FROM') or 'tcp://localhost:5557')
  :joinTable(carriers, {
    key = function(r) return r.carrier end,
    onMiss = 'keep',
    combine = function(r, name)
      r.name = name or '(unknown)'
      return r
    end,
  })
  :subscribeToSocket(os.getenv('TO') or 'tcp://localhost:5558')
