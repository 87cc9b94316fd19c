"""A closed-loop HTTP/1.1 load driver (asyncio, keep-alive) that checks every answer.

Each of `concurrency` connections sends a request, waits for the whole answer, CHECKS it, and
sends the next one, for a fixed duration. An answer counts as a success only if its check
passes: a wrong answer (bad status, wrong body) is an error, like a timeout or a reset
connection. Checking is done by the request's own `check(status, headers, body)`; bodies
byte-identical to one that already passed the full check are accepted by their SHA-256 (the
cost of a full re-parse is only paid for bodies not seen before).

Only plain HTTP on 127.0.0.1 is supported, on purpose.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

Check = Callable[[int, dict, bytes], "str | None"]  # None = right, else why it is wrong


@dataclass
class Request:
    name: str
    url: str                       # http://127.0.0.1:PORT/path?query
    check: Check
    headers: dict = field(default_factory=dict)
    #: SHA-256 of bodies that passed the full check (bounded)
    verified: set = field(default_factory=set)

    def judge(self, status: int, headers: dict, body: bytes) -> str | None:
        digest = hashlib.sha256(body).digest() if status == 200 else None
        if digest is not None and digest in self.verified:
            return None
        problem = self.check(status, headers, body)
        if problem is None and digest is not None and len(self.verified) < 64:
            self.verified.add(digest)
        return problem


@dataclass
class Result:
    name: str
    seconds: float
    ok: int = 0
    wrong: int = 0          # answered, but the answer is wrong (status or body)
    failed: int = 0         # timeout, connection error, malformed HTTP
    latencies: list = field(default_factory=list)  # seconds, successful requests only
    first_problem: str | None = None

    @property
    def errors(self) -> int:
        return self.wrong + self.failed

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def as_dict(self) -> dict:
        p50, p99 = self.percentile(50), self.percentile(99)
        return {"name": self.name, "seconds": round(self.seconds, 3), "ok": self.ok, "wrong": self.wrong,
                "failed": self.failed, "rps": round(self.rps, 1),
                "p50_ms": None if p50 is None else round(p50 * 1000, 2),
                "p99_ms": None if p99 is None else round(p99 * 1000, 2),
                "first_problem": self.first_problem}


def merged(slices: list[Result]) -> Result:
    """One cell's figures from the slices it was measured in: answers, seconds and latencies summed."""
    out = Result(slices[0].name, sum(piece.seconds for piece in slices))
    for piece in slices:
        out.ok, out.wrong, out.failed = out.ok + piece.ok, out.wrong + piece.wrong, out.failed + piece.failed
        out.latencies.extend(piece.latencies)
        out.first_problem = out.first_problem or piece.first_problem
    return out


class _Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def ensure(self):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, target: str, headers: dict) -> tuple[int, dict, bytes]:
        reused = self.writer is not None
        try:
            return await self._exchange(target, headers)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as error:
            if not reused or getattr(error, "partial", b""):
                raise
            # the server closed the kept-alive connection while it was idle (gunicorn after its
            # keep-alive of 5 s, e.g. between a slow warm-up and the measured run): as HTTP
            # clients do for an idempotent request (RFC 9112 §9.3.1), once more on a new one
            self.close()
            return await self._exchange(target, headers)

    async def _exchange(self, target: str, headers: dict) -> tuple[int, dict, bytes]:
        await self.ensure()
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        response_headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                response_headers[k.strip().lower()] = v.strip()
        if "content-length" in response_headers:
            body = await self.reader.readexactly(int(response_headers["content-length"]))
        elif "chunked" in response_headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size_line = await self.reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await self.reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        else:  # body until close
            body = await self.reader.read()
            self.close()
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return status, response_headers, body


async def _worker(requests: list[Request], result: Result, deadline: float, timeout: float, turns,
                  connection: _Connection):
    while time.perf_counter() < deadline:
        request = requests[next(turns) % len(requests)]  # shared round-robin over the list
        parts = urlsplit(request.url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        started = time.perf_counter()
        try:
            status, headers, body = await asyncio.wait_for(connection.request(target, request.headers), timeout)
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, IndexError) as error:
            connection.close()
            result.failed += 1
            result.first_problem = result.first_problem or f"{request.name}: {type(error).__name__} {error}"
            await asyncio.sleep(0.01)
            continue
        elapsed = time.perf_counter() - started
        problem = request.judge(status, headers, body)
        if problem is None:
            result.ok += 1
            result.latencies.append(elapsed)
        else:
            result.wrong += 1
            result.first_problem = result.first_problem or f"{request.name}: {problem}"


#: seconds between opening one connection and the next: a burst of connects lets one gunicorn
#: worker (of several sharing the listening socket) accept them all on a 2-core machine where
#: the driver competes for the cores, and that cell then measures one worker. Opened one by one
#: while the earlier ones are busy, they spread as many clients' connections would.
STAGGER = 0.002


async def _staggered(requests, result, deadline, timeout, turns, connections):
    tasks = []
    for connection in connections:
        tasks.append(asyncio.ensure_future(_worker(requests, result, deadline, timeout, turns, connection)))
        if connection.writer is None:
            await asyncio.sleep(STAGGER)
    await asyncio.gather(*tasks)


async def _run(requests, concurrency, duration, timeout, warmup, name):
    """The warm-up opens the connections (staggered) and the measured run keeps them."""
    turns = itertools.count()
    url = urlsplit(requests[0].url)
    connections = [_Connection(url.hostname, url.port or 80) for _ in range(concurrency)]
    try:
        if warmup > 0:
            await _staggered(requests, Result("warmup", warmup), time.perf_counter() + warmup, timeout, turns,
                             connections)
        result = Result(name or (requests[0].name if len(requests) == 1 else "+".join(r.name for r in requests)),
                        duration)
        started = time.perf_counter()
        await _staggered(requests, result, started + duration, timeout, turns, connections)
        result.seconds = time.perf_counter() - started
        return result
    finally:
        for connection in connections:
            connection.close()


def run(requests: list[Request], concurrency: int = 8, duration: float = 5.0, timeout: float = 10.0,
        warmup: float = 0.5, name: str | None = None) -> Result:
    """Drive `requests` (round-robin) at fixed concurrency for `duration` seconds; checked results."""
    return asyncio.run(_run(requests, concurrency, duration, timeout, warmup, name))


def fetch(request: Request, timeout: float = 60.0) -> tuple[int, dict, bytes]:
    """One request, unchecked (for calibration and for capturing bytes)."""
    async def one():
        url = urlsplit(request.url)
        connection = _Connection(url.hostname, url.port or 80)
        try:
            return await asyncio.wait_for(
                connection.request(url.path + ("?" + url.query if url.query else ""), request.headers), timeout)
        finally:
            connection.close()
    return asyncio.run(one())
