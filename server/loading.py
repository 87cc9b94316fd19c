"""Read the Turtle sources: each file becomes one named graph, parsed with the configured base.

Parsing is done once, by Oxigraph's parser (fast, and its errors carry line and column).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

from .config import Settings


class SourceError(Exception):
    """A source file that does not parse, located for a person to fix."""

    def __init__(self, path: Path, line: int | None, column: int | None, message: str):
        self.path, self.line, self.column, self.message = path, line, column, message
        where = f"{path}:{line}:{column}" if line else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class SourceFile:
    path: Path
    graph: str  # IRI of the named graph it is loaded into

    @property
    def graph_node(self) -> ox.NamedNode:
        return ox.NamedNode(self.graph)


def data_files(settings: Settings) -> list[SourceFile]:
    """Every data/**/*.ttl, its graph named after its path: data/a/b.ttl → {base}graph/a/b."""
    root = settings.data_dir
    return [
        SourceFile(p, settings.base + "graph/" + p.relative_to(root).with_suffix("").as_posix())
        for p in sorted(root.rglob("*.ttl"))
    ]


def ontology_file(settings: Settings) -> list[SourceFile]:
    return [SourceFile(p, settings.base + "ontology") for p in sorted(settings.ontology_dir.glob("*.ttl"))]


def shapes_files(settings: Settings) -> list[SourceFile]:
    return [SourceFile(p, settings.base + "shapes") for p in sorted(settings.shapes_dir.glob("*.ttl"))]


@dataclass(frozen=True)
class ParsedFile:
    source: SourceFile
    quads: list[ox.Quad]
    prefixes: dict[str, str]  # as declared in the file, expanded against the base


def parse_file(source: SourceFile, base: str) -> ParsedFile:
    """All triples of one Turtle file, as quads in the file's graph."""
    try:
        parser = ox.parse(path=source.path, format=ox.RdfFormat.TURTLE, base_iri=base)
        quads = [ox.Quad(t.subject, t.predicate, t.object, source.graph_node) for t in parser]
        return ParsedFile(source, quads, dict(parser.prefixes))
    except SyntaxError as error:
        raise SourceError(source.path, error.lineno, error.offset, _parser_message(error)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(source.path, None, None, str(error)) from None


def parse_files(sources: list[SourceFile], base: str) -> list[ParsedFile]:
    return [parse_file(source, base) for source in sources]


def all_quads(parsed: list[ParsedFile]) -> list[ox.Quad]:
    return [quad for f in parsed for quad in f.quads]


_RDF_TYPE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")


def locate_subject(parsed: list[ParsedFile], iri: str, predicate: str | None = None
                   ) -> tuple[Path, int | None] | None:
    """File and line where `iri` is written, for error reports: the file holding its
    `predicate` triples if any, else the one typing it, else any file describing it."""
    subject = ox.NamedNode(iri)
    wanted = [ox.NamedNode(predicate)] if predicate and predicate.startswith("http") else []
    for choice in (*wanted, _RDF_TYPE, None):
        found = _locate_in(parsed, subject, choice)
        if found:
            return found
    return None


def _locate_in(parsed: list[ParsedFile], subject: ox.NamedNode, predicate: ox.NamedNode | None
               ) -> tuple[Path, int | None] | None:
    iri = subject.value
    for f in parsed:
        if not any(q.subject == subject and (predicate is None or q.predicate == predicate) for q in f.quads):
            continue
        spellings = [f"<{iri}>"] + [
            f"{prefix}:{iri[len(ns):]}" for prefix, ns in f.prefixes.items() if iri.startswith(ns)
        ]
        lines = f.source.path.read_text(encoding="utf-8").splitlines()
        as_subject = [n for n, line in enumerate(lines, 1) if any(line.startswith(s) for s in spellings)]
        anywhere = [n for n, line in enumerate(lines, 1) if any(_token_in(line, s) for s in spellings)]
        return f.source.path, (as_subject or anywhere or [None])[0]
    return None


def _token_in(line: str, token: str) -> bool:
    at = line.find(token)
    while at != -1:
        end = at + len(token)
        before_ok = at == 0 or line[at - 1] in " \t,;[("
        after_ok = end == len(line) or line[end] in " \t,;.])"
        if before_ok and after_ok:
            return True
        at = line.find(token, at + 1)
    return False


def _parser_message(error: SyntaxError) -> str:
    # Oxigraph prefixes its message with the location, which SourceError already shows.
    message = str(error.msg if hasattr(error, "msg") else error)
    head, sep, tail = message.partition(": ")
    return tail if sep and head.startswith("Parser error") else message
