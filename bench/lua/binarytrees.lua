-- binarytrees.lua - allocates and walks many perfect binary trees: a
-- long-lived one of depth n, and for each depth d from 4 to n (step 2)
-- 2^(n-d+4) short-lived trees of depth d (a classic allocation benchmark,
-- written for SecureStreams). Returns a function(n) giving the total
-- number of nodes checked.
local function make(depth)
  if depth == 0 then return {} end
  depth = depth - 1
  return { make(depth), make(depth) }
end

local function check(tree)
  local left = tree[1]
  if not left then return 1 end
  return 1 + check(left) + check(tree[2])
end

return function(n)
  local mindepth = 4
  local maxdepth = math.max(mindepth + 2, n)
  local total = check(make(maxdepth + 1)) -- the stretch tree
  local long_lived = make(maxdepth)
  for depth = mindepth, maxdepth, 2 do
    local iterations = 1 << (maxdepth - depth + mindepth)
    local sum = 0
    for _ = 1, iterations do
      sum = sum + check(make(depth))
    end
    total = total + sum
  end
  return total + check(long_lived)
end
