"""The SHACL and SPARQL constructs a shapes graph uses, and which of them the fast engine has been
checked on.

pyshacl-turbo claims pySHACL's semantics, and tests/test_validation_engines.py shows that both
engines give the same report on our data and on every broken case of tests/test_shapes.py. That
evidence covers the constructs of shapes/shapes.ttl only, so a shapes graph that uses anything
else (a new SHACL term, or a SPARQL function or operator not in our constraints) is validated by
pySHACL instead, or refused when the fast engine was asked for by name.
"""
from __future__ import annotations

from collections.abc import Iterable

from rdflib import Graph
from rdflib.namespace import SH
from rdflib.plugins.sparql.parser import parseQuery
from rdflib.plugins.sparql.parserutils import CompValue

#: Every term of the SHACL vocabulary shapes/shapes.ttl uses (after server/validation.py adds
#: the sh:pattern of unmsh:ThingIriShape): shapes, targets, constraint parameters, paths.
CHECKED_SHACL_TERMS = frozenset(
    "IRI NodeShape PropertyShape SPARQLConstraint SPARQLTarget alternativePath class datatype declare "
    "description equals hasValue in inversePath languageIn maxCount maxInclusive message minCount "
    "minInclusive name namespace node nodeKind or path pattern prefix prefixes property "
    "qualifiedMinCount qualifiedValueShape select sparql target targetClass targetSubjectsOf "
    "uniqueLang".split())

#: The grammar rules and built-in functions of the SPARQL queries of shapes/shapes.ttl (sh:select
#: of its constraints and targets), as named by rdflib's SPARQL parser.
CHECKED_SPARQL_CONSTRUCTS = frozenset(
    "AdditiveExpression Aggregate_Count Bind Builtin_DATATYPE Builtin_IF Builtin_NOTEXISTS Builtin_STR "
    "Builtin_SUBSTR Builtin_isNUMERIC ConditionalAndExpression ConditionalOrExpression Filter "
    "GroupClause GroupGraphPatternSub GroupOrUnionGraphPattern MultiplicativeExpression PathAlternative "
    "PathElt PathSequence RelationalExpression SelectQuery SubSelect TriplesBlock pname vars".split())


def shacl_terms(shapes: Graph) -> set[str]:
    """Local names of the SHACL terms written anywhere in the shapes graph."""
    namespace = str(SH)
    return {str(term)[len(namespace):] for triple in shapes for term in triple
            if str(term).startswith(namespace)}


def sparql_constructs(query: str) -> set[str]:
    """Names of the grammar rules and functions one SPARQL query uses."""
    found: set[str] = set()
    _collect(parseQuery(query), found)
    return found


def _collect(node: object, found: set[str]) -> None:
    if isinstance(node, CompValue):
        found.add(node.name)
        for value in node.values():
            _collect(value, found)
    elif isinstance(node, dict):
        for value in node.values():
            _collect(value, found)
    elif isinstance(node, Iterable) and not isinstance(node, (str, bytes)):
        for value in node:
            _collect(value, found)


def unchecked_constructs(shapes: Graph) -> list[str]:
    """What the shapes graph uses that the fast engine has not been checked on (empty: nothing)."""
    unknown = [f"sh:{term}" for term in sorted(shacl_terms(shapes) - CHECKED_SHACL_TERMS)]
    for query in sorted({str(q) for q in shapes.objects(None, SH.select)}):
        try:
            constructs = sparql_constructs(query)
        except Exception as error:  # noqa: BLE001 - rdflib's parser raises pyparsing's errors
            unknown.append(f"a SPARQL query rdflib cannot parse ({error.__class__.__name__})")
            continue
        unknown += [f"SPARQL {name}" for name in sorted(constructs - CHECKED_SPARQL_CONSTRUCTS)]
    return list(dict.fromkeys(unknown))
