"""A static export served by a real nginx (Debian's package, with its njs module), for the tests.

`StaticSite` has the interface of conftest's `LiveServer` (``url``, ``get``, ``settings``,
``stop``), so the Linked Data tests run against it unchanged. nginx runs as the current user
with a private prefix and configuration in a temporary folder, on 127.0.0.1 and a free port,
in the foreground (``daemon off``); `stop` ends it.
"""
from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from server.config import Settings
from server.static_export import export_static
from server.static_nginx import DEBIAN_JS_MODULE
from tests.conftest import LiveServer, ServerProcess

NGINX = Path("/usr/sbin/nginx")
INSTALL = "apt-get install -y nginx libnginx-mod-http-js"


def nginx_missing() -> str | None:
    if not NGINX.exists():
        return f"{NGINX} is missing; install: {INSTALL}"
    if not Path(DEBIAN_JS_MODULE).exists():
        return f"nginx's njs module {DEBIAN_JS_MODULE} is missing; install: {INSTALL}"
    return None


class StaticSite(ServerProcess):
    name = "nginx"
    probe = "/robots.txt"
    #: the tests that compare ETags with the app's ask this (nginx makes its own)
    static = True

    def __init__(self, settings: Settings, sparql_url: str | None = None):
        super().__init__(settings)
        self.folder = Path(tempfile.mkdtemp(prefix="lodpub-static-"))
        self.export = export_static(settings, self.folder / "export", site_url=self.url, sparql_url=sparql_url)
        self.config = self.folder / "nginx.conf"
        self.config.write_text(self._config(), encoding="utf-8")
        self._start([str(NGINX), "-p", str(self.folder), "-c", str(self.config)])

    def _config(self) -> str:
        nginx = self.folder / "export" / "nginx"
        temp = self.folder / "temp"
        temp.mkdir()
        # As root, nginx's workers would drop to `nobody`, who cannot read a private temp folder.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        return f"""load_module {DEBIAN_JS_MODULE};
{user}daemon off;
master_process on;
worker_processes 2;
pid {self.folder / 'nginx.pid'};
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {nginx / 'http.conf'};
    server {{
        listen 127.0.0.1:{self.port};
        include {nginx / 'server.conf'};
    }}
}}
"""

    def stop(self) -> None:
        super().stop()  # SIGTERM: nginx's fast shutdown, workers included
        shutil.rmtree(self.folder, ignore_errors=True)


def require_nginx() -> None:
    """Skip when nginx or its njs module is missing (fail under LODPUB_REQUIRE_NGINX=1, as in CI)."""
    missing = nginx_missing()
    if missing:
        if os.environ.get("LODPUB_REQUIRE_NGINX") == "1":
            pytest.fail(f"nginx required (LODPUB_REQUIRE_NGINX=1) but {missing}")
        pytest.skip(missing)


_SHARED: dict[str, object] = {}


@pytest.fixture(scope="session")
def static_site(built, settings):
    """The session's build, exported and served by nginx; its /sparql is proxied to a gunicorn
    serving the same release (a SPARQL endpoint elsewhere, as in production). One site per
    session, shared by every module that imports this fixture."""
    if "site" not in _SHARED:
        require_nginx()
        upstream = LiveServer(settings, workers=1)
        _SHARED["upstream"] = upstream
        try:
            _SHARED["site"] = StaticSite(settings, sparql_url=upstream.url + "/sparql")
        except Exception:
            upstream.stop()
            raise
        _SHARED["site"].upstream = upstream
    yield _SHARED["site"]
    for name in ("site", "upstream"):
        if name in _SHARED:
            _SHARED.pop(name).stop()
