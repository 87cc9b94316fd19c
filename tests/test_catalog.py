"""The dataset description at /dataset: DCAT-AP 3.0.0 conformance, VoID figures equal to what
SPARQL counts, content negotiation, caching, quality (DQV) and versions; all over live HTTP."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyshacl
import pytest
from rdflib import Graph, URIRef
from rdflib.compare import isomorphic
from rdflib import Namespace
from rdflib.namespace import DCTERMS, RDF, SH

from tests.test_catalog_helpers import has_sparql_endpoint, DCAT3, DQV, OA, SPDX, VOID, description, local, sparql_select, store_select

# plain Namespaces (rdflib's closed DCAT and XSD warn when pytest inspects the module)
DCAT = Namespace("http://www.w3.org/ns/dcat#")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")
DCAT_AP = Path(__file__).parent / "dcat-ap" / "dcat-ap-3.0.0-SHACL.ttl"
#: SHA-256 of the official file (SEMICeu/DCAT-AP releases/3.0.0/shacl/dcat-ap-SHACL.ttl)
DCAT_AP_SHA256 = "92f76609d78d257123e75bc6b7155df5cc0a63f14c29fbc12b0ac95c56af2059"



@pytest.fixture(scope="module")
def described(server):
    graph, _ = description(server)
    return graph


@pytest.fixture(scope="module")
def base(settings) -> str:
    return settings.base


@pytest.fixture(scope="module")
def store(built):
    return built.open_store()


def test_the_dcat_ap_shapes_are_the_official_file_unmodified():
    assert hashlib.sha256(DCAT_AP.read_bytes()).hexdigest() == DCAT_AP_SHA256


@pytest.mark.parametrize("accept", ["text/turtle", "application/ld+json", "application/rdf+xml"])
def test_description_validates_against_dcat_ap_3_with_zero_violations(server, accept):
    graph, _ = description(server, accept)
    shapes = Graph().parse(DCAT_AP, format="turtle")
    conforms, report, text = pyshacl.validate(graph, shacl_graph=shapes, allow_warnings=False)
    violations = len(list(report.subjects(SH.resultSeverity, SH.Violation)))
    assert conforms and violations == 0, text


def test_catalog_dataset_distributions_and_service_are_described(described, base, built, settings):
    catalog, dataset = URIRef(base + "dataset#catalog"), URIRef(base + "dataset")
    assert (catalog, RDF.type, DCAT.Catalog) in described
    assert (catalog, DCAT.dataset, dataset) in described
    assert (dataset, RDF.type, DCAT.Dataset) in described and (dataset, RDF.type, VOID.Dataset) in described
    for predicate in (DCTERMS.title, DCTERMS.description):
        languages = {o.language for o in described.objects(dataset, predicate)}
        assert languages == {"ar", "zh", "en", "fr", "ru", "es"}, predicate
    assert {o.language for o in described.objects(dataset, DCAT.keyword)} == {"ar", "zh", "en", "fr", "ru", "es"}
    assert set(described.objects(dataset, DCTERMS.language)) == {
        URIRef("http://publications.europa.eu/resource/authority/language/" + code)
        for code in ("ARA", "ZHO", "ENG", "FRA", "RUS", "SPA")}
    assert URIRef("http://publications.europa.eu/resource/authority/data-theme/GOVE") in set(
        described.objects(dataset, DCAT.theme))
    assert described.value(dataset, DCTERMS.license) == URIRef(settings.license)
    assert described.value(dataset, DCTERMS.publisher) is not None
    assert (described.value(dataset, DCAT.contactPoint), RDF.type,
            URIRef("http://www.w3.org/2006/vcard/ns#Kind")) in described
    # the SPARQL endpoint as a data service
    service = described.value(catalog, DCAT.service)
    assert (service, RDF.type, DCAT.DataService) in described
    assert described.value(service, DCAT.endpointURL) == URIRef(base + "sparql")
    assert described.value(service, DCAT.endpointDescription) is not None
    assert (service, DCAT.servesDataset, dataset) in described
    # one distribution per dump, with checksum, size, media type, format, modified
    dumps = {str(d) for d in described.objects(dataset, DCAT.distribution)
             if described.value(d, DCAT.downloadURL) is not None}
    assert len(dumps) == 4
    for dist in map(URIRef, dumps):
        url = str(described.value(dist, DCAT.downloadURL))
        name = url.rsplit("/", 1)[1]
        assert described.value(dist, DCAT.mediaType) == URIRef(
            "http://www.iana.org/assignments/media-types/" + built.manifest["files"][name]["media_type"])
        assert described.value(dist, DCTERMS.format) is not None
        assert described.value(dist, DCTERMS.modified) is not None
        assert int(described.value(dist, DCAT.byteSize)) == built.manifest["files"][name]["bytes"]
        checksum = described.value(dist, SPDX.checksum)
        assert described.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256
        assert str(described.value(checksum, SPDX.checksumValue)).lower() == built.manifest["files"][name]["sha256"]


def test_every_download_url_answers_200_with_the_advertised_bytes(server, described, base):
    urls = set(described.objects(None, DCAT.downloadURL))
    assert urls == set(described.objects(URIRef(base + "dataset"), VOID.dataDump))
    for dist in described.subjects(DCAT.downloadURL, None):
        url = str(described.value(dist, DCAT.downloadURL))
        response = server.get(local(url, base, server)[len(server.url):])
        assert response.status_code == 200, url
        checksum = described.value(dist, SPDX.checksum)
        assert hashlib.sha256(response.content).hexdigest() == str(described.value(checksum, SPDX.checksumValue)).lower(), url
        assert len(response.content) == int(described.value(dist, DCAT.byteSize)), url


def test_catalogue_iris_dereference_on_the_serving_host(server, described, base):
    ours = {str(t).split("#")[0] for triple in described for t in triple
            if isinstance(t, URIRef) and str(t).startswith(base)}
    mine = [iri for iri in ours if iri[len(base):].split("/")[0] in ("", "dataset", "dumps")]
    assert base + "dataset" in mine and base in mine
    for iri in mine:
        response = server.get("/" + iri[len(base):], headers={"Accept": "text/turtle"})
        assert response.status_code in (200, 303), (iri, response.status_code)


# ---------------------------------------------------------------------------------------------
# VoID figures = the same figures computed by SPARQL (the live endpoint if there is one)
# ---------------------------------------------------------------------------------------------
def _select(server, store, query):
    rows = sparql_select(server, query)
    return rows if rows is not None else store_select(store, query)


def test_void_figures_equal_sparql_counts(server, store, described, base):
    print("figures checked through", "the live /sparql endpoint" if has_sparql_endpoint(server) else "the store")
    dataset = URIRef(base + "dataset")
    figure = lambda p: int(described.value(dataset, p))  # noqa: E731
    q = lambda text: int(next(iter(_select(server, store, text)[0].values())))  # noqa: E731
    # counted over the named graphs explicitly (GRAPH ?g), not through the default graph
    assert figure(VOID.triples) == q("SELECT (COUNT(*) AS ?n) { SELECT DISTINCT ?s ?p ?o { GRAPH ?g { ?s ?p ?o } } }")
    assert figure(VOID.entities) == q(f"""SELECT (COUNT(DISTINCT ?s) AS ?n) {{ GRAPH ?g {{ ?s ?p ?o }}
        FILTER(STRSTARTS(STR(?s), "{base}id/")) }}""")
    assert figure(VOID.distinctSubjects) == q("SELECT (COUNT(DISTINCT ?s) AS ?n) { GRAPH ?g { ?s ?p ?o } }")
    assert figure(VOID.distinctObjects) == q("SELECT (COUNT(DISTINCT ?o) AS ?n) { GRAPH ?g { ?s ?p ?o } }")
    assert figure(VOID.properties) == q("SELECT (COUNT(DISTINCT ?p) AS ?n) { GRAPH ?g { ?s ?p ?o } }")
    assert figure(VOID.classes) == q("SELECT (COUNT(DISTINCT ?c) AS ?n) { GRAPH ?g { ?s a ?c } }")
    assert figure(VOID.triples) > 500 and figure(VOID.entities) > 20


def test_class_and_property_partitions_equal_sparql_counts(server, store, described, base):
    dataset = URIRef(base + "dataset")
    classes = {str(described.value(p, VOID["class"])): int(described.value(p, VOID.entities))
               for p in described.objects(dataset, VOID.classPartition)}
    expected = {r["c"]: int(r["n"]) for r in _select(server, store, """
        SELECT ?c (COUNT(DISTINCT ?s) AS ?n) { GRAPH ?g { ?s a ?c } } GROUP BY ?c""")}
    assert classes == expected
    properties = {str(described.value(p, VOID.property)): int(described.value(p, VOID.triples))
                  for p in described.objects(dataset, VOID.propertyPartition)}
    expected = {r["p"]: int(r["n"]) for r in _select(server, store, """
        SELECT ?p (COUNT(*) AS ?n) { SELECT DISTINCT ?s ?p ?o { GRAPH ?g { ?s ?p ?o } } } GROUP BY ?p""")}
    assert properties == expected
    assert classes["https://schema.org/Event"] >= 1


def test_linksets_count_the_links_to_wikidata_sdg_and_unbis(server, store, described, base):
    dataset = URIRef(base + "dataset")
    linksets = {}
    for linkset in described.subjects(RDF.type, VOID.Linkset):
        assert described.value(linkset, VOID.subjectsTarget) == dataset
        assert (dataset, VOID.subset, linkset) in described
        target = described.value(linkset, VOID.objectsTarget)
        space = str(described.value(target, VOID.uriSpace))
        linksets[(space, str(described.value(linkset, VOID.linkPredicate)))] = int(described.value(linkset, VOID.triples))
    spaces = {"http://www.wikidata.org/entity/", "http://metadata.un.org/sdg/", "http://metadata.un.org/thesaurus/"}
    assert {space for space, _ in linksets} == spaces
    for space in spaces:
        rows = _select(server, store, f"""SELECT ?p (COUNT(*) AS ?n) {{ SELECT DISTINCT ?s ?p ?o {{ GRAPH ?g {{ ?s ?p ?o }}
            FILTER(STRSTARTS(STR(?s), "{base}") && isIRI(?o) && STRSTARTS(STR(?o), "{space}")) }} }} GROUP BY ?p""")
        assert {p: n for (s, p), n in linksets.items() if s == space} == {r["p"]: int(r["n"]) for r in rows}
    assert linksets[("http://www.wikidata.org/entity/", "http://www.w3.org/2002/07/owl#sameAs")] >= 5


def test_void_access_points_and_temporal_coverage_come_from_the_data(server, store, described, base):
    dataset = URIRef(base + "dataset")
    assert described.value(dataset, VOID.sparqlEndpoint) == URIRef(base + "sparql")
    assert str(described.value(dataset, VOID.uriSpace)) == base + "id/"
    examples = set(described.objects(dataset, VOID.exampleResource))
    assert examples and all(str(e).startswith(base + "id/") for e in examples)
    vocabularies = {str(v) for v in described.objects(dataset, VOID.vocabulary)}
    assert {"https://schema.org/", "http://www.w3.org/2004/02/skos/core#", base + "ontology"} <= vocabularies
    period = described.value(dataset, DCTERMS.temporal)
    dates = [r["d"][:10] for r in _select(server, store, """
        SELECT ?d { GRAPH ?g { ?e a <https://schema.org/Event> ; <https://schema.org/startDate>|<https://schema.org/endDate> ?d } }""")]
    assert str(described.value(period, DCAT.startDate)) == min(dates)
    assert str(described.value(period, DCAT.endDate)) == max(dates)
    assert described.value(period, DCAT.startDate).datatype == XSD.date


# ---------------------------------------------------------------------------------------------
# Content negotiation and caching
# ---------------------------------------------------------------------------------------------
def test_every_rdf_format_carries_the_same_graph(server):
    reference, _ = description(server, "text/turtle")
    for accept in ("application/ld+json", "application/n-triples", "application/rdf+xml"):
        graph, response = description(server, accept)
        assert response.headers["Content-Type"].startswith(accept)
        assert "Accept" in response.headers["Vary"]
        assert isomorphic(graph, reference), accept


def test_the_same_release_gives_the_same_bytes_from_every_worker(server):
    for accept in ("application/ld+json", "application/n-triples"):
        bodies = {server.get("/dataset", headers={"Accept": accept}).content for _ in range(12)}
        assert len(bodies) == 1, accept


def test_q_values_choose_the_format_and_unknown_types_get_406(server):
    response = server.get("/dataset", headers={"Accept": "text/turtle;q=0.5, application/ld+json;q=0.9"})
    assert response.headers["Content-Type"].startswith("application/ld+json")
    response = server.get("/dataset", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.headers["Content-Type"].startswith("text/html")
    response = server.get("/dataset", headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert "text/turtle" in response.text
    for ext, media in [("ttl", "text/turtle"), ("jsonld", "application/ld+json"), ("nt", "application/n-triples"),
                       ("rdf", "application/rdf+xml"), ("html", "text/html")]:
        response = server.get(f"/dataset.{ext}")
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(media), ext
        assert "Accept" not in [v.strip() for v in response.headers.get("Vary", "").split(",")], ext


@pytest.mark.parametrize("path, accept, expected", [
    ("/dataset", "text/turtle; charset=utf-8", "text/turtle"),
    ("/dataset", 'application/ld+json;profile="http://www.w3.org/ns/json-ld#compacted"', "application/ld+json"),
    ("/dataset", "text/html;charset=utf-8", "text/html"),
    ("/dataset/quality", "application/n-triples;charset=utf-8", "application/n-triples"),
    ("/openapi.json", "application/json; charset=utf-8", "application/json"),
    ("/no-such-page", "text/html;level=1", "text/html"),
])
def test_parameters_in_accept_do_not_stop_a_type_matching(server, path, accept, expected):
    """`text/turtle; charset=utf-8` asks for what is served as exactly that (RFC 9110 §12.5.1):
    werkzeug's best_match, which wants the parameters to match, answered 406."""
    response = server.get(path, headers={"Accept": accept})
    assert response.status_code == (404 if path == "/no-such-page" else 200), response.text[:200]
    assert response.headers["Content-Type"].split(";")[0] == expected


def test_revalidation_answers_304(server, built):
    first = server.get("/dataset", headers={"Accept": "application/ld+json"})
    assert first.headers["ETag"] and first.headers["Last-Modified"]
    again = server.get("/dataset", headers={"Accept": "application/ld+json", "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.content
    since = server.get("/dataset", headers={"Accept": "application/ld+json",
                                            "If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304
    other = server.get("/dataset", headers={"Accept": "text/turtle", "If-None-Match": first.headers["ETag"]})
    assert other.status_code == 200, "an ETag must not match another format"


def test_well_known_void_redirects_to_the_description(server):
    response = server.get("/.well-known/void", headers={"Accept": "text/turtle"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/dataset")
    followed = server.get("/.well-known/void", headers={"Accept": "text/turtle"}, allow_redirects=True)
    assert followed.status_code == 200 and followed.headers["Content-Type"].startswith("text/turtle")


# ---------------------------------------------------------------------------------------------
# Versions and quality
# ---------------------------------------------------------------------------------------------
def test_description_states_the_release_served(described, base, built):
    dataset = URIRef(base + "dataset")
    assert str(described.value(dataset, DCAT3.version)) == built.version
    assert str(described.value(dataset, URIRef("http://www.w3.org/2002/07/owl#versionInfo"))) == built.version
    modified = described.value(dataset, DCTERMS.modified).toPython()
    assert modified == dt.datetime.fromisoformat(built.manifest["created"].replace("Z", "+00:00"))
    assert described.value(dataset, DCTERMS.issued) is not None
    previous = built.manifest["previous"]
    assert (described.value(dataset, DCAT3.previousVersion) is None) == (previous is None)


def test_quality_report_is_published_and_linked_with_dqv(server, described, base, built):
    dataset = URIRef(base + "dataset")
    certificate = described.value(dataset, DQV.hasQualityAnnotation)
    assert (certificate, RDF.type, DQV.QualityCertificate) in described
    assert described.value(certificate, DCTERMS.conformsTo) == URIRef(base + "shapes")
    body = str(described.value(certificate, OA.hasBody))
    report_bytes = server.get(local(body, base, server)[len(server.url):]).content
    assert hashlib.sha256(report_bytes).hexdigest() == built.manifest["files"]["validation-report.ttl"]["sha256"]
    response = server.get("/dataset/quality", headers={"Accept": "text/turtle"})
    assert response.status_code == 200
    report = Graph().parse(data=response.content, format="turtle")
    node = next(report.subjects(RDF.type, SH.ValidationReport))
    measurements = {str(described.value(m, DQV.isMeasurementOf)).rsplit("#", 1)[1]: described.value(m, DQV.value).toPython()
                    for m in described.objects(dataset, DQV.hasQualityMeasurement)}
    assert measurements["shacl-conforms"] is report.value(node, SH.conforms).toPython() is True
    assert measurements["shacl-results"] == len(list(report.objects(node, SH.result)))
    assert measurements["shacl-shapes"] == built.manifest["validation"]["shapes"]
    assert measurements["shacl-focus-nodes"] == built.manifest["validation"]["focus_nodes"]
    jsonld = server.get("/dataset/quality", headers={"Accept": "application/ld+json"})
    assert isomorphic(Graph().parse(data=jsonld.content, format="json-ld"), report)


def test_quality_figures_recount_from_the_published_shapes_and_data(server, described, base):
    """Shapes and focus nodes recounted independently: rdflib over the served shapes and dump."""
    from rdflib import Dataset
    from rdflib.namespace import OWL, RDFS
    shapes = Graph().parse(data=server.get("/dumps/shapes.ttl").content, format="turtle")
    data = Dataset().parse(data=server.get("/dumps/dataset.trig").content, format="trig")
    union = Graph()
    for graph in data.graphs():
        union += graph
    all_shapes = set(shapes.subjects(RDF.type, SH.NodeShape)) | set(shapes.subjects(RDF.type, SH.PropertyShape))
    focus = set()
    for shape in all_shapes:
        classes = set(shapes.objects(shape, SH.targetClass))
        if (shape, RDF.type, RDFS.Class) in shapes or (shape, RDF.type, OWL.Class) in shapes:
            classes.add(shape)
        for cls in classes:
            for sub in {cls} | set(union.transitive_subjects(RDFS.subClassOf, cls)):
                focus |= set(union.subjects(RDF.type, sub))
        focus |= set(shapes.objects(shape, SH.targetNode))
        for p in shapes.objects(shape, SH.targetSubjectsOf):
            focus |= set(union.subjects(p, None))
        for p in shapes.objects(shape, SH.targetObjectsOf):
            focus |= set(union.objects(None, p))
    dataset = URIRef(base + "dataset")
    measured = {str(described.value(m, DQV.isMeasurementOf)).rsplit("#", 1)[1]: described.value(m, DQV.value).toPython()
                for m in described.objects(dataset, DQV.hasQualityMeasurement)}
    assert measured["shacl-shapes"] == len(all_shapes)
    assert measured["shacl-focus-nodes"] == len(focus)
