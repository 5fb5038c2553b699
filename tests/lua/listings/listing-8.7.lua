-- The seed's Listing 8.7 (printer), as printed but for: `io.output(file)`
-- (file is undefined) -> io.output(output), and `io.close(output)` (a
-- string: io.close raises) -> io.close(); the underscores of the PDF's
-- print line are spaces.
local ZmqRx = require 'zmq-rx'

local from_socket = 'tcp://localhost:5558'

local output = 'output.log'
local start = os.time()
local results = {}

io.output(output)

ZmqRx.Subject.fromZmqSocket(from_socket) -- receive from 'tcp://localhost:5558'
:subscribe(
    function(datas)
        for k,v in pairs(datas) do
            carrier = results[k] or {}
            results[k] = { count = (carrier.count or 0) + v.count,
                             total = (carrier.total or 0) + v.total }
        end
    end,
    function(error)
        print(error)
    end,
    function()
        io.write((os.time() - start) .. "\n")
        io.close()

        for k,v in pairs(results) do
            print('Delays for carrier ' .. k .. ' -> ' .. (v.count == 0
                and 0 or (v.total / v.count)) .. ' average mins - ' ..
                math.tointeger(v.count) .. ' delayed flights')
        end

        ZmqRx.sendZmqCompleted()
        print('completed!')
    end
)
