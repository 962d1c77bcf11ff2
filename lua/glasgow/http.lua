-- glasgow.http: HTTP semantics the file routes need, as pure functions.
--
--   http.date(epoch)                  -> IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT")
--   http.parse_date(text)             -> epoch seconds, or nil (RFC 9110 5.6.7: the
--                                        three formats a recipient must accept)
--   http.parse_rfc3339(text)          -> epoch seconds (fraction dropped), or nil
--   http.etag(sha256_hex)             -> the strong entity tag of a file's bytes
--   http.hex(raw)                     -> lowercase hex
--   http.preconditions(req_headers, method, current)
--                                     -> nil (go on), 304 or 412 (RFC 9110 13.2.2)
--   http.if_range(req_headers, current) -> true when a Range may be honoured
--   http.content_disposition(filename)  -> an RFC 6266 attachment value
--   http.content_digest(req_headers)    -> raw SHA-256 the client announced,
--                                          nil, or false and a reason
--   http.media_type(content_type)       -> "type/subtype" lower-cased, or nil
--   http.type_allowed(media, allowed)   -> boolean ("image/*", "*/*" match ranges)
--
-- current is the selected representation: nil when there is none, else
-- { etag = '"..."', last_modified = epoch seconds }. Header tables are
-- the request's (lower-case names; a repeated field is an array).
local byte, char, find, format, gsub, lower, match, sub =
    string.byte, string.char, string.find, string.format, string.gsub, string.lower,
    string.match, string.sub
local concat = table.concat
local floor = math.floor
local type, tonumber, ipairs = type, tonumber, ipairs

local _M = {}

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec" }
local MONTH_NUM = {}
for i, m in ipairs(MONTHS) do
    MONTH_NUM[m] = i
end

-- Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
-- days_from_civil), so that no local time zone is ever involved.
local function days_from_civil(y, m, d)
    if m <= 2 then
        y = y - 1
    end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

local function civil_from_days(z)
    z = z + 719468
    local era = floor(z / 146097)
    local doe = z - era * 146097
    local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
    local y = yoe + era * 400
    local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
    local mp = floor((5 * doy + 2) / 153)
    local d = doy - floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    if m <= 2 then
        y = y + 1
    end
    return y, m, d
end

local function valid_time(y, mo, d, h, mi, s)
    if not (y and mo and d and h and mi and s) then
        return false
    end
    if mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or s > 60 then
        return false
    end
    local dim = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
    if y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then
        dim[2] = 29
    end
    return d <= dim[mo]
end

local function epoch(y, mo, d, h, mi, s)
    if not valid_time(y, mo, d, h, mi, s) then
        return nil
    end
    if s == 60 then
        s = 59
    end
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
end

function _M.date(t)
    t = floor(t)
    local days = floor(t / 86400)
    local secs = t - days * 86400
    local y, m, d = civil_from_days(days)
    return format("%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[(days + 4) % 7 + 1], d, MONTHS[m],
                  y, floor(secs / 3600), floor(secs / 60) % 60, secs % 60)
end

function _M.parse_date(text)
    if type(text) ~= "string" or #text > 64 then
        return nil
    end
    local d, mon, y, h, mi, s
    -- IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    d, mon, y, h, mi, s = match(text, "^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    if not d then
        -- rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT (a two-digit year
        -- more than 50 years ahead is in the past: RFC 9110 5.6.7)
        d, mon, y, h, mi, s = match(text, "^%a+, (%d%d)%-(%a%a%a)%-(%d%d) (%d%d):(%d%d):(%d%d) GMT$")
        if y then
            local yy = tonumber(y)
            local now_y = civil_from_days(floor(os.time() / 86400))
            y = 2000 + yy
            if y > now_y + 50 then
                y = y - 100
            end
        end
    end
    if not d then
        -- asctime-date: Sun Nov  6 08:49:37 1994
        mon, d, h, mi, s, y = match(text, "^%a%a%a (%a%a%a) ([ %d]%d) (%d%d):(%d%d):(%d%d) (%d%d%d%d)$")
    end
    if not d or not MONTH_NUM[mon] then
        return nil
    end
    return epoch(tonumber(y), MONTH_NUM[mon], tonumber((gsub(d, " ", ""))), tonumber(h),
                 tonumber(mi), tonumber(s))
end

function _M.parse_rfc3339(text)
    if type(text) ~= "string" then
        return nil
    end
    local y, mo, d, h, mi, s = match(text, "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)")
    if not y then
        return nil
    end
    local rest = sub(text, 20):gsub("^%.%d+", "")
    local offset = 0
    if rest ~= "Z" and rest ~= "z" then
        local sign, oh, om = match(rest, "^([+-])(%d%d):?(%d%d)$")
        if not sign then
            return nil
        end
        offset = (tonumber(oh) * 60 + tonumber(om)) * 60 * (sign == "+" and 1 or -1)
    end
    local t = epoch(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi),
                    tonumber(s))
    return t and t - offset
end

-- Lowercase hex of raw bytes.
function _M.hex(raw)
    return (gsub(raw, ".", function(c) return format("%02x", byte(c)) end))
end

function _M.etag(sha256_hex)
    return '"' .. sha256_hex .. '"'
end

-- One header's value, a repeated field joined as a list ("a, b").
local function field(headers, name)
    local v = headers[name]
    if type(v) == "table" then
        return concat(v, ", ")
    end
    return v
end
_M.field = field

-- Parses an If-Match / If-None-Match value: "*" returns "*"; a list of
-- entity-tags returns an array of { weak = bool, opaque = '"..."' }; a
-- malformed value returns nil (it then matches nothing).
local function etag_list(v)
    if match(v, "^[ \t]*%*[ \t]*$") then
        return "*"
    end
    local out, i, n = {}, 1, #v
    while i <= n do
        local c = sub(v, i, i)
        if c == " " or c == "\t" or c == "," then
            i = i + 1
        else
            local weak = false
            if sub(v, i, i + 1) == "W/" then
                weak = true
                i = i + 2
            end
            if sub(v, i, i) ~= '"' then
                return nil
            end
            local close = find(v, '"', i + 1, true)
            if not close then
                return nil
            end
            local opaque = sub(v, i, close)
            -- etagc = %x21 / %x23-7E / obs-text
            if find(sub(opaque, 2, -2), "[%z\1-\32\127]") then
                return nil
            end
            out[#out + 1] = { weak = weak, opaque = opaque }
            i = close + 1
            local after = match(v, "^[ \t]*", i)
            i = i + #after
            if i <= n and sub(v, i, i) ~= "," then
                return nil
            end
        end
    end
    if #out == 0 then
        return nil
    end
    return out
end
_M.etag_list = etag_list

-- Our entity tags are always strong; strong comparison needs both strong.
local function list_matches(list, etag, strong)
    if list == "*" then
        return true
    end
    for _, t in ipairs(list) do
        if t.opaque == etag and not (strong and t.weak) then
            return true
        end
    end
    return false
end

-- RFC 9110 13.2.2, steps 1-4, for a GET or HEAD (read) or a PUT/DELETE
-- (write) against current.
function _M.preconditions(headers, method, current)
    local read = method == "GET" or method == "HEAD"
    local im = field(headers, "if-match")
    if im ~= nil then
        local list = etag_list(im)
        if not current or not list or not list_matches(list, current.etag, true) then
            return 412
        end
    else
        local ius = field(headers, "if-unmodified-since")
        local t = ius and _M.parse_date(ius)
        -- a date is only meaningful against an existing representation
        if t and current and current.last_modified > t then
            return 412
        end
    end
    local inm = field(headers, "if-none-match")
    if inm ~= nil then
        local list = etag_list(inm)
        if current and list and list_matches(list, current.etag, false) then
            return read and 304 or 412
        end
    elseif read and current then
        local ims = field(headers, "if-modified-since")
        local t = ims and _M.parse_date(ims)
        if t and current.last_modified <= t then
            return 304
        end
    end
    return nil
end

-- RFC 9110 13.1.5: a Range is honoured only when If-Range (if sent)
-- matches: an entity-tag by strong comparison, or an HTTP date exactly
-- equal to the Last-Modified; anything else (a weak tag, another date, a
-- malformed value) sends the whole file.
function _M.if_range(headers, current)
    local v = field(headers, "if-range")
    if v == nil then
        return true
    end
    if sub(v, 1, 1) == '"' then
        return v == current.etag
    end
    if sub(v, 1, 2) == "W/" then
        return false
    end
    local t = _M.parse_date(v)
    return t ~= nil and t == current.last_modified
end

-- RFC 8187 attr-char: everything else is percent-encoded.
local function ext_encode(s)
    return (gsub(s, "[^%w!#%$&%+%-%.%^_`|~]", function(c)
        return format("%%%02X", byte(c))
    end))
end

-- An RFC 6266 value for downloading a file saved as filename (valid
-- UTF-8): attachment, an ASCII fallback in quotes (non-ASCII, quotes,
-- backslashes, '%' and controls replaced by '_', so it can neither break
-- the quoted-string nor be decoded again by a lenient client) and, when
-- the fallback differs, filename* with the exact name.
function _M.content_disposition(filename)
    local fallback = gsub(filename, "[\128-\255]+", function(run)
        -- one '_' per character, not per byte
        return (gsub(run, "[\128-\191]", ""):gsub(".", "_"))
    end)
    fallback = gsub(fallback, '[%c"\\%%]', "_")
    if fallback == "" then
        fallback = "download"
    end
    local v = 'attachment; filename="' .. fallback .. '"'
    if fallback ~= filename then
        v = v .. "; filename*=UTF-8''" .. ext_encode(filename)
    end
    return v
end

-- RFC 4648 base64 (standard alphabet, padded), strictly.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_VAL = {}
for i = 1, 64 do
    B64_VAL[byte(B64, i)] = i - 1
end

local function base64_decode(s)
    if #s % 4 ~= 0 or find(s, "[^%w%+/=]") or find(s, "=[^=]") then
        return nil
    end
    local out = {}
    for i = 1, #s, 4 do
        local a, b, c, d = byte(s, i, i + 3)
        local va, vb = B64_VAL[a], B64_VAL[b]
        local vc, vd = B64_VAL[c], B64_VAL[d]
        if not va or not vb then
            return nil
        end
        local n = va * 262144 + vb * 4096 + (vc or 0) * 64 + (vd or 0)
        out[#out + 1] = char(floor(n / 65536))
        if c ~= 61 then
            if not vc then
                return nil
            end
            out[#out + 1] = char(floor(n / 256) % 256)
        end
        if d ~= 61 then
            if not vd or c == 61 then
                return nil
            end
            out[#out + 1] = char(n % 256)
        end
        if (c == 61 or d == 61) and i + 4 <= #s then
            return nil
        end
    end
    return concat(out)
end
_M.base64_decode = base64_decode

local function hex_decode(s)
    if #s % 2 ~= 0 or find(s, "[^%x]") then
        return nil
    end
    return (gsub(s, "%x%x", function(h) return char(tonumber(h, 16)) end))
end

-- The SHA-256 a client announced for its upload: RFC 9530 Content-Digest
-- ("sha-256=:<base64>:", other algorithms ignored) or x-checksum-sha256
-- (base64, as S3's x-amz-checksum-sha256, or 64 hex digits). Returns the
-- 32 raw bytes, nil when none is given, or false and a reason.
function _M.content_digest(headers)
    local raw
    local cd = field(headers, "content-digest")
    if cd ~= nil then
        if #cd > 4096 then
            return false, "Content-Digest is too long"
        end
        for member in (cd .. ","):gmatch("([^,]*),") do
            local key, value = match(member, "^[ \t]*([%w%-_%.%*]+)[ \t]*=[ \t]*(.-)[ \t]*$")
            if not key then
                return false, "Content-Digest is not a dictionary of algorithm=:digest:"
            end
            if lower(key) == "sha-256" then
                local b64 = match(value, "^:([%w%+/=]*):$")
                local d = b64 and base64_decode(b64)
                if not d or #d ~= 32 then
                    return false, "Content-Digest sha-256 is not 32 bytes of base64 between colons"
                end
                if raw and raw ~= d then
                    return false, "Content-Digest holds two different sha-256 values"
                end
                raw = d
            end
        end
    end
    local x = field(headers, "x-checksum-sha256")
    if x ~= nil then
        local d = (#x == 64 and hex_decode(x)) or base64_decode(x)
        if not d or #d ~= 32 then
            return false, "x-checksum-sha256 is neither 64 hex digits nor 32 bytes of base64"
        end
        if raw and raw ~= d then
            return false, "Content-Digest and x-checksum-sha256 disagree"
        end
        raw = d
    end
    return raw
end

local TOKEN = "[!#%$%%&'%*%+%-%.%^_`|~%w]+"

-- The end of the quoted-string that opens at s[i] ('"'), or nil.
local function quoted_end(s, i)
    i = i + 1
    while i <= #s do
        local c = sub(s, i, i)
        if c == '"' then
            return i
        elseif c == "\\" then
            i = i + 1
        end
        i = i + 1
    end
    return nil
end

-- "Text/HTML; charset=utf-8" -> "text/html"; nil unless the whole value
-- is one media type (RFC 9110 8.3.1: type "/" subtype, tokens, then
-- parameters, *( OWS ";" OWS [ token "=" ( token / quoted-string ) ] )).
-- So "image/png, text/html" (two Content-Type fields, or a list) is nil.
function _M.media_type(content_type)
    if type(content_type) ~= "string" or #content_type > 255 then
        return nil
    end
    local mt, i = match(content_type, "^[ \t]*(" .. TOKEN .. "/" .. TOKEN .. ")()")
    if not mt then
        return nil
    end
    local s = content_type
    while true do
        i = match(s, "^[ \t]*()", i)
        if i > #s then
            return lower(mt)
        end
        i = match(s, "^;[ \t]*()", i)
        if not i then
            return nil
        end
        local after = match(s, "^" .. TOKEN .. "=()", i)
        if after then
            if sub(s, after, after) == '"' then
                local e = quoted_end(s, after)
                if not e then
                    return nil
                end
                i = e + 1
            else
                i = match(s, "^" .. TOKEN .. "()", after)
                if not i then
                    return nil
                end
            end
        end
    end
end

-- Whether media (from media_type) is in allowed (nil or empty: anything).
function _M.type_allowed(media, allowed)
    if allowed == nil or type(allowed) ~= "table" or #allowed == 0 then
        return true
    end
    local top = match(media, "^([^/]+)/")
    for _, a in ipairs(allowed) do
        a = lower(a)
        if a == media or a == "*/*" or a == top .. "/*" then
            return true
        end
    end
    return false
end

return _M
