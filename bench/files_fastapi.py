"""FastAPI + boto3 peer for bench/files.sh: the same two routes as bench/files_glasgow.lua.

PUT /bench/files/{name}  streams the request body into the store under bench/{name}
GET /bench/files/{name}  streams bench/{name} from the store to the client

boto3 is synchronous, so each transfer runs its boto3 side in a thread:

- upload: the async handler reads request.stream() and hands each chunk to a bounded
  queue (4 chunks); upload_fileobj reads from the queue as a file object in a
  thread. boto3 goes multipart above 64 MiB in 8 MiB parts, as glasgow does, with
  at most 2 parts in flight (boto3 buffers each part it sends in memory).
- download: get_object's StreamingBody is iterated in 64 KiB chunks by Starlette's
  thread pool (StreamingResponse with a sync iterator), with its Content-Length.

The store comes from the runtime's settings: S3_ENDPOINT, S3_REGION,
S3_ACCESS_KEY_ID_FILE, S3_SECRET_ACCESS_KEY_FILE, S3_BUCKET (bash .ci/rgw env).
No auth: only the data path is measured.
"""

import asyncio
import os
import queue
import threading

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi_hello import _nodelay_on_inherited_listener

MIB = 1024 * 1024
BUCKET = os.environ["S3_BUCKET"]


def _read(name):
    with open(os.environ[name + "_FILE"], encoding="ascii") as f:
        return f.read().strip()


client = boto3.client(
    "s3",
    endpoint_url=os.environ["S3_ENDPOINT"],
    region_name=os.environ.get("S3_REGION", "us-east-1"),
    aws_access_key_id=_read("S3_ACCESS_KEY_ID"),
    aws_secret_access_key=_read("S3_SECRET_ACCESS_KEY"),
    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                  retries={"max_attempts": 4, "mode": "standard"}),
)
TRANSFER = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=8 * MIB,
                          max_concurrency=2)

app = FastAPI()
_EOF = object()


class QueueReader:
    """A read-only file object over a queue of byte chunks (_EOF ends it)."""

    def __init__(self, q):
        self.q = q
        self.buf = bytearray()
        self.done = False

    def read(self, n=-1):
        while not self.done and (n < 0 or len(self.buf) < n):
            chunk = self.q.get()
            if chunk is _EOF:
                self.done = True
            else:
                self.buf += chunk
        if n < 0 or n >= len(self.buf):
            out, self.buf = bytes(self.buf), bytearray()
        else:
            out = bytes(self.buf[:n])
            del self.buf[:n]
        return out


@app.put("/bench/files/{name}")
async def put_file(name: str, request: Request):
    loop = asyncio.get_running_loop()
    q = queue.Queue(maxsize=4)
    reader = QueueReader(q)
    finished = threading.Event()

    def upload():
        try:
            client.upload_fileobj(reader, BUCKET, "bench/" + name, Config=TRANSFER)
        finally:
            finished.set()

    def feed(item):
        # Gives up when the upload has ended (failed) and reads no more.
        while not finished.is_set():
            try:
                q.put(item, timeout=0.5)
                return True
            except queue.Full:
                pass
        return False

    uploading = loop.run_in_executor(None, upload)
    size = 0
    try:
        async for chunk in request.stream():
            if chunk:
                size += len(chunk)
                if not await loop.run_in_executor(None, feed, chunk):
                    break
    finally:
        await loop.run_in_executor(None, feed, _EOF)
    await uploading  # raises what boto3 raised: a 500
    return {"size": size}


@app.get("/bench/files/{name}")
def get_file(name: str):
    try:
        obj = client.get_object(Bucket=BUCKET, Key="bench/" + name)
    except client.exceptions.NoSuchKey:
        return JSONResponse({"error": "not_found"}, status_code=404)
    body = obj["Body"]
    return StreamingResponse(body.iter_chunks(64 * 1024), media_type="application/octet-stream",
                             headers={"Content-Length": str(obj["ContentLength"])})


# The uvicorn --workers TCP_NODELAY fix of the hello peer (uvicorn #3149).
app.add_event_handler("startup", _nodelay_on_inherited_listener)
