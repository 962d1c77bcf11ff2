"""Latency probe for bench/files.sh: GET /hello at a steady pace on one keep-alive
connection until SIGTERM/SIGINT (or a time limit), then print one line:

    samples p50_ms p99_ms max_ms errors

usage: files_probe.py HOST PORT INTERVAL_MS LIMIT_S

A paced probe rather than wrk: it measures what one ordinary client waits for while
the server moves files, without itself loading the 2 shared CPUs.
"""

import http.client
import signal
import sys
import time


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    interval, limit = int(sys.argv[3]) / 1000.0, float(sys.argv[4])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    conn = http.client.HTTPConnection(host, port, timeout=10)
    lat, errors = [], 0
    end = time.monotonic() + limit
    nxt = time.monotonic()
    while not stop and time.monotonic() < end:
        t0 = time.monotonic()
        try:
            conn.request("GET", "/hello")
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or b"hello" not in body:
                errors += 1
            else:
                lat.append(time.monotonic() - t0)
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
        nxt += interval
        pause = nxt - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            nxt = time.monotonic()
    lat.sort()
    if not lat:
        print("0 0 0 0 %d" % errors)
        return

    def pct(p):
        return lat[min(len(lat) - 1, max(0, int(len(lat) * p + 0.999999) - 1))] * 1000

    print("%d %.3f %.3f %.3f %d" % (len(lat), pct(0.50), pct(0.99), lat[-1] * 1000, errors))


if __name__ == "__main__":
    main()
