-- glasgow.docs: GET /docs, an interactive page (Swagger UI) for
-- /openapi.json, and the files it loads from /docs/NAME.
--
-- The files are built into a directory (make docs: web/docs/ and npm's
-- swagger-ui-dist, README "API docs page"): GLASGOW_DOCS_DIR, else docs/
-- beside the lua/ directory this module was loaded from (the installed
-- layout, /usr/share/glasgow/docs), else build/docs beside it (a
-- checkout). Only the names in FILES are ever served, so nothing from the
-- request becomes part of a file path. Each file is read once per
-- generation, when first asked for (the large ones also gzipped, for
-- clients that accept it), and answered with a strong ETag
-- (If-None-Match gives 304), Cache-Control: no-cache (revalidated, so an
-- upgrade shows at once), nosniff and a Content-Security-Policy that
-- allows no inline script or style and nothing from another origin. A
-- missing file answers 503 docs_unavailable (the page is not installed
-- here), an unknown name 404.
--
-- The page fetches /openapi.json each time it loads, so it shows the
-- routes of the generation that serves it: it follows reloads like the
-- document does.
local errors = require "glasgow.errors"
local core = require "glasgow.core"

local find, gsub, sub, match, lower = string.find, string.gsub, string.sub, string.match,
    string.lower
local concat = table.concat
local type, ipairs, tonumber = type, ipairs, tonumber
local open, getenv = io.open, os.getenv

local _M = {}

local TEXT_JS = "text/javascript; charset=utf-8"

-- The files the page may load, and their media types.
local FILES = {
    ["index.html"] = "text/html; charset=utf-8",
    ["init.js"] = TEXT_JS,
    ["swagger-ui-bundle.js"] = TEXT_JS,
    ["swagger-ui.css"] = "text/css; charset=utf-8",
    ["LICENSE"] = "text/plain; charset=utf-8",
    ["NOTICE"] = "text/plain; charset=utf-8",
    ["swagger-ui-bundle.js.LICENSE.txt"] = "text/plain; charset=utf-8",
}
_M.FILES = FILES

--[[
Scripts and styles come only from this origin and never inline (init.js
starts the UI; Swagger UI sets its dynamic styles through the DOM, which
style-src does not govern); images are this origin's or data: URIs (the
stylesheet's icons); requests (the document, "Try it out") go only to this
origin; the page cannot be framed, and no form or <base> can send it
elsewhere.
]]
_M.CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " ..
         "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; " ..
         "frame-ancestors 'none'"

-- The directory holding the files, or nil when none of the candidates has
-- index.html.
local function find_dir()
    local env = getenv("GLASGOW_DOCS_DIR")
    if env and env ~= "" then
        return env
    end
    local src = debug.getinfo(1, "S").source
    local lua_dir = type(src) == "string" and match(src, "^@(.*)/glasgow/docs%.lua$")
    if not lua_dir then
        return nil
    end
    for _, cand in ipairs({ lua_dir .. "/../docs", lua_dir .. "/../build/docs" }) do
        local f = open(cand .. "/index.html", "rb")
        if f then
            f:close()
            return cand
        end
    end
    return nil
end

-- The files make docs also writes gzipped (NAME.gz), served to clients
-- that accept gzip: the bundle is 1.7 MB, about 0.5 MB gzipped.
local GZIPPED = { ["swagger-ui-bundle.js"] = true, ["swagger-ui.css"] = true }

local dir_cache    -- false: looked, none found
local cache = {}   -- file name -> { body, etag }, or false when it is missing
local warned = false

local function unavailable(why)
    if not warned then
        warned = true
        core.log("warn", "GET /docs: the docs page is not installed: " .. why)
    end
    errors.raise(503, "docs_unavailable",
                 "the API docs page is not installed on this server (make docs; " ..
                 "GLASGOW_DOCS_DIR); the document is at /openapi.json")
end

-- Returns { body, etag } for file (a name of FILES, or one with ".gz"),
-- reading it once; nil when it is missing. Raises 503 when there is no
-- docs directory at all.
local function read(file)
    local c = cache[file]
    if c ~= nil then
        return c or nil
    end
    if dir_cache == nil then
        dir_cache = find_dir() or false
    end
    if not dir_cache then
        unavailable("no GLASGOW_DOCS_DIR and no docs/ beside lua/")
    end
    local f = open(dir_cache .. "/" .. file, "rb")
    local body = f and f:read("*a")
    if f then
        f:close()
    end
    if not body then
        cache[file] = false
        return nil
    end
    -- required here: glasgow.crypto is the runtime's, which the specs lack
    local crypto = require "glasgow.crypto"
    c = { body = body, etag = '"' .. sub(crypto.hex(crypto.sha256(body)), 1, 32) .. '"' }
    cache[file] = c
    return c
end

-- Whether an Accept-Encoding value admits gzip (RFC 9110 12.5.3: "gzip"
-- or "*" with a q-value other than 0).
local function accepts_gzip(header)
    if type(header) == "table" then
        header = concat(header, ",")
    end
    if type(header) ~= "string" then
        return false
    end
    local gzip, star
    for item in header:gmatch("[^,]+") do
        local coding = lower(match(item, "^%s*([^;%s]*)"))
        local q = tonumber(match(item, ";%s*[qQ]%s*=%s*([%d.]+)") or "1") or 0
        if coding == "gzip" or coding == "x-gzip" then
            gzip = q > 0
        elseif coding == "*" then
            star = q > 0
        end
    end
    if gzip == nil then
        return star == true
    end
    return gzip
end

-- Whether an If-None-Match value matches etag (weak comparison, RFC 9110
-- 13.1.2: W/ prefixes are ignored).
local function none_match(header, etag)
    if type(header) ~= "string" then
        return false
    end
    if find(header, "^%s*%*%s*$") then
        return true
    end
    for tag in header:gmatch("[^,]+") do
        tag = gsub(gsub(tag, "^%s+", ""), "%s+$", "")
        if sub(tag, 1, 2) == "W/" then
            tag = sub(tag, 3)
        end
        if tag == etag then
            return true
        end
    end
    return false
end

local function serve(req, name)
    local f, gz
    if GZIPPED[name] and accepts_gzip(req.headers["accept-encoding"]) then
        f = read(name .. ".gz")
        gz = f ~= nil
    end
    f = f or read(name)
    if not f then
        unavailable(dir_cache .. "/" .. name .. " is missing")
    end
    local headers = {
        ["Content-Type"] = FILES[name],
        ["ETag"] = f.etag,
        ["Cache-Control"] = "no-cache",
        ["X-Content-Type-Options"] = "nosniff",
        ["Content-Security-Policy"] = _M.CSP,
        ["Referrer-Policy"] = "no-referrer",
        ["Cross-Origin-Resource-Policy"] = "same-origin",
    }
    if GZIPPED[name] then
        headers["Vary"] = "Accept-Encoding"
        if gz then
            headers["Content-Encoding"] = "gzip"
        end
    end
    if none_match(req.headers["if-none-match"], f.etag) then
        return 304, "", headers
    end
    return 200, f.body, headers
end

-- GET /docs: the page.
function _M.page(req)
    return serve(req, "index.html")
end

-- GET /docs/:name: one of FILES, else 404.
function _M.asset(req)
    local name = req.params.name
    if type(name) ~= "string" or FILES[name] == nil or name == "index.html" then
        errors.raise(404, "not_found", "no such file in the docs page")
    end
    return serve(req, name)
end

return _M
