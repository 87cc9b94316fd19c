"""The DCAT / VoID / DQV description of a release, built once at build time.

Human-written metadata (titles, descriptions, keywords, publisher, themes ...) comes from
``catalog/dataset.ttl``; everything measurable is added here from the release being built:
the VoID statistics (server/statistics.py, SPARQL over the built store), the dumps' sizes and
checksums (the manifest), the dates and versions, the temporal coverage, the licence setting
and the SHACL verdict. The result is written to the release as ``description.ttl`` and served,
content-negotiated, at ``/dataset``.

IRIs (all under the base, all dereferenceable on the serving host):
``{base}dataset`` the dataset (dcat:Dataset and void:Dataset), ``{base}dataset#catalog`` the
catalogue, ``{base}dataset#…`` the distributions, service, linksets, metrics and measurements,
``{base}dumps/{file}`` the files, ``{base}dataset/{version}`` a release (previous versions).
"""
from __future__ import annotations

from pathlib import Path

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, RDF, RDFS, SH, SKOS, XSD

from .config import PROJECT_ROOT
from .statistics import Statistics

VOID = Namespace("http://rdfs.org/ns/void#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
DQV = Namespace("http://www.w3.org/ns/dqv#")
OA = Namespace("http://www.w3.org/ns/oa#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
PROV = Namespace("http://www.w3.org/ns/prov#")
DCAT_VERSION = URIRef("http://www.w3.org/ns/dcat#version")
DCAT_PREVIOUS_VERSION = URIRef("http://www.w3.org/ns/dcat#previousVersion")
IANA = "http://www.iana.org/assignments/media-types/"
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"

CATALOG_FILE = Path("catalog") / "dataset.ttl"
DESCRIPTION = "description.ttl"

#: dump file → (key used in IRIs, media type, EU file type, W3C format IRI, compressed with, title)
DUMP_FORMATS = {
    "dataset.nq.gz": ("nquads", "application/n-quads", "RDF_N_QUADS",
                      "http://www.w3.org/ns/formats/N-Quads", "application/gzip", "N-Quads (gzip)"),
    "dataset.trig": ("trig", "application/trig", "RDF_TRIG",
                     "http://www.w3.org/ns/formats/TriG", None, "TriG"),
    "dataset.ttl": ("turtle", "text/turtle", "RDF_TURTLE",
                    "http://www.w3.org/ns/formats/Turtle", None, "Turtle (union of the graphs)"),
    "dataset.jsonld": ("jsonld", "application/ld+json", "JSON_LD",
                       "http://www.w3.org/ns/formats/JSON-LD", None, "JSON-LD"),
}

PREFIXES = {
    "dcat": DCAT, "dcterms": DCTERMS, "foaf": FOAF, "owl": OWL, "rdfs": RDFS, "skos": SKOS,
    "xsd": XSD, "void": VOID, "spdx": SPDX, "dqv": DQV, "oa": OA, "adms": ADMS, "prov": PROV,
    "vcard": Namespace("http://www.w3.org/2006/vcard/ns#"), "schema": Namespace("https://schema.org/"),
    "sh": SH,
}


def catalog_file(root: Path) -> Path:
    """``{root}/catalog/dataset.ttl``; a source tree without one (e.g. a test's copy of data/)
    uses this project's."""
    own = root / CATALOG_FILE
    return own if own.is_file() else PROJECT_ROOT / CATALOG_FILE


def load_catalog(root: Path, base: str) -> Graph:
    """The human-written catalogue metadata, parsed with the base (relative IRIs are ours)."""
    graph = Graph()
    graph.parse(catalog_file(root), format="turtle", publicID=base)
    return graph


def bind_prefixes(graph: Graph, base: str) -> Graph:
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace, override=True)
    graph.bind("unm", Namespace(base + "ontology#"))
    return graph


def _date_time(value: str) -> Literal:
    return Literal(value.replace("Z", "+00:00"), datatype=XSD.dateTime)


def describe(*, base: str, catalog: Graph, license: str, version: str, created: str,
             first_issued: str, previous: str | None, source_sha256: str,
             files: dict[str, dict], stats: Statistics, validation: dict) -> Graph:
    """The full description graph of one release (canonical IRIs under `base`)."""
    g = bind_prefixes(Graph(), base)
    g += catalog
    iri = lambda path: URIRef(base + path)  # noqa: E731
    catalog_node, dataset = iri("dataset#catalog"), iri("dataset")
    modified, issued = _date_time(created), _date_time(first_issued)
    licence = URIRef(license)

    # --- licence, dates, versions (catalogue and dataset) ---------------------------------
    g.add((licence, RDF.type, DCTERMS.LicenseDocument))
    for node in (catalog_node, dataset):
        g.add((node, DCTERMS.license, licence))
        g.add((node, DCTERMS.issued, issued))
        g.add((node, DCTERMS.modified, modified))
    g.add((dataset, DCTERMS.identifier, Literal(str(dataset))))
    g.add((dataset, DCAT_VERSION, Literal(version)))
    g.add((dataset, OWL.versionInfo, Literal(version)))
    g.add((dataset, ADMS.versionNotes, Literal(
        f"Release {version}, built {created} from sources with SHA-256 {source_sha256}. "
        f"Every release is rebuilt from the Turtle sources and validated with SHACL before it is published.",
        lang="en")))
    if previous:
        older = iri(f"dataset/{previous}")
        g.add((dataset, DCAT_PREVIOUS_VERSION, older))
        g.add((dataset, ADMS.prev, older))
        g.add((older, DCAT_VERSION, Literal(previous)))

    # --- temporal coverage, computed from the events' dates --------------------------------
    if stats.start_date:
        period = iri("dataset#temporal-coverage")
        g.add((dataset, DCTERMS.temporal, period))
        g.add((period, RDF.type, DCTERMS.PeriodOfTime))
        g.add((period, DCAT.startDate, Literal(stats.start_date, datatype=XSD.date)))
        g.add((period, DCAT.endDate, Literal(stats.end_date, datatype=XSD.date)))

    # --- distributions: one per dump, one for the SPARQL endpoint ---------------------------
    for name, (key, media, file_type, w3c_format, compression, title) in DUMP_FORMATS.items():
        described = files[name]
        dist, url = iri(f"dataset#dump-{key}"), iri(f"dumps/{name}")
        g.add((dataset, DCAT.distribution, dist))
        g.add((dataset, VOID.dataDump, url))
        g.add((dataset, VOID.feature, URIRef(w3c_format)))
        g.add((dist, RDF.type, DCAT.Distribution))
        g.add((dist, DCTERMS.title, Literal(f"Full dump: {title}", lang="en")))
        g.add((dist, DCTERMS.description, Literal(
            f"The whole dataset (release {version}) in {title}"
            + (", with the named graph of every statement" if key != "turtle" else
               ": every statement once, without its named graph")
            + ".", lang="en")))
        g.add((dist, DCAT.accessURL, url))
        g.add((dist, DCAT.downloadURL, url))
        g.add((url, RDF.type, RDFS.Resource))
        g.add((dist, DCAT.mediaType, _media_type(g, media)))
        if compression:
            g.add((dist, DCAT.compressFormat, _media_type(g, compression)))
        fmt = URIRef(FILE_TYPE + file_type)
        g.add((dist, DCTERMS.format, fmt))
        g.add((fmt, RDF.type, DCTERMS.MediaTypeOrExtent))
        g.add((dist, DCAT.byteSize, Literal(described["bytes"], datatype=XSD.nonNegativeInteger)))
        checksum = iri(f"dataset#dump-{key}-checksum")
        g.add((dist, SPDX.checksum, checksum))
        g.add((checksum, RDF.type, SPDX.Checksum))
        g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        g.add((checksum, SPDX.checksumValue, Literal(described["sha256"], datatype=XSD.hexBinary, normalize=False)))
        g.add((dist, DCTERMS.issued, modified))
        g.add((dist, DCTERMS.modified, modified))
        g.add((dist, DCTERMS.license, licence))
        g.add((dist, DCTERMS.conformsTo, iri("shapes")))
    g.add((SPDX.checksumAlgorithm_sha256, RDF.type, SPDX.ChecksumAlgorithm))

    service, sparql = iri("dataset#sparql-service"), iri("sparql")
    dist = iri("dataset#sparql-endpoint")
    g.add((dataset, DCAT.distribution, dist))
    g.add((dist, RDF.type, DCAT.Distribution))
    g.add((dist, DCTERMS.title, Literal("SPARQL 1.1 endpoint", lang="en")))
    g.add((dist, DCTERMS.description, Literal(
        "Query the current release with SPARQL 1.1 (read-only); the default graph is the union of the named graphs.",
        lang="en")))
    g.add((dist, DCAT.accessURL, sparql))
    g.add((dist, DCAT.accessService, service))
    g.add((dist, DCTERMS.license, licence))
    g.add((sparql, RDF.type, RDFS.Resource))
    g.add((service, DCTERMS.license, licence))

    # --- VoID ------------------------------------------------------------------------------
    for predicate, value in [
        (VOID.triples, stats.triples), (VOID.entities, stats.entities),
        (VOID.distinctSubjects, stats.distinct_subjects), (VOID.distinctObjects, stats.distinct_objects),
        (VOID.properties, stats.properties), (VOID.classes, stats.classes),
    ]:
        g.add((dataset, predicate, Literal(value, datatype=XSD.integer)))
    g.add((dataset, VOID.uriSpace, Literal(base + "id/")))
    g.add((dataset, VOID.sparqlEndpoint, sparql))
    g.add((dataset, VOID.rootResource, iri("id/scheme/topics")))
    for example in stats.example_resources:
        g.add((dataset, VOID.exampleResource, URIRef(example)))
    for vocabulary in stats.vocabularies:
        g.add((dataset, VOID.vocabulary, URIRef(vocabulary)))
    for number, (cls, n) in enumerate(sorted(stats.class_partitions.items()), 1):
        part = iri(f"dataset#class-{number}")
        g.add((dataset, VOID.classPartition, part))
        g.add((part, VOID["class"], URIRef(cls)))
        g.add((part, VOID.entities, Literal(n, datatype=XSD.integer)))
    for number, (prop, n) in enumerate(sorted(stats.property_partitions.items()), 1):
        part = iri(f"dataset#property-{number}")
        g.add((dataset, VOID.propertyPartition, part))
        g.add((part, VOID.property, URIRef(prop)))
        g.add((part, VOID.triples, Literal(n, datatype=XSD.integer)))
    for graph_name, n in sorted(stats.graphs.items()):
        subset = URIRef(graph_name)
        g.add((dataset, VOID.subset, subset))
        g.add((subset, RDF.type, VOID.Dataset))
        g.add((subset, VOID.triples, Literal(n, datatype=XSD.integer)))
    for (target, predicate), n in sorted(stats.linksets.items()):
        linkset = iri(f"dataset#linkset-{target}-{_local_name(predicate)}")
        g.add((dataset, VOID.subset, linkset))
        g.add((linkset, RDF.type, VOID.Linkset))
        g.add((linkset, VOID.subjectsTarget, dataset))
        g.add((linkset, VOID.objectsTarget, iri(f"dataset#{target}")))
        g.add((linkset, VOID.linkPredicate, URIRef(predicate)))
        g.add((linkset, VOID.triples, Literal(n, datatype=XSD.integer)))

    # --- quality: the SHACL verdict on this release, in DQV --------------------------------
    certificate = iri("dataset#shacl-validation")
    report = iri("dumps/validation-report.ttl")
    g.add((dataset, DQV.hasQualityAnnotation, certificate))
    g.add((certificate, RDF.type, DQV.QualityCertificate))
    g.add((certificate, OA.hasTarget, dataset))
    g.add((certificate, OA.hasBody, report))
    g.add((certificate, OA.motivatedBy, DQV.qualityAssessment))
    g.add((certificate, DCTERMS.conformsTo, iri("shapes")))
    g.add((certificate, PROV.generatedAtTime, modified))
    g.add((certificate, RDFS.seeAlso, iri("dataset/quality")))
    g.add((certificate, RDFS.comment, Literal(
        f"Release {version} was validated against the SHACL shapes at {base}shapes before it was "
        f"published: it {'conforms' if validation['conforms'] else 'does NOT conform'} "
        f"({validation['results']} result(s)). The SHACL validation report is the body of this annotation.",
        lang="en")))
    for metric, value in [
        ("conforms", Literal(bool(validation["conforms"]))),
        ("results", Literal(validation["results"], datatype=XSD.integer)),
        ("shapes", Literal(validation.get("shapes", 0), datatype=XSD.integer)),
        ("focus-nodes", Literal(validation.get("focus_nodes", 0), datatype=XSD.integer)),
    ]:
        measurement = iri(f"dataset#shacl-{metric}-measurement")
        g.add((dataset, DQV.hasQualityMeasurement, measurement))
        g.add((measurement, RDF.type, DQV.QualityMeasurement))
        g.add((measurement, DQV.computedOn, dataset))
        g.add((measurement, DQV.isMeasurementOf, iri(f"dataset#shacl-{metric}")))
        g.add((measurement, DQV.value, value))
        g.add((measurement, PROV.wasDerivedFrom, report))
    return g


def _media_type(g: Graph, media: str) -> URIRef:
    node = URIRef(IANA + media)
    g.add((node, RDF.type, DCTERMS.MediaType))
    return node


def _local_name(iri: str) -> str:
    import re
    return re.split(r"[#/]", iri)[-1].lower()


def count_focus_nodes(shapes: Graph, store) -> tuple[int, int]:
    """(number of shapes, number of distinct focus nodes their targets select), the targets read
    from the shapes graph and evaluated by SPARQL over the built store (the union of its graphs,
    which is what was validated: the data and the ontology)."""
    node_shapes = set(shapes.subjects(RDF.type, SH.NodeShape)) | set(shapes.subjects(RDF.type, SH.PropertyShape))
    classes, nodes, subjects_of, objects_of = set(), set(), set(), set()
    for shape in node_shapes:
        classes |= set(shapes.objects(shape, SH.targetClass))
        if (shape, RDF.type, RDFS.Class) in shapes or (shape, RDF.type, OWL.Class) in shapes:
            classes.add(shape)  # implicit class target
        nodes |= set(shapes.objects(shape, SH.targetNode))
        subjects_of |= set(shapes.objects(shape, SH.targetSubjectsOf))
        objects_of |= set(shapes.objects(shape, SH.targetObjectsOf))
    values = lambda terms: " ".join(sorted(t.n3() for t in terms))  # noqa: E731
    parts = []
    if classes:
        parts.append(f"{{ VALUES ?c {{ {values(classes)} }} ?f a/<{RDFS.subClassOf}>* ?c }}")
    if nodes:
        parts.append(f"{{ VALUES ?f {{ {values(nodes)} }} }}")
    if subjects_of:
        parts.append(f"{{ VALUES ?p {{ {values(subjects_of)} }} ?f ?p [] }}")
    if objects_of:
        parts.append(f"{{ VALUES ?p {{ {values(objects_of)} }} [] ?p ?f }}")
    if not parts:
        return len(node_shapes), 0
    query = f"SELECT (COUNT(DISTINCT ?f) AS ?n) WHERE {{ {' UNION '.join(parts)} }}"
    row = next(iter(store.query(query, use_default_graph_as_union=True)))
    return len(node_shapes), int(row[0].value)
