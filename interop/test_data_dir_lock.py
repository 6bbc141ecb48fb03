"""One broker per data directory: a second broker on a directory in use exits 1 at once, touching
nothing, while the first keeps serving; the lock dies with its process, kill -9 included."""

from __future__ import annotations

import signal
import subprocess
import sys

from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_SECONDS, consume, kafka_python_producer, send_all


def _files(directory) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in directory.rglob("*") if path.is_file()}


def _second_broker(data_dir) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "broker", "--port", "0", "--data-dir", str(data_dir)],
                          cwd=data_dir.parent, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)


def test_a_second_broker_on_the_same_directory_exits_and_touches_nothing(broker):
    with kafka_python_producer(broker) as producer:
        offsets = send_all(producer, [b"first"])
    before = _files(broker.data_dir)
    second = _second_broker(broker.data_dir)
    assert second.returncode == 1
    assert f"the data directory {broker.data_dir} is in use" in second.stdout + second.stderr
    assert "ready" not in second.stdout + second.stderr
    assert _files(broker.data_dir) == before
    with kafka_python_producer(broker) as producer:
        offsets += send_all(producer, [b"second"])
    assert [r.value for r in consume(broker, offsets[0], 2)] == [b"first", b"second"]


def test_the_lock_is_released_when_the_broker_is_killed(tmp_path):
    data_dir = tmp_path / "data"
    with BrokerProcess(data_dir) as first:
        with kafka_python_producer(first) as producer:
            offset = send_all(producer, [b"before the kill"])[0]
        first.stop(signal.SIGKILL)
        assert (data_dir / ".lock").exists()  # a stale lock file, whose lock the kernel dropped
        with BrokerProcess(data_dir) as second:
            assert [r.value for r in consume(second, offset, 1)] == [b"before the kill"]
            assert _second_broker(data_dir).returncode == 1

