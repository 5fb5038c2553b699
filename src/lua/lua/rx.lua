--[[
rx.lua - SecureStreams' own implementation of the RxLua API (Lua 5.4).

Scripts written for RxLua run unchanged:

    local Rx = require 'rx'
    Rx.Observable.fromRange(1, 10)
      :filter(function(x) return x % 2 == 0 end)
      :map(function(x) return x * x end)
      :subscribe(print)

Everything here is written for the per-event path: an event pushed with
subject:onNext(v) walks the chain through plain method calls on small sink
tables; operators allocate nothing per event (no closures, no packing of
varargs). Multi-value events (onNext(a, b)) are forwarded with `...`.

RUNTIME HOOKS FOR THE C HOST
============================

1. Rx.config.hostErrors (boolean, default false)

   false: an error raised by a user callback (map's function, filter's
          predicate, reduce's accumulator, a subscriber's onNext when it
          gave an onError, ...) is caught with pcall and routed to the
          downstream observer's onError(message), as RxLua does. An observer
          without an onError rethrows the message, as in RxLua.
   true:  nothing is caught. The error propagates out of subject:onNext(...)
          (or onCompleted) to the caller. The host calls onNext under its own
          lua_pcall per event, so it rejects and counts that one event and
          the stream goes on. Operators update their state only after the
          user callback returned, so e.g. a reduce whose accumulator raised
          keeps its previous accumulator.

   Rx.config is a proxy table: set the flag with an ordinary (non-raw)
   assignment, `Rx.config.hostErrors = true` in Lua or lua_setfield() in C.
   It takes effect immediately, also for chains built earlier. Do not
   replace the Rx.config table itself, and do not rawset into it.

2. Rx.stateful (boolean, starts false)

   Set to true when an operator that keeps state across events is created
   (at chain-building time): reduce, scan, count, sum, min, max, average,
   distinct, distinctUntilChanged, buffer, window, last, takeLast, skipLast,
   zip, combineLatest, all, contains, find, first, elementAt,
   defaultIfEmpty, tumblingWindow, slidingWindow, joinWindow; and concat,
   which emits when its source completes.
   The host reads it after running a stage script to tell routers that the stage cannot be transparently retried; it may reset it
   to false before loading a script.

3. Rx.checkpoint (checkpoints of the stage's state)

   open() / freeze(): the host opens the list of stateful operators
   before it runs a stage script and freezes it after the main chunk;
   every operator that keeps state across events (the ones above, and
   take/first, skip, skipWhile, takeWhile, with, sample) registers a get
   and a set function when it is subscribed in between (a
   BehaviorSubject, ReplaySubject or AsyncSubject when it is created
   there). capture() returns
   { {name, state}, ... } in registration order, restore(list) puts such a
   list back into the same chain built afresh, refusing another number or
   order of operators. The states are plain data (no functions, cycles or
   metatables); the host encodes them (src/lua/ss_lua_canon.h) and seals
   them (src/crypto/ss_snapshot.h). State kept outside them (a script's
   own upvalue or table) is not captured.

The module needs no io (fromFileByLine reports an error through onError
when io is absent, as in the enclave's sandbox).
]]

local setmetatable, getmetatable = setmetatable, getmetatable
local pcall, error, type, select = pcall, error, type, select
local tostring, pairs, next = tostring, pairs, next
local tpack, tunpack = table.pack, table.unpack
local tremove, tconcat = table.remove, table.concat
local mmax, mmin, mtointeger = math.max, math.min, math.tointeger
local cocreate, coresume, costatus, coyield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.yield

local Rx = {}

-------------------------------------------------------------------------------
-- configuration
-------------------------------------------------------------------------------

-- The per-event code reads this upvalue; Rx.config proxies it.
local HOST = false
local configExtra = {}

Rx.config = setmetatable({}, {
  __index = function(_, k)
    if k == 'hostErrors' then return HOST end
    return configExtra[k]
  end,
  __newindex = function(_, k, v)
    if k == 'hostErrors' then HOST = not not v else configExtra[k] = v end
  end,
  __pairs = function()
    local t = { hostErrors = HOST }
    for k, v in pairs(configExtra) do t[k] = v end
    return next, t, nil
  end,
})

Rx.stateful = false

local function markStateful()
  Rx.stateful = true
end

-- Checkpoint registry (3. in the notes above). Every operator that keeps
-- state across events registers, when it is subscribed, a name and two
-- functions: get() returns its state as plain data (nil, booleans,
-- numbers, strings and tables of those, no cycles, no metatables), set(v)
-- puts such a state back. The chain a script builds is the same each
-- time it runs, so the registrations come in the same order: the host
-- saves the list at a barrier and gives it back to the same script,
-- freshly loaded, before its first event. The list is open only while the
-- host runs a stage script's main chunk (open() before, freeze() after):
-- an operator subscribed later (inside flatMap, switch, retry, catch) is
-- not captured, and plain Lua programs, which never open it, keep no list.
local stateList, stateOpen, stateFrozen = {}, false, false

local function keepState(name, get, set)
  if not stateOpen then return end
  stateList[#stateList + 1] = { name = name, get = get, set = set }
end

Rx.checkpoint = {}

-- Opens the list (the host, before a stage script runs); once frozen it
-- stays closed.
function Rx.checkpoint.open() stateOpen = not stateFrozen end

-- Closes the list for good: operators subscribed from now on are not
-- registered.
function Rx.checkpoint.freeze() stateOpen, stateFrozen = false, true end

-- Per key group instances (a worker of a partitioned stateful stage runs
-- the script's main chunk once per key group, src/lua/ss_stage.c): the
-- host starts each run's own list with fresh() (open, whatever freeze()
-- did), closes it with close() after that main chunk, and chooses with
-- select(list) the list that names/capture/restore work on; current()
-- is the list in use.
function Rx.checkpoint.fresh()
  stateList, stateOpen = {}, true
  return stateList
end
function Rx.checkpoint.close() stateOpen = false end
function Rx.checkpoint.select(list) stateList = list end
function Rx.checkpoint.current() return stateList end

-- The names of the registered operators, in order.
function Rx.checkpoint.names()
  local t = {}
  for i = 1, #stateList do t[i] = stateList[i].name end
  return t
end

-- { {name, state}, ... } in registration order.
function Rx.checkpoint.capture()
  local t = {}
  for i = 1, #stateList do
    local e = stateList[i]
    t[i] = { e.name, e.get() }
  end
  return t
end

-- Puts back what capture() returned (decoded again), checking that the
-- script registered the same operators in the same order.
function Rx.checkpoint.restore(list)
  if type(list) ~= 'table' then
    error('snapshot: the state list is a ' .. type(list) .. ', not a table', 0)
  end
  local n = #stateList
  local names = tconcat(Rx.checkpoint.names(), ', ')
  if #list ~= n then
    local theirs = {}
    for i = 1, #list do
      theirs[i] = type(list[i]) == 'table' and tostring(list[i][1]) or '?'
    end
    error('snapshot: it holds the state of ' .. #list .. ' operator(s) ('
      .. tconcat(theirs, ', ') .. ') but the script registered ' .. n
      .. ' (' .. names .. '): not a snapshot of this script', 0)
  end
  for i = 1, n do
    local e, s = stateList[i], list[i]
    if type(s) ~= 'table' or s[1] ~= e.name then
      error('snapshot: stateful operator ' .. i .. ' is '
        .. tostring(type(s) == 'table' and s[1]) .. ' in the snapshot but '
        .. e.name .. ' in the script: not a snapshot of this script', 0)
    end
  end
  for i = 1, n do stateList[i].set(list[i][2]) end
end

-------------------------------------------------------------------------------
-- util
-------------------------------------------------------------------------------

local function noop() end
local function identity(...) return ... end
local function rethrow(e) error(e, 0) end

local util = {}
Rx.util = util

util.pack = tpack
util.unpack = tunpack
util.noop = noop
util.identity = identity

function util.eq(x, y) return x == y end

function util.constant(...)
  local values = tpack(...)
  return function() return tunpack(values, 1, values.n) end
end

function util.isa(object, class)
  if type(object) ~= 'table' then return false end
  local mt = getmetatable(object)
  local seen = 0
  while mt and seen < 32 do
    if mt == class or mt.__index == class then return true end
    mt = getmetatable(mt)
    seen = seen + 1
  end
  return false
end

-- Calls fn(...) and routes an error to observer:onError (or lets it
-- propagate when Rx.config.hostErrors is set). Returns true on success.
function util.tryWithObserver(observer, fn, ...)
  if HOST then
    fn(...)
    return true
  end
  local ok, err = pcall(fn, ...)
  if not ok then observer:onError(err) end
  return ok, err
end

-- ok, results... of a user callback (pcall unless the host handles errors).
-- At completion of an event-time operator: late events that no onLate
-- saw were dropped; say how many through the stage's log (a warning that
-- names the operator; counts only, no event content), so that a stage
-- behind partition_by without keyedWatermark does not lose rows silently.
local function warnLate(name, late, onLate, keyed)
  if late == 0 or onLate then return end
  local ok, log = pcall(require, 'log')
  if not ok or type(log) ~= 'table' or not log.warn then return end
  log.warn(string.format('%s: %d late event%s dropped (older than the '
    .. 'watermark; give onLate to see them%s)', name, late,
    late == 1 and '' or 's',
    keyed and '' or '; behind partition_by, keyedWatermark = true '
      .. 'gives each key its own watermark'))
end

local function try(fn, ...)
  if HOST then return true, fn(...) end
  return pcall(fn, ...)
end

-- Emits the results of a pcall, or routes its error.
local function forward(observer, ok, ...)
  if ok then return observer:onNext(...) end
  return observer:onError((...))
end

local function add(x, y) return x + y end

-- A FIFO of events. Single-value events are stored unpacked.
local Queue = {}
Queue.__index = Queue

local function newQueue()
  return setmetatable({ head = 1, tail = 0, v = {}, p = {} }, Queue)
end

function Queue:push(...)
  local i = self.tail + 1
  self.tail = i
  if select('#', ...) == 1 then
    self.v[i] = ...
    self.p[i] = nil
  else
    self.v[i] = nil
    self.p[i] = tpack(...)
  end
end

function Queue:size() return self.tail - self.head + 1 end

function Queue:get(i)
  local p = self.p[i]
  if p then return tunpack(p, 1, p.n) end
  return self.v[i]
end

function Queue:shift()
  local i = self.head
  self.head = i + 1
  local p, v = self.p[i], self.v[i]
  self.p[i], self.v[i] = nil, nil
  if p then return tunpack(p, 1, p.n) end
  return v
end

-- A queue's state for a checkpoint, and back.
local function queueState(q)
  return { head = q.head, tail = q.tail, v = q.v, p = q.p }
end

local function setQueueState(q, s)
  q.head, q.tail, q.v, q.p = s.head, s.tail, s.v or {}, s.p or {}
end

-------------------------------------------------------------------------------
-- Subscription
-------------------------------------------------------------------------------

local Subscription = {}
Subscription.__index = Subscription
Subscription.__tostring = function() return 'Subscription' end
Rx.Subscription = Subscription

function Subscription.create(action)
  return setmetatable({ action = action or noop, unsubscribed = false },
    Subscription)
end

function Subscription:unsubscribe()
  if self.unsubscribed then return end
  self.unsubscribed = true
  self.action(self)
end

local function toSubscription(s)
  if type(s) == 'table' and s.unsubscribe then return s end
  if type(s) == 'function' then return Subscription.create(s) end
  return Subscription.create()
end

local function unsubscribeAll(list, n)
  for i = 1, n or #list do
    local s = list[i]
    if s then s:unsubscribe() end
  end
end

-- Lets an operator stop its upstream early even when the source emits
-- synchronously, before subscribe() has returned the subscription.
local function newLink()
  local link = { stopped = false }
  function link.cancel()
    link.stopped = true
    if link.sub then link.sub:unsubscribe() end
  end
  function link.attach(sub)
    link.sub = sub
    if link.stopped then sub:unsubscribe() end
    return sub
  end
  return link
end

-------------------------------------------------------------------------------
-- Observer
-------------------------------------------------------------------------------

local Observer = {}
Observer.__index = Observer
Observer.__tostring = function() return 'Observer' end
Rx.Observer = Observer

function Observer.create(onNext, onError, onCompleted)
  return setmetatable({
    _onNext = onNext or noop,
    _onError = onError or rethrow,
    _onCompleted = onCompleted or noop,
    _guard = onError ~= nil,
    stopped = false,
  }, Observer)
end

function Observer:onNext(...)
  if self.stopped then return end
  if HOST or not self._guard then return self._onNext(...) end
  local ok, err = pcall(self._onNext, ...)
  if not ok then return self:onError(err) end
end

function Observer:onError(message)
  if self.stopped then return end
  self.stopped = true
  return self._onError(message)
end

function Observer:onCompleted()
  if self.stopped then return end
  self.stopped = true
  return self._onCompleted()
end

-- Internal observers: plain tables (no metatable lookups per event).
local function Sink(observer, onNext, onError, onCompleted)
  return {
    onNext = onNext,
    onError = onError or function(_, e) return observer:onError(e) end,
    onCompleted = onCompleted or function() return observer:onCompleted() end,
  }
end

local function passThrough(observer)
  return function(_, ...) return observer:onNext(...) end
end

-- A Sink that ignores whatever its source sends after onError or
-- onCompleted, as RxLua's Observers do. Used where the downstream observer
-- lives on after that source ended (catch, retry, concat, skipUntil), so a
-- source that misbehaves cannot leak into what follows. The per-event
-- operators use plain Sinks: the final Observer stops there.
local function Guarded(observer, onNext, onError, onCompleted)
  local sink = Sink(observer, onNext, onError, onCompleted)
  local nextFn, errorFn, completedFn = sink.onNext, sink.onError, sink.onCompleted
  local stopped = false
  sink.onNext = function(self, ...)
    if not stopped then return nextFn(self, ...) end
  end
  sink.onError = function(self, e)
    if stopped then return end
    stopped = true
    return errorFn(self, e)
  end
  sink.onCompleted = function(self)
    if stopped then return end
    stopped = true
    return completedFn(self)
  end
  return sink
end

-------------------------------------------------------------------------------
-- Observable
-------------------------------------------------------------------------------

local Observable = {}
Observable.__index = Observable
Observable.__tostring = function() return 'Observable' end
Rx.Observable = Observable

function Observable.create(subscribe)
  return setmetatable({ _subscribe = subscribe }, Observable)
end

-- Whether subscribe's first argument is an observer rather than an onNext
-- callback: a table with an onNext field, or any table that cannot be
-- called. A callable table without onNext (a test spy, a memoizer) is a
-- callback, as RxLua's Subjects treat anything that is not an Observer.
local function isObserver(x)
  if type(x) ~= 'table' then return false end
  if x.onNext ~= nil then return true end
  local mt = getmetatable(x)
  return not (type(mt) == 'table' and mt.__call ~= nil)
end

local function toObserver(onNext, onError, onCompleted)
  if isObserver(onNext) then return onNext end
  return Observer.create(onNext, onError, onCompleted)
end

-- subscribe(onNext, onError, onCompleted) or subscribe(observer).
function Observable:subscribe(onNext, onError, onCompleted)
  return toSubscription(self._subscribe(toObserver(onNext, onError, onCompleted)))
end

--- constructors --------------------------------------------------------------

function Observable.empty()
  return Observable.create(function(observer)
    observer:onCompleted()
  end)
end

function Observable.never()
  return Observable.create(noop)
end

function Observable.throw(message)
  return Observable.create(function(observer)
    observer:onError(message)
  end)
end

function Observable.of(...)
  local values = tpack(...)
  return Observable.create(function(observer)
    for i = 1, values.n do observer:onNext(values[i]) end
    observer:onCompleted()
  end)
end

function Observable.fromRange(initial, limit, step)
  if limit == nil and step == nil then initial, limit = 1, initial end
  step = step or 1
  return Observable.create(function(observer)
    for i = initial, limit, step do observer:onNext(i) end
    observer:onCompleted()
  end)
end

-- Values of t (as produced by iterator, default pairs); with keys, each
-- event is (value, key).
function Observable.fromTable(t, iterator, keys)
  iterator = iterator or pairs
  return Observable.create(function(observer)
    if keys then
      for key, value in iterator(t) do observer:onNext(value, key) end
    else
      for _, value in iterator(t) do observer:onNext(value) end
    end
    observer:onCompleted()
  end)
end

-- Emits what the coroutine (or function run as one) yields and then what
-- it returns (if it returns values), completing when it returns. With a
-- scheduler, one resume per scheduler step; without, synchronously on
-- subscription. A thread is shared by all subscribers (each resume goes to
-- whoever resumed it); a function gets a fresh coroutine per subscriber.
function Observable.fromCoroutine(fn, scheduler)
  return Observable.create(function(observer)
    local thread = type(fn) == 'function' and cocreate(fn) or fn
    local stopped = false
    local function step(ok, ...)
      if not ok then
        stopped = true
        observer:onError((...))
      elseif costatus(thread) == 'dead' then
        stopped = true
        if select('#', ...) > 0 then observer:onNext(...) end
        observer:onCompleted()
      else
        observer:onNext(...)
      end
    end
    if scheduler then
      return scheduler:schedule(function()
        while not stopped do
          step(coresume(thread))
          if not stopped then coyield() end
        end
      end)
    end
    while not stopped do step(coresume(thread)) end
  end)
end

function Observable.fromFileByLine(filename)
  return Observable.create(function(observer)
    local io = io
    if not io then
      return observer:onError(tostring(filename) .. ': io is not available')
    end
    -- RxLua checks with io.open, then reads with io.lines (so a script
    -- that replaces io.lines is honoured).
    local file, err = io.open(filename, 'r')
    if not file then return observer:onError(err or tostring(filename)) end
    file:close()
    local ok, iter, state, control, closing = pcall(io.lines, filename)
    if not ok then return observer:onError(iter) end
    -- the generic for closes `closing` (the file) on error too
    for line in iter, state, control, closing do observer:onNext(line) end
    return observer:onCompleted()
  end)
end

-- The factory is checked when the observable is subscribed to, as in
-- RxLua (defer() is an Observable; subscribing to it raises).
function Observable.defer(fn)
  return Observable.create(function(observer)
    if type(fn) ~= 'function' and not (type(fn) == 'table'
        and getmetatable(fn) and getmetatable(fn).__call) then
      error('defer: expected a factory function, got ' .. type(fn), 0)
    end
    local ok, observable = try(fn)
    if not ok then return observer:onError(observable) end
    if not util.isa(observable, Observable) then
      error('defer: the factory returned a ' .. type(observable)
        .. ', not an Observable', 0)
    end
    return observable:subscribe(observer)
  end)
end

-- RxLua's older name for of(value).
function Observable.fromValue(value)
  return Observable.of(value)
end

-- Emits value count times (forever when count is nil).
function Observable.replicate(value, count)
  return Observable.create(function(observer)
    if count == nil then
      while true do observer:onNext(value) end
    end
    for _ = 1, count do observer:onNext(value) end
    observer:onCompleted()
  end)
end

-- Prints every notification (for debugging). Uses the global print at call
-- time, so a host that redirects print() also redirects dump().
function Observable:dump(name, formatter)
  name = name and (tostring(name) .. ' ') or ''
  formatter = formatter or tostring
  local function fmt(...)
    local parts = {}
    for i = 1, select('#', ...) do parts[i] = formatter((select(i, ...))) end
    return tconcat(parts, ', ')
  end
  return self:subscribe(
    function(...) print(name .. 'onNext: ' .. fmt(...)) end,
    function(e) print(name .. 'onError: ' .. tostring(e)) end,
    function() print(name .. 'onCompleted') end)
end

--- transforming (the hot path: map, filter, reduce) --------------------------

function Observable:map(callback)
  callback = callback or identity
  local source = self
  return Observable.create(function(observer)
    return source:subscribe(Sink(observer, function(_, ...)
      if HOST then return observer:onNext(callback(...)) end
      return forward(observer, pcall(callback, ...))
    end))
  end)
end

function Observable:filter(predicate)
  predicate = predicate or identity
  local source = self
  return Observable.create(function(observer)
    return source:subscribe(Sink(observer, function(_, ...)
      if HOST then
        if predicate(...) then return observer:onNext(...) end
        return
      end
      local ok, keep = pcall(predicate, ...)
      if not ok then return observer:onError(keep) end
      if keep then return observer:onNext(...) end
    end))
  end)
end

function Observable:reject(predicate)
  predicate = predicate or identity
  local source = self
  return Observable.create(function(observer)
    return source:subscribe(Sink(observer, function(_, ...)
      if HOST then
        if not predicate(...) then return observer:onNext(...) end
        return
      end
      local ok, drop = pcall(predicate, ...)
      if not ok then return observer:onError(drop) end
      if not drop then return observer:onNext(...) end
    end))
  end)
end

-- reduce(accumulator, seed): folds the events, emits the result when the
-- source completes. Without a seed the first value is the seed.
function Observable:reduce(accumulator, seed)
  markStateful()
  local source = self
  return Observable.create(function(observer)
    local acc, has = seed, seed ~= nil
    keepState('reduce', function() return { acc = acc, has = has } end,
      function(v) acc, has = v.acc, v.has end)
    return source:subscribe(Sink(observer, function(_, ...)
      if has then
        if HOST then
          acc = accumulator(acc, ...)
        else
          local ok, r = pcall(accumulator, acc, ...)
          if not ok then return observer:onError(r) end
          acc = r
        end
      else
        acc, has = ..., true
      end
    end, nil, function()
      if has then observer:onNext(acc) end
      return observer:onCompleted()
    end))
  end)
end

-- scan(accumulator, seed): emits every intermediate accumulator. Without a
-- seed the first value becomes the accumulator (and is not emitted).
function Observable:scan(accumulator, seed)
  markStateful()
  local source = self
  return Observable.create(function(observer)
    local acc, has = seed, seed ~= nil
    keepState('scan', function() return { acc = acc, has = has } end,
      function(v) acc, has = v.acc, v.has end)
    return source:subscribe(Sink(observer, function(_, ...)
      if has then
        if HOST then
          acc = accumulator(acc, ...)
        else
          local ok, r = pcall(accumulator, acc, ...)
          if not ok then return observer:onError(r) end
          acc = r
        end
        return observer:onNext(acc)
      end
      acc, has = ..., true
    end))
  end)
end

function Observable:compact()
  return self:filter(identity)
end

function Observable:pack()
  return self:map(tpack)
end

function Observable:unpack()
  return self:map(tunpack)
end

function Observable:partition(predicate)
  return self:filter(predicate), self:reject(predicate)
end

function Observable:pluck(key, ...)
  if key == nil then return self end
  if type(key) ~= 'string' and type(key) ~= 'number' then
    error('Key must be either a string or a number', 2)
  end
  local source = self
  local function get(t) return t[key] end
  return Observable.create(function(observer)
    return source:subscribe(Sink(observer, function(_, t)
      if HOST then return observer:onNext(t[key]) end
      return forward(observer, pcall(get, t))
    end))
  end):pluck(...)
end

-- Emits each value of a multi-value event as its own event.
function Observable:unwrap()
  local source = self
  return Observable.create(function(observer)
    return source:subscribe(Sink(observer, function(_, ...)
      for i = 1, select('#', ...) do observer:onNext((select(i, ...))) end
    end))
  end)
end

function Observable:tap(onNext, onError, onCompleted)
  onNext = onNext or noop
  onError = onError or noop
  onCompleted = onCompleted or noop
  local source = self
  return Observable.create(function(observer)
    return source:subscribe(Sink(observer, function(_, ...)
      if HOST then
        onNext(...)
        return observer:onNext(...)
      end
      local ok, err = pcall(onNext, ...)
      if not ok then return observer:onError(err) end
      return observer:onNext(...)
    end, function(_, message)
      local ok, err = try(onError, message)
      if not ok then return observer:onError(err) end
      return observer:onError(message)
    end, function()
      local ok, err = try(onCompleted)
      if not ok then return observer:onError(err) end
      return observer:onCompleted()
    end))
  end)
end

function Observable:ignoreElements()
  local source = self
  return Observable.create(function(observer)
    return source:subscribe(Sink(observer, noop))
  end)
end

function Observable:startWith(...)
  local values = tpack(...)
  local source = self
  return Observable.create(function(observer)
    observer:onNext(tunpack(values, 1, values.n))
    return source:subscribe(observer)
  end)
end

function Observable:defaultIfEmpty(...)
  markStateful()
  local defaults = tpack(...)
  local source = self
  return Observable.create(function(observer)
    local empty = true
    keepState('defaultIfEmpty', function() return empty end,
      function(v) empty = v end)
    return source:subscribe(Sink(observer, function(_, ...)
      empty = false
      return observer:onNext(...)
    end, nil, function()
      if empty then observer:onNext(tunpack(defaults, 1, defaults.n)) end
      return observer:onCompleted()
    end))
  end)
end

--- aggregates ----------------------------------------------------------------

function Observable:count(predicate)
  markStateful()
  local source = self
  return Observable.create(function(observer)
    local n = 0
    keepState('count', function() return n end, function(v) n = v end)
    return source:subscribe(Sink(observer, function(_, ...)
      if not predicate then
        n = n + 1
        return
      end
      if HOST then
        if predicate(...) then n = n + 1 end
        return
      end
      local ok, r = pcall(predicate, ...)
      if not ok then return observer:onError(r) end
      if r then n = n + 1 end
    end, nil, function()
      observer:onNext(n)
      return observer:onCompleted()
    end))
  end)
end

function Observable:sum()
  markStateful()
  return self:reduce(add, 0)
end

function Observable:max()
  markStateful()
  return self:reduce(mmax)
end

function Observable:min()
  markStateful()
  return self:reduce(mmin)
end

-- Emits sum / count on completion (nothing for an empty source).
function Observable:average()
  markStateful()
  local source = self
  return Observable.create(function(observer)
    local sum, n = 0, 0
    keepState('average', function() return { sum = sum, n = n } end,
      function(v) sum, n = v.sum, v.n end)
    return source:subscribe(Sink(observer, function(_, value)
      if HOST then
        sum = sum + value
      else
        local ok, r = pcall(add, sum, value)
        if not ok then return observer:onError(r) end
        sum = r
      end
      n = n + 1
    end, nil, function()
      if n > 0 then observer:onNext(sum / n) end
      return observer:onCompleted()
    end))
  end)
end

function Observable:all(predicate)
  markStateful()
  predicate = predicate or identity
  local source = self
  return Observable.create(function(observer)
    local done = false
    local link = newLink()
    keepState('all', function() return done end, function(v) done = v end)
    return link.attach(source:subscribe(Sink(observer, function(_, ...)
      if done then return end
      local ok, r = try(predicate, ...)
      if not ok then return observer:onError(r) end
      if not r then
        done = true
        link.cancel()
        observer:onNext(false)
        return observer:onCompleted()
      end
    end, function(_, e)
      if not done then return observer:onError(e) end
    end, function()
      if done then return end
      done = true
      observer:onNext(true)
      return observer:onCompleted()
    end)))
  end)
end

-- Emits true as soon as an event contains value, false on completion.
function Observable:contains(value)
  markStateful()
  local source = self
  return Observable.create(function(observer)
    local done = false
    local link = newLink()
    keepState('contains', function() return done end,
      function(v) done = v end)
    return link.attach(source:subscribe(Sink(observer, function(_, ...)
      if done then return end
      local n = select('#', ...)
      local found = (n == 0 and value == nil)
      for i = 1, n do
        if select(i, ...) == value then found = true break end
      end
      if found then
        done = true
        link.cancel()
        observer:onNext(true)
        return observer:onCompleted()
      end
    end, function(_, e)
      if not done then return observer:onError(e) end
    end, function()
      if done then return end
      done = true
      observer:onNext(false)
      return observer:onCompleted()
    end)))
  end)
end

--- filtering -----------------------------------------------------------------

function Observable:distinct()
  markStateful()
  local source = self
  return Observable.create(function(observer)
    local seen, seenNil = {}, false
    keepState('distinct', function()
      return { seen = seen, seenNil = seenNil }
    end, function(v) seen, seenNil = v.seen or {}, v.seenNil end)
    return source:subscribe(Sink(observer, function(_, ...)
      local v = ...
      if v == nil then
        if seenNil then return end
        seenNil = true
      elseif v == v then -- NaN is never a duplicate (and cannot be a key)
        if seen[v] then return end
        seen[v] = true
      end
      return observer:onNext(...)
    end))
  end)
end

function Observable:distinctUntilChanged(comparator)
  markStateful()
  comparator = comparator or util.eq
  local source = self
  return Observable.create(function(observer)
    local first, current = true, nil
    keepState('distinctUntilChanged', function()
      return { first = first, current = current }
    end, function(v) first, current = v.first, v.current end)
    return source:subscribe(Sink(observer, function(_, ...)
      local v = ...
      if not first then
        local ok, same = try(comparator, v, current)
        if not ok then return observer:onError(same) end
        if same then return end
      end
      first, current = false, v
      return observer:onNext(...)
    end))
  end)
end

function Observable:elementAt(index)
  markStateful()
  if type(index) ~= 'number' then error('Expected a number', 2) end
  local source = self
  return Observable.create(function(observer)
    local i, done = 0, false
    local link = newLink()
    keepState('elementAt', function() return { i = i, done = done } end,
      function(v) i, done = v.i, v.done end)
    return link.attach(source:subscribe(Sink(observer, function(_, ...)
      if done then return end
      i = i + 1
      if i == index then
        done = true
        link.cancel()
        observer:onNext(...)
        return observer:onCompleted()
      end
    end, function(_, e)
      if not done then return observer:onError(e) end
    end, function()
      if not done then done = true return observer:onCompleted() end
    end)))
  end)
end

-- Emits the first event satisfying predicate, then completes.
function Observable:find(predicate)
  markStateful()
  predicate = predicate or identity
  local source = self
  return Observable.create(function(observer)
    local done = false
    local link = newLink()
    keepState('find', function() return done end, function(v) done = v end)
    return link.attach(source:subscribe(Sink(observer, function(_, ...)
      if done then return end
      local ok, r = try(predicate, ...)
      if not ok then return observer:onError(r) end
      if r then
        done = true
        link.cancel()
        observer:onNext(...)
        return observer:onCompleted()
      end
    end, function(_, e)
      if not done then return observer:onError(e) end
    end, function()
      if not done then done = true return observer:onCompleted() end
    end)))
  end)
end

local function take(source, n)
  return Observable.create(function(observer)
    if n <= 0 then
      observer:onCompleted()
      return
    end
    local i, done = 0, false
    local link = newLink()
    keepState('take', function() return { i = i, done = done } end,
      function(v) i, done = v.i, v.done end)
    return link.attach(source:subscribe(Sink(observer, function(_, ...)
      if done then return end
      i = i + 1
      if i >= n then
        done = true
        link.cancel()
        observer:onNext(...)
        return observer:onCompleted()
      end
      return observer:onNext(...)
    end, function(_, e)
      if not done then done = true return observer:onError(e) end
    end, function()
      if not done then done = true return observer:onCompleted() end
    end)))
  end)
end

function Observable:take(n)
  return take(self, n or 1)
end

function Observable:first()
  markStateful()
  return take(self, 1)
end

function Observable:last()
  markStateful()
  local source = self
  return Observable.create(function(observer)
    local has, value, packed = false, nil, nil
    keepState('last', function()
      return { has = has, value = value, packed = packed }
    end, function(v) has, value, packed = v.has, v.value, v.packed end)
    return source:subscribe(Sink(observer, function(_, ...)
      has = true
      if select('#', ...) == 1 then
        value, packed = ..., nil
      else
        packed = tpack(...)
      end
    end, nil, function()
      if has then
        if packed then
          observer:onNext(tunpack(packed, 1, packed.n))
        else
          observer:onNext(value)
        end
      end
      return observer:onCompleted()
    end))
  end)
end

function Observable:skip(n)
  n = n or 1
  local source = self
  return Observable.create(function(observer)
    local i = 0
    keepState('skip', function() return i end, function(v) i = v end)
    return source:subscribe(Sink(observer, function(_, ...)
      if i >= n then return observer:onNext(...) end
      i = i + 1
    end))
  end)
end

function Observable:skipLast(count)
  markStateful()
  if type(count) ~= 'number' then error('Expected a number', 2) end
  local source = self
  return Observable.create(function(observer)
    local q = newQueue()
    keepState('skipLast', function() return queueState(q) end,
      function(v) setQueueState(q, v) end)
    return source:subscribe(Sink(observer, function(_, ...)
      q:push(...)
      if q:size() > count then return observer:onNext(q:shift()) end
    end))
  end)
end

function Observable:takeLast(count)
  markStateful()
  if type(count) ~= 'number' then error('Expected a number', 2) end
  local source = self
  return Observable.create(function(observer)
    local q = newQueue()
    keepState('takeLast', function() return queueState(q) end,
      function(v) setQueueState(q, v) end)
    return source:subscribe(Sink(observer, function(_, ...)
      q:push(...)
      if q:size() > count then q:shift() end
    end, nil, function()
      while q:size() > 0 do observer:onNext(q:shift()) end
      return observer:onCompleted()
    end))
  end)
end

function Observable:skipWhile(predicate)
  predicate = predicate or identity
  local source = self
  return Observable.create(function(observer)
    local skipping = true
    keepState('skipWhile', function() return skipping end,
      function(v) skipping = v end)
    return source:subscribe(Sink(observer, function(_, ...)
      if skipping then
        local ok, r = try(predicate, ...)
        if not ok then return observer:onError(r) end
        if r then return end
        skipping = false
      end
      return observer:onNext(...)
    end))
  end)
end

function Observable:takeWhile(predicate)
  predicate = predicate or identity
  local source = self
  return Observable.create(function(observer)
    local done = false
    local link = newLink()
    keepState('takeWhile', function() return done end,
      function(v) done = v end)
    return link.attach(source:subscribe(Sink(observer, function(_, ...)
      if done then return end
      local ok, r = try(predicate, ...)
      if not ok then return observer:onError(r) end
      if r then return observer:onNext(...) end
      done = true
      link.cancel()
      return observer:onCompleted()
    end, function(_, e)
      if not done then done = true return observer:onError(e) end
    end, function()
      if not done then done = true return observer:onCompleted() end
    end)))
  end)
end

-- Ignores the source's events until other produces one. As in RxLua, the
-- source's completion and error are ignored too until then: with an other
-- that never produces, the result produces nothing and never ends.
function Observable:skipUntil(other)
  local source = self
  return Observable.create(function(observer)
    local triggered = false
    local otherLink = newLink()
    otherLink.attach(other:subscribe(Sink(observer, function()
      triggered = true
      otherLink.cancel()
    end, nil, noop)))
    local sub = source:subscribe(Guarded(observer, function(_, ...)
      if triggered then return observer:onNext(...) end
    end, function(_, e)
      if triggered then return observer:onError(e) end
    end, function()
      if triggered then return observer:onCompleted() end
    end))
    return Subscription.create(function()
      sub:unsubscribe()
      otherLink.cancel()
    end)
  end)
end

-- Mirrors the source until other produces an event, then completes.
function Observable:takeUntil(other)
  local source = self
  return Observable.create(function(observer)
    local done = false
    local link, otherLink = newLink(), newLink()
    otherLink.attach(other:subscribe(Sink(observer, function()
      if done then return end
      done = true
      otherLink.cancel()
      link.cancel()
      return observer:onCompleted()
    end, function(_, e)
      if not done then done = true link.cancel() return observer:onError(e) end
    end, noop)))
    if not done then
      link.attach(source:subscribe(Sink(observer, function(_, ...)
        if not done then return observer:onNext(...) end
      end, function(_, e)
        if not done then done = true otherLink.cancel() return observer:onError(e) end
      end, function()
        if not done then done = true otherLink.cancel() return observer:onCompleted() end
      end)))
    end
    return Subscription.create(function()
      link.cancel()
      otherLink.cancel()
    end)
  end)
end

--- buffering -----------------------------------------------------------------

-- Groups values into events of size values (the last may be shorter).
function Observable:buffer(size)
  markStateful()
  if type(size) ~= 'number' then error('Expected a number', 2) end
  local source = self
  return Observable.create(function(observer)
    local buf, n = {}, 0
    keepState('buffer', function() return { buf = buf, n = n } end,
      function(v) buf, n = v.buf or {}, v.n end)
    local function flush()
      if n > 0 then
        local b, k = buf, n
        buf, n = {}, 0
        observer:onNext(tunpack(b, 1, k))
      end
    end
    return source:subscribe(Sink(observer, function(_, ...)
      for i = 1, select('#', ...) do
        n = n + 1
        buf[n] = (select(i, ...))
        if n >= size then flush() end
      end
    end, function(_, e)
      flush()
      return observer:onError(e)
    end, function()
      flush()
      return observer:onCompleted()
    end))
  end)
end

-- Sliding window: once size values arrived, each new value emits the last
-- size values as one event.
function Observable:window(size)
  markStateful()
  if type(size) ~= 'number' then error('Expected a number', 2) end
  local source = self
  return Observable.create(function(observer)
    local w, n = {}, 0
    keepState('window', function() return { w = w, n = n } end,
      function(v) w, n = v.w or {}, v.n end)
    return source:subscribe(Sink(observer, function(_, value)
      if n == size then
        for i = 1, n - 1 do w[i] = w[i + 1] end
        w[n] = value
      else
        n = n + 1
        w[n] = value
      end
      if n == size then return observer:onNext(tunpack(w, 1, n)) end
    end))
  end)
end

--- combining -----------------------------------------------------------------

function Observable:merge(...)
  local sources = { self, ... }
  return Observable.create(function(observer)
    local n = #sources
    local remaining = n
    local subs = {}
    local s = Sink(observer, passThrough(observer), nil, function()
      remaining = remaining - 1
      if remaining == 0 then return observer:onCompleted() end
    end)
    for i = 1, n do subs[i] = sources[i]:subscribe(s) end
    return Subscription.create(function() unsubscribeAll(subs, n) end)
  end)
end

function Observable:concat(other, ...)
  if other == nil then return self end
  markStateful() -- emits when the source completes: a retry cannot redo it
  local rest = other:concat(...)
  local source = self
  return Observable.create(function(observer)
    local firstSub, restSub
    firstSub = source:subscribe(Guarded(observer, passThrough(observer), nil,
      function() restSub = rest:subscribe(observer) end))
    return Subscription.create(function()
      if firstSub then firstSub:unsubscribe() end
      if restSub then restSub:unsubscribe() end
    end)
  end)
end

-- The first source to notify anything wins; the others are unsubscribed.
function Observable.amb(...)
  local sources = tpack(...)
  if sources.n <= 1 then return sources[1] end
  return Observable.create(function(observer)
    local n = sources.n
    local winner
    local subs = {}
    local function pick(i)
      if winner == nil then
        winner = i
        for j = 1, n do
          if j ~= i and subs[j] then subs[j]:unsubscribe() end
        end
      end
      return winner == i
    end
    for i = 1, n do
      if winner then break end
      subs[i] = sources[i]:subscribe(Sink(observer, function(_, ...)
        if pick(i) then return observer:onNext(...) end
      end, function(_, e)
        if pick(i) then return observer:onError(e) end
      end, function()
        if pick(i) then return observer:onCompleted() end
      end))
      if winner and winner ~= i then subs[i]:unsubscribe() end
    end
    return Subscription.create(function() unsubscribeAll(subs, n) end)
  end)
end

-- combineLatest(o1, o2, ..., [combinator]): once every source produced a
-- value, each new value emits combinator(latest1, latest2, ...) (default:
-- all latest values). Completes when all sources completed.
function Observable:combineLatest(...)
  markStateful()
  local sources = { self, ... }
  local combinator = identity
  if type(sources[#sources]) == 'function' then combinator = tremove(sources) end
  return Observable.create(function(observer)
    local n = #sources
    local latest, has = {}, {}
    local missing, active = n, n
    local subs = {}
    local done = false
    keepState('combineLatest', function()
      return { latest = latest, has = has, missing = missing,
               active = active, done = done }
    end, function(v)
      latest, has, missing = v.latest or {}, v.has or {}, v.missing
      active, done = v.active, v.done
    end)
    for i = 1, n do
      subs[i] = sources[i]:subscribe(Sink(observer, function(_, value)
        if done then return end
        if not has[i] then has[i] = true missing = missing - 1 end
        latest[i] = value
        if missing == 0 then
          if HOST then return observer:onNext(combinator(tunpack(latest, 1, n))) end
          return forward(observer, pcall(combinator, tunpack(latest, 1, n)))
        end
      end, function(_, e)
        if not done then done = true return observer:onError(e) end
      end, function()
        active = active - 1
        if active == 0 and not done then done = true return observer:onCompleted() end
      end))
    end
    return Subscription.create(function() unsubscribeAll(subs, n) end)
  end)
end

-- zip(o1, o2, ..., [combinator]): pairs the k-th values of every source.
-- Completes when a completed source has no queued value left.
function Observable.zip(...)
  markStateful()
  local sources = { ... }
  local combinator = identity
  if type(sources[#sources]) == 'function' then combinator = tremove(sources) end
  return Observable.create(function(observer)
    local n = #sources
    local queues, completed, subs = {}, {}, {}
    local done = false
    for i = 1, n do queues[i] = { head = 1, tail = 0 } end
    keepState('zip', function()
      return { queues = queues, completed = completed, done = done }
    end, function(v)
      queues, completed, done = v.queues, v.completed or {}, v.done
    end)
    local function finish()
      if done then return end
      done = true
      unsubscribeAll(subs, n)
      return observer:onCompleted()
    end
    local function drain()
      while not done do
        for i = 1, n do
          local q = queues[i]
          if q.tail < q.head then return end
        end
        local row = {}
        for i = 1, n do
          local q = queues[i]
          row[i] = q[q.head]
          q[q.head] = nil
          q.head = q.head + 1
        end
        if HOST then
          observer:onNext(combinator(tunpack(row, 1, n)))
        else
          forward(observer, pcall(combinator, tunpack(row, 1, n)))
        end
        for i = 1, n do
          local q = queues[i]
          if completed[i] and q.tail < q.head then return finish() end
        end
      end
    end
    for i = 1, n do
      if done then break end
      subs[i] = sources[i]:subscribe(Sink(observer, function(_, value)
        if done then return end
        local q = queues[i]
        q.tail = q.tail + 1
        q[q.tail] = value
        return drain()
      end, function(_, e)
        if not done then done = true unsubscribeAll(subs, n) return observer:onError(e) end
      end, function()
        completed[i] = true
        local q = queues[i]
        if q.tail < q.head then return finish() end
      end))
    end
    return Subscription.create(function() unsubscribeAll(subs, n) end)
  end)
end

-- Each event of the source is emitted with the latest value of every other
-- source appended (nil for a source that has not produced yet).
function Observable:with(...)
  local others = tpack(...)
  local source = self
  return Observable.create(function(observer)
    local n = others.n
    local latest, subs = {}, {}
    keepState('with', function() return latest end,
      function(v) latest = v or {} end)
    for i = 1, n do
      subs[i] = others[i]:subscribe(Sink(observer, function(_, value)
        latest[i] = value
      end, nil, noop))
    end
    subs[n + 1] = source:subscribe(Sink(observer, function(_, value)
      return observer:onNext(value, tunpack(latest, 1, n))
    end))
    return Subscription.create(function() unsubscribeAll(subs, n + 1) end)
  end)
end

-- Emits the latest source event each time sampler produces; completes
-- with the sampler.
function Observable:sample(sampler)
  if not sampler then error('Expected an Observable', 2) end
  local source = self
  return Observable.create(function(observer)
    local has, value, packed = false, nil, nil
    keepState('sample', function()
      return { has = has, value = value, packed = packed }
    end, function(v) has, value, packed = v.has, v.value, v.packed end)
    local sourceSub = source:subscribe(Sink(observer, function(_, ...)
      has = true
      if select('#', ...) == 1 then value, packed = ..., nil else packed = tpack(...) end
    end, nil, noop))
    local samplerSub = sampler:subscribe(Sink(observer, function()
      if not has then return end
      if packed then return observer:onNext(tunpack(packed, 1, packed.n)) end
      return observer:onNext(value)
    end))
    return Subscription.create(function()
      sourceSub:unsubscribe()
      samplerSub:unsubscribe()
    end)
  end)
end

--- higher order --------------------------------------------------------------

-- Subscribes to every observable the source produces and forwards their
-- events; completes when the source and all of them completed.
function Observable:flatten()
  local source = self
  return Observable.create(function(observer)
    local active = 1
    local live = {}
    local outerSub
    local function finished()
      active = active - 1
      if active == 0 then return observer:onCompleted() end
    end
    local onNext = passThrough(observer)
    outerSub = source:subscribe(Sink(observer, function(_, inner)
      active = active + 1
      local completed, sub = false, nil
      sub = inner:subscribe(Sink(observer, onNext, nil, function()
        completed = true
        if sub then live[sub] = nil end
        return finished()
      end))
      if not completed then live[sub] = true end
    end, nil, finished))
    return Subscription.create(function()
      outerSub:unsubscribe()
      for s in pairs(live) do s:unsubscribe() end
    end)
  end)
end

function Observable:flatMap(callback)
  return self:map(callback):flatten()
end

-- Forwards the events of the most recent observable the source produced.
function Observable:switch()
  local source = self
  return Observable.create(function(observer)
    local current, generation = nil, 0
    local innerActive, outerDone = false, false
    local outerSub = source:subscribe(Sink(observer, function(_, inner)
      if current then current:unsubscribe() current = nil end
      generation = generation + 1
      local mine = generation
      innerActive = true
      local sub = inner:subscribe(Sink(observer, function(_, ...)
        if mine == generation then return observer:onNext(...) end
      end, function(_, e)
        if mine == generation then return observer:onError(e) end
      end, function()
        if mine ~= generation then return end
        innerActive = false
        if outerDone then return observer:onCompleted() end
      end))
      if mine == generation then current = sub else sub:unsubscribe() end
    end, nil, function()
      outerDone = true
      if not innerActive then return observer:onCompleted() end
    end))
    return Subscription.create(function()
      outerSub:unsubscribe()
      if current then current:unsubscribe() end
    end)
  end)
end

function Observable:flatMapLatest(callback)
  return self:map(callback):switch()
end

--- errors --------------------------------------------------------------------

-- catch(handler): on error, continue with the observable handler(message)
-- returns (handler may also be an observable). Without a handler the error
-- completes the stream; if the handler raises or returns nil, the (new)
-- error is forwarded.
function Observable:catch(handler)
  if handler ~= nil and type(handler) ~= 'function' then
    handler = util.constant(handler)
  end
  local source = self
  return Observable.create(function(observer)
    local sub, nextSub
    sub = source:subscribe(Guarded(observer, passThrough(observer), function(_, e)
      if not handler then return observer:onCompleted() end
      local ok, continuation = try(handler, e)
      if ok and continuation then
        if sub then sub:unsubscribe() end
        nextSub = continuation:subscribe(observer)
      else
        return observer:onError(ok and e or continuation)
      end
    end))
    return Subscription.create(function()
      sub:unsubscribe()
      if nextSub then nextSub:unsubscribe() end
    end)
  end)
end

-- Resubscribes to the source on error, at most count times (forever when
-- count is nil).
function Observable:retry(count)
  local source = self
  return Observable.create(function(observer)
    local retries = 0
    local current
    local subscribing, again, disposed = false, false, false
    local onError
    local function run()
      while not disposed do
        again = false
        subscribing = true
        local sub = source:subscribe(Guarded(observer, passThrough(observer), onError))
        subscribing = false
        if again then sub:unsubscribe() else current = sub return end
      end
    end
    onError = function(_, e)
      retries = retries + 1
      if count and retries > count then return observer:onError(e) end
      if current then current:unsubscribe() current = nil end
      if subscribing then again = true else return run() end
    end
    run()
    return Subscription.create(function()
      disposed = true
      if current then current:unsubscribe() end
    end)
  end)
end

--- event time: windows and joins (our additions) -----------------------------
--[[
RxLua's window and buffer count events. The operators below group and
match events by the time they carry (event time), which is what a stream
of flights, sensor readings or log lines needs when it arrives late or out
of order. They keep their state in the Lua state that runs the stage (so,
in an enclave, inside the enclave with everything else) and mark the stage
stateful.

Watermark. Each operator keeps a watermark W: the claim "no event older
than W is still to come". By default W = (largest event time seen so far)
- lateness; with a `watermark` function, W = (largest value it returned
for a watermark event) - lateness, and event times do not move W. W
never goes back, and starts at -infinity. With keyedWatermark, each key
has its own W (from its own events' times): what a stage partitioned by
key over several workers needs to decide as one worker would.

  event time t:      t >= W: accepted            t < W: late
  window [from, to): open while W < to           emitted when W >= to

Because every accepted event has t >= W, a window emitted once W >= to
can never receive another event: each window is emitted exactly once, in
the order of its end, then its start, then its creation. A late event is
counted (stats.late) and given to onLate(value, t, W) if there is one;
it joins no window. On completion every open window is emitted (oldest
first), then onCompleted. On error, open windows are dropped and the error
passes on.

State per key: key -> start -> window { from, to, key, count, value |
events }. Open windows are scanned only when W passes the earliest end.
]]

-- The key of unkeyed windows: a private table, never equal to a user key.
local NOKEY = {}

local function callable(f)
  if type(f) == 'function' then return true end
  local mt = type(f) == 'table' and getmetatable(f)
  return type(mt) == 'table' and mt.__call ~= nil
end

-- Checks an options table: only known keys, the right types. Errors name
-- the operator and the option, at the caller of the operator (level 3).
local function options(name, opts, known)
  if type(opts) ~= 'table' then
    error(name .. ': expected an options table, got ' .. type(opts), 3)
  end
  for k in pairs(opts) do
    if known[k] == nil then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      table.sort(names)
      error(name .. ": unknown option '" .. tostring(k) .. "' (expected "
        .. tconcat(names, ', ') .. ')', 3)
    end
  end
  for k, kind in pairs(known) do
    local v = opts[k]
    if v ~= nil then
      local good
      if kind == 'function' then good = callable(v)
      elseif kind == 'number' then good = type(v) == 'number' and v == v
      elseif kind == 'table' then good = type(v) == 'table'
      else good = true end
      if not good then
        error(name .. ': option ' .. k .. ' must be a ' .. kind .. ', got '
          .. type(v), 3)
      end
    end
  end
  return opts
end

-- Reports a bad value met while running: raised in host mode (the host
-- rejects that event), routed to onError otherwise.
local function fault(observer, message)
  if HOST then error(message, 0) end
  return observer:onError(message)
end

-- An event time or a watermark: a number, not NaN; an event time is also
-- finite (a watermark of math.huge says that the stream is over).
local function badTime(name, what, t)
  if type(t) ~= 'number' then
    return name .. ': the ' .. what .. ' function returned a ' .. type(t)
      .. ' (' .. tostring(t) .. '), not a number'
  end
  if t ~= t then return name .. ': the ' .. what .. ' function returned NaN' end
  if what ~= 'watermark' and (t == math.huge or t == -math.huge) then
    return name .. ': the ' .. what .. ' function returned ' .. tostring(t)
      .. ' (event times are finite)'
  end
end

local function byEnd(a, b)
  if a.to ~= b.to then return a.to < b.to end
  if a.from ~= b.from then return a.from < b.from end
  return a.seq < b.seq
end

local windowOptions = {
  size = 'number', slide = 'number', time = 'function', key = 'function',
  lateness = 'number', watermark = 'function', reduce = 'function',
  seed = 'any', onLate = 'function', stats = 'table', keyedWatermark = 'any',
}

local function eventWindows(source, name, opts)
  local size, slide = opts.size, opts.slide or opts.size
  if not size or size <= 0 or size == math.huge then
    error(name .. ': option size must be a positive finite number', 3)
  end
  if slide <= 0 or slide > size then
    error(name .. ': option slide must be a number in (0, size]', 3)
  end
  if size / slide > 1000 then
    error(name .. ': an event would belong to more than 1000 windows '
      .. '(size / slide = ' .. tostring(size / slide) .. ')', 3)
  end
  if not opts.time then
    error(name .. ': option time (the event-time function) is required', 3)
  end
  local lateness = opts.lateness or 0
  if lateness < 0 then error(name .. ': option lateness must be >= 0', 3) end
  local timeOf, keyOf, watermarkOf = opts.time, opts.key, opts.watermark
  local keyed = opts.keyedWatermark
  if keyed ~= nil and type(keyed) ~= 'boolean' then
    error(name .. ': option keyedWatermark must be a boolean, got ' .. type(keyed), 3)
  end
  if keyed and (watermarkOf or not keyOf) then
    error(name .. ': option keyedWatermark needs the key option and no '
      .. 'watermark function (a watermark event has no key)', 3)
  end
  local accumulator, seed, onLate = opts.reduce, opts.seed, opts.onLate
  local stats = opts.stats or {}
  local hasSeed = seed ~= nil
  local seedIsFactory = callable(seed)
  markStateful()
  return Observable.create(function(observer)
    local index = {}          -- key -> from -> window
    local nextEnd = math.huge -- earliest end among open windows
    local wm, maxTime = -math.huge, -math.huge
    local seq, dead = 0, false
    local starts, accs = {}, {} -- scratch, reused by every event
    -- keyedWatermark: W per key (key -> W, key -> largest time)
    local keyWm, keyMax = {}, {}
    stats.late, stats.windows, stats.events = 0, 0, 0
    stats.open, stats.watermark = 0, wm

    -- checkpoint: the open windows as a list in creation order (the
    -- private NOKEY becomes nokey = true), the clocks and the counters
    keepState(name, function()
      local wins = {}
      for _, byFrom in pairs(index) do
        for _, win in pairs(byFrom) do
          local w = { from = win.from, to = win.to, seq = win.seq,
                      count = win.count, acc = win.acc, events = win.events }
          if win.key == NOKEY then w.nokey = true else w.key = win.key end
          wins[#wins + 1] = w
        end
      end
      table.sort(wins, function(a, b) return a.seq < b.seq end)
      local kw = {}
      for k, w in pairs(keyWm) do
        kw[#kw + 1] = { key = k ~= NOKEY and k or nil, nokey = k == NOKEY or nil,
                        wm = w, max = keyMax[k] }
      end
      return { windows = wins, nextEnd = nextEnd, wm = wm, keyed = kw,
               maxTime = maxTime, seq = seq, dead = dead,
               stats = { late = stats.late, windows = stats.windows,
                         events = stats.events, open = stats.open } }
    end, function(v)
      index = {}
      local wins = v.windows or {}
      for i = 1, #wins do
        local w = wins[i]
        local key = w.key
        if w.nokey then key = NOKEY end
        if key == nil then
          error('snapshot: ' .. name .. ': window ' .. i .. ' has no key', 0)
        end
        local byFrom = index[key]
        if not byFrom then byFrom = {} index[key] = byFrom end
        byFrom[w.from] = { from = w.from, to = w.to, key = key, seq = w.seq,
                           count = w.count, acc = w.acc, events = w.events }
        if not accumulator and not w.events then byFrom[w.from].events = {} end
      end
      nextEnd, wm, maxTime = v.nextEnd, v.wm, v.maxTime
      seq, dead = v.seq, v.dead
      keyWm, keyMax = {}, {}
      for _, x in ipairs(v.keyed or {}) do
        local k = x.key
        if x.nokey then k = NOKEY end
        if k == nil then error('snapshot: ' .. name .. ': a key watermark has no key', 0) end
        keyWm[k], keyMax[k] = x.wm, x.max
      end
      local st = v.stats or {}
      stats.late, stats.windows = st.late or 0, st.windows or 0
      stats.events, stats.open = st.events or 0, st.open or 0
      stats.watermark = wm
    end)

    -- Emits one window that just left the state.
    local function emitWindow(win)
      local out = { from = win.from, to = win.to, count = win.count }
      if win.key ~= NOKEY then out.key = win.key end
      if accumulator then out.value = win.acc else out.events = win.events end
      stats.windows = stats.windows + 1
      return observer:onNext(out)
    end

    -- Emits every open window whose end is <= w (all for math.huge). A
    -- window leaves the state just before it is emitted: if a downstream
    -- callback raises (host mode), the windows not yet emitted stay open
    -- and go out with the next event.
    local function closeUpTo(w)
      if w < nextEnd then return end
      local ready, rest = {}, math.huge
      for _, byFrom in pairs(index) do
        for _, win in pairs(byFrom) do
          if win.to <= w then
            ready[#ready + 1] = win
          elseif win.to < rest then
            rest = win.to
          end
        end
      end
      table.sort(ready, byEnd)
      if ready[1] and ready[1].to < rest then nextEnd = ready[1].to end
      for i = 1, #ready do
        local win = ready[i]
        local byFrom = index[win.key]
        byFrom[win.from] = nil
        if next(byFrom) == nil then index[win.key] = nil end
        stats.open = stats.open - 1
        if i < #ready then nextEnd = mmin(rest, ready[i + 1].to) else nextEnd = rest end
        emitWindow(win)
      end
    end

    -- keyedWatermark: a key's windows close when its own W passes their
    -- end. nextEnd stays a lower bound of the open windows' ends (it only
    -- skips scans).
    local function closeKey(key, w)
      local byFrom = index[key]
      if not byFrom then return end
      local ready = {}
      for _, win in pairs(byFrom) do
        if win.to <= w then ready[#ready + 1] = win end
      end
      table.sort(ready, byEnd)
      for i = 1, #ready do
        local win = ready[i]
        byFrom[win.from] = nil
        if next(byFrom) == nil then index[key] = nil end
        stats.open = stats.open - 1
        emitWindow(win)
      end
    end

    local function advance(w)
      if w <= wm then return end
      wm = w
      stats.watermark = w
      return closeUpTo(w)
    end

    local function onEvent(_, ...)
      if dead then return end
      local ok, r
      if watermarkOf then
        ok, r = try(watermarkOf, ...)
        if not ok then dead = true return observer:onError(r) end
        if r ~= nil and r ~= false then -- a watermark event: moves W
          local bad = badTime(name, 'watermark', r)
          if bad then dead = not HOST return fault(observer, bad) end
          return advance(r - lateness)
        end
      end
      local t
      ok, t = try(timeOf, ...)
      if not ok then dead = true return observer:onError(t) end
      local bad = badTime(name, 'time', t)
      if bad then dead = not HOST return fault(observer, bad) end
      local key = NOKEY
      if keyOf then
        ok, r = try(keyOf, ...)
        if not ok then dead = true return observer:onError(r) end
        if r ~= nil then
          if r ~= r then
            dead = not HOST
            return fault(observer, name .. ': the key function returned NaN')
          end
          key = r
        end
      end
      local w = wm
      if keyed then w = keyWm[key] or -math.huge end
      if t < w then
        if onLate then
          ok, r = try(onLate, (...), t, w)
          if not ok then dead = true return observer:onError(r) end
        end
        stats.late = stats.late + 1
        return
      end
      -- the windows of t: starts k * slide with from <= t < from + size
      local byFrom = index[key]
      local n = 0
      local from = t - t % slide -- (t // slide) * slide, in Lua 5.1 too
      while from > t - size do
        n = n + 1
        starts[n] = from
        if accumulator then
          local win = byFrom and byFrom[from]
          local base, has
          if win then
            base, has = win.acc, true
          elseif hasSeed then
            has = true
            if seedIsFactory then
              ok, base = try(seed)
              if not ok then dead = true return observer:onError(base) end
            else
              base = seed
            end
          end
          if has then
            ok, r = try(accumulator, base, ...)
            if not ok then dead = true return observer:onError(r) end
            accs[n] = r
          else
            accs[n] = (...) -- no seed: the first value starts the window
          end
        end
        from = from - slide
      end
      -- commit (every user callback has returned)
      if not byFrom and n > 0 then
        byFrom = {}
        index[key] = byFrom
      end
      for i = 1, n do
        local s = starts[i]
        local win = byFrom[s]
        if not win then
          seq = seq + 1
          -- integral bounds as integers (fractional times give floats)
          win = { from = mtointeger(s) or s, to = mtointeger(s + size) or s + size,
                  key = key, seq = seq, count = 0 }
          if not accumulator then win.events = {} end
          byFrom[s] = win
          stats.open = stats.open + 1
          if win.to < nextEnd then nextEnd = win.to end
        end
        win.count = win.count + 1
        if accumulator then
          win.acc = accs[i]
        else
          win.events[win.count] = (...)
        end
      end
      stats.events = stats.events + 1
      if keyed then
        if t <= (keyMax[key] or -math.huge) then return end
        keyMax[key], keyWm[key] = t, t - lateness
        if t - lateness > wm then wm = t - lateness stats.watermark = wm end
        return closeKey(key, t - lateness)
      end
      if t > maxTime then maxTime = t end
      if not watermarkOf then return advance(maxTime - lateness) end
    end

    return source:subscribe(Sink(observer, onEvent, function(_, e)
      if dead then return end
      dead = true
      return observer:onError(e)
    end, function()
      if dead then return end
      dead = true
      closeUpTo(math.huge)
      warnLate(name, stats.late, onLate, keyed)
      return observer:onCompleted()
    end))
  end)
end

-- tumblingWindow{ size, time, key?, lateness?, watermark?, reduce?, seed?,
-- onLate?, stats? }: consecutive windows [k*size, (k+1)*size) of event
-- time, per key. Emits one table per window: { from, to, key, count,
-- value } with reduce (value: the fold of its events, as reduce(
-- accumulator, seed) does; a function seed is called for each window), or
-- { from, to, key, count, events } without (the events' first values in
-- arrival order). See the notes above for the watermark and late events.
function Observable:tumblingWindow(opts)
  options('tumblingWindow', opts, windowOptions)
  if opts.slide ~= nil and opts.slide ~= opts.size then
    error('tumblingWindow: no slide option (use slidingWindow)', 2)
  end
  return eventWindows(self, 'tumblingWindow', opts)
end

-- slidingWindow{ size, slide, ... }: windows [k*slide, k*slide + size) of
-- event time (slide <= size), so an event belongs to about size / slide
-- windows. Otherwise as tumblingWindow.
function Observable:slidingWindow(opts)
  options('slidingWindow', opts, windowOptions)
  if opts.slide == nil then
    error('slidingWindow: option slide is required', 2)
  end
  return eventWindows(self, 'slidingWindow', opts)
end

-- joinTable(lookup, { key, combine?, onMiss?, stats? }): joins each event
-- with lookup[key(event)], a table loaded beforehand (carrier codes to
-- names, ...). A hit emits combine(event, row, key) (default: the two
-- values event, row). A miss (no key, or lookup[key] == nil) is dropped by
-- default (onMiss = 'drop'); with 'keep' it emits combine(event, nil, key);
-- with a function, onMiss(event, key) is called and nothing is emitted.
-- Counts: stats.hits, stats.misses. It keeps no state: the stage stays
-- stateless.
-- Emits what combine returned (ok, results...), counting a hit or a miss.
local function joined(observer, stats, row, ok, ...)
  if not ok then return observer:onError((...)) end
  if row == nil then stats.misses = stats.misses + 1
  else stats.hits = stats.hits + 1 end
  return observer:onNext(...)
end

function Observable:joinTable(lookup, opts)
  if type(lookup) ~= 'table' then
    error('joinTable: expected a lookup table, got ' .. type(lookup), 2)
  end
  options('joinTable', opts, { key = 'function', combine = 'function',
    onMiss = 'any', stats = 'table' })
  if not opts.key then error('joinTable: option key is required', 2) end
  local onMiss = opts.onMiss or 'drop'
  if onMiss ~= 'drop' and onMiss ~= 'keep' and not callable(onMiss) then
    error("joinTable: option onMiss must be 'drop', 'keep' or a function", 2)
  end
  local keyOf, combine = opts.key, opts.combine
  local stats = opts.stats or {}
  local source = self
  return Observable.create(function(observer)
    stats.hits, stats.misses = 0, 0
    return source:subscribe(Sink(observer, function(_, ...)
      local value = ...
      local ok, key = try(keyOf, ...)
      if not ok then return observer:onError(key) end
      local row
      if key ~= nil and key == key then row = lookup[key] end
      if row == nil then
        if onMiss == 'drop' then stats.misses = stats.misses + 1 return end
        if onMiss ~= 'keep' then
          ok, key = try(onMiss, value, key)
          if not ok then return observer:onError(key) end
          stats.misses = stats.misses + 1
          return
        end
      end
      if combine then
        return joined(observer, stats, row, try(combine, value, row, key))
      end
      if row == nil then stats.misses = stats.misses + 1
      else stats.hits = stats.hits + 1 end
      return observer:onNext(value, row)
    end))
  end)
end

-- left:joinWindow(right, { key | leftKey + rightKey, time | leftTime +
-- rightTime, within, lateness?, combine?, onLate?, onMiss?, stats? }):
-- an interval join of two streams. A left event l and a right event r
-- match when key(l) == key(r) and |time(l) - time(r)| <= within; each
-- match emits combine(l, r, key) (default: the two values l, r) as soon as
-- the second of the two arrives. Both streams share one watermark W (the
-- largest event time seen on either side, minus lateness); an event with
-- t < W is late (stats.late, onLate(side, event, t, W)); an event is
-- forgotten once t + within < W, when no accepted event can match it any
-- more. An event forgotten without a match, or still unmatched when both
-- streams completed, is a miss: stats.missLeft / stats.missRight and
-- onMiss(side, event, key) ('left' or 'right'). State: per side, per key,
-- the events within reach, in arrival order. Completes when both
-- streams completed; an error of either stream passes on.
function Observable:joinWindow(right, opts)
  if not (type(right) == 'table' and right.subscribe) then
    error('joinWindow: expected an observable to join with, got '
      .. type(right), 2)
  end
  options('joinWindow', opts, { key = 'function', leftKey = 'function',
    rightKey = 'function', time = 'function', leftTime = 'function',
    rightTime = 'function', within = 'number', lateness = 'number',
    combine = 'function', onLate = 'function', onMiss = 'function',
    stats = 'table', keyedWatermark = 'any' })
  local keyOf = { left = opts.leftKey or opts.key, right = opts.rightKey or opts.key }
  local timeOf = { left = opts.leftTime or opts.time, right = opts.rightTime or opts.time }
  for _, side in ipairs({ 'left', 'right' }) do
    if not keyOf[side] then
      error('joinWindow: option key (or ' .. side .. 'Key) is required', 2)
    end
    if not timeOf[side] then
      error('joinWindow: option time (or ' .. side .. 'Time) is required', 2)
    end
  end
  local within, lateness = opts.within, opts.lateness or 0
  if not within or within < 0 or within == math.huge then
    error('joinWindow: option within must be a finite number >= 0', 2)
  end
  if lateness < 0 then error('joinWindow: option lateness must be >= 0', 2) end
  local keyed = opts.keyedWatermark
  if keyed ~= nil and type(keyed) ~= 'boolean' then
    error('joinWindow: option keyedWatermark must be a boolean, got ' .. type(keyed), 2)
  end
  local combine, onLate, onMiss = opts.combine, opts.onLate, opts.onMiss
  local stats = opts.stats or {}
  local other = { left = 'right', right = 'left' }
  markStateful()
  local left = self
  return Observable.create(function(observer)
    -- Every buffered event is in `fifo` (arrival order) and in the list of
    -- its side and key (buffers[side][key]: entries, .live, .gone). An
    -- evicted entry is marked gone and dropped from its list lazily, when
    -- that list is next read or grown, or all at once when none is live.
    local buffers = { left = {}, right = {} }
    local fifo, head, tail = {}, 1, 0
    local wm, maxTime = -math.huge, -math.huge
    local completed, dead = 0, false
    local subs = {}
    -- keyedWatermark: W per key (both sides share it), and per key the
    -- buffered events in arrival order (instead of the one fifo), so that
    -- a quiet key holds back nobody else's.
    local keyWm, keyMax, keyFifo = {}, {}, {}
    stats.late, stats.matches, stats.missLeft, stats.missRight = 0, 0, 0, 0
    stats.buffered, stats.watermark = 0, wm

    -- checkpoint: the buffered events in arrival order (each one's list
    -- is rebuilt from its side and key), the clocks and the counters
    keepState('joinWindow', function()
      local entries = {}
      for i = head, tail do
        local e = fifo[i]
        entries[#entries + 1] = { t = e.t, v = e.v, side = e.side,
                                  key = e.key, matched = e.matched }
      end
      local kw = {} -- keyed: per key, its W and its events in order
      for k, w in pairs(keyWm) do
        local q, evs = keyFifo[k], {}
        for i = q and q.head or 1, q and q.tail or 0 do
          local e = q[i]
          evs[#evs + 1] = { t = e.t, v = e.v, side = e.side, matched = e.matched }
        end
        kw[#kw + 1] = { key = k, wm = w, max = keyMax[k], events = evs }
      end
      return { entries = entries, wm = wm, maxTime = maxTime, keyed = kw,
               completed = completed, dead = dead,
               stats = { late = stats.late, matches = stats.matches,
                         missLeft = stats.missLeft,
                         missRight = stats.missRight } }
    end, function(v)
      buffers, fifo, head, tail = { left = {}, right = {} }, {}, 1, 0
      local entries = v.entries or {}
      for i = 1, #entries do
        local x = entries[i]
        local side = x.side
        if (side ~= 'left' and side ~= 'right') or x.key == nil then
          error('snapshot: joinWindow: buffered event ' .. i
            .. ' has no side or no key', 0)
        end
        local mine = buffers[side][x.key]
        if not mine then
          mine = { live = 0, gone = 0 }
          buffers[side][x.key] = mine
        end
        local entry = { t = x.t, v = x.v, side = side, key = x.key,
                        list = mine, matched = x.matched }
        mine[#mine + 1] = entry
        mine.live = mine.live + 1
        tail = tail + 1
        fifo[tail] = entry
      end
      wm, maxTime, completed, dead = v.wm, v.maxTime, v.completed, v.dead
      keyWm, keyMax, keyFifo = {}, {}, {}
      local nkeyed = 0
      for _, x in ipairs(v.keyed or {}) do
        local k = x.key
        if k == nil then error('snapshot: joinWindow: a key watermark has no key', 0) end
        keyWm[k], keyMax[k] = x.wm, x.max
        local evs = x.events or {}
        if #evs > 0 then keyFifo[k] = { head = 1, tail = 0 } end
        for i = 1, #evs do
          local e = evs[i]
          if e.side ~= 'left' and e.side ~= 'right' then
            error('snapshot: joinWindow: buffered event ' .. i .. ' of a key has no side', 0)
          end
          local mine = buffers[e.side][k]
          if not mine then mine = { live = 0, gone = 0 } buffers[e.side][k] = mine end
          local entry = { t = e.t, v = e.v, side = e.side, key = k, list = mine,
                          matched = e.matched }
          mine[#mine + 1] = entry
          mine.live = mine.live + 1
          local q = keyFifo[k]
          q.tail = q.tail + 1
          q[q.tail] = entry
          nkeyed = nkeyed + 1
        end
      end
      local st = v.stats or {}
      stats.late, stats.matches = st.late or 0, st.matches or 0
      stats.missLeft, stats.missRight = st.missLeft or 0, st.missRight or 0
      stats.buffered, stats.watermark = tail + nkeyed, wm
    end)

    local function miss(side, entry, key)
      if side == 'left' then stats.missLeft = stats.missLeft + 1
      else stats.missRight = stats.missRight + 1 end
      if onMiss then
        local ok, e = try(onMiss, side, entry.v, key)
        if not ok then dead = true return observer:onError(e) end
      end
    end

    -- Drops the gone entries of a list once they are half of it.
    local function tidy(list)
      local n = #list
      if list.gone * 2 <= n then return end
      local j = 0
      for i = 1, n do
        local e = list[i]
        if not e.gone then j = j + 1 list[j] = e end
      end
      for i = n, j + 1, -1 do list[i] = nil end
      list.gone = 0
    end

    -- Forgets, in arrival order, the events no accepted event can match
    -- any more (t + within < W; all of them when flushing), reporting the
    -- unmatched ones. An event stays while an older arrival stays: that
    -- costs memory when events arrive out of time order, never a wrong
    -- match (an accepted event has t' >= W > t + within).
    local function evict(flush)
      while head <= tail do
        local e = fifo[head]
        if not flush and e.t + within >= wm then return end
        fifo[head] = nil
        head = head + 1
        e.gone = true
        stats.buffered = stats.buffered - 1
        local list = e.list
        list.live, list.gone = list.live - 1, list.gone + 1
        if list.live == 0 and buffers[e.side][e.key] == list then
          buffers[e.side][e.key] = nil
        end
        if not e.matched then
          miss(e.side, e, e.key)
          if dead then return end
        end
      end
    end

    -- keyedWatermark: forgets the events of one key, by its own W.
    local function evictKey(key, flush)
      local q = keyFifo[key]
      local w = keyWm[key]
      while q and q.head <= q.tail do
        local e = q[q.head]
        if not flush and e.t + within >= w then return end
        q[q.head] = nil
        q.head = q.head + 1
        if q.head > q.tail then keyFifo[key] = nil end
        e.gone = true
        stats.buffered = stats.buffered - 1
        local list = e.list
        list.live, list.gone = list.live - 1, list.gone + 1
        if list.live == 0 and buffers[e.side][e.key] == list then
          buffers[e.side][e.key] = nil
        end
        if not e.matched then
          miss(e.side, e, e.key)
          if dead then return end
        end
      end
    end

    local function onSide(side)
      return function(_, ...)
        if dead then return end
        local v = ...
        local ok, t = try(timeOf[side], ...)
        if not ok then dead = true return observer:onError(t) end
        local bad = badTime('joinWindow', side .. 'Time', t)
        if bad then dead = not HOST return fault(observer, bad) end
        local key
        ok, key = try(keyOf[side], ...)
        if not ok then dead = true return observer:onError(key) end
        if key == nil or key ~= key then -- cannot match anything
          return miss(side, { v = v }, key)
        end
        local w = wm
        if keyed then w = keyWm[key] or -math.huge end
        if t < w then
          if onLate then
            ok, bad = try(onLate, side, v, t, w)
            if not ok then dead = true return observer:onError(bad) end
          end
          stats.late = stats.late + 1
          return
        end
        -- matches, computed before anything changes
        local theirs = buffers[other[side]][key]
        local outs, hits = {}, {}
        if theirs then
          tidy(theirs)
          for i = 1, #theirs do
            local e = theirs[i]
            local d = e.t - t
            if not e.gone and d <= within and -d <= within then
              local l, r = v, e.v
              if side == 'right' then l, r = e.v, v end
              if combine then
                local res = tpack(try(combine, l, r, key))
                if not res[1] then dead = true return observer:onError(res[2]) end
                outs[#outs + 1] = res
              else
                outs[#outs + 1] = { true, l, r, n = 3 }
              end
              hits[#hits + 1] = e
            end
          end
        end
        -- commit
        local mine = buffers[side][key]
        if mine then
          tidy(mine)
        else
          mine = { live = 0, gone = 0 }
          buffers[side][key] = mine
        end
        local entry = { t = t, v = v, side = side, key = key, list = mine,
                        matched = #hits > 0 }
        mine[#mine + 1] = entry
        mine.live = mine.live + 1
        if keyed then
          local q = keyFifo[key]
          if not q then q = { head = 1, tail = 0 } keyFifo[key] = q end
          q.tail = q.tail + 1
          q[q.tail] = entry
          if t > (keyMax[key] or -math.huge) then
            keyMax[key], keyWm[key] = t, t - lateness
            if t - lateness > wm then wm = t - lateness stats.watermark = wm end
          end
        else
          tail = tail + 1
          fifo[tail] = entry
        end
        stats.buffered = stats.buffered + 1
        for i = 1, #hits do hits[i].matched = true end
        if keyed then
          for i = 1, #outs do
            stats.matches = stats.matches + 1
            observer:onNext(tunpack(outs[i], 2, outs[i].n))
          end
          return evictKey(key, false)
        end
        if t > maxTime then
          maxTime = t
          if maxTime - lateness > wm then
            wm = maxTime - lateness
            stats.watermark = wm
          end
        end
        for i = 1, #outs do
          stats.matches = stats.matches + 1
          observer:onNext(tunpack(outs[i], 2, outs[i].n))
        end
        return evict(false)
      end
    end

    local function onError(_, e)
      if dead then return end
      dead = true
      unsubscribeAll(subs, 2)
      return observer:onError(e)
    end
    local function onCompleted()
      if dead then return end
      completed = completed + 1
      if completed < 2 then return end
      evict(true)
      if dead then return end
      if keyed then
        local keys = {}
        for k in pairs(keyFifo) do keys[#keys + 1] = k end
        for i = 1, #keys do
          evictKey(keys[i], true)
          if dead then return end
        end
      end
      dead = true
      warnLate('joinWindow', stats.late, onLate, keyed)
      return observer:onCompleted()
    end
    subs[1] = left:subscribe(Sink(observer, onSide('left'), onError, onCompleted))
    subs[2] = right:subscribe(Sink(observer, onSide('right'), onError, onCompleted))
    return Subscription.create(function() unsubscribeAll(subs, 2) end)
  end)
end

--- time (needs a scheduler) --------------------------------------------------

local function scheduled(observer, scheduler, delay, method, ...)
  local values = tpack(...)
  return scheduler:schedule(function()
    return observer[method](observer, tunpack(values, 1, values.n))
  end, delay)
end

-- Emits an event only once time has passed without another one.
function Observable:debounce(time, scheduler)
  if not scheduler then error('debounce needs a scheduler', 2) end
  time = time or 0
  local source = self
  return Observable.create(function(observer)
    local pending, final
    local sub = source:subscribe(Sink(observer, function(_, ...)
      if pending then pending:unsubscribe() end
      pending = scheduled(observer, scheduler, time, 'onNext', ...)
    end, function(_, e)
      if pending then pending:unsubscribe() pending = nil end
      return observer:onError(e)
    end, function()
      final = scheduled(observer, scheduler, time, 'onCompleted')
    end))
    return Subscription.create(function()
      sub:unsubscribe()
      if pending then pending:unsubscribe() end
      if final then final:unsubscribe() end
    end)
  end)
end

-- Shifts every notification by time (a number or a function returning
-- one) on scheduler.
function Observable:delay(time, scheduler)
  if not scheduler then error('delay needs a scheduler', 2) end
  local getTime = type(time) == 'function' and time or util.constant(time or 0)
  local source = self
  return Observable.create(function(observer)
    local live = {}
    local function later(method, ...)
      local values = tpack(...)
      local handle
      handle = scheduler:schedule(function()
        if handle then live[handle] = nil end
        return observer[method](observer, tunpack(values, 1, values.n))
      end, getTime())
      if handle and not handle.unsubscribed then live[handle] = true end
    end
    local sub = source:subscribe({
      onNext = function(_, ...) return later('onNext', ...) end,
      onError = function(_, e) return later('onError', e) end,
      onCompleted = function() return later('onCompleted') end,
    })
    return Subscription.create(function()
      sub:unsubscribe()
      for h in pairs(live) do h:unsubscribe() end
    end)
  end)
end

-------------------------------------------------------------------------------
-- Schedulers
-------------------------------------------------------------------------------

local ImmediateScheduler = {}
ImmediateScheduler.__index = ImmediateScheduler
ImmediateScheduler.__tostring = function() return 'ImmediateScheduler' end
Rx.ImmediateScheduler = ImmediateScheduler

function ImmediateScheduler.create()
  return setmetatable({}, ImmediateScheduler)
end

function ImmediateScheduler:schedule(action)
  action()
  return Subscription.create()
end

-- Runs actions as coroutines when update(dt) advances its clock past their
-- due time. An action may coroutine.yield(delay) to run again later.
local CooperativeScheduler = {}
CooperativeScheduler.__index = CooperativeScheduler
CooperativeScheduler.__tostring = function() return 'CooperativeScheduler' end
Rx.CooperativeScheduler = CooperativeScheduler

function CooperativeScheduler.create(currentTime)
  return setmetatable({ tasks = {}, currentTime = currentTime or 0 },
    CooperativeScheduler)
end

function CooperativeScheduler:schedule(action, delay)
  local task = {
    thread = cocreate(action),
    due = self.currentTime + (delay or 0),
    done = false,
  }
  self.tasks[#self.tasks + 1] = task
  return Subscription.create(function() task.done = true end)
end

local function compact(tasks)
  local j = 0
  local n = #tasks
  for k = 1, n do
    local t = tasks[k]
    if not t.done then
      j = j + 1
      tasks[j] = t
    end
  end
  for k = n, j + 1, -1 do tasks[k] = nil end
end

function CooperativeScheduler:update(delta)
  self.currentTime = self.currentTime + (delta or 0)
  local tasks = self.tasks
  local i = 1
  while i <= #tasks do
    local task = tasks[i]
    if not task.done and self.currentTime >= task.due then
      local ok, delay = coresume(task.thread)
      if not ok then
        task.done = true
        compact(tasks)
        error(delay, 0)
      end
      if costatus(task.thread) == 'dead' then
        task.done = true
      else
        task.due = mmax(task.due + (delay or 0), self.currentTime)
      end
    end
    i = i + 1
  end
  compact(tasks)
end

function CooperativeScheduler:isEmpty()
  compact(self.tasks)
  return #self.tasks == 0
end

-------------------------------------------------------------------------------
-- Subjects
-------------------------------------------------------------------------------

-- Subject: an observable and an observer. Its class table falls back to
-- Observable, so static constructors work on it too
-- (Rx.Subject.fromFileByLine(f) == Rx.Observable.fromFileByLine(f)).
local Subject = setmetatable({}, Observable)
Subject.__index = Subject
Subject.__tostring = function() return 'Subject' end
Rx.Subject = Subject

function Subject.create()
  return setmetatable({ observers = {}, stopped = false }, Subject)
end

-- Adds an observer (copy on write: an event being delivered keeps its
-- snapshot, so observers may unsubscribe from inside onNext).
local function addObserver(self, observer)
  local old = self.observers
  local new = {}
  local n = #old
  for i = 1, n do new[i] = old[i] end
  new[n + 1] = observer
  self.observers = new
  return Subscription.create(function()
    local cur = self.observers
    local out, removed = {}, false
    for i = 1, #cur do
      if not removed and cur[i] == observer then
        removed = true
      else
        out[#out + 1] = cur[i]
      end
    end
    self.observers = out
  end)
end

-- Notifies an observer subscribing after the subject stopped.
local function lateTerminal(self, observer)
  if self.hasError then
    observer:onError(self.errorMessage)
  else
    observer:onCompleted()
  end
  return Subscription.create()
end

function Subject:subscribe(onNext, onError, onCompleted)
  local observer = toObserver(onNext, onError, onCompleted)
  if self.stopped then return lateTerminal(self, observer) end
  return addObserver(self, observer)
end

function Subject:onNext(...)
  if self.stopped then return end
  local observers = self.observers
  local n = #observers
  if n == 1 then return observers[1]:onNext(...) end
  for i = 1, n do observers[i]:onNext(...) end
end

function Subject:onError(message)
  if self.stopped then return end
  self.stopped = true
  self.hasError, self.errorMessage = true, message
  local observers = self.observers
  for i = 1, #observers do observers[i]:onError(message) end
end

function Subject:onCompleted()
  if self.stopped then return end
  self.stopped = true
  local observers = self.observers
  for i = 1, #observers do observers[i]:onCompleted() end
end

Subject.__call = Subject.onNext

-- BehaviorSubject: remembers the latest value and gives it to new
-- subscribers.
local BehaviorSubject = setmetatable({}, Subject)
BehaviorSubject.__index = BehaviorSubject
BehaviorSubject.__tostring = function() return 'BehaviorSubject' end
Rx.BehaviorSubject = BehaviorSubject

local function storeValue(self, ...)
  self.hasValue = true
  if select('#', ...) == 1 then
    self._value, self._packed = ..., nil
  else
    self._value, self._packed = nil, tpack(...)
  end
end

-- The latest value of a Behavior or Async subject, for a checkpoint.
local function keepValue(name, self)
  keepState(name, function()
    return { hasValue = self.hasValue, value = self._value,
             packed = self._packed }
  end, function(v)
    self.hasValue, self._value, self._packed = v.hasValue, v.value, v.packed
  end)
end

function BehaviorSubject.create(...)
  local self = setmetatable({ observers = {}, stopped = false, hasValue = false },
    BehaviorSubject)
  if select('#', ...) > 0 then storeValue(self, ...) end
  keepValue('BehaviorSubject', self)
  return self
end

function BehaviorSubject:subscribe(onNext, onError, onCompleted)
  local observer = toObserver(onNext, onError, onCompleted)
  if self.stopped then
    -- RxLua: every subscriber receives the latest value
    if self.hasValue then observer:onNext(self:getValue()) end
    return lateTerminal(self, observer)
  end
  local sub = addObserver(self, observer)
  if self.hasValue then observer:onNext(self:getValue()) end
  return sub
end

function BehaviorSubject:onNext(...)
  if self.stopped then return end
  storeValue(self, ...)
  return Subject.onNext(self, ...)
end

function BehaviorSubject:getValue()
  local p = self._packed
  if p then return tunpack(p, 1, p.n) end
  return self._value
end

BehaviorSubject.__call = BehaviorSubject.onNext

-- ReplaySubject: replays the last bufferSize events (all when nil) to new
-- subscribers.
local ReplaySubject = setmetatable({}, Subject)
ReplaySubject.__index = ReplaySubject
ReplaySubject.__tostring = function() return 'ReplaySubject' end
Rx.ReplaySubject = ReplaySubject

function ReplaySubject.create(bufferSize)
  local self = setmetatable({ observers = {}, stopped = false,
    buffer = newQueue(), bufferSize = bufferSize }, ReplaySubject)
  keepState('ReplaySubject', function() return queueState(self.buffer) end,
    function(v) setQueueState(self.buffer, v) end)
  return self
end

function ReplaySubject:subscribe(onNext, onError, onCompleted)
  local observer = toObserver(onNext, onError, onCompleted)
  local q = self.buffer
  for i = q.head, q.tail do observer:onNext(q:get(i)) end
  if self.stopped then return lateTerminal(self, observer) end
  return addObserver(self, observer)
end

function ReplaySubject:onNext(...)
  if self.stopped then return end
  local q = self.buffer
  q:push(...)
  local size = self.bufferSize
  if size and q:size() > size then q:shift() end
  return Subject.onNext(self, ...)
end

ReplaySubject.__call = ReplaySubject.onNext

-- AsyncSubject: emits only its last value, when it completes.
local AsyncSubject = setmetatable({}, Subject)
AsyncSubject.__index = AsyncSubject
AsyncSubject.__tostring = function() return 'AsyncSubject' end
Rx.AsyncSubject = AsyncSubject

function AsyncSubject.create()
  local self = setmetatable({ observers = {}, stopped = false,
    hasValue = false }, AsyncSubject)
  keepValue('AsyncSubject', self)
  return self
end

function AsyncSubject:subscribe(onNext, onError, onCompleted)
  local observer = toObserver(onNext, onError, onCompleted)
  if self.stopped then
    if not self.hasError and self.hasValue then
      observer:onNext(BehaviorSubject.getValue(self))
    end
    return lateTerminal(self, observer)
  end
  return addObserver(self, observer)
end

function AsyncSubject:onNext(...)
  if self.stopped then return end
  storeValue(self, ...)
end

function AsyncSubject:onCompleted()
  if self.stopped then return end
  self.stopped = true
  local observers = self.observers
  for i = 1, #observers do
    local o = observers[i]
    if self.hasValue then o:onNext(BehaviorSubject.getValue(self)) end
    o:onCompleted()
  end
end

AsyncSubject.getValue = BehaviorSubject.getValue
AsyncSubject.__call = AsyncSubject.onNext

-- RxLua's aliases
Observable.wrap = Observable.buffer
Observable['repeat'] = Observable.replicate

return Rx
