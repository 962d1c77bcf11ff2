"""Minimal FastAPI peer for bench/hello.sh: GET /hello -> {"message":"hello"}."""

import os
import socket

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello():
    return {"message": "hello"}


@app.on_event("startup")
def _nodelay_on_inherited_listener():
    """Undo a uvicorn bug so the peer is not measured at an artificial 40 ms/request.

    With --workers N, uvicorn binds the listening socket with proto 0 and hands it
    to the workers; asyncio only turns TCP_NODELAY on for accepted sockets whose
    proto is IPPROTO_TCP, so every keep-alive response after the first waits for
    the client's delayed ACK (~40 ms on Linux; uvicorn issue #3149). Linux copies
    TCP_NODELAY from a listening socket to the connections it accepts, so set it
    on the listener this worker inherited. A single-worker uvicorn is unaffected.
    """
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue  # not a socket, or the fd is already gone
        with sock:
            if (
                sock.family in (socket.AF_INET, socket.AF_INET6)
                and sock.type == socket.SOCK_STREAM
                and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            ):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
