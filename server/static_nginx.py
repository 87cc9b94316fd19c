"""nginx rules for a static export (server/static_export.py), generated from its ``export.json``.

Writes into ``DIR/nginx/``:

| file | where it goes |
|---|---|
| ``http.conf`` | ``include``d in ``http {}``: the njs module and one ``map`` per header that differs between responses |
| ``server.conf`` | ``include``d in ``server {}``: the locations |
| ``lodpub.js`` | the njs module (server/static_nginx.js with the export's facts as ``CONFIG``) |
| ``nginx.conf`` | a complete configuration for trying it: ``nginx -p DIR/nginx -c nginx.conf`` |

Why njs (Debian: ``libnginx-mod-http-js``): content negotiation ranks ``Accept`` entries by
q-value and specificity, and picks the JSON-LD profile and the page's language; nginx's ``map``
matches one regular expression against the whole header and cannot rank
``text/turtle;q=0.5, application/ld+json``. njs only decides which exported file answers (the
same algorithm as the app: Werkzeug's parser and server/negotiation.py, ported); nginx serves the
file itself (sendfile, gzip_static, its own ETag and Last-Modified, 304, Range), adding the
headers the app sent with it from maps keyed by the response.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

JS_SOURCE = Path(__file__).with_name("static_nginx.js")
INTERNAL = "/_lodpub/"
#: The exported 406 bodies carry the Link of the document they were rendered for; njs sets the
#: Link of the document asked for from the same map the documents use.
LINK_VARIABLE = "lodpub_link"
DEBIAN_JS_MODULE = "/usr/lib/nginx/modules/ngx_http_js_module.so"


def write(manifest: dict, out: Path) -> None:
    folder = Path(out) / "nginx"
    folder.mkdir(parents=True, exist_ok=True)
    site = (Path(out) / "site").resolve()
    responses = manifest["responses"]
    constant = constant_headers(responses)
    varying = sorted({name for r in responses.values() for name in r["headers"] if name not in constant})
    config = {key: manifest[key] for key in ("base", "exact", "redirects", "special")}
    config.update({name: manifest["special"][name] for name in ("languages", "formats", "profiles", "patterns",
                                                                 "offers")})
    config["constant_headers"] = sorted(constant)
    js = f"var CONFIG = {json.dumps(config, ensure_ascii=False)};\n" + JS_SOURCE.read_text(encoding="utf-8")
    (folder / "lodpub.js").write_text(js, encoding="utf-8")
    (folder / "http.conf").write_text(http_conf(folder, responses, varying), encoding="utf-8")
    (folder / "server.conf").write_text(server_conf(site, constant, varying, manifest.get("sparql_url"),
                                                    http_date(manifest["created"])), encoding="utf-8")
    (folder / "nginx.conf").write_text(example_conf(folder), encoding="utf-8")


def constant_headers(responses: dict) -> dict[str, str]:
    """Headers every response has with the same value (CORS, nosniff …): one add_header each."""
    common: dict[str, str] | None = None
    for response in responses.values():
        headers = response["headers"]
        common = dict(headers) if common is None else {k: v for k, v in common.items() if headers.get(k) == v}
    return common or {}


def variable(header: str) -> str:
    return "lodpub_" + re.sub(r"[^a-z0-9]+", "_", header.lower())


def quoted(value: str) -> str:
    """An nginx string: quotes and backslashes escaped, "$" kept literal."""
    text = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${lodpub_dollar}")
    return f'"{text}"'


#: The keys a header's maps may be indexed by: the stem of the file (a document, whatever its
#: format and variant: its Link), the suffix (the format and variant, whatever the document: its
#: Content-Type), mode and suffix (Vary), the file (whatever URL reached it), the response.
STEM = r"^(/(?:[^/]*/)*[^/.]*)"
LEVELS = {
    "stem": lambda key: re.match(STEM, key[1:]).group(1),
    "suffix": lambda key: key[1:][len(re.match(STEM, key[1:]).group(1)):],
    "mode_suffix": lambda key: key[0] + key[1:][len(re.match(STEM, key[1:]).group(1)):],
    "file": lambda key: key[1:],
    "key": lambda key: INTERNAL + key,
}
#: A header is looked up by the first key of a cascade; the entries whose responses disagree
#: there refer to a map by the next key, and so on. The shortest cascade wins.
CASCADES = (("stem", "file", "key"), ("suffix", "file", "key"), ("mode_suffix", "file", "key"))


def header_maps(header: str, responses: dict) -> list[str]:
    """The maps giving `header`'s value for $lodpub_key (the shortest of the cascades)."""
    return min((_cascade(header, responses, levels) for levels in CASCADES), key=lambda lines: len("".join(lines)))


def _cascade(header: str, responses: dict, levels: tuple[str, ...]) -> list[str]:
    values = {key: r["headers"].get(header) for key, r in responses.items()}
    lines: list[str] = []
    for depth, level in enumerate(levels):
        key_of = LEVELS[level]
        target = variable(header) + ("" if depth == 0 else "_by_" + level)
        grouped: dict[str, set] = {}
        for key, value in values.items():
            grouped.setdefault(key_of(key), set()).add(value)
        settled = {k: next(iter(v)) for k, v in grouped.items() if len(v) == 1}
        counts = Counter(settled.values())
        default = max(counts, key=lambda v: (counts[v], v is None)) if counts else None
        lines.append(f"map $lodpub_{level} ${target} {{")
        lines.append(f"    default {quoted(default or '')};")
        lines += [f"    {quoted(k)} {quoted(v or '')};" for k, v in sorted(settled.items()) if v != default]
        unsettled = sorted(k for k in grouped if k not in settled)
        lines += [f"    {quoted(k)} ${variable(header)}_by_{levels[depth + 1]};" for k in unsettled]
        lines.append("}")
        values = {key: value for key, value in values.items() if key_of(key) in unsettled}
        if not values:
            break
    return lines


def http_conf(folder: Path, responses: dict, varying: list[str]) -> str:
    served = {key: r for key, r in responses.items() if not key.startswith("e")}  # njs answers errors itself
    lines = ["# Generated by `lodpub export-static`: include in http {}.",
             f"js_import lodpub from {folder.resolve() / 'lodpub.js'};",
             "map_hash_max_size 1048576;", "map_hash_bucket_size 256;",
             'geo $lodpub_dollar { default "$"; }',
             f'map $lodpub_key $lodpub_file {{ "~^{INTERNAL}[a-z](/.*)$" $1; }}',
             f'map $lodpub_key $lodpub_stem {{ "~^{INTERNAL}[a-z]{STEM[1:]}" $1; }}',
             f'map $lodpub_key $lodpub_suffix {{ "~^{INTERNAL}[a-z]{STEM[1:]}(.*)$" $2; }}',
             f'map $lodpub_key $lodpub_mode_suffix {{ "~^{INTERNAL}([a-z]){STEM[1:]}(.*)$" $1$3; }}', ""]
    for header in varying:
        lines += header_maps(header, served)
    return "\n".join(lines) + "\n"


def http_date(iso: str) -> str:
    from datetime import datetime
    from email.utils import format_datetime
    return format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), usegmt=True)


def server_conf(site: Path, constant: dict[str, str], varying: list[str], sparql_url: str | None,
                release_date: str) -> str:
    always = [f"    add_header {name} {quoted(value)} always;" for name, value in sorted(constant.items())]
    lines = [
        "# Generated by `lodpub export-static`: include in server {}.",
        "absolute_redirect off;  # Location: /doc/… as the app sends it",
        "",
        "# Every public URL: njs decides which exported file answers (or answers 303, 404, 406 itself).",
        "location / {",
        f"    root {site};",
        '    set $lodpub_key "";',
        "    js_content lodpub.route;",
        *always,
        "}",
        "",
        "# The exported files, served by nginx with the headers the app sent with each.",
        f"location ^~ {INTERNAL} {{",
        "    internal;",
        f"    root {site};",
        "    set $lodpub_key $uri;",
        f"    rewrite ^{INTERNAL}[a-z](/.*)$ $1 break;",
        "    types { }",
        '    default_type "";  # the Content-Type is the app\'s, from the map',
        "    gzip_static on;   # the app's own gzip body, beside the file",
        "    gzip_vary on;",
        "    etag on;          # nginx's own: every file has its own mtime (see static_export._set_mtimes)",
        "    if_modified_since before;",
        f"    add_header Last-Modified {quoted(release_date)};",
        *[f"    add_header {name} ${variable(name)};" for name in varying],
        *[line.replace(" always;", ";") for line in always],
        "}",
    ]
    if sparql_url:
        lines += ["", "# The SPARQL endpoint is elsewhere (the store or a front end).",
                  "location = /sparql {", f"    proxy_pass {sparql_url};", "}"]
    return "\n".join(lines) + "\n"


def example_conf(folder: Path) -> str:
    return f"""# Generated by `lodpub export-static`: try it with
#   nginx -p {folder.resolve()} -c nginx.conf     (then http://127.0.0.1:8080/)
load_module {DEBIAN_JS_MODULE};
daemon off;
pid nginx.pid;
error_log stderr;
events {{ }}
http {{
    access_log off;
    client_body_temp_path /tmp;
    include {folder.resolve() / 'http.conf'};
    server {{
        listen 127.0.0.1:8080;
        include {folder.resolve() / 'server.conf'};
    }}
}}
"""
