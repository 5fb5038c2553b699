-- dhrystone.lua - the Dhrystone 2.1 synthetic integer benchmark: records
-- with a variant part, record copies, string compares and a global array
-- walk, ten procedures and three functions per loop (a classic benchmark,
-- re-expressed in Lua for SecureStreams). Returns a function(n) that runs
-- n loops and returns a checksum of the final global state.
local IDENT_1, IDENT_2, IDENT_3, IDENT_4, IDENT_5 = 1, 2, 3, 4, 5

local int_glob, bool_glob, ch_1_glob, ch_2_glob
local arr_1_glob, arr_2_glob
local ptr_glob, next_ptr_glob

local function record()
  return { ptr_comp = nil, discr = IDENT_1, enum_comp = IDENT_1,
           int_comp = 0, str_comp = '' }
end

local function copy_record(dst, src)
  dst.ptr_comp, dst.discr, dst.enum_comp = src.ptr_comp, src.discr,
                                           src.enum_comp
  dst.int_comp, dst.str_comp = src.int_comp, src.str_comp
end

local function func_3(enum_par)
  return enum_par == IDENT_3
end

local function func_1(ch_1, ch_2)
  if ch_1 ~= ch_2 then return IDENT_1 end
  ch_1_glob = ch_1
  return IDENT_2
end

local function func_2(str_1, str_2)
  local int_loc, ch_loc = 2, 'A'
  while int_loc <= 2 do
    if func_1(str_1:sub(int_loc, int_loc),
              str_2:sub(int_loc + 1, int_loc + 1)) == IDENT_1 then
      ch_loc = 'A'
      int_loc = int_loc + 1
    end
  end
  if ch_loc >= 'W' and ch_loc < 'Z' then int_loc = 7 end
  if ch_loc == 'R' then return true end
  if str_1 > str_2 then
    int_loc = int_loc + 7
    int_glob = int_loc
    return true
  end
  return false
end

local function proc_6(enum_val)
  local enum_ref = enum_val
  if not func_3(enum_val) then enum_ref = IDENT_4 end
  if enum_val == IDENT_1 then enum_ref = IDENT_1
  elseif enum_val == IDENT_2 then
    enum_ref = int_glob > 100 and IDENT_1 or IDENT_4
  elseif enum_val == IDENT_3 then enum_ref = IDENT_2
  elseif enum_val == IDENT_5 then enum_ref = IDENT_3 end
  return enum_ref
end

local function proc_7(a, b)
  return b + a + 2
end

local function proc_8(arr_1, arr_2, int_1, int_2)
  local loc = int_1 + 5
  arr_1[loc] = int_2
  arr_1[loc + 1] = arr_1[loc]
  arr_1[loc + 30] = loc
  local row = arr_2[loc]
  for i = loc, loc + 1 do row[i] = loc end
  row[loc - 1] = row[loc - 1] + 1
  arr_2[loc + 20][loc] = arr_1[loc]
  int_glob = 5
end

local function proc_3(ptr_ref)
  if ptr_glob ~= nil then ptr_ref = ptr_glob.ptr_comp end
  ptr_glob.int_comp = proc_7(10, int_glob)
  return ptr_ref
end

local function proc_1(ptr_val)
  local next_rec = ptr_val.ptr_comp
  copy_record(next_rec, ptr_glob)
  ptr_val.int_comp = 5
  next_rec.int_comp = ptr_val.int_comp
  next_rec.ptr_comp = ptr_val.ptr_comp
  next_rec.ptr_comp = proc_3(next_rec.ptr_comp)
  if next_rec.discr == IDENT_1 then
    next_rec.int_comp = 6
    next_rec.enum_comp = proc_6(ptr_val.enum_comp)
    next_rec.ptr_comp = ptr_glob.ptr_comp
    next_rec.int_comp = proc_7(next_rec.int_comp, 10)
  else
    copy_record(ptr_val, ptr_val.ptr_comp)
  end
end

local function proc_2(int_ref)
  local int_loc = int_ref + 10
  local enum_loc
  repeat
    if ch_1_glob == 'A' then
      int_loc = int_loc - 1
      int_ref = int_loc - int_glob
      enum_loc = IDENT_1
    end
  until enum_loc == IDENT_1
  return int_ref
end

local function proc_4()
  local bool_loc = ch_1_glob == 'A'
  bool_glob = bool_loc or bool_glob
  ch_2_glob = 'B'
end

local function proc_5()
  ch_1_glob = 'A'
  bool_glob = false
end

return function(loops)
  int_glob, bool_glob, ch_1_glob, ch_2_glob = 0, false, ' ', ' '
  arr_1_glob, arr_2_glob = {}, {}
  for i = 1, 50 do
    arr_1_glob[i] = 0
    local row = {}
    for j = 1, 50 do row[j] = 0 end
    arr_2_glob[i] = row
  end
  arr_2_glob[8][7] = 10
  next_ptr_glob = record()
  ptr_glob = record()
  ptr_glob.ptr_comp = next_ptr_glob
  ptr_glob.discr = IDENT_1
  ptr_glob.enum_comp = IDENT_3
  ptr_glob.int_comp = 40
  ptr_glob.str_comp = 'DHRYSTONE PROGRAM, SOME STRING'
  local str_1_loc = "DHRYSTONE PROGRAM, 1'ST STRING"
  local int_1_loc, int_2_loc, int_3_loc, enum_loc = 0, 0, 0, IDENT_1
  for run = 1, loops do
    proc_5()
    proc_4()
    int_1_loc = 2
    int_2_loc = 3
    local str_2_loc = "DHRYSTONE PROGRAM, 2'ND STRING"
    enum_loc = IDENT_2
    bool_glob = not func_2(str_1_loc, str_2_loc)
    while int_1_loc < int_2_loc do
      int_3_loc = 5 * int_1_loc - int_2_loc
      int_3_loc = proc_7(int_1_loc, int_2_loc)
      int_1_loc = int_1_loc + 1
    end
    proc_8(arr_1_glob, arr_2_glob, int_1_loc, int_3_loc)
    proc_1(ptr_glob)
    local ch_index = 'A'
    while ch_index <= ch_2_glob do
      if enum_loc == func_1(ch_index, 'C') then
        enum_loc = proc_6(IDENT_1)
        str_2_loc = "DHRYSTONE PROGRAM, 3'RD STRING"
        int_2_loc = run
        int_glob = run
      end
      ch_index = string.char(ch_index:byte() + 1)
    end
    int_2_loc = int_2_loc * int_1_loc
    int_1_loc = int_2_loc // int_3_loc
    int_2_loc = 7 * (int_2_loc - int_3_loc) - int_1_loc
    int_1_loc = proc_2(int_1_loc)
  end
  return int_glob + int_1_loc + int_2_loc + int_3_loc + enum_loc +
         ptr_glob.int_comp + next_ptr_glob.int_comp + arr_1_glob[8] +
         arr_2_glob[8][8]
end
