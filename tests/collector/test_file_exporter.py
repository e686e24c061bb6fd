"""The embedded default: OTLP/JSON lines per signal, readable back into the same export requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector import ReplayError
from collector._config import PipelineConfig
from collector._file_exporter import (
    FileTransport,
    count_items,
    from_json_line,
    read_json_file,
    split_request,
    to_json_line,
)
from collector._pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]


def _run_pipeline(tmp_path: Path, records: list[Any]) -> Any:
    cfg = PipelineConfig.from_env({"TRACER_TELEMETRY_DIR": str(tmp_path / "t"), "TRACER_SPOOL_DIR": str(tmp_path / "s")},
                                  service_name="panics-O1")
    pipe = Pipeline.start(cfg)
    for rec in records:
        pipe.record(rec)
    return pipe.shutdown(5.0)


def test_no_endpoint_writes_one_request_per_line_per_signal(tmp_path: Path, records: dict[str, Any]) -> None:
    """Without a collector, spans/logs/metrics land in traces/logs/metrics.jsonl, every item counted exported."""
    report = _run_pipeline(tmp_path, [records["unwrap_none"], records["log"]])
    for signal in ("traces", "logs", "metrics"):
        c = report.signals[signal]
        assert c.emitted > 0 and c.exported == c.emitted and c.balanced
        lines = (tmp_path / "t" / f"{signal}.jsonl").read_text().splitlines()
        assert sum(count_items(signal, from_json_line(l)[1]) for l in lines) == c.emitted
    assert report.signals["traces"].emitted == 2
    assert report.signals["logs"].emitted == len(records["unwrap_none"].logs) + len(records["log"].logs)


def test_json_lines_use_otlp_json_conventions(tmp_path: Path, records: dict[str, Any]) -> None:
    """Lines use camelCase names, integer enums and hex trace/span ids (OTLP/JSON), not base64."""
    _run_pipeline(tmp_path, [records["unwrap_none"]])
    data = json.loads((tmp_path / "t" / "traces.jsonl").read_text().splitlines()[0])
    span = data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(span["traceId"]) == 32 and int(span["traceId"], 16)
    assert len(span["spanId"]) == 16 and int(span["spanId"], 16)
    assert span["kind"] == 2  # SPAN_KIND_SERVER
    assert span["status"]["code"] == 2  # STATUS_CODE_ERROR
    assert span["events"][0]["name"] == "exception"
    log = json.loads((tmp_path / "t" / "logs.jsonl").read_text().splitlines()[0])
    record = log["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert record["traceId"] == span["traceId"] and record["spanId"] == span["spanId"]


def test_json_line_round_trips_to_the_same_request(tmp_path: Path, records: dict[str, Any]) -> None:
    """Parsing a written line gives back a request equal to the one re-serialized from it."""
    _run_pipeline(tmp_path, [records["unwrap_none"]])
    for signal in ("traces", "logs", "metrics"):
        line = (tmp_path / "t" / f"{signal}.jsonl").read_text().splitlines()[0]
        parsed_signal, request = from_json_line(line)
        assert parsed_signal == signal
        assert json.loads(to_json_line(request)) == json.loads(line)


def test_invalid_utf8_output_still_exports(tmp_path: Path, records: dict[str, Any]) -> None:
    """A guest writing invalid UTF-8 (the badbytes scenario) does not cost a single item of its batch."""
    report = _run_pipeline(tmp_path, [records["badbytes"], records["ok"]])
    assert report.signals["logs"].exported == len(records["badbytes"].logs) + len(records["ok"].logs)
    assert report.signals["traces"].exported == 2


def test_split_request_keeps_every_item_under_the_limit(tmp_path: Path, records: dict[str, Any]) -> None:
    """A request over the size limit is split into requests under it that carry all items, resource and scope."""
    _run_pipeline(tmp_path, [records["log"]] * 20)
    requests = [r for _, _, r in read_json_file(tmp_path / "t" / "logs.jsonl")]
    merged = type(requests[0])()
    for r in requests:
        merged.MergeFrom(r)
    total = count_items("logs", merged)
    limit = 600
    parts, too_large = split_request("logs", merged, limit)
    assert too_large == 0 and len(parts) > 1
    assert all(p.ByteSize() <= limit for p in parts)
    assert sum(count_items("logs", p) for p in parts) == total
    assert all(p.resource_logs[0].resource == merged.resource_logs[0].resource for p in parts)


def test_item_larger_than_the_limit_is_counted_not_sent(tmp_path: Path, records: dict[str, Any]) -> None:
    """An item that alone exceeds the limit is reported as too large instead of breaking the split."""
    _run_pipeline(tmp_path, [records["unwrap_none"]])
    _, request = next((s, r) for _, s, r in read_json_file(tmp_path / "t" / "traces.jsonl"))
    parts, too_large = split_request("traces", request, 100)
    assert parts == [] and too_large == 1


def test_not_otlp_json_is_a_replay_error(tmp_path: Path) -> None:
    """A line that is not an OTLP/JSON export request raises ReplayError naming file and line."""
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"resourceSpans": []}\n{"hello": 1}\n')
    with pytest.raises(ReplayError, match=r"x\.jsonl:2"):
        list(read_json_file(bad))


def test_file_write_failure_is_a_result_not_an_exception(tmp_path: Path) -> None:
    """When the telemetry directory cannot be created, the transport returns a failure (counted), never raises."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    transport = FileTransport("traces", blocker / "sub")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    result = transport.send(ExportTraceServiceRequest().SerializeToString(), 0.0)
    assert not result.ok and not result.retryable


def test_replay_command_without_endpoint_is_a_usage_error(tmp_path: Path, records: dict[str, Any]) -> None:
    """`tracer export replay DIR` with no collector configured exits 64 with one line."""
    _run_pipeline(tmp_path, [records["ok"]])
    out = subprocess.run([sys.executable, "-m", "tracer._cli", "export", "replay", str(tmp_path / "t")],
                         cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                                      "HOME": str(tmp_path)})
    assert out.returncode == 64
    assert out.stderr.count("\n") == 1 and "OTEL_EXPORTER_OTLP_ENDPOINT" in out.stderr


def test_replay_of_a_file_that_is_not_otlp_json_exits_65(tmp_path: Path) -> None:
    """`tracer export replay` on a file that is not OTLP/JSON exits 65 with one line naming file and line."""
    bad = tmp_path / "traces.jsonl"
    bad.write_text("not json\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-m", "tracer._cli", "export", "replay", str(bad)],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 65
    assert out.stderr.count("\n") == 1 and "traces.jsonl:1" in out.stderr


def test_flush_with_a_bad_otel_value_exits_64(tmp_path: Path) -> None:
    """`tracer flush` with an OTEL_* value that does not parse prints one line and exits 64."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}
    out = subprocess.run([sys.executable, "-m", "tracer._cli", "flush"], cwd=ROOT, capture_output=True,
                         text=True, env=env)
    assert out.returncode == 64
    assert out.stderr.count("\n") == 1 and "carrier-pigeon" in out.stderr


def test_fast_json_matches_protobuf_json_format_on_real_telemetry(tmp_path: Path, records: dict[str, Any]) -> None:
    """The hand-written OTLP/JSON encoder gives exactly json_format's output (hex ids) for spans, logs, metrics."""
    from collector._file_exporter import to_json_line_reference

    _run_pipeline(tmp_path, [records[s] for s in ("unwrap_none", "log", "ok", "badbytes")])
    for signal in ("traces", "logs", "metrics"):
        for _, _, request in read_json_file(tmp_path / "t" / f"{signal}.jsonl"):
            assert json.loads(to_json_line(request)) == json.loads(to_json_line_reference(request))


def _any_values() -> Any:
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.text().map(lambda v: ("string_value", v)),
        st.booleans().map(lambda v: ("bool_value", v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: ("int_value", v)),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda v: ("double_value", v)),
        st.binary(max_size=20).map(lambda v: ("bytes_value", v)),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: ("array", v)),
        st.lists(st.tuples(st.text(max_size=5), inner), max_size=3).map(lambda v: ("kvlist", v)),
    ), max_leaves=8)


def _fill(target: Any, spec: tuple[str, Any]) -> None:
    kind, value = spec
    if kind == "array":
        target.array_value.SetInParent()
        for item in value:
            _fill(target.array_value.values.add(), item)
    elif kind == "kvlist":
        target.kvlist_value.SetInParent()
        for key, item in value:
            kv = target.kvlist_value.values.add()
            kv.key = key
            _fill(kv.value, item)
    else:
        setattr(target, kind, value)


def test_fast_json_matches_json_format_on_any_attribute_value() -> None:
    """For any attribute value (nested arrays/kvlists, bytes, NaN, huge ints) both encoders agree."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from collector._file_exporter import to_json_line_reference

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(st.text(max_size=8), _any_values()), max_size=5), st.binary(min_size=16, max_size=16))
    def check(attrs: list[tuple[str, Any]], trace_id: bytes) -> None:
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id = trace_id
        span.name = "s"
        for key, spec in attrs:
            kv = span.attributes.add()
            kv.key = key
            _fill(kv.value, spec)
        assert json.loads(to_json_line(request)) == json.loads(to_json_line_reference(request))

    check()
