-- sgx: the enclave primitives of the seed (chapter 5): sgxprocess,
-- sgxencrypt and sgxdecrypt, also installed as globals.
--
-- In SecureStreams a stage runs wholly inside its enclave when the
-- pipeline's security mode is `enclave`: decryption and encryption of the
-- batches happen there, in C, with the key the key service released after
-- attestation. So, inside a stage script:
--   sgxprocess(fn, ...)  calls fn(...) where the stage runs (the enclave
--                        in enclave mode) and returns its results;
--   sgxencrypt(s), sgxdecrypt(s)  seal / open a string with the stage's
--                        data key when the runtime provides one, and are
--                        identity stand-ins otherwise (like the seed's
--                        mocks for a regular Lua VM).
local ok, host = pcall(require, 'ss.host')
if not ok then host = nil end

local sgx = {}

function sgx.process(fn, ...)
  if type(fn) ~= 'function' then
    error('sgxprocess: expected a function, got ' .. type(fn), 2)
  end
  return fn(...)
end

function sgx.encrypt(s)
  if type(s) ~= 'string' then
    error('sgxencrypt: expected a string, got ' .. type(s), 2)
  end
  if host and host.seal then return host.seal(s) end
  return s
end

function sgx.decrypt(s)
  if type(s) ~= 'string' then
    error('sgxdecrypt: expected a string, got ' .. type(s), 2)
  end
  if host and host.open then return host.open(s) end
  return s
end

sgx.in_enclave = host and host.in_enclave or false

sgxprocess, sgxencrypt, sgxdecrypt = sgx.process, sgx.encrypt, sgx.decrypt

return sgx
