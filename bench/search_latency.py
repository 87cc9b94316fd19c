"""Latency of the text search: the index in-process, and /search and the SPARQL service over HTTP.

    python -m bench.search_latency --release /tmp/gen-1m/releases/current
    python -m bench.search_latency --release /tmp/gen-1m/releases/current --url http://127.0.0.1:8000

Queries (seeded): for each of ar, zh, en, fr, ru, es, literals of the index picked at random,
one or two of their words (Chinese: a substring of 1–4 characters), each with no language
filter, its own language, `en` or `zh`. Sequential, one client: latency, not throughput (the
SPARQL mix of bench/run.py has `text-search` under concurrency). Run the server with
LODPUB_SPARQL_CACHE_BYTES=0 to measure the service rather than the result cache.
"""
from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from pathlib import Path

from server import search_index

BASE = "https://w3id.org/un-meetings/"
LANGUAGES = ("ar", "zh", "en", "fr", "ru", "es")


def queries(index_file: Path, per_language: int, seed: int = 7) -> list[tuple[str, str, str | None]]:
    db = sqlite3.connect(f"file:{index_file}?mode=ro", uri=True)
    rnd = random.Random(seed)
    out = []
    for lang in LANGUAGES:
        texts = [t for (t,) in db.execute("SELECT text FROM entry WHERE lang = ? ORDER BY id", (lang,))]
        for _ in range(per_language):
            text = rnd.choice(texts)
            if lang == "zh":
                n = rnd.choice((1, 2, 3, 4))
                i = rnd.randrange(max(1, len(text) - n))
                q = text[i:i + n]
            else:
                words = [w for w in text.split() if len(w) >= 4] or text.split()
                q = " ".join(rnd.sample(words, min(len(words), rnd.choice((1, 1, 2)))))
            out.append((lang, q, rnd.choice((None, None, lang, "en", "zh"))))
    return out


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def report(name: str, latencies: list[float], extra: str = "") -> None:
    print(f"{name}: n={len(latencies)} p50 {percentile(latencies, .5):.2f} ms  p99 {percentile(latencies, .99):.2f} ms  "
          f"max {max(latencies):.2f} ms {extra}")


def in_process(index_file: Path, qs: list) -> None:
    index = search_index.SearchIndex(index_file)
    latencies, slow = [], []
    for _, q, only in qs:
        try:
            plan = search_index.plan(q, 200)
        except search_index.QueryError:
            continue
        started = time.perf_counter()
        index.search(plan, 50, only)
        latencies.append((time.perf_counter() - started) * 1000)
        slow.append((latencies[-1], plan, only))
    report("index in-process, limit 50", latencies)
    for ms, plan, only in sorted(slow, key=lambda s: s[0], reverse=True)[:5]:
        again = []
        for _ in range(5):
            started = time.perf_counter()
            index.search(plan, 50, only)
            again.append((time.perf_counter() - started) * 1000)
        print(f"  slowest {ms:.1f} ms, re-timed best of 5 {min(again):.2f} ms: {plan.folded!r} in={only}")


def over_http(url: str, qs: list) -> None:
    import requests
    session = requests.Session()
    for _ in range(3):  # the worker's per-release tables, the evaluators
        session.get(url + "/search", params={"q": "commission", "format": "json"})

    def sparql(q, only, limit):
        body = (f'SELECT ?t ?s WHERE {{ SERVICE <{BASE}search> {{ ?t <{BASE}ontology#matches> "{q}" ; '
                f'<{BASE}ontology#score> ?s ' + (f'; <{BASE}ontology#limit> {limit} ' if limit else "")
                + (f'; <{BASE}ontology#lang> "{only}" ' if only else "") + "} }")
        return session.post(url + "/sparql", data=body.encode(), headers={
            "Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"})
    modes = {
        "GET /search JSON, limit 50": lambda q, only: session.get(url + "/search", params={"q": q, "in": only or "", "format": "json"}),
        "GET /search HTML": lambda q, only: session.get(url + "/search", params={"q": q, "in": only or "", "lang": "en"}),
        "SPARQL service, unm:limit 50": lambda q, only: sparql(q, only, 50),
        "SPARQL service, default cap": lambda q, only: sparql(q, only, None),
    }
    for name, send in modes.items():
        latencies, statuses = [], {}
        for _, q, only in qs:
            started = time.perf_counter()
            status = send(q, only).status_code
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
        report(name, latencies, str(statuses))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--release", type=Path, required=True, help="a release folder (with search.sqlite)")
    parser.add_argument("--url", help="a server on that release, e.g. http://127.0.0.1:8000")
    parser.add_argument("--per-language", type=int, default=50)
    args = parser.parse_args(argv)
    index_file = args.release / search_index.FILE_NAME
    qs = queries(index_file, args.per_language)
    in_process(index_file, qs)
    if args.url:
        over_http(args.url.rstrip("/"), qs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
