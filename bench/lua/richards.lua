-- richards.lua - Martin Richards' operating-system simulation: six tasks
-- (idle, worker, two handlers, two devices) exchanging packets under a
-- priority scheduler (a classic benchmark, written for SecureStreams).
-- One simulation queues 23246 packets and holds 9297 times; the function
-- returned runs it n times and checks those counts.
local I_IDLE, I_WORK, I_HANDLERA, I_HANDLERB, I_DEVA, I_DEVB = 1, 2, 3, 4, 5, 6
local K_DEV, K_WORK = 1000, 1001
local PKTBIT, WAITBIT, HOLDBIT = 1, 2, 4
local S_RUN, S_RUNPKT, S_WAIT, S_WAITPKT = 0, 1, 2, 3
local COUNT = 10000
local ALPHA = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'

local tasks, tcblist, cur, taskid, v1, v2, qpktcount, holdcount

local function packet(link, id, kind)
  return { link = link, id = id, kind = kind, a1 = 0, a2 = { 0, 0, 0, 0 } }
end

local function append(pkt, queue)
  pkt.link = nil
  if queue == nil then return pkt end
  local p = queue
  while p.link do p = p.link end
  p.link = pkt
  return queue
end

local function new_task(id, pri, wkq, state, fn, a, b)
  local t = { link = tcblist, id = id, pri = pri, wkq = wkq, state = state,
              fn = fn, v1 = a, v2 = b }
  tasks[id] = t
  tcblist = t
end

local function wait()
  cur.state = cur.state | WAITBIT
  return cur
end

local function holdself()
  holdcount = holdcount + 1
  cur.state = cur.state | HOLDBIT
  return cur.link
end

local function release(id)
  local t = tasks[id]
  t.state = t.state & ~HOLDBIT
  if t.pri > cur.pri then return t end
  return cur
end

local function qpkt(pkt)
  local t = tasks[pkt.id]
  qpktcount = qpktcount + 1
  pkt.link = nil
  pkt.id = taskid
  if t.wkq == nil then
    t.wkq = pkt
    t.state = t.state | PKTBIT
    if t.pri > cur.pri then return t end
  else
    t.wkq = append(pkt, t.wkq)
  end
  return cur
end

local function idlefn(pkt)
  v2 = v2 - 1
  if v2 == 0 then return holdself() end
  if v1 & 1 == 0 then
    v1 = (v1 >> 1) & 0x7fff
    return release(I_DEVA)
  end
  v1 = ((v1 >> 1) & 0x7fff) ~ 0xd008
  return release(I_DEVB)
end

local function workfn(pkt)
  if pkt == nil then return wait() end
  v1 = I_HANDLERA + I_HANDLERB - v1
  pkt.id = v1
  pkt.a1 = 0
  for i = 1, 4 do
    v2 = v2 + 1
    if v2 > 26 then v2 = 1 end
    pkt.a2[i] = ALPHA:byte(v2)
  end
  return qpkt(pkt)
end

local function handlerfn(pkt)
  if pkt ~= nil then
    if pkt.kind == K_WORK then v1 = append(pkt, v1) else v2 = append(pkt, v2) end
  end
  if v1 ~= nil then
    local work = v1
    local count = work.a1
    if count > 3 then
      v1 = v1.link
      return qpkt(work)
    end
    if v2 ~= nil then
      local dev = v2
      v2 = v2.link
      dev.a1 = work.a2[count + 1]
      work.a1 = count + 1
      return qpkt(dev)
    end
  end
  return wait()
end

local function devfn(pkt)
  if pkt == nil then
    if v1 == nil then return wait() end
    pkt = v1
    v1 = nil
    return qpkt(pkt)
  end
  v1 = pkt
  return holdself()
end

local function schedule()
  while cur do
    local pkt = nil
    local st = cur.state
    if st == S_WAITPKT then
      pkt = cur.wkq
      cur.wkq = pkt.link
      cur.state = cur.wkq == nil and S_RUN or S_RUNPKT
      st = cur.state
    end
    if st == S_RUN or st == S_RUNPKT or pkt then
      local t = cur
      taskid, v1, v2 = t.id, t.v1, t.v2
      local nxt = t.fn(pkt)
      t.v1, t.v2 = v1, v2
      cur = nxt
    else
      cur = cur.link
    end
  end
end

local function simulate()
  tasks, tcblist, qpktcount, holdcount = {}, nil, 0, 0
  new_task(I_IDLE, 0, nil, S_RUN, idlefn, 1, COUNT)
  local wkq = packet(packet(nil, 0, K_WORK), 0, K_WORK)
  new_task(I_WORK, 1000, wkq, S_WAITPKT, workfn, I_HANDLERA, 0)
  wkq = packet(packet(packet(nil, I_DEVA, K_DEV), I_DEVA, K_DEV), I_DEVA, K_DEV)
  new_task(I_HANDLERA, 2000, wkq, S_WAITPKT, handlerfn, nil, nil)
  wkq = packet(packet(packet(nil, I_DEVB, K_DEV), I_DEVB, K_DEV), I_DEVB, K_DEV)
  new_task(I_HANDLERB, 3000, wkq, S_WAITPKT, handlerfn, nil, nil)
  new_task(I_DEVA, 4000, nil, S_WAIT, devfn, nil, nil)
  new_task(I_DEVB, 5000, nil, S_WAIT, devfn, nil, nil)
  cur = tcblist
  schedule()
  return qpktcount, holdcount
end

return function(n)
  local q, h
  for _ = 1, n do
    q, h = simulate()
    if q ~= 23246 or h ~= 9297 then
      error(string.format('richards: wrong counts %d/%d', q, h))
    end
  end
  return n * q + h
end
