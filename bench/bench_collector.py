"""The collector's CPU per recorded invocation, in process: ``Pipeline.record`` plus the export thread's share.

For each case, a fresh pipeline (with the environment ``tracer serve`` would give it) records N real records
and is then flushed (spans, log records and the metrics, as ``Pipeline.flush`` does); the figure is
``time.process_time`` (all threads of this process) over the N calls and the flush, divided by N, and, apart,
the calling thread's ``time.thread_time`` over the N calls alone (the request thread's share). The metric export
runs once per round here, every 60 s in a server: its cost is spread over the N records.

Records: real ones from the committed guests, each with its own invocation id —
``ok``: the 1 KiB echo of ``examples/echo-worker`` as ``tracer serve`` records it (captured stdout, no console
lines, the http.* attributes of a POST), and ``panic``: the ``unwrap_none`` scenario of
``tests/fixtures/panics-O1.wasm`` (16 symbolized frames, 27 symbols with inlines, 2 stderr lines → 2 log records
and the exception event).

Exporters: ``file`` (the embedded default: OTLP/JSON lines under a temporary ``TRACER_TELEMETRY_DIR``) and
``otlp-http`` (OTLP/HTTP protobuf, all three signals, to a sink in a separate process on 127.0.0.1 that reads
each request and answers 200, so its CPU is not counted). Cases rotate round after round; medians over rounds.

Run: ``.venv/bin/python bench/bench_collector.py [--n 2000] [--rounds 5] [--json out.json]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
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

ECHO = ROOT / "examples" / "echo-worker" / "echo-worker.wasm"
PANICS = ROOT / "tests" / "fixtures" / "panics-O1.wasm"

SINK = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

s = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
"""

HTTP_ATTRS: dict[str, object] = {
    "http.request.method": "POST",
    "http.response.status_code": 200,
    "url.scheme": "http",
    "url.path": "/echo",
    "server.address": "127.0.0.1",
    "server.port": 8080,
    "network.protocol.version": "1.1",
    "http.request.body.size": 1024,
    "http.response.body.size": 1024,
    "client.address": "127.0.0.1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_records(n: int) -> dict[str, list[Any]]:
    from tracer import Interceptor

    echo = Interceptor.from_path(ECHO)
    env = {"REQUEST_METHOD": "POST", "PATH_INFO": "/echo", "CONTENT_LENGTH": "1024",
           "CONTENT_TYPE": "application/octet-stream"}
    ok = echo.invoke(stdin=b"a" * 1024, capture_stdout=True, env=env)
    ok = echo.invoke(stdin=b"a" * 1024, capture_stdout=True, env=env)  # warm: not a cold start
    assert ok.ok and not ok.cold_start, ok.outcome
    panics = Interceptor.from_path(PANICS)
    panics.invoke(argv=["ok"])
    panic = panics.invoke(argv=["unwrap_none"])
    assert panic.panic is not None and len(panic.stack) == 16, (panic.outcome, len(panic.stack))
    out = {}
    for name, rec in (("ok", ok), ("panic", panic)):
        out[name] = [dataclasses.replace(rec, invocation_id=f"{name}-{i:08d}",
                                         started_at_ns=rec.started_at_ns + i * 1000) for i in range(n)]
    return out


def environment(exporter: str, tmp: Path, port: int) -> dict[str, str]:
    env = {"TRACER_TELEMETRY_DIR": str(tmp / "telemetry"), "TRACER_SPOOL_DIR": str(tmp / "spool")}
    if exporter == "otlp-http":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{port}"
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    return env


def run_case(exporter: str, records: list[Any], port: int, warmup: int) -> dict[str, float]:
    from collector import Pipeline, PipelineConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    try:
        config = PipelineConfig.from_env(environment(exporter, tmp, port), service_name="echo-worker")
        pipe = Pipeline.start(config)
        for rec in records[:warmup]:
            pipe.record(rec, parent=None, http=HTTP_ATTRS)
        assert pipe.flush(30.0)
        body = records[warmup:]
        n = len(body)
        t0 = time.process_time()
        th0 = time.thread_time()
        for rec in body:
            pipe.record(rec, parent=None, http=HTTP_ATTRS)
        th1 = time.thread_time()
        flushed = pipe.flush(60.0)
        t1 = time.process_time()
        report = pipe.shutdown(10.0)
        assert flushed and report.balanced, report.lines()
        spans = report.signals["traces"]
        assert spans.emitted == len(records), report.lines()
        # A record loop outruns any exporter; a full queue drops (counted) instead of waiting: say so if it did.
        dropped = sum(c.dropped_total for c in report.signals.values())
        total = (t1 - t0) / n * 1e6
        thread = (th1 - th0) / n * 1e6
        return {"total_us": total, "request_thread_us": thread, "export_us": total - thread, "dropped": dropped}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="records per measurement (default 2000)")
    ap.add_argument("--warmup", type=int, default=200, help="records before measuring (default 200)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default="file/ok,file/panic,otlp-http/ok,otlp-http/panic")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import logging

    logging.getLogger("collector").setLevel(logging.ERROR)
    records = make_records(args.n + args.warmup)
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        cases = [tuple(c.split("/")) for c in args.cases.split(",")]
        results: dict[str, list[dict[str, float]]] = {f"{e}/{r}": [] for e, r in cases}
        for rnd in range(args.rounds):
            order = cases[rnd % len(cases):] + cases[: rnd % len(cases)]
            for exporter, rec in order:
                results[f"{exporter}/{rec}"].append(run_case(exporter, records[rec], port, args.warmup))
    finally:
        sink.terminate()
        sink.wait()

    load = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, python {platform.python_version()}, "
          f"n={args.n}, rounds={args.rounds}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'case':<18} {'total µs/rec':>13} {'request thread':>15} {'export thread':>14}   (medians; min–max total)")
    summary: dict[str, dict[str, float]] = {}
    for case, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        totals = [r["total_us"] for r in runs]
        summary[case] = med
        dropped = sum(r["dropped"] for r in runs)
        print(f"{case:<18} {med['total_us']:>13.0f} {med['request_thread_us']:>15.0f} {med['export_us']:>14.0f}"
              f"   ({min(totals):.0f}–{max(totals):.0f})" + (f"  DROPPED {dropped:.0f} items" if dropped else ""))
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "load": load,
                                         "runs": results, "medians": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
