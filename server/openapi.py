"""``/openapi.json``: the OpenAPI 3.1 description of the whole HTTP interface.

The description is data, written by hand in ``openapi/openapi.json`` at the project root (not
generated from the code, so that it states what the interface promises); it is served as it
is, read once per process. tests/test_openapi.py keeps it true: every route of the app is
described and every described path is a route, with the same methods; and the fuzz tests
(tests/test_fuzz.py) send schemathesis' requests generated from it to a live server.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, current_app, request

from .app import error_response
from .config import PROJECT_ROOT
from .negotiation import best_match

blueprint = Blueprint("openapi", __name__)

DESCRIPTION = PROJECT_ROOT / "openapi" / "openapi.json"
MEDIA_TYPE = "application/vnd.oai.openapi+json"
OFFERS = (MEDIA_TYPE, "application/json")


@lru_cache(maxsize=1)
def _load(path: Path = DESCRIPTION) -> tuple[bytes, str]:
    body = path.read_bytes()
    json.loads(body)  # fail loudly at the first request, not in a client, if it is not JSON
    return body, hashlib.sha256(body).hexdigest()[:32]


def description() -> dict:
    return json.loads(_load()[0])


@blueprint.get("/openapi.json")
def openapi():
    accept = request.accept_mimetypes
    media = best_match(accept, OFFERS) if accept else MEDIA_TYPE
    if media is None:
        return error_response(406, "Not Acceptable", "The OpenAPI description is available as JSON only.",
                              available=list(OFFERS))
    body, tag = _load()
    response = current_app.response_class(body, status=200)
    response.headers["Content-Type"] = media  # JSON: UTF-8 by definition, no charset parameter
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Vary"] = "Accept"
    response.set_etag(tag)
    return response.make_conditional(request)
