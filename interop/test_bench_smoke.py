"""The side-by-side benchmark's harness, at tiny sizes and against ComLog only: every workload runs
to the end with real clients (the transactional ones with a few transactions), workload 5 loses and
duplicates nothing, and the table comes out. No figure is judged here; speed targets are the
benchmark's business."""

from __future__ import annotations

import re

from interop.bench import side_by_side
from interop.bench.servers import ComLogServer
from interop.bench.side_by_side import COMLOG, TANSU, Results, Sizes
from interop.certificates import TestCertificates

TINY = Sizes(rounds=1, produce_records=2048, latency_records=200, kafka_python_records=500, group_members=50,
             group_records_each=20, volume_bytes=8 << 20, big_log_bytes=4 << 20, big_log_starts=1,
             transactions=2, commit_latency_transactions=20)


def test_every_workload_runs_against_comlog(tmp_path):
    results = Results()
    certificates = TestCertificates(tmp_path / "certificates")
    server = ComLogServer(tmp_path / "data", certificates=certificates)
    side_by_side.measure_ceilings(tmp_path, TINY, results)
    side_by_side.measure_server(server, TINY, results, certificates)
    side_by_side.measure_big_log_start(tmp_path, TINY, results)

    assert results.failures == {}
    assert not re.search(r" (WARNING|ERROR|CRITICAL) |Traceback", server.broker.log_text()), server.broker.log_text()
    assert {measurement for measurement, _ in results.values} == set(side_by_side.DIGITS)
    assert all(server == COMLOG for _, server in results.values)
    assert results.values[(side_by_side.GROUP_LOST, COMLOG)] == [0]
    assert results.values[(side_by_side.GROUP_DUPLICATED, COMLOG)] == [0]
    assert all(value > 0 for measurement, values in results.values.items()
               if measurement[0] not in (side_by_side.GROUP_LOST, side_by_side.GROUP_DUPLICATED)
               for value in values)
    table = side_by_side.format_table(results, TINY)
    assert "ComLog/Tansu" in table and TANSU in table
    assert "5. records duplicated" in table
    assert "9. read_committed / read_uncommitted" in table


def test_the_request_cost_cases_run_against_comlog_and_the_floor(tmp_path):
    from interop.bench import request_cost

    server = ComLogServer(tmp_path / "data")
    server.start()
    try:
        connection, cases = request_cost.prepared(server)
        with connection:
            measured = {case.name: request_cost.measure(server.pid, connection, case, 30) for case in cases}
    finally:
        server.stop()
    assert not re.search(r" (WARNING|ERROR|CRITICAL) |Traceback", server.broker.log_text()), server.broker.log_text()
    # measure() raises when an answer carries an error.
    assert len(measured) == len(cases) and all(latency > 0 for _, latency in measured.values())
    assert request_cost.measure_floor(30)[1] > 0


def test_the_scale_benchmark_runs_at_its_smallest(tmp_path):
    from interop.bench import scale_bench

    measured = scale_bench.measure_scale(tmp_path, 100, idle_seconds=0.5)
    assert measured["restart to first Metadata, s"] > 0 and measured["RSS after restart, MB"] > 0
    commits = scale_bench.measure_commits(tmp_path, groups=20, seconds=1)
    assert commits["commit latency p99, ms"] > 0
