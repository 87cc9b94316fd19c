"""Releases in a remote SPARQL store: load one, switch readers to it, say which one is current.

A release is loaded under its own graph names (server/graph_names.py), next to the release
being served, then checked (every graph holds the number of quads the manifest states), and
only then made current, by one SPARQL Update request on a small control graph — one request,
so atomic (SPARQL 1.1 Update §2.2) — which every front end reads about once a second. A publish
that fails or is killed at any point before that request leaves the previous release served;
its half-loaded graphs are dropped by the next publish. Publishing a release the store already
holds complete only makes it current again (idempotent).

Loading uses the SPARQL 1.1 Graph Store HTTP Protocol when the store has one
(``LODPUB_STORE_GSP_URL``: one POST per chunk of N-Triples), else SPARQL Update
``INSERT { … } WHERE {}`` requests.

Control graph ``{base}releases``::

    <{base}releases> <{base}releases#current> <{base}release/{version}> .
    <{base}release/{version}> <{base}releases#graph> <stored graph> ;   # written before loading
                              <{base}releases#loaded> "…"^^xsd:dateTime ;
                              <{base}releases#complete> true .          # written with the switch
"""
from __future__ import annotations

import datetime as dt
import gzip
import logging
from collections import defaultdict
from typing import Callable

import pyoxigraph as ox
import requests
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

from .config import Settings
from .graph_names import GraphNames
from .release import Release
from .stores import Endpoint, StoreQueryError, StoreUnavailable

log = logging.getLogger(__name__)

#: triples per load request (a few MB of N-Triples)
CHUNK = 20_000


class PublishError(Exception):
    pass


def control_graph(base: str) -> str:
    return base + "releases"


def release_node(base: str, version: str) -> str:
    return f"{base}release/{version}"


def _term(base: str, name: str) -> str:
    return f"<{control_graph(base)}#{name}>"


# --------------------------------------------------------------------------------------------
# Talking to the store
# --------------------------------------------------------------------------------------------

class StoreClient:
    """Raw SPARQL queries and updates against the store (no renaming), and Graph Store loads."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.session = requests.Session()

    def select(self, sparql: str, timeout: float | None = None) -> list[dict]:
        response = self._send("POST", self.endpoint.query_url, data={"query": sparql}, auth=False,
                              headers={"Accept": "application/sparql-results+json"}, timeout=timeout)
        results = ox.parse_query_results(response.content, format=ox.QueryResultsFormat.JSON)
        return [{v.value: row[v] for v in results.variables if row[v] is not None} for row in results]

    def update(self, sparql: str) -> None:
        self._send("POST", self.endpoint.update_url, data={"update": sparql})

    def post_graph(self, graph: str, ntriples: bytes) -> None:
        self._send("POST", self.endpoint.gsp_url, params={"graph": graph}, data=ntriples,
                   headers={"Content-Type": "text/turtle; charset=utf-8"})

    def _send(self, method: str, url: str, auth: bool = True, **kwargs) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = max(self.endpoint.timeout, 60.0)
        try:
            response = self.session.request(method, url, **kwargs)
            if response.status_code == 401 and auth and self.endpoint.user:
                response = self.session.request(method, url, auth=self._auth(response), **kwargs)
        except requests.RequestException as error:
            raise StoreUnavailable(f"the store at {url} did not answer: {error}") from None
        if response.status_code >= 500:
            raise StoreUnavailable(f"the store at {url} answered {response.status_code}: {response.text[:500]}")
        if response.status_code >= 400:
            raise StoreQueryError(f"the store at {url} answered {response.status_code}: {response.text[:500]}")
        return response

    def _auth(self, challenge: requests.Response):
        scheme = challenge.headers.get("WWW-Authenticate", "").split(" ", 1)[0].lower()
        user, password = self.endpoint.user, self.endpoint.password
        return HTTPBasicAuth(user, password) if scheme == "basic" else HTTPDigestAuth(user, password)


def current_version(endpoint: Endpoint, base: str) -> str | None:
    """The version of the release readers are switched to, or None if none was published."""
    rows = StoreClient(endpoint).select(
        f"SELECT ?release WHERE {{ GRAPH <{control_graph(base)}> {{ <{control_graph(base)}> {_term(base, 'current')} ?release }} }}",
        timeout=min(endpoint.timeout, 3.0))
    if not rows:
        return None
    return rows[0]["release"].value[len(base + "release/"):]


def _complete_versions(client: StoreClient, base: str) -> set[str]:
    rows = client.select(f"SELECT ?release WHERE {{ GRAPH <{control_graph(base)}> {{ ?release {_term(base, 'complete')} true }} }}")
    return {r["release"].value[len(base + "release/"):] for r in rows}


# --------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------

def publish(settings: Settings, release: Release, say: Callable[[str], None] = print) -> str:
    """Load `release` into the remote store (unless already there) and make it current."""
    endpoint = Endpoint.from_settings(settings)
    client = StoreClient(endpoint)
    base, version = settings.base, release.version
    names = GraphNames(base, version, list(release.manifest["graphs"]))
    if version in _complete_versions(client, base):
        say(f"release {version} is already in the store: not loaded again")
    else:
        _forget(client, base, version)
        _record_graphs(client, base, version, names)
        _load(client, release, names, say)
        _check_counts(client, release, names)
    _switch(client, base, version)
    say(f"readers switched to release {version}")
    _prune(client, base, version, settings.store_keep_releases, say)
    return version


def _forget(client: StoreClient, base: str, version: str) -> None:
    """Drop what a failed earlier publish of this version may have left."""
    node = release_node(base, version)
    rows = client.select(f"SELECT ?g WHERE {{ GRAPH <{control_graph(base)}> {{ <{node}> {_term(base, 'graph')} ?g }} }}")
    for row in rows:
        client.update(f"DROP SILENT GRAPH <{row['g'].value}>")
    client.update(f"DELETE WHERE {{ GRAPH <{control_graph(base)}> {{ <{node}> ?p ?o }} }}")


def _record_graphs(client: StoreClient, base: str, version: str, names: GraphNames) -> None:
    node = release_node(base, version)
    statements = " ".join(f"<{node}> {_term(base, 'graph')} <{names.stored(g)}> ." for g in names.graphs)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    statements += f' <{node}> {_term(base, "loaded")} "{now}"^^<http://www.w3.org/2001/XMLSchema#dateTime> .'
    client.update(f"INSERT DATA {{ GRAPH <{control_graph(base)}> {{ {statements} }} }}")


def _load(client: StoreClient, release: Release, names: GraphNames, say: Callable[[str], None]) -> None:
    by_graph: dict[str, list[ox.Triple]] = defaultdict(list)
    with gzip.open(release.file("dataset.nq.gz"), "rb") as dump:
        for quad in ox.parse(dump, format=ox.RdfFormat.N_QUADS):
            renamed = names.quad_forward(quad)
            by_graph[renamed.graph_name.value].append(ox.Triple(renamed.subject, renamed.predicate, renamed.object))
    method = "Graph Store Protocol" if client.endpoint.gsp_url else "SPARQL Update"
    total = sum(map(len, by_graph.values()))
    say(f"loading {total} quads in {len(by_graph)} graphs through the {method}")
    for graph, triples in by_graph.items():
        for chunk in _chunks(triples):
            body = ox.serialize(chunk, format=ox.RdfFormat.N_TRIPLES)
            if client.endpoint.gsp_url:
                client.post_graph(graph, body)
            else:
                # INSERT … WHERE {} rather than INSERT DATA: the template may hold blank nodes,
                # which some stores (Virtuoso) refuse in INSERT DATA
                client.update(f"INSERT {{ GRAPH <{graph}> {{\n{body.decode('utf-8')}}} }} WHERE {{}}")


def _chunks(triples: list[ox.Triple]):
    """Chunks of at most CHUNK triples; every triple with a blank node in the first chunk, as a
    blank node label is only the same node within one request."""
    with_blank = [t for t in triples if isinstance(t.subject, ox.BlankNode) or isinstance(t.object, ox.BlankNode)]
    others = [t for t in triples if not (isinstance(t.subject, ox.BlankNode) or isinstance(t.object, ox.BlankNode))]
    first = with_blank + others[:max(0, CHUNK - len(with_blank))]
    yield first
    for start in range(len(first) - len(with_blank), len(others), CHUNK):
        yield others[start:start + CHUNK]


def _check_counts(client: StoreClient, release: Release, names: GraphNames) -> None:
    values = " ".join(f"<{names.stored(g)}>" for g in names.graphs)
    rows = client.select(f"SELECT ?g (COUNT(*) AS ?n) WHERE {{ VALUES ?g {{ {values} }} GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g")
    found = {names.published(r["g"].value): int(r["n"].value) for r in rows}
    expected = {g: n for g, n in release.manifest["graphs"].items()}
    if found != expected:
        wrong = sorted(g for g in expected if found.get(g) != expected[g])
        raise PublishError(f"the store does not hold release {release.version} completely (graphs "
                           f"{', '.join(wrong)}: expected {[expected[g] for g in wrong]}, found "
                           f"{[found.get(g, 0) for g in wrong]}); readers stay on the previous release")


def _switch(client: StoreClient, base: str, version: str) -> None:
    """One update request (atomic): the old pointer out, the new one and the completeness mark in."""
    control, node = control_graph(base), release_node(base, version)
    current = _term(base, "current")
    client.update(f"""
        DELETE WHERE {{ GRAPH <{control}> {{ <{control}> {current} ?old }} }} ;
        INSERT DATA {{ GRAPH <{control}> {{ <{control}> {current} <{node}> . <{node}> {_term(base, 'complete')} true }} }}""")
    if current_version(client.endpoint, base) != version:
        raise PublishError(f"the store did not take the switch to release {version}")


def _prune(client: StoreClient, base: str, current: str, keep: int, say: Callable[[str], None]) -> None:
    """Drop releases beyond the current one and the `keep` most recent others."""
    rows = client.select(f"""SELECT ?release (MAX(?at) AS ?loaded) WHERE {{ GRAPH <{control_graph(base)}> {{
        ?release {_term(base, 'graph')} ?g OPTIONAL {{ ?release {_term(base, 'loaded')} ?at }} }} }} GROUP BY ?release""")
    rows.sort(key=lambda r: r["loaded"].value if "loaded" in r else "", reverse=True)
    versions = [r["release"].value[len(base + "release/"):] for r in rows]
    others = [v for v in versions if v != current]
    for version in others[keep:]:
        _forget(client, base, version)
        say(f"dropped release {version} from the store")
