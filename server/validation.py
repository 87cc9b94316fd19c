"""Validate the sources with pySHACL and turn the SHACL report into something a person can act on."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyshacl
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, SH

from . import loading
from .config import Settings
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

    def by_shape(self) -> dict[str, list[Violation]]:
        groups: dict[str, list[Violation]] = defaultdict(list)
        for v in self.violations:
            groups[v.shape].append(v)
        return dict(groups)


@dataclass
class ValidatedSources:
    """Everything parsed from the project, and the verdict on it."""

    data: list[loading.ParsedFile]
    ontology: list[loading.ParsedFile]
    shapes: list[loading.ParsedFile]
    report: Report


def shapes_graph(shapes: list[loading.ParsedFile], base: str) -> Graph:
    graph = graph_from_quads(loading.all_quads(shapes))
    iri_shape = URIRef(base + THING_IRI_SHAPE)
    if (iri_shape, RDF.type, SH.NodeShape) in graph:
        pattern = "^" + re.escape(base) + f"id/{_SLUG}/{_SLUG}$"
        graph.add((iri_shape, SH.pattern, Literal(pattern)))
    return graph


def validate_sources(settings: Settings) -> ValidatedSources:
    """Parse ontology, shapes and data (raising loading.SourceError on a parse error) and validate."""
    base = settings.base
    ontology = loading.parse_files(loading.ontology_file(settings), base)
    shapes = loading.parse_files(loading.shapes_files(settings), base)
    data = loading.parse_files(loading.data_files(settings), base)
    data_graph = graph_from_quads(loading.all_quads(data + ontology))
    report = run_shacl(data_graph, shapes_graph(shapes, base), data)
    return ValidatedSources(data, ontology, shapes, report)


def run_shacl(data_graph: Graph, shacl: Graph, located_in: list[loading.ParsedFile]) -> Report:
    conforms, results, _ = pyshacl.validate(
        data_graph, shacl_graph=shacl, advanced=True, allow_warnings=True, inplace=True
    )
    violations = [_violation(results, r, located_in) for r in results.subjects(RDF.type, SH.ValidationResult)]
    violations.sort(key=lambda v: (v.shape, v.focus, v.path or "", v.message))
    return Report(bool(conforms), violations, results)


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
