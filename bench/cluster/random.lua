-- wrk script for bench/cluster/run.sh: GET /prod/items/<id>, id uniform in
-- 1..N, N the first argument after "--" (default 10000).
--   wrk -t1 -c64 -d5s -s bench/cluster/random.lua http://127.0.0.1:PORT -- 10000
local n = 10000

function init(args)
    n = tonumber(args[1]) or n
    math.randomseed(os.time())
end

request = function()
    return wrk.format("GET", "/prod/items/" .. math.random(1, n))
end
