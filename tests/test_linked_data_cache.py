"""The bounded per-release cache of documents and representations.

Dynamic server only: the in-process caches are the app's; nginx serves files.
"""
from server.lru import LRU


def test_lru_evicts_the_least_recently_used_beyond_its_cost():
    cache = LRU(10, cost=len)
    cache.get("a", lambda: "xxxx")
    cache.get("b", lambda: "yyyy")
    assert cache.get("a", lambda: "recomputed") == "xxxx"  # a is now the most recent
    cache.get("c", lambda: "zzzz")                          # 12 > 10: b goes
    assert cache.get("b", lambda: "again") == "again"
    assert cache.get("a", lambda: "recomputed") in ("xxxx", "recomputed")
    assert sum(len(cache.get(k, lambda: "")) for k in ()) == 0


def test_lru_never_stores_none_or_what_is_too_big():
    cache = LRU(5, cost=len)
    assert cache.get("none", lambda: None) is None
    assert cache.get("none", lambda: "v") == "v"
    assert cache.get("big", lambda: "0123456789") == "0123456789"
    assert cache.get("big", lambda: "fresh") == "fresh"
