"""Write a release of a corpus WITHOUT running pySHACL, for serving benchmarks at scales where the
validation takes longer than the time at hand (1M triples: see docs/performance.md).

    python -m bench.unvalidated_build --root /tmp/gen-1m     # → /tmp/gen-1m/releases/current

Never for publishing: the release's validation report says that validation was skipped, and
the corpus must have been validated on its own (`lodpub validate --root`) for the figures to
mean anything. Everything else is `server.release.build`, unchanged.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rdflib import Graph, Literal, Namespace

from server import config, loading, release
from server.validation import Report, ValidatedSources


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench.unvalidated_build")
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = config.from_environment().with_overrides(root=args.root, releases=args.root / "releases")
    started = time.perf_counter()
    base = settings.base
    ontology = loading.parse_files(loading.ontology_file(settings), base)
    shapes = loading.parse_files(loading.shapes_files(settings), base)
    data = loading.parse_files(loading.data_files(settings), base)
    parsed = time.perf_counter() - started
    note = Graph()
    bench = Namespace("urn:bench:")
    note.add((bench.report, bench.note, Literal("validation skipped by bench/unvalidated_build.py (benchmark only)")))
    sources = ValidatedSources(data, ontology, shapes, Report(True, [], note))
    started = time.perf_counter()
    built = release.build(sources, settings)
    print(f"parsed in {parsed:.2f}s (validation SKIPPED); release {built.version} at {built.path} "
          f"({built.manifest['quads']} quads, {time.perf_counter() - started:.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
