"""One command: build our release at a scale, serve it and the anchors, drive both mixes, report.

    python -m bench.run --scale 100k            # real | 100k | 1m   (or --meetings N)
    python -m bench.run --scale real --profile  # also py-spy our server on a document and a query

Steps: generate the corpus (bench/generate.py) → ``lodpub build`` (validation + release; timed,
peak RSS) → for each server, on 127.0.0.1 and stopped afterwards (process groups, try/finally):
ours (``lodpub serve --no-build``, 2 workers), a bare Flask app and nginx answering the very
bytes ours answered, Oxigraph server, Virtuoso and rdflib-endpoint loaded with the release's
N-Quads dump → each request of the SPARQL mix and the document mix is one cell: a closed loop
at fixed concurrency for a fixed duration, every answer checked against the oracle (the
release's store) before it counts. The cells the ratio targets compare are measured with the
servers compared up at once, in turns: ours with bare Flask and nginx (REPLAY_GROUP, every cell),
uncached ours with Oxigraph and Virtuoso (INTERLEAVED_SERVERS, INTERLEAVED_CELLS). Prints markdown
tables, writes them and the raw figures to ``bench/results/{scale}.md`` and ``.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import driver, generate, profiling, servers, workload
from .targets import ENGINE_BOUND, LIGHT

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
BASE = "https://w3id.org/un-meetings/"
#: 1-minute load average seen during the cells: other work on the machine skews every figure
LOADAVG: list[float] = []
ANCHORS = ["bare-flask", "nginx", "oxigraph", "virtuoso", "rdflib-endpoint"]
#: the cells the ratio targets compare (bench/targets.py) are measured on these servers in turn,
#: all of them up at once (run_interleaved): a slow spell of the machine then falls on each of
#: them, not on whichever server had its turn (one-after-the-other runs differed by ±15 % in ratio)
INTERLEAVED_SERVERS = ("lodpub-nocache", "oxigraph", "virtuoso")
INTERLEAVED_CELLS = ENGINE_BOUND + LIGHT
#: ours as deployed and the two servers that replay its bytes (the documents target's anchor
#: and the machine's limit) take every cell in turn the same way
REPLAY_GROUP = ("lodpub", "bare-flask", "nginx")
#: beyond the real data, the slow Python peer only gets the cheap cells: its full-scan queries take
#: longer than the per-request timeout, and it cannot cancel them, so they would pile up and
#: spoil every later cell
SLOW = {"rdflib-endpoint": {"ask", "describe-meeting", "labels-ar", "meeting.jsonld", "meeting.ttl",
                            "commission.jsonld", "commission.ttl"}}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def build(root: Path) -> dict:
    """`lodpub build` on the corpus: wall time, the validation time it prints, peak RSS."""
    releases = root / "releases"
    started = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = root.parent / "build.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(servers.BIN / "lodpub"), "build", "--root", str(root), "--releases",
                                    str(releases)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        sampler = servers.RssSampler(process.pid, 0.5)
        sampler.start()
        try:
            code = process.wait(3600)
        finally:
            sampler.stop()
            if process.poll() is None:
                os.killpg(process.pid, 9)
    seconds = time.perf_counter() - started
    text = log.read_text(encoding="utf-8", errors="replace")
    if code != 0:
        raise SystemExit(f"lodpub build failed ({code}); the last lines of {log}:\n" + "\n".join(text.splitlines()[-30:]))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    # CPU time is what other work on the machine does not inflate (wall time is)
    return {**build_figures(text), "build_s": round(seconds, 2), "build_cpu_s": round(cpu, 1),
            "build_peak_rss_mb": round(max(sampler.peak, after.ru_maxrss * 1024) / 2**20, 1),
            "releases": str(releases)}


def build_figures(text: str) -> dict:
    """Figures printed by `lodpub build` (and by GNU time -v, if it wrapped the build)."""
    validated = re.search(r"conform to .*\(([\d.]+)s[,)]", text)  # "(0.36s, engine: turbo)"
    released = re.search(r"release \S+ at .*\(\d+ quads, ([\d.]+)s\)", text)
    quads = re.search(r"\((\d+) quads", text)
    figures = {"validate_s": float(validated.group(1)) if validated else None,
               "release_s": float(released.group(1)) if released else None,
               "quads": int(quads.group(1)) if quads else None}
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", text)
    if wall:
        figures["build_s"] = round(int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3)), 2)
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    if user and system:
        figures["build_cpu_s"] = round(float(user.group(1)) + float(system.group(1)), 1)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if rss:
        figures["build_peak_rss_mb"] = round(int(rss.group(1)) / 1024, 1)
    return figures


def requests_for(server: servers.Server, items: list[workload.Item], replayable: set[str]) -> dict:
    """name → driver.Request for each item this server can answer."""
    out = {}
    for item in items:
        headers = {"Accept": item.accept}
        if server.kind == "documents":
            if item.name not in replayable:
                continue
            path = item.doc_path if item.mix == "documents" else f"/replay/sparql/{item.name}.{item.replay_ext}"
            url = server.base_url + path
        elif isinstance(server, servers.Ours):
            url = server.base_url + item.doc_path if item.mix == "documents" else server.sparql_url(item.query)
        else:
            if item.query is None or item.ours_only:
                continue  # no HTML from a SPARQL store; no text search service either
            url = server.sparql_url(item.query)
        out[item.name] = driver.Request(item.name, url, item.check, headers)
    return out


def run_cells(server, requests: dict, args, only: set[str] | None = None) -> dict:
    cells = {}
    LOADAVG.append(os.getloadavg()[0])
    for name, request in requests.items():
        if only is not None and name not in only:
            continue
        first = first_answer(request, args)
        result = driver.run([request], concurrency=args.concurrency, duration=args.duration,
                            timeout=args.timeout, warmup=min(1.0, args.duration / 5))
        cells[name] = cell_of(server, name, result, first)
        LOADAVG.append(os.getloadavg()[0])
    return cells


def run_interleaved(group: list, requests: dict[str, dict], names: list[str], args) -> dict[str, dict]:
    """Cells measured on several servers in turn: `args.rounds` slices of duration ÷ rounds
    seconds on each server, the order rotated every round, every slice started once the whole
    group is idle. server name → cells."""
    cells: dict[str, dict] = {server.name: {} for server in group}
    seconds = args.duration / args.rounds
    for name in names:
        takers = [server for server in group if name in requests[server.name]]
        if not takers:
            continue
        firsts = {server.name: first_answer(requests[server.name][name], args) for server in takers}
        slices: dict[str, list] = {server.name: [] for server in takers}
        for turn in range(args.rounds):
            for server in takers[turn % len(takers):] + takers[:turn % len(takers)]:
                servers.wait_idle(group)
                LOADAVG.append(os.getloadavg()[0])
                slices[server.name].append(driver.run([requests[server.name][name]], concurrency=args.concurrency,
                                                      duration=seconds, timeout=args.timeout,
                                                      warmup=min(1.0, seconds / 5)))
        for server in takers:
            cell = cell_of(server, name, driver.merged(slices[server.name]), firsts[server.name])
            cell["slices"] = args.rounds
            cell["slice_rps"] = [round(piece.rps, 1) for piece in slices[server.name]]  # one per round
            cells[server.name][name] = cell
    return cells


def only_cells(items: list[workload.Item], names: list[str]) -> list[workload.Item]:
    unknown = set(names) - {item.name for item in items}
    if unknown:
        raise SystemExit(f"--cells: no such cell: {', '.join(sorted(unknown))}")
    return [item for item in items if item.name in names]


def first_answer(request: driver.Request, args) -> str:
    """"right", or what is wrong with the first answer (before the cell's loop)."""
    try:
        status, headers, body = driver.fetch(request, timeout=args.timeout)
        return request.judge(status, headers, body) or "right"
    except Exception as error:  # noqa: BLE001 - reported in the cell
        return f"{type(error).__name__}: {error}"


def cell_of(server, name: str, result: driver.Result, first: str) -> dict:
    cell = result.as_dict()
    cell["first_answer"] = first
    flag = "" if not result.errors else f"  ERRORS {result.errors}: {result.first_problem}"
    print(f"  {server.name:16} {name:22} {cell['rps']:9.1f} req/s  p50 {cell['p50_ms']} ms  "
          f"p99 {cell['p99_ms']} ms{flag}", flush=True)
    return cell


def run_crawl(server, items: list[workload.Item], args) -> dict | None:
    """GETs of distinct meetings' documents, each new to the server (no warm-up, no calibration):
    the cold path. Ours: the HTML page; SPARQL stores: the CONSTRUCT of the meeting, Turtle."""
    if not items or server.kind == "documents":
        return None
    if isinstance(server, servers.Ours):
        requests = [driver.Request("crawl", server.base_url + i.doc_path, i.html_check, {"Accept": "text/html"})
                    for i in items]
    else:
        requests = [driver.Request("crawl", server.sparql_url(i.query), i.check, {"Accept": i.accept}) for i in items]
    LOADAVG.append(os.getloadavg()[0])
    result = driver.run(requests, concurrency=args.concurrency, duration=args.duration, timeout=args.timeout,
                        warmup=0, name="crawl")
    cell = result.as_dict()
    cell["first_answer"] = "not calibrated (cold on purpose)"
    cell["distinct_documents"] = len(requests)
    cell["first_pass_only"] = result.ok + result.errors <= len(requests)
    flag = "" if not result.errors else f"  ERRORS {result.errors}: {result.first_problem}"
    print(f"  {server.name:16} {'crawl (cold)':22} {cell['rps']:9.1f} req/s  p50 {cell['p50_ms']} ms  "
          f"p99 {cell['p99_ms']} ms  ({len(requests)} distinct){flag}", flush=True)
    return cell


def capture(ours: servers.Ours, requests: dict, items: list[workload.Item], files: Path) -> set[str]:
    """Write the bytes of each right answer of ours where nginx and bare Flask serve them."""
    replayable = set()
    (files / "robots.txt").parent.mkdir(parents=True, exist_ok=True)
    (files / "robots.txt").write_text("User-agent: *\n")
    for item in items:
        request = requests[item.name]
        status, headers, body = driver.fetch(request)
        if request.judge(status, headers, body) is not None:
            continue
        path = item.doc_path if item.mix == "documents" else f"/replay/sparql/{item.name}.{item.replay_ext}"
        target = files / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        replayable.add(item.name)
    return replayable


def profile(ours: servers.Ours, request, args, out: Path) -> dict:
    """py-spy (all workers) while the driver hammers one request (or a list, round-robin); top
    functions by own and total time."""
    requests = request if isinstance(request, list) else [request]
    raw = out.with_suffix(".txt")
    spy = subprocess.Popen([str(servers.BIN / "py-spy"), "record", "--pid", str(ours.process.pid), "--subprocesses",
                            "--nonblocking", "--rate", "200", "--duration", str(int(args.duration) + 2),
                            "--format", "raw", "--output", str(raw)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(1.0)
        result = driver.run(requests, concurrency=args.concurrency, duration=args.duration, timeout=args.timeout,
                            warmup=0)
        spy.wait(args.duration + 30)
    finally:
        if spy.poll() is None:
            os.killpg(spy.pid, 9)
    stats = profiling.summarize(raw, top=20)
    summary = {"request": requests[0].name, "rps_while_profiled": round(result.rps, 1), **stats, "raw": str(raw)}
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return summary


def fmt_cell(cell: dict | None) -> str:
    if not cell:
        return "—"
    text = f"{cell['rps']:.0f} ({cell['p50_ms'] if cell['p50_ms'] is not None else '–'}/{cell['p99_ms'] if cell['p99_ms'] is not None else '–'})"
    errors = cell["wrong"] + cell["failed"]
    return text + (f" ✗{errors}" if errors else "")


def mix_summary(cells: dict, names: list[str]) -> dict | None:
    chosen = [cells[n] for n in names if n in cells]
    if not chosen:
        return None
    right = [c for c in chosen if c["rps"] and not c["wrong"] + c["failed"]]
    return {"cells": len(chosen), "cells_right": len(right), "ok": sum(c["ok"] for c in chosen),
            "errors": sum(c["wrong"] + c["failed"] for c in chosen),
            # the mix's rate if each request were sent equally often: harmonic mean of the cells
            # answered without any error (the others are listed below the tables)
            "rps": round(len(right) / sum(1 / c["rps"] for c in right), 1) if right else 0.0}


def tables(report: dict) -> str:
    order = [s for s in ["lodpub", "lodpub-nocache"] + ANCHORS if s in report["servers"]]
    reused = "release built beforehand (`--corpus`); " if report["build"].get("reused") else ""
    generated = "" if report["generate_s"] is None else f"Generate {report['generate_s']} s · "
    lines = [f"### Scale `{report['scale']}`: {report['build'].get('quads')} quads — "
             f"{report['machine']['nproc']} × {report['machine']['cpu']}, {report['machine']['ram_gib']} GiB",
             "",
             f"{reused}{generated}`lodpub build` {report['build']['build_s']} s wall, "
             f"{report['build'].get('build_cpu_s', '?')} s CPU "
             f"(validation {report['build']['validate_s']} s, release {report['build']['release_s']} s, "
             f"peak RSS {report['build']['build_peak_rss_mb']} MiB) · concurrency {report['settings']['concurrency']}, "
             f"{report['settings']['duration']} s per cell, timeout {report['settings']['timeout']} s · "
             f"1-min load average during the cells {report['loadavg_1min']['min']:.1f}–{report['loadavg_1min']['max']:.1f} "
             f"(mean {report['loadavg_1min']['mean']}; {report['machine']['nproc']} CPUs, the driver included)",
             "",
             *_interleaving(report),
             "| server | load s | ready s | peak RSS / PSS MiB | SPARQL mix req/s (cells right) | docs mix req/s (cells right) | crawl req/s | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in order:
        s = report["servers"][name]
        if "error" in s:
            lines.append(f"| {name} | — | — | — | failed: {s['error'][:80]} | | |")
            continue
        sp, dc = s.get("sparql_mix"), s.get("documents_mix")
        crawl = s.get("cells", {}).get("crawl")
        errors = sum(c["wrong"] + c["failed"] for c in s.get("cells", {}).values())

        def mix(m):
            return f"{m['rps']} ({m.get('cells_right', '?')}/{m['cells']})" if m else "—"
        lines.append(f"| {name} | {s.get('load_s') if s.get('load_s') is not None else '—'} | {s.get('ready_s')} | "
                     f"{s.get('peak_rss_mb')} / {s.get('peak_pss_mb', '—')} | {mix(sp)} | {mix(dc)} | {crawl['rps'] if crawl else '—'} | {errors} |")
    for name in order:
        if report["servers"][name].get("peak_rss_processes", [])[1:]:  # a tree of processes
            lines += ["", f"{name} at its peak RSS, MiB per process: " + ", ".join(
                f"{mb} ({role})" for role, mb in report["servers"][name]["peak_rss_processes"])]
    at_rest = [f"{name} {s['rest_rss_mb']} / {s['rest_pss_mb']}" for name in order
               if (s := report["servers"][name]).get("rest_rss_mb") is not None]
    if at_rest:
        lines += ["", "At rest (ready, before the first request), summed RSS / PSS MiB: " + ", ".join(at_rest)]
    lines += ["", "Per request: req/s (p50/p99 ms); ✗N = N wrong or failed answers (not counted as req/s). "
              "`crawl`: distinct meetings, each new to the server (ours: HTML page; SPARQL stores: CONSTRUCT, "
              "Turtle), no warm-up.", "",
              "| request | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
    names = [i["name"] for i in report["items"]] + (["crawl"] if any(
        "crawl" in report["servers"][s].get("cells", {}) for s in order) else [])
    for n in names:
        lines.append(f"| {n} | " + " | ".join(fmt_cell(report["servers"][s].get("cells", {}).get(n)) for s in order) + " |")
    if report.get("skipped"):
        lines += ["", "Left out: " + "; ".join(f"`{n}`: {why}" for n, why in report["skipped"].items())]
    problems = [(s, n, c["first_problem"] or c["first_answer"]) for s in order
                for n, c in report["servers"][s].get("cells", {}).items() if c["wrong"] + c["failed"]]
    if problems:
        lines += ["", "First problem of each cell with errors:", ""]
        lines += [f"- {s} / {n}: {p}" for s, n, p in problems]
    return "\n".join(lines) + "\n"


def _interleaving(report: dict) -> list[str]:
    groups = report.get("interleaved") or []
    groups = [groups] if isinstance(groups, dict) else groups  # one group in the runs before 2026-12-02
    lines = []
    for shared in groups:
        if not shared["cells"]:
            continue
        rounds, every = shared["rounds"], set(shared["cells"]) >= {i["name"] for i in report["items"]}
        cells = "Every cell was" if every else f"Cells {', '.join(f'`{n}`' for n in shared['cells'])} were"
        lines += [f"{cells} measured on {', '.join(shared['servers'])} in turn, all up at once: {rounds} slices "
                  f"of {report['settings']['duration'] / rounds:g} s each per server, the order rotated every round, "
                  "each slice started once every one of them was idle.", ""]
    if lines:
        lines += ["Every other cell was measured on its server's own turn.", ""]
    return lines


def render(path: Path) -> int:
    """Recompute the mix summaries of a results JSON and rewrite its markdown beside it."""
    report = json.loads(path.read_text(encoding="utf-8"))
    sparql_names = [i["name"] for i in report["items"] if i["mix"] == "sparql"]
    doc_names = [i["name"] for i in report["items"] if i["mix"] == "documents"]
    for entry in report["servers"].values():
        if "cells" in entry:
            entry["sparql_mix"] = mix_summary(entry["cells"], sparql_names)
            entry["documents_mix"] = mix_summary(entry["cells"], doc_names)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    markdown = tables(report)
    path.with_suffix(".md").write_text(markdown)
    print(markdown)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--scale", choices=sorted(generate.SCALES))
    size.add_argument("--meetings", type=int)
    size.add_argument("--render", type=Path, help="only rewrite the .md of a results .json")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default /tmp/lodpub-bench/SCALE)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, s")
    parser.add_argument("--rounds", type=int, default=3,
                        help="slices of each interleaved cell per server (INTERLEAVED_CELLS)")
    parser.add_argument("--servers", default=",".join(["lodpub", "lodpub-nocache"] + ANCHORS))
    parser.add_argument("--cells", help="only these cells, comma-separated (e.g. the targets' cells with more "
                        "--rounds, to tell a ratio from the machine's noise; give --results another folder)")
    parser.add_argument("--profile", action="store_true", help="py-spy our server on a document GET and a query")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--corpus", type=Path, help="use this corpus and its current release (built before, e.g. "
                        "`time -v lodpub build --root DIR > LOG`) instead of generating and building")
    parser.add_argument("--build-log", type=Path, help="with --corpus: the log of that build, for its figures")
    args = parser.parse_args(argv)
    if args.render:
        return render(args.render)
    scale = args.scale or f"{args.meetings}m"
    meetings = generate.SCALES[args.scale] if args.scale else args.meetings
    work = args.workdir or Path("/tmp/lodpub-bench") / scale
    if args.corpus and args.corpus.resolve().is_relative_to(work.resolve()):
        raise SystemExit("--corpus must lie outside the scratch folder, which is emptied")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    wanted = args.servers.split(",")
    report: dict = {"scale": scale, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "servers": {},
                    "settings": {"concurrency": args.concurrency, "duration": args.duration, "timeout": args.timeout,
                                 "rounds": args.rounds},
                    "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])}
    started = time.perf_counter()
    if args.corpus:
        root = args.corpus
        report["generate_s"] = None
        text = args.build_log.read_text(encoding="utf-8", errors="replace") if args.build_log else ""
        report["build"] = {"build_s": None, "build_peak_rss_mb": None, **build_figures(text),
                           "releases": str(root / "releases"), "reused": True}
    else:
        root = generate.generate(work / "corpus", meetings)
        report["generate_s"] = round(time.perf_counter() - started, 2)
        print(f"corpus: {root} ({report['generate_s']} s); building ...", flush=True)
        report["build"] = build(root)
    print(f"build: {report['build']}", flush=True)
    release = (Path(report["build"]["releases"]) / "current").resolve()
    nquads = release / "dataset.nq.gz"
    oracle = workload.Oracle(release / "store", BASE)
    sample = oracle.sample()
    items = workload.sparql_mix(oracle, sample, root / "queries") + workload.document_mix(oracle, sample)
    cells = args.cells.split(",") if args.cells else None  # None: every cell, the crawl included
    if cells:
        items = only_cells(items, [name for name in cells if name != "crawl"])
    crawl_items = workload.crawl_mix(oracle) if meetings > 0 and (cells is None or "crawl" in cells) else []
    report["sample"] = sample.__dict__
    report["skipped"] = dict(workload.SKIPPED)
    report["items"] = [{"name": i.name, "mix": i.mix, "query": i.query, "accept": i.accept, "doc_path": i.doc_path}
                       for i in items]
    sparql_names = [i.name for i in items if i.mix == "sparql"]
    doc_names = [i.name for i in items if i.mix == "documents"]
    files = work / "replay"
    replayable: set[str] = set()

    def record(server, cells):
        entry = {"load_s": None if server.load_seconds is None else round(server.load_seconds, 2),
                 "ready_s": None if server.start_seconds is None else round(server.start_seconds, 2),
                 "cells": cells, "sparql_mix": mix_summary(cells, sparql_names),
                 "documents_mix": mix_summary(cells, doc_names)}
        report["servers"][server.name] = entry
        return entry

    makers = {
        # the same server with its SPARQL result cache off: what evaluating each query costs
        "lodpub-nocache": lambda: servers.Ours(work, root, Path(report["build"]["releases"]), name="lodpub-nocache",
                                               env={"LODPUB_SPARQL_CACHE_BYTES": "0"}),
        "bare-flask": lambda: servers.BareFlask(work, files),
        "nginx": lambda: servers.Nginx(work, files),
        "oxigraph": lambda: servers.Oxigraph(work, nquads),
        "virtuoso": lambda: servers.Virtuoso(work, nquads),
        "rdflib-endpoint": lambda: servers.RdflibEndpoint(work, nquads),
    }

    def start_group(names: list[str], stack: contextlib.ExitStack) -> list:
        """Those of `names` that start (each failure recorded in the report), up until `stack` ends."""
        running = []
        for name in names:
            server = makers[name]()
            try:
                stack.enter_context(server)
            except Exception as error:  # noqa: BLE001 - one server failing must not stop the others
                report["servers"][name] = {"error": f"{type(error).__name__}: {error}"}
                print(f"{name} failed: {error}", flush=True)
                continue
            print(f"{name} on {server.base_url} (load {server.load_seconds}, ready {server.start_seconds})", flush=True)
            running.append(server)
        return running

    report["interleaved"] = []
    if "lodpub" in wanted:
        ours = servers.Ours(work, root, Path(report["build"]["releases"]))
        try:
            with ours:
                print(f"lodpub on {ours.base_url} (ready in {ours.start_seconds:.1f}s)", flush=True)
                requests = {ours.name: requests_for(ours, items, set())}
                crawl = run_crawl(ours, crawl_items, args)  # first, while every document is cold
                replayable = capture(ours, requests[ours.name], items, files)
                # then every cell in turn with the servers replaying its bytes, up meanwhile
                with contextlib.ExitStack() as stack:
                    replayers = start_group([name for name in REPLAY_GROUP[1:] if name in wanted], stack)
                    requests.update({server.name: requests_for(server, items, replayable) for server in replayers})
                    names = [item.name for item in items]
                    interleaved = run_interleaved([ours, *replayers], requests, names, args)
                    for server in replayers:
                        server.stop()
                        record(server, interleaved[server.name]).update(server.memory_figures())
                report["interleaved"].append({"servers": [ours.name, *(server.name for server in replayers)],
                                              "cells": names, "rounds": args.rounds})
                entry = record(ours, interleaved[ours.name])
                if crawl:
                    entry["cells"]["crawl"] = crawl
                mine = requests[ours.name]
                if args.profile:
                    args.results.mkdir(parents=True, exist_ok=True)
                    entry["profiles"] = [
                        profile(ours, mine[name], args, args.results / f"profile-{scale}-{name.replace('.', '-')}")
                        for name in ("meeting.html", "meeting.jsonld", "join-4-patterns") if name in mine]
                    if crawl_items:  # cold pages: the meetings the crawl cell did not reach, last first
                        cold = [driver.Request("crawl", ours.base_url + i.doc_path, i.html_check,
                                               {"Accept": "text/html"}) for i in reversed(crawl_items)]
                        entry["profiles"].append(profile(ours, cold, args, args.results / f"profile-{scale}-crawl-html"))
            entry.update(ours.memory_figures())
        except Exception as error:  # noqa: BLE001 - one server failing must not stop the others
            report["servers"]["lodpub"] = {"error": f"{type(error).__name__}: {error}"}
            print(f"lodpub failed: {error}", flush=True)

    def own_cells(server) -> set[str] | None:
        """The cells a server runs on its own turn (None: all it can answer)."""
        if server.name == "lodpub-nocache":
            return set(sparql_names)
        return SLOW.get(server.name) if meetings > 0 else None

    group = [name for name in INTERLEAVED_SERVERS if name in wanted]
    with contextlib.ExitStack() as stack:
        running = start_group(group, stack)
        requests = {server.name: requests_for(server, items, replayable) for server in running}
        shared = [name for name in INTERLEAVED_CELLS if name in sparql_names]
        crawls = {}
        for server in running:  # first, while every document is cold
            if server.name != "lodpub-nocache":
                servers.wait_idle(running)
                crawls[server.name] = run_crawl(server, crawl_items, args)
        interleaved = run_interleaved(running, requests, shared, args)
        for server in running:
            # then each server's other cells on its own, and it stops: work left over from the
            # requests the driver gave up on (timeouts) must not run into the next one's turn
            servers.wait_idle(running)
            own = own_cells(server)
            cells = run_cells(server, requests[server.name], args,
                              (set(requests[server.name]) if own is None else own) - set(shared))
            entry = record(server, {**cells, **interleaved[server.name]})
            if crawls.get(server.name):
                entry["cells"]["crawl"] = crawls[server.name]
            if args.profile and server.name == "lodpub-nocache" and "join-4-patterns" in requests[server.name]:
                args.results.mkdir(parents=True, exist_ok=True)
                entry["profiles"] = [profile(server, requests[server.name]["join-4-patterns"], args,
                                             args.results / f"profile-{scale}-nocache-join-4-patterns")]
            server.stop()
            entry.update(server.memory_figures())
    report["interleaved"].append({"servers": [server.name for server in running], "cells": shared, "rounds": args.rounds})

    for name in ANCHORS:
        if name not in wanted or name in report["servers"]:  # done (or failed) in a group
            continue
        server = makers[name]()
        try:
            with server:
                print(f"{name} on {server.base_url} (load {server.load_seconds}, ready {server.start_seconds})", flush=True)
                crawl = run_crawl(server, crawl_items, args)
                entry = record(server, run_cells(server, requests_for(server, items, replayable), args, own_cells(server)))
                if crawl:
                    entry["cells"]["crawl"] = crawl
            entry.update(server.memory_figures())
        except Exception as error:  # noqa: BLE001
            report["servers"][name] = {"error": f"{type(error).__name__}: {error}"}
            print(f"{name} failed: {error}", flush=True)
    write_report(report, tables, args.results / scale, started)
    return 0


def write_report(report: dict, render: Callable[[dict], str], stem: Path, started: float) -> None:
    """Close a run's report (total time, load during the cells), print its tables (`render`
    makes them from the closed report) and write them with every raw figure to STEM.md and STEM.json."""
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["loadavg_1min"] = {"min": min(LOADAVG, default=None), "max": max(LOADAVG, default=None),
                              "mean": round(sum(LOADAVG) / len(LOADAVG), 2) if LOADAVG else None}
    markdown = render(report)
    print("\n" + markdown)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    stem.with_suffix(".md").write_text(markdown)
    print(f"written: {stem.with_suffix('.md')} and .json (total {report['total_s']} s)")


if __name__ == "__main__":
    sys.exit(main())
