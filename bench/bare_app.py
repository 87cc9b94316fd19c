"""A bare Flask app that answers fixed bytes: the framework's limit, for bench/run.py.

Every file under $BENCH_FILES is loaded once; GET /{path} answers its bytes with the media
type of its extension (the same files nginx serves). Nothing else happens per request.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response, abort

TYPES = {".html": "text/html; charset=utf-8", ".jsonld": "application/ld+json; charset=utf-8",
         ".ttl": "text/turtle; charset=utf-8", ".srj": "application/sparql-results+json; charset=utf-8",
         ".txt": "text/plain; charset=utf-8"}

ROOT = Path(os.environ.get("BENCH_FILES", "."))
FILES = {"/" + p.relative_to(ROOT).as_posix(): (p.read_bytes(), TYPES.get(p.suffix, "application/octet-stream"))
         for p in ROOT.rglob("*") if p.is_file()}

app = Flask(__name__)


@app.get("/<path:path>")
def answer(path: str):
    try:
        body, media_type = FILES["/" + path]
    except KeyError:
        abort(404)
    return Response(body, content_type=media_type)
