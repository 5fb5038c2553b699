-- Carrier delays, stage 3: the carrier's name, from carriers.csv. The
-- file is read once, when the stage starts, through the `files` module:
-- `files.lines('carriers.csv')` (a string literal) bundles the file
-- beside this script with it, in every security mode, and inside an
-- enclave (which has no io) it is part of the enclave's measurement. A
-- code that is not in the file keeps its row, named "(unknown)".
local ZmqRx = require 'zmq-rx'
local csv = require 'csv'
local files = require 'files'

local carriers, n = {}, 0
for line in files.lines('carriers.csv') do
  n = n + 1
  local f = csv.fields(line)
  if n > 1 and f[1] ~= '' then carriers[f[1]] = f[2] end
end

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
