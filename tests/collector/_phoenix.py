"""A real OTLP backend for the end-to-end tests: Arize Phoenix in its own virtualenv, started on free ports.

``python tests/collector/_phoenix.py install`` (what ``make .venv-phoenix`` runs) creates ``.venv-phoenix/`` at
the repository root and pip-installs ``arize-phoenix`` into it (minutes the first time). It never fails the
build: when the install is impossible (no network, no wheel for this platform) it writes
``.venv-phoenix/INSTALL_FAILED`` with pip's output, and the end-to-end tests skip with that reason, loudly.

``PhoenixServer`` starts ``phoenix serve`` with a private working directory on 127.0.0.1, waits until the HTTP
API answers, reads spans from ``GET /v1/projects/default/spans``, and can be stopped and started again on the same
ports (the restart test). ``TRACER_TEST_PHOENIX`` may name an existing ``phoenix`` executable instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-phoenix"
STAMP = VENV / ".installed"
FAILED = VENV / "INSTALL_FAILED"
PACKAGE = "arize-phoenix"


def phoenix_executable() -> Path | None:
    """The phoenix CLI to use, or None when it is not installed (yet)."""
    override = os.environ.get("TRACER_TEST_PHOENIX")
    if override:
        return Path(override) if Path(override).exists() else None
    exe = VENV / "bin" / "phoenix"
    return exe if STAMP.exists() and exe.exists() else None


def install(python: str = sys.executable, timeout_s: float = 1800.0) -> tuple[bool, str]:
    """Create .venv-phoenix with arize-phoenix; (ok, log). Idempotent: a finished install is kept."""
    if phoenix_executable() is not None:
        return True, "already installed"
    VENV.mkdir(exist_ok=True)
    log: list[str] = []
    steps = [
        [python, "-m", "venv", str(VENV)],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", PACKAGE],
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.append(f"$ {' '.join(step)}\n{exc}")
            FAILED.write_text("\n".join(log))
            return False, "\n".join(log)
        log.append(f"$ {' '.join(step)}\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
        if done.returncode != 0:
            FAILED.write_text("\n".join(log))
            return False, "\n".join(log)
    if not (VENV / "bin" / "phoenix").exists():
        FAILED.write_text("\n".join(log) + "\nno bin/phoenix after install")
        return False, "no bin/phoenix after install"
    FAILED.unlink(missing_ok=True)
    STAMP.touch()
    return True, "\n".join(log)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PhoenixServer:
    """One ``phoenix serve`` process on loopback; ``start``/``stop`` may be repeated (same ports, same data)."""

    def __init__(self, executable: Path, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "phoenix.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self, timeout_s: float = 180.0) -> None:
        env = dict(os.environ)
        env.update(
            PHOENIX_WORKING_DIR=str(self.workdir),
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.http_port),
            PHOENIX_GRPC_PORT=str(self.grpc_port),
        )
        for key in [k for k in env if k.startswith("OTEL_")]:
            del env[key]  # Phoenix instruments itself with OTel; our test variables are not for it
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(self.executable), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"phoenix exited with {self.process.returncode}; log: {self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"phoenix did not become ready in {timeout_s:.0f} s; log: {self.log_tail()}")

    def _ready(self) -> bool:
        try:
            self.spans()
        except (OSError, urllib.error.URLError, ValueError):
            return False
        try:  # the gRPC receiver starts with the app; check its port accepts connections too
            with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1):
                return True
        except OSError:
            return False

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def spans(self, limit: int = 1000) -> list[dict[str, Any]]:
        """All spans of the default project (following the cursor)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            url = f"{self.http_url}/v1/projects/default/spans?limit={limit}"
            if cursor:
                url += f"&cursor={cursor}"
            with urllib.request.urlopen(url, timeout=30) as resp:
                data = json.load(resp)
            out.extend(data.get("data", []))
            cursor = data.get("next_cursor")
            if not cursor:
                return out

    def wait_for_spans(self, predicate: Any, count: int, timeout_s: float = 120.0) -> list[dict[str, Any]]:
        """Spans matching ``predicate`` once at least ``count`` of them are there (Phoenix ingests async; on a
        loaded machine its API can be slow to answer, so a timed-out read is retried until the deadline)."""
        deadline = time.monotonic() + timeout_s
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                found = [s for s in self.spans() if predicate(s)]
            except (OSError, urllib.error.URLError, ValueError):
                time.sleep(1.0)
                continue
            if len(found) >= count:
                return found
            time.sleep(0.5)
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        # wait until the ports are free again, so "stopped" means connection refused
        for port in (self.http_port, self.grpc_port):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        time.sleep(0.2)
                except OSError:
                    break


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"]:
        ok, log = install()
        if ok:
            print(f"phoenix: ready in {VENV}")
        else:
            bar = "!" * 78
            print(f"{bar}\nphoenix: could not install {PACKAGE} into {VENV}; the end-to-end collector tests "
                  f"will be SKIPPED.\n{log[-2000:]}\n{bar}", file=sys.stderr)
        return 0  # never fail the build here: the tests report the skip
    print("usage: _phoenix.py install", file=sys.stderr)
    return 64


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
