"""What the endpoint keeps per query string and per host is what werkzeug computes per request.

A GET's SPARQL operation is kept per raw query string and the host URL per scheme and host
(server/sparql_protocol.py, server/app.py); these compare both with werkzeug's own parsing of
the same requests, including the odd ones.
"""
from __future__ import annotations

import pytest
from flask import Flask, request
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from server import app as app_module
from server.sparql_protocol import ProtocolError, _get_operation, operation_from

QUERY_STRINGS = [
    "query=ASK%20%7B%20%3Fs%20%3Fp%20%3Fo%20%7D",
    "query=SELECT+*+WHERE+%7B%3Fs+%3Fp+%3Fo%7D&format=json",
    "query=ASK%7B%7D&format=json&format=application%2Fsparql-results%2Bjson,text%2Fcsv",
    "query=ASK%7B%7D&format=&format=%20",
    "query=ASK%7B%7D&default-graph-uri=http%3A%2F%2Fa%2Fg1&default-graph-uri=http%3A%2F%2Fa%2Fg2"
    "&named-graph-uri=http%3A%2F%2Fa%2Fn&default-graph-uri=",
    "query=SELECT%20%3Fs%20WHERE%20%7B%3Fs%20%3Fp%20%22caf%C3%A9%22%7D",
    "query=ASK%7B%7D%ZZ&x=%",                                        # malformed escapes
    "query=%D8%A7%D9%84%D8%A5%D8%B3%D9%83%D9%88%D8%A7",               # Arabic
    "query",                                                           # no value
    "format=json",                                                     # no query
    "",
]
REFUSED = ["query=ASK%7B%7D&query=ASK%7B%7D", "update=CLEAR%20ALL", "query=ASK%7B%7D&update=x",
           "query=SELECT%20%3Fs%20WHERE%20%7B%3Fs%20%3Fp%20%22caf%E9%22%7D"]  # an escape that is not UTF-8


def _request(query_string: str) -> Request:
    return Request(EnvironBuilder(path="/sparql", query_string=query_string).get_environ())


@pytest.mark.parametrize("query_string", QUERY_STRINGS)
def test_a_kept_get_operation_is_the_one_werkzeug_parses(query_string):
    request = _request(query_string)
    expected = _get_operation(request.args, request.query_string)
    assert operation_from(_request(query_string)) == expected
    assert operation_from(_request(query_string)) == expected  # the second time, from the memo


@pytest.mark.parametrize("query_string", REFUSED)
def test_a_refused_get_is_refused_every_time(query_string):
    for _ in range(2):
        with pytest.raises(ProtocolError) as refused:
            operation_from(_request(query_string))
        assert refused.value.status in (400, 403)


def test_a_long_query_string_is_parsed_as_werkzeug_does():
    query_string = "query=" + "%20" * 5000 + "ASK%7B%7D"
    request = _request(query_string)
    assert operation_from(_request(query_string)) == _get_operation(request.args, request.query_string)


@pytest.mark.parametrize("base_url", [
    "http://localhost", "http://localhost:8080", "https://example.org:443", "http://example.org:80",
    "https://w3id.org:8443", "http://[::1]:5000", "http://xn--bcher-kva.example",
])
def test_the_kept_host_url_is_werkzeugs(base_url):
    app = Flask(__name__)
    for _ in range(2):
        with app.test_request_context("/sparql", base_url=base_url):
            assert app_module.host_url() == request.host_url


def test_the_host_url_follows_the_host_header():
    app = Flask(__name__)
    for host in ("a.example", "b.example:81", "a.example"):
        with app.test_request_context("/sparql", headers={"Host": host}):
            assert app_module.host_url() == request.host_url == f"http://{host}/"
