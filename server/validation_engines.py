"""The SHACL engines that can validate the sources, and which one runs.

- ``pyshacl``: pySHACL on an rdflib graph, the reference verdict (~1 CPU-second per thousand
  triples here: it re-parses each SPARQL constraint for every focus node).
- ``turbo``: pyshacl-turbo (Rust, pySHACL's semantics and report vocabulary) on an in-memory
  Oxigraph store, ~20-50x faster; used only for shapes made of the constructs it has been
  checked on (server/validation_constructs.py).
- ``auto`` (the default, ``LODPUB_VALIDATION_ENGINE``): ``turbo`` when it is installed and the
  shapes use only checked constructs, else ``pyshacl``, saying why on stderr.

Both return pySHACL's report graph (sh:ValidationReport), which server/validation.py turns into
the same located report whichever engine ran.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable

import pyoxigraph as ox
from rdflib import Graph

from .rdfterms import graph_from_quads
from .validation_constructs import unchecked_constructs

ENGINES = ("auto", "pyshacl", "turbo")

#: (conforms, report graph) of the data's union graph against the shapes
Runner = Callable[[list[ox.Quad], Graph], tuple[bool, Graph]]


class EngineError(Exception):
    """An engine asked for by name that cannot validate these shapes."""


def turbo_available() -> bool:
    return importlib.util.find_spec("pyshacl_turbo") is not None


def choose(requested: str, shapes: Graph, warn: Callable[[str], None] | None = None) -> str:
    """The engine that runs: `requested` itself, or for ``auto`` the fastest one that can."""
    if requested not in ENGINES:
        raise EngineError(f"unknown validation engine {requested!r}: use one of {', '.join(ENGINES)}")
    if requested == "pyshacl":
        return requested
    problem = _turbo_problem(shapes)
    if problem is None:
        return "turbo"
    if requested == "turbo":
        raise EngineError(f"the turbo engine cannot validate: {problem} (use --engine pyshacl or auto)")
    (warn or _stderr)(f"validation: using pySHACL, not the turbo engine: {problem}")
    return "pyshacl"


def _turbo_problem(shapes: Graph) -> str | None:
    if not turbo_available():
        return "pyshacl-turbo is not installed"
    unknown = unchecked_constructs(shapes)
    if unknown:
        return "the shapes use constructs it has not been checked on: " + ", ".join(unknown)
    return None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run_pyshacl(data: list[ox.Quad], shapes: Graph) -> tuple[bool, Graph]:
    import pyshacl
    conforms, report, _ = pyshacl.validate(
        graph_from_quads(data), shacl_graph=shapes, advanced=True, allow_warnings=True, inplace=True)
    return bool(conforms), report


def run_turbo(data: list[ox.Quad], shapes: Graph) -> tuple[bool, Graph]:
    import pyshacl_turbo
    store = ox.Store()
    # the union of the graphs, as pySHACL sees it: each triple once, in the default graph
    store.bulk_extend(ox.Quad(q.subject, q.predicate, q.object) for q in data)
    conforms, report, _ = pyshacl_turbo.validate(store, shacl_graph=shapes, advanced=True, allow_warnings=True)
    return bool(conforms), report


RUNNERS: dict[str, Runner] = {"pyshacl": run_pyshacl, "turbo": run_turbo}
