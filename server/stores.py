"""Where the triples are: the embedded Oxigraph store of a release, or a remote SPARQL 1.1 store.

Everything the server reads goes through one method, ``store.query(sparql, ...)``, with
pyoxigraph's signature and pyoxigraph terms in the answer, so the Linked Data pages, the
catalogue and the SPARQL endpoint do not know which store they talk to:

- embedded (default): the release's read-only ``pyoxigraph.Store``, opened from its folder;
- remote (``LODPUB_STORE_URL`` set): any SPARQL 1.1 endpoint (Virtuoso, Fuseki, GraphDB …),
  reached through SPARQLWrapper. Each release lives there under its own graph names
  (server/graph_names.py) so several releases coexist and switching is atomic; the remote
  store renames queries on the way out and answers on the way back.

A remote store that cannot be reached raises `StoreUnavailable` (the app answers 503 and
tries again on the next request).
"""
from __future__ import annotations

import ast
import re
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Iterable, Iterator

import pyoxigraph as ox
from SPARQLWrapper import POST, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import EndPointInternalError, SPARQLWrapperException

from .config import Settings
from .graph_names import GraphNames, without_dataset_clauses
from .sparql_protocol import analyse

RESULTS_JSON = "application/sparql-results+json"
NTRIPLES = "application/n-triples"
#: the default graph of a query that names none and does not ask for the union: empty, as in
#: the embedded store (whose own default graph holds nothing)
EMPTY_GRAPH = "urn:x-lodpub:empty-default-graph"


#: a store's refusal of a query it estimates would run too long (Virtuoso: "The estimated
#: execution time 528 (sec) exceeds the limit of 400 (sec)")
_TIME_LIMIT_REFUSAL = re.compile(r"estimated execution time|timed? ?out|time limit", re.I)
_VIRTUOSO_BNODE = re.compile(rb'(?<!\\)"nodeID://')
#: query endpoint URL → its HTTP Server header (which store it is), learnt once per process
_SERVERS: dict[str, str] = {}


class StoreUnavailable(Exception):
    """The remote store did not answer (down, unreachable, timed out, or failing with 5xx)."""


class StoreTimeout(Exception):
    """The store stopped the query at the time limit it was given."""


class StoreQueryError(ValueError):
    """The remote store refused a query (4xx): its message, for the client."""


@dataclass(frozen=True)
class Endpoint:
    """How to reach a remote store (credentials only for writing)."""
    query_url: str
    update_url: str
    gsp_url: str
    user: str
    password: str
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "Endpoint":
        return cls(settings.store_url, settings.store_update_url or settings.store_url, settings.store_gsp_url,
                   settings.store_user, settings.store_password, settings.store_timeout)

    @property
    def label(self) -> str:
        return f"remote SPARQL {self.query_url}"


class Solution(tuple):
    """One SELECT solution: its terms in the order of the variables, also readable by name."""
    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, type(self)._index[key])
        if isinstance(key, ox.Variable):
            return tuple.__getitem__(self, type(self)._index[key.value])
        return tuple.__getitem__(self, key)


class Solutions:
    """SELECT answers of a remote store, with pyoxigraph's `variables` and iteration."""

    def __init__(self, variables: list[ox.Variable], rows: list[tuple]):
        self.variables = variables
        row_type = type("Solution", (Solution,), {"__slots__": (), "_index": {v.value: i for i, v in enumerate(variables)}})
        self._rows = [row_type(r) for r in rows]

    def __iter__(self) -> Iterator[Solution]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def query_form(sparql: str, base_iri: str | None = None) -> str:
    """SELECT, ASK or GRAPH (CONSTRUCT/DESCRIBE), checked by Oxigraph's parser on an empty store:
    a malformed query raises SyntaxError exactly as on the embedded store, before any request."""
    result = ox.Store().query(sparql, base_iri=base_iri)
    if isinstance(result, ox.QueryBoolean):
        return "ASK"
    return "SELECT" if isinstance(result, ox.QuerySolutions) else "GRAPH"


class RemoteStore:
    """One release in a remote SPARQL store, read through SPARQLWrapper."""

    def __init__(self, endpoint: Endpoint, names: GraphNames, base: str):
        self.endpoint, self.names, self.base = endpoint, names, base
        self.graphs = [names.stored(g) for g in names.graphs]

    @property
    def label(self) -> str:
        return self.endpoint.label

    def query(self, sparql: str, *, use_default_graph_as_union: bool = False, base_iri: str | None = None,
              default_graph=None, named_graphs=None, timeout: float | None = None):
        form = query_form(sparql, base_iri or self.base)
        analysed = analyse(sparql)
        text = self.names.rewrite_query(sparql, base_iri or self.base)
        if analysed.declares_dataset and (default_graph is not None or named_graphs is not None):
            text = without_dataset_clauses(text)
        # relative IRIs resolve against the dataset's base, as on the embedded store
        text = f"BASE <{base_iri or self.base}> " + text
        if analysed.form == "DESCRIBE" and self._is_virtuoso():
            # DESCRIBE is the store's choice (SPARQL 1.1 §16.4); ask Virtuoso for the concise
            # bounded description, which the embedded store gives
            text = 'DEFINE sql:describe-mode "CBD" ' + text
        defaults, named = self._dataset(analysed.declares_dataset, use_default_graph_as_union, default_graph, named_graphs)
        body = self._request(text, form, defaults, named, timeout)
        if form != "GRAPH":
            # Virtuoso names blank nodes "nodeID://b1" in JSON results: not a blank node label
            body = _VIRTUOSO_BNODE.sub(b'"', body)
        if form == "ASK":
            return ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
        if form == "SELECT":
            results = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
            back = self.names.term_back
            return Solutions(list(results.variables),
                             [tuple(None if t is None else back(t) for t in row) for row in results])
        return [self.names.triple_back(t) for t in ox.parse(body, format=ox.RdfFormat.N_TRIPLES)]

    def _is_virtuoso(self) -> bool:
        url = self.endpoint.query_url
        if url not in _SERVERS:
            try:
                with urllib.request.urlopen(url + "?query=ASK%7B%7D", timeout=self.endpoint.timeout) as answer:
                    _SERVERS[url] = answer.headers.get("Server", "")
            except OSError as error:
                raise StoreUnavailable(f"the store at {url} did not answer: {error}") from None
        return _SERVERS[url].startswith("Virtuoso/")

    def _dataset(self, declares_dataset, union, default_graph, named_graphs) -> tuple[list[str], list[str]]:
        """The protocol dataset: the release's graphs, unless the caller or the query names one."""
        if default_graph is not None or named_graphs is not None:
            return ([self.names.stored(_iri(g)) for g in default_graph or []] or [EMPTY_GRAPH],
                    [self.names.stored(_iri(g)) for g in named_graphs or []] or [EMPTY_GRAPH])
        if declares_dataset:
            return [], []  # FROM / FROM NAMED of the query (renamed) define it
        return (self.graphs if union else [EMPTY_GRAPH]), self.graphs

    def _request(self, text: str, form: str, defaults: list[str], named: list[str], timeout) -> bytes:
        wrapper = SPARQLWrapper(self.endpoint.query_url)
        wrapper.setMethod(POST)
        wrapper.setQuery(text)
        wrapper.setOnlyConneg(True)
        wrapper.addCustomHttpHeader("Accept", NTRIPLES if form == "GRAPH" else RESULTS_JSON)
        for graph in defaults:
            wrapper.addDefaultGraph(graph)
        for graph in named:
            wrapper.addNamedGraph(graph)
        if timeout:
            # the store's own limit, in ms (Virtuoso, Fuseki), so that the work stops too, not only
            # our wait (the evaluator is killed at the limit; Virtuoso may overshoot it twofold)
            wrapper.addParameter("timeout", str(max(1, int(timeout * 1000))))
            wrapper.setTimeout(int(timeout) + 5)
        else:
            wrapper.setTimeout(int(self.endpoint.timeout) + 1)
        return _perform(wrapper, limited=bool(timeout))


def _perform(wrapper: SPARQLWrapper, limited: bool = False) -> bytes:
    try:
        response = wrapper.query().response
        # Virtuoso's "anytime" answer: a partial result at the time limit, flagged in headers
        if (response.headers.get("X-SQL-State") or "").upper() == "S1TAT":
            raise StoreTimeout(response.headers.get("X-SQL-Message") or "time limit reached")
        return response.read()
    except EndPointInternalError as error:
        message = _store_message(error)
        if limited and _TIME_LIMIT_REFUSAL.search(message):
            raise StoreTimeout(message) from None  # refused up front: it would run past the limit
        if limited:  # a client's query the store failed on: the client hears the store's words
            raise StoreQueryError(message) from None
        raise StoreUnavailable(f"the store failed: {message}") from None
    except SPARQLWrapperException as error:  # 400, 401, 403, 404, 414: the store's message
        raise StoreQueryError(_store_message(error)) from None
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace") if error.fp else str(error)
        if error.code >= 500:
            raise StoreUnavailable(f"the store answered {error.code}: {_short(detail)}") from None
        raise StoreQueryError(_short(detail)) from None
    except (socket.timeout, TimeoutError) as error:
        if limited:  # a query with a time limit that the store did not stop in time
            raise StoreTimeout(str(error)) from None
        raise StoreUnavailable(f"the store at {wrapper.endpoint} did not answer in time: {error}") from None
    except (urllib.error.URLError, ConnectionError, OSError) as error:
        raise StoreUnavailable(f"the store at {wrapper.endpoint} did not answer: {error}") from None


def _store_message(error: SPARQLWrapperException) -> str:
    """The store's own words from SPARQLWrapper's exception ("…Response: b'…'"), without the
    query it echoes back."""
    text = str(error)
    _, found, response = text.partition("Response:")
    if found:
        try:
            text = ast.literal_eval(response.strip()).decode("utf-8", "replace")
        except (ValueError, SyntaxError, AttributeError):
            text = response
    return _short(text.split("SPARQL query:")[0])


def _short(message: str, limit: int = 600) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[:limit] + " …"


def _iri(graph) -> str:
    return graph.value if isinstance(graph, ox.NamedNode) else str(graph)


def open_remote(settings: Settings, version: str, graphs: Iterable[str]) -> RemoteStore:
    return RemoteStore(Endpoint.from_settings(settings), GraphNames(settings.base, version, list(graphs)), settings.base)
