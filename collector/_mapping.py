"""Record → telemetry: one ``InvocationRecord`` becomes one span (with its exception event), log records and
metric points, as plain data. Pure: no OpenTelemetry import, no I/O; ``_pipeline.py`` feeds the result to the SDK.

Decisions (semconv references in docs/collector.md):

- Span ``invoke <export>``. Kind: INTERNAL under a local parent span (the HTTP server span of ``tracer serve``
  is the SERVER span of the request), else SERVER — the FaaS convention for an incoming invocation, whether its
  parent came over the wire (``traceparent``) or there is none. Timestamps come from the record:
  ``started_at_ns`` to ``started_at_ns + timings.total``.
- Status ERROR on every non-ok outcome, description ``<exception.type>: <message>``.
- The exception (semconv exceptions): ``exception.type`` = ``rust.panic`` for a panic, ``wasm.trap.<code>`` for
  a bare trap, ``tracer.host_error`` for a failed host import, ``tracer.<outcome>`` otherwise;
  ``exception.message`` = the panic message (else the trap message); ``exception.stacktrace`` = the symbolized
  backtrace (``symbolizer.format_stacktrace``) or, without symbols, V8-style raw frames. A span event
  by default; a log record carrying the span context when OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN is ``logs`` (log
  only) or ``logs/dup`` (both).
- Span attribute values are capped (default 2 KiB, Tempo's limit); the exception event and log keep the whole
  trace (bounded only by ``FULL_TEXT_LIMIT``).
- Console lines: severity from the ``tracer.log`` import's level; stdout → INFO, stderr → WARN (stderr is where
  WASI programs print diagnostics and where a panic's message lands, but it is not only errors).
- Every string is made valid UTF-8 here (lone surrogates replaced), so no record can fail a batch's encoding.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Mapping, Sequence, Union, cast

from collector import _semconv as sc

if TYPE_CHECKING:
    from symbolizer._model import RawFrame, SymbolizedFrame, Symbol
    from tracer._record import InvocationRecord, LogRecord

AttrValue = Union[str, bool, int, float]
Attributes = dict[str, AttrValue]

FULL_TEXT_LIMIT = 256 * 1024  # the exception event/log body: whole, but never unbounded
TRUNCATION_MARK = "…[truncated]"

# OTel log data model severity numbers.
SEVERITY: dict[str, tuple[int, str]] = {
    "trace": (1, "TRACE"),
    "debug": (5, "DEBUG"),
    "info": (9, "INFO"),
    "notice": (10, "INFO2"),
    "warn": (13, "WARN"),
    "warning": (13, "WARN"),
    "error": (17, "ERROR"),
    "err": (17, "ERROR"),
    "critical": (21, "FATAL"),
    "fatal": (21, "FATAL"),
}
STREAM_SEVERITY: dict[str, tuple[int, str]] = {"stdout": (9, "INFO"), "stderr": (13, "WARN")}

# Crates and symbols that are the runtime, not the user's code (Rust std/core/alloc, their helpers, wasi-libc).
_RUNTIME_CRATES = frozenset(
    {
        "std", "core", "alloc", "panic_unwind", "panic_abort", "compiler_builtins", "dlmalloc", "wasi",
        "rustc_std_workspace_core", "std_detect", "hashbrown", "addr2line", "gimli", "miniz_oxide", "object",
        "rustc_demangle", "memchr", "adler",
    }
)
_RUNTIME_SYMBOLS = ("__rust", "rust_panic", "rust_begin_unwind", "__original_main", "__main_void", "_start",
                    "__wasi_", "abort", "__wasm_call_ctors", "_Exit", "exit")
_RUNTIME_PATHS = ("/library/std/", "/library/core/", "/library/alloc/", "/library/panic_", "/rustc/",
                  "wasi-libc/", "/libc-bottom-half/", "/libc-top-half/")


@dataclass(frozen=True, slots=True)
class EventData:
    name: str
    timestamp_ns: int
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class SpanData:
    name: str
    kind: Literal["SERVER", "INTERNAL"]
    start_ns: int
    end_ns: int
    attributes: Attributes
    error: bool
    status_description: str | None
    events: tuple[EventData, ...] = ()


@dataclass(frozen=True, slots=True)
class LogData:
    """One log record, to be emitted with the invocation span's context."""

    timestamp_ns: int
    severity_number: int
    severity_text: str
    body: str
    attributes: Attributes
    event_name: str | None = None


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One measurement: ``kind`` ``counter`` adds ``value``, ``histogram`` records it."""

    name: str
    kind: Literal["counter", "histogram"]
    value: float
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class Mapped:
    span: SpanData
    logs: tuple[LogData, ...] = ()
    metrics: tuple[MetricPoint, ...] = ()
    exception: Attributes = field(default_factory=dict)


def safe_text(text: str) -> str:
    """Valid UTF-8 text: lone surrogates (from surrogateescape'd bytes) become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return text


def cap(text: str, limit: int) -> str:
    """``text`` made safe and cut to at most ``limit`` UTF-8 bytes, marked when cut (no split code points)."""
    if text.isascii() and len(text) <= limit:  # the common case, without encoding
        return text
    text = safe_text(text)
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    mark = TRUNCATION_MARK.encode("utf-8")
    keep = max(limit - len(mark), 0)
    return raw[:keep].decode("utf-8", "ignore") + (TRUNCATION_MARK if limit >= len(mark) else "")


def _crate_of(name: str) -> str | None:
    """The first path component of a (possibly still mangled) Rust symbol, or None for a plain C-like name."""
    if name.startswith("_ZN"):
        i, digits = 3, ""
        while i < len(name) and name[i].isdigit():
            digits += name[i]
            i += 1
        return name[i : i + int(digits)] if digits else None
    stripped = name.lstrip("<&*").removeprefix("dyn ").removeprefix("mut ")
    if "::" in stripped:
        return stripped.split("::", 1)[0]
    return None


def is_runtime_symbol(symbol: "Symbol") -> bool:
    """True for Rust std/core/alloc (and friends) and libc start-up code: frames a user did not write."""
    return _is_runtime(symbol.function, symbol.location.file if symbol.location is not None else None)


@functools.lru_cache(maxsize=4096)
def _is_runtime(name: str, file: str | None) -> bool:
    # Cached: the same few hundred functions recur in every crash of a module.
    if name.startswith("_R"):  # v0 mangling: demangle once, here only
        try:
            from symbolizer import demangle

            name = demangle(name)
        except Exception:  # noqa: BLE001 - a missing/failed demangler leaves the name as it is
            pass
    crate = _crate_of(name)
    if crate is not None and crate in _RUNTIME_CRATES:
        return True
    if crate is None and name.startswith(_RUNTIME_SYMBOLS):
        return True
    if file and any(p in file for p in _RUNTIME_PATHS):
        return True
    return False


def _top_user_symbol(stack: Sequence["SymbolizedFrame"]) -> "Symbol | None":
    """The innermost symbol (inlined ones included) that is not runtime code."""
    for frame in stack:
        for symbol in frame.symbols:
            if not is_runtime_symbol(symbol):
                return symbol
    return None


def raw_stacktrace(frames: Sequence["RawFrame"]) -> str:
    """Unsymbolized frames in V8's shape: ``    at NAME (wasm-function[N]:0xOFF)``."""
    lines = []
    for f in frames:
        where = f"wasm-function[{f.func_index}]:" if f.func_index is not None else ""
        offset = f"{f.module_offset:#x}" if f.module_offset is not None else "?"
        lines.append(f"    at {f.func_name or '<unknown>'} ({where}{offset})")
    return "\n".join(lines)


@functools.lru_cache(maxsize=256)
def _format_stack(stack: tuple["SymbolizedFrame", ...]) -> str:
    # Cached per stack: a crash loop repeats the same stack (frozen dataclasses hash by value).
    from symbolizer._render import format_stacktrace

    return format_stacktrace(stack)


# Per stack, by identity: the symbolizer hands out the same frame objects for the same addresses (its frame
# cache), so a crash loop's records share their frames; an identity check is then all a repeat costs, where the
# value-keyed caches would hash every symbol of every frame again. Entries hold their frames (ids stay unique).
_BY_IDENTITY: dict[tuple[int, ...], tuple[tuple[object, ...], "Symbol | None", str]] = {}
_BY_IDENTITY_MAX = 256


def _stack_facts(stack: Sequence["SymbolizedFrame"]) -> tuple["Symbol | None", str]:
    """(innermost user symbol, ``format_stacktrace`` text) of a non-empty symbolized stack."""
    key = tuple(map(id, stack))
    hit = _BY_IDENTITY.get(key)
    if hit is not None and all(map(operator.is_, hit[0], stack)):
        return hit[1], hit[2]
    frames = tuple(stack)
    facts = (_top_user_symbol(frames), _format_stack(frames))
    if len(_BY_IDENTITY) >= _BY_IDENTITY_MAX:
        _BY_IDENTITY.clear()
    _BY_IDENTITY[key] = (frames, *facts)
    return facts


def top_user_symbol(stack: Sequence["SymbolizedFrame"]) -> "Symbol | None":
    """The innermost symbol (inlined ones included) that is not runtime code."""
    return _stack_facts(stack)[0] if stack else None


def stacktrace_text(rec: "InvocationRecord") -> str | None:
    if rec.stack:
        return _stack_facts(rec.stack)[1]
    if rec.frames:
        return raw_stacktrace(rec.frames)
    return None


def exception_attributes(rec: "InvocationRecord") -> Attributes:
    """The semconv exception attributes for a non-ok record (empty for ok). Values are whole, not capped."""
    if rec.outcome.value == "ok":
        return {}
    if rec.panic is not None:
        etype, message = sc.EXCEPTION_TYPE_PANIC, rec.panic.message
    elif rec.trap is not None:
        etype, message = sc.EXCEPTION_TYPE_TRAP_PREFIX + rec.trap.code, rec.trap.message
    elif rec.host_error is not None:
        etype, message = sc.EXCEPTION_TYPE_HOST_ERROR, rec.host_error
    else:
        etype, message = f"tracer.{rec.outcome.value}", rec.outcome.value
    attrs: Attributes = {
        sc.EXCEPTION_TYPE: etype,
        sc.EXCEPTION_MESSAGE: cap(message, FULL_TEXT_LIMIT),
    }
    trace = stacktrace_text(rec)
    if trace:
        attrs[sc.EXCEPTION_STACKTRACE] = cap(trace, FULL_TEXT_LIMIT)
    return attrs


def severity_of(log: "LogRecord") -> tuple[int, str]:
    if log.level:
        known = SEVERITY.get(log.level.lower())
        if known is not None:
            return known
        return 9, safe_text(log.level)
    return STREAM_SEVERITY.get(log.stream, (9, "INFO"))


def end_time_ns(rec: "InvocationRecord") -> int:
    return rec.started_at_ns + max(int(rec.timings.total_ms * 1_000_000), 0)


def map_record(
    rec: "InvocationRecord",
    *,
    local_parent: bool = False,
    http: Mapping[str, object] | None = None,
    exception_signal: Literal["span", "logs", "logs/dup"] = "span",
    attribute_value_limit: int = 2048,
) -> Mapped:
    """Map one record. ``local_parent``: the span has a parent span in this process (→ INTERNAL)."""
    limit = attribute_value_limit

    def put(attrs: Attributes, key: str, value: object) -> None:
        if value is None:
            return
        if type(value) is str and value.isascii() and len(value) <= limit:
            attrs[key] = value
        elif isinstance(value, str):
            attrs[key] = cap(value, limit)
        elif isinstance(value, (bool, int, float)):
            attrs[key] = value
        else:
            attrs[key] = cap(str(value), limit)

    def put_all(attrs: Attributes, pairs: Sequence[tuple[str, object]]) -> None:
        # ``put`` inlined for the common types: this runs ~30 times per record.
        for key, value in pairs:
            t = type(value)
            if t is str:
                text = cast(str, value)
                attrs[key] = text if text.isascii() and len(text) <= limit else cap(text, limit)
            elif t is bool or t is int or t is float:
                attrs[key] = cast(AttrValue, value)
            elif value is not None:
                put(attrs, key, value)

    start = rec.started_at_ns
    end = end_time_ns(rec)
    trigger = sc.TRIGGER_HTTP if http is not None else sc.TRIGGER_OTHER
    outcome = rec.outcome.value
    timings = rec.timings
    trap = rec.trap
    a: Attributes = {}
    put_all(a, (
        (sc.FAAS_INVOCATION_ID, rec.invocation_id),
        (sc.FAAS_NAME, rec.module_name),
        (sc.FAAS_COLDSTART, rec.cold_start),
        (sc.FAAS_TRIGGER, trigger),
        (sc.FAAS_MAX_MEMORY, rec.memory_limit_bytes),
        (sc.OUTCOME, outcome),
        (sc.EXPORT, rec.export),
        (sc.MODULE_CODE_ID, rec.code_id),
        (sc.MODULE_BUILD_ID, rec.build_id),
        (sc.MODULE_SHA256, rec.module_sha256),
        (sc.TRAP_CODE, trap.code if trap is not None else None),
        (sc.TRAP_MESSAGE, trap.message if trap is not None else None),
        (sc.EXIT_CODE, rec.exit_code),
        (sc.HOST_ERROR, rec.host_error),
        (sc.FUEL_CONSUMED, rec.fuel_consumed),
        (sc.FUEL_LIMIT, rec.fuel_limit),
        (sc.MEMORY_PEAK, rec.memory_peak_bytes),
        (sc.TIMEOUT, rec.timeout_s),
        (sc.FRAMES_TRUNCATED, rec.frames_truncated),
        (sc.FRAMES_COUNT, len(rec.frames) if rec.frames else None),
        (sc.LOGS_DROPPED, rec.logs_dropped or None),
        (sc.DURATION_LOAD, timings.load_ms / 1000.0),
        (sc.DURATION_INSTANTIATE, timings.instantiate_ms / 1000.0),
        (sc.DURATION_EXECUTE, timings.execute_ms / 1000.0),
    ))

    user = top_user_symbol(rec.stack)
    if user is not None:
        put(a, sc.CODE_FUNCTION_NAME, user.function)
        if user.location is not None:
            put(a, sc.CODE_FILE_PATH, user.location.file)
            put(a, sc.CODE_LINE_NUMBER, user.location.line)
            put(a, sc.CODE_COLUMN_NUMBER, user.location.column)
    elif rec.panic is not None and rec.panic.file:
        # No symbolized user frame: the panic's own location is the user's call site (#[track_caller]).
        put(a, sc.CODE_FILE_PATH, rec.panic.file)
        put(a, sc.CODE_LINE_NUMBER, rec.panic.line)
        put(a, sc.CODE_COLUMN_NUMBER, rec.panic.column)
    if rec.panic is not None and rec.panic.file:
        where = ":".join(str(p) for p in (rec.panic.file, rec.panic.line, rec.panic.column) if p is not None)
        put(a, sc.PANIC_LOCATION, where)
    if http:
        put_all(a, [(k if type(k) is str and k.isascii() else safe_text(str(k)), v) for k, v in http.items()])

    exc = exception_attributes(rec)
    events: tuple[EventData, ...] = ()
    logs: list[LogData] = []
    error = not rec.ok
    description = None
    if exc:
        description = cap(f"{exc[sc.EXCEPTION_TYPE]}: {exc[sc.EXCEPTION_MESSAGE]}", limit)
        if exception_signal in ("span", "logs/dup"):
            events = (EventData(sc.EXCEPTION_EVENT, end, dict(exc)),)

    for log in rec.logs:
        number, text = severity_of(log)
        attrs: Attributes = {sc.LOG_STREAM: safe_text(log.stream)}
        if log.stream in ("stdout", "stderr"):
            attrs[sc.LOG_IOSTREAM] = log.stream
        if log.truncated:
            attrs[sc.LOG_TRUNCATED] = True
        attrs[sc.FAAS_INVOCATION_ID] = rec.invocation_id
        logs.append(LogData(log.timestamp_ns, number, text, cap(log.text, FULL_TEXT_LIMIT), attrs))

    if exc and exception_signal in ("logs", "logs/dup"):
        body = f"{exc[sc.EXCEPTION_TYPE]}: {exc[sc.EXCEPTION_MESSAGE]}"
        if sc.EXCEPTION_STACKTRACE in exc:
            body += "\n" + str(exc[sc.EXCEPTION_STACKTRACE])
        attrs = dict(exc)
        attrs[sc.FAAS_INVOCATION_ID] = rec.invocation_id
        logs.append(LogData(end, 17, "ERROR", cap(body, FULL_TEXT_LIMIT), attrs, event_name=sc.EXCEPTION_EVENT))

    base: Attributes = {sc.FAAS_TRIGGER: trigger, sc.OUTCOME: outcome}
    points = [
        MetricPoint(sc.METRIC_INVOCATIONS, "counter", 1, dict(base)),
        MetricPoint(sc.METRIC_INVOKE_DURATION, "histogram", (end - start) / 1e9, dict(base)),
        MetricPoint(sc.METRIC_MEM_USAGE, "histogram", float(rec.memory_peak_bytes), {sc.FAAS_TRIGGER: trigger}),
    ]
    if not rec.ok:
        points.append(MetricPoint(sc.METRIC_ERRORS, "counter", 1, dict(base)))
    if rec.cold_start:
        points.append(MetricPoint(sc.METRIC_COLDSTARTS, "counter", 1, {sc.FAAS_TRIGGER: trigger}))
    if rec.fuel_consumed is not None:
        points.append(
            MetricPoint(sc.METRIC_FUEL_CONSUMED, "histogram", float(rec.fuel_consumed), dict(base))
        )

    span = SpanData(
        name=cap(sc.SPAN_NAME_PREFIX + rec.export, limit),
        kind="INTERNAL" if local_parent else "SERVER",
        start_ns=start,
        end_ns=end,
        attributes=a,
        error=error,
        status_description=description,
        events=events,
    )
    return Mapped(span=span, logs=tuple(logs), metrics=tuple(points), exception=exc)
