"""Run the real broker as a child process (`python -m broker`) on a free port, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from broker.ready_line import ready_addresses

START_TIMEOUT_SECONDS = 30


class BrokerProcess:
    """One broker process over one data directory; can be stopped, killed and started again."""

    def __init__(self, data_dir: Path, *extra_args: str, port: int | None = 0,
                 command: tuple[str, ...] = (sys.executable, "-m", "broker")) -> None:
        self.data_dir = data_dir
        self.command = command
        self.extra_args = list(extra_args)
        # None: the listeners come from extra_args (--listeners, or --config's file).
        self.port = port
        # Each listener's port, by name, once started.
        self.ports: dict[str, int] = {}
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    @property
    def bootstrap(self) -> str:
        """The first listener's address."""
        return f"127.0.0.1:{self.port if self.port is not None else next(iter(self.ports.values()))}"

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def start(self) -> BrokerProcess:
        """Start the broker and return once it logs that it is ready."""
        self._ready.clear()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [*self.command, *([] if self.port is None else ["--port", str(self.port)]),
             "--data-dir", str(self.data_dir), *self.extra_args],
            # Started outside the clone, as a user would: the installed package must be what runs.
            cwd=self.data_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        threading.Thread(target=self._read_output, args=(self.process,), daemon=True).start()
        if not self._ready.wait(START_TIMEOUT_SECONDS) or self.process.poll() is not None:
            self.kill()
            raise RuntimeError("broker did not become ready:\n" + self.log_text())
        return self

    def _read_output(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.output.append(line)
            addresses = ready_addresses(line)
            if addresses:
                self.ports = {name: port for name, _, port in addresses}
                # Later restarts reuse the port the first start picked, so clients can reconnect.
                if self.port is not None:
                    self.port = next(iter(self.ports.values()))
                self._ready.set()

    def log_text(self) -> str:
        return "".join(self.output)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` and wait for the process to exit; returns its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()
