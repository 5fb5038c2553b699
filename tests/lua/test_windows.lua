-- Tests for the event-time operators of src/lua/lua/rx.lua: tumblingWindow,
-- slidingWindow, joinTable, joinWindow.  Run: lua5.4 tests/lua/test_windows.lua
package.path = 'src/lua/lua/?.lua;tests/lua/?.lua;' .. package.path

local tap = require 'tap'
local Rx = require 'rx'
local eq, ok, raises = tap.eq, tap.ok, tap.raises
local Observable, Subject = Rx.Observable, Rx.Subject

local function test(name, fn)
  tap.test(name, function()
    Rx.config.hostErrors = false
    Rx.stateful = false
    local success, err = pcall(fn)
    Rx.config.hostErrors = false
    if not success then error(err, 0) end
  end)
end

-- Subscribes and records values (a table per multi-value event), the
-- completion and the error.
local function collect(observable)
  local r = { values = {}, n = 0, completed = false, err = nil }
  r.sub = observable:subscribe(function(...)
    r.n = r.n + 1
    if select('#', ...) == 1 then r.values[r.n] = ... else r.values[r.n] = { ... } end
  end, function(e) r.err = e end, function() r.completed = true end)
  return r
end

local function t(x) return x.t end
local function sum(acc, x) return acc + x.v end

-- "from-to:count" of each window, or with a key "key@from-to:count".
local function shape(wins)
  local out = {}
  for i, w in ipairs(wins) do
    out[i] = (w.key ~= nil and (tostring(w.key) .. '@') or '')
      .. w.from .. '-' .. w.to .. ':' .. w.count
  end
  return out
end

local function times(events)
  local out = {}
  for i, e in ipairs(events) do out[i] = e.t end
  return out
end

-------------------------------------------------------------------------------
-- tumblingWindow
-------------------------------------------------------------------------------

test('tumblingWindow: [from, to) boundaries, emitted when the watermark reaches the end', function()
  local s = Subject.create()
  local r = collect(s:tumblingWindow({ size = 10, time = t }))
  s:onNext({ t = 0 })
  s:onNext({ t = 9.5 })
  eq(r.n, 0)            -- W = 9.5 < 10
  s:onNext({ t = 10 })  -- W = 10 >= 10: [0, 10) is complete
  eq(shape(r.values), { '0-10:2' })
  eq(times(r.values[1].events), { 0, 9.5 })
  s:onNext({ t = 19.99 })
  s:onNext({ t = 20 })
  eq(shape(r.values), { '0-10:2', '10-20:2' })
  eq(times(r.values[2].events), { 10, 19.99 })
  s:onNext({ t = -3 })  -- late: W = 20
  s:onCompleted()       -- flushes [20, 30)
  eq(shape(r.values), { '0-10:2', '10-20:2', '20-30:1' })
  eq(r.completed, true)
  eq(Rx.stateful, true)
end)

test('tumblingWindow: negative and fractional times fall in the right window', function()
  local r = collect(Observable.fromTable({ { t = -0.5 }, { t = -10 }, { t = 0.25 } }, ipairs)
    :tumblingWindow({ size = 10, time = t, lateness = 100 }))
  eq(shape(r.values), { '-10-0:2', '0-10:1' })
end)

test('tumblingWindow: per key, with reduce and a seed function, in end order', function()
  local stats = {}
  local s = Subject.create()
  local r = collect(s:tumblingWindow({
    size = 60, time = t, key = function(x) return x.k end,
    reduce = function(acc, x) acc.n = acc.n + 1 acc.sum = acc.sum + x.v return acc end,
    seed = function() return { n = 0, sum = 0 } end,
    stats = stats,
  }))
  s:onNext({ t = 1, k = 'b', v = 1 })
  s:onNext({ t = 2, k = 'a', v = 10 })
  s:onNext({ t = 30, k = 'b', v = 2 })
  s:onNext({ t = 61, k = 'a', v = 5 })  -- closes [0, 60) for b then a
  eq(shape(r.values), { 'b@0-60:2', 'a@0-60:1' })
  eq(r.values[1].value, { n = 2, sum = 3 })
  eq(r.values[2].value, { n = 1, sum = 10 })
  eq(r.values[1].events, nil)
  eq(stats.open, 1)
  s:onCompleted()
  eq(shape(r.values), { 'b@0-60:2', 'a@0-60:1', 'a@60-120:1' })
  eq(r.values[3].value, { n = 1, sum = 5 })
  eq(stats.windows, 3)
  eq(stats.events, 4)
  eq(stats.open, 0)
end)

test('tumblingWindow: reduce without a seed starts from the first value; a plain seed', function()
  local ev = { { t = 1, v = 3 }, { t = 2, v = 4 } }
  local r = collect(Observable.fromTable(ev, ipairs):map(function(x) return x end)
    :tumblingWindow({ size = 10, time = t, reduce = sum, seed = 100 }))
  eq(r.values[1].value, 107)
  r = collect(Observable.fromTable({ 5, 6, 7 }, ipairs)
    :tumblingWindow({ size = 10, time = function(x) return x end,
      reduce = function(a, x) return a * x end }))
  eq(r.values[1].value, 210)
end)

test('tumblingWindow: late events are counted and given to onLate, joining no window', function()
  local late, stats = {}, {}
  local s = Subject.create()
  local r = collect(s:tumblingWindow({ size = 10, time = t, stats = stats,
    onLate = function(x, time, wm) late[#late + 1] = { x.id, time, wm } end }))
  s:onNext({ t = 5, id = 'a' })
  s:onNext({ t = 12, id = 'b' })   -- W = 12: [0, 10) out
  s:onNext({ t = 7, id = 'c' })    -- 7 < 12: late
  s:onNext({ t = 11.999, id = 'd' }) -- 11.999 < 12: late too, though [10, 20) is open
  s:onNext({ t = 12, id = 'e' })   -- t == W: accepted
  s:onCompleted()
  eq(shape(r.values), { '0-10:1', '10-20:2' })
  eq(late, { { 'c', 7, 12 }, { 'd', 11.999, 12 } })
  eq(stats.late, 2)
  eq(stats.watermark, 12)
end)

test('tumblingWindow: allowed lateness holds windows open for out-of-order events', function()
  local stats = {}
  local s = Subject.create()
  local r = collect(s:tumblingWindow({ size = 10, time = t, lateness = 5, stats = stats }))
  s:onNext({ t = 5 })
  s:onNext({ t = 12 })  -- W = 7: [0, 10) still open
  s:onNext({ t = 7 })   -- 7 >= 7: accepted into [0, 10)
  eq(r.n, 0)
  s:onNext({ t = 14.9 }) -- W = 9.9
  eq(r.n, 0)
  s:onNext({ t = 15 })  -- W = 10: [0, 10) out
  eq(shape(r.values), { '0-10:2' })
  eq(times(r.values[1].events), { 5, 7 })
  s:onNext({ t = 9 })   -- 9 < 10: late
  eq(stats.late, 1)
  s:onCompleted()
  eq(shape(r.values), { '0-10:2', '10-20:3' })
end)

test('tumblingWindow: explicit watermark events move W; event times do not', function()
  local stats = {}
  local s = Subject.create()
  local r = collect(s:tumblingWindow({ size = 10, time = t, stats = stats,
    watermark = function(x) return x.wm end }))
  s:onNext({ t = 1 })
  s:onNext({ t = 25 })
  eq(r.n, 0)             -- no watermark yet: nothing is complete
  s:onNext({ t = 2 })    -- not late: W = -inf
  s:onNext({ wm = 10 })  -- [0, 10) complete
  eq(shape(r.values), { '0-10:2' })
  s:onNext({ wm = 5 })   -- a watermark never goes back
  eq(stats.watermark, 10)
  s:onNext({ t = 9 })    -- late
  eq(stats.late, 1)
  s:onNext({ wm = 30 })
  eq(shape(r.values), { '0-10:2', '20-30:1' })
  s:onNext({ t = 35 })
  s:onNext({ wm = math.huge }) -- the end: closes everything
  eq(shape(r.values), { '0-10:2', '20-30:1', '30-40:1' })
  eq(stats.events, 4)    -- watermark events are not windowed
  s:onCompleted()
  eq(r.n, 3)
end)

test('tumblingWindow: a watermark function may answer false for data events', function()
  local r = collect(Observable.fromTable({ { t = 1 }, { wm = 5 }, { t = 6 } }, ipairs)
    :tumblingWindow({ size = 5, time = t, watermark = function(x) return x.wm ~= nil and x.wm end }))
  eq(shape(r.values), { '0-5:1', '5-10:1' })
  eq(r.err, nil)
end)

test('tumblingWindow: explicit watermarks minus the lateness', function()
  local s = Subject.create()
  local r = collect(s:tumblingWindow({ size = 10, time = t, lateness = 3,
    watermark = function(x) return x.wm end }))
  s:onNext({ t = 1 })
  s:onNext({ wm = 12 })  -- W = 9
  eq(r.n, 0)
  s:onNext({ wm = 13 })  -- W = 10
  eq(shape(r.values), { '0-10:1' })
end)

test('tumblingWindow: completion flushes open windows; an error drops them', function()
  local s = Subject.create()
  local r = collect(s:tumblingWindow({ size = 10, time = t }))
  s:onNext({ t = 1 })
  s:onError('boom')
  eq(r.n, 0)
  eq(r.err, 'boom')
  r = collect(Observable.empty():tumblingWindow({ size = 1, time = t }))
  eq(r.n, 0)
  eq(r.completed, true)
end)

test('tumblingWindow: a bad event time is an error naming the operator', function()
  local r = collect(Observable.of({ t = 'noon' }):tumblingWindow({ size = 1, time = t }))
  eq(r.err, 'tumblingWindow: the time function returned a string (noon), not a number')
  r = collect(Observable.of({ t = 0 / 0 }):tumblingWindow({ size = 1, time = t }))
  eq(r.err, 'tumblingWindow: the time function returned NaN')
  r = collect(Observable.of({ t = math.huge }):tumblingWindow({ size = 1, time = t }))
  eq(r.err, 'tumblingWindow: the time function returned inf (event times are finite)')
  r = collect(Observable.of({ t = -math.huge }):joinWindow(Observable.empty(), { key = t, time = t, within = 1 }))
  eq(r.err, 'joinWindow: the leftTime function returned -inf (event times are finite)')
  r = collect(Observable.of({ t = 1 }):tumblingWindow({ size = 1, time = t,
    key = function() return 0 / 0 end }))
  eq(r.err, 'tumblingWindow: the key function returned NaN')
  r = collect(Observable.of({}):tumblingWindow({ size = 1,
    time = function() error('no clock', 0) end }))
  eq(r.err, 'no clock')
end)

test('tumblingWindow: host mode rejects one event and keeps the state', function()
  Rx.config.hostErrors = true
  local s = Subject.create()
  local got = {}
  s:tumblingWindow({ size = 10, time = t, reduce = function(acc, x)
      if x.v < 0 then error('negative', 0) end
      return acc + x.v
    end, seed = 0 })
    :subscribe(function(w) got[#got + 1] = w.value end)
  s:onNext({ t = 1, v = 1 })
  raises(function() s:onNext({ t = 2, v = -5 }) end, 'negative')
  raises(function() s:onNext({ t = 'x', v = 1 }) end, 'not a number')
  s:onNext({ t = 3, v = 2 })
  s:onCompleted()
  eq(got, { 3 })
end)

test('tumblingWindow: options are checked when the chain is built', function()
  local o = Observable.empty()
  raises(function() o:tumblingWindow() end, 'tumblingWindow: expected an options table')
  raises(function() o:tumblingWindow({ size = 10 }) end, 'option time (the event-time function) is required')
  raises(function() o:tumblingWindow({ time = t }) end, 'option size must be a positive finite number')
  raises(function() o:tumblingWindow({ size = 0, time = t }) end, 'option size must be')
  raises(function() o:tumblingWindow({ size = 1, time = t, sise = 2 }) end, "unknown option 'sise'")
  raises(function() o:tumblingWindow({ size = '1', time = t }) end, 'option size must be a number, got string')
  raises(function() o:tumblingWindow({ size = 1, time = 5 }) end, 'option time must be a function')
  raises(function() o:tumblingWindow({ size = 1, time = t, lateness = -1 }) end, 'lateness must be >= 0')
  raises(function() o:tumblingWindow({ size = 10, slide = 5, time = t }) end, 'use slidingWindow')
end)

test("tumblingWindow and slidingWindow leave RxLua's window and buffer as they are", function()
  local r = collect(Observable.fromRange(1, 4):window(2))
  eq(r.values, { { 1, 2 }, { 2, 3 }, { 3, 4 } })
  r = collect(Observable.fromRange(1, 5):buffer(2))
  eq(r.values, { { 1, 2 }, { 3, 4 }, 5 })
end)

-------------------------------------------------------------------------------
-- slidingWindow
-------------------------------------------------------------------------------

test('slidingWindow: an event belongs to size / slide windows', function()
  local s = Subject.create()
  local r = collect(s:slidingWindow({ size = 10, slide = 5, time = t }))
  s:onNext({ t = 7 })   -- [0, 10) and [5, 15)
  s:onNext({ t = 12 })  -- [5, 15) and [10, 20); W = 12: [0, 10) out
  eq(shape(r.values), { '0-10:1' })
  s:onNext({ t = 15 })  -- [10, 20), [15, 25); W = 15: [5, 15) out
  eq(shape(r.values), { '0-10:1', '5-15:2' })
  eq(times(r.values[2].events), { 7, 12 })
  s:onCompleted()
  eq(shape(r.values), { '0-10:1', '5-15:2', '10-20:2', '15-25:1' })
end)

test('slidingWindow: boundaries (start included, end excluded) and keyed sums', function()
  local ev = {
    { t = 0, k = 'x', v = 1 }, { t = 5, k = 'x', v = 2 }, { t = 10, k = 'x', v = 4 },
    { t = 10, k = 'y', v = 8 },
  }
  local r = collect(Observable.fromTable(ev, ipairs):slidingWindow({
    size = 10, slide = 5, time = t, key = function(x) return x.k end,
    reduce = sum, seed = 0 }))
  local got = {}
  for i, w in ipairs(r.values) do got[i] = w.key .. '@' .. w.from .. ':' .. w.value end
  -- [-5, 5) holds t = 0; [0, 10) holds 0 and 5; [5, 15) holds 5 and 10; ...
  eq(got, { 'x@-5:1', 'x@0:3', 'x@5:6', 'y@5:8', 'x@10:4', 'y@10:8' })
end)

test('slidingWindow: options', function()
  local o = Observable.empty()
  raises(function() o:slidingWindow({ size = 10, time = t }) end, 'option slide is required')
  raises(function() o:slidingWindow({ size = 10, slide = 20, time = t }) end, 'slide must be a number in (0, size]')
  raises(function() o:slidingWindow({ size = 10, slide = 0, time = t }) end, 'slide must be')
  raises(function() o:slidingWindow({ size = 10000, slide = 1, time = t }) end, 'more than 1000 windows')
end)

-------------------------------------------------------------------------------
-- joinTable
-------------------------------------------------------------------------------

local carriers = { AA = 'American Airlines', WN = 'Southwest Airlines' }
local function code(x) return x.code end

test('joinTable: hits emit (event, row) or what combine returns; misses are dropped', function()
  local stats = {}
  local ev = { { code = 'AA' }, { code = 'ZZ' }, { code = 'WN' }, {} }
  local r = collect(Observable.fromTable(ev, ipairs):joinTable(carriers, { key = code, stats = stats }))
  eq(r.values, { { { code = 'AA' }, 'American Airlines' }, { { code = 'WN' }, 'Southwest Airlines' } })
  eq(stats.hits, 2)
  eq(stats.misses, 2)
  r = collect(Observable.fromTable(ev, ipairs):joinTable(carriers, { key = code,
    combine = function(e, name, k) return k .. '=' .. name end }))
  eq(r.values, { 'AA=American Airlines', 'WN=Southwest Airlines' })
  eq(Rx.stateful, false) -- a lookup is not state
end)

test("joinTable: onMiss 'keep' and a function", function()
  local ev = { { code = 'AA' }, { code = 'ZZ' } }
  local r = collect(Observable.fromTable(ev, ipairs):joinTable(carriers, { key = code, onMiss = 'keep',
    combine = function(e, name) return e.code .. ':' .. (name or '?') end }))
  eq(r.values, { 'AA:American Airlines', 'ZZ:?' })
  local missed = {}
  r = collect(Observable.fromTable(ev, ipairs):joinTable(carriers, { key = code,
    onMiss = function(e, k) missed[#missed + 1] = k end }))
  eq(r.n, 1)
  eq(missed, { 'ZZ' })
end)

test('joinTable: errors and options', function()
  local r = collect(Observable.of({ code = 'AA' }):joinTable(carriers, { key = code,
    combine = function() error('bad row', 0) end }))
  eq(r.err, 'bad row')
  raises(function() Observable.empty():joinTable(nil, { key = code }) end, 'expected a lookup table')
  raises(function() Observable.empty():joinTable({}, {}) end, 'option key is required')
  raises(function() Observable.empty():joinTable({}, { key = code, onMiss = 'skip' }) end, "onMiss must be 'drop', 'keep' or a function")
  Rx.config.hostErrors = true
  local s = Subject.create()
  local got = {}
  s:joinTable(carriers, { key = function(x) return x.code:upper() end })
    :subscribe(function(_, name) got[#got + 1] = name end)
  raises(function() s:onNext({}) end, 'nil value')
  s:onNext({ code = 'aa' })
  eq(got, { 'American Airlines' })
end)

-------------------------------------------------------------------------------
-- joinWindow
-------------------------------------------------------------------------------

local function pair(l, r) return l.id .. '+' .. r.id end
local function key(x) return x.k end

test('joinWindow: matches on the key within the interval, as soon as both arrived', function()
  local stats = {}
  local L, R = Subject.create(), Subject.create()
  local r = collect(L:joinWindow(R, { key = key, time = t, within = 5, combine = pair,
    lateness = 100, stats = stats }))
  L:onNext({ id = 'l1', k = 'a', t = 10 })
  R:onNext({ id = 'r1', k = 'a', t = 15 })  -- |10 - 15| = 5: match
  R:onNext({ id = 'r2', k = 'a', t = 15.5 }) -- 5.5: no
  R:onNext({ id = 'r3', k = 'b', t = 10 })  -- other key
  L:onNext({ id = 'l2', k = 'a', t = 12 })  -- r1 and r2
  eq(r.values, { 'l1+r1', 'l2+r1', 'l2+r2' })
  eq(stats.matches, 3)
  L:onCompleted()
  eq(r.completed, false)
  R:onCompleted()
  eq(r.completed, true)
  eq(stats.missRight, 1) -- r3
  eq(stats.missLeft, 0)
  eq(Rx.stateful, true)
end)

test('joinWindow: default output is (left, right); separate key and time functions', function()
  local L = Observable.fromTable({ { id = 'l', code = 'AA', at = 1 } }, ipairs)
  local R = Observable.fromTable({ { id = 'r', carrier = 'AA', ts = 2 } }, ipairs)
  local r = collect(L:joinWindow(R, { leftKey = code, rightKey = function(x) return x.carrier end,
    leftTime = function(x) return x.at end, rightTime = function(x) return x.ts end, within = 1 }))
  eq(#r.values, 1)
  eq(r.values[1][1].id, 'l')
  eq(r.values[1][2].id, 'r')
end)

test('joinWindow: the watermark forgets old events, misses and late events are reported', function()
  local stats, misses, late = {}, {}, {}
  local L, R = Subject.create(), Subject.create()
  local r = collect(L:joinWindow(R, { key = key, time = t, within = 2, combine = pair,
    stats = stats,
    onMiss = function(side, e, k) misses[#misses + 1] = side .. ':' .. e.id end,
    onLate = function(side, e, time, wm) late[#late + 1] = side .. ':' .. e.id .. '@' .. wm end }))
  L:onNext({ id = 'l1', k = 'a', t = 0 })
  R:onNext({ id = 'r1', k = 'a', t = 2 })  -- match; W = 2
  L:onNext({ id = 'l2', k = 'b', t = 3 })  -- W = 3: nothing forgotten yet (0 + 2 < 3: l1 goes, matched)
  eq(stats.buffered, 2)
  R:onNext({ id = 'r2', k = 'a', t = 10 }) -- W = 10: r1 (2 + 2 < 10) and l2 (3 + 2 < 10) go; l2 unmatched
  eq(misses, { 'left:l2' })
  L:onNext({ id = 'l3', k = 'a', t = 7 })  -- 7 < 10: late, although r2 is within 3
  eq(late, { 'left:l3@10' })
  eq(stats.late, 1)
  L:onNext({ id = 'l4', k = 'a', t = 11 })  -- matches r2
  R:onNext({ id = 'r3', k = 'a', t = 12 })  -- matches l4
  L:onNext({ id = 'l5', k = 'c' })          -- no time: an error
  eq(r.values, { 'l1+r1', 'l4+r2', 'l4+r3' })
  eq(r.err, 'joinWindow: the leftTime function returned a nil (nil), not a number')
end)

test('joinWindow: at completion the unmatched events are misses, in arrival order', function()
  local misses = {}
  local L = Observable.fromTable({ { id = 'l1', k = 'a', t = 1 }, { id = 'l2', k = 'z', t = 1 } }, ipairs)
  local R = Observable.fromTable({ { id = 'r1', k = 'y', t = 1 }, { id = 'r2', k = 'a', t = 1 } }, ipairs)
  local r = collect(L:joinWindow(R, { key = key, time = t, within = 0, combine = pair,
    onMiss = function(side, e) misses[#misses + 1] = e.id end }))
  eq(r.values, { 'l1+r2' })
  eq(misses, { 'l2', 'r1' })
  eq(r.completed, true)
end)

test('joinWindow: an event without a key is a miss; errors and options', function()
  local stats = {}
  local r = collect(Observable.of({ id = 'l', t = 1 }):joinWindow(Observable.empty(),
    { key = key, time = t, within = 1, stats = stats }))
  eq(stats.missLeft, 1)
  eq(r.completed, true)
  r = collect(Observable.throw('left broke'):joinWindow(Observable.never(), { key = key, time = t, within = 1 }))
  eq(r.err, 'left broke')
  local o = Observable.empty()
  raises(function() o:joinWindow(nil, { key = key, time = t, within = 1 }) end, 'expected an observable')
  raises(function() o:joinWindow(o, { time = t, within = 1 }) end, 'option key (or leftKey) is required')
  raises(function() o:joinWindow(o, { key = key, leftTime = t, within = 1 }) end, 'option time (or rightTime) is required')
  raises(function() o:joinWindow(o, { key = key, time = t }) end, 'option within must be a finite number >= 0')
  raises(function() o:joinWindow(o, { key = key, time = t, within = 1, windows = 2 }) end, "unknown option 'windows'")
end)

test('joinWindow: the state stays bounded on a long stream in time order', function()
  local stats = {}
  local L, R = Subject.create(), Subject.create()
  local matches, most = 0, 0
  L:joinWindow(R, { key = key, time = t, within = 5, stats = stats,
    combine = function() return 1 end })
    :subscribe(function() matches = matches + 1 end)
  local keys = { 'a', 'b', 'c', 'd', 'e', 'f', 'g' }
  local n = 20000
  for i = 1, n do
    local k = keys[i % #keys + 1]
    L:onNext({ k = k, t = i })
    R:onNext({ k = k, t = i + 0.5 })
    if stats.buffered > most then most = stats.buffered end
  end
  L:onCompleted()
  R:onCompleted()
  -- each left event matches the right events of its key within 5: the
  -- same i (i + 0.5) only, as a key comes back every 7 events
  eq(matches, n)
  ok(most <= 2 * 7, 'at most ' .. most .. ' events buffered')
  eq(stats.missLeft + stats.missRight, 0)
  eq(stats.buffered, 0)
end)

test('joinWindow: two filtered views of one stage input (the pipeline case)', function()
  local input = Subject.create()
  local flights = input:filter(function(e) return e.kind == 'flight' end)
  local weather = input:filter(function(e) return e.kind == 'weather' end)
  local r = collect(flights:joinWindow(weather, { key = function(e) return e.airport end,
    time = t, within = 30, lateness = 60,
    combine = function(f, w) return f.id .. ':' .. w.sky end }))
  input:onNext({ kind = 'weather', airport = 'ORD', t = 0, sky = 'snow' })
  input:onNext({ kind = 'flight', airport = 'ORD', t = 20, id = 'AA1' })
  input:onNext({ kind = 'flight', airport = 'ORD', t = 31, id = 'AA2' })
  input:onNext({ kind = 'flight', airport = 'SEA', t = 25, id = 'AS1' })
  input:onCompleted()
  eq(r.values, { 'AA1:snow' })
  eq(r.completed, true)
end)

-------------------------------------------------------------------------------
-- keyedWatermark: the state of a keyed stage split over workers
-------------------------------------------------------------------------------

-- A partitioned stage's worker sees each key's events in their order but
-- the keys regrouped (the stage before cuts every batch by key group). A
-- deterministic shuffle that keeps each key's order: keys take turns in a
-- random order, each giving a random run of its next events.
local function regroup(events, keyOf, seed)
  local queues, order = {}, {}
  for _, e in ipairs(events) do
    local k = keyOf(e)
    if not queues[k] then queues[k] = { i = 1 } order[#order + 1] = k end
    local q = queues[k]
    q[#q + 1] = e
  end
  local x, out = seed, {}
  local function rnd(n) x = (x * 16807) % 2147483647 return math.floor(x / 256) % n + 1 end
  while #out < #events do
    local j = rnd(#order)
    while queues[order[j]].i > #queues[order[j]] do j = j % #order + 1 end
    local q = queues[order[j]]
    for _ = 1, rnd(20) do
      if q.i > #q then break end
      out[#out + 1] = q[q.i]
      q.i = q.i + 1
    end
  end
  return out
end

-- events of 12 keys, times about i / 3 with a disorder of up to 4
local function disordered(n, seed)
  local x, events = seed, {}
  for i = 1, n do
    x = (x * 16807) % 2147483647 -- exact in doubles too (LuaJIT)
    local r = math.floor(x / 256)
    events[i] = { id = i, k = 'k' .. (r % 12), t = math.floor(i / 3) + math.floor(r / 12) % 5 - 2,
                  side = math.floor(r / 60) % 2 == 0 and 'L' or 'R', v = 1 }
  end
  return events
end

local function sorted(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  return t
end

local function windowsOf(events, opts)
  local s = Subject.create()
  opts.key, opts.time, opts.reduce, opts.seed = key, t, sum, 0
  local out = {}
  s:slidingWindow(opts):subscribe(function(w)
    out[#out + 1] = w.key .. '@' .. w.from .. ':' .. w.count .. ':' .. w.value
  end)
  for _, e in ipairs(events) do s:onNext(e) end
  s:onCompleted()
  return sorted(out)
end

test('keyedWatermark: windows are the same whatever the order across keys (the partitioned case)', function()
  local events = disordered(3000, 7)
  local stats1, stats2 = {}, {}
  local one = windowsOf(events, { size = 6, slide = 3, lateness = 2,
    keyedWatermark = true, stats = stats1 })
  local other = windowsOf(regroup(events, key, 99), { size = 6, slide = 3,
    lateness = 2, keyedWatermark = true, stats = stats2 })
  ok(#one > 500, #one .. ' windows')
  ok(stats1.late > 0, 'some events are late (' .. stats1.late .. ')')
  eq(other, one)
  eq(stats2.late, stats1.late)
  -- with one watermark for all keys, the regrouping makes more events late
  local stats3 = {}
  windowsOf(regroup(events, key, 99), { size = 6, slide = 3, lateness = 2, stats = stats3 })
  ok(stats3.late > stats1.late, 'shared W: ' .. stats3.late .. ' late, keyed: ' .. stats1.late)
end)

test("keyedWatermark: a key's windows close on its own events only", function()
  local s = Subject.create()
  local late = {}
  local r = collect(s:tumblingWindow({ size = 10, time = t, key = key, keyedWatermark = true,
    onLate = function(e, time, w) late[#late + 1] = e.k .. ':' .. time .. '<' .. w end }))
  s:onNext({ k = 'a', t = 1 })
  s:onNext({ k = 'b', t = 25 })  -- b's W = 25; a's stays 1
  eq(r.n, 0)
  s:onNext({ k = 'a', t = 5 })   -- not late: a's W is 1
  s:onNext({ k = 'b', t = 3 })   -- late for b
  eq(late, { 'b:3<25' })
  s:onNext({ k = 'a', t = 10 })  -- a's W = 10: a@0-10 out
  eq(shape(r.values), { 'a@0-10:2' })
  s:onCompleted()
  eq(shape(r.values), { 'a@0-10:2', 'a@10-20:1', 'b@20-30:1' }) -- oldest end first
end)

test('keyedWatermark: options', function()
  raises(function() Observable.empty():tumblingWindow({ size = 1, time = t, keyedWatermark = true }) end,
    'tumblingWindow: option keyedWatermark needs the key option and no watermark function')
  raises(function() Observable.empty():tumblingWindow({ size = 1, time = t, key = key,
    watermark = t, keyedWatermark = true }) end, 'no watermark function')
  raises(function() Observable.empty():slidingWindow({ size = 2, slide = 1, time = t, key = key,
    keyedWatermark = 1 }) end, 'option keyedWatermark must be a boolean, got number')
  raises(function() Observable.empty():joinWindow(Observable.empty(), { key = key, time = t,
    within = 1, keyedWatermark = 'yes' }) end, 'joinWindow: option keyedWatermark must be a boolean')
end)

local function joinOf(events, opts)
  local input = Subject.create()
  local isL = function(e) return e.side == 'L' end
  local isR = function(e) return e.side == 'R' end
  opts.key, opts.time, opts.combine = key, t, function(l, r) return l.id .. '+' .. r.id end
  local missed = {}
  opts.onMiss = function(side, e) missed[#missed + 1] = side .. e.id end
  local out = {}
  input:filter(isL):joinWindow(input:filter(isR), opts):subscribe(function(m) out[#out + 1] = m end)
  for _, e in ipairs(events) do input:onNext(e) end
  input:onCompleted()
  return sorted(out), sorted(missed)
end

test('keyedWatermark: joinWindow matches and misses are the same whatever the order across keys', function()
  local events = disordered(3000, 11)
  local s1, s2, s3 = {}, {}, {}
  local m1, x1 = joinOf(events, { within = 1, lateness = 2, keyedWatermark = true, stats = s1 })
  local m2, x2 = joinOf(regroup(events, key, 5), { within = 1, lateness = 2,
    keyedWatermark = true, stats = s2 })
  ok(#m1 > 300, #m1 .. ' matches')
  ok(s1.late > 0, 'some events are late (' .. s1.late .. ')')
  eq(m2, m1)
  eq(x2, x1)
  eq(s2.late, s1.late)
  eq(s1.buffered, 0)
  -- buffers stay small: each key forgets by its own watermark
  local most, s4 = 0, {}
  local input = Subject.create()
  input:filter(function(e) return e.side == 'L' end):joinWindow(
    input:filter(function(e) return e.side == 'R' end),
    { key = key, time = t, within = 1, lateness = 2, keyedWatermark = true, stats = s4 })
    :subscribe(function() end)
  for _, e in ipairs(regroup(events, key, 5)) do
    input:onNext(e)
    if s4.buffered > most then most = s4.buffered end
  end
  ok(most < 200, 'at most ' .. most .. ' events buffered')
  -- one shared W: the regrouping makes events late
  joinOf(regroup(events, key, 5), { within = 1, lateness = 2, stats = s3 })
  ok(s3.late > s1.late, 'shared W: ' .. s3.late .. ' late, keyed: ' .. s1.late)
end)

tap.done()
