"""Issue 7's targets, as ratios computed from `bench.run` results (one run per scale).

    python -m bench.targets bench/results/real.json bench/results/100k.json bench/results/1m.json

Prints one markdown table: each target, its ratio per scale (per query where the target is per
query) and whether every figure meets it. A cell a server did not answer right is left out
and named. Nothing here is measured again: it reads the runs' raw figures.
"""
from __future__ import annotations

import argparse
import json
import sys
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


def sparql_cells(report: dict) -> list[str]:
    return [i["name"] for i in report["items"] if i["mix"] == "sparql" and not i.get("ours_only")]


def _fmt(values: dict[str, float | None]) -> str:
    shown = [f"{name} {value}" if value is not None else f"{name} —" for name, value in values.items()]
    return ", ".join(shown)


def _range(values: dict[str, float | None]) -> str:
    known = [v for v in values.values() if v is not None]
    return f"{min(known)}–{max(known)}" if known else "—"


def rows(reports: dict[str, dict]) -> list[tuple[str, str, str, bool | None]]:
    """(target, scale, figures, met) for every target and scale (met None: reported only)."""
    out = []
    for scale, report in reports.items():
        def add(target: str, values: dict, at_least: float, shown: str | None = None) -> None:
            known = [v for v in values.values() if v is not None]
            out.append((target, scale, shown or _fmt(values), bool(known) and min(known) >= at_least))

        add("uncached ≥ 0.8× Oxigraph, engine-bound", ratios(report, "lodpub-nocache", "oxigraph", ENGINE_BOUND), 0.8)
        add("uncached ≥ 1× Virtuoso, light", ratios(report, "lodpub-nocache", "virtuoso", LIGHT), 1.0)
        every = sparql_cells(report)
        if "rdflib-endpoint" in report["servers"]:
            values = ratios(report, "lodpub-nocache", "rdflib-endpoint", every)
            add("uncached ≥ 20× rdflib-endpoint", values, 20.0,
                f"{_range(values)} over {sum(v is not None for v in values.values())} cells both answered")
        p99 = ratios(report, "lodpub-nocache", "oxigraph", every, "p99_ms")
        known = {k: v for k, v in p99.items() if v is not None}
        out.append(("uncached p99 ≤ 2× Oxigraph", scale, f"{_range(known)} ({sum(v <= 2 for v in known.values())} of "
                    f"{len(known)} cells ≤ 2)", bool(known) and max(known.values()) <= 2))
        cached = ratios(report, "lodpub", "virtuoso", every)
        add("cached ≥ 1× Virtuoso, every query", cached, 1.0,
            f"{_range(cached)} over {sum(v is not None for v in cached.values())} cells")
        documents = ratios(report, "lodpub", "bare-flask", DOCUMENTS)
        mix = _mix_ratio(report, "lodpub", "bare-flask")
        add("documents ≥ 0.7× bare Flask", documents, 0.7, f"mix {mix}; per document {_range(documents)}")
        nginx = _mix_ratio(report, "lodpub", "nginx")
        out.append(("documents ÷ nginx (reported)", scale, f"mix {nginx}", None))
        rss = _memory_ratio(report, "peak_rss_mb")
        pss = _memory_ratio(report, "peak_pss_mb")
        out.append(("peak memory ≤ 1.5× Oxigraph", scale, f"RSS {rss}, PSS {pss}", rss is not None and rss <= 1.5))
    return out


def _mix_ratio(report: dict, ours: str, anchor: str) -> float | None:
    mine = (report["servers"].get(ours) or {}).get("documents_mix")
    theirs = (report["servers"].get(anchor) or {}).get("documents_mix")
    return round(mine["rps"] / theirs["rps"], 2) if mine and theirs else None


def _memory_ratio(report: dict, figure: str) -> float | None:
    mine = report["servers"].get("lodpub", {}).get(figure)
    theirs = report["servers"].get("oxigraph", {}).get(figure)
    return round(mine / theirs, 2) if mine and theirs else None


def table(reports: dict[str, dict]) -> str:
    lines = ["| target | scale | ours ÷ anchor | met |", "|---|---|---|---|"]
    for target, scale, figures, met in rows(reports):
        lines.append(f"| {target} | {scale} | {figures} | {'—' if met is None else 'yes' if met else '**no**'} |")
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
