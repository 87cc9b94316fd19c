"""Validate the sources with SHACL and turn the report into something a person can act on.

The engine (pySHACL, the reference, or pyshacl-turbo) is chosen in server/validation_engines.py;
both give pySHACL's report graph, so the report below is the same whichever ran.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, SH

from . import loading, validation_engines
from .config import Settings
from .progress import Progress
from .rdfterms import graph_from_quads

#: The shape that checks every IRI of ours follows {base}id/{kind}/{slug}; the pattern depends on
#: the configured base, so it is added here rather than written in shapes/.
THING_IRI_SHAPE = "shapes#ThingIriShape"
_SLUG = "[a-z0-9]+(-[a-z0-9]+)*"


@dataclass(frozen=True)
class Violation:
    focus: str
    path: str | None
    value: str | None
    message: str
    severity: str  # Violation, Warning or Info
    shape: str
    constraint: str
    location: tuple[Path, int | None] | None = None

    def where(self) -> str:
        if not self.location:
            return ""
        path, line = self.location
        return f"{path}:{line}" if line else str(path)


@dataclass
class Report:
    conforms: bool
    violations: list[Violation] = field(default_factory=list)
    graph: Graph | None = None  # the SHACL validation report itself (sh:ValidationReport)
    engine: str = "pyshacl"  # which engine gave the verdict (server/validation_engines.py)

    def by_shape(self) -> dict[str, list[Violation]]:
        groups: dict[str, list[Violation]] = defaultdict(list)
        for v in self.violations:
            groups[v.shape].append(v)
        return dict(groups)


@dataclass
class ParsedSources:
    """Everything parsed from the project."""

    data: list[loading.ParsedFile]
    ontology: list[loading.ParsedFile]
    shapes: list[loading.ParsedFile]


@dataclass
class ValidatedSources(ParsedSources):
    """Everything parsed from the project, and the verdict on it."""

    report: Report


def shapes_graph(shapes: list[loading.ParsedFile], base: str) -> Graph:
    graph = graph_from_quads(loading.all_quads(shapes))
    iri_shape = URIRef(base + THING_IRI_SHAPE)
    if (iri_shape, RDF.type, SH.NodeShape) in graph:
        pattern = "^" + re.escape(base) + f"id/{_SLUG}/{_SLUG}$"
        graph.add((iri_shape, SH.pattern, Literal(pattern)))
    return graph


def validate_sources(settings: Settings, engine: str | None = None,
                     progress: Progress | None = None) -> ValidatedSources:
    """Parse ontology, shapes and data (raising loading.SourceError on a parse error) and validate
    with `engine` (default: settings.validation_engine; validation_engines.EngineError if it
    cannot validate these shapes)."""
    return validate_parsed(parse_sources(settings, progress), settings, engine, progress)


def parse_sources(settings: Settings, progress: Progress | None = None) -> ParsedSources:
    """Ontology, shapes and data parsed (loading.SourceError on a parse error, or when one of the
    three folders holds no Turtle file: nothing unvalidated or unexplained is published)."""
    sources = [loading.ontology_file(settings), loading.shapes_files(settings), loading.data_files(settings)]
    for folder, files in zip((settings.ontology_dir, settings.shapes_dir, settings.data_dir), sources):
        if not files:
            raise loading.SourceError(folder, None, None, "no Turtle file (*.ttl) here; a project needs "
                                      "ontology/, shapes/ and data/ (is --root the right folder?)")
    with (progress or Progress.off()).phase("parse", total=sum(map(len, sources))) as advance:
        ontology, shapes, data = ([_parsed(source, settings.base, advance) for source in group] for group in sources)
    return ParsedSources(data, ontology, shapes)


def validate_parsed(parsed: ParsedSources, settings: Settings, engine: str | None = None,
                    progress: Progress | None = None) -> ValidatedSources:
    """The parsed sources with SHACL's verdict on them, from `engine` (as validate_sources)."""
    shacl = shapes_graph(parsed.shapes, settings.base)
    chosen = validation_engines.choose(engine or settings.validation_engine, shacl)
    with (progress or Progress.off()).phase(f"validate ({chosen})"):
        report = run_shacl(loading.all_quads(parsed.data + parsed.ontology), shacl, parsed.data, chosen)
    return ValidatedSources(parsed.data, parsed.ontology, parsed.shapes, report)


def _parsed(source: loading.SourceFile, base: str, advance) -> loading.ParsedFile:
    parsed = loading.parse_file(source, base)
    advance(1)
    return parsed


def run_shacl(data: list, shacl: Graph, located_in: list[loading.ParsedFile], engine: str = "pyshacl") -> Report:
    """Validate the union of `data` (quads) against `shacl` with one engine; locate each result in
    the files of `located_in`."""
    conforms, results = validation_engines.RUNNERS[engine](data, shacl)
    violations = [_violation(results, r, located_in) for r in results.subjects(RDF.type, SH.ValidationResult)]
    violations.sort(key=lambda v: (v.shape, v.focus, v.path or "", v.message, v.constraint, v.value or ""))
    return Report(conforms, violations, results, engine)


def _violation(report: Graph, result, located_in: list[loading.ParsedFile]) -> Violation:
    def one(predicate):
        value = report.value(result, predicate)
        return None if value is None else str(value)

    focus = one(SH.focusNode) or ""
    path = one(SH.resultPath)
    return Violation(
        focus=focus,
        path=path,
        value=one(SH.value),
        message=_english_message(list(report.objects(result, SH.resultMessage))),
        severity=_local_name(one(SH.resultSeverity) or str(SH.Violation)),
        shape=one(SH.sourceShape) or "",
        constraint=_local_name(one(SH.sourceConstraintComponent) or ""),
        location=loading.locate_subject(located_in, focus, path) if focus.startswith("http") else None,
    )


_ARABIC = re.compile("[\u0600-\u06FF]")


def _english_message(messages: list) -> str:
    """The @en message; pySHACL drops the tags of SPARQL constraints' messages, so else the one
    without Arabic script."""
    tagged = [m for m in messages if getattr(m, "language", None) == "en"]
    latin = [m for m in messages if not _ARABIC.search(str(m))]
    chosen = tagged or latin or messages
    return str(sorted(chosen)[0]) if chosen else ""


def _local_name(iri: str) -> str:
    return re.split(r"[#/]", iri)[-1]


def format_report(report: Report) -> str:
    """A plain-text report, grouped by shape: focus node, path, value, message, severity, file:line."""
    if report.conforms and not report.violations:
        return "Conforms: the data satisfies every shape."
    lines = [f"{'Conforms' if report.conforms else 'Does not conform'}: {len(report.violations)} result(s)"]
    for shape, group in report.by_shape().items():
        lines.append(f"\nShape {shape} ({len(group)}):")
        for v in group:
            lines.append(f"  [{v.severity}] {v.message}")
            lines.append(f"    focus node: {v.focus}" + (f"  ({v.where()})" if v.location else ""))
            if v.path:
                lines.append(f"    path:       {v.path}")
            if v.value is not None:
                lines.append(f"    value:      {v.value}")
            lines.append(f"    constraint: {v.constraint}")
    return "\n".join(lines)
