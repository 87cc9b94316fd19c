"""Instructions per request in-process, counted by callgrind: what one request costs our code,
the same from run to run whatever else the machine is doing (time here is not).

    python -m bench.instructions --releases /tmp/lodpub-bench/real/corpus/releases [--requests 300]
        [--tree /path/to/another/checkout ...] [--only ask,meeting.ttl]

The requests are bench.run's own (bench.workload's items of the same names, on its sample
meeting), each answer checked by the item's check against the release's store. For each
request and each checkout (this one, and every `--tree`, e.g. a `git worktree` of an earlier
commit), a Python under `valgrind --tool=callgrind` builds the app on the release (result and
response caches off, no access log), answers the request 50 times to warm up, then `--requests`
times more inside one `functools.reduce` call: callgrind counts only inside that C function
(`--toggle-collect`), so start-up and warm-up are left out and the count divided by the requests
is the cost of one. The SPARQL requests are light queries, which the worker answers itself (no
evaluator process). About a minute per request and checkout (callgrind runs Python ~50× slower).
"""
from __future__ import annotations

import argparse
import functools
import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent.parent
WARM_UP = 50
KINDS = ("ask", "describe-meeting", "meeting.html", "meeting.ttl", "meeting.jsonld")


def items(releases: Path, base: str) -> dict:
    """bench.run's requests of these names, on the release's store as oracle."""
    sys.path.insert(0, str(HERE))
    from bench import workload
    oracle = workload.Oracle(releases / "current" / "store", base)
    sample = oracle.sample()
    mixes = workload.sparql_mix(oracle, sample, None) + workload.document_mix(oracle, sample)
    return {item.name: item for item in mixes if item.name in KINDS}


def target(item) -> str:
    return item.doc_path if item.doc_path else "/sparql?" + urlencode({"query": item.query})


def inner(url: str, accept: str, requests: int, answer: Path) -> None:
    """Run under callgrind: the app answers `url` WARM_UP + `requests` times; the last answer is
    left in `answer` for the caller to check."""
    from werkzeug.test import EnvironBuilder
    from server.app import create_app
    path, _, query = url.partition("?")
    template = EnvironBuilder(path=path, query_string=query,
                              headers={"Accept": accept, "Host": "127.0.0.1:8000"}).get_environ()
    app = create_app()
    statuses: set[str] = set()
    last: list = []

    def start_response(status, headers, exc_info=None):
        statuses.add(status)
        last[:] = [int(status.split()[0]), {name.lower(): value for name, value in headers}]

    def once(*_):
        last.append(b"".join(app(dict(template), start_response)))

    for _ in range(WARM_UP):
        once()
    functools.reduce(once, range(requests), None)  # callgrind counts inside this call only
    answer.write_bytes(pickle.dumps(tuple(last)))  # status, headers, body
    if len(statuses) > 1:
        sys.exit(f"{url}: answered {sorted(statuses)}")


def measure(tree: Path, item, requests: int, releases: Path, callgrind: bool = True) -> float | None:
    """Instructions per request of `item` in the checkout `tree` (None without callgrind); a
    wrong answer stops the run."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0", LODPUB_RELEASES=str(releases),
               LODPUB_SPARQL_CACHE_BYTES="0", LODPUB_RESPONSE_CACHE_BYTES="0", LODPUB_ACCESS_LOG="0")
    with tempfile.TemporaryDirectory() as folder:
        answer = Path(folder) / "answer"
        command = [sys.executable, __file__, "--inner", target(item), "--accept", item.accept,  # `tree`'s server
                   "--requests", str(requests), "--answer", str(answer)]
        if callgrind:
            command = ["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
                       "--callgrind-out-file=/dev/null", *command]
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{tree} {item.name}: exit {done.returncode}\n{done.stderr[-2000:]}")
        problem = item.check(*pickle.loads(answer.read_bytes()))
    if problem:
        raise SystemExit(f"{tree} {item.name}: wrong answer: {problem}")
    if not callgrind:
        return None
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1)) / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=Path, help="a releases folder with a `current` release")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another checkout to count")
    parser.add_argument("--only", default=",".join(KINDS), help="requests, comma-separated: " + ", ".join(KINDS))
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    parser.add_argument("--accept", help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        inner(args.inner, args.accept, args.requests, args.answer)
        return 0
    if args.releases is None:
        parser.error("--releases is required")
    from server.config import from_environment
    releases = args.releases.resolve()
    requests = items(releases, from_environment().base)
    trees = [HERE, *args.tree]
    print("| request | " + " | ".join(str(t) for t in trees) + " |")
    print("|---|" + "---:|" * len(trees))
    for name in args.only.split(","):
        figures = [measure(tree, requests[name], args.requests, releases) for tree in trees]
        print(f"| {name} | " + " | ".join(f"{f / 1e6:.3f}M" for f in figures) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
