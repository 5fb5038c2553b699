-- spectralnorm.lua - the spectral norm of the infinite matrix
-- A(i,j) = 1/((i+j)(i+j+1)/2 + i + 1), truncated to n x n, by ten power
-- iterations of A'A (a classic benchmark, written for SecureStreams).
-- Returns a function(n) giving the norm with 9 decimals.
local function a(i, j)
  local ij = i + j
  return 1.0 / (ij * (ij + 1) * 0.5 + i + 1)
end

-- y = A x
local function mul_a(x, y, n)
  for i = 0, n - 1 do
    local s = 0
    for j = 0, n - 1 do s = s + a(i, j) * x[j] end
    y[i] = s
  end
end

-- y = A' x
local function mul_at(x, y, n)
  for i = 0, n - 1 do
    local s = 0
    for j = 0, n - 1 do s = s + a(j, i) * x[j] end
    y[i] = s
  end
end

local function mul_ata(x, y, tmp, n)
  mul_a(x, tmp, n)
  mul_at(tmp, y, n)
end

return function(n)
  local u, v, t = {}, {}, {}
  for i = 0, n - 1 do u[i] = 1; v[i] = 0; t[i] = 0 end
  for _ = 1, 10 do
    mul_ata(u, v, t, n)
    mul_ata(v, u, t, n)
  end
  local vbv, vv = 0, 0
  for i = 0, n - 1 do
    vbv = vbv + u[i] * v[i]
    vv = vv + v[i] * v[i]
  end
  return string.format('%.9f', math.sqrt(vbv / vv))
end
