#!/usr/bin/env python3
"""sops_tool: write, read and verify SOPS-encrypted YAML files with age keys.

The `sops` binary is not installable on the machines this repository is
built on, so this tool implements the part of the SOPS file format that the
repository uses, from sops's own rules (getsops/sops: sops.go, aes/cipher.go,
stores/, cmd/sops/common), and is tested against files the real sops wrote
(tests/sops/):

- A random 32-byte data key, wrapped for each age recipient separately with
  the `age` binary (ASCII-armoured, one `sops.age[]` entry per recipient).
- Each value selected by the file's rule (encrypted_regex, unencrypted_regex,
  encrypted_suffix or unencrypted_suffix; by default every key not ending in
  `_unencrypted`) becomes ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]:
  AES-256-GCM with a fresh 32-byte IV and, as additional data, the path of
  mapping keys to the value joined and ended by ':' (list indices are not
  part of it: `a: [x, y]` encrypts both under "a:"). Empty strings stay
  empty and null stays null, as sops leaves them.
- The MAC: SHA-512 over every value in document order (strings as UTF-8,
  integers in decimal, floats in Go's shortest 'f' form, booleans as True and
  False, nulls skipped), or, with mac_only_encrypted, over the encrypted ones
  after a fixed 32-byte prefix; its upper-case hex is itself encrypted with
  the data key under `lastmodified` (RFC 3339) as additional data, so a
  changed value, a moved value or a changed date all fail verification.
  Keys are not in the MAC: renaming a key whose values are not encrypted
  passes (as with sops); a key above an encrypted value is bound through
  the additional data.

Commands (run with --help for the options):
  encrypt     plaintext YAML -> SOPS file, recipients and rule from .sops.yaml
  decrypt     SOPS file -> plaintext YAML, after checking the MAC
  verify      check the MAC of SOPS files
  rotate      new data key, every value re-encrypted, same recipients
  updatekeys  wrap the same data key for the recipients .sops.yaml now names
  check       policy without keys: the file is a SOPS file whose recipients
              and rule are those .sops.yaml gives its path, and every value
              the rule selects is encrypted

Private keys come from --key FILE, else SOPS_AGE_KEY_FILE, else SOPS_AGE_KEY
(the key text), else ~/.config/sops/age/keys.txt, as sops looks for them.
Exit status: 0, 1 for an error, 51 for a MAC mismatch, 128 when no key
could unwrap the data key (sops's codes).

Limits: YAML only, one document, string keys, values of type string,
integer, float, boolean or null, typed as yaml.v3 types them (sops's YAML
reader); an unquoted timestamp, which sops reads as a time, is refused. Comments are dropped when
encrypting and ignored when reading (sops encrypts comments inside selected
sections but leaves them out of the MAC, so verification is unaffected).
Key groups, Shamir thresholds and the comment regexes are refused.
"""
import argparse
import base64
import datetime
import decimal
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # a python3 of its own (pyenv): use Debian's packages, which .ci/deps installs
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import yaml
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as e:
        sys.exit("sops_tool: %s (install the Debian packages python3-yaml and "
                 "python3-cryptography: bash .ci/deps)" % e)

FORMAT_VERSION = "3.9.0"  # the sops release whose file layout this writes
DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"
MAC_ONLY_ENCRYPTED_INIT = bytes([
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69])
ENC_RE = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
AGE_RECIPIENT_RE = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
RULE_KEYS = ("unencrypted_suffix", "encrypted_suffix", "unencrypted_regex", "encrypted_regex")
MAX_FILE_BYTES = 4 << 20

EXIT_ERROR, EXIT_MAC_MISMATCH, EXIT_NO_KEY = 1, 51, 128


class SopsError(Exception):
    """A failure with the exit status sops would give it."""

    def __init__(self, msg, status=EXIT_ERROR):
        super().__init__(msg)
        self.status = status


# ---- YAML in: yaml.v3's scalar types, ordered, no duplicate keys --------------------------
#
# sops reads YAML with yaml.v3 into interface{} values, and the MAC hashes
# those values, so a plain scalar must get the type yaml.v3 gives it
# (resolve.go): true/false (three spellings each) and the null spellings by
# table, and anything starting with a digit, sign or dot as yaml.v3 tries
# it: timestamp, then Go's strconv.ParseInt with base 0 after dropping '_'
# (so 0x1F, 0o17, 0b101 and the YAML 1.1 octal 0777 are integers), then a
# YAML-style float; otherwise a string. Quoted scalars are strings.

class _Loader(yaml.SafeLoader):
    pass


GO_PLAIN_TAG = "tag:glasgow,2026:go-plain"
_Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+."),
    ("tag:yaml.org,2002:merge", r"^<<$", "<"),
    (GO_PLAIN_TAG, r"^[-+0-9.]", "-+0123456789."),
]:
    _Loader.add_implicit_resolver(_tag, re.compile(_regexp), list(_first))

_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_GO_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]| )[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]*)?"
    r"(?:Z|[-+][0-9]{2}:[0-9]{2})?)?")


def go_parse_int(s):
    """The integer Go's strconv.ParseInt(s, 0, 64) syntax reads in s, whatever its
    size, or None."""
    m = _GO_INT.fullmatch(s)
    if not m:
        return None
    sign, body = m.groups()
    prefix = body[:2].lower()
    if prefix in ("0x", "0b", "0o"):
        v = int(body[2:], {"0x": 16, "0b": 2, "0o": 8}[prefix])
    elif body.startswith("0") and len(body) > 1:
        v = int(body[1:], 8)
    else:
        v = int(body, 10)
    return -v if sign == "-" else v


def resolve_plain(s):
    """The value yaml.v3 decodes the plain scalar s (starting with - + digit or .) to."""
    if s.startswith("."):
        return float(s) if re.fullmatch(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?", s) else s
    if _GO_TIMESTAMP.fullmatch(s):
        raise SopsError("%r: sops reads an unquoted timestamp as a time value, which this "
                        "tool does not support: quote it" % s)
    plain = s.replace("_", "")
    v = go_parse_int(plain)
    if v is not None:
        if -(1 << 63) <= v < (1 << 63):
            return v
        if v < (1 << 64) and plain[0] not in "+-":
            raise SopsError("%r: yaml.v3 reads this as a uint64, which sops refuses" % s)
    if _YAML_FLOAT.fullmatch(plain):  # what ParseInt and ParseUint refused
        return float(plain)
    return s


def _construct_bool(loader, node):
    return loader.construct_scalar(node).lower() == "true"


def _construct_float(loader, node):
    s = loader.construct_scalar(node).lower()
    return math.nan if s == ".nan" else (-math.inf if s.startswith("-") else math.inf)


def _construct_go_plain(loader, node):
    return resolve_plain(loader.construct_scalar(node))


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    out = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise SopsError("line %d: only string keys are supported, not %r" %
                            (key_node.start_mark.line + 1, key))
        if key in out:
            raise SopsError("line %d: duplicate key %r" % (key_node.start_mark.line + 1, key))
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_Loader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor(GO_PLAIN_TAG, _construct_go_plain)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def load_yaml(text):
    """One YAML document as nested dicts (in file order), lists and scalars."""
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        raise SopsError("not valid YAML: %s" % str(e).replace("\n", " ")) from None
    docs = [d for d in docs if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise SopsError("expected exactly one YAML document holding a mapping")
    _check_types(docs[0])
    return docs[0]


def _check_types(v):
    if isinstance(v, dict):
        for x in v.values():
            _check_types(x)
    elif isinstance(v, list):
        for x in v:
            _check_types(x)
    elif not (v is None or isinstance(v, (str, bool, int, float))):
        raise SopsError("unsupported value of type %s (%r)" % (type(v).__name__, v))


# ---- YAML out: the layout sops writes (2-space maps, lists 2 under their key) ---------------

_PLAIN_FIRST = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./^($~\\")
_PLAIN_REST = _PLAIN_FIRST | set(":@+=,[]() |*?!%&-")


def _plain_ok(s):
    if not s or s[0] not in _PLAIN_FIRST or any(c not in _PLAIN_REST for c in s):
        return False
    if s.endswith((" ", ":")) or ": " in s or " #" in s:
        return False
    try:  # read back as this string by a YAML 1.2 reader and a YAML 1.1 one
        return yaml.load(s, Loader=_Loader) == s and yaml.safe_load(s) == s
    except (yaml.YAMLError, SopsError):
        return False


def _quoted(s):
    out = ['"']
    for c in s:
        o = ord(c)
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif o < 0x20 or 0x7f <= o <= 0x9f:
            out.append("\\x%02x" % o)
        elif o in (0x2028, 0x2029, 0xfeff) or 0xd800 <= o <= 0xdfff or o in (0xfffe, 0xffff):
            out.append("\\u%04x" % o)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def go_float(v):
    """strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, no exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    s = format(decimal.Decimal(repr(v)), "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        return repr(v)
    return v if _plain_ok(v) else _quoted(v)


def _literal_ok(s):
    if "\n" not in s or s.startswith((" ", "\n")) or "\r" in s:
        return False
    return all(c == "\n" or c == "\t" or (0x20 <= ord(c) and not 0x7f <= ord(c) <= 0x9f and
                                          c not in "\u2028\u2029\ufeff") for c in s)


def _literal(s, indent):
    """A block literal for s: "|" for one final newline, "|-" for none, "|+" for more."""
    if not s.endswith("\n"):
        chomp = "-"
    else:
        chomp = "+" if s.endswith("\n\n") else ""
        s = s[:-1]
    return "|" + chomp, [(" " * indent + ln) if ln else "" for ln in s.split("\n")]


def _emit_value(lines, prefix, v, indent):
    """Appends the lines for value v after prefix ("key:" or "-") at indent."""
    if isinstance(v, dict) and v:
        lines.append(prefix)
        _emit_map(lines, v, indent + 2)
    elif isinstance(v, list) and v:
        lines.append(prefix)
        _emit_seq(lines, v, indent + 2)
    elif isinstance(v, (dict, list)):
        lines.append(prefix + (" {}" if isinstance(v, dict) else " []"))
    elif isinstance(v, str) and _literal_ok(v):
        head, body = _literal(v, indent + 2)
        lines.append(prefix + " " + head)
        lines.extend(body)
    else:
        lines.append(prefix + " " + _scalar(v))


def _emit_map(lines, d, indent):
    for k, v in d.items():
        _emit_value(lines, " " * indent + _scalar(k) + ":", v, indent)


def _emit_seq(lines, seq, indent):
    for item in seq:
        if isinstance(item, dict) and item:
            sub = []
            _emit_map(sub, item, indent + 2)
            sub[0] = " " * indent + "- " + sub[0][indent + 2:]
            lines.extend(sub)
        else:
            _emit_value(lines, " " * indent + "-", item, indent)


def _same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def dump_yaml(doc):
    """The document as YAML text; read back, it is equal to doc (checked)."""
    lines = []
    _emit_map(lines, doc, 0)
    text = "\n".join(lines) + "\n" if lines else "{}\n"
    if not _same(load_yaml(text), doc):
        raise SopsError("internal error: the YAML written does not read back the same")
    return text


# ---- the SOPS tree ------------------------------------------------------------------------

def to_bytes(v):
    """sops.ToBytes: what the MAC hashes and AES-GCM encrypts for a value."""
    if isinstance(v, bool):
        return b"True" if v else b"False"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return go_float(v).encode()
    return v.encode("utf-8")


def _type_name(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return "str"


def _from_type(text, typ):
    if typ == "str":
        return text
    if typ == "int":
        if not re.fullmatch(r"[-+]?[0-9]+", text):
            raise SopsError("an int value does not decrypt to an integer")
        return int(text)
    if typ == "float":
        try:
            return float(text.replace("Inf", "inf"))
        except ValueError:
            raise SopsError("a float value does not decrypt to a number") from None
    if typ == "bool":
        if text in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if text in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        raise SopsError("a bool value does not decrypt to a boolean")
    raise SopsError("unsupported encrypted type %r" % typ)


def _b64(b):
    return base64.b64encode(b).decode()


def _unb64(s, what):
    try:
        return base64.b64decode(s, validate=True)
    except ValueError:
        raise SopsError("%s is not valid base64" % what) from None


def encrypt_value(v, key, aad):
    """aes.Cipher.Encrypt: ENC[...] for v, or "" for the empty string."""
    if v == "":
        return ""
    iv = os.urandom(32)
    sealed = AESGCM(key).encrypt(iv, to_bytes(v), aad.encode("utf-8"))
    return "ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]" % (
        _b64(sealed[:-16]), _b64(iv), _b64(sealed[-16:]), _type_name(v))


def decrypt_value(s, key, aad, where):
    """aes.Cipher.Decrypt: the value ENC[...] s holds (authenticated under aad)."""
    if s == "":
        return ""
    m = ENC_RE.match(s) if isinstance(s, str) else None
    if not m:
        raise SopsError("%s: not an encrypted value" % where)
    data, iv, tag = (_unb64(m.group(i), "%s: the %s" % (where, n))
                     for i, n in ((1, "data"), (2, "iv"), (3, "tag")))
    if len(iv) == 0 or len(tag) != 16:
        raise SopsError("%s: bad iv or tag length" % where)
    try:
        plain = AESGCM(key).decrypt(iv, data + tag, aad.encode("utf-8"))
    except Exception:  # cryptography raises InvalidTag
        raise SopsError("%s: authentication failed (changed value, key path or data key)" % where,
                        EXIT_MAC_MISMATCH) from None
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError:
        raise SopsError("%s: decrypted value is not UTF-8" % where) from None
    return _from_type(text, m.group(4))


def should_encrypt(rule, path):
    """Tree.shouldBeEncrypted for the four path rules (at most one is set)."""
    if rule.get("unencrypted_suffix"):
        return not any(p.endswith(rule["unencrypted_suffix"]) for p in path)
    if rule.get("encrypted_suffix"):
        return any(p.endswith(rule["encrypted_suffix"]) for p in path)
    if rule.get("unencrypted_regex"):
        return not any(re.search(rule["unencrypted_regex"], p) for p in path)
    if rule.get("encrypted_regex"):
        return any(re.search(rule["encrypted_regex"], p) for p in path)
    return True


def walk(tree, fn, path=()):
    """Applies fn(value, path) to every non-null leaf in document order, as sops's
    walkBranch does (list items keep their list's path); returns the new tree."""
    if isinstance(tree, dict):
        return {k: walk(v, fn, path + (k,)) for k, v in tree.items()}
    if isinstance(tree, list):
        return [walk(v, fn, path) for v in tree]
    if tree is None:
        return None
    return fn(tree, path)


def _aad(path):
    return ":".join(path) + ":"


def crypt_tree(tree, key, rule, mac_only, encrypting):
    """Encrypts (or decrypts) the values rule selects; returns (new tree, MAC hex).
    Either way the MAC hashes the plaintext values, as sops's Tree.Encrypt and
    Tree.Decrypt do."""
    h = hashlib.sha512()
    if mac_only:
        h.update(MAC_ONLY_ENCRYPTED_INIT)

    def leaf(v, path):
        enc = should_encrypt(rule, path)
        plain = v
        if enc and not encrypting:
            if not isinstance(v, str):
                raise SopsError("%s: a value the rule encrypts is in plaintext" % _aad(path))
            plain = decrypt_value(v, key, _aad(path), _aad(path))
        if enc or not mac_only:
            h.update(to_bytes(plain))
        if enc and encrypting:
            return encrypt_value(v, key, _aad(path))
        return plain
    out = walk(tree, leaf)
    return out, h.hexdigest().upper()


# ---- metadata -----------------------------------------------------------------------------

def _now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_lastmodified(s):
    """Go's time.Parse(RFC3339) then Format(RFC3339): the MAC's additional data."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[-+]\d{2}:\d{2})",
                     s if isinstance(s, str) else "")
    if not m:
        raise SopsError("sops.lastmodified is not an RFC 3339 time: %r" % (s,))
    try:
        datetime.datetime.strptime(m.group(1) + "T" + m.group(2), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise SopsError("sops.lastmodified is not a valid time: %r" % (s,)) from None
    frac = (m.group(3) or "").rstrip("0")
    frac = "" if frac == "." else frac
    zone = m.group(4).upper()
    zone = "Z" if zone in ("Z", "+00:00") else zone
    return "%sT%s%s%s" % (m.group(1), m.group(2), frac, zone)


def split_file(text):
    """(tree, metadata) of an encrypted file's text."""
    doc = load_yaml(text)
    meta = doc.pop("sops", None)
    if not isinstance(meta, dict):
        raise SopsError("no sops metadata: the file is not SOPS-encrypted")
    for bad in ("key_groups", "shamir_threshold", "unencrypted_comment_regex",
                "encrypted_comment_regex"):
        if meta.get(bad):
            raise SopsError("sops.%s is not supported by this tool" % bad)
    for other in ("kms", "gcp_kms", "azure_kv", "hc_vault", "pgp", "hckms"):
        if meta.get(other):
            raise SopsError("sops.%s keys are not supported by this tool (age only)" % other)
    if sum(1 for k in RULE_KEYS if meta.get(k)) > 1:
        raise SopsError("more than one of %s" % ", ".join(RULE_KEYS))
    ages = meta.get("age")
    if not isinstance(ages, list) or not ages or not all(
            isinstance(a, dict) and isinstance(a.get("recipient"), str) and
            isinstance(a.get("enc"), str) for a in ages):
        raise SopsError("sops.age must list recipients with their wrapped data key")
    if not isinstance(meta.get("mac"), str) or not meta["mac"]:
        raise SopsError("sops.mac is missing")
    return doc, meta


def rule_of(meta):
    rule = {k: meta[k] for k in RULE_KEYS if meta.get(k)}
    return rule or {"unencrypted_suffix": DEFAULT_UNENCRYPTED_SUFFIX}


def build_metadata(rule, recipients_enc, mac_only, lastmodified, mac):
    """The sops block in the order and layout sops 3.9 writes it."""
    meta = {"kms": [], "gcp_kms": [], "azure_kv": [], "hc_vault": [],
            "age": [{"recipient": r, "enc": e} for r, e in recipients_enc],
            "lastmodified": lastmodified, "mac": mac, "pgp": []}
    for k in RULE_KEYS:
        if rule.get(k):
            meta[k] = rule[k]
    if mac_only:
        meta["mac_only_encrypted"] = True
    meta["version"] = FORMAT_VERSION
    return meta


# ---- age ------------------------------------------------------------------------------

def _age_bin():
    path = shutil.which("age")
    if not path:
        raise SopsError("the age binary is not installed (Debian package age)")
    return path


def wrap_data_key(data_key, recipient):
    """age -e -a for one recipient: the armoured file sops stores in sops.age[].enc."""
    if not AGE_RECIPIENT_RE.match(recipient):
        raise SopsError("not an age recipient: %r" % recipient)
    p = subprocess.run([_age_bin(), "-e", "-a", "-r", recipient], input=data_key,
                       capture_output=True, timeout=30)
    if p.returncode != 0:
        raise SopsError("age could not encrypt for %s: %s" % (recipient, p.stderr.decode().strip()))
    return p.stdout.decode()


def identities(key_file=None):
    """The age identity file to use (path), as sops finds it; None when there is none."""
    if key_file:
        return key_file
    if os.environ.get("SOPS_AGE_KEY_FILE"):
        return os.environ["SOPS_AGE_KEY_FILE"]
    if os.environ.get("SOPS_AGE_KEY"):
        return "-"  # read from SOPS_AGE_KEY by unwrap_data_key
    default = os.path.join(os.environ.get("XDG_CONFIG_HOME") or
                           os.path.join(os.path.expanduser("~"), ".config"), "sops", "age",
                           "keys.txt")
    return default if os.path.exists(default) else None


def unwrap_data_key(meta, key_file=None):
    """The 32-byte data key from the first sops.age[] entry an identity opens."""
    ident = identities(key_file)
    if ident is None:
        raise SopsError("no age key: pass --key or set SOPS_AGE_KEY_FILE", EXIT_NO_KEY)
    tmp = None
    try:
        if ident == "-":
            tmp = tempfile.mkdtemp(prefix="sops-tool-")
            ident = os.path.join(tmp, "keys.txt")
            fd = os.open(ident, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(os.environ["SOPS_AGE_KEY"] + "\n")
        errors = []
        for entry in meta["age"]:
            p = subprocess.run([_age_bin(), "-d", "-i", ident], input=entry["enc"].encode(),
                               capture_output=True, timeout=30)
            if p.returncode == 0 and len(p.stdout) == 32:
                return p.stdout
            errors.append("%s: %s" % (entry["recipient"], p.stderr.decode().strip() or
                                      "not a 32-byte data key"))
        raise SopsError("no age key opens the data key (%s)" % "; ".join(errors), EXIT_NO_KEY)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


# ---- .sops.yaml -----------------------------------------------------------------------------

def find_config(start):
    """The nearest .sops.yaml from start's directory upwards, as sops looks for it."""
    d = os.path.abspath(start if os.path.isdir(start) else os.path.dirname(start) or ".")
    while True:
        c = os.path.join(d, ".sops.yaml")
        if os.path.isfile(c):
            return c
        parent = os.path.dirname(d)
        if parent == d:
            raise SopsError("no .sops.yaml found above %s" % start)
        d = parent


def creation_rule(config_path, file_path):
    """The first creation rule whose path_regex matches file_path relative to the
    config's directory. Returns (recipients, rule, mac_only)."""
    with open(config_path, encoding="utf-8") as f:
        conf = load_yaml(f.read())
    rules = conf.get("creation_rules")
    if not isinstance(rules, list):
        raise SopsError("%s: no creation_rules list" % config_path)
    rel = os.path.relpath(os.path.abspath(file_path), os.path.dirname(os.path.abspath(config_path)))
    for r in rules:
        if not isinstance(r, dict):
            raise SopsError("%s: a creation rule is not a mapping" % config_path)
        if r.get("path_regex") and not re.search(r["path_regex"], rel):
            continue
        for bad in ("key_groups", "shamir_threshold", "pgp", "kms", "gcp_kms", "azure_keyvault",
                    "hc_vault_transit_uri", "unencrypted_comment_regex", "encrypted_comment_regex"):
            if r.get(bad):
                raise SopsError("%s: %s is not supported by this tool" % (config_path, bad))
        age = r.get("age")
        recips = age if isinstance(age, list) else str(age or "").split(",")
        recips = [x.strip() for x in recips if x and x.strip()]
        if not recips:
            raise SopsError("%s: the rule for %s names no age recipient" % (config_path, rel))
        for x in recips:
            if not AGE_RECIPIENT_RE.match(x):
                raise SopsError("%s: not an age recipient: %r" % (config_path, x))
        rule = {k: r[k] for k in RULE_KEYS if r.get(k)}
        if len(rule) > 1:
            raise SopsError("%s: more than one of %s" % (config_path, ", ".join(RULE_KEYS)))
        return recips, rule or {"unencrypted_suffix": DEFAULT_UNENCRYPTED_SUFFIX}, \
            bool(r.get("mac_only_encrypted"))
    raise SopsError("%s: no creation rule matches %s" % (config_path, rel))


# ---- operations -----------------------------------------------------------------------------

def read_text(path):
    with open(path, "rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise SopsError("%s: larger than %d bytes" % (path, MAX_FILE_BYTES))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SopsError("%s: not UTF-8" % path) from None


def seal(tree, data_key, recipients_enc, rule, mac_only, lastmodified=None):
    """The encrypted file text for a plaintext tree."""
    enc, mac = crypt_tree(tree, data_key, rule, mac_only, encrypting=True)
    lastmodified = lastmodified or _now_rfc3339()
    enc_mac = encrypt_value(mac, data_key, lastmodified)
    enc["sops"] = build_metadata(rule, recipients_enc, mac_only, lastmodified, enc_mac)
    return dump_yaml(enc)


def encrypt_text(text, recipients, rule, mac_only):
    tree = load_yaml(text)
    if "sops" in tree:
        raise SopsError("the input already has a sops key: is it encrypted already?")
    data_key = os.urandom(32)
    return seal(tree, data_key, [(r, wrap_data_key(data_key, r)) for r in recipients], rule,
                mac_only)


def open_text(text, key_file=None, ignore_mac=False):
    """Decrypts a SOPS file's text. Returns (plaintext tree, metadata, data key);
    raises SopsError (status 51) when the MAC does not match."""
    tree, meta = split_file(text)
    data_key = unwrap_data_key(meta, key_file)
    mac_only = bool(meta.get("mac_only_encrypted"))
    plain, mac = crypt_tree(tree, data_key, rule_of(meta), mac_only, encrypting=False)
    if not ignore_mac:
        lastmodified = normalize_lastmodified(meta.get("lastmodified"))
        try:
            stored = decrypt_value(meta["mac"], data_key, lastmodified, "sops.mac")
        except SopsError as e:
            raise SopsError("MAC mismatch: %s" % e, EXIT_MAC_MISMATCH) from None
        if stored != mac:
            raise SopsError("MAC mismatch: the file has %s, its values give %s" %
                            (stored, mac), EXIT_MAC_MISMATCH)
    return plain, meta, data_key


def check_text(text, config_path, file_path):
    """Policy without keys. Returns a list of problems (empty when the file is a SOPS
    file for exactly the recipients and rule .sops.yaml gives its path, and every value
    that rule selects is encrypted)."""
    problems = []
    try:
        tree, meta = split_file(text)
        recips, rule, mac_only = creation_rule(config_path, file_path)
    except SopsError as e:
        return [str(e)]
    have = [a["recipient"] for a in meta["age"]]
    if sorted(have) != sorted(recips):
        problems.append("age recipients %s, .sops.yaml names %s" % (sorted(have), sorted(recips)))
    for a in meta["age"]:
        enc = a["enc"]
        if not (enc.startswith("-----BEGIN AGE ENCRYPTED FILE-----\n") and
                enc.rstrip("\n").endswith("-----END AGE ENCRYPTED FILE-----")):
            problems.append("the data key for %s is not an armoured age file" % a["recipient"])
    if rule_of(meta) != rule:
        problems.append("encryption rule %s, .sops.yaml gives %s" % (rule_of(meta), rule))
    if bool(meta.get("mac_only_encrypted")) != mac_only:
        problems.append("mac_only_encrypted differs from .sops.yaml")
    if not ENC_RE.match(meta["mac"]):
        problems.append("sops.mac is not an encrypted value")
    try:
        normalize_lastmodified(meta.get("lastmodified"))
    except SopsError as e:
        problems.append(str(e))
    selected = []

    def leaf(v, path):
        if should_encrypt(rule, path):
            selected.append(path)
            if not (isinstance(v, str) and (v == "" or ENC_RE.match(v))):
                problems.append("%s is in plaintext" % _aad(path))
        return v
    walk(tree, leaf)
    if not selected:
        problems.append("no value is selected for encryption")
    return problems


def _write(path, text, in_place_of=None):
    if path in (None, "-"):
        sys.stdout.write(text)
        return
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".sops-tool-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644 if in_place_of is None else os.stat(in_place_of).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _out_path(args):
    return args.file if getattr(args, "in_place", False) else args.output


def cmd_encrypt(args):
    target = args.filename_override or _out_path(args) or args.file
    config = args.config or find_config(target)
    recips, rule, mac_only = creation_rule(config, target)
    _write(_out_path(args), encrypt_text(read_text(args.file), recips, rule, mac_only))


def cmd_decrypt(args):
    plain, _, _ = open_text(read_text(args.file), args.key, args.ignore_mac)
    _write(_out_path(args), dump_yaml(plain))


def cmd_verify(args):
    status = 0
    for path in args.files:
        try:
            open_text(read_text(path), args.key)
            print("%s: MAC ok" % path)
        except SopsError as e:
            print("%s: %s" % (path, e), file=sys.stderr)
            status = max(status, e.status)
    return status


def cmd_rotate(args):
    text = read_text(args.file)
    plain, meta, _ = open_text(text, args.key)
    recips = [a["recipient"] for a in meta["age"]]
    data_key = os.urandom(32)
    out = seal(plain, data_key, [(r, wrap_data_key(data_key, r)) for r in recips], rule_of(meta),
               bool(meta.get("mac_only_encrypted")))
    _write(_out_path(args), out, args.file)


def cmd_updatekeys(args):
    text = read_text(args.file)
    config = args.config or find_config(args.file)
    recips, rule, mac_only = creation_rule(config, args.file)
    plain, meta, data_key = open_text(text, args.key)
    if rule != rule_of(meta) or mac_only != bool(meta.get("mac_only_encrypted")):
        raise SopsError("the encryption rule in .sops.yaml changed: use rotate after editing "
                        "the file's rule, or re-encrypt it")
    old = {a["recipient"]: a["enc"] for a in meta["age"]}
    wrapped = [(r, old.get(r) or wrap_data_key(data_key, r)) for r in recips]
    removed = sorted(set(old) - set(recips))
    out = seal(plain, data_key, wrapped, rule, mac_only)
    _write(_out_path(args), out, args.file)
    if removed:
        print("removed %s: their holders still know this data key; run rotate too" %
              ", ".join(removed), file=sys.stderr)


def cmd_check(args):
    status = 0
    for path in args.files:
        config = args.config or find_config(path)
        problems = check_text(read_text(path), config, path)
        for p in problems:
            print("%s: %s" % (path, p), file=sys.stderr)
        if problems:
            status = EXIT_ERROR
        else:
            print("%s: encrypted per %s" % (path, os.path.relpath(config)))
    return status


def main(argv=None):
    ap = argparse.ArgumentParser(prog="sops_tool", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def command(name, fn, help, many=False, output=False, key=False, config=False):
        p = sub.add_parser(name, help=help)
        p.add_argument("files" if many else "file", nargs="+" if many else None)
        if output:
            g = p.add_mutually_exclusive_group()
            g.add_argument("-i", "--in-place", action="store_true", help="replace FILE")
            g.add_argument("-o", "--output", help="write here (default: standard output)")
        if key:
            p.add_argument("--key", help="age identity file")
        if config:
            p.add_argument("--config", help=".sops.yaml to use (default: the nearest above)")
        p.set_defaults(fn=fn)
        return p

    command("encrypt", cmd_encrypt, "encrypt a plaintext YAML file per .sops.yaml", output=True,
            config=True).add_argument("--filename-override",
                                      help="pick the creation rule for this path")
    command("decrypt", cmd_decrypt, "print the plaintext after checking the MAC", output=True,
            key=True).add_argument("--ignore-mac", action="store_true",
                                   help="decrypt even if the MAC differs")
    command("verify", cmd_verify, "check the MAC of SOPS files", many=True, key=True)
    command("rotate", cmd_rotate, "new data key for a file, same recipients", output=True,
            key=True)
    command("updatekeys", cmd_updatekeys, "wrap the data key for the recipients in .sops.yaml",
            output=True, key=True, config=True)
    command("check", cmd_check, "policy check without keys", many=True, config=True)

    args = ap.parse_args(argv)
    try:
        return args.fn(args) or 0
    except SopsError as e:
        print("sops_tool: %s" % e, file=sys.stderr)
        return e.status
    except OSError as e:
        print("sops_tool: %s" % e, file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
