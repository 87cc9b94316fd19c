"""``lodpub selftest URL``: check a deployment from outside, as a harvester and a SPARQL client would.

Nothing is assumed about the data: the dataset description at ``/dataset`` names the dataset
(its IRI gives the base of the canonical IRIs), example resources, the SPARQL endpoint and the
dumps with their checksums; ``/robots.txt`` names the sitemap. Canonical IRIs under the base are
fetched from the deployment being checked. Real clients do the work: requests, rdflib, pyld and
SPARQLWrapper. One line per check, ``PASS`` or ``FAIL`` and what was wrong; exit status 1 if any
check failed.
"""
from __future__ import annotations

import hashlib
import json
import sys
import urllib.error
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, TextIO
from urllib.parse import urljoin, urlsplit

import requests
from pyld import jsonld
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, RDF
from SPARQLWrapper import JSON, TURTLE, XML, SPARQLWrapper

VOID = Namespace("http://rdfs.org/ns/void#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
USER_AGENT = "lodpub-selftest/1"

#: (label, media type, rdflib parser; JSON-LD is expanded by pyld first)
DOCUMENT_FORMATS = (
    ("Turtle", "text/turtle", "turtle"),
    ("N-Triples", "application/n-triples", "nt"),
    ("RDF/XML", "application/rdf+xml", "xml"),
    ("JSON-LD", "application/ld+json", "json-ld"),
)
#: at most this many example resources are checked
MAX_EXAMPLES = 5


class Failed(Exception):
    """A check's finding: what is wrong, in a sentence."""


class Skipped(Exception):
    """A check that could not run because one it needs failed."""


@dataclass
class Dump:
    url: str
    sha256: str | None
    size: int | None


@dataclass
class Described:
    """What the dataset description says (canonical IRIs)."""
    dataset: str
    base: str
    examples: list[str]
    endpoint: str | None
    dumps: list[Dump] = field(default_factory=list)


class Selftest:
    def __init__(self, url: str, out: TextIO = sys.stdout, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.out, self.timeout = out, timeout
        self.http = requests.Session()
        self.http.headers["User-Agent"] = USER_AGENT
        self.failures = 0
        self.described: Described | None = None
        self.documents: dict[str, Graph] = {}   # example IRI → its document as Turtle
        self.contexts_fetched: list[str] = []
        self.context_problems: list[str] = []

    # -- running ---------------------------------------------------------------------------
    def run(self) -> int:
        self.check("landing page", self.landing_page)
        self.described = self.check("dataset description", self.dataset_description)
        for iri in self.described.examples[:MAX_EXAMPLES] if self.described else []:
            path = self.path_of(iri)
            doc = self.check(f"303 {path}", self.see_other, iri)
            for label, media, parser in DOCUMENT_FORMATS:
                self.check(f"{label} {path}", self.document, iri, doc, label, media, parser)
            self.check(f"JSON-LD context {path}", self.jsonld_context, doc)
        self.sparql_checks()
        for dump in self.described.dumps if self.described else []:
            self.check(f"dump {self.path_of(dump.url)}", self.download, dump)
        self.check("sitemap", self.sitemap)
        self.check("health", self.health)
        print(f"{'FAIL' if self.failures else 'PASS'}: {self.failures} check(s) failed at {self.url}", file=self.out)
        return 1 if self.failures else 0

    def check(self, name: str, run: Callable, *args):
        """Run one check, print its line; its value, or None when it failed. A check given
        None (what an earlier, failed check would have found) is skipped."""
        try:
            if any(arg is None for arg in args):
                raise Skipped("not run: a check it depends on failed")
            value = run(*args)
        except Skipped as why:
            print(f"SKIP  {name}: {why}", file=self.out, flush=True)
            return None
        except Failed as why:
            return self._fail(name, str(why))
        except Exception as error:  # noqa: BLE001 — a check that crashes fails, saying why
            return self._fail(name, f"{type(error).__name__}: {_short(error)}")
        detail = value[1] if isinstance(value, tuple) else ""
        print(f"PASS  {name}" + (f": {detail}" if detail else ""), file=self.out, flush=True)
        return value[0] if isinstance(value, tuple) else value

    def _fail(self, name: str, why: str) -> None:
        self.failures += 1
        print(f"FAIL  {name}: {why}", file=self.out, flush=True)
        return None

    # -- addresses -------------------------------------------------------------------------
    def local(self, iri: str) -> str:
        """Where a canonical IRI of the dataset is served on this deployment (others: as is)."""
        base = self.described.base if self.described else None
        if base and iri.startswith(base):
            return self.url + "/" + iri[len(base):]
        return iri

    def path_of(self, iri: str) -> str:
        local = self.local(iri)
        return local[len(self.url):] if local.startswith(self.url) else local

    def get(self, url: str, accept: str | None = None, **kwargs) -> requests.Response:
        headers = {"Accept": accept} if accept else {}
        kwargs.setdefault("timeout", self.timeout)
        return self.http.get(url if "://" in url else self.url + url, headers=headers, **kwargs)

    # -- the checks ------------------------------------------------------------------------
    def landing_page(self):
        response = self.get("/", "text/html")
        _expect(response, 200, "text/html")
        if b"<html" not in response.content[:2000].lower():
            raise Failed("the answer is not an HTML page")
        return True, f"{len(response.content)} bytes of HTML"

    def dataset_description(self):
        response = self.get("/dataset", "text/turtle")
        _expect(response, 200, "text/turtle")
        graph = Graph().parse(data=response.content, format="turtle", publicID=response.url)
        dataset = _dataset_node(graph, response.links.get("describes", {}).get("url"))
        base = _base(str(dataset), response.url[len(self.url) + 1:])
        examples = sorted(str(o) for o in graph.objects(dataset, VOID.exampleResource))
        if not examples:
            raise Failed(f"<{dataset}> names no void:exampleResource: nothing to dereference")
        endpoint = graph.value(dataset, VOID.sparqlEndpoint)
        dumps = [_dump(graph, dist) for dist in graph.objects(dataset, DCAT.distribution)
                 if graph.value(dist, DCAT.downloadURL) is not None]
        if not dumps:
            raise Failed(f"<{dataset}> has no distribution with a dcat:downloadURL (no dumps)")
        unchecked = [d.url for d in dumps if not d.sha256]
        if unchecked:
            raise Failed(f"no SHA-256 checksum (spdx:checksum) stated for {', '.join(unchecked)}")
        described = Described(str(dataset), base, examples, str(endpoint) if endpoint else None, dumps)
        return described, (f"<{dataset}>, base <{base}>, {len(examples)} example(s), {len(dumps)} dump(s), "
                           f"endpoint {f'<{endpoint}>' if endpoint else 'none'}")

    def see_other(self, iri: str):
        response = self.get(self.local(iri), "text/turtle", allow_redirects=False)
        if response.status_code != 303:
            raise Failed(f"expected 303 See Other, got {response.status_code}")
        location = response.headers.get("Location")
        if not location:
            raise Failed("303 without a Location header")
        target = urljoin(response.url, location)
        if urlsplit(target).path == urlsplit(response.url).path:
            raise Failed(f"303 to itself ({location})")
        return target, f"→ {location}"

    def document(self, iri: str, url: str, label: str, media: str, parser: str):
        response = self.get(url, media)
        _expect(response, 200, media)
        if parser == "json-ld":  # rdflib reads the expanded form: no context to fetch from the base
            graph = Graph().parse(data=json.dumps(self._expanded(response)), format="json-ld")
        else:
            graph = Graph().parse(data=response.content, format=parser, publicID=url)
        if (URIRef(iri), None, None) not in graph:
            raise Failed(f"the {label} document says nothing about <{iri}> ({len(graph)} triples)")
        if parser == "turtle":
            self.documents[iri] = graph
            return graph, f"{len(graph)} triples"
        reference = self.documents.get(iri)
        if reference is None:
            raise Failed(f"{len(graph)} triples, but no Turtle to compare with")
        if not isomorphic(graph, reference):
            raise Failed(f"not the same graph as the Turtle: {len(graph)} triples against {len(reference)}"
                         f"{_difference(graph, reference)}")
        return graph, f"{len(graph)} triples, the same graph as the Turtle"

    def jsonld_context(self, url: str):
        response = self.get(url, "application/ld+json")
        _expect(response, 200, "application/ld+json")
        document = response.json()
        context = document.get("@context") if isinstance(document, dict) else None
        urls = [c for c in (context if isinstance(context, list) else [context]) if isinstance(c, str)]
        if not urls:
            raise Failed("the document names no remote @context")
        self.contexts_fetched.clear()
        expanded = self._expanded(response)
        if not expanded:
            raise Failed("the document expands to nothing")
        return True, (f"@context {', '.join(urls)} loaded from {', '.join(self.contexts_fetched)}; "
                      f"{len(expanded)} node(s) expanded by pyld")

    def _expanded(self, response: requests.Response) -> list:
        self.context_problems = []
        try:
            return jsonld.expand(response.json(), {"base": response.url, "documentLoader": self._load_context})
        except jsonld.JsonLdError as error:
            if self.context_problems:  # pyld's own message does not say what went wrong
                raise Failed("cannot load the context: " + "; ".join(self.context_problems)) from None
            raise Failed(f"pyld cannot expand it: {_short(error)}") from None

    def _load_context(self, url: str, options: dict | None = None) -> dict:
        """pyld's loader: the dataset's own contexts come from the deployment checked."""
        local = self.local(url)
        response = self.get(local, "application/ld+json, application/json;q=0.5")
        if response.status_code != 200:
            self.context_problems.append(f"{local} answered {response.status_code}")
            raise jsonld.JsonLdError(f"{local} answered {response.status_code}", "loading document failed",
                                     code="loading remote context failed")
        try:
            document = response.json()
        except ValueError:
            self.context_problems.append(f"{local} is not JSON")
            raise
        self.contexts_fetched.append(local)
        return {"contentType": response.headers.get("Content-Type", "").split(";")[0],
                "contextUrl": None, "documentUrl": url, "document": document}

    # -- SPARQL ----------------------------------------------------------------------------
    def sparql_checks(self) -> None:
        described = self.described
        if described and not described.endpoint:
            self._fail("SPARQL", "the dataset description names no void:sparqlEndpoint")
            return
        endpoint = self.local(described.endpoint) if described else None
        example = described.examples[0] if described else None
        self.check("SPARQL SELECT (JSON)", self.select_json, endpoint, example)
        self.check("SPARQL SELECT (XML)", self.select_xml, endpoint, example)
        self.check("SPARQL ASK", self.ask, endpoint, example)
        self.check("SPARQL CONSTRUCT (Turtle)", self.construct, endpoint, example)
        self.check("SPARQL UPDATE refused", self.update_refused, endpoint)
        self.check("SPARQL service description", self.service_description, endpoint)

    def _client(self, endpoint: str, query: str, fmt: str) -> SPARQLWrapper:
        client = SPARQLWrapper(endpoint, agent=USER_AGENT)
        client.setTimeout(int(self.timeout))
        client.setQuery(query)
        client.setReturnFormat(fmt)
        return client

    def select_json(self, endpoint: str, example: str):
        query = f"SELECT ?p ?o WHERE {{ <{example}> ?p ?o }} LIMIT 100"
        result = self._client(endpoint, query, JSON).query().convert()
        rows = result["results"]["bindings"]
        if not rows:
            raise Failed(f"no statement about <{example}>")
        if set(result["head"]["vars"]) != {"p", "o"}:
            raise Failed(f"variables {result['head']['vars']}, expected p and o")
        return True, f"{len(rows)} row(s)"

    def select_xml(self, endpoint: str, example: str):
        query = f"SELECT ?p ?o WHERE {{ <{example}> ?p ?o }} LIMIT 100"
        document = self._client(endpoint, query, XML).query().convert()
        rows = document.getElementsByTagName("result")
        if not rows:
            raise Failed(f"no statement about <{example}>")
        return True, f"{len(rows)} row(s)"

    def ask(self, endpoint: str, example: str):
        yes = self._client(endpoint, f"ASK {{ <{example}> ?p ?o }}", JSON).query().convert()
        no = self._client(endpoint, "ASK { <urn:lodpub:selftest:absent> ?p ?o }", JSON).query().convert()
        if yes.get("boolean") is not True or no.get("boolean") is not False:
            raise Failed(f"ASK answered {yes.get('boolean')} for the example and {no.get('boolean')} for an absent IRI")
        return True, "true for the example, false for an absent IRI"

    def construct(self, endpoint: str, example: str):
        query = f"CONSTRUCT {{ <{example}> ?p ?o }} WHERE {{ <{example}> ?p ?o }}"
        body = self._client(endpoint, query, TURTLE).query().convert()
        graph = Graph().parse(data=body, format="turtle")
        if not len(graph):
            raise Failed(f"an empty graph for <{example}>")
        document = self.documents.get(example)
        if document is not None:
            missing = [t for t in graph if not any(_is_blank(term) for term in t) and t not in document]
            if missing:
                raise Failed(f"{len(missing)} triple(s) the document of <{example}> lacks, e.g. {_triple(missing[0])}")
        return True, f"{len(graph)} triples" + (", all in the example's document" if document is not None else "")

    def update_refused(self, endpoint: str):
        client = self._client(endpoint, "INSERT DATA { <urn:lodpub:selftest> <urn:lodpub:selftest> 1 }", JSON)
        client.setMethod("POST")
        try:
            client.query()
        except urllib.error.HTTPError as error:
            if 400 <= error.code < 500:
                return True, f"{error.code}"
            raise Failed(f"expected a 4xx refusal, got {error.code}") from None
        except Exception as error:  # SPARQLWrapper's own exceptions for 400, 401, 404, 414
            if type(error).__module__.startswith("SPARQLWrapper") and "500" not in str(error):
                return True, type(error).__name__
            raise
        raise Failed("the endpoint accepted an update")

    def service_description(self, endpoint: str):
        response = self.get(endpoint, "text/turtle")
        _expect(response, 200, "text/turtle")
        graph = Graph().parse(data=response.content, format="turtle", publicID=endpoint)
        services = list(graph.subjects(RDF.type, SD.Service))
        if not services:
            raise Failed("no sd:Service in the service description")
        endpoints = {str(e) for s in services for e in graph.objects(s, SD.endpoint)}
        return True, f"sd:endpoint {', '.join(sorted(endpoints)) or 'missing'}"

    # -- dumps, sitemap, health ------------------------------------------------------------
    def download(self, dump: Dump):
        digest, size = hashlib.sha256(), 0
        with self.get(self.local(dump.url), stream=True) as response:
            _expect(response, 200)
            for chunk in response.iter_content(1 << 16):
                digest.update(chunk)
                size += len(chunk)
        if digest.hexdigest() != dump.sha256.lower():
            raise Failed(f"SHA-256 {digest.hexdigest()}, the description states {dump.sha256}")
        if dump.size is not None and size != dump.size:
            raise Failed(f"{size} bytes, the description states {dump.size}")
        return True, f"{size} bytes, SHA-256 as stated"

    def sitemap(self):
        robots = self.get("/robots.txt", "text/plain")
        named = [line.split(":", 1)[1].strip() for line in robots.text.splitlines()
                 if robots.status_code == 200 and line.lower().startswith("sitemap:")]
        url = named[0] if named else self.url + "/sitemap.xml"
        response = self.get(url, "application/xml")
        _expect(response, 200)
        root = ET.fromstring(response.content)
        if root.tag not in (SITEMAP + "urlset", SITEMAP + "sitemapindex"):
            raise Failed(f"the root element is {root.tag}, not a sitemap urlset or sitemapindex")
        locations = [loc.text for loc in root.iter(SITEMAP + "loc")]
        if not locations:
            raise Failed("the sitemap lists no URL")
        return True, f"{len(locations)} URL(s) at {url}" + ("" if named else " (not named in robots.txt)")

    def health(self):
        response = self.get("/health/ready", "application/json")
        if response.status_code != 200:
            raise Failed(f"/health/ready answered {response.status_code}: {_short(response.text)}")
        body = response.json()
        release = (body.get("release") or {}).get("version")
        return True, f"release {release}, store {body.get('store')}"


# -- helpers --------------------------------------------------------------------------------
def _expect(response: requests.Response, status: int, media: str | None = None) -> None:
    if response.status_code != status:
        raise Failed(f"{response.url} answered {response.status_code}, expected {status}")
    got = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media and got != media:
        raise Failed(f"{response.url} answered as {got or 'no Content-Type'}, expected {media}")


def _dataset_node(graph: Graph, linked: str | None) -> URIRef:
    if linked and (URIRef(linked), None, None) in graph:
        return URIRef(linked)
    candidates = [s for s in graph.subjects(RDF.type, DCAT.Dataset) if isinstance(s, URIRef)
                  and (s, VOID.exampleResource, None) in graph]
    if len(candidates) != 1:
        raise Failed(f"cannot tell which dataset /dataset describes ({len(candidates)} dcat:Dataset with examples)")
    return candidates[0]


def _base(dataset: str, served_at: str) -> str:
    """The base of the canonical IRIs: the dataset served at /dataset is {base}dataset."""
    if served_at and dataset.endswith("/" + served_at):
        return dataset[: -len(served_at)]
    raise Failed(f"the dataset <{dataset}> described at /{served_at} is not named {{base}}{served_at}: "
                 "cannot tell the base of the canonical IRIs")


def _dump(graph: Graph, distribution) -> Dump:
    sha256 = None
    for checksum in graph.objects(distribution, SPDX.checksum):
        if graph.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256:
            sha256 = str(graph.value(checksum, SPDX.checksumValue))
    size = graph.value(distribution, DCAT.byteSize)
    return Dump(str(graph.value(distribution, DCAT.downloadURL)), sha256,
                int(size) if isinstance(size, Literal) else None)


def _is_blank(term) -> bool:
    return not isinstance(term, (URIRef, Literal))


def _triple(triple) -> str:
    return " ".join(term.n3() for term in triple)


def _difference(graph: Graph, reference: Graph) -> str:
    extra = [t for t in graph if not any(_is_blank(x) for x in t) and t not in reference]
    missing = [t for t in reference if not any(_is_blank(x) for x in t) and t not in graph]
    parts = ([f"; e.g. missing {_triple(missing[0])}"] if missing else []) + \
            ([f"; e.g. extra {_triple(extra[0])}"] if extra else [])
    return "".join(parts)


def _short(error: object, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + "…"


def run(url: str, out: TextIO = sys.stdout, timeout: float = 30.0) -> int:
    """Check the deployment at `url`; 0 if every check passed, else 1."""
    return Selftest(url, out, timeout).run()
