"""OpenLink Virtuoso (Debian's virtuoso-opensource) on loopback, in a private folder.

Used by the tests (the remote-store parametrisation) and by the benchmark. The SPARQL endpoint
for readers is ``/sparql`` (anonymous, read-only); writes go to ``/sparql-auth`` and the Graph
Store Protocol endpoint ``/sparql-graph-crud-auth`` with HTTP digest authentication (dba).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

LOOPBACK = "127.0.0.1"
BINARY = "virtuoso-t"
ISQL = "isql-vt"
INSTALL = "apt-get install -y virtuoso-opensource"

INI = """\
[Database]
DatabaseFile = {d}/virtuoso.db
ErrorLogFile = {d}/virtuoso.log
LockFile = {d}/virtuoso.lck
TransactionFile = {d}/virtuoso.trx
xa_persistent_file = {d}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {d}/virtuoso-temp.db
TransactionFile = {d}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = {host}:{sql}
LiteMode = 0
DisableUnixSocket = 1
DisableTcpSocket = 0
ServerThreads = 20
CheckpointInterval = 60
O_DIRECT = 0
CaseMode = 2
MaxStaticCursorRows = 5000
CheckpointAuditTrail = 0
AllowOSCalls = 0
SchedulerInterval = 10
DirsAllowed = ., {d}, /usr/share/virtuoso-opensource-7/vad
ThreadCleanupInterval = 0
ThreadThreshold = 10
ResourcesCleanupInterval = 0
FreeTextBatchSize = 100000
SingleCPU = 0
PrefixResultNames = 0
RdfFreeTextRulesSize = 100
IndexTreeMaps = 256
MaxMemPoolSize = 200000000
MacSpotlight = 0
NumberOfBuffers = {buffers}
MaxDirtyBuffers = {dirty}
MaxQueryMem = 1G
VADInstallDir = /usr/share/virtuoso-opensource-7/vad/

[HTTPServer]
ServerPort = {host}:{http}
ServerRoot = /var/lib/virtuoso-opensource-7/vsp
ServerThreads = 10
DavRoot = DAV
EnabledDavVSP = 0
HTTPProxyEnabled = 0
MaxClientConnections = 10
MaxKeepAlives = 10
KeepAliveTimeout = 10
MaxCachedProxyConnections = 10
ProxyConnectionCacheTimeout = 15
HTTPThreadSize = 280000
HttpPrintWarningsInOutput = 0
Charset = UTF-8
MaintenancePage = atomic.html
EnabledGzipContent = 0

[AutoRepair]
BadParentLinks = 0

[Client]
SQL_PREFETCH_ROWS = 100
SQL_PREFETCH_BYTES = 16000
SQL_QUERY_TIMEOUT = 0
SQL_TXN_TIMEOUT = 0

[SPARQL]
ResultSetMaxRows = 100000
MaxQueryCostEstimationTime = 400
MaxQueryExecutionTime = 60
DefaultQuery = ASK {{}}
DeferInferenceRulesInit = 0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def available() -> bool:
    return shutil.which(BINARY) is not None and shutil.which(ISQL) is not None


class Virtuoso:
    """One Virtuoso server: `start()` (creating the database on first start), `stop()`, and
    `start()` again on the same database."""

    def __init__(self, folder: Path, memory_mb: int = 256):
        self.folder = folder
        self.http_port, self.sql_port = free_port(), free_port()
        buffers = max(2000, memory_mb * 1024 // 8 * 2 // 3)  # 8 KiB pages, ⅔ of the budget
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "virtuoso.ini").write_text(INI.format(
            d=folder, host=LOOPBACK, sql=self.sql_port, http=self.http_port, buffers=buffers, dirty=buffers * 3 // 4))
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def settings_env(self) -> dict[str, str]:
        """The LODPUB_STORE_* settings of a front end (and a publisher) for this store."""
        return {"LODPUB_STORE_URL": self.url + "/sparql",
                "LODPUB_STORE_UPDATE_URL": self.url + "/sparql-auth",
                "LODPUB_STORE_GSP_URL": self.url + "/sparql-graph-crud-auth",
                "LODPUB_STORE_USER": "dba", "LODPUB_STORE_PASSWORD": "dba"}

    def start(self, seconds: float = 120) -> "Virtuoso":
        log = (self.folder / "stdout.log").open("ab")
        self.process = subprocess.Popen([BINARY, "+foreground", "+configfile", str(self.folder / "virtuoso.ini")],
                                        cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"virtuoso exited with {self.process.returncode}; see {self.folder}/virtuoso.log")
            try:
                with urllib.request.urlopen(self.url + "/sparql?query=ASK%7B%7D", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"virtuoso did not answer within {seconds}s; see {self.folder}/virtuoso.log")

    def isql(self, script: str, timeout: float = 900) -> str:
        done = subprocess.run([ISQL, f"{LOOPBACK}:{self.sql_port}", "dba", "dba", "VERBOSE=OFF", "BANNER=OFF",
                               "PROMPT=OFF", "ECHO=OFF"], input=script, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or "*** Error" in done.stdout + done.stderr:
            raise RuntimeError(f"isql failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
        return done.stdout

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        except ProcessLookupError:
            pass
