"""The wheel built from this checkout, installed into a fresh virtual environment: what users run.
The wheel test checks it works; the test-cycle benchmark times its start-up."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

CLONE = Path(__file__).resolve().parent.parent
# Generous bounds that only catch a hang: building and installing fetch from the package index.
BUILD_TIMEOUT_SECONDS = 300


def _outside_environment() -> dict[str, str]:
    """This process's environment without PYTHONPATH, which would let the venv see a checkout (and
    pip take the package for installed already), and without PYTHONDONTWRITEBYTECODE, so that pip
    compiles the bytecode as a user's install has it."""
    return {name: value for name, value in os.environ.items()
            if name not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}


def run(*command, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS,
                          env=_outside_environment())


class BuildFailed(Exception):
    """Building or installing the wheel failed; the message holds what pip printed."""


def build_wheel(out: Path) -> tuple[Path, str]:
    """The wheel built into `out`, and what the build printed."""
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(CLONE), cwd=out)
    if built.returncode != 0:
        raise BuildFailed(built.stdout + built.stderr)
    (path,) = out.glob("comlog-*.whl")
    return path, built.stdout + built.stderr


def install_wheel(wheel: Path, env: Path) -> Path:
    """A fresh virtual environment at `env` (no access to this environment's packages) holding the
    wheel and its dependencies from the package index; its python."""
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    done = run(str(python), "-m", "pip", "install", "-q", str(wheel), cwd=env)
    if done.returncode != 0:
        raise BuildFailed(done.stdout + done.stderr)
    return python
