"""A small thread-safe LRU cache bounded by total cost (bytes, or 1 per entry).

The per-release memo (`Publication.memo`) keeps everything forever, which is right for what is
the same for the whole release (the context, the label table) but not for one entry per
document × format × language: on a large dataset that would grow without bound. Those go
here, one cache per release (itself memoised on the publication, so dropped with it).

With `second_request=True` an entry is kept only when its key is asked for the second time
(nginx's `proxy_cache_min_uses 2`, the "doorkeeper" of TinyLFU): a crawler that fetches every
page once neither grows the cache nor evicts the pages people come back to. The keys seen once
are remembered by hash, at most SEEN_ONCE of them (then forgotten all at once).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


#: keys asked for once that an LRU with second_request remembers (by hash: ~70 bytes each)
SEEN_ONCE = 20_000


class LRU:
    def __init__(self, max_cost: int, cost: Callable[[Any], int] = lambda value: 1,
                 second_request: bool = False):
        self.max_cost, self.cost = max_cost, cost
        self._items: OrderedDict = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self._seen_once: set[int] | None = set() if second_request else None

    def get(self, key, compute: Callable[[], Any]):
        """The cached value, else `compute()` stored (None is returned but never stored)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()  # outside the lock: two threads may compute the same value once each
        if value is None:
            return None
        return self.put(key, value)

    def put(self, key, value):
        cost = self.cost(value)
        with self._lock:
            if key in self._items:
                return self._items[key][0]
            if self._seen_once is not None and not self._seen_before(key):
                return value
            if cost <= self.max_cost:
                self._items[key] = (value, cost)
                self._total += cost
                while self._total > self.max_cost:
                    _, (_, dropped) = self._items.popitem(last=False)
                    self._total -= dropped
        return value

    def _seen_before(self, key) -> bool:
        """Whether `key` was offered once before (forgetting it then); else remember it."""
        seen, digest = self._seen_once, hash(key)
        if digest in seen:
            seen.discard(digest)
            return True
        if len(seen) >= SEEN_ONCE:
            seen.clear()
        seen.add(digest)
        return False

    def __len__(self) -> int:
        return len(self._items)
