"""Documents of hubs: the statements pointing at a thing are kept up to a limit per property
(`LODPUB_MAX_INBOUND_PER_PROPERTY`), its own statements always in full, and the HTML page says
how many more there are and links to the SPARQL query that lists them all; the RDF forms say
the same in Hydra Core terms."""
from __future__ import annotations

import html
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef
from pyld import jsonld
from rdflib.compare import isomorphic

HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")


def _hub(built, base: str) -> tuple[str, str, list[str]]:
    """A thing of the real data that several things point at with one property: its IRI, the
    property, and the pointing things, by IRI."""
    store = built.open_store()
    row = next(iter(store.query(f"""
        SELECT ?o ?p (COUNT(DISTINCT ?s) AS ?n) WHERE {{
          ?s ?p ?o FILTER(isIRI(?s) && isIRI(?o) && STRSTARTS(STR(?o), "{base}id/")) }}
        GROUP BY ?o ?p HAVING (COUNT(DISTINCT ?s) >= 2) ORDER BY DESC(?n) ?o ?p LIMIT 1""",
        use_default_graph_as_union=True)))
    hub, predicate = row["o"].value, row["p"].value
    pointing = sorted(r["s"].value for r in store.query(
        f"SELECT DISTINCT ?s WHERE {{ ?s <{predicate}> <{hub}> }}", use_default_graph_as_union=True))
    return hub, predicate, pointing


#: the page's "and N more" link under "Referred to by"
MORE = re.compile(r'<p class="more"><a href="([^"]+)">([^<]+)</a></p>')


@pytest.fixture(scope="module")
def clients(built, settings):
    from server.app import create_app
    return {limit: create_app(settings.with_overrides(max_inbound_per_property=limit)).test_client()
            for limit in (0, 1)}


def _turtle(client, path: str) -> Graph:
    response = client.get(path + ".ttl")
    assert response.status_code == 200
    return Graph().parse(data=response.get_data(as_text=True), format="turtle")


def test_a_hubs_document_keeps_the_first_pointing_statements_and_all_its_own(built, settings, clients):
    hub, predicate, pointing = _hub(built, settings.base)
    path = "/doc/" + hub[len(settings.base) + len("id/"):]
    full, cut = _turtle(clients[0], path), _turtle(clients[1], path)
    assert sorted(str(s) for s in full.subjects(URIRef(predicate), URIRef(hub))) == pointing
    assert [str(s) for s in cut.subjects(URIRef(predicate), URIRef(hub))] == pointing[:1]  # the first by IRI
    own = {(p, o) for p, o in cut.predicate_objects(URIRef(hub)) if p != HYDRA.collection}
    assert own == set(full.predicate_objects(URIRef(hub)))  # its own: all


def test_the_page_of_a_hub_says_how_many_more_and_links_to_all_of_them(built, settings, clients):
    hub, predicate, pointing = _hub(built, settings.base)
    path = "/doc/" + hub[len(settings.base) + len("id/"):]
    page = clients[1].get(path + ".html", headers={"Accept-Language": "en"})
    links = {}
    for href, text in MORE.findall(page.get_data(as_text=True)):  # one per property cut
        link = urlsplit(html.unescape(href))
        assert link.path == "/sparql"
        links[parse_qs(link.query)["query"][0]] = text
    [(query, text)] = [(q, t) for q, t in links.items() if f"<{predicate}>" in q]
    assert text == f"and {len(pointing) - 1} more: all of them (SPARQL)"
    answer = clients[1].get("/sparql", query_string={"query": query},
                            headers={"Accept": "application/sparql-results+json"})
    listed = [b["thing"]["value"] for b in json.loads(answer.get_data())["results"]["bindings"]]
    assert listed == pointing
    arabic = clients[1].get(path + ".html", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    assert f"و{len(pointing) - 1} غيرها" in arabic
    assert MORE.findall(clients[0].get(path + ".html").get_data(as_text=True)) == []


def _sparql_listing(client, url: str, base: str) -> list[str]:
    link = urlsplit(url)
    assert f"{link.scheme}://{link.netloc}{link.path}" == base + "sparql"
    answer = client.get("/sparql", query_string={"query": parse_qs(link.query)["query"][0]},
                        headers={"Accept": "application/sparql-results+json"})
    return [b["thing"]["value"] for b in json.loads(answer.get_data())["results"]["bindings"]]


def _graph(client, path: str, fmt: str) -> Graph:
    """The document as rdflib reads it (JSON-LD through pyld, with our context from the app)."""
    body = client.get(f"{path}.{fmt}").get_data()
    if not fmt.startswith("jsonld"):
        return Graph().parse(data=body, format={"ttl": "turtle", "nt": "nt", "rdf": "xml"}[fmt])

    def our_context(url, options=None):
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": client.get("/context.jsonld").get_json()}
    nquads = jsonld.to_rdf(json.loads(body), {"format": "application/n-quads", "documentLoader": our_context})
    return Graph().parse(data=nquads, format="nt")


@pytest.mark.parametrize("fmt", ["ttl", "nt", "rdf", "jsonld"])
def test_the_rdf_forms_of_a_hub_say_what_was_cut_in_hydra_terms(built, settings, clients, fmt):
    """A harvester of a cut document learns, from the data alone, that the statements with this
    property are a collection of N things, not the ones it got, and where to get them all."""
    hub, predicate, pointing = _hub(built, settings.base)
    path = "/doc/" + hub[len(settings.base) + len("id/"):]
    graph = _graph(clients[1], path, fmt)
    [collection] = [c for c in graph.objects(URIRef(hub), HYDRA.collection)
                    if (graph.value(graph.value(c, HYDRA.manages), HYDRA.property)) == URIRef(predicate)]
    manages = graph.value(collection, HYDRA.manages)
    assert (collection, RDF.type, HYDRA.Collection) in graph
    assert graph.value(manages, HYDRA.object) == URIRef(hub)
    assert graph.value(collection, HYDRA.totalItems) == Literal(len(pointing), datatype=XSD.nonNegativeInteger)
    assert str(collection).startswith(settings.base + "doc/")  # named under the document, not a blank node
    assert _sparql_listing(clients[1], str(graph.value(collection, RDFS.seeAlso)), settings.base) == pointing
    assert isomorphic(graph, _turtle(clients[1], path))  # the same graph in every form
    assert not list(_graph(clients[0], path, fmt).triples((None, HYDRA.collection, None)))  # nothing cut


def test_the_framed_json_ld_of_a_hub_embeds_what_was_cut(built, settings, clients):
    """The framed form holds what is reachable from the thing: the collections too."""
    from tests.test_linked_data_helpers import reachable
    hub, predicate, pointing = _hub(built, settings.base)
    path = "/doc/" + hub[len(settings.base) + len("id/"):]
    framed = _graph(clients[1], path, "jsonld?profile=framed")
    collection = framed.value(URIRef(hub), HYDRA.collection)
    assert framed.value(collection, HYDRA.totalItems) == Literal(len(pointing), datatype=XSD.nonNegativeInteger)
    assert isomorphic(framed, reachable(_turtle(clients[1], path), hub))


@pytest.fixture(scope="module")
def dated_hub(tmp_path_factory):
    """A release of the benchmark's generator at a small scale, where ESCWA organised several
    meetings of different dates, and an app that keeps 2 incoming statements per property."""
    import subprocess
    import sys
    from server.app import create_app
    from server.config import PROJECT_ROOT, Settings
    sys.path.insert(0, str(PROJECT_ROOT))
    from bench import generate
    root = generate.generate(tmp_path_factory.mktemp("dated") / "corpus", meetings=12, seed=3)
    built = subprocess.run([sys.executable, "-m", "server.cli", "build", "--root", str(root)], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    settings = Settings(root=root, releases=root / "releases", access_log=False, max_inbound_per_property=2)
    return settings, create_app(settings).test_client()


def test_a_cut_hub_keeps_its_most_recent_meetings(dated_hub):
    """A reader of a commission's page, and a harvester of its data, get its latest meetings,
    not the first ones in alphabetical order of their IRIs; the "all of them" query lists them
    in the same order."""
    settings, client = dated_hub
    escwa = settings.base + "id/organization/escwa"
    organizer = "https://schema.org/organizer"
    from server.release import current_release
    store = current_release(settings.releases).open_store()
    dated = [(r["start"].value, r["m"].value) for r in store.query(
        f"SELECT ?m ?start WHERE {{ ?m <{organizer}> <{escwa}> ; <https://schema.org/startDate> ?start }}",
        use_default_graph_as_union=True)]
    assert len(dated) >= 4 and len({start for start, _ in dated}) == len(dated)
    newest_first = [m for _, m in sorted(dated, key=lambda d: _instant(d[0]), reverse=True)]
    kept = [str(s) for s in _turtle(client, "/doc/organization/escwa").subjects(URIRef(organizer), URIRef(escwa))]
    assert sorted(kept) == sorted(newest_first[:2])
    page = client.get("/doc/organization/escwa.html", headers={"Accept-Language": "en"}).get_data(as_text=True)
    queries = [parse_qs(urlsplit(html.unescape(href)).query)["query"][0] for href, _ in MORE.findall(page)]
    [query] = [q for q in queries if f"<{organizer}>" in q]
    answer = client.get("/sparql", query_string={"query": query}, headers={"Accept": "application/sparql-results+json"})
    assert [b["thing"]["value"] for b in answer.get_json()["results"]["bindings"]] == newest_first


def test_a_cut_hubs_page_lists_the_meetings_it_keeps_newest_first(dated_hub):
    """The page goes on where its "all of them" query starts: the kept meetings in the same order
    (most recent first), not by name."""
    settings, _ = dated_hub
    from server.app import create_app
    client = create_app(settings.with_overrides(max_inbound_per_property=4)).test_client()
    organizer = "https://schema.org/organizer"
    page = client.get("/doc/organization/escwa.html", headers={"Accept-Language": "en"}).get_data(as_text=True)
    incoming = page[page.index('<section class="incoming"'):]
    listed = re.search(rf'title="{re.escape(organizer)}">.*?<ul class="values">(.*?)</ul>', incoming, re.S).group(1)
    links = re.findall(r'<li><a href="([^"]+)"[^>]*>([^<]+)</a></li>', listed)
    queries = [parse_qs(urlsplit(html.unescape(href)).query)["query"][0] for href, _ in MORE.findall(incoming)]
    [query] = [q for q in queries if f"<{organizer}>" in q]
    answer = client.get("/sparql", query_string={"query": query}, headers={"Accept": "application/sparql-results+json"})
    newest_first = [b["thing"]["value"] for b in answer.get_json()["results"]["bindings"]]
    paths = [urlsplit(html.unescape(href)).path for href, _ in links]
    assert len(paths) == 4
    assert paths == ["/doc/" + iri[len(settings.base + "id/"):] for iri in newest_first[:4]]
    names = [html.unescape(name) for _, name in links]
    assert names != sorted(names, key=str.lower)  # else the test could not tell the two orders apart


def _instant(lexical: str):
    from datetime import datetime
    return datetime.fromisoformat(lexical.replace("Z", "+00:00"))
