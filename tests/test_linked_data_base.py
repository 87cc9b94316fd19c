"""Another base: the same sources published under another domain, served on this host.

Dynamic server only: it builds and serves its own release under another base (the static
export of a release is covered by tests/test_static_export.py).
"""
from __future__ import annotations

import pytest
from rdflib import URIRef

from server.config import Settings
from tests.conftest import LiveServer, run_cli
from tests.test_linked_data_helpers import MEETING, Html
from tests.test_linked_data_html import copy_sources

OTHER = "https://data.example.org/un/"


@pytest.fixture(scope="module")
def other_base_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("other-base")
    copy_sources(root)
    settings = Settings(base=OTHER, root=root, releases=root / "releases")
    result = run_cli("build", "--root", str(root), "--releases", str(settings.releases), "--base", OTHER)
    assert result.returncode == 0, result.stderr + result.stdout
    mp = pytest.MonkeyPatch()
    mp.setenv("LODPUB_BASE", OTHER)
    try:
        live = LiveServer(settings, workers=1)
    finally:
        mp.undo()
    yield live
    live.stop()


def test_paths_map_to_the_configured_base(other_base_server):
    from rdflib import Graph
    see_other = other_base_server.get(f"/id/{MEETING}", headers={"Accept": "text/turtle"})
    assert see_other.status_code == 303 and see_other.headers["Location"] == f"/doc/{MEETING}"
    turtle = other_base_server.get(see_other.headers["Location"], headers={"Accept": "text/turtle"})
    graph = Graph().parse(data=turtle.content, format="turtle")
    assert (URIRef(OTHER + "id/" + MEETING), None, None) in graph
    assert not [t for t in graph if "w3id.org" in " ".join(map(str, t))]
    document = other_base_server.get(f"/doc/{MEETING}.jsonld").json()
    assert document["@context"] == OTHER + "context.jsonld"
    assert other_base_server.get("/context.jsonld").json()["@context"]["unm"] == OTHER + "ontology#"
    page = Html(other_base_server.get(f"/doc/{MEETING}?lang=en").text)
    assert page.find("link", rel="canonical")[0]["href"] == f"{OTHER}doc/{MEETING}?lang=en"
    hrefs = [a["href"] for a in page.find("a") if a.get("href")]
    assert "/doc/organization/escwa?lang=en" in hrefs          # links stay on the browsed host
    assert not [h for h in hrefs if h.startswith(OTHER)]
