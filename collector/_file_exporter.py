"""The embedded default: OTLP/JSON files, one export request per line, and the request helpers shared with the
spool and the transports (message classes per signal, item counts, splitting under a size limit).

The format is the OpenTelemetry file exporter's (the Collector's ``file`` exporter, OTLP/JSON encoding): each
line is one ``Export{Trace,Logs,Metrics}ServiceRequest`` in protobuf's JSON mapping with lowerCamelCase names,
enums as integers, and — OTLP/JSON's one deviation from the protobuf mapping — trace and span ids as hex strings,
not base64. Files per signal: ``traces.jsonl``, ``logs.jsonl``, ``metrics.jsonl`` under ``$TRACER_TELEMETRY_DIR``.
A line is appended with one ``write`` under an exclusive ``flock``, so concurrent processes never interleave.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

from collector._config import SIGNALS, Signal
from collector._errors import ReplayError
from collector._transport import SendResult

FILE_NAMES: dict[Signal, str] = {"traces": "traces.jsonl", "logs": "logs.jsonl", "metrics": "metrics.jsonl"}
_TOP_KEY: dict[Signal, str] = {"traces": "resourceSpans", "logs": "resourceLogs", "metrics": "resourceMetrics"}
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})


def request_class(signal: Signal) -> Any:
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        return ExportTraceServiceRequest
    if signal == "logs":
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

        return ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    return ExportMetricsServiceRequest


def response_class(signal: Signal) -> Any:
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        return ExportTraceServiceResponse
    if signal == "logs":
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

        return ExportLogsServiceResponse
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

    return ExportMetricsServiceResponse


def _levels(signal: Signal) -> tuple[str, str, str]:
    if signal == "traces":
        return "resource_spans", "scope_spans", "spans"
    if signal == "logs":
        return "resource_logs", "scope_logs", "log_records"
    return "resource_metrics", "scope_metrics", "metrics"


def _points(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def count_items(signal: Signal, request: Any) -> int:
    """Spans, log records or metric data points in a request: the unit every count in a report is in."""
    top, scope, items = _levels(signal)
    n = 0
    for r in getattr(request, top):
        for s in getattr(r, scope):
            if signal == "metrics":
                n += sum(_points(m) for m in s.metrics)
            else:
                n += len(getattr(s, items))
    return n


def split_request(signal: Signal, request: Any, limit: int) -> tuple[list[Any], int]:
    """Requests each at most ``limit`` serialized bytes carrying the same items, and the number of items that
    alone exceed ``limit`` (left out: no request can carry them)."""
    if request.ByteSize() <= limit:
        return [request], 0
    cls = type(request)
    top, scope, items = _levels(signal)
    out: list[Any] = []
    too_large = 0
    current = cls()
    for r in getattr(request, top):
        for s in getattr(r, scope):
            for item in getattr(s, items):
                single = cls()
                rr = getattr(single, top).add()
                rr.resource.CopyFrom(r.resource)
                rr.schema_url = r.schema_url
                ss = getattr(rr, scope).add()
                ss.scope.CopyFrom(s.scope)
                ss.schema_url = s.schema_url
                getattr(ss, items).append(item)
                size = single.ByteSize()
                if size > limit:
                    too_large += _points(item) if signal == "metrics" else 1
                    continue
                if current.ByteSize() + size > limit and getattr(current, top):
                    out.append(current)
                    current = cls()
                current.MergeFrom(single)
    if getattr(current, top):
        out.append(current)
    return out, too_large


# -- OTLP/JSON ---------------------------------------------------------------------------------------------------


def _walk_ids(node: Any, convert: Any) -> Any:
    if isinstance(node, dict):
        return {k: (convert(v) if k in _ID_KEYS and isinstance(v, str) else _walk_ids(v, convert))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_walk_ids(v, convert) for v in node]
    return node


_HEX_FIELDS = frozenset({"trace_id", "span_id", "parent_span_id"})


def _message_to_otlp_json(message: Any) -> dict[str, Any]:
    """protobuf → OTLP/JSON dict, as ``json_format.MessageToDict(use_integers_for_enums=True)`` with hex ids,
    but several times faster: it walks only the set fields (``ListFields``) with a per-field plan cached by
    descriptor, and turns the bulk of OTLP — ``KeyValue``/``AnyValue`` attributes — into dicts directly. A test
    checks it against ``json_format`` (``to_json_line_reference``)."""
    return _convert(message)


_PLANS: dict[Any, tuple[str, int, bool]] = {}
_MSG, _I64, _HEX, _B64, _FLOAT, _PLAIN = range(6)


def _plan(fd: Any) -> tuple[str, int, bool]:
    plan = _PLANS.get(fd)
    if plan is None:
        from google.protobuf.descriptor import FieldDescriptor as FD

        t = fd.type
        if fd.message_type is not None:
            kind = _MSG
        elif t in (FD.TYPE_INT64, FD.TYPE_UINT64, FD.TYPE_FIXED64, FD.TYPE_SFIXED64, FD.TYPE_SINT64):
            kind = _I64
        elif t == FD.TYPE_BYTES:
            kind = _HEX if fd.name in _HEX_FIELDS else _B64
        elif t in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
            kind = _FLOAT
        else:
            kind = _PLAIN
        repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == FD.LABEL_REPEATED
        plan = _PLANS[fd] = (fd.json_name, kind, bool(repeated))
    return plan


def _scalar(kind: int, value: Any) -> Any:
    if kind == _PLAIN:
        return value
    if kind == _I64:
        return str(value)
    if kind == _HEX:
        return value.hex()
    if kind == _B64:
        return base64.b64encode(value).decode("ascii")
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _any_value(v: Any) -> dict[str, Any]:
    which = v.WhichOneof("value")
    if which is None:
        return {}
    if which == "string_value":
        return {"stringValue": v.string_value}
    if which == "bool_value":
        return {"boolValue": v.bool_value}
    if which == "int_value":
        return {"intValue": str(v.int_value)}
    if which == "double_value":
        return {"doubleValue": _scalar(_FLOAT, v.double_value)}
    return _convert(v)  # arrays, kvlists, bytes: the generic walk


def _key_value(kv: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"key": kv.key} if kv.key else {}
    if kv.HasField("value"):
        out["value"] = _any_value(kv.value)
    return out


def _convert(msg: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        name, kind, repeated = _plan(fd)
        if kind == _MSG:
            if repeated:
                if fd.message_type.name == "KeyValue":
                    out[name] = [_key_value(kv) for kv in value]
                else:
                    out[name] = [_convert(v) for v in value]
            else:
                out[name] = _any_value(value) if fd.message_type.name == "AnyValue" else _convert(value)
        else:
            out[name] = [_scalar(kind, v) for v in value] if repeated else _scalar(kind, value)
    return out


def to_json_line(request: Any) -> str:
    """One request as an OTLP/JSON line (no trailing newline)."""
    return json.dumps(_message_to_otlp_json(request), separators=(",", ":"), ensure_ascii=False)


def to_json_line_reference(request: Any) -> str:
    """The same line through ``google.protobuf.json_format`` (slow; the oracle for ``to_json_line``)."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(request, use_integers_for_enums=True, preserving_proto_field_name=False)
    data = _walk_ids(data, lambda v: base64.b64decode(v).hex())
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def signal_of(data: dict[str, Any]) -> Signal | None:
    for signal in SIGNALS:
        if _TOP_KEY[signal] in data:
            return signal
    return None


def from_json_line(line: str, signal: Signal | None = None) -> tuple[Signal, Any]:
    """Parse an OTLP/JSON line back into (signal, request); raises ``ReplayError`` when it is not one."""
    from google.protobuf.json_format import ParseDict, ParseError

    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ReplayError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReplayError("not an OTLP/JSON export request (expected an object)")
    found = signal_of(data) if signal is None else signal
    if found is None:
        raise ReplayError("not an OTLP/JSON export request (no resourceSpans/resourceLogs/resourceMetrics)")

    def to_b64(v: str) -> str:
        try:
            return base64.b64encode(bytes.fromhex(v)).decode("ascii")
        except ValueError:
            return v  # already base64 (a writer that followed the plain protobuf mapping)

    data = _walk_ids(data, to_b64)
    request = request_class(found)()
    try:
        ParseDict(data, request, ignore_unknown_fields=True)
    except (ParseError, ValueError, TypeError) as exc:
        raise ReplayError(f"not a valid {found} request: {exc}") from exc
    return found, request


def read_json_file(path: Path) -> Iterator[tuple[int, Signal, Any]]:
    """(line number, signal, request) for every non-empty line; raises ``ReplayError`` naming the line."""
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReplayError(f"{path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                signal, request = from_json_line(line)
            except ReplayError as exc:
                raise ReplayError(f"{path}:{number}: {exc}") from exc
            yield number, signal, request


class FileTransport:
    """Appends requests as OTLP/JSON lines to ``<dir>/<signal>.jsonl`` (or to a stream, for ``console``)."""

    def __init__(self, signal: Signal, directory: Path | None, stream: Any = None) -> None:
        self.signal = signal
        self.path = directory / FILE_NAMES[signal] if directory is not None else None
        self.stream = stream if stream is not None else (sys.stderr if directory is None else None)
        self._lock = threading.Lock()

    def send(self, payload: bytes, deadline: float) -> SendResult:
        try:
            request = request_class(self.signal)()
            request.ParseFromString(payload)
            return self.write(request)
        except Exception as exc:  # noqa: BLE001 - a file problem is a counted drop, never an exception
            return SendResult(False, retryable=False, error=f"{type(exc).__name__}: {exc}")

    def write(self, request: Any) -> SendResult:
        return self.write_line(to_json_line(request).encode("utf-8"))

    def write_line(self, line: bytes) -> SendResult:
        """Append one OTLP/JSON line (given without its newline); never raises."""
        line += b"\n"
        try:
            with self._lock:
                if self.path is None:
                    assert self.stream is not None
                    self.stream.write(line.decode("utf-8"))
                    self.stream.flush()
                    return SendResult(True)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    view = memoryview(line)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                finally:
                    os.close(fd)
            return SendResult(True)
        except OSError as exc:
            return SendResult(False, retryable=False, error=f"{self.path}: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001 - e.g. a closed stream: a counted drop, never an exception
            return SendResult(False, retryable=False, error=f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        pass


