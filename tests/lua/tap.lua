-- tap.lua - a tiny test helper for the Lua tests.
--
--   local tap = require 'tap'
--   local test, eq = tap.test, tap.eq
--   test('adds', function() eq(1 + 1, 2) end)
--   tap.done()   -- prints "N passed, M failed"; exits 1 if M > 0
--
-- eq(actual, expected) compares deeply (tables by content, NaN equal to
-- NaN) and, on failure, prints both values and aborts the current test.

local M = { passed = 0, failed = 0 }

local function isIdent(k)
  return type(k) == 'string' and k:match('^[%a_][%w_]*$') ~= nil
end

local function keyOrder(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == 'number' or ta == 'string' then return a < b end
  return tostring(a) < tostring(b)
end

local function show(v, seen)
  local t = type(v)
  if t == 'string' then return string.format('%q', v) end
  if t ~= 'table' then return tostring(v) end
  seen = seen or {}
  if seen[v] then return '<cycle>' end
  seen[v] = true
  local parts, keys, n = {}, {}, #v
  for i = 1, n do parts[#parts + 1] = show(v[i], seen) end
  for k in pairs(v) do
    if not (type(k) == 'number' and k % 1 == 0 and k >= 1 and k <= n) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, keyOrder)
  for _, k in ipairs(keys) do
    local ks = isIdent(k) and k or ('[' .. show(k, seen) .. ']')
    parts[#parts + 1] = ks .. ' = ' .. show(v[k], seen)
  end
  seen[v] = nil
  return '{' .. table.concat(parts, ', ') .. '}'
end
M.show = show

local function deepEq(a, b, seen)
  if a == b then return true end
  if a ~= a and b ~= b then return true end -- NaN
  if type(a) ~= 'table' or type(b) ~= 'table' then return false end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, v in pairs(a) do
    if not deepEq(v, b[k], seen) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.deepEq = deepEq

-- A failure raised by eq/ok; test() reports it without a traceback.
local Failure = {}
Failure.__tostring = function(f) return f.message end

local function fail(message, level)
  local info = debug.getinfo((level or 2) + 1, 'Sl')
  local where = info and (info.short_src .. ':' .. info.currentline .. ': ') or ''
  error(setmetatable({ message = where .. message }, Failure), 0)
end

function M.eq(actual, expected, label)
  if not deepEq(actual, expected) then
    fail((label and (label .. ': ') or '') .. '\n      expected: ' ..
      show(expected) .. '\n      got:      ' .. show(actual), 2)
  end
end

function M.ok(cond, label)
  if not cond then fail('assertion failed' .. (label and (': ' .. label) or ''), 2) end
end

-- Asserts that fn raises an error whose message contains pattern (plain).
function M.raises(fn, pattern)
  local ok, err = pcall(fn)
  if ok then fail('expected an error' .. (pattern and (' matching ' .. pattern) or ''), 2) end
  if pattern and not tostring(err):find(pattern, 1, true) then
    fail('error ' .. show(tostring(err)) .. ' does not contain ' .. show(pattern), 2)
  end
  return err
end

function M.test(name, fn)
  local ok, err = xpcall(fn, function(e)
    if getmetatable(e) == Failure then return tostring(e) end
    return debug.traceback(tostring(e), 2)
  end)
  if ok then
    M.passed = M.passed + 1
    if os.getenv('TAP_VERBOSE') then print('ok     ' .. name) end
  else
    M.failed = M.failed + 1
    print('FAILED ' .. name .. '\n    ' .. tostring(err))
  end
end

function M.done()
  print(string.format('%d passed, %d failed', M.passed, M.failed))
  os.exit(M.failed > 0 and 1 or 0)
end

return M
