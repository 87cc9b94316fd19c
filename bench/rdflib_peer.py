"""rdflib-endpoint (the Python peer) on one N-Quads file, default graph = union, 127.0.0.1 only.

    python bench/rdflib_peer.py dataset.nq.gz 127.0.0.1 PORT
"""
import gzip
import sys
import time

import uvicorn
from rdflib import Dataset
from rdflib_endpoint import SparqlEndpoint

path, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
assert host == "127.0.0.1", "loopback only"
started = time.perf_counter()
dataset = Dataset(default_union=True)
with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as data:
    dataset.parse(data, format="nquads")
print(f"loaded {len(dataset)} triples in {time.perf_counter() - started:.1f}s", flush=True)
uvicorn.run(SparqlEndpoint(graph=dataset), host=host, port=port, log_level="warning")
