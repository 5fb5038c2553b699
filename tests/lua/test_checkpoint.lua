-- Tests for Rx.checkpoint (src/lua/lua/rx.lua): every stateful operator's
-- state, captured after some events and put back into the same chain
-- built afresh, gives what the chain gives without the interruption.
-- Run: cd /work/main && lua5.4 tests/lua/test_checkpoint.lua
-- (the stage's C side, canonical encoding and sealing: test_snapshot.c)
package.path = 'src/lua/lua/?.lua;tests/lua/?.lua;' .. package.path

local tap = require 'tap'
local eq, ok = tap.eq, tap.ok

local function copy(v, seen)
  if type(v) ~= 'table' then return v end
  seen = seen or {}
  if seen[v] then error('a cycle in a captured state') end
  seen[v] = true
  local t = {}
  for k, x in pairs(v) do t[copy(k, seen)] = copy(x, seen) end
  seen[v] = nil
  return t
end

-- A fresh rx module with an open checkpoint list, as a stage gets it.
local function fresh()
  package.loaded.rx = nil
  local Rx = require 'rx'
  Rx.config.hostErrors = true
  Rx.checkpoint.open()
  return Rx
end

-- Runs build(Rx, subject) over events. Without `from`: returns all the
-- output, the state captured after event `at` (copied, as a snapshot is)
-- and how much output there was then. With `from`: restores it and
-- pushes the events after `at`.
local function run(build, events, at, from)
  local Rx = fresh()
  local subject = Rx.Subject.create()
  local out = {}
  build(Rx, subject):subscribe(function(...)
    local n = select('#', ...)
    out[#out + 1] = n == 1 and (...) or { ... }
  end, function(e) out[#out + 1] = 'error: ' .. tostring(e) end,
  function() out[#out + 1] = 'done' end)
  Rx.checkpoint.freeze()
  local snap, mark
  if from then Rx.checkpoint.restore(copy(from)) end
  for i = from and at + 1 or 1, #events do
    subject:onNext(events[i])
    if i == at and not from then
      snap = copy(Rx.checkpoint.capture())
      mark = #out
    end
  end
  subject:onCompleted()
  return out, snap, mark
end

local function case(name, build, events, at, same)
  tap.test(name, function()
    local whole, snap, mark = run(build, events, at)
    ok(snap and #snap >= 1, 'a stateful operator registered')
    local tail = {}
    for i = mark + 1, #whole do tail[#tail + 1] = whole[i] end
    local restored = run(build, events, at, snap)
    eq(restored, tail)
    if not same then
      -- the state mattered: without it the rest gives something else
      local rest = {}
      for i = at + 1, #events do rest[#rest + 1] = events[i] end
      local cold = run(build, rest, 0, nil)
      ok(tap.show(cold) ~= tap.show(tail), 'restoring the state matters')
    end
  end)
end

local nums = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3 }
local function side(s, name)
  return s:filter(function(e) return e.s == name end)
    :map(function(e) return e.v end)
end
local ab = { { s = 'a', v = 1 }, { s = 'b', v = 10 }, { s = 'a', v = 2 },
  { s = 'b', v = 20 }, { s = 'a', v = 3 }, { s = 'b', v = 30 },
  { s = 'a', v = 4 } }

case('reduce', function(_, s)
  return s:reduce(function(a, x) return a + x end, 0) end, nums, 4)
case('reduce without seed, table accumulator', function(_, s)
  return s:map(function(x) return { x } end)
    :reduce(function(a, x) a[#a + 1] = x[1]; return a end)
    :map(function(t) return table.concat(t, ',') end) end, nums, 3)
case('scan', function(_, s)
  return s:scan(function(a, x) return a + x end, 0) end, nums, 5)
case('count', function(_, s) return s:count() end, nums, 6)
case('count with predicate', function(_, s)
  return s:count(function(x) return x > 2 end) end, nums, 6)
case('sum, min, max', function(Rx, s)
  return Rx.Observable.zip(s:sum(), s:min(), s:max()) end, nums, 7)
case('average', function(_, s) return s:average() end, nums, 5)
case('all', function(_, s)
  return s:all(function(x) return x < 9 end) end, nums, 6)
case('contains', function(_, s) return s:contains(4) end, nums, 4, true)
case('distinct', function(_, s) return s:distinct() end, nums, 5)
case('distinctUntilChanged', function(_, s)
  return s:distinctUntilChanged() end, { 1, 1, 2, 2, 2, 3, 3 }, 4)
case('elementAt', function(_, s) return s:elementAt(6) end, nums, 4)
case('find', function(_, s)
  return s:find(function(x) return x > 4 end) end, nums, 5)
case('first', function(_, s) return s:first() end, nums, 2)
case('take', function(_, s) return s:take(4) end, nums, 2)
case('last', function(_, s) return s:last() end, nums, 5, true)
case('skip', function(_, s) return s:skip(4) end, nums, 2)
case('skipLast', function(_, s) return s:skipLast(3) end, nums, 4)
case('takeLast', function(_, s) return s:takeLast(3) end, nums, 8)
case('skipWhile', function(_, s)
  return s:skipWhile(function(x) return x < 5 end) end, nums, 6)
case('takeWhile', function(_, s)
  return s:takeWhile(function(x) return x < 9 end) end, nums, 6)
case('defaultIfEmpty', function(_, s)
  return s:filter(function(x) return x > 8 end)
    :defaultIfEmpty('none') end, nums, 6)
case('buffer', function(_, s) return s:buffer(4) end, nums, 5)
case('window', function(_, s) return s:window(3) end, nums, 4)
case('combineLatest', function(_, s)
  return side(s, 'a'):combineLatest(side(s, 'b'),
    function(a, b) return a .. '/' .. b end) end, ab, 3)
case('zip', function(Rx, s)
  return Rx.Observable.zip(side(s, 'a'), side(s, 'b'),
    function(a, b) return a + b end) end, ab, 3)
case('with', function(_, s)
  return side(s, 'a'):with(side(s, 'b')) end, ab, 4)
case('sample', function(_, s)
  return side(s, 'a'):sample(side(s, 'b')) end, ab, 3)
case('tumblingWindow, keyed', function(_, s)
  return s:tumblingWindow{ size = 4, time = function(x) return x end,
    key = function(x) return x % 2 end }
    :map(function(w) return w.from .. ':' .. w.key .. ':'
      .. table.concat(w.events, ',') end) end,
  { 1, 2, 3, 5, 6, 7, 9, 10, 13 }, 4)
case('joinWindow', function(_, s)
  return side(s, 'a'):joinWindow(side(s, 'b'), { key = function() return 1 end,
    time = function(v) return v % 10 end, within = 1,
    combine = function(l, r) return l .. '+' .. r end }) end,
  { { s = 'a', v = 1 }, { s = 'b', v = 12 }, { s = 'a', v = 3 },
    { s = 'b', v = 23 } }, 2)
case('tumblingWindow, keyedWatermark', function(_, s)
  return s:tumblingWindow{ size = 4, time = function(x) return math.floor(x / 2) end,
    key = function(x) return x % 2 end, keyedWatermark = true,
    seed = 0, reduce = function(a, x) return a + x end,
    onLate = function() end }
    :map(function(w) return w.from .. ':' .. w.key .. ':' .. w.value end) end,
  { 2, 1, 4, 20, 3, 6, 5, 22, 7, 8, 9, 24, 11, 30, 13 }, 5)
case('joinWindow, keyedWatermark', function(_, s)
  return side(s, 'a'):joinWindow(side(s, 'b'), { key = function(v) return math.floor(v / 100) end,
    time = function(v) return v % 100 end, within = 1, keyedWatermark = true,
    combine = function(l, r) return l .. '+' .. r end }) end,
  { { s = 'a', v = 101 }, { s = 'b', v = 210 }, { s = 'a', v = 209 },
    { s = 'b', v = 102 }, { s = 'a', v = 211 }, { s = 'b', v = 100 } }, 3)

case('BehaviorSubject', function(Rx, s)
  local b = Rx.BehaviorSubject.create('start')
  s:subscribe(function(x) if x == 5 then b:onNext(x) end end)
  return s:filter(function(x) return x == 2 end)
    :map(function() return b:getValue() end) end, nums, 5)
case('ReplaySubject', function(Rx, s)
  local r = Rx.ReplaySubject.create(2)
  s:subscribe(function(x) if x ~= 2 then r:onNext(x) end end)
  return s:filter(function(x) return x == 2 end):map(function()
    local got = {}
    r:subscribe(function(v) got[#got + 1] = v end)
    return table.concat(got, ',') end) end, nums, 5)
case('AsyncSubject', function(Rx, s)
  local a = Rx.AsyncSubject.create()
  s:subscribe(function(x) a:onNext(x) end, nil, function() a:onCompleted() end)
  return a end, nums, 5, true)

tap.test('a plain program keeps no list; a frozen list stays closed',
  function()
    package.loaded.rx = nil
    local Rx = require 'rx'
    Rx.Observable.of(1, 2):reduce(function(a, x) return a + x end)
      :subscribe(function() end)
    eq(#Rx.checkpoint.capture(), 0)
    Rx.checkpoint.open()
    Rx.Observable.of(1):count():subscribe(function() end)
    Rx.checkpoint.freeze()
    Rx.checkpoint.open()
    Rx.Observable.of(1):count():subscribe(function() end)
    eq(Rx.checkpoint.names(), { 'count' })
  end)

tap.test('restore refuses another chain', function()
  local Rx = fresh()
  local s = Rx.Subject.create()
  s:count():subscribe(function() end)
  Rx.checkpoint.freeze()
  local okr, err = pcall(Rx.checkpoint.restore, { { 'reduce', {} } })
  ok(not okr)
  ok(err:find('operator 1 is reduce in the snapshot but count in the script',
    1, true), err)
  okr, err = pcall(Rx.checkpoint.restore, {})
  ok(not okr)
  ok(err:find('holds the state of 0 operator(s) () but the script registered 1',
    1, true), err)
end)

package.loaded.rx = nil
tap.done()
