-- Tests for src/lua/lua/rx.lua.  Run: cd /work/main && lua5.4 tests/lua/test_rx.lua
package.path = 'src/lua/lua/?.lua;tests/lua/?.lua;' .. package.path

local tap = require 'tap'
local Rx = require 'rx'
local eq, ok, raises = tap.eq, tap.ok, tap.raises
local Observable, Subject = Rx.Observable, Rx.Subject

-- Every test starts in RxLua mode with a clear stateful flag.
local function test(name, fn)
  tap.test(name, function()
    Rx.config.hostErrors = false
    Rx.stateful = false
    local success, err = pcall(fn)
    Rx.config.hostErrors = false
    if not success then error(err, 0) end
  end)
end

-- Subscribes and records: values (one entry per event; a table for a
-- multi-value event), completed, err.
local function collect(observable)
  local r = { values = {}, n = 0, completed = false, err = nil }
  r.sub = observable:subscribe(function(...)
    r.n = r.n + 1
    if select('#', ...) == 1 then
      r.values[r.n] = ...
    else
      r.values[r.n] = { ... }
    end
  end, function(e)
    r.err = e
  end, function()
    r.completed = true
  end)
  return r
end

-- Values of an observable that must complete without error.
local function produce(observable)
  local r = collect(observable)
  if r.err ~= nil then error('unexpected onError: ' .. tostring(r.err), 2) end
  if not r.completed then error('observable did not complete', 2) end
  return r.values
end

local function range(a, b) return Observable.fromRange(a, b) end
local function add(a, b) return a + b end

-------------------------------------------------------------------------------
-- Observer, Subscription, Observable.create / subscribe
-------------------------------------------------------------------------------

test('Observer.create forwards and stops after completion', function()
  local got, errs, done = {}, {}, 0
  local o = Rx.Observer.create(function(x) got[#got + 1] = x end,
    function(e) errs[#errs + 1] = e end, function() done = done + 1 end)
  o:onNext(1)
  o:onNext(2)
  o:onCompleted()
  o:onNext(3)
  o:onCompleted()
  o:onError('late')
  eq(got, { 1, 2 })
  eq(done, 1)
  eq(errs, {})
  eq(o.stopped, true)
  eq(tostring(o), 'Observer')
end)

test('Observer without onError rethrows the message unchanged', function()
  local o = Rx.Observer.create()
  local err = raises(function() o:onError('boom') end)
  eq(err, 'boom')
end)

test('Subscription.create runs its action once', function()
  local calls = 0
  local s = Rx.Subscription.create(function(sub)
    calls = calls + 1
    eq(tostring(sub), 'Subscription')
  end)
  s:unsubscribe()
  s:unsubscribe()
  eq(calls, 1)
  eq(s.unsubscribed, true)
  Rx.Subscription.create():unsubscribe() -- no action is fine
end)

test('Observable.create and subscribe with functions or an observer', function()
  local unsubscribed = false
  local obs = Observable.create(function(observer)
    observer:onNext(1)
    observer:onNext(2, 'b')
    observer:onCompleted()
    return Rx.Subscription.create(function() unsubscribed = true end)
  end)
  local r = collect(obs)
  eq(r.values, { 1, { 2, 'b' } })
  eq(r.completed, true)
  r.sub:unsubscribe()
  eq(unsubscribed, true)

  local got = {}
  local observer = Rx.Observer.create(function(x) got[#got + 1] = x end)
  obs:subscribe(observer)
  eq(got, { 1, 2 })
  eq(observer.stopped, true)
  -- a subscribe function returning nothing still yields a subscription
  local s = Observable.create(function() end):subscribe(print)
  eq(type(s.unsubscribe), 'function')
  eq(tostring(obs), 'Observable')
end)

-------------------------------------------------------------------------------
-- constructors
-------------------------------------------------------------------------------

test('of', function()
  eq(produce(Observable.of(1, 2, 3)), { 1, 2, 3 })
  eq(produce(Observable.of()), {})
  local r = collect(Observable.of(1, nil, 3))
  eq(r.n, 3)
end)

test('fromRange', function()
  eq(produce(Observable.fromRange(3)), { 1, 2, 3 })
  eq(produce(Observable.fromRange(2, 4)), { 2, 3, 4 })
  eq(produce(Observable.fromRange(10, 1, -4)), { 10, 6, 2 })
  eq(produce(Observable.fromRange(1, 2, 0.5)), { 1, 1.5, 2 })
end)

test('fromTable', function()
  eq(produce(Observable.fromTable({ 'a', 'b', 'c' }, ipairs)), { 'a', 'b', 'c' })
  eq(produce(Observable.fromTable({ 'a', 'b' }, ipairs, true)), { { 'a', 1 }, { 'b', 2 } })
  local vals = produce(Observable.fromTable({ x = 1, y = 2 }))
  table.sort(vals)
  eq(vals, { 1, 2 })
  local pairsWithKeys = produce(Observable.fromTable({ x = 1 }, pairs, true))
  eq(pairsWithKeys, { { 1, 'x' } })
end)

test('fromCoroutine (synchronous)', function()
  local obs = Observable.fromCoroutine(function()
    coroutine.yield(1)
    coroutine.yield(2)
    return 'returned'
  end)
  eq(produce(obs), { 1, 2, 'returned' })
  -- errors inside the coroutine go to onError
  local r = collect(Observable.fromCoroutine(function()
    coroutine.yield(1)
    error('broken', 0)
  end))
  eq(r.values, { 1 })
  eq(r.err, 'broken')
end)

test('fromCoroutine with a CooperativeScheduler', function()
  local scheduler = Rx.CooperativeScheduler.create()
  local r = collect(Observable.fromCoroutine(function()
    for i = 1, 3 do coroutine.yield(i * 10) end
  end, scheduler))
  eq(r.values, {})
  scheduler:update(1)
  eq(r.values, { 10 })
  scheduler:update(1)
  scheduler:update(1)
  eq(r.values, { 10, 20, 30 })
  eq(r.completed, false)
  scheduler:update(1)
  eq(r.completed, true)
  eq(scheduler:isEmpty(), true)
end)

test('fromFileByLine', function()
  local name = os.tmpname()
  local f = assert(io.open(name, 'w'))
  f:write('alpha\nbeta\n\ngamma')
  f:close()
  eq(produce(Observable.fromFileByLine(name)), { 'alpha', 'beta', '', 'gamma' })
  -- the Subject spelling of the seed paper
  eq(produce(Subject.fromFileByLine(name):map(string.upper)), { 'ALPHA', 'BETA', '', 'GAMMA' })
  os.remove(name)
  local r = collect(Observable.fromFileByLine(name))
  eq(r.completed, false)
  ok(type(r.err) == 'string' and r.err:find(name, 1, true), 'error names the file')
end)

test('fromFileByLine without io (the enclave sandbox) reports onError', function()
  local savedIo = io
  io = nil
  local success, r = pcall(collect, Observable.fromFileByLine('/etc/hostname'))
  io = savedIo
  assert(success, r)
  eq(r.n, 0)
  ok(type(r.err) == 'string' and r.err:find('io is not available', 1, true), tostring(r.err))
end)

test('empty, never, throw', function()
  eq(produce(Observable.empty()), {})
  local r = collect(Observable.never())
  eq(r.n, 0)
  eq(r.completed, false)
  eq(r.err, nil)
  r = collect(Observable.throw('bad'))
  eq(r.err, 'bad')
  eq(r.completed, false)
end)

test('defer builds a fresh observable per subscription', function()
  local calls = 0
  local obs = Observable.defer(function()
    calls = calls + 1
    return Observable.of(calls)
  end)
  eq(calls, 0)
  eq(produce(obs), { 1 })
  eq(produce(obs), { 2 })
  eq(collect(Observable.defer(function() error('nope', 0) end)).err, 'nope')
  raises(function() Observable.defer(5):subscribe() end, 'defer: expected a factory function')
end)

test('replicate', function()
  eq(produce(Observable.replicate('x', 3)), { 'x', 'x', 'x' })
  eq(produce(Observable.replicate('x', 0)), {})
end)

-------------------------------------------------------------------------------
-- operators
-------------------------------------------------------------------------------

test('all', function()
  local even = function(x) return x % 2 == 0 end
  eq(produce(Observable.of(2, 4, 6):all(even)), { true })
  eq(produce(Observable.of(2, 3, 4):all(even)), { false })
  eq(produce(Observable.empty():all(even)), { true })
  eq(produce(Observable.of(1, false):all()), { false })
end)

test('amb', function()
  local a, b = Subject.create(), Subject.create()
  local r = collect(Observable.amb(a, b))
  b:onNext('b1')
  a:onNext('a1')
  b:onNext('b2')
  b:onCompleted()
  eq(r.values, { 'b1', 'b2' })
  eq(r.completed, true)
  eq(#a.observers, 0) -- the loser was unsubscribed
  -- synchronous sources: the first one wins
  eq(produce(Observable.of(1, 2):amb(Observable.of(3))), { 1, 2 })
end)

test('average', function()
  eq(produce(Observable.of(1, 2, 3, 4):average()), { 2.5 })
  eq(produce(Observable.empty():average()), {})
end)

test('buffer', function()
  eq(produce(range(1, 5):buffer(2)), { { 1, 2 }, { 3, 4 }, 5 })
  eq(produce(range(1, 4):buffer(2)), { { 1, 2 }, { 3, 4 } })
  local s = Subject.create()
  local r = collect(s:buffer(3))
  s:onNext(1, 2)
  eq(r.n, 0)
  s:onNext(3, 4)
  eq(r.values, { { 1, 2, 3 } })
  s:onError('x') -- flushes before the error
  eq(r.values, { { 1, 2, 3 }, 4 })
  eq(r.err, 'x')
  raises(function() range(1, 2):buffer() end, 'Expected a number')
end)

test('catch', function()
  local failing = Observable.create(function(o)
    o:onNext(1)
    o:onError('oops')
  end)
  eq(produce(failing:catch(function(e) return Observable.of(e, 2) end)), { 1, 'oops', 2 })
  eq(produce(failing:catch(Observable.of(9))), { 1, 9 })
  eq(produce(failing:catch()), { 1 })
  local r = collect(failing:catch(function() error('handler broke', 0) end))
  eq(r.err, 'handler broke')
  r = collect(failing:catch(function() return nil end))
  eq(r.err, 'oops')
end)

test('combineLatest', function()
  local a, b = Subject.create(), Subject.create()
  local r = collect(a:combineLatest(b, function(x, y) return x .. y end))
  a:onNext('a1')
  eq(r.n, 0)
  b:onNext('b1')
  a:onNext('a2')
  b:onNext('b2')
  eq(r.values, { 'a1b1', 'a2b1', 'a2b2' })
  a:onCompleted()
  eq(r.completed, false)
  b:onCompleted()
  eq(r.completed, true)
  -- without combinator: all latest values
  local c, d = Subject.create(), Subject.create()
  r = collect(Observable.combineLatest(c, d))
  c:onNext(1)
  d:onNext(2)
  eq(r.values, { { 1, 2 } })
end)

test('compact', function()
  eq(produce(Observable.of(1, false, 2, nil, 3):compact()), { 1, 2, 3 })
end)

test('concat', function()
  eq(produce(Observable.of(1, 2):concat(Observable.of(3), Observable.of(4, 5))),
    { 1, 2, 3, 4, 5 })
  eq(produce(Observable.of(1):concat()), { 1 })
  local s = Subject.create()
  local r = collect(s:concat(Observable.of('end')))
  s:onNext('a')
  eq(r.values, { 'a' })
  s:onCompleted()
  eq(r.values, { 'a', 'end' })
  eq(r.completed, true)
end)

test('contains', function()
  eq(produce(Observable.of(1, 2, 3):contains(2)), { true })
  eq(produce(Observable.of(1, 2, 3):contains(7)), { false })
  eq(produce(Observable.empty():contains(1)), { false })
  local s = Subject.create()
  local r = collect(s:contains('x'))
  s:onNext('a', 'x') -- any value of a multi-value event counts
  eq(r.values, { true })
  eq(r.completed, true)
  eq(#s.observers, 0)
end)

test('count', function()
  eq(produce(range(1, 10):count()), { 10 })
  eq(produce(range(1, 10):count(function(x) return x > 7 end)), { 3 })
  eq(produce(Observable.empty():count()), { 0 })
end)

test('debounce with a CooperativeScheduler', function()
  local scheduler = Rx.CooperativeScheduler.create()
  local s = Subject.create()
  local r = collect(s:debounce(1, scheduler))
  s:onNext(1)
  scheduler:update(0.5)
  s:onNext(2) -- cancels 1
  scheduler:update(0.5)
  eq(r.values, {})
  scheduler:update(0.6)
  eq(r.values, { 2 })
  s:onNext(3)
  s:onCompleted()
  scheduler:update(1)
  eq(r.values, { 2, 3 })
  eq(r.completed, true)
  raises(function() s:debounce(1) end, 'scheduler')
end)

test('delay with a CooperativeScheduler', function()
  local scheduler = Rx.CooperativeScheduler.create()
  local r = collect(Observable.of(1, 2):delay(2, scheduler))
  eq(r.values, {})
  scheduler:update(1)
  eq(r.values, {})
  scheduler:update(1)
  eq(r.values, { 1, 2 })
  eq(r.completed, true)
  -- delay as a function
  local s2 = Rx.CooperativeScheduler.create()
  local r2 = collect(Observable.of('x'):delay(function() return 5 end, s2))
  s2:update(4)
  eq(r2.n, 0)
  s2:update(1)
  eq(r2.values, { 'x' })
  raises(function() Observable.of(1):delay(1) end, 'scheduler')
end)

test('ImmediateScheduler runs at once', function()
  local ran = false
  local sub = Rx.ImmediateScheduler.create():schedule(function() ran = true end)
  eq(ran, true)
  eq(type(sub.unsubscribe), 'function')
end)

test('CooperativeScheduler honours delays, yields and cancellation', function()
  local sch = Rx.CooperativeScheduler.create(10)
  local log = {}
  sch:schedule(function()
    log[#log + 1] = 'a'
    coroutine.yield(2)
    log[#log + 1] = 'a2'
  end, 1)
  local cancelled = sch:schedule(function() log[#log + 1] = 'never' end, 1)
  cancelled:unsubscribe()
  sch:update(0.5)
  eq(log, {})
  sch:update(0.5)
  eq(log, { 'a' })
  sch:update(1)
  eq(log, { 'a' })
  sch:update(1)
  eq(log, { 'a', 'a2' })
  eq(sch:isEmpty(), true)
  eq(sch.currentTime, 13)
  sch:schedule(function() error('task failed', 0) end)
  raises(function() sch:update() end, 'task failed')
  eq(sch:isEmpty(), true)
end)

test('defaultIfEmpty', function()
  eq(produce(Observable.empty():defaultIfEmpty('d')), { 'd' })
  eq(produce(Observable.empty():defaultIfEmpty(1, 2)), { { 1, 2 } })
  eq(produce(Observable.of(5):defaultIfEmpty('d')), { 5 })
end)

test('distinct', function()
  eq(produce(Observable.of(1, 2, 1, 3, 2, 'a', 'a'):distinct()), { 1, 2, 3, 'a' })
  local r = collect(Observable.of(nil, nil, 0 / 0, 0 / 0):distinct())
  eq(r.n, 3) -- nil once, each NaN (never equal to itself)
end)

test('distinctUntilChanged', function()
  eq(produce(Observable.of(1, 1, 2, 2, 1, 3, 3):distinctUntilChanged()), { 1, 2, 1, 3 })
  local sameParity = function(a, b) return a % 2 == b % 2 end
  eq(produce(Observable.of(1, 3, 2, 4, 5):distinctUntilChanged(sameParity)), { 1, 2, 5 })
end)

test('elementAt', function()
  eq(produce(range(1, 5):elementAt(3)), { 3 })
  eq(produce(range(1, 2):elementAt(3)), {})
  raises(function() range(1, 2):elementAt() end, 'Expected a number')
end)

test('filter', function()
  eq(produce(range(1, 6):filter(function(x) return x % 2 == 0 end)), { 2, 4, 6 })
  eq(produce(Observable.of(1, false, 'x'):filter()), { 1, 'x' })
end)

test('find', function()
  eq(produce(range(1, 10):find(function(x) return x * x > 20 end)), { 5 })
  eq(produce(range(1, 3):find(function(x) return x > 5 end)), {})
end)

test('first', function()
  eq(produce(range(4, 9):first()), { 4 })
  eq(produce(Observable.empty():first()), {})
end)

test('flatMap and flatten', function()
  eq(produce(range(1, 3):flatMap(function(x) return Observable.of(x, x * 10) end)),
    { 1, 10, 2, 20, 3, 30 })
  local outer = Subject.create()
  local inner1, inner2 = Subject.create(), Subject.create()
  local r = collect(outer:flatten())
  outer:onNext(inner1)
  outer:onNext(inner2)
  inner2:onNext('b')
  inner1:onNext('a')
  outer:onCompleted()
  eq(r.completed, false) -- inners still running
  inner1:onCompleted()
  inner2:onNext('c')
  inner2:onCompleted()
  eq(r.values, { 'b', 'a', 'c' })
  eq(r.completed, true)
end)

test('flatMapLatest and switch', function()
  local outer = Subject.create()
  local i1, i2 = Subject.create(), Subject.create()
  local r = collect(outer:flatMapLatest(function(x) return x end))
  outer:onNext(i1)
  i1:onNext(1)
  outer:onNext(i2)
  i1:onNext(2) -- ignored, switched away
  i2:onNext(3)
  eq(r.values, { 1, 3 })
  eq(#i1.observers, 0)
  outer:onCompleted()
  eq(r.completed, false)
  i2:onCompleted()
  eq(r.completed, true)
  eq(produce(Observable.of(Observable.of(1, 2), Observable.of(3)):switch()), { 1, 2, 3 })
end)

test('ignoreElements', function()
  local r = collect(range(1, 3):ignoreElements())
  eq(r.n, 0)
  eq(r.completed, true)
  eq(collect(Observable.throw('e'):ignoreElements()).err, 'e')
end)

test('last', function()
  eq(produce(range(1, 4):last()), { 4 })
  eq(produce(Observable.empty():last()), {})
  local s = Subject.create()
  local r = collect(s:last())
  s:onNext(1)
  s:onNext(2, 3)
  s:onCompleted()
  eq(r.values, { { 2, 3 } })
end)

test('map', function()
  eq(produce(range(1, 3):map(function(x) return x * 2 end)), { 2, 4, 6 })
  eq(produce(range(1, 2):map(function(x) return x, -x end)), { { 1, -1 }, { 2, -2 } })
  eq(produce(Observable.of(7):map()), { 7 })
end)

test('max, min, sum', function()
  eq(produce(Observable.of(3, 9, 1, 4):max()), { 9 })
  eq(produce(Observable.of(3, 9, 1, 4):min()), { 1 })
  eq(produce(range(1, 100):sum()), { 5050 })
  eq(produce(Observable.empty():sum()), { 0 })
end)

test('merge', function()
  local a, b = Subject.create(), Subject.create()
  local r = collect(a:merge(b))
  a:onNext(1)
  b:onNext(2)
  a:onNext(3)
  a:onCompleted()
  eq(r.completed, false)
  b:onNext(4)
  b:onCompleted()
  eq(r.values, { 1, 2, 3, 4 })
  eq(r.completed, true)
  eq(produce(Observable.of(1):merge(Observable.of(2), Observable.of(3))), { 1, 2, 3 })
end)

test('pack and unpack', function()
  local packed = produce(Observable.create(function(o)
    o:onNext(1, 2)
    o:onCompleted()
  end):pack())
  eq(packed, { { 1, 2, n = 2 } })
  eq(produce(Observable.of({ 1, 2, 3 }):unpack()), { { 1, 2, 3 } })
end)

test('partition', function()
  local evens, odds = range(1, 6):partition(function(x) return x % 2 == 0 end)
  eq(produce(evens), { 2, 4, 6 })
  eq(produce(odds), { 1, 3, 5 })
end)

test('pluck', function()
  local people = { { name = { first = 'Ada' }, age = 36 }, { name = { first = 'Bob' }, age = 17 } }
  eq(produce(Observable.fromTable(people, ipairs):pluck('age')), { 36, 17 })
  eq(produce(Observable.fromTable(people, ipairs):pluck('name', 'first')), { 'Ada', 'Bob' })
  eq(produce(Observable.of({ 'x', 'y' }):pluck(2)), { 'y' })
  raises(function() Observable.of(1):pluck({}) end, 'Key must be')
  local r = collect(Observable.of(5):pluck('k'))
  ok(r.err ~= nil, 'indexing a number is routed to onError')
end)

test('reduce', function()
  eq(produce(range(1, 4):reduce(add)), { 10 })
  eq(produce(range(1, 4):reduce(add, 100)), { 110 })
  eq(produce(Observable.empty():reduce(add)), {})
  eq(produce(Observable.empty():reduce(add, 'seed')), { 'seed' })
  -- only emits on completion
  local s = Subject.create()
  local r = collect(s:reduce(add, 0))
  s:onNext(1)
  s:onNext(2)
  eq(r.n, 0)
  s:onCompleted()
  eq(r.values, { 3 })
  -- multi-value events reach the accumulator
  local m = Subject.create()
  local rm = collect(m:reduce(function(acc, k, v) acc[k] = v return acc end, {}))
  m:onNext('a', 1)
  m:onNext('b', 2)
  m:onCompleted()
  eq(rm.values, { { a = 1, b = 2 } })
end)

test('reject', function()
  eq(produce(range(1, 6):reject(function(x) return x % 3 == 0 end)), { 1, 2, 4, 5 })
end)

test('retry', function()
  local attempts = 0
  local flaky = Observable.create(function(o)
    attempts = attempts + 1
    o:onNext(attempts)
    if attempts < 3 then o:onError('fail ' .. attempts) else o:onCompleted() end
  end)
  eq(produce(flaky:retry()), { 1, 2, 3 })
  attempts = 0
  local r = collect(flaky:retry(1))
  eq(r.values, { 1, 2 })
  eq(r.err, 'fail 2')
end)

test('sample', function()
  local src, sampler = Subject.create(), Subject.create()
  local r = collect(src:sample(sampler))
  sampler:onNext()
  eq(r.n, 0)
  src:onNext(1)
  src:onNext(2)
  sampler:onNext()
  sampler:onNext()
  src:onNext(3)
  sampler:onNext()
  eq(r.values, { 2, 2, 3 })
  sampler:onCompleted()
  eq(r.completed, true)
  raises(function() src:sample() end, 'Expected an Observable')
end)

test('scan', function()
  eq(produce(range(1, 4):scan(add, 0)), { 1, 3, 6, 10 })
  eq(produce(range(1, 4):scan(add)), { 3, 6, 10 })
end)

test('skip', function()
  eq(produce(range(1, 5):skip(2)), { 3, 4, 5 })
  eq(produce(range(1, 3):skip()), { 2, 3 })
  eq(produce(range(1, 3):skip(5)), {})
end)

test('skipLast', function()
  eq(produce(range(1, 5):skipLast(2)), { 1, 2, 3 })
  eq(produce(range(1, 2):skipLast(3)), {})
end)

test('skipUntil', function()
  local src, trigger = Subject.create(), Subject.create()
  local r = collect(src:skipUntil(trigger))
  src:onNext(1)
  trigger:onNext('go')
  src:onNext(2)
  src:onNext(3)
  src:onCompleted()
  eq(r.values, { 2, 3 })
  eq(r.completed, true)
end)

test('skipWhile', function()
  eq(produce(Observable.of(1, 2, 5, 1, 6):skipWhile(function(x) return x < 3 end)), { 5, 1, 6 })
end)

test('startWith', function()
  eq(produce(range(1, 2):startWith(0)), { 0, 1, 2 })
  eq(produce(range(1, 1):startWith('a', 'b')), { { 'a', 'b' }, 1 })
end)

test('take', function()
  eq(produce(range(1, 10):take(3)), { 1, 2, 3 })
  eq(produce(range(1, 10):take()), { 1 })
  eq(produce(range(1, 10):take(0)), {})
  eq(produce(range(1, 2):take(5)), { 1, 2 })
  local s = Subject.create()
  local r = collect(s:take(2))
  s:onNext('a')
  s:onNext('b')
  s:onNext('c')
  eq(r.values, { 'a', 'b' })
  eq(r.completed, true)
  eq(#s.observers, 0) -- unsubscribed from the subject
end)

test('takeLast', function()
  eq(produce(range(1, 5):takeLast(2)), { 4, 5 })
  eq(produce(range(1, 2):takeLast(5)), { 1, 2 })
end)

test('takeUntil', function()
  local src, stop = Subject.create(), Subject.create()
  local r = collect(src:takeUntil(stop))
  src:onNext(1)
  src:onNext(2)
  stop:onNext(true)
  src:onNext(3)
  eq(r.values, { 1, 2 })
  eq(r.completed, true)
  eq(#src.observers, 0)
end)

test('takeWhile', function()
  eq(produce(Observable.of(1, 2, 5, 1):takeWhile(function(x) return x < 3 end)), { 1, 2 })
end)

test('tap', function()
  local seen, errs, done = {}, {}, 0
  eq(produce(range(1, 3):tap(function(x) seen[#seen + 1] = x end, nil,
    function() done = done + 1 end)), { 1, 2, 3 })
  eq(seen, { 1, 2, 3 })
  eq(done, 1)
  local r = collect(Observable.throw('e'):tap(nil, function(e) errs[#errs + 1] = e end))
  eq(errs, { 'e' })
  eq(r.err, 'e')
  r = collect(range(1, 3):tap(function(x) if x == 2 then error('tap failed', 0) end end))
  eq(r.values, { 1 })
  eq(r.err, 'tap failed')
end)

test('unwrap', function()
  local obs = Observable.create(function(o)
    o:onNext(1, 2, 3)
    o:onNext(4)
    o:onCompleted()
  end)
  eq(produce(obs:unwrap()), { 1, 2, 3, 4 })
end)

test('window', function()
  eq(produce(range(1, 5):window(2)), { { 1, 2 }, { 2, 3 }, { 3, 4 }, { 4, 5 } })
  eq(produce(range(1, 3):window(3)), { { 1, 2, 3 } })
  eq(produce(range(1, 2):window(3)), {})
end)

test('with', function()
  local main, other = Subject.create(), Subject.create()
  local r = collect(main:with(other))
  main:onNext(1)
  other:onNext('x')
  main:onNext(2)
  other:onNext('y')
  other:onNext('z')
  main:onNext(3)
  eq(r.values, { { 1 }, { 2, 'x' }, { 3, 'z' } })
end)

test('zip', function()
  local a, b = Subject.create(), Subject.create()
  local r = collect(Observable.zip(a, b))
  a:onNext(1)
  a:onNext(2)
  b:onNext('a')
  eq(r.values, { { 1, 'a' } })
  b:onNext('b')
  b:onNext('c')
  eq(r.values, { { 1, 'a' }, { 2, 'b' } })
  a:onCompleted() -- a has nothing queued: zip completes
  eq(r.completed, true)
  -- a completed source whose queue drains completes the zip at once
  local c, d = Subject.create(), Subject.create()
  local rc = collect(c:zip(d))
  c:onNext(1)
  c:onCompleted()
  eq(rc.completed, false)
  d:onNext('x')
  eq(rc.values, { { 1, 'x' } })
  eq(rc.completed, true)
  eq(#d.observers, 0)
  eq(produce(range(1, 3):zip(Observable.of('a', 'b'))), { { 1, 'a' }, { 2, 'b' } })
  eq(produce(range(1, 3):zip(range(4, 6), add)), { 5, 7, 9 })
end)

test('dump prints every notification', function()
  local lines = {}
  local saved = print
  print = function(s) lines[#lines + 1] = s end
  local success, err = pcall(function() Observable.of(1, 2):dump('d') end)
  print = saved
  assert(success, err)
  eq(lines, { 'd onNext: 1', 'd onNext: 2', 'd onCompleted' })
end)

test('util helpers', function()
  eq(Rx.util.constant(1, 2)(), 1)
  eq({ Rx.util.constant(1, 2)() }, { 1, 2 })
  eq(Rx.util.isa(Subject.create(), Rx.Observable), true)
  eq(Rx.util.isa(Rx.BehaviorSubject.create(), Subject), true)
  eq(Rx.util.isa({}, Subject), false)
  eq(select('#', Rx.util.identity(1, nil)), 2)
end)

-------------------------------------------------------------------------------
-- subjects
-------------------------------------------------------------------------------

test('Subject multicasts, is callable, unsubscribes', function()
  local s = Subject.create()
  local r1 = collect(s)
  local r2 = collect(s:map(function(x) return x * 10 end))
  s:onNext(1)
  s(2) -- callable like RxLua
  r1.sub:unsubscribe()
  s:onNext(3)
  eq(r1.values, { 1, 2 })
  eq(r2.values, { 10, 20, 30 })
  s:onCompleted()
  eq(r2.completed, true)
  eq(r1.completed, false)
  s:onNext(4) -- after completion: ignored
  eq(r2.values, { 10, 20, 30 })
  -- late subscribers get the terminal notification
  eq(collect(s).completed, true)
  eq(tostring(s), 'Subject')
end)

test('Subject onError and multi-value events', function()
  local s = Subject.create()
  local r = collect(s)
  s:onNext('k', 'v')
  s:onError('bad')
  eq(r.values, { { 'k', 'v' } })
  eq(r.err, 'bad')
  eq(collect(s).err, 'bad')
end)

test('Subject: an observer may unsubscribe while an event is delivered', function()
  local s = Subject.create()
  local got = {}
  local sub
  sub = s:subscribe(function(x) got[#got + 1] = 'a' .. x sub:unsubscribe() end)
  s:subscribe(function(x) got[#got + 1] = 'b' .. x end)
  s:onNext(1)
  s:onNext(2)
  eq(got, { 'a1', 'b1', 'b2' })
end)

test('Subject used as an observer', function()
  local s = Subject.create()
  local r = collect(s:map(function(x) return -x end))
  range(1, 3):subscribe(s)
  eq(r.values, { -1, -2, -3 })
  eq(r.completed, true)
end)

test('Subject falls back to Observable for static constructors', function()
  eq(produce(Subject.fromTable({ 1, 2 }, ipairs)), { 1, 2 })
  eq(produce(Subject.of(3)), { 3 })
  eq(produce(Subject.fromRange(2)), { 1, 2 })
  eq(Subject.fromTable == Observable.fromTable, true)
  eq(getmetatable(Subject.of(1)), Observable)
end)

test('BehaviorSubject', function()
  local b = Rx.BehaviorSubject.create(1)
  eq(b:getValue(), 1)
  local r = collect(b)
  eq(r.values, { 1 })
  b:onNext(2)
  b(3)
  eq(b:getValue(), 3)
  local r2 = collect(b)
  eq(r2.values, { 3 })
  b:onNext('x', 'y')
  eq({ b:getValue() }, { 'x', 'y' })
  eq(r.values, { 1, 2, 3, { 'x', 'y' } })
  local empty = Rx.BehaviorSubject.create()
  eq(empty:getValue(), nil)
  eq(collect(empty).n, 0)
  b:onCompleted()
  eq(r.completed, true)
  eq(tostring(b), 'BehaviorSubject')
end)

test('ReplaySubject', function()
  local s = Rx.ReplaySubject.create(2)
  s:onNext(1)
  s:onNext(2)
  s(3)
  local r = collect(s)
  eq(r.values, { 2, 3 })
  s:onNext(4)
  eq(r.values, { 2, 3, 4 })
  s:onCompleted()
  local late = collect(s)
  eq(late.values, { 3, 4 })
  eq(late.completed, true)
  local all = Rx.ReplaySubject.create()
  all:onNext('a', 'b')
  all:onNext('c')
  eq(collect(all).values, { { 'a', 'b' }, 'c' })
end)

test('AsyncSubject', function()
  local s = Rx.AsyncSubject.create()
  local r = collect(s)
  s:onNext(1)
  s(2)
  eq(r.n, 0)
  s:onCompleted()
  eq(r.values, { 2 })
  eq(r.completed, true)
  local late = collect(s)
  eq(late.values, { 2 })
  eq(late.completed, true)
  local e = Rx.AsyncSubject.create()
  local re = collect(e)
  e:onNext(1)
  e:onError('x')
  eq(re.n, 0)
  eq(re.err, 'x')
end)

-------------------------------------------------------------------------------
-- error routing
-------------------------------------------------------------------------------

test('hostErrors=false: callback errors are routed to onError', function()
  eq(Rx.config.hostErrors, false)
  local s = Subject.create()
  local r = collect(s:map(function(x)
    if x == 2 then error('bad value', 0) end
    return x
  end))
  s:onNext(1)
  s:onNext(2) -- does not raise
  s:onNext(3) -- the observer is stopped
  eq(r.values, { 1 })
  eq(r.err, 'bad value')
  for _, make in ipairs({
    function(o) return o:filter(function() error('f', 0) end) end,
    function(o) return o:reduce(function() error('f', 0) end, 0) end,
    function(o) return o:scan(function() error('f', 0) end, 0) end,
    function(o) return o:takeWhile(function() error('f', 0) end) end,
    function(o) return o:count(function() error('f', 0) end) end,
  }) do
    eq(collect(make(range(1, 3))).err, 'f')
  end
  -- a string error carries the position, as with RxLua
  local r2 = collect(range(1, 1):map(function(x) return x + nil end))
  ok(r2.err:find('arithmetic', 1, true), r2.err)
end)

test('hostErrors=false: errors in a subscriber with onError are routed too', function()
  local s = Subject.create()
  local err
  s:subscribe(function(x) if x == 2 then error('sub', 0) end end, function(e) err = e end)
  s:onNext(1)
  s:onNext(2)
  eq(err, 'sub')
end)

test('hostErrors=false: without onError the error is raised (as RxLua)', function()
  local s = Subject.create()
  s:map(function() error('unhandled', 0) end):subscribe(function() end)
  local e = raises(function() s:onNext(1) end)
  eq(e, 'unhandled')
end)

test('hostErrors=true: errors propagate out of onNext and the stream goes on', function()
  Rx.config.hostErrors = true
  eq(Rx.config.hostErrors, true)
  local s = Subject.create()
  local r = collect(s
    :map(function(x) if x == 'bad' then error('map failed', 0) end return x end)
    :filter(function(x) if x == 13 then error('filter failed', 0) end return x > 0 end))
  s:onNext(1)
  eq(raises(function() s:onNext('bad') end), 'map failed')
  eq(raises(function() s:onNext(13) end), 'filter failed')
  s:onNext(-1)
  s:onNext(2)
  s:onCompleted()
  eq(r.values, { 1, 2 })
  eq(r.err, nil)
  eq(r.completed, true)
end)

test('hostErrors=true: a failing reduce keeps its accumulator', function()
  Rx.config.hostErrors = true
  local s = Subject.create()
  local r = collect(s:reduce(function(acc, x)
    if x < 0 then error('negative', 0) end
    return acc + x
  end, 0))
  s:onNext(5)
  eq(raises(function() s:onNext(-1) end), 'negative')
  s:onNext(10)
  s:onCompleted()
  eq(r.values, { 15 })
  -- seedless reduce and scan too
  local s2 = Subject.create()
  local r2 = collect(s2:scan(function(acc, x) return acc + x end))
  s2:onNext(1)
  s2:onNext(2)
  raises(function() s2:onNext('x') end)
  s2:onNext(3)
  eq(r2.values, { 3, 6 })
end)

test('hostErrors=true: subscriber errors propagate even with onError', function()
  Rx.config.hostErrors = true
  local s = Subject.create()
  local errs = {}
  local got = {}
  s:subscribe(function(x)
    if x == 2 then error('sink', 0) end
    got[#got + 1] = x
  end, function(e) errs[#errs + 1] = e end)
  s:onNext(1)
  eq(raises(function() s:onNext(2) end), 'sink')
  s:onNext(3)
  eq(got, { 1, 3 })
  eq(errs, {})
end)

test('hostErrors=true: every operator lets callback errors propagate', function()
  Rx.config.hostErrors = true
  local function boom(...)
    for i = 1, select('#', ...) do
      if select(i, ...) == 2 then error('cb', 0) end
    end
    return ...
  end
  local makers = {
    function(o) return o:map(boom) end,
    function(o) return o:filter(boom) end,
    function(o) return o:reject(boom) end,
    function(o) return o:reduce(boom, 0) end,
    function(o) return o:scan(boom, 0) end,
    function(o) return o:count(boom) end,
    function(o) return o:all(boom) end,
    function(o) return o:find(function(x) boom(x) return false end) end,
    function(o) return o:takeWhile(boom) end,
    function(o) return o:skipWhile(boom) end,
    function(o) return o:distinctUntilChanged(boom) end,
    function(o) return o:tap(boom) end,
    function(o) return o:combineLatest(Observable.of(1), boom) end,
    function(o) return o:tumblingWindow({ size = 1, time = boom }) end,
    function(o) return o:slidingWindow({ size = 2, slide = 1, time = function() return 0 end, reduce = boom, seed = 0 }) end,
    function(o) return o:joinTable({}, { key = boom }) end,
    function(o) return o:joinWindow(Observable.never(), { key = boom, time = function() return 0 end, within = 1 }) end,
    function(o) return o:pluck('k') end,
  }
  for i, make in ipairs(makers) do
    local s = Subject.create()
    local r = collect(make(s))
    s:onNext(i == #makers and { k = 1 } or 1)
    local success, err = pcall(s.onNext, s, 2)
    eq(success, false, 'operator #' .. i)
    ok(err == 'cb' or tostring(err):find('index', 1, true), tostring(err))
    eq(r.err, nil, 'operator #' .. i)
  end
  raises(function()
    Observable.defer(function() error('cb', 0) end):subscribe(function() end)
  end, 'cb')
end)

test('hostErrors is read per event (chains built before the switch)', function()
  local s = Subject.create()
  local r = collect(s:map(function(x) if x == 0 then error('zero', 0) end return x end))
  Rx.config.hostErrors = true
  raises(function() s:onNext(0) end, 'zero')
  Rx.config.hostErrors = false
  s:onNext(0)
  eq(r.err, 'zero')
end)

test('Rx.config.hostErrors normalises to a boolean', function()
  Rx.config.hostErrors = 1
  eq(Rx.config.hostErrors, true)
  Rx.config.hostErrors = nil
  eq(Rx.config.hostErrors, false)
end)

test('Rx.config keeps other keys', function()
  Rx.config.somethingElse = 42
  eq(Rx.config.somethingElse, 42)
  local keys = {}
  for k in pairs(Rx.config) do keys[#keys + 1] = k end
  table.sort(keys)
  eq(keys, { 'hostErrors', 'somethingElse' })
  Rx.config.somethingElse = nil
end)

-------------------------------------------------------------------------------
-- Rx.stateful
-------------------------------------------------------------------------------

test('Rx.stateful stays false for stateless chains', function()
  eq(Rx.stateful, false)
  local s = Subject.create()
  s:map(tostring):filter(function() return true end):reject(function() return false end)
    :pluck(1):tap(print):skip(1):take(2):compact():flatMap(Observable.of)
  eq(Rx.stateful, false)
end)

test('Rx.stateful is set by every stateful operator', function()
  local other = Observable.of(1)
  local makers = {
    reduce = function(o) return o:reduce(add) end,
    scan = function(o) return o:scan(add) end,
    count = function(o) return o:count() end,
    sum = function(o) return o:sum() end,
    min = function(o) return o:min() end,
    max = function(o) return o:max() end,
    average = function(o) return o:average() end,
    distinct = function(o) return o:distinct() end,
    distinctUntilChanged = function(o) return o:distinctUntilChanged() end,
    buffer = function(o) return o:buffer(2) end,
    window = function(o) return o:window(2) end,
    last = function(o) return o:last() end,
    takeLast = function(o) return o:takeLast(1) end,
    skipLast = function(o) return o:skipLast(1) end,
    zip = function(o) return o:zip(other) end,
    combineLatest = function(o) return o:combineLatest(other) end,
    all = function(o) return o:all() end,
    contains = function(o) return o:contains(1) end,
    find = function(o) return o:find() end,
    first = function(o) return o:first() end,
    elementAt = function(o) return o:elementAt(1) end,
    defaultIfEmpty = function(o) return o:defaultIfEmpty(0) end,
    concat = function(o) return o:concat(other) end,
    tumblingWindow = function(o) return o:tumblingWindow({ size = 1, time = add }) end,
    slidingWindow = function(o) return o:slidingWindow({ size = 2, slide = 1, time = add }) end,
    joinWindow = function(o) return o:joinWindow(other, { key = add, time = add, within = 0 }) end,
  }
  local count = 0
  for name, make in pairs(makers) do
    Rx.stateful = false
    make(Subject.create())
    eq(Rx.stateful, true, name)
    count = count + 1
  end
  eq(count, 26)
end)

-------------------------------------------------------------------------------
-- RxLua's documented behaviour (issue 11): each test below failed before
-- rx.lua was changed to match.
-------------------------------------------------------------------------------

-- A callable table, like the spies of RxLua's own test suite: records the
-- arguments of every call.
local function spy()
  local calls = {}
  return setmetatable(calls, { __call = function(self, ...)
    self[#self + 1] = table.pack(...)
  end })
end

test('RxLua: every Subject accepts callables as onNext, onError, onCompleted', function()
  for _, name in ipairs({ 'Subject', 'BehaviorSubject', 'ReplaySubject', 'AsyncSubject' }) do
    local s = Rx[name].create()
    local onNext, onCompleted = spy(), spy()
    s:subscribe(onNext, nil, onCompleted)
    s:onNext(5)
    s:onCompleted()
    eq(#onNext, 1, name)
    eq(onNext[1][1], 5, name)
    eq(#onCompleted, 1, name)
    local e = Rx[name].create()
    local onError = spy()
    e:subscribe(nil, onError)
    e:onError('ohno')
    eq(#onError, 1, name)
    eq(onError[1][1], 'ohno', name)
  end
  -- an Observable too, and an Observer still counts as one
  local onNext = spy()
  Observable.of(1, 2):subscribe(onNext)
  eq(#onNext, 2)
  local got = {}
  Subject.create():startWith(3):subscribe(Rx.Observer.create(function(x) got[#got + 1] = x end))
  eq(got, { 3 })
end)

test('RxLua: fromCoroutine with a scheduler emits what the coroutine returns', function()
  local function body()
    coroutine.yield(1)
    coroutine.yield(2)
    return 3
  end
  local scheduler = Rx.CooperativeScheduler.create()
  local r = collect(Observable.fromCoroutine(body, scheduler))
  for _ = 1, 10 do
    scheduler:update()
    if scheduler:isEmpty() then break end
  end
  eq(r.values, { 1, 2, 3 })
  eq(r.completed, true)
  -- a thread is shared by the subscribers, a function is not
  scheduler = Rx.CooperativeScheduler.create()
  local shared = Observable.fromCoroutine(coroutine.create(body), scheduler)
  local a, b = collect(shared), collect(shared)
  for _ = 1, 10 do
    scheduler:update()
    if scheduler:isEmpty() then break end
  end
  eq(a.values, { 1, 3 })
  eq(b.values, { 2 })
  scheduler = Rx.CooperativeScheduler.create()
  local fresh = Observable.fromCoroutine(body, scheduler)
  a, b = collect(fresh), collect(fresh)
  for _ = 1, 10 do
    scheduler:update()
    if scheduler:isEmpty() then break end
  end
  eq(a.values, { 1, 2, 3 })
  eq(b.values, { 1, 2, 3 })
end)

test('RxLua: catch continues with another observable and ignores the failed source', function()
  local handler = Subject.create()
  local source = Observable.create(function(o)
    o:onNext(1)
    o:onNext(2)
    o:onError('ohno')
    o:onNext(3)      -- after its error: not seen
    o:onCompleted()  -- nor this
  end)
  handler:onNext(5)
  local r = collect(source:catch(handler))
  handler:onNext(6)
  handler:onNext(7)
  eq(r.completed, false)
  handler:onCompleted()
  eq(r.values, { 1, 2, 6, 7 })
  eq(r.completed, true)
  eq(produce(Observable.throw():catch(function() return Observable.empty() end)), {})
end)

test('RxLua: contains looks at every value of multi-value events (wrap)', function()
  local wrapped = range(1, 6):wrap(3)
  eq(produce(wrapped), { { 1, 2, 3 }, { 4, 5, 6 } })
  eq(produce(wrapped:contains(5)), { true })
  eq(produce(wrapped:contains(7)), { false })
  eq(produce(Observable.create(function(o) o:onNext(nil) o:onCompleted() end):contains(nil)), { true })
end)

test('RxLua: skipUntil an observable that never produces gives nothing, not even completion', function()
  local r = collect(Observable.fromTable({ 2, 3, 4 }):skipUntil(Observable.never()))
  eq(r.n, 0)
  eq(r.completed, false)
  eq(r.err, nil)
  -- a source error before the trigger is not forwarded either
  r = collect(Observable.throw('early'):skipUntil(Observable.never()))
  eq(r.err, nil)
  -- once triggered, values, errors and completion pass
  local s = Subject.create()
  r = collect(s:skipUntil(Observable.of(1)))
  s:onNext(1)
  s:onNext(2)
  s:onError('late')
  eq(r.values, { 1, 2 })
  eq(r.err, 'late')
end)

test('RxLua: fromFileByLine reads the file with io.lines', function()
  local name = os.tmpname()
  local f = assert(io.open(name, 'w'))
  f:write('on disk\n')
  f:close()
  local savedLines = io.lines
  local asked
  io.lines = function(filename)
    asked = filename
    local lines, i = { 'one', 'two' }, 0
    return function() i = i + 1 return lines[i] end
  end
  local success, r = pcall(collect, Observable.fromFileByLine(name))
  io.lines = savedLines
  os.remove(name)
  assert(success, r)
  eq(asked, name)
  eq(r.values, { 'one', 'two' })
  eq(r.completed, true)
end)

test('RxLua: fromValue, wrap and repeat exist as in RxLua', function()
  eq(produce(Observable.fromValue(7)), { 7 })
  eq(produce(Observable.fromValue(nil)), { nil })
  eq(produce(range(1, 5):wrap(2)), { { 1, 2 }, { 3, 4 }, 5 })
  eq(produce(Observable['repeat']('x', 2)), { 'x', 'x' })
end)

test('RxLua: defer without a factory is an Observable that fails on subscribe', function()
  local d = Observable.defer()
  ok(Rx.util.isa(d, Observable), 'defer() is an Observable')
  raises(function() d:subscribe() end, 'defer')
  raises(function() Observable.defer(function() return nil end):subscribe() end, 'defer')
end)

test('RxLua: a BehaviorSubject gives its value to every subscriber, late ones too', function()
  local s = Rx.BehaviorSubject.create(1)
  s:onNext(2)
  s:onCompleted()
  local r = collect(s)
  eq(r.values, { 2 })
  eq(r.completed, true)
end)

test('RxLua: operators stop listening to a source after its terminal event', function()
  local misbehaving = Observable.create(function(o)
    o:onNext(1)
    o:onCompleted()
    o:onNext(2)
  end)
  local rest = Subject.create()
  local r = collect(misbehaving:concat(rest))
  rest:onNext('next')
  eq(r.values, { 1, 'next' })
  local tries = 0
  local flaky = Observable.create(function(o)
    tries = tries + 1
    o:onNext(tries)
    if tries == 1 then o:onError('once') o:onNext('stale') return end
    o:onCompleted()
  end)
  eq(produce(flaky:retry(1)), { 1, 2 })
end)

-------------------------------------------------------------------------------
-- the seed paper
-------------------------------------------------------------------------------

test('Listing 5.1: average age of adults (map/filter/reduce, {} seed)', function()
  local people = {
    { name = 'Alice', age = 34 },
    { name = 'Bob', age = 15 },
    { name = 'Carol', age = 52 },
    { name = 'Dave', age = 17 },
    { name = 'Eve', age = 18 },
  }
  local result
  Rx.Observable.fromTable(people)
    :map(function(person) return person.age end)
    :filter(function(age) return age >= 18 end)
    :reduce(function(acc, age)
      acc.sum = (acc.sum or 0) + age
      acc.count = (acc.count or 0) + 1
      return acc
    end, {})
    :map(function(acc) return acc.sum / acc.count end)
    :subscribe(function(avg) result = avg end)
  eq(result, (34 + 52 + 18) / 3)
  eq(Rx.stateful, true)
end)

test('the host path: Subject -> map -> filter -> reduce with many events', function()
  Rx.config.hostErrors = true
  local s = Subject.create()
  local result
  s:map(function(x) return x * 2 end)
    :filter(function(x) return x % 3 == 0 end)
    :reduce(add, 0)
    :subscribe(function(v) result = v end)
  local expected = 0
  for i = 1, 10000 do
    s:onNext(i)
    if (i * 2) % 3 == 0 then expected = expected + i * 2 end
  end
  s:onCompleted()
  eq(result, expected)
end)

tap.done()
