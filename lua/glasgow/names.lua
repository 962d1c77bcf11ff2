-- glasgow.names: the rules for bucket and file names.
--
--   local names = require "glasgow.names"
--   local ok, reason = names.bucket("photos-2026")   -- true, or nil and why
--   local ok, reason = names.file("reports/q1.pdf")
--
-- A reason is a short phrase to put after the field's name in a 400
-- ("params.name: has a '..' segment"). Pure functions, no I/O.
local byte, char, find, sub = string.byte, string.char, string.find, string.sub

local _M = {}

_M.MAX_FILE_NAME_BYTES = 1024

local RESERVED_PREFIXES = { "xn--", "sthree-", "amzn-s3-demo-" }
local RESERVED_SUFFIXES = { "-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3" }

-- S3's bucket naming rules (general purpose buckets).
function _M.bucket(name)
    if type(name) ~= "string" then
        return nil, "must be a string"
    end
    local n = #name
    if n < 3 or n > 63 then
        return nil, "must be 3 to 63 characters long"
    end
    if find(name, "[^a-z0-9.%-]") then
        return nil, "may hold only lowercase letters, digits, '-' and '.'"
    end
    if not find(name, "^[a-z0-9]") or not find(name, "[a-z0-9]$") then
        return nil, "must start and end with a letter or a digit"
    end
    if find(name, "..", 1, true) then
        return nil, "must not hold two adjacent periods"
    end
    if find(name, "^%d+%.%d+%.%d+%.%d+$") then
        return nil, "must not look like an IP address"
    end
    for _, p in ipairs(RESERVED_PREFIXES) do
        if sub(name, 1, #p) == p then
            return nil, "must not start with the reserved prefix '" .. p .. "'"
        end
    end
    for _, s in ipairs(RESERVED_SUFFIXES) do
        if sub(name, -#s) == s then
            return nil, "must not end with the reserved suffix '" .. s .. "'"
        end
    end
    return true
end

-- Checks that s is well-formed UTF-8 (no overlong forms, no surrogates,
-- nothing above U+10FFFF) without control characters (C0, DEL, C1).
-- Returns true, or nil and a reason.
local function check_text(s)
    local i, n = 1, #s
    while i <= n do
        local c = byte(s, i)
        local len, cp, min
        if c < 0x80 then
            if c < 0x20 or c == 0x7f then
                return nil, "must not contain control characters (CR, LF, NUL, ...)"
            end
            i = i + 1
        else
            if c >= 0xc2 and c <= 0xdf then
                len, cp, min = 2, c - 0xc0, 0x80
            elseif c >= 0xe0 and c <= 0xef then
                len, cp, min = 3, c - 0xe0, 0x800
            elseif c >= 0xf0 and c <= 0xf4 then
                len, cp, min = 4, c - 0xf0, 0x10000
            else
                return nil, "is not valid UTF-8"
            end
            if i + len - 1 > n then
                return nil, "is not valid UTF-8"
            end
            for k = 1, len - 1 do
                local cc = byte(s, i + k)
                if cc < 0x80 or cc > 0xbf then
                    return nil, "is not valid UTF-8"
                end
                cp = cp * 64 + (cc - 0x80)
            end
            if cp < min or cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff) then
                return nil, "is not valid UTF-8"
            end
            if cp >= 0x80 and cp <= 0x9f then
                return nil, "must not contain control characters (CR, LF, NUL, ...)"
            end
            i = i + len
        end
    end
    return true
end
_M.check_text = check_text

-- A file name: 1..1024 bytes of UTF-8 without control characters, made of
-- '/'-separated segments none of which is empty (no leading or trailing
-- '/', no '//') or made only of dots ('.', '..', '...'). Names are keys,
-- never paths on a disk, but a client that saves a file under its name
-- must not be led outside its directory.
function _M.file(name)
    if type(name) ~= "string" or name == "" then
        return nil, "must not be empty"
    end
    if #name > _M.MAX_FILE_NAME_BYTES then
        return nil, "must be at most " .. _M.MAX_FILE_NAME_BYTES .. " bytes of UTF-8"
    end
    local ok, reason = check_text(name)
    if not ok then
        return nil, reason
    end
    if byte(name, 1) == 47 then
        return nil, "must not start with '/'"
    end
    if byte(name, -1) == 47 then
        return nil, "must not end with '/'"
    end
    if find(name, "//", 1, true) then
        return nil, "must not hold an empty segment ('//')"
    end
    for seg in name:gmatch("[^/]+") do
        if not find(seg, "[^.]") then
            if seg == ".." then
                return nil, "must not hold a '..' segment"
            end
            return nil, "must not hold a segment made only of dots"
        end
    end
    return true
end

-- The last segment of a valid file name (what a download is saved as).
function _M.basename(name)
    return name:match("([^/]+)$") or name
end

-- Code points of s, which check_text accepted.
local function code_points(s)
    local out, i, n = {}, 1, #s
    while i <= n do
        local c = byte(s, i)
        local len = c < 0x80 and 1 or c < 0xe0 and 2 or c < 0xf0 and 3 or 4
        local cp = len == 1 and c or len == 2 and c - 0xc0 or len == 3 and c - 0xe0 or c - 0xf0
        for k = 1, len - 1 do
            cp = cp * 64 + (byte(s, i + k) - 0x80)
        end
        out[#out + 1] = cp
        i = i + len
    end
    return out
end

local function utf8_char(cp)
    local floor = math.floor
    if cp < 0x80 then
        return char(cp)
    elseif cp < 0x800 then
        return char(0xc0 + floor(cp / 64), 0x80 + cp % 64)
    elseif cp < 0x10000 then
        return char(0xe0 + floor(cp / 4096), 0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
    end
    return char(0xf0 + floor(cp / 262144), 0x80 + floor(cp / 4096) % 64,
                0x80 + floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- The smallest string greater than every string that starts with prefix,
-- in byte order (UTF-8 byte order is code point order), as valid UTF-8;
-- nil when there is none (empty prefix, or only U+10FFFF). Lets a prefix
-- listing be a range scan: name >= prefix AND name < upper.
function _M.prefix_upper(prefix)
    if not check_text(prefix) then
        return nil
    end
    local cps = code_points(prefix)
    while #cps > 0 do
        local last = cps[#cps]
        if last < 0x10ffff then
            last = last + 1
            if last == 0xd800 then
                last = 0xe000
            end
            cps[#cps] = last
            local out = {}
            for i, cp in ipairs(cps) do
                out[i] = utf8_char(cp)
            end
            return table.concat(out)
        end
        cps[#cps] = nil
    end
    return nil
end

return _M
