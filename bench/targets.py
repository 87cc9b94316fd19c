"""Issue 7's targets, as ratios computed from `bench.run` results (one run per scale).

    python -m bench.targets bench/results/real.json bench/results/100k.json bench/results/1m.json

Prints one markdown table: each target, its ratio per scale (per query where the target is per
query) and whether every figure meets it. A cell a server did not answer right is left out
and named. Nothing here is measured again: it reads the runs' raw figures.

For a target not met, the last column says which of its cells any change to our server could
still meet, by the ceilings measured in the same run: a Flask handler returning the same bytes
on the same gunicorn settings (`bare-flask`: the framework's own limit) and nginx serving them
as a static file (the machine's limit for any HTTP server). A cell whose target asks for more
requests/s than bare Flask (or nginx) managed, or for a p99 below bare Flask's own, is out of
reach for a Flask app on this machine, whatever the app does. For memory, the floor is our
tree's size at rest, before its first request.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

ENGINE_BOUND = ("count-by-commission", "join-4-patterns", "text-contains")
LIGHT = ("describe-meeting", "labels-ar", "ask")
DOCUMENTS = ("meeting.html", "meeting.jsonld", "meeting.ttl", "commission.html", "commission.jsonld", "commission.ttl")


def _cell(report: dict, server: str, name: str) -> dict | None:
    cell = report["servers"].get(server, {}).get("cells", {}).get(name)
    if not cell or cell["wrong"] or cell["failed"] or not cell["ok"]:
        return None
    return cell


def ratios(report: dict, ours: str, anchor: str, names, figure: str = "rps") -> dict[str, float | None]:
    """ours ÷ anchor for each named cell both answered right (None where one did not)."""
    out = {}
    for name in names:
        mine, theirs = _cell(report, ours, name), _cell(report, anchor, name)
        out[name] = round(mine[figure] / theirs[figure], 2) if mine and theirs and theirs[figure] else None
    return out


def round_ratios(report: dict, ours: str, anchor: str, name: str) -> list[float]:
    """ours ÷ anchor round by round, for a cell measured in turns (sorted; [] otherwise): how far
    the machine's noise moves the ratio within one run."""
    mine, theirs = _cell(report, ours, name), _cell(report, anchor, name)
    if not mine or not theirs or not mine.get("slice_rps") or len(mine["slice_rps"]) != len(theirs.get("slice_rps", ())):
        return []
    return sorted(round(a / b, 2) for a, b in zip(mine["slice_rps"], theirs["slice_rps"]) if b)


def sparql_cells(report: dict) -> list[str]:
    return [i["name"] for i in report["items"] if i["mix"] == "sparql" and not i.get("ours_only")]


def _fmt(values: dict[str, float | None], rounds: dict[str, list[float]] | None = None) -> str:
    def one(name: str, value: float | None) -> str:
        if value is None:
            return f"{name} —"
        spread = (rounds or {}).get(name)
        return f"{name} {value}" + (f" (rounds {spread[0]}–{spread[-1]})" if len(spread or ()) > 1 else "")
    return ", ".join(one(name, value) for name, value in values.items())


def _range(values: dict[str, float | None]) -> str:
    known = [v for v in values.values() if v is not None]
    return f"{min(known)}–{max(known)}" if known else "—"


Row = tuple[str, str, str, bool | None, str]


def rows(reports: dict[str, dict]) -> list[Row]:
    """(target, scale, figures, met, reach) for every target and scale (met None: reported
    only; reach: what the ceilings of the run leave within reach of the cells not met)."""
    out = []
    for scale, report in reports.items():
        def add(target: str, anchor: str, names, at_least: float, shown: Callable[[dict], str] | None = None,
                ours: str = "lodpub-nocache") -> None:
            values = ratios(report, ours, anchor, names)
            known = [v for v in values.values() if v is not None]
            failed = ours_failed(report, ours, anchor, names)
            rounds = {name: round_ratios(report, ours, anchor, name) for name in values}
            out.append((target, scale, (shown(values) if shown else _fmt(values, rounds)) + _failures(failed),
                        bool(known) and min(known) >= at_least and not failed, rate_reach(report, anchor, values, at_least)))

        add("uncached ≥ 0.8× Oxigraph, engine-bound", "oxigraph", ENGINE_BOUND, 0.8)
        add("uncached ≥ 1× Virtuoso, light", "virtuoso", LIGHT, 1.0)
        every = sparql_cells(report)
        if "rdflib-endpoint" in report["servers"]:
            add("uncached ≥ 20× rdflib-endpoint", "rdflib-endpoint", every, 20.0,
                lambda values: f"{_range(values)} over {sum(v is not None for v in values.values())} cells both answered")
        p99 = ratios(report, "lodpub-nocache", "oxigraph", every, "p99_ms")
        known = {k: v for k, v in p99.items() if v is not None}
        failed = ours_failed(report, "lodpub-nocache", "oxigraph", every)
        out.append(("uncached p99 ≤ 2× Oxigraph", scale, f"{_range(known)} ({sum(v <= 2 for v in known.values())} of "
                    f"{len(known)} cells ≤ 2)" + _failures(failed), bool(known) and max(known.values()) <= 2 and not failed,
                    p99_reach(report, known, 2.0)))
        add("cached ≥ 1× Virtuoso, every query", "virtuoso", every, 1.0, ours="lodpub",
            shown=lambda values: f"{_range(values)} over {sum(v is not None for v in values.values())} cells")
        mix = _mix_ratio(report, "lodpub", "bare-flask")
        add("documents ≥ 0.7× bare Flask", "bare-flask", DOCUMENTS, 0.7, ours="lodpub",
            shown=lambda values: f"mix {mix}; per document {_range(values)}")
        nginx = _mix_ratio(report, "lodpub", "nginx")
        out.append(("documents ÷ nginx (reported)", scale, f"mix {nginx}", None, ""))
        rss = _memory_ratio(report, "peak_rss_mb")
        pss = _memory_ratio(report, "peak_pss_mb")
        out.append(("peak memory ≤ 1.5× Oxigraph", scale, f"RSS {rss}, PSS {pss}", rss is not None and rss <= 1.5,
                    memory_reach(report, 1.5) if rss is None or rss > 1.5 else ""))
    return out


def ours_failed(report: dict, ours: str, anchor: str, names) -> dict[str, str]:
    """The cells the anchor answered right and `ours` did not, with the first problem seen:
    no ratio, and the target is not met (a cell only the anchor failed is left out)."""
    failed = {}
    for name in names:
        if _cell(report, anchor, name) and not _cell(report, ours, name):
            cell = report["servers"].get(ours, {}).get("cells", {}).get(name) or {}
            failed[name] = cell.get("first_problem") or "not measured"
    return failed


def _failures(failed: dict[str, str]) -> str:
    return "".join(f"; ours not right on {name} ({problem})" for name, problem in failed.items())


def _counted(out_of_reach: dict[str, list[str]], within: list[str]) -> str:
    parts = [f"{len(names)} {why}" for why, names in out_of_reach.items() if names]
    parts.append(f"{len(within)} within reach" + (f" ({', '.join(within)})" if within else ""))
    return "; ".join(parts)


def rate_reach(report: dict, anchor: str, values: dict[str, float | None], at_least: float) -> str:
    """For the cells below `at_least` × the anchor's rate: how many need more requests/s than
    nginx, or than bare Flask, managed on the same cell in the same run."""
    unmet = [name for name, value in values.items() if value is not None and value < at_least]
    if not unmet:
        return ""
    out_of_reach: dict[str, list[str]] = {"above nginx's rate": [], "above bare Flask's rate": []}
    within = []
    for name in unmet:
        needed = at_least * _cell(report, anchor, name)["rps"]
        nginx, flask = _cell(report, "nginx", name), _cell(report, "bare-flask", name)
        if nginx and needed > nginx["rps"]:
            out_of_reach["above nginx's rate"].append(name)
        elif flask and needed > flask["rps"]:
            out_of_reach["above bare Flask's rate"].append(name)
        else:
            within.append(name)
    return _counted(out_of_reach, within)


def p99_reach(report: dict, p99_ratios: dict[str, float], at_most: float) -> str:
    """For the cells whose p99 is over `at_most` × Oxigraph's: how many ask for a p99 below
    the one bare Flask itself had on the same cell."""
    unmet = [name for name, value in p99_ratios.items() if value > at_most]
    if not unmet:
        return ""
    out_of_reach: dict[str, list[str]] = {"below bare Flask's own p99": []}
    within = []
    for name in unmet:
        flask = _cell(report, "bare-flask", name)
        if flask and flask["p99_ms"] > at_most * _cell(report, "oxigraph", name)["p99_ms"]:
            out_of_reach["below bare Flask's own p99"].append(name)
        else:
            within.append(name)
    return _counted(out_of_reach, within)


def memory_reach(report: dict, at_most: float) -> str:
    """Our tree at rest (ready, before its first request) against the bound on its peak."""
    ours, theirs = report["servers"].get("lodpub", {}), report["servers"].get("oxigraph", {})
    if not ours.get("rest_rss_mb") or not theirs.get("peak_rss_mb"):
        return "at rest: not measured"
    rest = round(ours["rest_rss_mb"] / theirs["peak_rss_mb"], 2)
    return (f"at rest, before any request, RSS already {rest}× Oxigraph's peak "
            f"({ours['rest_rss_mb']} / {theirs['peak_rss_mb']} MiB; PSS {ours.get('rest_pss_mb')})")


def _mix_ratio(report: dict, ours: str, anchor: str) -> float | None:
    mine = (report["servers"].get(ours) or {}).get("documents_mix")
    theirs = (report["servers"].get(anchor) or {}).get("documents_mix")
    return round(mine["rps"] / theirs["rps"], 2) if mine and theirs else None


def _memory_ratio(report: dict, figure: str) -> float | None:
    mine = report["servers"].get("lodpub", {}).get(figure)
    theirs = report["servers"].get("oxigraph", {}).get(figure)
    return round(mine / theirs, 2) if mine and theirs else None


def table(reports: dict[str, dict]) -> str:
    lines = ["| target | scale | ours ÷ anchor | met | cells not met: out of reach by the run's ceilings |",
             "|---|---|---|---|---|"]
    for target, scale, figures, met, reach in rows(reports):
        lines.append(f"| {target} | {scale} | {figures} | {'—' if met is None else 'yes' if met else '**no**'} | "
                     f"{reach or '—'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="bench.run results .json, one per scale")
    args = parser.parse_args(argv)
    reports = {}
    for path in args.results:
        report = json.loads(path.read_text(encoding="utf-8"))
        reports[report["scale"]] = report
    print(table(reports), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
