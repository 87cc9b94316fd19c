"""The front end on Virtuoso against Virtuoso's own endpoint: the front end's overhead, as a ratio.

    python -m bench.remote_overhead --scale 100k          # real | 100k | 1m  (or --meetings N)

One run, on 127.0.0.1, every server in its own process group and stopped at the end (also on
failure): generate the corpus (bench/generate.py) → start Virtuoso (tests/virtuoso.py) →
``lodpub publish`` into it (validate, build, load under release-scoped graph names, switch
readers; timed) → two front ends on it, ``lodpub serve`` with the LODPUB_STORE_* settings and 2
workers each: ``front-nocache`` (LODPUB_SPARQL_CACHE_BYTES=0: every query goes to the store) and
``front`` (the default result cache: as deployed) → for each request of the SPARQL mix, three
cells back to back (so that the machine's load drifts as little as possible between them):
Virtuoso's /sparql queried directly, with the release's stored graphs as the protocol dataset
(default-graph-uri and named-graph-uri: what the front end sends it, so it answers the same
question), then each front end's /sparql → the document mix on both front ends (documents have
no direct equivalent: absolute figures). The driver and the checks are bench/run.py's: every
answer is checked against the oracle (the release's own store) before it counts. Prints one
table and writes it, with the raw figures, to ``bench/results/remote-{scale}.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from server.graph_names import GraphNames

from . import driver, generate, run, servers, workload

DIRECT, NOCACHE, CACHED = "virtuoso-direct", "front-nocache", "front"
#: Virtuoso without a protocol dataset: its default graph is every graph in the store (this
#: release and the control graph), what a store holding one release could be asked
WHOLE = "virtuoso-whole-store"


def publish(root: Path, releases: Path, env: dict, log: Path) -> dict:
    """`lodpub publish` of the corpus into the store: wall time and the figures it prints."""
    started = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run([str(servers.BIN / "lodpub"), "publish", "--root", str(root), "--releases", str(releases)],
                              env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, timeout=3600,
                              start_new_session=True)
    text = log.read_text(encoding="utf-8", errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"lodpub publish failed ({done.returncode}); the last lines of {log}:\n"
                           + "\n".join(text.splitlines()[-20:]))
    figures = run.build_figures(text)  # validation and release times, quads
    loaded = next((line for line in text.splitlines() if line.startswith("published in ")), "")
    return {**figures, "publish_s": round(time.perf_counter() - started, 2),
            "load_and_switch_s": float(loaded.split()[2].rstrip("s")) if loaded else None}


def stored_names(release: Path) -> GraphNames:
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    return GraphNames(manifest["base"], manifest["version"], list(manifest["graphs"]))


def back_to_published(check, names: GraphNames):
    """The check, on the answer with stored graph names read back as the published ones (what
    the front end does to every answer): a store answering directly names graphs as stored."""
    stored, published = names.stored_prefix.encode(), names.base.encode()

    def judged(status: int, headers: dict, body: bytes):
        return check(status, headers, body.replace(stored, published))
    return judged


def direct_requests(virtuoso: servers.Virtuoso, items: list[workload.Item], names: GraphNames,
                    dataset: bool = True) -> dict:
    """name → Request for Virtuoso's own endpoint: the query with graph IRIs renamed as the front
    end renames them; with `dataset`, the release's graphs as the protocol dataset (their union
    as default graph), as the front end sends it."""
    graphs = [names.stored(g) for g in names.graphs]
    chosen = (graphs, graphs) if dataset else None
    return {item.name: driver.Request(item.name, virtuoso.query_url(names.rewrite_query(item.query, names.base), chosen),
                                      back_to_published(item.check, names), {"Accept": item.accept})
            for item in items if item.mix == "sparql" and not item.ours_only}


def ratio(front: dict | None, direct: dict | None) -> str:
    if not front or not direct or not direct["rps"] or front["wrong"] + front["failed"] or direct["wrong"] + direct["failed"]:
        return "—"
    return f"{front['rps'] / direct['rps']:.2f}"


def geometric_ratio(front: dict, direct: dict, names: list[str]) -> str:
    """The geometric mean of front/direct over the requests both answered right (a ratio's mean:
    one slow query does not dominate it as it does the mix's harmonic mean of req/s)."""
    ratios = [float(r) for r in (ratio(front.get(n), direct.get(n)) for n in names) if r != "—"]
    return f"{math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}" if ratios else "—"


def table(report: dict) -> str:
    m, s, p = report["machine"], report["settings"], report["publish"]
    load = report["loadavg_1min"]
    cells = {name: report["servers"].get(name, {}).get("cells", {}) for name in (DIRECT, NOCACHE, CACHED, WHOLE)}
    lines = [f"### Front end on Virtuoso, scale `{report['scale']}`: {p.get('quads')} quads — "
             f"{m['nproc']} × {m['cpu']}, {m['ram_gib']} GiB",
             "",
             f"`lodpub publish` {p['publish_s']} s (validation {p.get('validate_s')} s, release {p.get('release_s')} s, "
             f"load into Virtuoso and switch {p.get('load_and_switch_s')} s) · concurrency {s['concurrency']}, "
             f"{s['duration']} s per cell, timeout {s['timeout']} s · 1-min load average during the cells "
             f"{load['min']:.1f}–{load['max']:.1f} (mean {load['mean']}; {m['nproc']} CPUs, shared with the "
             "driver and both servers)",
             "",
             "req/s (p50/p99 ms); ✗N = N wrong or failed answers; ratio = front end req/s ÷ direct req/s. "
             "Virtuoso direct: its /sparql with the release's graphs as the protocol dataset, as the front end "
             "asks it; last column: without a dataset (default graph = the whole store: this release and the "
             "control graph), what the dataset costs the store.",
             "",
             "| request | Virtuoso direct | front end, no cache | ratio | front end, cache (as deployed) | ratio "
             "| Virtuoso, whole store |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for item in report["items"]:
        direct, nocache, cached, whole = (cells[n].get(item["name"]) for n in (DIRECT, NOCACHE, CACHED, WHOLE))
        lines.append(f"| {item['name']} | {run.fmt_cell(direct)} | {run.fmt_cell(nocache)} | {ratio(nocache, direct)} | "
                     f"{run.fmt_cell(cached)} | {ratio(cached, direct)} | {run.fmt_cell(whole)} |")
    sparql = [i["name"] for i in report["items"] if i["mix"] == "sparql"]
    both = [n for n in sparql if n in cells[DIRECT]]
    # the mix: the queries every column answered, all right (one failing cell would leave it out of one column only)
    right = [n for n in both if all(n in c and c[n]["rps"] and not c[n]["wrong"] + c[n]["failed"] for c in cells.values())]
    mixes = {n: run.mix_summary(cells[n], right) for n in (DIRECT, NOCACHE, CACHED, WHOLE)}

    def mix(summary):
        return f"{summary['rps']}" if summary else "—"

    def mix_ratio(summary):
        ok = summary and mixes[DIRECT] and mixes[DIRECT]["rps"]
        return f"{summary['rps'] / mixes[DIRECT]['rps']:.2f}" if ok else "—"
    lines.append(f"| **SPARQL mix** (harmonic mean of the {len(right)} of {len(both)} queries every column answered right) | "
                 f"{mix(mixes[DIRECT])} | "
                 f"{mix(mixes[NOCACHE])} | {mix_ratio(mixes[NOCACHE])} | {mix(mixes[CACHED])} | {mix_ratio(mixes[CACHED])} | "
                 f"{mix(mixes[WHOLE])} |")
    lines += ["", "Front end ÷ direct, geometric mean of the per-query ratios above: "
              f"{geometric_ratio(cells[NOCACHE], cells[DIRECT], both)} without its cache, "
              f"{geometric_ratio(cells[CACHED], cells[DIRECT], both)} with it (as deployed: the mix repeats "
              "each query, so after its first answer each is a cache hit)."]
    lines += ["", "Peak RSS: " + ", ".join(f"{n} {report['servers'][n].get('peak_rss_mb')} MiB"
                                            for n in (DIRECT, NOCACHE, CACHED) if n in report["servers"])
              + " (Virtuoso's counts its page buffers as they fill)."]
    problems = {f"{n}/{c}": cell["first_problem"] for n in cells for c, cell in cells[n].items() if cell.get("first_problem")}
    if problems:
        lines += ["", "First problem per failing cell: " + "; ".join(f"`{k}`: {v}" for k, v in problems.items())]
    if report.get("skipped"):
        lines += ["", "Left out: " + "; ".join(f"`{n}`: {why}" for n, why in report["skipped"].items())]
    return "\n".join(lines) + "\n"


def measure(report: dict, args, root: Path, work: Path) -> None:
    """Start the store and the front ends, run every cell; the servers are stopped on leaving."""
    with servers.Virtuoso(work, name=DIRECT) as virtuoso:
        print(f"virtuoso on {virtuoso.base_url} (ready in {virtuoso.start_seconds:.1f} s); publishing ...", flush=True)
        releases = work / "releases"
        report["publish"] = publish(root, releases, virtuoso.settings_env, work / "publish.log")
        print(f"publish: {report['publish']}", flush=True)
        release = (releases / "current").resolve()
        oracle = workload.Oracle(release / "store", run.BASE)
        sample = oracle.sample()
        items = workload.sparql_mix(oracle, sample, root / "queries") + workload.document_mix(oracle, sample)
        report["skipped"] = dict(workload.SKIPPED)
        report["items"] = [{"name": i.name, "mix": i.mix, "query": i.query, "accept": i.accept,
                            "ours_only": i.ours_only} for i in items]
        env = virtuoso.settings_env
        nocache = servers.Ours(work, root, releases, name=NOCACHE, env={**env, "LODPUB_SPARQL_CACHE_BYTES": "0"})
        cached = servers.Ours(work, root, releases, name=CACHED, env=env)
        with nocache, cached:
            names = stored_names(release)
            targets = {DIRECT: (virtuoso, direct_requests(virtuoso, items, names)),
                       NOCACHE: (nocache, run.requests_for(nocache, items, set())),
                       CACHED: (cached, run.requests_for(cached, items, set())),
                       WHOLE: (virtuoso, direct_requests(virtuoso, items, names, dataset=False))}
            cells: dict[str, dict] = {name: {} for name in targets}
            for item in items:  # the cells of a request back to back
                for name, (_, requests) in targets.items():
                    if item.name in requests:  # run_cells only prints the name of its "server"
                        cells[name].update(run.run_cells(SimpleNamespace(name=name), {item.name: requests[item.name]}, args))
            for name, (server, _) in targets.items():
                report["servers"][name] = {"ready_s": round(server.start_seconds or 0, 2), "cells": cells[name]}
        for name, (server, _) in targets.items():
            report["servers"][name]["peak_rss_mb"] = server.peak_rss_mb  # once stopped: its whole life


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.remote_overhead", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--scale", choices=sorted(generate.SCALES))
    size.add_argument("--meetings", type=int)
    size.add_argument("--render", type=Path, help="only rewrite the .md of a results .json")
    parser.add_argument("--workdir", type=Path, help="scratch folder, emptied (default /tmp/lodpub-bench/remote-SCALE)")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per cell")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, s")
    parser.add_argument("--results", type=Path, default=run.HERE / "results")
    args = parser.parse_args(argv)
    if args.render:
        markdown = table(json.loads(args.render.read_text(encoding="utf-8")))
        args.render.with_suffix(".md").write_text(markdown)
        print(markdown)
        return 0
    scale = args.scale or f"{args.meetings}m"
    work = args.workdir or Path("/tmp/lodpub-bench") / f"remote-{scale}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report: dict = {"scale": scale, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": run.machine(), "servers": {},
                    "settings": {"concurrency": args.concurrency, "duration": args.duration, "timeout": args.timeout},
                    "command": "python -m bench.remote_overhead " + " ".join(argv if argv is not None else sys.argv[1:])}
    started = time.perf_counter()
    root = generate.generate(work / "corpus", generate.SCALES[args.scale] if args.scale else args.meetings)
    report["generate_s"] = round(time.perf_counter() - started, 2)
    measure(report, args, root, work)
    run.write_report(report, table, args.results / f"remote-{scale}", started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
