"""The packages' import rules (docs/architecture.md), checked on what importing each one loads."""

import subprocess
import sys

import pytest


def modules_loaded_by(package: str) -> set[str]:
    """Every module importing `package` loads, in a fresh interpreter."""
    probe = f"import sys, {package}; print('\\n'.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.split())


def top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


@pytest.mark.parametrize("package", ["protocol", "protocol.messages", "protocol.framing", "protocol.records"])
def test_protocol_is_sans_io(package):
    assert not top_level(modules_loaded_by(package)) & {"trio", "broker", "log"}


def test_log_knows_the_record_batch_format_and_nothing_of_requests():
    # The cleaner reads records' keys (decompressed) and rebuilds batches: the record format.
    loaded = modules_loaded_by("log")
    assert {m for m in loaded if m.startswith("protocol.")} <= {
        "protocol.record_batch", "protocol.records", "protocol.compression", "protocol.errors"}
    assert not top_level(loaded) & {"broker", "trio"}
