"""The OpenAPI description (openapi/openapi.json, served at /openapi.json) is true to the app.

- every route of ``create_app()`` is a path of the description and every described path is a
  route, with the same methods (HEAD and Flask's automatic OPTIONS aside: the description's
  info says every GET answers HEAD; OPTIONS is described where the app answers it itself);
- every path template's parameters are the route's arguments, and described as path parameters;
- every ``$ref`` resolves, and schemathesis loads it as an OpenAPI 3.1 schema;
- the server serves the file's bytes, with an ETag and 304, as application/vnd.oai.openapi+json;
- it is linked from the landing page and from the SPARQL service description.
"""
from __future__ import annotations

import json
import re

import pytest
from rdflib import Graph, URIRef

from server.app import create_app
from server.config import PROJECT_ROOT, Settings

DESCRIPTION = PROJECT_ROOT / "openapi" / "openapi.json"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
#: Methods the app answers on every route without a view of its own saying so.
AUTOMATIC = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(DESCRIPTION.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def routes(tmp_path_factory) -> dict[str, set[str]]:
    app = create_app(Settings(releases=tmp_path_factory.mktemp("no-release")))
    found: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([A-Za-z_]\w*)>", r"{\1}", rule.rule)
        methods = set(rule.methods) - AUTOMATIC
        # OPTIONS answered by a view of its own (not Flask's automatic one) is part of the interface
        if "OPTIONS" in rule.methods and not getattr(app.view_functions[rule.endpoint], "provide_automatic_options", True):
            methods.add("OPTIONS")
        found.setdefault(path, set()).update(methods)
    return found


def _described_methods(item: dict) -> set[str]:
    return {m.upper() for m in item if m in METHODS} - {"HEAD"}


def test_every_route_is_described(spec, routes):
    missing = sorted(set(routes) - set(spec["paths"]))
    assert not missing, f"routes missing from openapi/openapi.json: {missing}"


def test_every_described_path_is_a_route(spec, routes):
    extra = sorted(set(spec["paths"]) - set(routes))
    assert not extra, f"described paths the app does not have: {extra}"


def test_methods_agree(spec, routes):
    for path, methods in routes.items():
        described = _described_methods(spec["paths"][path]) - {"OPTIONS"}
        assert described == methods - {"OPTIONS"}, (path, described, methods)


def test_path_parameters_are_the_routes_arguments(spec):
    for path, item in spec["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            if method not in METHODS or method == "options":
                continue
            params = [_resolve(spec, p) for p in operation.get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == names, (path, method, in_path, names)
            assert all(p.get("required") for p in params if p["in"] == "path"), (path, method)


def test_operation_ids_are_unique_and_every_operation_has_responses(spec):
    ids = [op["operationId"] for item in spec["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(set(ids))
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method in METHODS:
                assert operation["responses"], operation["operationId"]
                for status in operation["responses"]:
                    assert re.fullmatch(r"[1-5]\d\d", status), (operation["operationId"], status)
                    assert not status.startswith("500"), "a 500 is never part of the interface"


def test_error_responses_are_problem_json_or_html(spec):
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                content = _resolve(spec, response)["content"]
                assert set(content) == {"application/problem+json", "text/html"}, (operation["operationId"], status)


def _resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        assert node["$ref"].startswith("#/"), node
        target = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def test_every_reference_resolves(spec):
    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                _resolve(spec, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(spec)


def test_schemathesis_loads_it_as_openapi_3_1(spec):
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(spec)
    operations = [op for op in schema.get_all_operations()]
    assert len(operations) == sum(1 for item in spec["paths"].values() for m in item if m in METHODS)
    assert all(op.ok() for op in operations), [op.err() for op in operations if not op.ok()]


def test_served_as_it_is(server):
    response = server.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.oai.openapi+json"
    assert response.content == DESCRIPTION.read_bytes()
    assert server.get("/openapi.json", headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    plain = server.get("/openapi.json", headers={"Accept": "application/json"})
    assert plain.headers["Content-Type"] == "application/json" and plain.content == response.content
    refused = server.get("/openapi.json", headers={"Accept": "text/turtle"})
    assert refused.status_code == 406 and refused.headers["Content-Type"].startswith("application/problem+json")


def test_linked_from_the_landing_page(server):
    page = server.get("/", headers={"Accept": "text/html"}).text
    link_header = server.get("/").headers.get("Link", "")
    assert ('rel="service-desc"' in page and 'href="/openapi.json"' in page) or \
        ("</openapi.json>" in link_header and "service-desc" in link_header)


def test_linked_from_the_sparql_service_description(server):
    response = server.get("/sparql", headers={"Accept": "text/turtle"})
    graph = Graph().parse(data=response.text, format="turtle")
    endpoint = URIRef(server.url + "/sparql")
    described = {str(o) for o in graph.objects(endpoint, URIRef("http://purl.org/dc/terms/conformsTo"))} | \
        {str(o) for o in graph.objects(endpoint, URIRef("http://www.w3.org/2000/01/rdf-schema#seeAlso"))}
    assert server.url + "/openapi.json" in described, described
