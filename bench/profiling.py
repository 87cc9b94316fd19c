"""Summaries of py-spy's raw (collapsed) stacks: where the time goes, by function.

    python -m bench.profiling STACKS.txt [--top 25] [--match pyshacl]

`own` is the share of samples whose innermost frame is the function, `total` the share of
samples with the function anywhere on the stack. Line numbers are dropped so a function is
one row.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def summarize(raw: Path, top: int = 25, match: str | None = None) -> dict:
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    text = raw.read_text(encoding="utf-8", errors="replace") if raw.exists() else ""
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")
                  if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            total[f] = total.get(f, 0) + n

    def best(table):
        rows = sorted(table.items(), key=lambda x: -x[1])
        if match:
            rows = [r for r in rows if match in r[0]]
        return [(f, round(100 * c / samples, 1)) for f, c in rows[:top]] if samples else []
    return {"samples": samples, "top_own_pct": best(own), "top_total_pct": best(total)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profiling")
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match")
    args = parser.parse_args(argv)
    summary = summarize(args.raw, args.top, args.match)
    print(f"{summary['samples']} samples")
    for title, key in (("own time", "top_own_pct"), ("total time (inclusive)", "top_total_pct")):
        print(f"\n{title}:")
        for frame, pct in summary[key]:
            print(f"  {pct:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
