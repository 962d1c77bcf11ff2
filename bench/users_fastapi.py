"""FastAPI peer for bench/users.sh: the same two statements as glasgow's bench routes.

GET  /bench/users/{id}  SELECT id, email, name, role, created_at, updated_at FROM users WHERE id = $1
POST /bench/users       INSERT ... RETURNING the same columns (dummy password_hash, no auth)

Async all the way: Debian's psycopg 3 (python3-psycopg) with an AsyncConnectionPool
(python3-psycopg-pool) of BENCH_POOL_SIZE connections per uvicorn worker, opened at
start-up. Connections are in autocommit mode (one statement, no BEGIN/COMMIT round
trips), and psycopg prepares a statement on a connection after it has run it
prepare_threshold (5) times, like the other contenders' prepared statements.
DATABASE_URL gives the server.
"""

import os
import socket
import uuid

import psycopg
from fastapi import FastAPI, HTTPException
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

COLUMNS = "id, email, name, role, created_at, updated_at"
SELECT = f"SELECT {COLUMNS} FROM users WHERE id = %s"
INSERT = (
    "INSERT INTO users (email, name, password_hash) "
    f"VALUES (%s, %s, 'bench-dummy-hash') RETURNING {COLUMNS}"
)
POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "8"))

app = FastAPI()
pool: AsyncConnectionPool | None = None


class NewUser(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)


@app.get("/bench/users/{user_id}")
async def get_user(user_id: uuid.UUID):
    async with pool.connection() as conn:
        cur = await conn.execute(SELECT, (user_id,))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail="no such user")
    return row


@app.post("/bench/users", status_code=201)
async def create_user(body: NewUser):
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(INSERT, (body.email, body.name))
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise HTTPException(status_code=409, detail="a user with this email already exists")
    return row


@app.on_event("startup")
async def _open_pool():
    global pool
    pool = AsyncConnectionPool(
        os.environ["DATABASE_URL"],
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        kwargs={"autocommit": True, "row_factory": dict_row},
        open=False,
    )
    await pool.open(wait=True, timeout=10)


@app.on_event("shutdown")
async def _close_pool():
    if pool is not None:
        await pool.close()


@app.on_event("startup")
def _nodelay_on_inherited_listener():
    """Set TCP_NODELAY on the listener this worker inherited (as bench/fastapi_hello.py does).

    With --workers N, uvicorn binds the listening socket with proto 0, so asyncio never
    turns TCP_NODELAY on for the accepted connections, and every keep-alive response
    waits ~40 ms for a delayed ACK (uvicorn issue #3149). Linux copies TCP_NODELAY from
    a listening socket to the connections it accepts.
    """
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with sock:
            if (
                sock.family in (socket.AF_INET, socket.AF_INET6)
                and sock.type == socket.SOCK_STREAM
                and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            ):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
