"""Instructions per request in-process, counted by callgrind: what one request costs our code,
the same from run to run whatever else the machine is doing (time here is not).

    python -m bench.instructions --releases /tmp/lodpub-bench/real/releases [--requests 300]
        [--tree /path/to/another/checkout ...] [--only ask,turtle]

For each request kind and each checkout (this one, and every `--tree`, e.g. a `git worktree` of
an earlier commit), a Python under `valgrind --tool=callgrind` builds the app on the release
(result and response caches off, no access log), answers the request 50 times to warm up, then
`--requests` times more inside one `functools.reduce` call (the SPARQL requests are
light queries, which the worker answers itself: no evaluator process): callgrind counts only inside that C
function (`--toggle-collect`), so start-up and warm-up are left out and the count divided by the
requests is the cost of one. Each answer is checked for its status and content type. About a
minute per kind and checkout (callgrind runs Python ~50× slower).
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent.parent
WARM_UP = 50
#: kind → (path, query, Accept, expected content type)
KINDS = {
    "ask": ("/sparql", "ASK", "application/sparql-results+json", "application/sparql-results+json"),
    "describe": ("/sparql", "CONSTRUCT", "text/turtle", "text/turtle"),
    "html": ("/doc/", None, "text/html", "text/html"),
    "turtle": ("/doc/", None, "text/turtle", "text/turtle"),
    "jsonld": ("/doc/", None, "application/ld+json", "application/ld+json"),
}
MEETING = "PREFIX schema: <https://schema.org/> SELECT ?m { ?m a schema:Event } ORDER BY ?m LIMIT 1"


def _environ(kind: str, base: str, meeting: str) -> dict:
    from werkzeug.test import EnvironBuilder
    path, query, accept, _ = KINDS[kind]
    if query == "ASK":
        text = (f"PREFIX schema: <https://schema.org/> ASK {{ <{meeting}> a schema:Event ; "
                "schema:location ?place . ?place schema:address ?address }")
    elif query == "CONSTRUCT":  # bench.workload's describe-meeting
        text = f"CONSTRUCT {{ <{meeting}> ?p ?o }} WHERE {{ <{meeting}> ?p ?o }}"
    if path == "/doc/":
        path += meeting[len(base) + len("id/"):]
    return EnvironBuilder(path=path, query_string=urlencode({"query": text}) if query else "",
                          headers={"Accept": accept, "Host": "127.0.0.1:8000"}).get_environ()


def inner(kind: str, requests: int) -> None:
    """Run under callgrind: the app answers `kind` WARM_UP + `requests` times."""
    from server.app import create_app
    from server.config import from_environment
    settings = from_environment()
    app = create_app(settings)
    store = app.extensions["lodpub.publisher"].current().store
    meeting = next(iter(store.query(MEETING, use_default_graph_as_union=True)))["m"].value
    template = _environ(kind, settings.base, meeting)
    answers: list[tuple[str, str]] = []

    def start_response(status, headers, exc_info=None):
        answers.append((status, dict(headers).get("Content-Type", "")))

    def once(*_):
        b"".join(app(dict(template), start_response))

    for _ in range(WARM_UP):
        once()
    functools.reduce(once, range(requests), None)  # callgrind counts inside this call only
    expected = KINDS[kind][3]
    wrong = [a for a in answers if not (a[0].startswith("200") and a[1].startswith(expected))]
    if wrong:
        sys.exit(f"{kind}: {len(wrong)} wrong answers, e.g. {wrong[0]}")


def count(tree: Path, kind: str, requests: int, releases: Path) -> float:
    """Instructions per request of `kind` in the checkout `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0", LODPUB_RELEASES=str(releases),
               LODPUB_SPARQL_CACHE_BYTES="0", LODPUB_RESPONSE_CACHE_BYTES="0", LODPUB_ACCESS_LOG="0")
    command = ["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce", "--callgrind-out-file=/dev/null",
               sys.executable, __file__, "--inner", kind, "--requests", str(requests)]  # this file, `tree`'s server
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    collected = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not collected:
        raise SystemExit(f"{tree} {kind}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return int(collected.group(1)) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=Path, help="a releases folder with a `current` release")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to count")
    parser.add_argument("--only", default=",".join(KINDS), help="request kinds, comma-separated: " + ", ".join(KINDS))
    parser.add_argument("--inner", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        inner(args.inner, args.requests)
        return 0
    if args.releases is None:
        parser.error("--releases is required")
    trees = [HERE, *args.tree]
    print("| request | " + " | ".join(str(t) for t in trees) + " |")
    print("|---|" + "---:|" * len(trees))
    for kind in args.only.split(","):
        figures = [count(tree, kind, args.requests, args.releases.resolve()) for tree in trees]
        print(f"| {kind} | " + " | ".join(f"{f / 1e6:.3f}M" for f in figures) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
