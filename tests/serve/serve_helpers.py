"""Start and talk to a real ``tracer serve`` subprocess on 127.0.0.1 (used by the server tests)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ECHO_WORKER = ROOT / "examples" / "echo-worker" / "echo-worker.wasm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    log_path: Path

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the graceful exit; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def start_server(
    tmp: Path,
    module: Path,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    telemetry: bool = False,
) -> Server:
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACER_"))}
    full_env.update(
        {
            "PYTHONPATH": str(ROOT),
            "TRACER_CACHE_DIR": str(tmp / "cache"),
            "TRACER_TELEMETRY_DIR": str(tmp / "telemetry"),
            "TRACER_SPOOL_DIR": str(tmp / "spool"),
        }
    )
    if not telemetry:
        full_env["OTEL_SDK_DISABLED"] = "true"
    full_env.update(env or {})
    log_path = tmp / f"server-{port}.log"
    log_file = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracer._cli", "serve", str(module), "--listen", f"127.0.0.1:{port}", *args],
        cwd=tmp,
        env=full_env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log_file.close()
    server = Server(proc, port, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tracer serve exited with {proc.returncode}:\n{server.log()}")
        try:
            if server.request("GET", "/readyz", timeout=2)[0] == 200:
                return server
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"tracer serve did not become ready:\n{server.log()}")
