"""The direct OTLP encoder and the record fast paths, checked against the OpenTelemetry SDK doing the same work."""

from __future__ import annotations

import copy as copy_module
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from collector import _semconv as sc
from collector._config import PipelineConfig
from collector._file_exporter import count_items, from_json_line, read_json_file, request_class, to_json_line
from collector._mapping import map_record, stacktrace_text, top_user_symbol
from collector._otlp import encode_batch
from collector._pipeline import Pipeline

from tests.collector.conftest import InMemory


def _real_telemetry(tmp_path: Path, records: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """Finished spans and log records of real invocations, as the SDK's in-memory exporters hold them."""
    mem = InMemory(tmp_path, exception_signal="logs/dup")
    parent = trace.set_span_in_context(trace.NonRecordingSpan(SpanContext(7, 9, is_remote=True,
                                                                          trace_flags=TraceFlags(1))))
    for name in ("unwrap_none", "log", "ok", "badbytes"):
        mem.pipeline.record(records[name], http={"http.request.method": "GET", "x.list": [1, 2], "x.f": 1.5})
        mem.pipeline.record(records[name], parent=parent)
    spans, logs = list(mem.spans.get_finished_spans()), list(mem.logs.get_finished_logs())
    mem.pipeline.shutdown(1.0)
    return spans, logs


def test_protobuf_is_byte_for_byte_the_sdk_encoders(tmp_path: Path, records: dict[str, Any]) -> None:
    """Spans and log records of real invocations serialize to exactly the bytes of the SDK's own OTLP encoders."""
    spans, logs = _real_telemetry(tmp_path, records)
    for signal, items, reference in (("traces", spans, encode_spans), ("logs", logs, encode_logs)):
        parts, too_large, errors = encode_batch(signal, items, "protobuf", 4 << 20)
        assert (too_large, errors) == (0, 0)
        assert [n for _, n in parts] == [len(items)]
        assert parts[0][0] == reference(items).SerializeToString()


def test_json_is_the_file_exporters_line_for_the_sdk_request(tmp_path: Path, records: dict[str, Any]) -> None:
    """The OTLP/JSON line is exactly what the protobuf → JSON path writes for the SDK encoder's request."""
    spans, logs = _real_telemetry(tmp_path, records)
    for signal, items, reference in (("traces", spans, encode_spans), ("logs", logs, encode_logs)):
        parts, too_large, errors = encode_batch(signal, items, "json", 4 << 20)
        assert (too_large, errors, len(parts)) == (0, 0, 1)
        assert parts[0][0].decode("utf-8") == to_json_line(reference(items))


_RESOURCE = Resource({"service.name": "s", "n": 3})
_SCOPE = InstrumentationScope("tracer", "1.0", "https://schema", {"k": "v"})


def _span(attrs: dict[str, Any], **changes: Any) -> ReadableSpan:
    base: dict[str, Any] = dict(
        name="s",
        context=SpanContext(2**100 + 5, 2**60 + 7, is_remote=False, trace_flags=TraceFlags(1),
                            trace_state=TraceState([("a", "1"), ("b", "2")])),
        parent=SpanContext(2**100 + 5, 11, is_remote=True),
        resource=_RESOURCE,
        attributes=attrs,
        events=(Event("e", {"x": 1}, timestamp=5), Event("", None, timestamp=0)),
        links=(Link(SpanContext(1, 2, is_remote=True), {"l": True}),),
        kind=SpanKind.CLIENT,
        status=Status(StatusCode.ERROR, "bad"),
        start_time=1,
        end_time=2**62,
        instrumentation_scope=_SCOPE,
    )
    base.update(changes)
    return ReadableSpan(**base)


def _values() -> Any:
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(), st.booleans(), st.text(max_size=12), st.integers(-(2**64), 2**64),
        st.floats(allow_nan=True, allow_infinity=True), st.binary(max_size=8),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=8)


def test_any_attribute_value_encodes_as_the_sdk_does() -> None:
    """For any attribute values (nested lists/maps, bytes, None, NaN, ints past int64 that the SDK leaves out)
    the protobuf request parses to the SDK's and the JSON line is the file exporter's."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.text(max_size=6), _values(), max_size=6), st.sampled_from(list(SpanKind)))
    def check(attrs: dict[str, Any], kind: SpanKind) -> None:
        span = _span(attrs, kind=kind)
        reference = encode_spans([span])
        parts, too_large, errors = encode_batch("traces", [span], "protobuf", 4 << 20)
        request = request_class("traces")()
        request.ParseFromString(parts[0][0])
        assert request == reference and (too_large, errors) == (0, 0)
        lines, _, _ = encode_batch("traces", [span], "json", 4 << 20)
        assert json.loads(lines[0][0]) == json.loads(to_json_line(reference))

    check()


def test_an_item_the_encoder_refuses_is_reported_and_the_rest_kept() -> None:
    """A span whose name is not valid UTF-8 is counted as an encoding error; the other spans are encoded."""
    good, bad = _span({"a": 1}), _span({"a": 2}, name="bad \udcff")
    for fmt in ("protobuf", "json"):
        parts, too_large, errors = encode_batch("traces", [good, bad, good], fmt, 4 << 20)  # type: ignore[arg-type]
        assert (errors, too_large, [n for _, n in parts]) == (1, 0, [2])


def test_an_attribute_the_encoder_refuses_is_left_out_as_the_sdk_does() -> None:
    """An attribute value with a lone surrogate is left out of the span (the SDK's encoder does the same)."""
    span = _span({"good": "ok", "bad": "a\udcffb", "after": 1})
    reference = encode_spans([span])
    assert [kv.key for kv in reference.resource_spans[0].scope_spans[0].spans[0].attributes] == ["good", "after"]
    parts, _, errors = encode_batch("traces", [span], "protobuf", 4 << 20)
    assert parts[0][0] == reference.SerializeToString() and errors == 0
    lines, _, _ = encode_batch("traces", [span], "json", 4 << 20)
    assert lines[0][0].decode("utf-8") == to_json_line(reference)


def test_requests_are_split_under_the_limit_and_keep_every_item(tmp_path: Path, records: dict[str, Any]) -> None:
    """Split requests (protobuf) and lines (JSON, replayed as protobuf) stay under the limit and carry every item
    once, in order; an item bigger than the limit alone is counted as too large."""
    spans, logs = _real_telemetry(tmp_path, records)
    for signal, items in (("traces", spans * 5), ("logs", logs * 5)):
        for fmt in ("protobuf", "json"):
            limit = 9000
            parts, too_large, errors = encode_batch(signal, items, fmt, limit)  # type: ignore[arg-type]
            assert len(parts) > 2 and errors == 0
            total = 0
            for payload, n in parts:
                if fmt == "json":
                    _, request = from_json_line(payload.decode("utf-8"), signal)  # type: ignore[arg-type]
                else:
                    request = request_class(signal)()  # type: ignore[arg-type]
                    request.ParseFromString(payload)
                    assert len(payload) <= limit
                assert request.ByteSize() <= limit
                assert count_items(signal, request) == n  # type: ignore[arg-type]
                total += n
            assert total + too_large == len(items)
    huge = _span({"big": "x" * 5000})
    for fmt in ("protobuf", "json"):
        parts, too_large, _ = encode_batch("traces", [huge, _span({})], fmt, 4000)  # type: ignore[arg-type]
        assert too_large == 1 and [n for _, n in parts] == [1]


def test_json_over_the_limit_still_gets_a_line_when_its_protobuf_fits() -> None:
    """An item whose JSON is over the limit but whose protobuf request is not is written on a line of its own."""
    span = _span({f"k{i}": i for i in range(60)})  # JSON ~2.5x its protobuf size
    pb_size = len(encode_spans([span]).SerializeToString())
    parts, too_large, _ = encode_batch("traces", [span, span], "json", pb_size + 100)
    assert too_large == 0 and [n for _, n in parts] == [1, 1]
    assert all(len(line) > pb_size + 100 for line, _ in parts)


# -- the record fast paths ---------------------------------------------------------------------------------------


def _sdk_span(mem: InMemory, rec: Any, parent: Any, http: Any) -> Any:
    """The span as the OpenTelemetry API makes it (start_span, add_event, set_status, end): the pipeline's
    fallback path, taken when the SDK's tracer lacks what the fast path reads."""
    providers = mem.pipeline.sdk
    providers._fast_span = False
    try:
        mem.pipeline.record(rec, parent=parent, http=http)
    finally:
        providers._fast_span = True
    return mem.spans.get_finished_spans()[-1]


def _fields(span: Any) -> dict[str, Any]:
    return {
        "name": span.name, "kind": span.kind, "parent": span.parent, "start": span.start_time, "end": span.end_time,
        "attributes": list(span.attributes.items()), "dropped": span.dropped_attributes,
        "events": [(e.name, e.timestamp, list(e.attributes.items()), e.dropped_attributes) for e in span.events],
        "links": span.links, "status": (span.status.status_code, span.status.description),
        "resource": span.resource, "scope": span.instrumentation_scope,
        "trace_flags": span.context.trace_flags, "trace_state": span.context.trace_state,
        "remote": span.context.is_remote,
    }


def test_fast_span_is_the_span_the_api_makes(memory: InMemory, records: dict[str, Any]) -> None:
    """The invocation span built finished has the fields of the one the API builds step by step — for a root, a
    remote parent and a local parent — except its fresh span id."""
    remote = trace.set_span_in_context(trace.NonRecordingSpan(SpanContext(
        0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID))))
    local_span = memory.pipeline.sdk.tracer.start_span("GET")
    local = trace.set_span_in_context(local_span)
    for name in ("unwrap_none", "ok", "log"):
        for parent, http in ((None, None), (remote, {"http.request.method": "POST", "": "empty key"}),
                             (local, {})):
            memory.pipeline.record(records[name], parent=parent, http=http)
            fast = memory.spans.get_finished_spans()[-1]
            api = _sdk_span(memory, records[name], parent, http)
            assert _fields(fast) == _fields(api)
            assert fast.context.span_id != api.context.span_id
            if parent is not None:
                assert fast.context.trace_id == api.context.trace_id


def test_fast_span_keeps_the_attribute_count_limit(memory: InMemory) -> None:
    """More attributes than the span limit: the surplus is dropped and counted, as the SDK does."""
    from tests.collector.test_mapping import _record

    memory.pipeline.record(_record(), http={f"h{i}": i for i in range(300)})
    span = memory.spans.get_finished_spans()[-1]
    assert len(span.attributes) == 256 and span.dropped_attributes > 0


def test_unsampled_invocation_exports_no_span_but_keeps_log_context(tmp_path: Path, records: dict[str, Any]) -> None:
    """With sampling off the span is not exported, and the console logs still carry its trace and span ids."""
    mem = InMemory(tmp_path, sampler="always_off")
    mem.pipeline.record(records["log"])
    assert mem.spans.get_finished_spans() == ()
    logs = mem.logs.get_finished_logs()
    assert logs and all(item.log_record.trace_id and item.log_record.span_id for item in logs)
    assert len({item.log_record.span_id for item in logs}) == 1
    mem.pipeline.shutdown(1.0)


def _log_fields(item: Any) -> dict[str, Any]:
    r = item.log_record
    return {
        "time": r.timestamp, "trace": (r.trace_id, r.span_id, r.trace_flags), "severity": r.severity_number,
        "text": r.severity_text, "body": r.body, "attributes": list(r.attributes.items()), "event": r.event_name,
        "dropped": item.dropped_attributes, "resource": item.resource, "scope": item.instrumentation_scope,
    }


def test_fast_log_records_are_the_ones_the_api_emits(tmp_path: Path, records: dict[str, Any]) -> None:
    """Console lines and the exception log record equal what ``Logger.emit`` makes of the same mapped data."""
    from opentelemetry._logs import SeverityNumber

    mem = InMemory(tmp_path, exception_signal="logs/dup")
    for name in ("log", "unwrap_none", "badbytes"):
        mem.pipeline.record(records[name])
        fast = mem.logs.get_finished_logs()
        mem.logs.clear()
        span = mem.spans.get_finished_spans()[-1]
        context = trace.set_span_in_context(trace.NonRecordingSpan(span.context))
        for log in map_record(records[name], exception_signal="logs/dup").logs:
            mem.pipeline.sdk.logger.emit(timestamp=log.timestamp_ns, context=context,
                                         severity_number=SeverityNumber(log.severity_number),
                                         severity_text=log.severity_text, body=log.body, attributes=log.attributes,
                                         event_name=log.event_name)
        api = mem.logs.get_finished_logs()
        mem.logs.clear()
        assert len(fast) == len(api) > 0
        assert [_log_fields(f) for f in fast] == [_log_fields(a) for a in api]
    mem.pipeline.shutdown(1.0)


def _points(mem: InMemory) -> dict[tuple[str, tuple[tuple[str, Any], ...]], Any]:
    return {(name, tuple(sorted(p.attributes.items()))): p for name, ps in mem.metric_points().items() for p in ps}


def test_bound_metrics_equal_the_metric_apis(tmp_path: Path, records: dict[str, Any]) -> None:
    """Metric points recorded through the bound aggregations equal the same points sent through the metric API."""
    fast = InMemory(tmp_path / "fast")
    api = InMemory(tmp_path / "api")
    recs = [dataclasses.replace(records[n], invocation_id=f"{n}{i}") for i in range(5)
            for n in ("unwrap_none", "ok", "log")]
    for rec in recs:
        fast.pipeline.record(rec, http={})
        for p in map_record(rec, http={}).metrics:
            providers = api.pipeline.sdk
            if p.kind == "counter":
                providers.counters[p.name].add(p.value, p.attributes)
            else:
                providers.histograms[p.name].record(p.value, p.attributes)
    got, want = _points(fast), _points(api)
    assert got.keys() == want.keys() and len(got) >= 8
    for key, p in want.items():
        q = got[key]
        if hasattr(p, "bucket_counts"):
            assert (q.count, q.sum, q.min, q.max, list(q.bucket_counts)) == (p.count, p.sum, p.min, p.max,
                                                                           list(p.bucket_counts))
        else:
            assert q.value == p.value
    invocations = sum(p.value for (name, _), p in got.items() if name == sc.METRIC_INVOCATIONS)
    assert invocations == len(recs)
    fast.pipeline.shutdown(1.0)
    api.pipeline.shutdown(1.0)


def test_metrics_inside_a_sampled_span_take_the_api_path_and_still_count(memory: InMemory,
                                                                          records: dict[str, Any]) -> None:
    """Recorded while a sampled span is current (an exemplar is due), points go through the API: counts agree."""
    memory.pipeline.record(records["ok"])  # binds the attribute sets
    with memory.pipeline.sdk.tracer.start_as_current_span("outer"):
        memory.pipeline.record(records["ok"])
    memory.pipeline.record(records["ok"])
    collected = memory.metric_points()  # once: a collection hands the exemplars out and resets them
    assert sum(p.value for p in collected[sc.METRIC_INVOCATIONS]) == 3
    durations = collected[sc.METRIC_INVOKE_DURATION]
    assert sum(p.count for p in durations) == 3 and any(p.exemplars for p in durations)


def test_stack_text_is_cached_by_frame_identity_and_equal_by_value(records: dict[str, Any]) -> None:
    """Records sharing frame objects, or only equal frames, get the same text and user frame; others do not."""
    rec = records["unwrap_none"]
    copy = dataclasses.replace(rec, stack=tuple(copy_module.copy(f) for f in rec.stack))
    assert copy.stack == rec.stack and copy.stack[0] is not rec.stack[0]
    text = stacktrace_text(rec)
    assert text and stacktrace_text(rec) is text and stacktrace_text(copy) == text
    assert top_user_symbol(copy.stack) == top_user_symbol(rec.stack) is not None
    shorter = dataclasses.replace(rec, stack=rec.stack[1:])
    assert stacktrace_text(shorter) != text


def test_tracer_provider_spans_share_the_pipeline_delivery(tmp_path: Path, records: dict[str, Any]) -> None:
    """A span made with ``Pipeline.tracer_provider`` lands in the same OTLP/JSON file as the invocation spans."""
    cfg = PipelineConfig.from_env({"TRACER_TELEMETRY_DIR": str(tmp_path / "t"), "TRACER_SPOOL_DIR": str(tmp_path / "s")},
                                  service_name="panics-O1")
    pipe = Pipeline.start(cfg)
    assert isinstance(pipe, Pipeline)
    span = pipe.tracer_provider.get_tracer("tracer.serve").start_span("GET", kind=SpanKind.SERVER)
    pipe.record(records["ok"], parent=trace.set_span_in_context(span), http={})
    span.end()
    report = pipe.shutdown(5.0)
    assert report.signals["traces"].exported == 2 and report.balanced
    names = [s.name for _, _, req in read_json_file(tmp_path / "t" / "traces.jsonl")
             for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sorted(names) == ["GET", "invoke _start"]


@pytest.mark.parametrize("value", [0.0, -0.0, math.inf, 1e300, -5])
def test_cached_values_keep_their_exact_encoding(value: float) -> None:
    """Attribute encodings are cached by (key, type, value) without merging 0.0 and -0.0 or ints and floats."""
    for v in (value, value, -value, int(value) if math.isfinite(value) else value):
        span = _span({"v": v})
        parts, _, _ = encode_batch("traces", [span], "protobuf", 4 << 20)
        assert parts[0][0] == encode_spans([span]).SerializeToString()
