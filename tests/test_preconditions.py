"""If-Match and If-Unmodified-Since (RFC 9110 §13.1.1, §13.1.4, in §13.2.2's order) on the app,
on both stores; and the same verdicts from the static export under nginx, which evaluates them
for its own files."""
from __future__ import annotations

import pytest
import requests

from tests.static_site import static_site  # noqa: F401 - a fixture, requested by `site`
from tests.test_linked_data_helpers import MEETING

DUMP = "/dumps/dataset.ttl"
OLD_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"


@pytest.fixture(scope="module", params=["dynamic", "static"])
def site(request, server):
    return server if request.param == "dynamic" else request.getfixturevalue("static_site")


def _get(site, path, **headers) -> requests.Response:
    return site.get(path, headers=headers)


def test_a_dump_is_sent_only_if_it_is_still_the_copy_held(site):
    current = _get(site, DUMP)
    etag, modified = current.headers["ETag"], current.headers["Last-Modified"]
    assert not etag.startswith("W/")  # a file's ETag is strong: If-Match can match it
    assert _get(site, DUMP, **{"If-Match": etag}).content == current.content
    assert _get(site, DUMP, **{"If-Match": '"a-copy-of-another-release"'}).status_code == 412
    assert _get(site, DUMP, **{"If-Match": "*"}).status_code == 200
    assert _get(site, DUMP, **{"If-Unmodified-Since": modified}).status_code == 200
    assert _get(site, DUMP, **{"If-Unmodified-Since": OLD_DATE}).status_code == 412
    # a download resumed on the copy it began with, or refused: never the rest of another file
    resumed = _get(site, DUMP, **{"If-Match": etag, "Range": "bytes=100-199"})
    assert resumed.status_code == 206 and resumed.content == current.content[100:200]
    assert _get(site, DUMP, **{"If-Match": '"other"', "Range": "bytes=100-199"}).status_code == 412
    # If-Match comes first: its failure wins over If-None-Match's 304
    assert _get(site, DUMP, **{"If-Match": '"other"', "If-None-Match": etag}).status_code == 412


def test_a_document_is_sent_only_if_it_is_still_the_copy_held(server):
    path = f"/doc/{MEETING}.ttl"
    current = _get(server, path)
    etag = current.headers["ETag"]
    assert _get(server, path, **{"If-Match": etag}).content == current.content
    refused = _get(server, path, **{"If-Match": '"of-another-release"', "Accept": "application/json"})
    assert refused.status_code == 412 and refused.headers["Content-Type"] == "application/problem+json"
    assert "If-Match" in refused.json()["detail"] and etag in refused.json()["detail"]
    assert _get(server, path, **{"If-Unmodified-Since": OLD_DATE}).status_code == 412


def test_a_weak_etag_never_satisfies_if_match(server):
    """RFC 9110 §8.8.3.2: If-Match compares strongly; a SPARQL answer's ETag is weak (the same
    results, whatever the serialiser's whitespace), so only "*" lets it through."""
    params = {"query": "ASK { ?s ?p ?o }"}
    url, accept = server.url + "/sparql", {"Accept": "application/sparql-results+json"}
    etag = requests.get(url, params=params, headers=accept, timeout=30).headers["ETag"]
    assert etag.startswith("W/")
    assert requests.get(url, params=params, headers={**accept, "If-Match": etag}, timeout=30).status_code == 412
    assert requests.get(url, params=params, headers={**accept, "If-Match": "*"}, timeout=30).status_code == 200


def test_preconditions_are_ignored_on_an_answer_that_is_not_a_success(server):
    assert _get(server, "/doc/meeting/no-such-meeting.ttl", **{"If-Match": '"x"'}).status_code == 404


def test_a_browser_is_told_in_its_language(server):
    page = _get(server, DUMP, **{"If-Match": '"x"', "Accept": "text/html", "Accept-Language": "ar"})
    assert page.status_code == 412 and page.headers["Content-Language"] == "ar"
    assert "فشل الشرط المسبق" in page.text
