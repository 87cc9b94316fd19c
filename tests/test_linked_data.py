"""Linked Data over real HTTP: every IRI of the dataset × every format, headers, negotiation.

Each test runs twice: against the app under gunicorn (conftest ``server``) and against its
static export under nginx (tests/static_site.py); one request per IRI × format; real parsers.
Every test here applies to both (the ETag differs: the app's names the release, nginx's is its
own, so only the app's is checked for the version).
"""
from __future__ import annotations

import gzip
import json
from email.utils import parsedate_to_datetime
from datetime import datetime
from pathlib import Path

import pytest
import requests
from pyld import jsonld
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.compare import graph_diff, isomorphic
from rdflib.namespace import OWL, RDF, XSD

from tests.static_site import static_site  # noqa: F401 - a fixture, requested by `server`
from tests.test_linked_data_helpers import (BASE, CONTEXT_URL, JSONLD_PROFILE, MEETING, RDF_TYPES, Html,
                                            context_loader, graph_iris, parse_rdf, reachable, thing_iris)

SCHEMA = "https://schema.org/"


@pytest.fixture(scope="module", params=["dynamic", "static"])
def server(request, server):
    """The dynamic server (conftest's), then the static export of the same release under nginx."""
    return server if request.param == "dynamic" else request.getfixturevalue("static_site")


def _link_targets(response) -> dict[tuple[str, str | None], str]:
    """Link header → {(rel, type): url}."""
    found = {}
    for link in requests.utils.parse_header_links(response.headers.get("Link", "")):
        found[(link.get("rel"), link.get("type"))] = link["url"]
    return found


def _check_document_headers(response, path: str, fmt: str, media_type: str, release, negotiated: bool,
                            server=None):
    assert response.status_code == 200, (path, fmt, response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == f"{media_type}; charset=utf-8", path
    vary = {v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()}
    if negotiated:
        assert "Accept" in vary, (path, vary)
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/"), etag  # strong
    if not getattr(server, "static", False):
        assert release.version in etag  # the app's; nginx's ETag is its own (mtime and size)
    created = datetime.fromisoformat(release.manifest["created"].replace("Z", "+00:00"))
    assert parsedate_to_datetime(response.headers["Last-Modified"]) == created
    assert response.headers["Content-Location"].split("?")[0] == f"{path}.{fmt}"
    links = _link_targets(response)
    for name, media in [("html", "text/html"), *RDF_TYPES.items()]:
        assert links[("alternate", media)] == f"{path}.{name}", (path, links)
    assert "public" in response.headers["Cache-Control"] and "max-age" in response.headers["Cache-Control"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.fixture(scope="module")
def documents_by_format(server, built):
    """Every thing and every named graph of the dataset, dereferenced in every format:
    /id/… (303) → /doc/… (200), one request each, headers checked on the way."""
    graphs: dict[str, dict[str, Graph]] = {}
    bodies: dict[str, dict[str, bytes]] = {}
    iris = [(iri, "/id/" + iri[len(BASE) + 3:], "/doc/" + iri[len(BASE) + 3:]) for iri in thing_iris(built)]
    iris += [(iri, "/graph/" + iri[len(BASE) + 6:], "/doc/graph/" + iri[len(BASE) + 6:]) for iri in graph_iris(built)]
    assert len(iris) > 40
    session = requests.Session()
    for iri, id_path, doc_path in iris:
        graphs[iri], bodies[iri] = {}, {}
        for fmt, media_type in [("html", "text/html"), *RDF_TYPES.items()]:
            see_other = session.get(server.url + id_path, headers={"Accept": media_type}, allow_redirects=False)
            assert see_other.status_code == 303, (id_path, see_other.status_code)
            assert see_other.headers["Location"] == doc_path
            assert "Accept" in see_other.headers["Vary"]
            response = session.get(server.url + see_other.headers["Location"], headers={"Accept": media_type},
                                    allow_redirects=False)
            _check_document_headers(response, doc_path, fmt, media_type, built, negotiated=True, server=server)
            bodies[iri][fmt] = response.content
            if fmt != "html":
                graphs[iri][fmt] = parse_rdf(response.content, fmt, server)
    return graphs, bodies


def test_every_iri_dereferences_to_the_same_graph_in_every_format(documents_by_format):
    graphs, _ = documents_by_format
    for iri, by_format in graphs.items():
        reference = by_format["ttl"]
        assert len(reference) > 0, iri
        assert (URIRef(iri), None, None) in reference or (None, None, URIRef(iri)) in reference
        for fmt, graph in by_format.items():
            if not isomorphic(graph, reference):
                _, only_here, only_turtle = graph_diff(graph, reference)
                pytest.fail(f"{iri} as {fmt} differs from Turtle: +{list(only_here)[:3]} -{list(only_turtle)[:3]}")


def test_every_html_page_parses_and_links_its_formats(documents_by_format):
    _, bodies = documents_by_format
    for iri, by_format in bodies.items():
        page = Html(by_format["html"].decode("utf-8"))
        assert page.find("html")[0]["lang"] in ("ar", "en"), iri
        assert page.text("h1"), iri
        alternates = {a.get("type") for a in page.find("link", rel="alternate") if a.get("type")}
        assert alternates == set(RDF_TYPES.values()), iri


def test_fixed_format_urls_need_no_negotiation(server, built):
    path = "/doc/" + MEETING
    for fmt, media_type in [("html", "text/html"), *RDF_TYPES.items()]:
        response = server.get(f"{path}.{fmt}", headers={"Accept": "image/png"})  # ignored for a fixed format
        _check_document_headers(response, path, fmt, media_type, built, negotiated=False, server=server)
        assert "Accept" not in {v.strip() for v in response.headers.get("Vary", "").split(",")}


def test_jsonld_profiles_expand_to_the_turtle_graph(server, documents_by_format):
    graphs, _ = documents_by_format
    loader = context_loader(server)
    for iri, by_format in graphs.items():
        path = "/doc/" + (iri[len(BASE) + 3:] if iri.startswith(BASE + "id/") else iri[len(BASE):])
        reference = by_format["ttl"]
        for profile in ("expanded", "compacted", "framed"):
            response = server.get(path, headers={"Accept": f'application/ld+json;profile="{JSONLD_PROFILE}{profile}"'})
            assert response.status_code == 200
            document = response.json()
            if profile == "expanded":
                assert isinstance(document, list) and "@context" not in json.dumps(document)
            else:
                assert document["@context"] == CONTEXT_URL
            expanded = jsonld.expand(document, {"documentLoader": loader})
            graph = Graph().parse(data=jsonld.to_rdf(expanded, {"format": "application/n-quads"}), format="nt")
            if profile == "framed":
                # the framed tree holds exactly what is reachable from the thing (incoming links
                # are in the other forms: nothing reachable points back to their subjects)
                assert len(expanded) == 1 and expanded[0]["@id"] == iri  # one tree, rooted at the thing
                assert isomorphic(graph, reachable(reference, iri)), (iri, profile)
            else:
                assert isomorphic(graph, reference), (iri, profile)


def test_framed_meeting_is_one_tidy_tree(server):
    tree = server.get(f"/doc/{MEETING}.jsonld?profile=framed").json()
    assert tree["@context"] == CONTEXT_URL
    assert tree["id"] == "meeting:" + MEETING.split("/")[1]
    assert tree["name"]["ar"] and tree["name"]["en"]
    assert tree["startDate"] == "2022-04-28T10:00:00+03:00"
    objectives = tree["hasObjective"]
    assert [int(o["position"]) for o in objectives] == [1, 2, 3, 4, 5, 6]
    assert all(o["text"]["ar"] and o["text"]["en"] for o in objectives)
    outcome = tree["hasOutcomeDocument"]
    assert [int(p["position"]) for p in outcome["hasPoint"]] == [1, 2, 3]
    assert all(p["text"]["ar"] for p in outcome["hasPoint"])
    organizers = tree["organizer"]
    assert len(organizers) == 5 and all(o["name"]["en"] for o in organizers)
    place = tree["location"]
    assert place["name"]["en"] == "United Nations Headquarters"
    assert place["address"]["type"] == "schema:PostalAddress"
    assert place["address"]["streetAddress"] == "760 United Nations Plaza"


def test_compacted_jsonld_uses_the_published_context(server):
    document = server.get(f"/doc/{MEETING}", headers={"Accept": "application/ld+json"}).json()
    assert document["@context"] == CONTEXT_URL
    meeting = next(n for n in document["@graph"] if n["id"] == "meeting:" + MEETING.split("/")[1])
    assert set(meeting["name"]) >= {"ar", "en", "fr", "es", "ru", "zh"}  # a language map
    assert meeting["startDate"] == "2022-04-28T10:00:00+03:00"      # xsd:dateTime coerced by the context
    assert meeting["location"] == "place:un-headquarters"            # @type: @id


def test_the_context_is_read_once_per_process_not_once_per_document():
    """pyld keeps our context resolved (the loader tags it static) instead of loading and
    canonicalising it again for every document it compacts."""
    import uuid

    from server import jsonld as ours

    class Counting(ours.Loader):
        calls = 0

        def __call__(self, url, options=None):
            Counting.calls += 1
            return super().__call__(url, options)
    base = f"https://example.org/{uuid.uuid4().hex}/"  # a context pyld has not seen in this process
    loader = Counting(base)
    for i in range(3):
        expanded = [{"@id": f"{base}id/meeting/m{i}", "https://schema.org/name": [{"@value": "x", "@language": "en"}]}]
        assert ours.compacted(expanded, loader)["name"] == {"en": "x"}
    assert Counting.calls == 1


def test_context_is_published_with_cache_and_cors_headers(server):
    response = server.get("/context.jsonld")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/ld+json")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["ETag"].startswith('"')
    context = response.json()["@context"]
    assert context["name"] == {"@id": "schema:name", "@container": "@language"}
    assert context["organizer"]["@type"] == "@id"
    assert context["startDate"]["@type"] == "xsd:dateTime"
    assert context["unm"] == BASE + "ontology#"
    again = server.get("/context.jsonld", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_date_coercion_does_not_change_xsd_date_values(server):
    """The project has xsd:date start/end dates: compaction must keep their datatype."""
    response = server.get("/doc/project/nua-inter-regional-cooperation.jsonld")
    graph = parse_rdf(response.content, "jsonld", server)
    start = graph.value(URIRef(BASE + "id/project/nua-inter-regional-cooperation"), URIRef(SCHEMA + "startDate"))
    assert start == Literal("2021-01-01", datatype=XSD.date)


def test_document_content(server, built):
    """Own triples (with blank nodes), labels of linked things, incoming links with their labels."""
    meeting = URIRef(BASE + "id/" + MEETING)
    escwa = URIRef(BASE + "id/organization/escwa")
    from server.rdfterms import graph_from_quads
    from tests.test_linked_data_helpers import dataset_quads
    dataset = graph_from_quads(dataset_quads(built))
    doc = parse_rdf(server.get(f"/doc/{MEETING}.ttl").content, "ttl", server)
    for p, o in dataset.predicate_objects(meeting):  # every own triple (blank nodes aside)
        if not isinstance(o, BNode) and getattr(o, "datatype", None) != XSD.positiveInteger:
            assert (meeting, p, o) in doc, (p, o)
    for organizer in dataset.objects(meeting, URIRef(SCHEMA + "organizer")):  # labels of what it links to
        assert set(dataset.objects(organizer, URIRef(SCHEMA + "name"))) <= set(doc.objects(organizer, URIRef(SCHEMA + "name")))
    place = parse_rdf(server.get("/doc/place/un-headquarters.ttl").content, "ttl", server)
    address = place.value(URIRef(BASE + "id/place/un-headquarters"), URIRef(SCHEMA + "address"))
    assert place.value(address, URIRef(SCHEMA + "streetAddress")) == Literal("760 United Nations Plaza")
    commission = parse_rdf(server.get("/doc/organization/escwa.ttl").content, "ttl", server)
    assert (meeting, URIRef(SCHEMA + "organizer"), escwa) in commission  # incoming link
    assert Literal(next(str(n) for n in dataset.objects(meeting, URIRef(SCHEMA + "name")) if n.language == "ar"),
                   lang="ar") in set(commission.objects(meeting, URIRef(SCHEMA + "name")))


# --- negotiation ----------------------------------------------------------------------------

@pytest.mark.parametrize("accept, expected", [
    ("text/turtle;q=0.5, application/ld+json;q=0.9", "application/ld+json"),
    ("application/ld+json;q=0.4, text/turtle;q=0.8", "text/turtle"),
    ("application/rdf+xml, text/html;q=0.1", "application/rdf+xml"),
    ("text/*;q=0.3, text/html;q=0", "text/turtle"),
    ("application/n-triples;q=1, */*;q=0.1", "application/n-triples"),
    ("*/*", "text/html"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
])
def test_q_value_negotiation(server, accept, expected):
    response = server.get(f"/doc/{MEETING}", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == expected


def test_jsonld_profile_by_query_parameter(server):
    expanded = server.get(f"/doc/{MEETING}?profile=expanded", headers={"Accept": "application/ld+json"})
    assert isinstance(expanded.json(), list)
    assert expanded.headers["Content-Location"].endswith(".jsonld?profile=expanded")
    iri_form = server.get(f"/doc/{MEETING}.jsonld", params={"profile": JSONLD_PROFILE + "framed"}).json()
    assert "hasObjective" in iri_form
    assert server.get(f"/doc/{MEETING}.jsonld").json()["@context"] == CONTEXT_URL


def test_unsupported_accept_is_406_listing_the_types(server):
    response = server.get(f"/doc/{MEETING}", headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert "Accept" in response.headers["Vary"]
    assert _link_targets(response)[("alternate", "text/turtle")] == f"/doc/{MEETING}.ttl"
    assert set(response.json()["available"]) >= set(RDF_TYPES.values()) | {"text/html"}


def test_unknown_iri_is_404_html_or_problem_json(server):
    html = server.get("/id/meeting/no-such-meeting", headers={"Accept": "text/html"})
    assert html.status_code == 404 and html.headers["Content-Type"].startswith("text/html")
    assert "no-such-meeting" in html.text and 'href="/sparql"' in html.text
    problem = server.get("/doc/meeting/no-such-meeting", headers={"Accept": "application/ld+json, application/json"})
    assert problem.status_code == 404
    assert problem.headers["Content-Type"].startswith("application/problem+json")
    assert problem.json()["status"] == 404 and "no-such-meeting" in problem.json()["detail"]
    for path in ("/doc/meeting/Bad..Path", "/id/nothing", "/doc/meeting/x.exe", "/graph/nope", "/ontology.exe"):
        assert server.get(path).status_code == 404, path


def test_conditional_requests_answer_304(server):
    first = server.get(f"/doc/{MEETING}", headers={"Accept": "text/turtle"})
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    by_etag = server.get(f"/doc/{MEETING}", headers={"Accept": "text/turtle", "If-None-Match": etag})
    assert by_etag.status_code == 304 and not by_etag.content
    assert by_etag.headers["ETag"] == etag
    by_date = server.get(f"/doc/{MEETING}", headers={"Accept": "text/turtle", "If-Modified-Since": modified})
    assert by_date.status_code == 304
    other = server.get(f"/doc/{MEETING}", headers={"Accept": "application/n-triples", "If-None-Match": etag})
    assert other.status_code == 200  # another representation has another ETag
    assert other.headers["ETag"] != etag
    old = server.get(f"/doc/{MEETING}", headers={"Accept": "text/turtle", "If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert old.status_code == 200


def test_gzip_when_accepted(server):
    plain = server.get(f"/doc/{MEETING}.ttl", headers={"Accept-Encoding": "identity"})
    zipped = requests.get(server.url + f"/doc/{MEETING}.ttl", headers={"Accept-Encoding": "gzip"}, stream=True)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.raw.read()) == plain.content
    assert zipped.headers["ETag"] != plain.headers["ETag"]


def test_head_and_cors_preflight(server):
    head = requests.head(server.url + f"/doc/{MEETING}", headers={"Accept": "text/turtle"})
    assert head.status_code == 200 and not head.content
    assert head.headers["Content-Type"].startswith("text/turtle")
    preflight = requests.options(server.url + f"/doc/{MEETING}", headers={
        "Origin": "https://portal.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "accept"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "accept" in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_redirect_keeps_query_string(server):
    response = server.get(f"/id/{MEETING}?lang=fr")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/doc/{MEETING}?lang=fr"


# --- ontology, shapes, graphs ---------------------------------------------------------------

def test_ontology_dereferences_with_every_term(server, built):
    for fmt, media_type in RDF_TYPES.items():
        response = server.get("/ontology", headers={"Accept": media_type})
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(media_type)
        assert "Accept" in response.headers["Vary"]
    turtle = parse_rdf(server.get("/ontology.ttl").content, "ttl", server)
    release_graph = Graph().parse(built.file("ontology.ttl"), format="turtle")
    assert isomorphic(turtle, release_graph)
    jsonld_graph = parse_rdf(server.get("/ontology.jsonld").content, "jsonld", server)
    assert isomorphic(jsonld_graph, release_graph)
    terms = {str(s)[len(BASE + "ontology#"):] for s in turtle.subjects()
             if str(s).startswith(BASE + "ontology#")}
    assert {"hasObjective", "ExpertGroupMeeting", "timeZone"} <= terms
    page = Html(server.get("/ontology?lang=en").text)  # /ontology#Term: every term has its anchor
    anchors = {a.get("id") for _, a in page.elements if a.get("id")}
    assert terms <= anchors, terms - anchors


def test_the_ontology_version_iri_leads_to_the_ontology(server, built):
    release_graph = Graph().parse(built.file("ontology.ttl"), format="turtle")
    versions = [str(v) for v in release_graph.objects(URIRef(BASE + "ontology"), OWL.versionIRI)]
    assert versions, "the ontology declares its owl:versionIRI"
    for version in versions:
        response = server.get("/" + version[len(BASE):], headers={"Accept": "text/turtle"})
        assert response.status_code == 303 and response.headers["Location"] == "/ontology", version
        ontology = server.get(response.headers["Location"], headers={"Accept": "text/turtle"})
        assert (URIRef(BASE + "ontology"), OWL.versionIRI, URIRef(version)) in parse_rdf(ontology.content, "ttl", server)
    assert server.get("/ontology/0.0.1").status_code == 404


def test_shapes_dereference(server, built):
    turtle = server.get("/shapes", headers={"Accept": "text/turtle"})
    assert turtle.status_code == 200
    graph = parse_rdf(turtle.content, "ttl", server)
    assert isomorphic(graph, Graph().parse(built.file("shapes.ttl"), format="turtle"))
    assert server.get("/shapes", headers={"Accept": "text/html"}).status_code == 200


def test_named_graph_iris_describe_their_provenance(server):
    response = server.get("/graph/meeting/translation", headers={"Accept": "text/turtle"})
    assert response.status_code == 303
    graph = parse_rdf(server.get(response.headers["Location"], headers={"Accept": "text/turtle"}).content, "ttl", server)
    node = URIRef(BASE + "graph/meeting/translation")
    assert (node, URIRef("http://www.w3.org/ns/prov#wasDerivedFrom"), None) in graph
    assert (node, RDF.type, None) in graph


@pytest.mark.parametrize("path, release_file", [("/ontology", "ontology.ttl"), ("/shapes", "shapes.ttl")])
def test_vocabulary_documents_in_every_format(server, built, path, release_file):
    """The ontology and the shapes: negotiated, headers, the same graph as the release file."""
    expected = Graph().parse(built.file(release_file), format="turtle")
    assert len(expected) > 0
    for fmt, media_type in [("html", "text/html"), *RDF_TYPES.items()]:
        response = server.get(path, headers={"Accept": media_type})
        _check_document_headers(response, path, fmt, media_type, built, negotiated=True, server=server)
        fixed = server.get(f"{path}.{fmt}")
        _check_document_headers(fixed, path, fmt, media_type, built, negotiated=False, server=server)
        assert fixed.content == response.content
        if fmt != "html":
            graph = parse_rdf(response.content, fmt, server)
            assert isomorphic(graph, expected), (path, fmt)


def test_context_has_a_versioned_url(server):
    current = server.get("/context.jsonld")
    links = _link_targets(current)
    versioned_path = links[("alternate", "application/ld+json")]
    assert versioned_path.startswith("/context/") and versioned_path.endswith(".jsonld")
    versioned = server.get(versioned_path)
    assert versioned.status_code == 200 and versioned.content == current.content
    assert "immutable" in versioned.headers["Cache-Control"]
    assert server.get("/context/0.0.1.jsonld").status_code == 404


def test_a_published_context_version_never_changes(server, settings):
    """A versioned context is served as immutable: clients and caches keep it for a year. Its
    terms as published (tests/contexts/{version}.jsonld) stay exactly what they were; new terms
    need a new version."""
    from server.jsonld import CONTEXT_VERSION
    published = json.loads((Path(__file__).parent / "contexts" / f"{CONTEXT_VERSION}.jsonld").read_text(encoding="utf-8"))
    served = server.get(f"/context/{CONTEXT_VERSION}.jsonld").json()
    assert served == json.loads(json.dumps(published).replace("https://w3id.org/un-meetings/", settings.base))


def test_plain_json_gets_json_ld(server):
    """Harvesters that ask for application/json get the JSON-LD document (which is JSON)."""
    response = server.get(f"/doc/{MEETING}", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/ld+json; charset=utf-8"
    assert "@context" in response.json()
    preferred = server.get(f"/doc/{MEETING}", headers={"Accept": "application/json;q=0.5, text/turtle"})
    assert preferred.headers["Content-Type"].startswith("text/turtle")
