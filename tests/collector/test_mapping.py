"""Record → span, exception, log records and metrics, checked through the SDK's in-memory exporters."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from collector import METRIC_NAMES, PipelineConfig
from collector import _semconv as sc
from collector._mapping import cap, map_record, safe_text, top_user_symbol
from symbolizer._model import SourceLocation, Symbol, SymbolizedFrame
from tracer._record import InvocationRecord, LogRecord, Outcome, Timings, TrapInfo

from tests.collector.conftest import InMemory

ROOT = Path(__file__).resolve().parents[2]


def _record(**changes: Any) -> InvocationRecord:
    base = InvocationRecord(
        invocation_id="inv-1",
        module_name="worker",
        module_sha256="ab" * 32,
        export="handle",
        outcome=Outcome.OK,
        started_at_ns=1_700_000_000_000_000_000,
        timings=Timings(load_ms=1.0, instantiate_ms=2.0, execute_ms=3.0),
    )
    return dataclasses.replace(base, **changes)


def _one_span(mem: InMemory) -> Any:
    spans = mem.spans.get_finished_spans()
    assert len(spans) == 1
    return spans[0]


def test_panic_span_has_name_status_and_faas_attributes(memory: InMemory, records: dict[str, Any]) -> None:
    """A panicking invocation becomes one ERROR span `invoke _start` with the faas.* and tracer.* attributes."""
    rec = records["unwrap_none"]
    memory.pipeline.record(rec)
    span = _one_span(memory)
    assert span.name == "invoke _start"
    assert span.kind is SpanKind.SERVER
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "rust.panic: called `Option::unwrap()` on a `None` value"
    a = span.attributes
    assert a[sc.FAAS_INVOCATION_ID] == rec.invocation_id
    assert a[sc.FAAS_NAME] == "panics-O1"
    assert a[sc.FAAS_COLDSTART] is True
    assert a[sc.FAAS_MAX_MEMORY] == rec.memory_limit_bytes
    assert a[sc.OUTCOME] == "exception"
    assert a[sc.TRAP_CODE] == "unreachable"
    assert a[sc.FUEL_CONSUMED] == rec.fuel_consumed
    assert a[sc.MEMORY_PEAK] == rec.memory_peak_bytes
    assert a[sc.FRAMES_TRUNCATED] is False
    assert a[sc.MODULE_SHA256] == rec.module_sha256


def test_span_times_come_from_the_record(memory: InMemory, records: dict[str, Any]) -> None:
    """The span starts at the record's start and lasts the record's total duration."""
    rec = records["unwrap_none"]
    memory.pipeline.record(rec)
    span = _one_span(memory)
    assert span.start_time == rec.started_at_ns
    assert span.end_time == rec.started_at_ns + int(rec.timings.total_ms * 1_000_000)


def test_code_attributes_name_the_innermost_user_frame(memory: InMemory, records: dict[str, Any]) -> None:
    """code.* point at the user's function and line, skipping std/core/alloc frames (inlined unwrap included)."""
    memory.pipeline.record(records["unwrap_none"])
    a = _one_span(memory).attributes
    assert a[sc.CODE_FUNCTION_NAME] == "panics::worker::handle"
    assert str(a[sc.CODE_FILE_PATH]).endswith("panics.rs")
    assert a[sc.CODE_LINE_NUMBER] == 30
    assert isinstance(a[sc.CODE_COLUMN_NUMBER], int)


def test_exception_event_carries_panic_message_and_symbolized_stack(
    memory: InMemory, records: dict[str, Any]
) -> None:
    """The exception span event has rust.panic, the panic message and the backtrace with inlined frames."""
    memory.pipeline.record(records["unwrap_none"])
    span = _one_span(memory)
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1
    attrs = events[0].attributes
    assert attrs[sc.EXCEPTION_TYPE] == "rust.panic"
    assert attrs[sc.EXCEPTION_MESSAGE] == "called `Option::unwrap()` on a `None` value"
    stack = str(attrs[sc.EXCEPTION_STACKTRACE])
    assert "    at panics::worker::handle (" in stack
    assert "panics.rs:30:" in stack
    assert "[inlined]" in stack
    assert events[0].timestamp == span.end_time


def test_ok_invocation_has_no_error_and_no_exception(memory: InMemory, records: dict[str, Any]) -> None:
    """An ok outcome leaves the status unset and adds no exception event."""
    memory.pipeline.record(records["ok"])
    span = _one_span(memory)
    assert span.status.status_code is StatusCode.UNSET
    assert not [e for e in span.events if e.name == "exception"]
    assert span.attributes[sc.OUTCOME] == "ok"


def test_span_is_internal_under_a_local_parent(memory: InMemory, records: dict[str, Any]) -> None:
    """Under a local (in-process) parent span, e.g. an HTTP server span, the invoke span is INTERNAL, same trace."""
    provider = TracerProvider()
    parent = provider.get_tracer("test").start_span("GET /")
    ctx = trace.set_span_in_context(parent)
    memory.pipeline.record(records["ok"], parent=ctx)
    span = _one_span(memory)
    assert span.kind is SpanKind.INTERNAL
    assert span.context.trace_id == parent.get_span_context().trace_id
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id


def test_span_is_server_child_of_a_remote_traceparent(memory: InMemory, records: dict[str, Any]) -> None:
    """An incoming W3C traceparent makes the span a SERVER child in that trace, with faas.trigger=http."""
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    ctx = TraceContextTextMapPropagator().extract(carrier)
    memory.pipeline.record(records["ok"], parent=ctx, http={"http.request.method": "GET", "url.path": "/x"})
    span = _one_span(memory)
    assert span.kind is SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.attributes[sc.FAAS_TRIGGER] == "http"
    assert span.attributes["http.request.method"] == "GET"


def test_console_lines_become_logs_in_the_span_context(memory: InMemory, records: dict[str, Any]) -> None:
    """Each console line is a log record with the invocation's trace/span ids, its own timestamp and severity."""
    rec = records["log"]
    memory.pipeline.record(rec)
    span = _one_span(memory)
    logs = [r.log_record for r in memory.logs.get_finished_logs()]
    assert [l.body for l in logs] == [l.text for l in rec.logs]
    assert [l.timestamp for l in logs] == [l.timestamp_ns for l in rec.logs]
    for log in logs:
        assert log.trace_id == span.context.trace_id
        assert log.span_id == span.context.span_id
    levels = {l.body: (l.severity_number.value, l.severity_text) for l in logs}
    assert levels["info via the log import"] == (9, "INFO")
    assert levels["error via the log import"] == (17, "ERROR")


def test_stdout_is_info_and_stderr_is_warn(memory: InMemory, records: dict[str, Any]) -> None:
    """Without a level, stdout lines are INFO and stderr lines WARN, tagged with log.iostream."""
    memory.pipeline.record(records["ok"])
    logs = {r.log_record.body: r.log_record for r in memory.logs.get_finished_logs()}
    out = logs["hello from the worker"]
    err = logs["a line on stderr"]
    assert (out.severity_number.value, out.severity_text, out.attributes[sc.LOG_IOSTREAM]) == (9, "INFO", "stdout")
    assert (err.severity_number.value, err.severity_text, err.attributes[sc.LOG_IOSTREAM]) == (13, "WARN", "stderr")


@pytest.mark.parametrize(("opt_in", "events", "exception_logs"), [("logs", 0, 1), ("logs/dup", 1, 1)])
def test_exception_signal_opt_in(
    tmp_path: Path, records: dict[str, Any], opt_in: str, events: int, exception_logs: int
) -> None:
    """OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN=logs moves the exception to a log record; logs/dup writes both."""
    mem = InMemory(tmp_path, exception_signal=opt_in)
    try:
        mem.pipeline.record(records["unwrap_none"])
        span = _one_span(mem)
        assert len([e for e in span.events if e.name == "exception"]) == events
        exc = [r.log_record for r in mem.logs.get_finished_logs() if r.log_record.event_name == "exception"]
        assert len(exc) == exception_logs
        log = exc[0]
        assert log.span_id == span.context.span_id
        assert log.attributes[sc.EXCEPTION_TYPE] == "rust.panic"
        assert "called `Option::unwrap()` on a `None` value" in str(log.body)
        assert "at panics::worker::handle (" in str(log.body)
        assert log.severity_text == "ERROR"
    finally:
        mem.pipeline.shutdown(1.0)


def test_span_attribute_values_are_capped_but_the_event_keeps_the_whole_text(memory: InMemory) -> None:
    """A 10 KiB trap message is cut to 2 KiB on the span, and stays whole in the exception event."""
    long = "x" * 10_000
    rec = _record(outcome=Outcome.EXCEPTION, trap=TrapInfo("unreachable", long))
    memory.pipeline.record(rec)
    span = _one_span(memory)
    value = str(span.attributes[sc.TRAP_MESSAGE])
    assert len(value.encode()) <= 2048 and value.endswith("[truncated]")
    assert len(str(span.status.description).encode()) <= 2048
    event = [e for e in span.events if e.name == "exception"][0]
    assert event.attributes[sc.EXCEPTION_MESSAGE] == long
    assert event.attributes[sc.EXCEPTION_TYPE] == "wasm.trap.unreachable"


def test_metrics_count_invocations_errors_coldstarts_and_histograms(
    memory: InMemory, records: dict[str, Any]
) -> None:
    """One panicking cold start and one ok run give the six metrics with outcome-labelled counts."""
    memory.pipeline.record(records["unwrap_none"])
    memory.pipeline.record(records["ok"])
    points = memory.metric_points()
    assert set(points) == set(METRIC_NAMES)
    inv = {p.attributes[sc.OUTCOME]: p.value for p in points[sc.METRIC_INVOCATIONS]}
    assert inv == {"exception": 1, "ok": 1}
    assert sum(p.value for p in points[sc.METRIC_ERRORS]) == 1
    assert sum(p.value for p in points[sc.METRIC_COLDSTARTS]) == 1
    assert sum(p.count for p in points[sc.METRIC_INVOKE_DURATION]) == 2
    assert sum(p.sum for p in points[sc.METRIC_MEM_USAGE]) == (
        records["unwrap_none"].memory_peak_bytes + records["ok"].memory_peak_bytes
    )
    fuel = sum(p.sum for p in points[sc.METRIC_FUEL_CONSUMED])
    assert fuel == records["unwrap_none"].fuel_consumed + records["ok"].fuel_consumed


def test_resource_has_service_and_module_identity(tmp_path: Path, records: dict[str, Any]) -> None:
    """The resource carries service.name/version, host.name, the module ids and OTEL_RESOURCE_ATTRIBUTES."""
    config = PipelineConfig.from_env(
        {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,service.version=2.0"},
        service_name="panics-O1",
        service_version="1.0",
        resource={sc.MODULE_CODE_ID: "abc"},
    )
    mem = InMemory(tmp_path, service_name=config.service_name, service_version=config.service_version,
                   resource_attributes=config.resource_attributes)
    try:
        mem.pipeline.record(records["ok"])
        res = _one_span(mem).resource.attributes
        assert res["service.name"] == "panics-O1"
        assert res["service.version"] == "2.0"
        assert res[sc.MODULE_CODE_ID] == "abc"
        assert res["deployment.environment"] == "test"
        assert res["host.name"]
    finally:
        mem.pipeline.shutdown(1.0)


def test_record_never_raises_on_a_broken_record(memory: InMemory) -> None:
    """A record the mapping cannot handle is counted as an error, not raised into the caller."""
    memory.pipeline.record(object())  # type: ignore[arg-type]
    assert memory.pipeline.record_errors == 1


def test_lone_surrogates_are_replaced_in_every_string(memory: InMemory) -> None:
    """Text with lone surrogates (undecodable bytes) is made valid UTF-8 before it reaches the SDK."""
    bad = "ok \udcff\udcfe end"
    rec = _record(outcome=Outcome.HOST_ERROR, host_error=bad,
                  logs=(LogRecord(1_700_000_000_000_000_001, "stderr", None, bad),))
    memory.pipeline.record(rec)
    span = _one_span(memory)
    assert span.attributes[sc.HOST_ERROR] == "ok \ufffd\ufffd end"
    [log] = memory.logs.get_finished_logs()
    assert log.log_record.body == "ok \ufffd\ufffd end"
    assert safe_text(bad).encode("utf-8")


def test_cap_never_splits_a_code_point() -> None:
    """Capping multi-byte text stays valid UTF-8 and within the byte limit."""
    text = "é" * 5000
    out = cap(text, 2048)
    assert len(out.encode("utf-8")) <= 2048
    assert out.endswith("…[truncated]")


def _sym(function: str, file: str | None, line: int | None = 1, inlined: bool = False) -> Symbol:
    return Symbol(function, None, SourceLocation(file, line, 1) if file else None, inlined)


def test_top_user_symbol_skips_runtime_frames() -> None:
    """The first symbol outside std/core/alloc/panic runtime and libc start-up code is the user frame."""
    stack = (
        SymbolizedFrame(1, 1, (_sym("__rust_start_panic", None),)),
        SymbolizedFrame(2, 2, (_sym("_ZN3std9panicking20rust_panic_with_hook17h6ac9107c42850161E", None),)),
        SymbolizedFrame(3, 3, (
            _sym("core::option::Option<T>::unwrap", "/rustc/abc/library/core/src/option.rs", inlined=True),
            _sym("<app::Thing as core::fmt::Display>::fmt", "src/lib.rs", 7),
        )),
    )
    user = top_user_symbol(stack)
    assert user is not None and user.function == "<app::Thing as core::fmt::Display>::fmt"
    assert top_user_symbol(stack[:2]) is None


def test_mapping_of_a_non_ok_outcome_without_trap_or_panic() -> None:
    """An exceeded limit with no trap details still yields an exception typed by the outcome."""
    mapped = map_record(_record(outcome=Outcome.EXCEEDED_WALL_TIME))
    assert mapped.span.error
    assert mapped.exception[sc.EXCEPTION_TYPE] == "tracer.exceededWallTime"


def test_disabled_sdk_gives_a_noop_pipeline_without_importing_the_sdk() -> None:
    """OTEL_SDK_DISABLED=true: Pipeline.start returns a no-op and the OpenTelemetry SDK is never imported."""
    code = (
        "import sys, os\n"
        "from collector import Pipeline, PipelineConfig\n"
        "p = Pipeline.start(PipelineConfig.from_env({'OTEL_SDK_DISABLED': 'true'}))\n"
        "p.record(object())\n"
        "r = p.shutdown()\n"
        "print(type(p).__name__, r.pending, 'opentelemetry.sdk' in sys.modules, 'grpc' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["_NoopPipeline", "0", "False", "False"]


def test_importing_collector_does_not_import_the_sdk() -> None:
    """`import collector` and building a config stay off the OpenTelemetry SDK and gRPC."""
    code = (
        "import sys\n"
        "import collector\n"
        "collector.PipelineConfig.from_env({})\n"
        "print('opentelemetry.sdk' in sys.modules, 'grpc' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["False", "False"]


def test_public_api_is_sorted() -> None:
    """collector.__all__ is sorted and every name resolves."""
    import collector

    assert collector.__all__ == sorted(collector.__all__)
    for name in collector.__all__:
        assert getattr(collector, name) is not None


def test_c_guest_trap_maps_to_wasm_trap_type_and_user_function(tmp_path: Path, fixtures: Path) -> None:
    """A C guest's division by zero is wasm.trap.integer_division_by_zero at `divide`; abort() frames are skipped."""
    from tracer import Interceptor

    icp = Interceptor.from_path(fixtures / "trap-c-O0.wasm")
    div = map_record(icp.invoke(argv=["div"]))
    assert div.exception[sc.EXCEPTION_TYPE] == "wasm.trap.integer_division_by_zero"
    assert div.span.attributes[sc.CODE_FUNCTION_NAME] == "divide"
    assert str(div.span.attributes[sc.CODE_FILE_PATH]).endswith("trap.c")
    aborted = map_record(icp.invoke(argv=["abort"]))
    assert aborted.exception[sc.EXCEPTION_TYPE] == "wasm.trap.unreachable"
    assert aborted.span.attributes[sc.CODE_LINE_NUMBER] == 17  # the abort() call in main, not libc's abort


def test_v0_mangled_guest_finds_the_same_user_frame(fixtures: Path) -> None:
    """With v0 symbol mangling the innermost user frame is still panics::worker::handle."""
    from tracer import Interceptor

    rec = Interceptor.from_path(fixtures / "panics-v0.wasm").invoke(argv=["unwrap_none"])
    assert map_record(rec).span.attributes[sc.CODE_FUNCTION_NAME] == "panics::worker::handle"


def test_each_process_has_its_own_service_instance() -> None:
    """Two pipelines' resources differ by service.instance.id and carry the pid (forked workers never merge)."""
    from collector._config import PipelineConfig
    from collector._sdk import build_resource

    cfg = PipelineConfig.from_env({}, service_name="svc")
    first, second = build_resource(cfg).attributes, build_resource(cfg).attributes
    assert first["service.name"] == second["service.name"] == "svc"
    assert first["service.instance.id"] != second["service.instance.id"]
    assert first["process.pid"] == os.getpid()
    named = build_resource(PipelineConfig.from_env({"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=pod-7"}))
    assert named.attributes["service.instance.id"] == "pod-7"
