"""``tracer serve`` under load: telemetry cost, cold start from the compiled cache, memory per idle worker.

Three measurements, one run, loopback only, bounded duration (about three minutes with the defaults):

1. Throughput and latency of a 1 KiB echo (``examples/echo-worker``, ``POST /echo``) with real ``wrk``: servers
   side by side with the same flags — ``off`` (``OTEL_SDK_DISABLED=true``), ``on`` (the defaults: the embedded
   exporter writing OTLP/JSON files under a temporary ``TRACER_TELEMETRY_DIR``, one span per request), and three
   variants of ``on`` (``TRACER_SERVER_SPAN=separate``; 1 % trace sampling; OTLP/HTTP protobuf to a local sink
   process that discards what it receives) — with ``wrk`` runs rotating
   between them round after round to cancel drift; each figure is the median over rounds. Besides req/s and
   latency, the worker processes' CPU time (all threads, ``/proc/PID/stat``) per request: on a shared machine it
   is steadier than req/s, and off/on of it is what the req/s ratio tends to when the workers saturate the CPU.
   Goal: req/s with telemetry on ≥ 0.95 × off.
2. Cold start: the first request of a never-before-seen module version whose compiled artifact is already in
   the cache, in a warm process. Versions are the echo worker plus a distinct custom section (so a distinct
   SHA-256 and cache entry), all compiled into the cache beforehand by another process. Measured two ways:
   (a) in-process, the worker's reload path: ``Interceptor.from_path`` (read, hash, verified cache load,
   deserialize, link) + the first ``invoke`` of a 1 KiB echo; (b) over HTTP: replace the served file, then time
   the first request (stat → rebuild → invoke → response), against warm requests on the same connection.
   Both for the debug build (DWARF, ~6 MB) and its stripped twin (``llvm-objcopy --strip-debug``, ~130 KB).
   Goal (Cloudflare's figures for Rust workers): p50 ≤ 2 ms, p99 ≤ 4 ms.
3. Memory per idle worker process (RSS and PSS from ``/proc/PID/smaps_rollup``) for each configuration: once
   booted (module loaded, no request yet) and idle after the load; and the master's.

Run: ``.venv/bin/python bench/bench_serve.py [--duration 8] [--rounds 2] [--versions 60] [--json out.json]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKER = ROOT / "examples" / "echo-worker" / "echo-worker.wasm"
OBJCOPY = "llvm-objcopy-14"
BODY = b"a" * 1024

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = string.rep("a", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
"""


# -- helpers -----------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def with_nonce(module: bytes, nonce: str) -> bytes:
    """The module plus a custom section ``bench-nonce`` (wasm spec §5.5.3): same code, new SHA-256."""
    name = b"bench-nonce"
    payload = leb128(len(name)) + name + nonce.encode()
    return module + b"\x00" + leb128(len(payload)) + payload


class Server:
    def __init__(self, module: Path, tmp: Path, telemetry: bool, workers: int, cache: Path, tag: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACER_"))}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "TRACER_CACHE_DIR": str(cache),
                "TRACER_TELEMETRY_DIR": str(tmp / f"telemetry-{tag}"),
                "TRACER_SPOOL_DIR": str(tmp / f"spool-{tag}"),
            }
        )
        if not telemetry:
            env["OTEL_SDK_DISABLED"] = "true"
        env.update(extra_env or {})
        self.log = open(tmp / f"server-{tag}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracer._cli", "serve", str(module), "--listen", f"127.0.0.1:{self.port}",
             "--workers", str(workers)],
            cwd=tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {tag} did not start; see {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.log.close()


def memory_kib(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0].rstrip(":") in ("Rss", "Pss", "Private_Clean", "Private_Dirty",
                                                               "Shared_Clean", "Shared_Dirty"):
                fields[parts[0].rstrip(":")] = int(parts[1])
    return fields


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (all their threads), from /proc/PID/stat."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / _TICK


def run_wrk(port: int, script: Path, duration: int, connections: int, threads: int,
            pids: list[int] | None = None) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
           f"http://127.0.0.1:{port}/echo"]
    cpu0 = cpu_seconds(pids) if pids else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu1 = cpu_seconds(pids) if pids else 0.0
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {}
    for q, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[q] = float(value) * _UNIT[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps, "p50_ms": lat["50"], "p99_ms": lat["99"], "requests": float(total),
        "worker_cpu_us_per_request": (cpu1 - cpu0) / total * 1e6 if pids and total else 0.0,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
    }


# -- 1. throughput and latency -------------------------------------------------------------------------------------


_SINK = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
"""


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    """An OTLP/HTTP receiver that accepts and discards everything (200, empty protobuf response)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SINK, str(port)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the OTLP sink did not start")


# Configurations compared side by side. "on" is the default; the others show what the two knobs cost or save.
CONFIGS: dict[str, tuple[bool, dict[str, str]]] = {
    "off": (False, {}),
    "on": (True, {}),
    "on-separate-span": (True, {"TRACER_SERVER_SPAN": "separate"}),
    "on-sampled-1%": (True, {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}),
    "on-otlp-http": (True, {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}),  # + the sink's endpoint
}


def bench_throughput(tmp: Path, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    script = tmp / "post1k.lua"
    script.write_text(WRK_SCRIPT)
    sink, sink_port = start_sink()
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}
    servers = {
        tag: Server(WORKER, tmp, telemetry=on, workers=args.workers, cache=cache, tag=tag,
                    extra_env={**extra, **(endpoint if tag == "on-otlp-http" else {})})
        for tag, (on, extra) in CONFIGS.items()
    }
    try:
        time.sleep(1.0)
        fresh = {tag: [memory_kib(pid) for pid in s.worker_pids()] for tag, s in servers.items()}
        for s in servers.values():  # warm every worker (first request of each is a cold start)
            run_wrk(s.port, script, 2, args.connections, args.threads)
        runs: dict[str, list[dict[str, float]]] = {tag: [] for tag in servers}
        for _ in range(args.rounds):
            for tag, server in servers.items():
                runs[tag].append(run_wrk(server.port, script, args.duration, args.connections, args.threads,
                                         pids=server.worker_pids()))
        time.sleep(1.0)
        memory = {tag: [memory_kib(pid) for pid in s.worker_pids()] for tag, s in servers.items()}
        memory["master"] = [memory_kib(servers["off"].proc.pid)]
        fresh["master"] = memory["master"]
    finally:
        statuses = {tag: s.stop() for tag, s in servers.items()}
        sink.terminate()
        sink.wait()
    summary = {
        tag: {
            "rps": statistics.median(r["rps"] for r in rs),
            "p50_ms": statistics.median(r["p50_ms"] for r in rs),
            "p99_ms": statistics.median(r["p99_ms"] for r in rs),
            "non2xx": sum(r["non2xx"] for r in rs),
            "cpu_us": statistics.median(r["worker_cpu_us_per_request"] for r in rs),
        }
        for tag, rs in runs.items()
    }
    return {
        "runs": runs,
        "summary": summary,
        "ratio_rps_vs_off": {tag: summary[tag]["rps"] / summary["off"]["rps"] for tag in summary},
        "ratio_cpu_off_vs": {tag: summary["off"]["cpu_us"] / summary[tag]["cpu_us"] for tag in summary},
        "memory_kib": memory,
        "memory_kib_fresh": fresh,
        "exit_status": statuses,
        "telemetry_bytes": sum(p.stat().st_size for p in (tmp / "telemetry-on").rglob("*") if p.is_file()),
    }


# -- 2. cold start -------------------------------------------------------------------------------------------------

_PRECOMPILE = """
import sys
from pathlib import Path
from tracer import Interceptor, TracerConfig
cfg = TracerConfig.from_env()
for p in sys.argv[1:]:
    Interceptor.from_path(p, config=cfg)
"""

_INPROCESS = """
import json, sys, time
from pathlib import Path
from tracer import Interceptor, TracerConfig
cfg = TracerConfig.from_env()
paths = sys.argv[2:]
body = b"a" * 1024
env = {"PATH_INFO": "/echo", "REQUEST_METHOD": "POST", "CONTENT_LENGTH": "1024"}
# A warm process: engine, epoch ticker and one module already serving.
warm = Interceptor.from_path(sys.argv[1], config=cfg)
for _ in range(50):
    warm.invoke(env=env, stdin=body, capture_stdout=True)
out = []
for p in paths:
    t0 = time.perf_counter()
    icp = Interceptor.from_path(p, config=cfg)
    t1 = time.perf_counter()
    rec = icp.invoke(env=env, stdin=body, capture_stdout=True)
    t2 = time.perf_counter()
    assert rec.ok and rec.cold_start and rec.stdout.endswith(body), rec
    out.append({"build_ms": (t1 - t0) * 1e3, "first_invoke_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3,
                "record_load_ms": rec.timings.load_ms, "instantiate_ms": rec.timings.instantiate_ms,
                "execute_ms": rec.timings.execute_ms})
warm_times = []
for _ in range(200):
    t0 = time.perf_counter()
    warm.invoke(env=env, stdin=body, capture_stdout=True)
    warm_times.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"cold": out, "warm_invoke_ms": warm_times}))
"""


def _stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
            "min": min(values), "max": max(values)}


def bench_cold(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    variants = {"debug": WORKER.read_bytes()}
    stripped = tmp / "stripped.wasm"
    subprocess.run([OBJCOPY, "--strip-debug", str(WORKER), str(stripped)], check=True)
    variants["stripped"] = stripped.read_bytes()
    results: dict[str, Any] = {}
    for name, data in variants.items():
        cache = tmp / f"cache-cold-{name}"
        vdir = tmp / f"versions-{name}"
        vdir.mkdir()
        base = vdir / "base.wasm"
        base.write_bytes(data)
        versions = []
        for i in range(args.versions):
            p = vdir / f"v{i:04d}.wasm"
            p.write_bytes(with_nonce(data, f"{name}-{i}-{time.time_ns()}"))
            versions.append(p)
        http_versions = []
        for i in range(args.versions):
            p = vdir / f"h{i:04d}.wasm"
            p.write_bytes(with_nonce(data, f"http-{name}-{i}-{time.time_ns()}"))
            http_versions.append(p)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACER_"))},
               "PYTHONPATH": str(ROOT), "TRACER_CACHE_DIR": str(cache), "OTEL_SDK_DISABLED": "true"}
        subprocess.run([sys.executable, "-c", _PRECOMPILE, str(base), *map(str, versions + http_versions)],
                       env=env, check=True)
        # (a) in-process
        out = subprocess.run([sys.executable, "-c", _INPROCESS, str(base), *map(str, versions)],
                             env=env, check=True, capture_output=True, text=True).stdout
        data_a = json.loads(out.strip().splitlines()[-1])
        cold = data_a["cold"]
        # (b) over HTTP, one worker, telemetry off (the cold path, not the exporter, is measured here)
        served = vdir / "served.wasm"
        shutil.copy(base, served)
        server = Server(served, tmp, telemetry=False, workers=1, cache=cache, tag=f"cold-{name}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

            def post() -> float:
                t0 = time.perf_counter()
                conn.request("POST", "/echo", body=BODY)
                resp = conn.getresponse()
                got = resp.read()
                dt = (time.perf_counter() - t0) * 1e3
                assert resp.status == 200 and got == BODY, (resp.status, got[:200])
                return dt

            for _ in range(50):
                post()
            http_cold, http_warm = [], []
            for p in http_versions:
                tmp_target = vdir / "incoming.wasm"
                shutil.copy(p, tmp_target)
                os.replace(tmp_target, served)
                http_cold.append(post())
                for _ in range(3):
                    http_warm.append(post())
            conn.close()
        finally:
            server.stop()
        results[name] = {
            "module_bytes": len(data),
            "inprocess_total_ms": _stats([c["total_ms"] for c in cold]),
            "inprocess_build_ms": _stats([c["build_ms"] for c in cold]),
            "inprocess_first_invoke_ms": _stats([c["first_invoke_ms"] for c in cold]),
            "inprocess_record_load_ms": _stats([c["record_load_ms"] for c in cold]),
            "inprocess_warm_invoke_ms": _stats(data_a["warm_invoke_ms"]),
            "http_cold_request_ms": _stats(http_cold),
            "http_warm_request_ms": _stats(http_warm),
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="wrk runs per configuration (alternating)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--versions", type=int, default=60, help="module versions for the cold-start runs")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_serve: wrk not found (apt-get install wrk)", file=sys.stderr)
        return 69
    results: dict[str, Any] = {"cpus": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as d:
        tmp = Path(d)
        cache = tmp / "cache"
        if not args.skip_throughput:
            results["throughput"] = bench_throughput(tmp, cache, args)
            t = results["throughput"]
            for tag, s in t["summary"].items():
                print(f"echo 1KiB telemetry {tag:<17}: {s['rps']:8.1f} req/s  p50 {s['p50_ms']:6.2f} ms  "
                      f"p99 {s['p99_ms']:6.2f} ms  non-2xx {int(s['non2xx'])}  "
                      f"ratio {t['ratio_rps_vs_off'][tag]:.3f}  worker CPU {s['cpu_us']:6.0f} us/req  "
                      f"CPU ratio {t['ratio_cpu_off_vs'][tag]:.3f}")
            print("goal: ratio of 'on' >= 0.95")
            for when, key in (("booted, idle", "memory_kib_fresh"), ("idle after load", "memory_kib")):
                for tag, rows in t[key].items():
                    for row in rows:
                        print(f"memory {when:<15} {tag:<17}: RSS {row['Rss'] / 1024:6.1f} MiB  "
                              f"PSS {row['Pss'] / 1024:6.1f} MiB  "
                              f"private {(row['Private_Clean'] + row['Private_Dirty']) / 1024:6.1f} MiB")
        if not args.skip_cold:
            results["cold"] = bench_cold(tmp, args)
            for name, r in results["cold"].items():
                for key in ("inprocess_total_ms", "inprocess_build_ms", "inprocess_first_invoke_ms",
                            "inprocess_warm_invoke_ms", "http_cold_request_ms", "http_warm_request_ms"):
                    s = r[key]
                    print(f"cold {name:>8} {key:<27} p50 {s['p50']:7.2f} ms  p99 {s['p99']:7.2f} ms  (n={s['n']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
