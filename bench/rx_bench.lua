-- rx_bench.lua - events/s through Subject -> map -> filter -> reduce.
--
--   lua5.4 bench/rx_bench.lua [events]      (default 5,000,000)
--
-- Runs the chain in both error modes: hostErrors=true (what the C host
-- uses: no pcall per operator) and hostErrors=false (RxLua semantics:
-- every user callback under pcall). Prints one line per mode.

local dir = (arg and arg[0] or ''):match('^(.*)[/\\][^/\\]*$') or '.'
package.path = dir .. '/../src/lua/lua/?.lua;src/lua/lua/?.lua;' .. package.path

local Rx = require 'rx'

local N = math.tointeger(tonumber(arg and arg[1]) or 5000000) or 5000000

local function run(hostErrors)
  Rx.config.hostErrors = hostErrors
  local subject = Rx.Subject.create()
  local result
  subject
    :map(function(x) return x * 2 end)
    :filter(function(x) return x % 3 == 0 end)
    :reduce(function(acc, x) return acc + x end, 0)
    :subscribe(function(v) result = v end)

  collectgarbage()
  collectgarbage()
  local mem0 = collectgarbage('count')
  local t0 = os.clock()
  for i = 1, N do subject:onNext(i) end
  subject:onCompleted()
  local dt = os.clock() - t0
  local grown = collectgarbage('count') - mem0

  -- the same sum, computed directly, to check the result
  local expected = 0
  for i = 1, N do
    local y = i * 2
    if y % 3 == 0 then expected = expected + y end
  end
  assert(result == expected, ('wrong result %s, expected %s'):format(
    tostring(result), tostring(expected)))

  print(('hostErrors=%-5s  %d events in %.3f s  %.2f M events/s  (heap +%.0f KiB)')
    :format(tostring(hostErrors), N, dt, N / dt / 1e6, grown))
  return N / dt
end

run(true)
run(false)
Rx.config.hostErrors = false
