"""``/dumps/``: the files of the served release, exactly as the build wrote them.

Only the files listed in the release's manifest are served (no path is ever built from the
request), each with a strong ETag (its SHA-256), Last-Modified (the release date), 304 on
revalidation and Range requests (werkzeug's conditional ``send_file``). ``/dumps/SHA256SUMS``
lists the checksums in ``sha256sum -c`` format.

A release folder is complete before ``releases/current`` points to it, and a request holds the
release it started with: a client never sees a half-written file or a mix of two releases.
"""
from __future__ import annotations

import hashlib

from flask import Blueprint, Response, request, send_file
from werkzeug.http import parse_range_header

from .app import error_response, publication
from .release import DUMPS

blueprint = Blueprint("dumps", __name__)

#: Content-Type per file: the gzip dump is served as the bytes it is (no Content-Encoding, so
#: the checksum holds for what the client saves); RDF text types carry their charset, binary
#: files (the search index) none.
_GZIP = "application/gzip"
#: what a harvester in a browser reads of a download (a resumed one included)
EXPOSED = "ETag, Last-Modified, Link, Content-Range, Accept-Ranges, Repr-Digest, X-Release"
_TEXT = ("application/n-quads", "application/n-triples", "application/trig", "application/ld+json",
         "application/rdf+xml")


def _content_type(name: str, media_type: str) -> str:
    if name.endswith(".gz"):
        return _GZIP
    if media_type.startswith("text/") or media_type in _TEXT:
        return f"{media_type}; charset=utf-8"
    return media_type


def sha256sums(manifest: dict) -> str:
    return "".join(f"{d['sha256']}  {name}\n" for name, d in sorted(manifest["files"].items()))


@blueprint.get("/dumps/")
@blueprint.get("/dumps")
def index():
    pub = publication()
    m = pub.release.manifest
    listing = {
        "version": m["version"], "created": m["created"], "previous": m.get("previous"),
        "description": "/dataset", "checksums": "/dumps/SHA256SUMS",
        "files": {name: {**d, "url": f"/dumps/{name}", "is_dump": name in DUMPS} for name, d in m["files"].items()},
    }
    response = Response(_json(listing), content_type="application/json")
    return _conditional(response, pub, f"{pub.version}-index")


@blueprint.get("/dumps/SHA256SUMS")
def checksums():
    pub = publication()
    body = sha256sums(pub.release.manifest)
    response = Response(body, content_type="text/plain; charset=utf-8")
    return _conditional(response, pub, hashlib.sha256(body.encode()).hexdigest())


@blueprint.get("/dumps/<name>")
def dump(name: str):
    pub = publication()
    described = pub.release.manifest["files"].get(name)
    if described is None:
        return error_response(404, "Not Found", f"No file {name!r} in release {pub.version}; "
                              "the files are listed at /dumps/ and /dumps/SHA256SUMS.")
    _ignore_unservable_range(request.environ)
    content_type = _content_type(name, described["media_type"])
    # (a type given, send_file guesses no Content-Encoding: gzip from the .gz)
    response = send_file(pub.release.file(name), mimetype=content_type, conditional=True,
                         etag=described["sha256"], last_modified=pub.created, max_age=300, download_name=name)
    response.headers["Content-Type"] = content_type  # send_file adds a charset to a text type, even a second
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    response.headers["Link"] = '</dataset>; rel="describedby"'
    # RFC 9530: the digest of the whole file, also on a 206 partial response.
    response.headers["Repr-Digest"] = "sha-256=:" + _b64(described["sha256"]) + ":"
    response.headers["X-Release"] = pub.version
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    return response


def _ignore_unservable_range(environ: dict) -> None:
    """RFC 9110 §14.2: a Range in another unit than bytes, or of several ranges (no multipart
    answers here), is ignored and the whole file sent; werkzeug answered 416 to both."""
    if "HTTP_RANGE" not in environ:
        return
    asked = parse_range_header(environ["HTTP_RANGE"])
    if asked is None or asked.units != "bytes" or len(asked.ranges) != 1:
        del environ["HTTP_RANGE"]


def _b64(hex_digest: str) -> str:
    import base64
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def _conditional(response: Response, pub, tag: str) -> Response:
    response.set_etag(tag)
    response.last_modified = pub.created
    response.headers["Cache-Control"] = "public, max-age=300"
    return response.make_conditional(request)


def _json(data) -> str:
    import json
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
