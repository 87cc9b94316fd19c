"""Limits that keep one client's query from hurting anyone else (the time limit is the
evaluators' own: see server/evaluators.py; the row cap: server/sparql_results.py).

Per-client concurrency: a client (its IP address) may have at most
`max_concurrent_queries_per_client` queries in evaluation at once, counted across all the
gunicorn workers of one server with lock files (flock: released by the kernel even if a worker
dies). One more answers 429 with Retry-After.

Result cache: answers are kept per release, per worker, in an LRU bounded by bytes
(LODPUB_SPARQL_CACHE_BYTES, default 32 MiB; 0 switches it off).
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

from .config import from_environment
from .orphans import fresh_folder

#: result cache size per worker process, bytes; 0 = no cache
CACHE_BYTES = from_environment().sparql_cache_bytes


# --------------------------------------------------------------------------------------------
# Per-client concurrency, across worker processes
# --------------------------------------------------------------------------------------------

class ClientLimiter:
    """At most `limit` slots per client key, each slot a lock file held with flock.

    The lock files are the truth across processes; within one, the slots its own threads hold
    are skipped without a system call, and each process starts its search at its own place
    (from its pid), so that under a high limit a query finds a free slot at the first try
    instead of probing every slot another query holds (measured: with a limit of 1,000 and 8
    queries at once, probing from slot 0 cost an uncached ASK 0.09 ms of its ~0.6 ms)."""

    def __init__(self, folder: Path, limit: int):
        self.folder, self.limit = folder, limit
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._prefix = str(folder) + os.sep  # joined per request: a str, not a Path
        self._held: dict[str, set[int]] = {}  # client key → slots this process's threads hold
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, client: str):
        if self.limit <= 0:
            yield
            return
        key = hashlib.sha256(client.encode()).hexdigest()[:20]
        start = (os.getpid() * 2654435761) % self.limit  # Knuth's multiplicative hash: neighbouring pids far apart
        for i in range(self.limit):
            n = (start + i) % self.limit
            fd = self._take(key, n)
            if fd is None:
                continue
            try:
                yield
            finally:
                self._give_back(key, n, fd)
            return
        raise TooManyQueries()

    def _take(self, key: str, n: int) -> int | None:
        with self._lock:
            held = self._held.setdefault(key, set())
            if n in held:
                return None
            held.add(n)
        fd = os.open(f"{self._prefix}{key}.{n}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process holds it
            os.close(fd)
            self._forget(key, n)
            return None
        return fd

    def _give_back(self, key: str, n: int, fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        self._forget(key, n)

    def _forget(self, key: str, n: int) -> None:
        with self._lock:
            held = self._held[key]
            held.discard(n)
            if not held:
                del self._held[key]


class TooManyQueries(Exception):
    pass


_limiters: dict = {}

#: the lock files' folder of this server: made by the first process that needs it (`lodpub
#: serve`'s master, before it forks its workers, which inherit it)
_clients_folder: list[Path] = []
_clients_folder_lock = threading.Lock()


def client_limiter(releases: Path, address: str, limit: int) -> ClientLimiter:
    """One limiter per server: the workers of one server (same releases folder, same listening
    address) share its lock files; another server on another port counts apart."""
    key = (releases, address, limit)
    if key not in _limiters:
        name = hashlib.sha256(f"{releases.resolve()}\x1f{address}\x1f{limit}".encode()).hexdigest()[:12]
        _limiters[key] = ClientLimiter(clients_folder() / name, limit)
    return _limiters[key]


def clients_folder() -> Path:
    """The folder of this server's lock files, named after the process that made it, removed
    when that process exits (and by the next server if it was killed): servers and tests
    started one after another leave nothing behind."""
    with _clients_folder_lock:
        if not _clients_folder:
            _clients_folder.append(_new_clients_folder())
    return _clients_folder[0]


def _new_clients_folder() -> Path:
    folder = fresh_folder(Path(tempfile.gettempdir()), f"lodpub-sparql-clients-{os.getuid()}-")
    atexit.register(_remove_folder, folder, os.getpid())
    return folder


def _remove_folder(folder: Path, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked worker, which runs the exit handlers it inherited
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Result cache
# --------------------------------------------------------------------------------------------

class ResultCache:
    """An LRU of answers bounded by their total size in bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[bytes, dict]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str):
        if self.max_bytes <= 0:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, body: bytes, meta: dict) -> None:
        size = len(body)
        if self.max_bytes <= 0 or size > self.max_bytes // 8:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (body, meta)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (old, _) = self._items.popitem(last=False)
                self._bytes -= len(old)
