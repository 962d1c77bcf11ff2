-- Signs each request of a JSON-lines file (see tests/integration/test_sigv4_diff.py)
-- with glasgow.sigv4 and prints one JSON line per request, in the shape
-- smithy_sign.js prints: {id, signature, authorization} for a header-signed
-- request, {id, signature, query} for a presigned one (query is the encoded
-- query string), plus the chunk signatures of an aws-chunked body.
-- Usage: glasgow run tests/sigv4/glasgow_sign.lua CASES.jsonl
local json = require "glasgow.json"
local sigv4 = require "glasgow.sigv4"

local function sign_one(c)
    local req = {
        method = c.method,
        path = c.path,
        query = c.query,
        headers = c.headers,
        payload_hash = c.payload_hash,
        region = c.region,
        service = c.service,
        access_key = c.access_key,
        secret_key = c.secret_key,
        time = c.time,
        expires = c.expires,
    }
    if c.session_token ~= json.null then
        req.session_token = c.session_token
    end
    if c.kind == "presign" then
        local r = sigv4.presign(req)
        return { id = c.id, signature = r.signature, query = r.query }
    end
    local r = sigv4.sign(req)
    local out = { id = c.id, signature = r.signature, authorization = r.authorization }
    if c.chunks then
        local prev = r.signature
        out.chunks = {}
        for i, spec in ipairs(c.chunks) do
            prev = sigv4.chunk_signature {
                secret_key = c.secret_key,
                region = c.region,
                service = c.service,
                time = c.time,
                previous = prev,
                data = string.rep(spec[2], spec[1]),
            }
            out.chunks[i] = prev
        end
    end
    return out
end

local f = assert(io.open(arg[1], "rb"))
local out = {}
for line in f:lines() do
    if line ~= "" then
        local c = assert(json.decode(line))
        out[#out + 1] = json.encode(sign_one(c))
    end
end
f:close()
io.write(table.concat(out, "\n"), "\n")
return 0
