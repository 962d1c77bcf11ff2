"""HTTPS on the public listener: a self-signed certificate made with the
openssl command line, protocol versions, plain HTTP on the TLS port, and
certificate rotation (kubelet-style Secret swap and atomic rename) with a
keep-alive connection open across it."""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, Client, KubeDir, Server, case, diag, is_, main,  # noqa: E402
                     mkdtemp, ok, slow, wait_until)

warnings.filterwarnings("ignore", category=DeprecationWarning)  # ssl.TLSVersion.TLSv1_1

# A re-hash period far beyond the test: only the directory watch can explain a rotation seen in 3 s.
WATCH_ONLY = {"GLASGOW_RELOAD_INTERVAL_MS": "600000"}
NOT_RELOADED = "TLS certificate not reloaded, keeping the current one"


def make_cert(directory, cn):
    """Writes a self-signed cert.pem and key.pem (SAN localhost and 127.0.0.1).

    Returns (cert path, key path, cert text, key text)."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=%s" % cn,
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("openssl req failed: %s" % r.stderr)
    with open(cert) as f:
        cert_text = f.read()
    with open(key) as f:
        key_text = f.read()
    return cert, key, cert_text, key_text


def der(pem_text):
    return ssl.PEM_cert_to_DER_cert(pem_text)


def client_ctx(cadata, min_v=None, max_v=None, seclevel0=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=cadata)
    if min_v:
        ctx.minimum_version = min_v
    if max_v:
        ctx.maximum_version = max_v
    if seclevel0:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def handshake(port, ctx, timeout=3.0):
    """Returns (version, peer DER) or raises."""
    with socket.create_connection((HOST, port), timeout=timeout) as raw_sock:
        with ctx.wrap_socket(raw_sock, server_hostname="localhost") as t:
            return t.version(), t.getpeercert(binary_form=True)


def local_tls11_works(cert, key):
    """Whether this machine's OpenSSL will negotiate TLS 1.1 at all (against itself)."""
    try:
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(cert, key)
        sctx.minimum_version = ssl.TLSVersion.TLSv1_1
        sctx.maximum_version = ssl.TLSVersion.TLSv1_1
        sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with open(cert) as f:
            cctx = client_ctx(f.read(), ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1, True)
    except (ssl.SSLError, ValueError) as e:
        diag("local OpenSSL cannot configure TLS 1.1: %s" % e)
        return False
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(1)
    lsock.settimeout(3)
    result = {}

    def serve():
        try:
            c, _ = lsock.accept()
            with sctx.wrap_socket(c, server_side=True) as t:
                result["server"] = t.version()
        except Exception as e:  # noqa: BLE001
            result["server_error"] = repr(e)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        v, _ = handshake(lsock.getsockname()[1], cctx)
        result["client"] = v
    except Exception as e:  # noqa: BLE001
        result["client_error"] = repr(e)
    th.join(3)
    lsock.close()
    diag("local TLS 1.1 self-test: %r" % result)
    return result.get("client") == "TLSv1.1"


@case(timeout=60)
def https_basics():
    tmp = mkdtemp("glasgow-tls-")
    cert, key, cert_text, _ = make_cert(os.path.join(tmp, "a"), "localhost")
    with Server(tls=(cert, key)) as s:
        ctx = ssl.create_default_context(cafile=cert)
        r = s.get("/hello", tls=ctx)
        is_((r.status, r.body), (200, b'{"message":"hello"}'), "GET /hello over TLS is 200")
        r = s.get("/nope", tls=ctx)
        is_(r.status, 404, "unknown path over TLS is 404")
        with Client(s.port, tls=ctx) as c:
            statuses = [c.get("/hello").status for _ in range(3)]
            is_(statuses, [200] * 3, "three requests on one keep-alive TLS connection")
            r = c.request("PUT", "/v1/greetings/tls", {"greeting": "hi"})
            is_(r.status, 200, "a body route over TLS")
            is_(c.sock.getpeercert(binary_form=True), der(cert_text),
                "the server presents the configured certificate")
            diag("negotiated %s, %s" % (c.sock.version(), c.sock.cipher()[0]))

        # protocol versions
        for name, v in (("TLSv1.2", ssl.TLSVersion.TLSv1_2), ("TLSv1.3", ssl.TLSVersion.TLSv1_3)):
            try:
                got, _ = handshake(s.port, client_ctx(cert_text, v, v))
            except Exception as e:  # noqa: BLE001
                got = repr(e)
            is_(got, name, "a %s-only client connects" % name)
        if local_tls11_works(cert, key):
            try:
                got, _ = handshake(s.port, client_ctx(cert_text, ssl.TLSVersion.TLSv1,
                                                      ssl.TLSVersion.TLSv1_1, True))
                outcome = "negotiated " + got
            except (ssl.SSLError, ConnectionError, socket.timeout, OSError) as e:
                outcome = "refused: %s" % e
            ok(outcome.startswith("refused"), "a client limited to TLS 1.1 or lower is refused",
               outcome)
            diag("TLS <= 1.1 client: %s" % outcome)
        else:
            diag("the local OpenSSL will not negotiate TLS 1.1 even with itself; the TLS 1.2-only "
                 "and 1.3-only checks above stand in for the refusal test")

        # plain HTTP on the TLS port
        res = s.raw(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n", timeout=3)
        ok(res.status is None and res.outcome in ("closed", "reset"),
           "plain HTTP on the TLS port gets no HTTP answer and is closed within 3 s",
           "outcome %s status %s raw %r" % (res.outcome, res.status, res.raw[:60]))
        r = s.get("/hello", tls=ctx)
        is_(r.status, 200, "TLS still works after the plain-HTTP attempt")
        ok(s.alive(), "server alive")


def rotation(s, ctx, new_der, old_der, swap, label):
    """Opens a keep-alive TLS connection, calls swap(), and checks old and new connections."""
    with Client(s.port, tls=ctx, timeout=5) as c:
        is_(c.get("/hello").status, 200, "%s: keep-alive TLS connection before the swap" % label)
        is_(c.sock.getpeercert(binary_form=True), old_der, "%s: it saw the old certificate" % label)
        t0 = time.monotonic()
        swap()

        def new_cert_seen():
            try:
                return handshake(s.port, ctx, timeout=2)[1] == new_der
            except (OSError, ssl.SSLError):
                return False
        seen = wait_until(new_cert_seen, slow(5.0), 0.1)
        dt = time.monotonic() - t0
        ok(seen, "%s: a new connection presents the new certificate within %.0f s (%.2f s)" %
           (label, slow(5.0), dt))
        sock_before = c.sock
        try:
            st = c.get("/hello").status
        except Exception as e:  # noqa: BLE001
            st = repr(e)
        is_(st, 200, "%s: the connection opened before the swap still works" % label)
        ok(c.sock is sock_before, "%s: on the same TLS session (no reconnect)" % label)
        r = s.get("/hello", tls=ctx)
        is_(r.status, 200, "%s: new connections serve requests" % label)


@case(timeout=60)
def certificate_rotation_kubelet_style():
    tmp = mkdtemp("glasgow-tls-")
    _, _, cert1, key1 = make_cert(os.path.join(tmp, "gen1"), "localhost")
    _, _, cert2, key2 = make_cert(os.path.join(tmp, "gen2"), "glasgow-rotated")
    ok(der(cert1) != der(cert2), "the two certificates differ")
    secret = KubeDir(os.path.join(tmp, "secret"), {"tls.crt": cert1, "tls.key": key1})
    files = (os.path.join(secret.path, "tls.crt"), os.path.join(secret.path, "tls.key"))
    with Server(tls=files, env=WATCH_ONLY) as s:
        ctx = client_ctx(cert1 + cert2)
        rotation(s, ctx, der(cert2), der(cert1),
                 lambda: secret.update({"tls.crt": cert2, "tls.key": key2}), "kubelet swap")
        ok(s.alive(), "server alive after the rotation")


@case(timeout=60)
def certificate_rotation_atomic_rename():
    tmp = mkdtemp("glasgow-tls-")
    cert_path, key_path, cert1, key1 = make_cert(os.path.join(tmp, "live"), "localhost")
    _, _, cert2, key2 = make_cert(os.path.join(tmp, "next"), "glasgow-rotated")

    def swap():
        for path, text in ((key_path, key2), (cert_path, cert2)):
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.rename(path + ".tmp", path)

    with Server(tls=(cert_path, key_path), env=WATCH_ONLY) as s:
        ctx = client_ctx(cert1 + cert2)
        rotation(s, ctx, der(cert2), der(cert1), swap, "atomic rename")

        # a broken pair (key of another cert) is not adopted: the current cert keeps serving
        _, _, cert3, key3 = make_cert(os.path.join(tmp, "third"), "glasgow-third")
        with open(cert_path + ".tmp", "w") as f:
            f.write(cert3)
        warned = s.stdout().count(NOT_RELOADED)
        os.rename(cert_path + ".tmp", cert_path)  # key.pem still holds key2
        # wait for the reloader to have looked at the pair (it warns once)
        ok(wait_until(lambda: s.stdout().count(NOT_RELOADED) > warned, slow(5.0), 0.05),
           "the reloader checks the mismatched pair and warns that it keeps the current one",
           s.stdout()[-800:])
        try:
            got = handshake(s.port, client_ctx(cert1 + cert2 + cert3))[1]
        except Exception as e:  # noqa: BLE001
            got = repr(e)
        is_(got, der(cert2), "a certificate whose key does not match is not adopted")
        shutil.copyfile(os.path.join(tmp, "third", "key.pem"), key_path + ".tmp")
        os.rename(key_path + ".tmp", key_path)
        seen = wait_until(lambda: handshake(s.port, client_ctx(cert1 + cert2 + cert3))[1] ==
                          der(cert3), slow(5.0), 0.1)
        ok(seen, "once the matching key arrives, the new certificate is served within %.0f s"
           % slow(5.0))
        ok(s.alive(), "server alive")


if __name__ == "__main__":
    main()
