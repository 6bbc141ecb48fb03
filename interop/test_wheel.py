"""The built wheel is what users run: built from the clone, installed into a fresh virtual
environment, started as `comlog-broker` from a directory outside the clone, and used by a real client."""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest

from interop.broker_process import BrokerProcess
from interop.clients import consume, kafka_python_producer, send_all
from interop.installed_wheel import CLONE, build_wheel, install_wheel, run

@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from the clone, and what the build printed."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment (no access to the test environment's packages) holding the wheel."""
    env = tmp_path_factory.mktemp("venv")
    install_wheel(wheel[0], env)
    return env


def test_the_wheel_holds_every_subpackage(wheel):
    names = zipfile.ZipFile(wheel[0]).namelist()
    packages = {str(Path(name).parent) for name in names if name.endswith("/__init__.py")}
    in_clone = {str(path.parent.relative_to(CLONE)) for top in ("broker", "protocol", "log")
                for path in (CLONE / top).rglob("__init__.py")}
    assert in_clone <= packages
    assert {"broker/handlers", "broker/groups", "protocol/messages"} <= packages


def test_the_build_prints_no_deprecation_warning(wheel):
    assert "Deprecat" not in wheel[1], wheel[1]


def test_the_command_names_itself_and_its_version(installed, tmp_path):
    command = str(installed / "bin" / "comlog-broker")
    helped = run(command, "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: comlog-broker ")
    versioned = run(command, "--version", cwd=tmp_path)
    assert versioned.returncode == 0, versioned.stderr
    version = tomllib.loads((CLONE / "pyproject.toml").read_text())["project"]["version"]
    assert versioned.stdout.strip() == f"comlog-broker {version}"


def test_the_installed_broker_serves_a_real_client_from_outside_the_clone(installed, tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)  # the broker process inherits this environment
    outside = tmp_path / "elsewhere"
    assert not outside.resolve().is_relative_to(CLONE)
    with BrokerProcess(outside / "data", command=(str(installed / "bin" / "comlog-broker"),)) as broker:
        with kafka_python_producer(broker) as producer:
            offsets = send_all(producer, [b"from the wheel"])
        assert [record.value for record in consume(broker, offsets[0], 1)] == [b"from the wheel"]
    assert (outside / "data" / "comlog-0").is_dir()
