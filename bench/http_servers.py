"""The HTTP server under the app: gunicorn's gthread worker (what `lodpub serve` runs) against
gunicorn's gevent worker and granian (a WSGI server written in Rust), the same Flask apps under
all three, as ratios in one run.

    pip install -e '.[bench]'
    python -m bench.http_servers --corpus /tmp/gen-1m [--duration 3]   # a built corpus (bench/run.py)

One server at a time, each on 127.0.0.1 in its own process group and stopped after its cells, in
two rounds (servers in the same order) so that a drift of the machine shows:

- `bare-flask` (bench/bare_app.py answering fixed bytes) under gunicorn with our settings
  (gthread, 2 workers × 8 threads, keep-alive 5), under gunicorn's gevent worker (2 workers,
  greenlets instead of threads, the same keep-alive) and under granian (2 workers × 8 blocking
  threads, HTTP/1.1), none writing an access log: what each server costs around the thinnest
  Flask handler;
- `lodpub` with its result and response caches off (every request computed): `lodpub serve
  --no-build` (gunicorn), gunicorn's gevent worker on `server.app:create_app()` and granian with
  `--factory server.app:create_app` (the settings from the same LODPUB_* variables). Only
  requests a worker answers itself are measured: a light ASK, a meeting's CONSTRUCT (both
  answered without an evaluator: server/light_queries.py) and the meeting's HTML page; the
  app writes its own access log under all. Under gevent and granian nothing starts the shared
  evaluator pool (a heavy query would start a private one per worker): this compares the HTTP
  servers, it is not a deployment.

Every answer is checked: status 200 and the very bytes gunicorn's server answered first. Each
cell reports req/s and its p99 (a closed loop of 8: the worker model shows in the tail). Prints
one table and writes it, with the raw figures, to ``bench/results/http-servers.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
import urllib.parse
from pathlib import Path

from . import driver, servers

HERE = Path(__file__).resolve().parent
WORKERS, THREADS = 2, 8
#: seconds left to a started server before its cells: a gunicorn worker still booting when the
#: driver connects gets none of the connections, and the cell then measures one worker (bare
#: Flask: ~3.5k against ~6k req/s)
SETTLE = 2.0
NO_CACHES = {"LODPUB_SPARQL_CACHE_BYTES": "0", "LODPUB_RESPONSE_CACHE_BYTES": "0",
             "LODPUB_MAX_CONCURRENT_QUERIES_PER_CLIENT": "1000"}
SCHEMA_EVENT = "https://schema.org/Event"


class WsgiServer(servers.Server):
    """A WSGI app (`target`) under another HTTP server than `lodpub serve`'s, on 127.0.0.1."""

    def __init__(self, workdir: Path, name: str, target: str, env: dict):
        self.name = name
        super().__init__(workdir)
        self.target, self.env = target, env

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self):
        self.spawn(self.command(), env={"PYTHONPATH": str(HERE.parent), **self.env}, cwd=HERE.parent)
        self.wait_http("/robots.txt")


class Granian(WsgiServer):
    """Under granian with the settings of our gunicorn: 2 workers × 8 threads."""

    def __init__(self, workdir: Path, name: str, target: str, env: dict, factory: bool = False):
        super().__init__(workdir, name, target, env)
        self.factory = factory

    def command(self) -> list[str]:
        return [str(servers.BIN / "granian"), "--interface", "wsgi", "--http", "1", "--no-ws",
                "--workers", str(WORKERS), "--blocking-threads", str(THREADS), "--host", servers.LOOPBACK,
                "--port", str(self.port), *(["--factory"] if self.factory else []), self.target]


class GeventGunicorn(WsgiServer):
    """Under gunicorn's gevent worker: 2 workers, keep-alive 5, no access log of gunicorn's (the
    app writes its own)."""

    def command(self) -> list[str]:
        return [str(servers.BIN / "gunicorn"), "--worker-class", "gevent", "--workers", str(WORKERS),
                "--keep-alive", "5", "--timeout", "60", "--bind", f"{servers.LOOPBACK}:{self.port}", self.target]


def bare_on_gunicorn(work: Path, files: Path) -> servers.Server:
    return servers.BareFlask(work, files, workers=WORKERS, access_log=False)


def bare_on_granian(work: Path, files: Path) -> servers.Server:
    return Granian(work, "bare-flask-granian", "bench.bare_app:app", {"BENCH_FILES": str(files)})


def bare_on_gevent(work: Path, files: Path) -> servers.Server:
    return GeventGunicorn(work, "bare-flask-gevent", "bench.bare_app:app", {"BENCH_FILES": str(files)})


def ours_on_gunicorn(work: Path, corpus: Path) -> servers.Server:
    return servers.Ours(work, corpus, corpus / "releases", workers=WORKERS, name="lodpub-gunicorn", env=NO_CACHES)


def ours_on_granian(work: Path, corpus: Path) -> servers.Server:
    env = {**NO_CACHES, "LODPUB_ROOT": str(corpus), "LODPUB_RELEASES": str(corpus / "releases")}
    return Granian(work, "lodpub-granian", "server.app:create_app", env, factory=True)


def ours_on_gevent(work: Path, corpus: Path) -> servers.Server:
    env = {**NO_CACHES, "LODPUB_ROOT": str(corpus), "LODPUB_RELEASES": str(corpus / "releases")}
    return GeventGunicorn(work, "lodpub-gevent", "server.app:create_app()", env)


def a_meeting(base_url: str) -> str:
    query = f"SELECT ?m WHERE {{ ?m a <{SCHEMA_EVENT}> }} ORDER BY ?m LIMIT 1"
    status, _, body = driver.fetch(driver.Request("m", f"{base_url}/sparql?{urllib.parse.urlencode({'query': query})}",
                                                  lambda *_: None, {"Accept": "application/sparql-results+json"}))
    if status != 200:
        raise RuntimeError(f"could not find a meeting: HTTP {status}")
    return json.loads(body)["results"]["bindings"][0]["m"]["value"]


def our_paths(meeting: str, base: str) -> dict[str, tuple[str, str]]:
    """cell name → (path and query string, Accept)"""
    ask = (f"PREFIX schema: <https://schema.org/> ASK {{ <{meeting}> a schema:Event ; "
           "schema:location ?place . ?place schema:address ?address }")
    describe = f"CONSTRUCT {{ <{meeting}> ?p ?o }} WHERE {{ <{meeting}> ?p ?o }}"
    return {"ask": ("/sparql?" + urllib.parse.urlencode({"query": ask}), "application/sparql-results+json"),
            "describe": ("/sparql?" + urllib.parse.urlencode({"query": describe}), "text/turtle"),
            "meeting.html": (meeting.replace(base + "id/", "/doc/") + ".html", "text/html")}


def same_bytes(expected: bytes):
    def check(status: int, headers: dict, body: bytes) -> str | None:
        if status != 200:
            return f"HTTP {status}"
        return None if body == expected else f"{len(body)} bytes, not the {len(expected)} expected"
    return check


def reference_answers(server: servers.Server, paths: dict) -> dict[str, bytes]:
    answers = {}
    for name, (path, accept) in paths.items():
        status, _, body = driver.fetch(driver.Request(name, server.base_url + path, lambda *_: None, {"Accept": accept}))
        if status != 200:
            raise RuntimeError(f"{server.name} answered {name} with HTTP {status}")
        answers[name] = body
    return answers


def measure(server: servers.Server, cells: dict[str, tuple[str, str, bytes]], args) -> dict:
    figures = {}
    for name, (path, accept, expected) in cells.items():
        request = driver.Request(name, server.base_url + path, same_bytes(expected), {"Accept": accept})
        result = driver.run([request], concurrency=args.concurrency, duration=args.duration)
        p50, p99 = result.percentile(50), result.percentile(99)
        figures[name] = {"rps": round(result.rps), "errors": result.errors, "first_problem": result.first_problem,
                         "p50_ms": round(p50 * 1000, 2) if p50 is not None else None,
                         "p99_ms": round(p99 * 1000, 2) if p99 is not None else None}
        print(f"  {server.name:20} {name:14} {result.rps:8.0f} req/s  p99 {figures[name]['p99_ms']} ms  "
              f"errors {result.errors}", flush=True)
    return figures


def run_all(args) -> dict:
    work = args.workdir
    files = work / "bare-files"
    files.mkdir(parents=True, exist_ok=True)
    base = "https://w3id.org/un-meetings/"
    with ours_on_gunicorn(work, args.corpus) as reference:
        paths = our_paths(a_meeting(reference.base_url), base)
        answers = reference_answers(reference, paths)
    (files / "ask.srj").write_bytes(answers["ask"])
    (files / "robots.txt").write_bytes(b"")  # what the servers are awaited on
    ours_cells = {name: (path, accept, answers[name]) for name, (path, accept) in paths.items()}
    bare_cells = {"ask bytes": ("/ask.srj", "application/sparql-results+json", answers["ask"])}
    makers = [(bare_on_gunicorn, files, bare_cells), (bare_on_gevent, files, bare_cells),
              (bare_on_granian, files, bare_cells), (ours_on_gunicorn, args.corpus, ours_cells),
              (ours_on_gevent, args.corpus, ours_cells), (ours_on_granian, args.corpus, ours_cells)]
    rounds = []
    for _ in range(args.rounds):
        results = {}
        for make, source, cells in makers:
            with make(work, source) as server:
                if isinstance(server, servers.Ours):
                    server.wait_every_worker()
                time.sleep(SETTLE)
                results[server.name] = measure(server, cells, args)
        rounds.append(results)
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "corpus": str(args.corpus),
            "machine": {"nproc": os.cpu_count()}, "settings": {"duration": args.duration, "concurrency": args.concurrency,
                                                              "workers": WORKERS, "threads": THREADS},
            "rounds": rounds}


#: (app, the gthread server's name, the others' names, in the table's order)
APPS = (("bare Flask", "bare-flask", ("bare-flask-gevent", "bare-flask-granian")),
        ("lodpub, caches off", "lodpub-gunicorn", ("lodpub-gevent", "lodpub-granian")))


def render(report: dict) -> str:
    lines = [f"### HTTP servers: gunicorn (gthread, gevent) and granian, {report['date']}", "",
             f"corpus `{report['corpus']}` · {report['machine']['nproc']} CPUs · concurrency "
             f"{report['settings']['concurrency']}, {report['settings']['duration']} s per cell · "
             f"{report['settings']['workers']} workers (× {report['settings']['threads']} threads: gthread, "
             "granian)", "", "req/s (p99 ms); ✗N: wrong or failed answers", "",
             "| app | request | round | gunicorn gthread | gunicorn gevent | granian | gevent ÷ gthread "
             "| granian ÷ gthread |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for number, results in enumerate(report["rounds"], 1):
        for app, gthread, others in APPS:
            for cell, mine in results[gthread].items():
                theirs = [results[other][cell] for other in others]
                lines.append(f"| {app} | {cell} | {number} | {_figure(mine)} | "
                             + " | ".join(_figure(t) for t in theirs) + " | "
                             + " | ".join(_ratio(t, mine) for t in theirs) + " |")
    return "\n".join(lines) + "\n"


def _figure(cell: dict) -> str:
    wrong = f" ✗{cell['errors']}" if cell["errors"] else ""
    return f"{cell['rps']} ({cell.get('p99_ms')}){wrong}"


def _ratio(theirs: dict, mine: dict) -> str:
    ok = mine["errors"] == 0 and theirs["errors"] == 0 and mine["rps"] > 0
    return f"{theirs['rps'] / mine['rps']:.2f}" if ok else "— (errors)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus with a built release (releases/current)")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lodpub-bench/http-servers"))
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    report = run_all(args)
    text = render(report)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "http-servers.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (args.results / "http-servers.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
