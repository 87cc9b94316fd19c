"""Smoke tests of the benchmark kit (bench/): fast, no timing assertions.

- the generator's output, at a tiny scale, is valid project data (`lodpub validate --root`);
- the load driver counts a wrong answer as an error, not as a success.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench import driver, generate, workload  # noqa: E402


def test_generator_is_deterministic_and_validates(tmp_path):
    first = generate.generate(tmp_path / "a", meetings=4, seed=3)
    second = generate.generate(tmp_path / "b", meetings=4, seed=3)
    files = sorted(p.relative_to(first) for p in (first / "data").rglob("*.ttl"))
    assert Path("data/synthetic/batch-001/source-ar.ttl") in files
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    text = (first / "data/synthetic/batch-001/translation.ttl").read_text(encoding="utf-8")
    assert all(f"@{lang}" in text for lang in ("fr", "es", "ru", "zh"))

    result = subprocess.run([sys.executable, "-m", "server.cli", "validate", "--root", str(first)],
                            capture_output=True, text=True, timeout=120, cwd=PROJECT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # the synthetic data is there: more triples than the real data alone
    assert generate.count_triples(first) > generate.count_triples(generate.generate(tmp_path / "real", 0)) + 300


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers = {"/right": (200, {"boolean": True}), "/wrong": (200, {"boolean": False}),
               "/broken": (500, {"error": "boom"})}

    def do_GET(self):  # noqa: N802 - http.server's name
        status, payload = self.answers.get(self.path.replace("/then-close", ""), (404, {}))
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/sparql-results+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path.endswith("/then-close"):
            self.close_connection = True  # kept alive, then closed while idle (a keep-alive timeout)

    def log_message(self, *args):
        pass


@pytest.fixture()
def tiny_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("path", ["/wrong", "/broken"])
def test_driver_counts_a_wrong_answer_as_an_error(tiny_server, path):
    request = driver.Request("ask", tiny_server + path, workload.boolean(True))
    result = driver.run([request], concurrency=2, duration=0.3, timeout=5, warmup=0)
    assert result.ok == 0
    assert result.wrong > 0 and result.errors == result.wrong
    assert result.first_problem and result.first_problem.startswith("ask:")
    assert result.rps == 0


def test_driver_counts_right_answers(tiny_server):
    request = driver.Request("ask", tiny_server + "/right", workload.boolean(True))
    result = driver.run([request], concurrency=2, duration=0.3, timeout=5, warmup=0)
    assert result.ok > 0 and result.errors == 0
    assert result.percentile(50) is not None


def test_driver_retries_once_when_the_server_closed_an_idle_kept_alive_connection(tiny_server):
    request = driver.Request("ask", tiny_server + "/right/then-close", workload.boolean(True))
    result = driver.run([request], concurrency=1, duration=0.3, timeout=5, warmup=0)
    assert result.ok > 1 and result.errors == 0, result.first_problem


def test_result_checks_reject_wrong_rows():
    check = workload.same_rows([{"n": "3"}], numeric=("n",))
    right = json.dumps({"head": {"vars": ["n"]}, "results": {"bindings": [
        {"n": {"type": "literal", "value": "3", "datatype": "http://www.w3.org/2001/XMLSchema#integer"}}]}}).encode()
    wrong = right.replace(b'"3"', b'"4"')
    assert check(200, {}, right) is None
    assert check(200, {}, wrong) is not None
    assert check(200, {}, b"not json") is not None
    assert check(503, {}, right) is not None


def test_remote_overhead_asks_virtuoso_the_front_ends_question(tmp_path):
    """Virtuoso queried directly gets the release's stored graphs as its dataset, graph IRIs
    renamed in the query, and its answer is checked with the stored names read back."""
    from urllib.parse import parse_qs, urlsplit

    from bench import remote_overhead, servers
    from server.graph_names import GraphNames
    base = "https://w3id.org/un-meetings/"
    names = GraphNames(base, "v1", [base + "graph/a", base + "graph/b"])
    query = f"SELECT ?g WHERE {{ GRAPH ?g {{ ?s ?p ?o }} FILTER(?g = <{base}graph/a>) }}"
    item = workload.Item("q", "sparql", query, workload.SPARQL_JSON, workload.same_rows([{"g": base + "graph/a"}]))
    search = workload.Item("s", "sparql", query, workload.SPARQL_JSON, item.check, ours_only=True)
    virtuoso = servers.Virtuoso(tmp_path)  # not started: only its URLs are used
    requests = remote_overhead.direct_requests(virtuoso, [item, search], names)
    assert list(requests) == ["q"]  # no text search service in Virtuoso
    params = parse_qs(urlsplit(requests["q"].url).query)
    assert params["default-graph-uri"] == params["named-graph-uri"] == [base + "release/v1/graph/a",
                                                                         base + "release/v1/graph/b"]
    assert f"<{base}release/v1/graph/a>" in params["query"][0]
    assert "default-graph-uri" not in remote_overhead.direct_requests(virtuoso, [item], names, dataset=False)["q"].url
    answer = json.dumps({"head": {"vars": ["g"]}, "results": {"bindings": [
        {"g": {"type": "uri", "value": base + "release/v1/graph/a"}}]}}).encode()
    assert requests["q"].check(200, {}, answer) is None
    assert item.check(200, {}, answer) is not None  # unmapped, the stored name is not the published one


def test_remote_overhead_ratios():
    from bench import remote_overhead

    def cell(rps, errors=0):
        return {"rps": rps, "wrong": errors, "failed": 0}
    assert remote_overhead.ratio(cell(50), cell(100)) == "0.50"
    assert remote_overhead.ratio(cell(50, errors=1), cell(100)) == "—"  # a wrong answer: no ratio
    assert remote_overhead.ratio(None, cell(100)) == "—"
    front, direct = {"a": cell(50), "b": cell(200)}, {"a": cell(100), "b": cell(100)}
    assert remote_overhead.geometric_ratio(front, direct, ["a", "b", "c"]) == "1.00"


def test_a_run_report_is_closed_before_its_tables_are_made(tmp_path):
    """The tables name the run's load average and total time, which write_report adds."""
    from bench import run
    report = json.loads((PROJECT / "bench/results/real.json").read_text(encoding="utf-8"))
    del report["loadavg_1min"], report["total_s"]
    run.LOADAVG[:] = [1.5, 2.5]
    run.write_report(report, run.tables, tmp_path / "real", started=0.0)
    written = json.loads((tmp_path / "real.json").read_text(encoding="utf-8"))
    assert written["loadavg_1min"] == {"min": 1.5, "max": 2.5, "mean": 2.0}
    assert "1-min load average during the cells 1.5–2.5 (mean 2.0;" in (tmp_path / "real.md").read_text(encoding="utf-8")


def test_the_report_says_which_cells_were_measured_in_turn_on_which_servers():
    from bench import run
    report = json.loads((PROJECT / "bench/results/real.json").read_text(encoding="utf-8"))
    every = [item["name"] for item in report["items"]]
    report["interleaved"] = [{"servers": ["lodpub", "bare-flask", "nginx"], "cells": every, "rounds": 3},
                             {"servers": ["lodpub-nocache", "oxigraph"], "cells": ["ask"], "rounds": 3}]
    lines = [line for line in run._interleaving(report) if line]
    assert lines == ["Every cell was measured on lodpub, bare-flask, nginx in turn, all up at once: 3 slices of 1 s "
                     "each per server, the order rotated every round, each slice started once every one of them was idle.",
                     "Cells `ask` were measured on lodpub-nocache, oxigraph in turn, all up at once: 3 slices of 1 s "
                     "each per server, the order rotated every round, each slice started once every one of them was idle.",
                     "Every other cell was measured on its server's own turn."]
    report["interleaved"] = report["interleaved"][1]  # a run before there were two groups
    assert [line for line in run._interleaving(report) if line][0].startswith("Cells `ask` were measured on lodpub-nocache")


def test_the_targets_table_is_computed_from_the_runs_figures():
    from bench import targets
    report = json.loads((PROJECT / "bench/results/real.json").read_text(encoding="utf-8"))
    cells = report["servers"]
    expected = round(cells["lodpub-nocache"]["cells"]["ask"]["rps"] / cells["virtuoso"]["cells"]["ask"]["rps"], 2)
    assert targets.ratios(report, "lodpub-nocache", "virtuoso", ["ask"]) == {"ask": expected}
    cells["virtuoso"]["cells"]["ask"]["wrong"] = 1  # a wrong answer is never a ratio
    assert targets.ratios(report, "lodpub-nocache", "virtuoso", ["ask"]) == {"ask": None}
    table = targets.table({"real": report})
    assert table.count("\n") == 2 + len(targets.rows({"real": report}))
    assert "| uncached ≥ 1× Virtuoso, light | real |" in table
    for name in ("labels-ar", "ask"):
        cells["lodpub-nocache"]["cells"][name]["rps"] = 10 ** 6  # met, but for the cell ours failed
    ours = cells["lodpub-nocache"]["cells"]["describe-meeting"]
    ours.update(failed=3, first_problem="describe-meeting: HTTP 503")  # ours failed where the anchor did not
    light = next(row for row in targets.rows({"real": report}) if row[0] == "uncached ≥ 1× Virtuoso, light")
    assert light[3] is False and "ours not right on describe-meeting (describe-meeting: HTTP 503)" in light[2]


def test_interleaved_cells_take_turns_on_every_server_and_add_up_their_slices(tmp_path):
    """The ratio targets' cells are measured on the compared servers in turn (bench/run.py): each
    server answers in every round, and a cell's figures are the sum of its slices."""
    import argparse
    from bench import run, servers
    seen: list[str] = []

    class Recording(_Handler):
        def do_GET(self):  # noqa: N802
            seen.append(self.server.label)
            super().do_GET()

    group, https = [], []
    for label in ("a", "b"):
        server = servers.Server(tmp_path)
        server.name = label
        http = ThreadingHTTPServer(("127.0.0.1", server.port), Recording)
        http.label = label
        threading.Thread(target=http.serve_forever, daemon=True).start()
        group.append(server)
        https.append(http)
    try:
        requests = {s.name: {"ask": driver.Request("ask", s.base_url + "/right", workload.boolean(True))} for s in group}
        args = argparse.Namespace(duration=0.6, rounds=3, concurrency=2, timeout=5.0)
        cells = run.run_interleaved(group, requests, ["ask"], args)
    finally:
        for http in https:
            http.shutdown()
            http.server_close()
    turns = [label for i, label in enumerate(seen) if i == 0 or seen[i - 1] != label]
    # the first answers (a, b), then rounds a b | b a | a b: one server's slices never all in a row
    assert turns == ["a", "b", "a", "b", "a", "b"]
    for label in ("a", "b"):
        cell = cells[label]["ask"]
        assert cell["slices"] == 3 and cell["first_answer"] == "right"
        assert cell["ok"] > 0 and cell["wrong"] == cell["failed"] == 0
        assert cell["ok"] < seen.count(label)  # the first answer and the warm-ups are not counted
        assert cell["seconds"] >= 0.6  # three slices of 0.2 s
        assert len(cell["slice_rps"]) == 3 and all(rate > 0 for rate in cell["slice_rps"])


def test_the_targets_show_how_far_a_ratio_moved_round_by_round():
    from bench import targets
    servers = {"lodpub-nocache": {"cells": {"ask": {**_cell(150), "slice_rps": [100.0, 200.0, 150.0]}}},
               "virtuoso": {"cells": {"ask": {**_cell(100), "slice_rps": [200.0, 100.0, 100.0]}}}}
    report = {"servers": servers}
    assert targets.round_ratios(report, "lodpub-nocache", "virtuoso", "ask") == [0.5, 1.5, 2.0]
    assert targets._fmt({"ask": 1.5}, {"ask": [0.5, 1.5, 2.0]}) == "ask 1.5 (rounds 0.5–2.0)"
    del servers["virtuoso"]["cells"]["ask"]["slice_rps"]  # measured on its own turn
    assert targets.round_ratios(report, "lodpub-nocache", "virtuoso", "ask") == []
    assert targets._fmt({"ask": 1.5}, {"ask": []}) == "ask 1.5"


def test_a_run_of_some_cells_only_refuses_a_cell_it_does_not_have():
    from bench import run
    items = [workload.Item(name, "sparql", "ASK {}", workload.SPARQL_JSON, workload.boolean(True))
             for name in ("ask", "join-4-patterns")]
    assert [item.name for item in run.only_cells(items, ["join-4-patterns"])] == ["join-4-patterns"]
    with pytest.raises(SystemExit, match="no such cell: jion"):
        run.only_cells(items, ["jion"])


def test_a_cell_measured_in_slices_adds_them_up():
    slices = [driver.Result("ask", 1.0, ok=10, latencies=[0.001] * 10),
              driver.Result("ask", 2.0, ok=5, wrong=1, latencies=[0.003] * 5, first_problem="ask: boolean False")]
    cell = driver.merged(slices)
    assert (cell.ok, cell.wrong, cell.failed, cell.seconds) == (15, 1, 0, 3.0)
    assert cell.rps == 5.0 and cell.percentile(99) == 0.003
    assert cell.first_problem == "ask: boolean False"


def test_interleaving_nothing_measures_nothing():
    import argparse
    from bench import run
    assert run.run_interleaved([], {}, ["ask"], argparse.Namespace(duration=1.0, rounds=3, concurrency=2, timeout=5.0)) == {}


def _cell(rps: float, p99_ms: float = 10.0) -> dict:
    return {"rps": rps, "p99_ms": p99_ms, "ok": 100, "wrong": 0, "failed": 0}


def test_a_target_not_met_says_which_cells_the_runs_ceilings_put_out_of_reach():
    """A cell is out of reach when its target asks for more than nginx or bare Flask managed on
    it in the same run (or a p99 below bare Flask's own); memory, when the tree at rest is over."""
    from bench import targets
    servers = {
        "lodpub-nocache": {"cells": {"a": _cell(100, 50), "b": _cell(100, 50), "c": _cell(100, 50)}},
        "virtuoso": {"cells": {"a": _cell(2000), "b": _cell(1600), "c": _cell(300)}},
        "oxigraph": {"cells": {"a": _cell(9000, 4.0), "b": _cell(9000, 4.0), "c": _cell(9000, 30.0)}},
        "bare-flask": {"cells": {"a": _cell(1500, 12.0), "b": _cell(1500, 6.0), "c": _cell(1500, 6.0)}},
        "nginx": {"cells": {"a": _cell(1900, 1.0), "b": _cell(9000, 1.0), "c": _cell(9000, 1.0)}},
    }
    report = {"servers": servers}
    values = targets.ratios(report, "lodpub-nocache", "virtuoso", ["a", "b", "c"])
    assert targets.rate_reach(report, "virtuoso", values, 1.0) == \
        "1 above nginx's rate; 1 above bare Flask's rate; 1 within reach (c)"
    p99 = targets.ratios(report, "lodpub-nocache", "oxigraph", ["a", "b", "c"], "p99_ms")
    assert targets.p99_reach(report, {k: v for k, v in p99.items()}, 2.0) == \
        "1 below bare Flask's own p99; 1 within reach (b)"  # c's p99 is within 2× Oxigraph's
    assert targets.rate_reach(report, "virtuoso", {"a": 1.2}, 1.0) == ""  # met: nothing to say
    servers["lodpub"] = {"rest_rss_mb": 320.0, "rest_pss_mb": 180.0}
    servers["oxigraph"]["peak_rss_mb"] = 240.0
    assert targets.memory_reach(report, 1.5) == \
        "at rest, before any request, RSS already 1.33× Oxigraph's peak (320.0 / 240.0 MiB; PSS 180.0)"


@pytest.fixture(scope="module")
def instruction_requests(built, settings):
    from bench import instructions
    return instructions.items(settings.releases, settings.base)


@pytest.mark.parametrize("name", ["ask", "describe-meeting", "meeting.html", "meeting.ttl", "meeting.jsonld"])
def test_the_instruction_count_asks_bench_runs_requests_and_checks_their_answers(settings, instruction_requests, name):
    """bench.instructions' counted loop (what callgrind measures), run without callgrind: the
    request of bench.run's mix by that name, answered 200 every time and right by its check."""
    from bench import instructions
    assert instructions.measure(PROJECT, instruction_requests[name], 3, settings.releases, callgrind=False) is None


def test_the_instruction_count_refuses_a_wrong_answer(settings, instruction_requests):
    from dataclasses import replace
    from bench import instructions
    ask = instruction_requests["ask"]  # the sample meeting has a place with an address: true
    with pytest.raises(SystemExit, match="ask: wrong answer: boolean True, expected False"):
        instructions.measure(PROJECT, replace(ask, check=workload.boolean(False)), 3, settings.releases, callgrind=False)
