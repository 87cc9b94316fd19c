"""Cold document GETs and the memory of our server, per process, on a built release.

    python -m bench.cold_memory --corpus /tmp/gen-1m [--documents 6] [--duration 2] [--oxigraph]
        [--env LODPUB_SPARQL_EVALUATORS=2 ...] [--profile /tmp/cold.txt] [--out figures.json]

Starts ``lodpub serve --no-build`` (2 workers, as in bench.run) on the corpus's current release,
then, one request at a time: the first GET of `--documents` different meetings in each of HTML,
Turtle and JSON-LD (every document new to the server, so each pays its describe; the first HTML
also pays what a worker computes once per release), each answer checked. Then a short SPARQL mix
at concurrency 8 (describe, labels, ASK, the join, GROUP BY; result cache on, as deployed) so that
the evaluator processes start. Reports the latencies, the peak RSS of the whole process tree
(bench.servers' sampler, as in bench.run) and RSS/USS per process role at the end. With
``--oxigraph``: the same SPARQL cells against Oxigraph server on the same data, for its peak RSS.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from . import driver, profiling, servers, workload

BASE = "https://w3id.org/un-meetings/"
FORMATS = (("html", "text/html"), ("ttl", workload.TURTLE), ("jsonld", workload.JSONLD))
SPARQL_CELLS = ("describe-meeting", "labels-ar", "ask", "join-4-patterns", "count-by-commission")


def role(process: psutil.Process) -> str:
    """master / worker / supervisor / evaluator / helper, from the command lines of the process
    and its parent (evaluators are forked by the supervisor and keep its command line)."""
    try:
        cmdline = " ".join(process.cmdline())
        parent = " ".join(process.parent().cmdline()) if process.parent() else ""
    except psutil.Error:
        return "gone"
    if "server.evaluators" in cmdline:
        return "evaluator" if "server.evaluators" in parent else "supervisor"
    if "multiprocessing" in cmdline:
        return "helper"
    return "worker" if " serve " in parent + " " else "master"


def memory_by_role(pid: int) -> dict:
    """role → {count, rss_mb, pss_mb, uss_mb} over the process tree of `pid`. RSS counts the pages
    forked processes share once per process; PSS splits them among the sharers (its sum is what
    the tree holds); USS: pages of that process only."""
    root = psutil.Process(pid)
    out: dict = {}
    for process in [root] + root.children(recursive=True):
        try:
            info = process.memory_full_info()
        except psutil.Error:
            continue
        entry = out.setdefault(role(process), {"count": 0, "rss_mb": 0.0, "pss_mb": 0.0, "uss_mb": 0.0})
        entry["count"] += 1
        for key in ("rss", "pss", "uss"):
            entry[f"{key}_mb"] = round(entry[f"{key}_mb"] + getattr(info, key) / 2**20, 1)
    out["total"] = {key: round(sum(e[key] for e in out.values()), 1) for key in ("rss_mb", "pss_mb", "uss_mb")}
    return out


def cold_gets(server: servers.Ours, items: list[workload.Item], per_format: int, oracle: workload.Oracle) -> dict:
    """ms of each first GET, per format, each of a different meeting; a wrong answer stops the run."""
    timings: dict = {}
    chosen = iter(items)
    for ext, accept in FORMATS:
        for _ in range(per_format):
            item = next(chosen)
            iri = oracle.base + "id/" + item.doc_path[len("/doc/"):-len(".html")]
            check = {"html": item.html_check, "ttl": item.check,
                     "jsonld": workload.triples_about(iri, _arabic_name(oracle, iri), None, oracle.base, "jsonld")}[ext]
            url = server.base_url + item.doc_path[:-len(".html")] + "." + ext
            request = driver.Request("cold-" + ext, url, check, {"Accept": accept})
            started = time.perf_counter()
            status, headers, body = driver.fetch(request)
            elapsed = (time.perf_counter() - started) * 1000
            problem = request.judge(status, headers, body)
            if problem:
                raise SystemExit(f"wrong answer for {url}: {problem}")
            timings.setdefault(ext, []).append(round(elapsed, 1))
    return timings


def _arabic_name(oracle: workload.Oracle, iri: str) -> str:
    rows = oracle.query(f'SELECT ?n WHERE {{ <{iri}> <{workload.SCHEMA}name> ?n FILTER(lang(?n) = "ar") }}')
    return next(iter(rows))["n"].value


def sparql_cells(server: servers.Server, items: list[workload.Item], duration: float) -> dict:
    out = {}
    for item in items:
        request = driver.Request(item.name, server.sparql_url(item.query), item.check, {"Accept": item.accept})
        result = driver.run([request], concurrency=8, duration=duration, timeout=10.0, warmup=0.3)
        out[item.name] = result.as_dict()
        print(f"  {server.name:10} {item.name:22} {result.rps:8.1f} req/s  p50 {out[item.name]['p50_ms']} ms"
              + (f"  ERRORS {result.errors}: {result.first_problem}" if result.errors else ""), flush=True)
    return out


def profiled_cold_gets(server: servers.Ours, items: list[workload.Item], oracle: workload.Oracle, raw: Path) -> dict:
    """py-spy on the whole server tree while it answers more first GETs (after the timed ones, so
    that the sampler does not slow those)."""
    spy = subprocess.Popen([str(servers.BIN / "py-spy"), "record", "--pid", str(server.process.pid), "--subprocesses",
                            "--nonblocking", "--rate", "250", "--format", "raw", "--output", str(raw)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(1.0)
        timings = cold_gets(server, items, len(items) // len(FORMATS), oracle)
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(spy.pid, signal.SIGKILL)
    return {"timings_ms": timings, **profiling.summarize(raw, top=25), "raw": str(raw)}


def summary(values: list[float]) -> dict:
    return {"first": values[0], "median": statistics.median(values), "max": max(values), "all": values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.cold_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus with a built release (releases/current)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lodpub-bench/cold-memory"))
    parser.add_argument("--documents", type=int, default=6, help="distinct meetings per format")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per SPARQL cell")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for our server (repeatable)")
    parser.add_argument("--oxigraph", action="store_true", help="also Oxigraph server, same SPARQL cells")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of more first GETs, written here")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    release = (args.corpus / "releases" / "current").resolve()
    oracle = workload.Oracle(release / "store", BASE)
    sample = oracle.sample()
    crawl = workload.crawl_mix(oracle, limit=6 * args.documents + 50)[50:]  # not the bench's first ones
    mix = [i for i in workload.sparql_mix(oracle, sample, None) if i.name in SPARQL_CELLS]
    env = dict(pair.split("=", 1) for pair in args.env)
    report: dict = {"release": str(release), "env": env, "loadavg_before": os.getloadavg()}
    ours = servers.Ours(args.workdir, args.corpus, args.corpus / "releases", env=env)
    with ours:
        report["ready_s"] = round(ours.start_seconds, 2)
        time.sleep(1.0)  # the evaluators warmed in the background at start-up
        report["memory_idle"] = memory_by_role(ours.process.pid)
        timings = cold_gets(ours, crawl, args.documents, oracle)
        report["cold_ms"] = {ext: summary(v) for ext, v in timings.items()}
        report["memory_after_cold"] = memory_by_role(ours.process.pid)
        if args.profile:
            report["profile"] = profiled_cold_gets(ours, crawl[3 * args.documents:], oracle, args.profile)
        report["sparql"] = sparql_cells(ours, mix, args.duration)
        report["memory_after_sparql"] = memory_by_role(ours.process.pid)
    report["peak_rss_mb"], report["peak_pss_mb"] = ours.peak_rss_mb, ours.peak_pss_mb
    if args.oxigraph:
        with servers.Oxigraph(args.workdir, release / "dataset.nq.gz") as oxigraph:
            report["oxigraph_sparql"] = sparql_cells(oxigraph, mix, args.duration)
            report["oxigraph_memory"] = memory_by_role(oxigraph.process.pid)
        report["oxigraph_peak_rss_mb"], report["oxigraph_peak_pss_mb"] = oxigraph.peak_rss_mb, oxigraph.peak_pss_mb
    report["loadavg_after"] = os.getloadavg()
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
