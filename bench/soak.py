"""Soak test: hold a running server at ~80 % of its measured peak with a mixed load, for a while.

    python bench/soak.py --minutes 30            # builds a release, starts `lodpub serve`, soaks it
    python bench/soak.py --seconds 20 --window 5 # the short form the test suite runs
    python bench/soak.py --url http://127.0.0.1:8000 --pid <gunicorn master pid> --minutes 30

1. **Peak**: `--peak-seconds` (default 5) of closed-loop load (`--concurrency` keep-alive
   clients, default 8) with the mix below; peak = answers per second.
2. **Soak**: open loop at `--load` (default 0.8) × peak: requests are *scheduled* at a fixed
   rate and handed to a pool of keep-alive clients; latency is measured from the scheduled
   time, so a server that falls behind shows it (no coordinated omission).
3. **Runaway queries**: besides the mix, one query that cannot finish in the time limit
   (a cartesian product with ORDER BY) every `--runaway-every` seconds (default 15); it must be
   answered 503 (the SPARQL module's documented time-out answer) and the rest must go on.

The mix (weights): documents in every format (/doc/…{html,jsonld,ttl,nt,rdf}, /id/… 303,
negotiated /doc/… with Accept), the catalogue (/, /dataset, /sitemap.xml), the example SPARQL
queries (queries/*.rq, GET and POST), dump downloads (/dumps/*), and cheap hostile requests
(malformed SPARQL, updates, SERVICE, a huge literal, unknown IRIs, traversal attempts, bad
Accept). Each kind has its expected statuses; anything else (and any status >= 500 except the
runaway's 503, and any connection error) is an **error**.

Every `--window` seconds (default 60) it records answers, errors, p50/p99 latency and the RSS
of the server's process tree (the gunicorn master, its workers, the SPARQL evaluators; read
from /proc, no dependency). The report (JSON on stdout, a table on stderr) states:
errors, req/s, p99 of the first and the last window (drift: last ≤ 1.5 × first), RSS at the
start and the end (growth: end ≤ start × 1.25 + 16 MiB, i.e. flat within noise).
Exit status: 0 when no errors, no drift, no growth; 1 otherwise.

Only plain HTTP to 127.0.0.1 (the server this machine runs), on purpose.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

PROJECT = Path(__file__).resolve().parent.parent

FORMATS = ("html", "jsonld", "ttl", "nt", "rdf")
ACCEPTS = ("text/html", "application/ld+json", "text/turtle", "application/n-triples", "application/rdf+xml",
           "*/*", "application/ld+json;profile=\"http://www.w3.org/ns/json-ld#expanded\"")
RUNAWAY = ("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l } ")
HOSTILE_QUERIES = (
    ("SELECT * WHERE { ?s ?p ", {400}),
    ("INSERT DATA { <a:a> <a:b> <a:c> }", {403}),
    ("DROP ALL", {403}),
    ("SELECT * WHERE { SERVICE <http://127.0.0.1:1/> { ?s ?p ?o } }", {400}),
    ("SELECT * WHERE { " * 200 + "?s ?p ?o" + " }" * 200, {200, 400, 503}),
    ('SELECT ("' + "x" * 200_000 + '" AS ?x) WHERE {}', {200, 400}),
    ("SELECT * WHERE { ?s ?p ?o } LIMIT 5 OFFSET 999999999999", {200}),
)
HOSTILE_PATHS = (
    ("/id/nothing/here", {404}), ("/doc/meeting/<script>alert(1)</script>", {404}),
    ("/dumps/..%2fmanifest.json", {404}), ("/static/../server/app.py", {404}),
    ("/doc/%ff%fe", {404}), ("/" + "a" * 4000, {404}), ("/dumps/dataset.ttl%00", {404}),
)


@dataclass
class Spec:
    kind: str
    method: str
    path: str
    ok: frozenset
    headers: dict = field(default_factory=dict)
    data: bytes | None = None


def _query(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def build_mix(base_url: str, session: requests.Session) -> list[tuple[float, list[Spec]]]:
    """(weight, request specs) per kind, the documents found through the sitemap."""
    sitemap = session.get(base_url + "/sitemap.xml", timeout=30).text
    host = base_url.rstrip("/")
    docs = sorted({line.split("<loc>")[1].split("</loc>")[0].replace(host, "").split("?")[0]
                   for line in sitemap.splitlines() if "<loc>" in line and "/doc/" in line})
    assert docs, "no documents in the sitemap"
    documents = [Spec("document", "GET", f"{d}.{fmt}", frozenset({200})) for d in docs for fmt in FORMATS]
    documents += [Spec("document", "GET", d, frozenset({200}), {"Accept": a}) for d in docs for a in ACCEPTS]
    documents += [Spec("document", "GET", d.replace("/doc/", "/id/", 1), frozenset({303})) for d in docs
                  if not d.startswith("/doc/graph/")]
    catalogue = [Spec("catalogue", "GET", p, frozenset({200}), {"Accept": a}) for p, a in (
        ("/", "text/html"), ("/?lang=ar", "text/html"), ("/dataset", "text/turtle"), ("/dataset", "text/html"),
        ("/dataset.jsonld", "*/*"), ("/sitemap.xml", "*/*"), ("/robots.txt", "*/*"), ("/context.jsonld", "*/*"),
        ("/ontology", "text/turtle"), ("/shapes.ttl", "*/*"),
        ("/.well-known/void", "*/*"))]
    catalogue = [s if s.path != "/.well-known/void" else Spec(s.kind, s.method, s.path, frozenset({303}), s.headers)
                 for s in catalogue]
    sparql = []
    for rq in sorted((PROJECT / "queries").glob("*.rq")):
        text = _query(rq)
        sparql.append(Spec("sparql", "GET", "/sparql?" + requests.compat.urlencode({"query": text}),
                           frozenset({200})))
        sparql.append(Spec("sparql", "POST", "/sparql", frozenset({200}),
                           {"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+xml"
                            if "SELECT" in text or "ASK" in text else "application/n-triples"},
                           text.encode("utf-8")))
    sparql.append(Spec("sparql", "GET", "/sparql", frozenset({200}), {"Accept": "text/turtle"}))
    listing = session.get(base_url + "/dumps/", timeout=30).json()
    dumps = [Spec("dump", "GET", f"/dumps/{name}", frozenset({200})) for name in listing["files"]]
    dumps.append(Spec("dump", "GET", "/dumps/SHA256SUMS", frozenset({200})))
    hostile = [Spec("hostile", "POST", "/sparql", frozenset(ok), {"Content-Type": "application/sparql-query"},
                    q.encode("utf-8")) for q, ok in HOSTILE_QUERIES]
    hostile += [Spec("hostile", "GET", p, frozenset(ok)) for p, ok in HOSTILE_PATHS]
    hostile += [Spec("hostile", "GET", "/doc" + docs[0][4:], frozenset({406}), {"Accept": "image/png"}),
                Spec("hostile", "POST", "/sparql", frozenset({400}),
                     {"Content-Type": "application/sparql-query"}, b"SELECT \xff\xfe * WHERE {}"),
                # gunicorn answers 413 "Connection: keep-alive" but then closes the connection when
                # the unread body is over 64 KiB, so the next request on it fails: this request
                # asks for the close itself (see SECURITY.md, "Known limitations").
                Spec("hostile", "POST", "/sparql", frozenset({413}),
                     {"Content-Type": "application/sparql-query", "Connection": "close"}, b"#" * 1_100_000)]
    return [(0.55, documents), (0.10, catalogue), (0.20, sparql), (0.08, dumps), (0.07, hostile)]


def pick(mix, rng: random.Random) -> Spec:
    weights = [w for w, _ in mix]
    _, specs = rng.choices(mix, weights=weights)[0]
    return rng.choice(specs)


class Client:
    """One keep-alive connection's worth of client."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def send(self, spec: Spec, timeout: float = 60) -> tuple[int | None, str]:
        try:
            response = self.session.request(spec.method, self.base_url + spec.path, headers=spec.headers,
                                             data=spec.data, allow_redirects=False, timeout=timeout)
            response.content  # read it all
            return response.status_code, ""
        except requests.RequestException as error:
            self.session.close()
            self.session = requests.Session()
            return None, f"{type(error).__name__}: {str(error)[:120]}"


def judge(spec: Spec, status: int | None, reason: str = "") -> str | None:
    if status is None:
        return f"{spec.method} {spec.path[:80]} ({len(spec.data or b'')} bytes): connection error {reason}"
    if status in spec.ok:
        return None
    if spec.kind == "sparql" and status == 429:  # the per-client limit: a documented answer, not an error
        return None
    return f"{spec.method} {spec.path[:80]} -> {status} (expected {sorted(spec.ok)})"


# --------------------------------------------------------------------------------------------
# Memory of the server's process tree
# --------------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def tree_rss(pid: int) -> int:
    """RSS in bytes of `pid` and all its descendants (0 if it is gone)."""
    total, todo, seen = 0, [pid], set()
    while todo and len(seen) < 1000:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
        todo += _children(p)
    return total


# --------------------------------------------------------------------------------------------
# The phases
# --------------------------------------------------------------------------------------------

def measure_peak(base_url: str, mix, seconds: float, concurrency: int, seed: int) -> dict:
    done = collections.Counter()
    stop = time.monotonic() + seconds
    errors: list[str] = []

    def loop(n: int):
        rng = random.Random(seed * 1000 + n)
        client = Client(base_url)
        while time.monotonic() < stop:
            spec = pick(mix, rng)
            status, reason = client.send(spec)
            problem = judge(spec, status, reason)
            done["answers"] += 1
            if problem:
                errors.append(problem)

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    elapsed = time.monotonic() - started
    return {"seconds": round(elapsed, 2), "answers": done["answers"], "rps": done["answers"] / elapsed,
            "errors": len(errors), "error_samples": errors[:10]}


def soak(base_url: str, pid: int | None, mix, rate: float, seconds: float, window: float, workers: int,
         runaway_every: float, seed: int, log=sys.stderr) -> dict:
    rng = random.Random(seed)
    jobs: queue.Queue = queue.Queue(maxsize=max(64, int(rate * 5)))
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def worker():
        client = Client(base_url)
        while not stop.is_set():
            try:
                item = jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            scheduled, spec = item
            status, reason = client.send(spec)
            results.put((time.monotonic(), scheduled, spec, status, judge(spec, status, reason)))

    def runaway():
        client = Client(base_url)
        n = 0
        while not stop.wait(runaway_every if n else min(runaway_every, 2.0)):
            n += 1
            spec = Spec("runaway", "POST", "/sparql", frozenset({503}),
                        {"Content-Type": "application/sparql-query"}, f"{RUNAWAY} # {n}".encode())
            t0 = time.monotonic()
            status, _ = client.send(spec)
            results.put((time.monotonic(), t0, spec, status, judge(spec, status)))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    if runaway_every > 0:
        threads.append(threading.Thread(target=runaway, daemon=True))
    for t in threads:
        t.start()

    windows = []
    current = {"latencies": [], "errors": [], "answers": 0, "statuses": collections.Counter(), "runaway": []}
    start = time.monotonic()
    next_window = start + window
    interval = 1.0 / rate
    next_send = start
    dropped = 0
    rss_samples: list[tuple[float, int]] = []
    next_rss = start

    def drain(now: float):
        while True:
            try:
                finished, scheduled, spec, status, problem = results.get_nowait()
            except queue.Empty:
                return
            current["answers"] += 1
            current["statuses"][str(status)] += 1
            if spec.kind == "runaway":
                current["runaway"].append(round(finished - scheduled, 2))
            else:
                current["latencies"].append(finished - scheduled)
            if problem:
                current["errors"].append(problem)

    def close_window(now: float):
        nonlocal current
        lat = sorted(current["latencies"])
        rss = [r for t, r in rss_samples if t >= now - window]
        w = {
            "end_s": round(now - start, 1),
            "answers": current["answers"],
            "rps": round(current["answers"] / window, 1),
            "errors": len(current["errors"]),
            "error_samples": current["errors"][:5],
            "p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else None,
            "statuses": dict(current["statuses"]),
            "runaway_s": current["runaway"],
            "rss_mib": round(statistics.median(rss) / 2**20, 1) if rss else None,
        }
        windows.append(w)
        print(f"[{w['end_s']:7.1f}s] {w['answers']:6d} answers {w['rps']:7.1f}/s errors {w['errors']:3d} "
              f"p50 {w['p50_ms']} ms p99 {w['p99_ms']} ms rss {w['rss_mib']} MiB runaway {w['runaway_s']}",
              file=log, flush=True)
        current = {"latencies": [], "errors": [], "answers": 0, "statuses": collections.Counter(), "runaway": []}

    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if pid and now >= next_rss:
            rss_samples.append((now, tree_rss(pid)))
            next_rss += 1.0
        while next_send <= now:
            try:
                jobs.put_nowait((next_send, pick(mix, rng)))
            except queue.Full:
                dropped += 1  # every client is busy: counted and reported ("load not held")
            next_send += interval
        drain(now)
        if now >= next_window:
            close_window(now)
            next_window += window
        time.sleep(min(0.005, max(0.0, next_send - time.monotonic())))
    # let the last requests finish (bounded), then close the last window
    deadline = time.monotonic() + 30
    while not jobs.empty() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(65)
    drain(time.monotonic())
    if current["answers"] and (not windows or time.monotonic() - start - windows[-1]["end_s"] > window / 2):
        close_window(time.monotonic())
    elif current["answers"] and windows:  # a short tail: fold it into the last window's counts
        windows[-1]["answers"] += current["answers"]
        windows[-1]["errors"] += len(current["errors"])
    total = sum(w["answers"] for w in windows)
    errors = sum(w["errors"] for w in windows)
    first, last = windows[0], windows[-1]
    rss_start = statistics.median([r for _, r in rss_samples[:5]]) if rss_samples else None
    rss_end = statistics.median([r for _, r in rss_samples[-5:]]) if rss_samples else None
    drift = (last["p99_ms"] / first["p99_ms"]) if first["p99_ms"] and last["p99_ms"] else None
    return {
        "seconds": round(time.monotonic() - start, 1),
        "target_rps": round(rate, 1),
        "answers": total,
        "rps": round(total / seconds, 1),
        "errors": errors,
        "dropped": dropped,
        "p99_first_ms": first["p99_ms"],
        "p99_last_ms": last["p99_ms"],
        "p99_drift": round(drift, 2) if drift else None,
        "rss_start_mib": round(rss_start / 2**20, 1) if rss_start else None,
        "rss_end_mib": round(rss_end / 2**20, 1) if rss_end else None,
        "rss_max_mib": round(max(r for _, r in rss_samples) / 2**20, 1) if rss_samples else None,
        "windows": windows,
    }


def verdict(report: dict, drift_limit: float = 1.5) -> list[str]:
    problems = []
    if report["errors"]:
        problems.append(f"{report['errors']} errors")
    if report["dropped"] > report["answers"] * 0.01:
        problems.append(f"load not held: {report['dropped']} requests never sent (the load generator fell behind: "
                        "the machine is overloaded, or the server answers too slowly)")
    if report["p99_drift"] is not None and report["p99_drift"] > drift_limit:
        problems.append(f"p99 drift {report['p99_drift']} > {drift_limit}")
    if report["rss_start_mib"] and report["rss_end_mib"] > report["rss_start_mib"] * 1.25 + 16:
        problems.append(f"RSS grew {report['rss_start_mib']} -> {report['rss_end_mib']} MiB")
    return problems


# --------------------------------------------------------------------------------------------
# A server of our own
# --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(releases: Path, workers: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "LODPUB_RELEASES": str(releases),
           "LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT": os.environ.get("LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT", "64")}
    if not (releases / "current").exists():
        subprocess.run([sys.executable, "-m", "server.cli", "build", "--releases", str(releases)], cwd=PROJECT,
                       env=env, check=True, capture_output=True, timeout=300)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--no-build", "--port", str(port),
                                "--workers", str(workers)], cwd=PROJECT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            requests.get(url + "/", timeout=2)
            return process, url
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def run(url: str, pid: int | None, seconds: float, window: float, load: float = 0.8, peak_seconds: float = 5,
        concurrency: int = 8, runaway_every: float = 15, seed: int = 1, log=sys.stderr) -> dict:
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("soak only talks to a server on 127.0.0.1")
    mix = build_mix(url, requests.Session())
    # warm every representation once (the first answer of each is computed, later ones memoised)
    client = Client(url)
    for _, specs in mix:
        for spec in specs[:200]:
            client.send(spec)
    peak = measure_peak(url, mix, peak_seconds, concurrency, seed)
    print(f"peak: {peak['rps']:.1f} answers/s over {peak['seconds']} s ({concurrency} clients), "
          f"{peak['errors']} errors", file=log, flush=True)
    rate = max(1.0, load * peak["rps"])
    report = soak(url, pid, mix, rate, seconds, window, workers=max(concurrency * 2, 8),
                  runaway_every=runaway_every, seed=seed, log=log)
    report["peak"] = peak
    report["load"] = load
    report["errors"] += peak["errors"]
    report["problems"] = verdict(report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float)
    length.add_argument("--seconds", type=float)
    parser.add_argument("--window", type=float, help="seconds per reporting window (default 60, or 1/4 of a short run)")
    parser.add_argument("--url", help="a running server (default: start one on a fresh build)")
    parser.add_argument("--pid", type=int, help="the server's master pid (for RSS), with --url")
    parser.add_argument("--releases", help="releases folder for the server started here (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--load", type=float, default=0.8)
    parser.add_argument("--peak-seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runaway-every", type=float, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds else 60 * (args.minutes or 1)
    window = args.window or (60.0 if seconds >= 240 else max(1.0, seconds / 4))
    process = None
    url, pid = args.url, args.pid
    if url is None:
        releases = Path(args.releases) if args.releases else Path(tempfile.mkdtemp(prefix="lodpub-soak-"))
        process, url = start_server(releases, args.workers)
        pid = process.pid
    try:
        report = run(url, pid, seconds, window, args.load, args.peak_seconds, args.concurrency,
                     args.runaway_every, args.seed)
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(f"\n{report['seconds']} s at {report['rps']} req/s (target {report['target_rps']}, peak "
          f"{report['peak']['rps']:.1f}); errors {report['errors']}; p99 first {report['p99_first_ms']} ms, "
          f"last {report['p99_last_ms']} ms (drift {report['p99_drift']}); RSS {report['rss_start_mib']} -> "
          f"{report['rss_end_mib']} MiB (max {report['rss_max_mib']})", file=sys.stderr)
    for problem in report["problems"]:
        print("PROBLEM: " + problem, file=sys.stderr)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
