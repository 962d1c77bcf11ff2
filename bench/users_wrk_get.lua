-- wrk script for bench/users.sh, workload 1: GET PREFIX<id> with a random id
-- per request, picked from a file of ids (one per line).
--   wrk ... -s bench/users_wrk_get.lua URL -- IDS_FILE PREFIX [TOKEN_FILE]
-- TOKEN_FILE, when given, holds a bearer token sent in Authorization.
-- wrk calls setup/init/request and provides wrk; setup() sets thread_no.
-- luacheck: globals wrk setup init request thread_no

local ids, prefix, headers = {}, nil, {}

-- Each wrk thread has its own Lua state: give each one its own seed.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

function init(args)
    local ids_file, token_file = args[1], args[3]
    prefix = args[2]
    assert(ids_file and prefix, "usage: -- IDS_FILE PREFIX [TOKEN_FILE]")
    for line in io.lines(ids_file) do
        if line ~= "" then
            ids[#ids + 1] = line
        end
    end
    assert(#ids > 0, "no ids in " .. ids_file)
    if token_file and token_file ~= "" then
        local f = assert(io.open(token_file, "r"))
        headers["Authorization"] = "Bearer " .. f:read("*l")
        f:close()
    end
    math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
end

local random, format = math.random, wrk.format

function request()
    return format("GET", prefix .. ids[random(#ids)], headers)
end
