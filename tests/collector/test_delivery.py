"""Delivery under faults, against real receivers on 127.0.0.1: the invocations never notice, the counts add up.

Each test checks ``emitted == exported + dropped + pending`` per signal, and where each item went.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from collector._config import PipelineConfig
from collector._pipeline import Pipeline
from collector._spool import Spool
from tests.collector._otlp_servers import GrpcReceiver, GrpcStep, HttpReceiver, Step
from tests.collector._phoenix import free_port

ROOT = Path(__file__).resolve().parents[2]
SIGNALS = ("traces", "logs", "metrics")


def _config(tmp_path: Path, endpoint: str, protocol: str = "http/protobuf", timeout_ms: int = 1000,
            **changes: Any) -> PipelineConfig:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TIMEOUT": str(timeout_ms),
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_BLRP_SCHEDULE_DELAY": "50",
        "TRACER_SPOOL_DIR": str(tmp_path / "spool"),
        "TRACER_TELEMETRY_DIR": str(tmp_path / "telemetry"),
    }
    return PipelineConfig.from_env(env, service_name="panics-O1").replace(**changes)


def _run(config: PipelineConfig, interceptor: Any, scenarios: list[str], timeout_s: float = 5.0) -> Any:
    """Invoke the real guest per scenario, recording each run; the outcomes must be what the guest did."""
    pipe = Pipeline.start(config)
    for scenario in scenarios:
        rec = interceptor.invoke(argv=[scenario])
        pipe.record(rec)
        assert rec.outcome.value == ("exception" if scenario == "unwrap_none" else "ok")
    return pipe.shutdown(timeout_s)


def _assert_balanced(report: Any) -> None:
    for signal in SIGNALS:
        c = report.signals[signal]
        assert c.emitted == c.exported + c.dropped_total + c.pending, (signal, c)
    assert report.balanced


@pytest.fixture
def http_ok() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


def test_working_collector_receives_every_item(tmp_path: Path, interceptor: Any, http_ok: HttpReceiver) -> None:
    """Against a healthy OTLP/HTTP receiver everything emitted is exported and received, nothing spooled."""
    report = _run(_config(tmp_path, http_ok.url), interceptor, ["unwrap_none", "log", "ok"])
    _assert_balanced(report)
    for signal in SIGNALS:
        c = report.signals[signal]
        assert c.emitted > 0 and c.exported == c.emitted
        assert http_ok.items(signal) == c.emitted
    assert Spool(tmp_path / "spool", 1 << 30).entries() == []


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_refused_connection_spools_everything(tmp_path: Path, interceptor: Any, protocol: str) -> None:
    """With nothing listening, every item ends pending in the spool, which holds exactly those items."""
    report = _run(_config(tmp_path, f"http://127.0.0.1:{free_port()}", protocol), interceptor,
                  ["unwrap_none", "log", "ok"])
    _assert_balanced(report)
    spool = Spool(tmp_path / "spool", 1 << 30)
    for signal in SIGNALS:
        c = report.signals[signal]
        assert c.emitted > 0 and c.pending == c.emitted and c.exported == 0
        assert spool.pending_items(signal) == c.emitted


def test_503_with_retry_after_is_retried_then_exported(tmp_path: Path, interceptor: Any) -> None:
    """HTTP 503 with Retry-After is retried after the server's delay and the batch is then exported."""
    receiver = HttpReceiver([Step(503, {"Retry-After": "0"}), Step(503, {"Retry-After": "0"}), Step(200)])
    try:
        cfg = _config(tmp_path, receiver.url, timeout_ms=5000, logs=dataclasses.replace(
            PipelineConfig().logs, kind="none"), metrics=dataclasses.replace(PipelineConfig().metrics, kind="none"))
        report = _run(cfg, interceptor, ["unwrap_none"])
        _assert_balanced(report)
        assert report.signals["traces"].exported == 1
        assert [status for _, status in receiver.calls] == [503, 503, 200]
        assert receiver.items("traces") == 1
    finally:
        receiver.close()


def test_non_retryable_status_is_dropped_as_rejected(tmp_path: Path, interceptor: Any) -> None:
    """HTTP 400 is not retried nor spooled: the items are dropped{rejected}."""
    receiver = HttpReceiver([Step(400)])
    try:
        report = _run(_config(tmp_path, receiver.url), interceptor, ["unwrap_none", "ok"])
        _assert_balanced(report)
        for signal in SIGNALS:
            c = report.signals[signal]
            assert c.dropped == {"rejected": c.emitted} and c.pending == 0
        assert Spool(tmp_path / "spool", 1 << 30).entries() == []
    finally:
        receiver.close()


def test_partial_success_counts_the_rejected_spans(tmp_path: Path, interceptor: Any) -> None:
    """An OTLP partial success (rejected_spans=1) moves one span from exported to dropped{rejected}."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 1
    receiver = HttpReceiver([Step(200, body=response.SerializeToString())])
    try:
        report = _run(_config(tmp_path, receiver.url), interceptor, ["ok", "ok"])
        _assert_balanced(report)
        t = report.signals["traces"]
        assert (t.emitted, t.exported, dict(t.dropped)) == (2, 1, {"rejected": 1})
    finally:
        receiver.close()


def test_slow_collector_times_out_into_the_spool(tmp_path: Path, interceptor: Any) -> None:
    """A collector that answers after the OTLP timeout: the request is abandoned and its items spooled."""
    receiver = HttpReceiver([Step(200, delay_s=5.0)])
    try:
        report = _run(_config(tmp_path, receiver.url, timeout_ms=300), interceptor, ["unwrap_none"], timeout_s=3.0)
        _assert_balanced(report)
        for signal in SIGNALS:
            c = report.signals[signal]
            assert c.pending == c.emitted and c.exported == 0
    finally:
        receiver.close()


def test_grpc_unavailable_with_retry_info_is_retried(tmp_path: Path, interceptor: Any) -> None:
    """gRPC UNAVAILABLE carrying RetryInfo is retried after the given delay, then exported."""
    receiver = GrpcReceiver([GrpcStep("UNAVAILABLE", retry_delay_s=0.1), GrpcStep("OK")])
    try:
        cfg = _config(tmp_path, receiver.url, "grpc", timeout_ms=5000,
                      logs=dataclasses.replace(PipelineConfig().logs, kind="none"),
                      metrics=dataclasses.replace(PipelineConfig().metrics, kind="none"))
        report = _run(cfg, interceptor, ["unwrap_none"])
        _assert_balanced(report)
        assert report.signals["traces"].exported == 1
        assert [code for _, code in receiver.calls] == ["UNAVAILABLE", "OK"]
    finally:
        receiver.close()


def test_grpc_invalid_argument_is_rejected(tmp_path: Path, interceptor: Any) -> None:
    """gRPC INVALID_ARGUMENT is final: items dropped{rejected}, nothing spooled."""
    receiver = GrpcReceiver([GrpcStep("INVALID_ARGUMENT")])
    try:
        report = _run(_config(tmp_path, receiver.url, "grpc"), interceptor, ["ok"])
        _assert_balanced(report)
        assert report.signals["traces"].dropped == {"rejected": 1}
        assert Spool(tmp_path / "spool", 1 << 30).entries() == []
    finally:
        receiver.close()


def test_next_pipeline_start_resends_the_spool(tmp_path: Path, interceptor: Any, http_ok: HttpReceiver) -> None:
    """What one process spooled while the collector was down, the next process's pipeline re-sends at start."""
    down = _run(_config(tmp_path, f"http://127.0.0.1:{free_port()}"), interceptor, ["unwrap_none", "ok"])
    spooled = {s: down.signals[s].pending for s in SIGNALS}
    assert spooled["traces"] == 2
    report = _run(_config(tmp_path, http_ok.url), interceptor, ["ok"])
    _assert_balanced(report)
    for signal in SIGNALS:
        resent = report.resent[signal]
        assert (resent.emitted, resent.exported) == (spooled[signal], spooled[signal])
        assert http_ok.items(signal) == spooled[signal] + report.signals[signal].exported
    assert Spool(tmp_path / "spool", 1 << 30).entries() == []


def _flush(tmp_path: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
           "TRACER_SPOOL_DIR": str(tmp_path / "spool")}
    return subprocess.run([sys.executable, "-m", "tracer._cli", "flush"], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def test_tracer_flush_exits_75_while_pending_and_0_once_sent(
    tmp_path: Path, interceptor: Any, http_ok: HttpReceiver
) -> None:
    """`tracer flush` reports pending and exits 75 while the collector is away, then sends all and exits 0."""
    down = _run(_config(tmp_path, f"http://127.0.0.1:{free_port()}"), interceptor, ["unwrap_none", "ok", "ok"])
    away = _flush(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert away.returncode == 75, away.stderr
    assert "traces: emitted 3, exported 0, dropped 0, pending 3" in away.stdout
    ok = _flush(tmp_path, http_ok.url)
    assert ok.returncode == 0, ok.stderr
    assert "traces: emitted 3, exported 3, dropped 0, pending 0" in ok.stdout
    for signal in SIGNALS:
        assert http_ok.items(signal) == down.signals[signal].pending


def test_export_replay_sends_the_telemetry_files(tmp_path: Path, interceptor: Any, http_ok: HttpReceiver) -> None:
    """`tracer export replay DIR` sends what the embedded default wrote; the receiver gets every item."""
    cfg = _config(tmp_path, "http://unused").replace(
        traces=dataclasses.replace(PipelineConfig().traces, kind="file"),
        logs=dataclasses.replace(PipelineConfig().logs, kind="file"),
        metrics=dataclasses.replace(PipelineConfig().metrics, kind="file"),
    )
    written = _run(cfg, interceptor, ["unwrap_none", "log"])
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "OTEL_EXPORTER_OTLP_ENDPOINT": http_ok.url}
    out = subprocess.run([sys.executable, "-m", "tracer._cli", "export", "replay", str(tmp_path / "telemetry")],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for signal in SIGNALS:
        assert http_ok.items(signal) == written.signals[signal].exported > 0


def test_full_queue_drops_are_counted(tmp_path: Path, interceptor: Any) -> None:
    """Past the batch queue bound, spans are dropped{queue_full} at once instead of blocking the invocation."""
    receiver = HttpReceiver([Step(200, delay_s=0.5)])
    try:
        cfg = _config(tmp_path, receiver.url, timeout_ms=5000)
        cfg = cfg.replace(span_batch=dataclasses.replace(cfg.span_batch, max_queue_size=2, max_export_batch_size=1))
        report = _run(cfg, interceptor, ["ok"] * 12, timeout_s=10.0)
        _assert_balanced(report)
        t = report.signals["traces"]
        assert t.emitted == 12 and t.dropped.get("queue_full", 0) > 0
    finally:
        receiver.close()


def test_bounded_spool_evicts_oldest_and_accounts_for_it(tmp_path: Path, interceptor: Any) -> None:
    """With a small spool bound, older spooled batches are evicted as dropped{spool_evicted}; counts still add up."""
    cfg = _config(tmp_path, f"http://127.0.0.1:{free_port()}", spool_max_bytes=6000)
    cfg = cfg.replace(span_batch=dataclasses.replace(cfg.span_batch, max_export_batch_size=1),
                      log_batch=dataclasses.replace(cfg.log_batch, max_export_batch_size=1))
    report = _run(cfg, interceptor, ["unwrap_none"] * 8)
    _assert_balanced(report)
    dropped = sum(report.signals[s].dropped.get("spool_evicted", 0) for s in SIGNALS)
    assert dropped > 0
    spool = Spool(tmp_path / "spool", 1 << 30)
    assert sum(e.size for e in spool.entries()) <= 6000
    for signal in SIGNALS:
        assert spool.pending_items(signal) == report.signals[signal].pending


_RLIMIT_CHILD = r"""
import json, resource, sys, dataclasses
from pathlib import Path
from collector._config import PipelineConfig
from collector._pipeline import Pipeline
from tracer._record import InvocationRecord, Outcome, TrapInfo
import collector._sdk  # imported before the rlimit: a module import must not be what hits it
cfg = PipelineConfig.from_env({
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sys.argv[1], "OTEL_EXPORTER_OTLP_TIMEOUT": "500",
    "OTEL_LOGS_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_BSP_SCHEDULE_DELAY": "20",
    "TRACER_SPOOL_DIR": sys.argv[2]})
cfg = cfg.replace(span_batch=dataclasses.replace(cfg.span_batch, max_export_batch_size=1))
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a file may not grow past 4 KiB: EFBIG, as a full disk
pipe = Pipeline.start(cfg)
for i in range(6):
    rec = InvocationRecord(f"inv-{i}", "worker", "00", "_start", Outcome.EXCEPTION, 1_700_000_000_000_000_000 + i,
                           trap=TrapInfo("unreachable", "m" * (300 if i % 2 else 20000)))
    pipe.record(rec)
report = pipe.shutdown(5.0)
print(json.dumps({"traces": dataclasses.asdict(report.signals["traces"])}))
"""


def test_spool_disk_full_is_counted_and_never_raised(tmp_path: Path) -> None:
    """When the spool's disk is full (file-size rlimit → EFBIG) batches are dropped{spool_full}; no exception."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", _RLIMIT_CHILD, f"http://127.0.0.1:{free_port()}/v1/traces",
                          str(tmp_path / "spool")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    t = json.loads(out.stdout)["traces"]
    assert t["emitted"] == 6
    assert t["dropped"].get("spool_full", 0) == 3  # the three 20 KB spans cannot be written
    assert t["pending"] == 3
    assert t["emitted"] == t["exported"] + sum(t["dropped"].values()) + t["pending"]


_SIGTERM_CHILD = r"""
import os, signal, sys, time
from collector._config import PipelineConfig
from collector._pipeline import Pipeline
from tracer._record import InvocationRecord, Outcome
cfg = PipelineConfig.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": sys.argv[1], "OTEL_EXPORTER_OTLP_TIMEOUT": "500",
                               "OTEL_BSP_SCHEDULE_DELAY": "60000", "TRACER_SPOOL_DIR": sys.argv[2]})
pipe = Pipeline.start(cfg)
assert pipe.flush_on_sigterm()
for i in range(4):
    pipe.record(InvocationRecord(f"inv-{i}", "worker", "00", "_start", Outcome.OK, time.time_ns()))
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
print("not reached")
"""


def test_sigterm_flushes_into_the_spool_and_exits_143(tmp_path: Path) -> None:
    """On SIGTERM, queued spans (not yet due for export) are flushed — here into the spool — before exit 143."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", _SIGTERM_CHILD, f"http://127.0.0.1:{free_port()}",
                          str(tmp_path / "spool")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 143, out.stderr
    assert "not reached" not in out.stdout
    assert Spool(tmp_path / "spool", 1 << 30).pending_items("traces") == 4


def test_first_success_after_an_outage_resends_what_was_spooled(tmp_path: Path) -> None:
    """In a long-running process, batches spooled during an outage are re-sent once the collector answers again."""
    import time

    from tracer._record import InvocationRecord, Outcome

    receiver = HttpReceiver([Step(503), Step(200)])  # 503 without Retry-After: backoff (1 s) > timeout → spooled
    try:
        cfg = _config(tmp_path, receiver.url, timeout_ms=300,
                      logs=dataclasses.replace(PipelineConfig().logs, kind="none"),
                      metrics=dataclasses.replace(PipelineConfig().metrics, kind="none"))
        pipe = Pipeline.start(cfg)
        assert isinstance(pipe, Pipeline)
        pipe.record(InvocationRecord("during-outage", "w", "00", "_start", Outcome.OK, time.time_ns()))
        pipe.flush(5.0)
        assert pipe.report().signals["traces"].pending == 1
        time.sleep(1.5)  # past the 'collector away' window opened by the failure
        pipe.record(InvocationRecord("after-outage", "w", "00", "_start", Outcome.OK, time.time_ns()))
        pipe.flush(5.0)
        report = pipe.shutdown(5.0)
        _assert_balanced(report)
        t = report.signals["traces"]
        assert (t.emitted, t.exported, t.pending) == (2, 2, 0)
        ids = sorted(a.value.string_value for r in receiver.accepted["traces"] for rs in r.resource_spans
                     for ss in rs.scope_spans for s in ss.spans for a in s.attributes if a.key == "faas.invocation_id")
        assert ids == ["after-outage", "during-outage"]
        assert Spool(tmp_path / "spool", 1 << 30).entries() == []
    finally:
        receiver.close()


def test_at_shutdown_a_failing_collector_is_not_retried_with_backoff(tmp_path: Path) -> None:
    """A batch first sent during shutdown that meets a 503 without Retry-After is spooled after one attempt."""
    import time

    from tracer._record import InvocationRecord, Outcome

    receiver = HttpReceiver([Step(503)])
    try:
        cfg = _config(tmp_path, receiver.url, timeout_ms=30000,
                      logs=dataclasses.replace(PipelineConfig().logs, kind="none"),
                      metrics=dataclasses.replace(PipelineConfig().metrics, kind="none"))
        cfg = cfg.replace(span_batch=dataclasses.replace(cfg.span_batch, schedule_delay_s=60.0))
        pipe = Pipeline.start(cfg)
        pipe.record(InvocationRecord("late", "w", "00", "_start", Outcome.OK, time.time_ns()))
        report = pipe.shutdown(20.0)
        _assert_balanced(report)
        assert report.signals["traces"].pending == 1
        assert receiver.calls == [("traces", 503)]
    finally:
        receiver.close()
