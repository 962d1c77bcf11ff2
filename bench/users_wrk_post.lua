-- wrk script for bench/users.sh, workload 2: POST PATH {"email", "name"} with
-- an email unique to each request: a tag for the run, the wrk thread, a
-- per-thread counter and a random suffix.
--   wrk ... -s bench/users_wrk_post.lua URL -- PATH TAG
-- wrk calls setup/init/request and provides wrk; setup() sets thread_no.
-- luacheck: globals wrk setup init request thread_no

local path, tag
local headers = { ["Content-Type"] = "application/json" }
local n = 0

local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

function init(args)
    path, tag = args[1], args[2]
    assert(path and tag and tag:match("^[a-z0-9]+$"), "usage: -- PATH TAG (tag: [a-z0-9]+)")
    math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
end

local random, format, sformat = math.random, wrk.format, string.format

function request()
    n = n + 1
    local body = sformat('{"email":"w-%s-%d-%d-%d@bench.example","name":"Bench writer %d"}',
                         tag, thread_no or 0, n, random(0, 999999), n)
    return format("POST", path, headers, body)
end
