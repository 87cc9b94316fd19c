"""Throughput and latency of /sparql on the example queries, against a running server.

    python bench/sparql_bench.py --url http://127.0.0.1:8000 --concurrency 8 --seconds 10

Each of `--concurrency` threads keeps one HTTP/1.1 connection open (keep-alive) and sends the
example queries (queries/*.rq) round-robin, by GET or POST. Before the run, the first answer
to every query is checked against rdflib's own evaluation of the same query over the release's
TriG dump (the same comparison as the tests); during the run every answer must be a 200 whose
body is byte-identical to that checked answer, or it is counted as an error, not as a query.

Not part of pytest. Prints queries/s and p50/p90/p99 latency, overall and per query.
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_queries(folder: Path) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.rq"))}


class Client:
    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path.rstrip("/") + "/sparql"
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def send(self, query: str, method: str, accept: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                if method == "GET":
                    self.conn.request("GET", self.path + "?" + urlencode({"query": query}), headers={"Accept": accept})
                else:
                    self.conn.request("POST", self.path, body=query.encode("utf-8"),
                                      headers={"Accept": accept, "Content-Type": "application/sparql-query"})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError


def accept_for(query: str) -> str:
    from server.sparql_protocol import analyse
    return "text/turtle" if analyse(query).gives_graph else "application/sparql-results+json"


def check_against_rdflib(name: str, query: str, body: bytes, release) -> None:
    """The answer must equal rdflib's evaluation of the same query over the dump."""
    from rdflib.compare import isomorphic
    from tests.test_sparql_support import (parse_graph, parse_results, reference_dataset, reference_graph,
                                           reference_select, solution_rows)
    from server import search_service  # a text search block: rdflib evaluates the index's answers, as VALUES
    query = search_service.expand(query, release.manifest["base"], search_service.release_index(release.path))
    reference = reference_dataset(release).query(query)
    if reference.type in ("CONSTRUCT", "DESCRIBE"):
        if not isomorphic(parse_graph(body, "text/turtle"), reference_graph(release, query)):
            raise SystemExit(f"{name}: the answer differs from rdflib's")
        return
    result = parse_results(body, "application/sparql-results+json")
    if reference.type == "ASK":
        if result.askAnswer != reference.askAnswer:
            raise SystemExit(f"{name}: the answer differs from rdflib's")
        return
    _, expected = reference_select(release, query)

    def canon(rows):
        out = Counter()
        for row, n in rows.items():
            out[tuple(" | ".join(sorted(c[1:-1].split(" | "))) if isinstance(c, str) and " | " in c else c
                      for c in row)] += n
        return out
    if canon(solution_rows(result)) != canon(expected):
        raise SystemExit(f"{name}: the answer differs from rdflib's")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--method", choices=["GET", "POST"], default="POST")
    parser.add_argument("--queries", default=str(ROOT / "queries"))
    parser.add_argument("--releases", default=str(ROOT / "releases"),
                        help="the releases folder the server serves (for rdflib's reference answers)")
    parser.add_argument("--no-check", action="store_true", help="skip the rdflib check (byte identity still applies)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    queries = load_queries(Path(args.queries))
    accepts = {name: accept_for(q) for name, q in queries.items()}
    client = Client(args.url)
    expected: dict[str, bytes] = {}
    for name, query in queries.items():
        status, body = client.send(query, args.method, accepts[name])
        if status != 200:
            raise SystemExit(f"{name}: HTTP {status}: {body[:300]!r}")
        expected[name] = body
    if not args.no_check:
        from server.release import current_release
        release = current_release(Path(args.releases))
        for name, query in queries.items():
            check_against_rdflib(name, query, expected[name], release)
        print(f"checked {len(queries)} answers against rdflib over {release.file('dataset.trig')}", file=sys.stderr)

    names = list(queries)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors = Counter()
    lock = threading.Lock()
    stop_at = time.monotonic() + args.seconds
    start_gate = threading.Barrier(args.concurrency + 1)

    def worker(index: int) -> None:
        own = Client(args.url)
        mine: dict[str, list[float]] = defaultdict(list)
        bad = Counter()
        i = index
        start_gate.wait()
        while time.monotonic() < stop_at:
            name = names[i % len(names)]
            i += 1
            started = time.perf_counter()
            try:
                status, body = own.send(queries[name], args.method, accepts[name])
            except Exception as error:  # noqa: BLE001 - counted, not hidden
                bad[f"{name}: {type(error).__name__}"] += 1
                continue
            elapsed = time.perf_counter() - started
            if status == 200 and body == expected[name]:
                mine[name].append(elapsed)
            else:
                bad[f"{name}: HTTP {status}" if status != 200 else f"{name}: wrong body"] += 1
        with lock:
            for k, v in mine.items():
                latencies[k].extend(v)
            errors.update(bad)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.concurrency)]
    for t in threads:
        t.start()
    start_gate.wait()
    began = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - began

    every = sorted(x for v in latencies.values() for x in v)

    def pct(values, p):
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000 if values else float("nan")

    report = {
        "url": args.url, "method": args.method, "concurrency": args.concurrency, "seconds": round(wall, 2),
        "queries": len(every), "errors": sum(errors.values()), "queries_per_second": round(len(every) / wall, 1),
        "p50_ms": round(pct(every, 50), 2), "p90_ms": round(pct(every, 90), 2), "p99_ms": round(pct(every, 99), 2),
        "per_query": {name: {"n": len(v), "p50_ms": round(pct(sorted(v), 50), 2), "p99_ms": round(pct(sorted(v), 99), 2)}
                      for name, v in sorted(latencies.items())},
        "error_kinds": dict(errors),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.method} {args.url}/sparql, {args.concurrency} connections, {wall:.1f} s: "
              f"{report['queries']} correct answers, {report['errors']} errors")
        print(f"  {report['queries_per_second']} queries/s   p50 {report['p50_ms']} ms   "
              f"p90 {report['p90_ms']} ms   p99 {report['p99_ms']} ms")
        for name, figures in report["per_query"].items():
            print(f"  {name:32} n={figures['n']:6}  p50 {figures['p50_ms']:8.2f} ms  p99 {figures['p99_ms']:8.2f} ms")
        for kind, n in errors.most_common():
            print(f"  error: {kind} x{n}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
