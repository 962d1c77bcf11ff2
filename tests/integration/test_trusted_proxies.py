"""GLASGOW_TRUSTED_PROXIES: the client address behind reverse proxies.

One server trusts 127.0.0.2, 127.0.0.3 and 10.0.0.0/8 and fd00::/8 as
proxies; requests come from 127.0.0.1 (an untrusted client: any 127.x.y.z
is this host, so the source address picks the role) or from 127.0.0.2 (a
trusted proxy). A spoofed X-Forwarded-For from an untrusted peer must
change nothing: req.client, the access log's client and the login
throttle's address key stay the peer's. From a trusted peer the rightmost
untrusted hop is the client, a chain of trusted proxies is skipped, and a
malformed value leaves the peer as the client. The per-address connection
limit counts untrusted peers and exempts trusted proxies. A bad CIDR stops
the start-up with a message naming the variable.
"""
import http.client
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GLASGOW_BIN, HOST, case, free_port, is_, main, ok, spawn,  # noqa: E402
                     slow, wait_until)
import dbharness as dbh  # noqa: E402

dbh.skip_without_pg()

CLIENT = "127.0.0.1"  # untrusted
PROXY = "127.0.0.2"  # trusted
TRUSTED = "127.0.0.2, 127.0.0.3/32 10.0.0.0/8,fd00::/8"
ADDRESS_FAILURES = 3
PER_IP = 3

WHOAMI = """
return {
    {
        method = "GET",
        path = "/whoami",
        handler = function(req)
            return 200, { client = req.client }
        end,
    },
}
"""


def send(fx, src, method, path, xff=(), body=None, request_id=None):
    """One request from source address src with each X-Forwarded-For line in xff.
    Returns (status, parsed JSON body or None)."""
    c = http.client.HTTPConnection(HOST, fx.server.port, timeout=10, source_address=(src, 0))
    try:
        c.putrequest(method, path)
        for line in xff:
            c.putheader("X-Forwarded-For", line)
        if request_id:
            c.putheader("X-Request-ID", request_id)
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(len(data)))
        c.endheaders(data)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, None
    finally:
        c.close()


def whoami(fx, src, *xff):
    status, body = send(fx, src, "GET", "/whoami", xff)
    return (body or {}).get("client") if status == 200 else "status %d" % status


def access_rec(fx, request_id):
    def find():
        for rec in fx.server.log_lines():
            if rec.get("msg") == "request" and rec.get("request_id") == request_id:
                return rec
        return None
    return wait_until(find, 3.0) or {}


def address_keys(fx):
    out = fx.db.sql("SELECT key FROM auth_throttle WHERE key LIKE 'address:%' ORDER BY key")
    return [k for k in out.split("\n") if k]


def reset_throttle(fx):
    fx.db.sql("DELETE FROM auth_throttle")


def bad_login(fx, src, xff, n):
    """A wrong password for a fresh account each time (so only the address counts)."""
    status, _ = send(fx, src, "POST", "/v1/auth/token", xff,
                     {"email": "nobody-%d-%d@example.com" % (n, time.monotonic_ns()),
                      "password": "wrong-password"})
    return status


@case
def untrusted_peer_spoofing_ignored(fx):
    is_(whoami(fx, CLIENT), CLIENT, "no header: the peer")
    is_(whoami(fx, CLIENT, "203.0.113.9"), CLIENT,
        "X-Forwarded-For from an untrusted peer is ignored")
    is_(whoami(fx, CLIENT, "203.0.113.9, 127.0.0.2"), CLIENT,
        "... even when it ends in a trusted proxy's address")
    status, _ = send(fx, CLIENT, "GET", "/whoami", ["198.51.100.4"], request_id="tp-spoof-1")
    rec = access_rec(fx, "tp-spoof-1")
    is_(rec.get("client"), CLIENT, "the access log's client is the real peer", rec)
    ok("peer" not in rec, "no peer field when the client is the peer", rec)


@case
def trusted_peer_rightmost_untrusted(fx):
    is_(whoami(fx, PROXY), PROXY, "a trusted proxy without the header is the client itself")
    is_(whoami(fx, PROXY, "203.0.113.9"), "203.0.113.9", "one hop: the address the proxy saw")
    is_(whoami(fx, PROXY, "6.6.6.6, 203.0.113.9"), "203.0.113.9",
        "the rightmost untrusted hop, not what the client prepended")
    is_(whoami(fx, PROXY, "6.6.6.6, 203.0.113.9, 10.1.2.3, 127.0.0.3"), "203.0.113.9",
        "a chain of trusted proxies is skipped")
    is_(whoami(fx, PROXY, "6.6.6.6", "203.0.113.9, 10.1.2.3"), "203.0.113.9",
        "two header lines read as one list")
    is_(whoami(fx, PROXY, " 203.0.113.9:51234 ,\t[fd00::7]:443 "), "203.0.113.9",
        "ports, brackets and spaces")
    is_(whoami(fx, PROXY, "2001:db8:1:2::5"), "2001:db8:1:2::5", "an IPv6 client")
    is_(whoami(fx, PROXY, "10.0.0.1, 127.0.0.3"), "10.0.0.1",
        "every hop trusted: the leftmost")
    for bad in ["203.0.113.9, unknown", "203.0.113.9, ", "client.example", "1.2.3.4.5",
                "fe80::1%eth0", "[203.0.113.9]", "9" * 300]:
        is_(whoami(fx, PROXY, bad), PROXY, "malformed %r: the peer, never the value" % bad[:40])
    is_(whoami(fx, PROXY, *(["203.0.113.%d" % i for i in range(17)])), PROXY,
        "17 header lines: the peer")
    status, _ = send(fx, PROXY, "GET", "/whoami", ["6.6.6.6, 203.0.113.9, 10.1.2.3"],
                     request_id="tp-fwd-1")
    rec = access_rec(fx, "tp-fwd-1")
    is_(rec.get("client"), "203.0.113.9", "the access log's client is the forwarded address", rec)
    is_(rec.get("peer"), PROXY, "... and its peer the proxy", rec)


@case
def login_throttle_keyed_by_client(fx):
    reset_throttle(fx)
    statuses = [bad_login(fx, CLIENT, ["198.51.100.%d" % i], i) for i in range(ADDRESS_FAILURES)]
    is_(statuses, [401] * ADDRESS_FAILURES, "wrong passwords from an untrusted peer are 401")
    is_(address_keys(fx), ["address:" + CLIENT],
        "rotating spoofed X-Forwarded-For values: counted under the real peer only")
    is_(bad_login(fx, CLIENT, ["198.51.100.200"], 99), 429,
        "... so the next one is throttled whatever the header says")
    reset_throttle(fx)

    a, b = "203.0.113.10", "203.0.113.11"
    statuses = [bad_login(fx, PROXY, [a + ", 10.9.9.9"], i) for i in range(ADDRESS_FAILURES)]
    is_(statuses, [401] * ADDRESS_FAILURES, "wrong passwords through the proxy are 401")
    is_(address_keys(fx), ["address:" + a], "counted under the forwarded client, not the proxy")
    is_(bad_login(fx, PROXY, [a], 50), 429, "that client is throttled")
    is_(bad_login(fx, PROXY, [b], 51), 401, "another client behind the same proxy is not")
    is_(bad_login(fx, PROXY, ["6.6.6.6, " + a], 52), 429,
        "a prefix the throttled client adds does not free it")
    reset_throttle(fx)
    is_(bad_login(fx, PROXY, ["2001:db8:1:2::5"], 60), 401, "an IPv6 client's failure")
    is_(address_keys(fx), ["address:2001:db8:1:2::/64"], "... is counted under its /64")
    reset_throttle(fx)


def open_conns(port, src, n):
    out = []
    for _ in range(n):
        s = socket.create_connection((HOST, port), timeout=5, source_address=(src, 0))
        out.append(s)
    return out


def answers(port, src):
    """True when a request on a fresh connection from src gets a response."""
    try:
        s = socket.create_connection((HOST, port), timeout=5, source_address=(src, 0))
    except OSError:
        return False
    try:
        s.sendall(b"GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            got = s.recv(4096)
            if not got:
                break
            data += got
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


@case
def per_ip_limit_exempts_trusted_proxies(fx):
    port = fx.server.port
    held = open_conns(port, CLIENT, PER_IP)
    try:
        # the connections are counted once the workers accept them
        wait_until(lambda: not answers(port, CLIENT), slow(3.0))
        ok(not answers(port, CLIENT),
           "an untrusted peer past GLASGOW_MAX_CONNS_PER_IP=%d is refused" % PER_IP)
    finally:
        for s in held:
            s.close()
    ok(wait_until(lambda: answers(port, CLIENT), slow(5.0)), "... and served again once they close")
    held = open_conns(port, PROXY, PER_IP * 3)
    try:
        # a request answered on every held connection: all were accepted and
        # stay open (keep-alive) when the next one arrives
        for s in held:
            s.sendall(b"GET /whoami HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.1\r\n\r\n")
        ok(all(s.recv(4096).startswith(b"HTTP/1.1 200") for s in held),
           "a trusted proxy's %d held connections are each served" % len(held))
        ok(answers(port, PROXY),
           "a trusted proxy with %d open connections is not limited per address" % (PER_IP * 3))
    finally:
        for s in held:
            s.close()


@case
def bad_cidr_stops_startup(fx):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASGOW_")}
    env.update({"GLASGOW_LISTEN": "%s:%d" % (HOST, free_port()),
                "GLASGOW_ADMIN_LISTEN": "%s:%d" % (HOST, free_port()),
                "GLASGOW_TRUSTED_PROXIES": "10.42.0.0/16, 10.43.0.1/16"})
    p = spawn([GLASGOW_BIN, "serve"], env=env, stdout=-1, stderr=-1)
    try:
        _, err = p.communicate(timeout=10)
    except Exception:
        p.kill()
        p.wait()
        raise
    err = err.decode("utf-8", "replace")
    ok(p.returncode not in (0, None), "a host-bits typo stops the start-up", p.returncode)
    ok("GLASGOW_TRUSTED_PROXIES" in err and "10.43.0.0/16" in err,
       "the message names the variable and suggests the network", err)


main(fixture=dbh.DbFixture("trusted_proxies", env={
    "GLASGOW_TRUSTED_PROXIES": TRUSTED,
    "GLASGOW_ACCESS_LOG": "true",
    "GLASGOW_LOGIN_ADDRESS_FAILURES": str(ADDRESS_FAILURES),
    "GLASGOW_MAX_CONNS_PER_IP": str(PER_IP),
}, extra_routes={"whoami.lua": WHOAMI}))
