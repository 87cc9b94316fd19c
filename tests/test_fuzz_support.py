"""(No tests here.) Helpers for the fuzz, security and release-fault tests: a live server that keeps every error
line of its log, a raw HTTP/1.1 client that sends any bytes as the request target, and a
counter of every request sent and every status seen.
"""
from __future__ import annotations

import collections
import http.client
import os
import socket
import subprocess
import sys
import threading

import requests

from server.config import Settings

from .conftest import PROJECT_ROOT, LiveServer

#: Lines of a server's output that mean an uncaught exception or a crash.
ERROR_MARKERS = ("Traceback", "unexpected error", "[CRITICAL]", "WORKER TIMEOUT", "exit code -11",
                 "failed to start", "cannot open")


class WatchedServer(LiveServer):
    """A LiveServer with extra environment, that keeps every line of its output matching an
    error marker (the plain LiveServer keeps only the last 2000 lines: the access log of
    thousands of requests would push a traceback out)."""

    def __init__(self, settings: Settings, workers: int = 2, env: dict | None = None):
        self.errors: list[str] = []
        self.lines = 0
        self._extra_env = env or {}
        self._saved = {k: os.environ.get(k) for k in self._extra_env}
        os.environ.update(self._extra_env)  # LiveServer passes os.environ to the server
        try:
            super().__init__(settings, workers)
        finally:
            for k, v in self._saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _drain(self) -> None:
        context = 0
        for line in self.process.stdout:
            self.lines += 1
            self.output.append(line)
            if any(marker in line for marker in ERROR_MARKERS):
                self.errors.append(line.rstrip())
                context = 30
            elif context:
                self.errors.append(line.rstrip())
                context -= 1


class Counter:
    """Every request sent by the fuzz tests, and the statuses of the answers (thread-safe)."""

    def __init__(self):
        self.statuses: collections.Counter = collections.Counter()
        self.by_test: collections.Counter = collections.Counter()
        self.server_errors: list[str] = []
        self._lock = threading.Lock()

    def add(self, test: str, status: int | str, what: str = "") -> None:
        with self._lock:
            self.statuses[status] += 1
            self.by_test[test] += 1
            if isinstance(status, int) and status >= 500:
                self.server_errors.append(f"{test}: {status} {what[:300]}")

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def histogram(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items(), key=lambda kv: str(kv[0])))


class RawClient:
    """HTTP/1.1 over one keep-alive socket, sending the request target exactly as given (bytes:
    NUL, invalid UTF-8, dot segments, backslashes all go out unchanged — requests and urllib3
    would normalise or refuse them)."""

    def __init__(self, port: int, timeout: float = 30):
        self.port, self.timeout = port, timeout
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, method: bytes | str, target: bytes | str, headers: dict | None = None,
                body: bytes = b"") -> tuple[int, dict, bytes]:
        """(status, headers (lower-case names), body). Retries once on a connection the server
        closed between two requests (keep-alive timeout); a server that closes without answering
        a fresh connection is an error (raised)."""
        method = method.encode("latin-1") if isinstance(method, str) else method
        target = target.encode("utf-8", "surrogateescape") if isinstance(target, str) else target
        lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1:" + str(self.port).encode()]
        for name, value in (headers or {}).items():
            value = value.encode("latin-1") if isinstance(value, str) else value
            lines.append(name.encode("latin-1") + b": " + value)
        if body or method in (b"POST", b"PUT", b"PATCH"):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        data = b"\r\n".join(lines) + b"\r\n\r\n" + body
        for attempt in (0, 1):
            fresh = self.sock is None
            sock = self._connect()
            try:
                sock.sendall(data)
                response = http.client.HTTPResponse(sock, method=method.decode("latin-1"))
                response.begin()
                payload = response.read()
                result = (response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
                if response.will_close:
                    self.close()
                return result
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")


def counting_session(counter: Counter, test: str) -> requests.Session:
    session = requests.Session()

    def hook(response, *args, **kwargs):
        counter.add(test, response.status_code, f"{response.request.method} {response.request.url[:200]} "
                                               f"{response.text[:300] if response.status_code >= 500 else ''}")
    session.hooks["response"].append(hook)
    return session


def build(releases, root=None, timeout: float = 300) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "server.cli", "build", "--releases", str(releases)]
    if root:
        args += ["--root", str(root)]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT)
