-- sgx-rx: the seed's SGX extension of RxLua (section 8.3.3). It returns
-- zmq-rx extended with :mapSGX, :filterSGX and :reduceSGX, which take the
-- same functions as :map, :filter and :reduce.
--
-- Where they run is decided by the pipeline's security mode, not by the
-- script: with `security: enclave` the whole stage script runs inside the
-- enclave (the worker's host process only forwards ciphertext), so these
-- operators are the plain ones executed there; in plain/encrypted mode
-- they are working stand-ins that run in the worker, as the seed's mocks.
local Rx = require 'zmq-rx'
require 'sgx'

local ok, host = pcall(require, 'ss.host')
if not ok then host = nil end

local function mark()
  if host then host.sgx() end
end

function Rx.Observable:mapSGX(...)
  mark()
  return self:map(...)
end

function Rx.Observable:filterSGX(...)
  mark()
  return self:filter(...)
end

function Rx.Observable:reduceSGX(...)
  mark()
  return self:reduce(...)
end

return Rx
