"""Attribute and metric names the collector writes, in one place.

Names follow the OpenTelemetry semantic conventions where one exists (FaaS: faas.*, code: code.*, exceptions:
exception.*, logs: log.iostream) and the project's own ``tracer.*`` namespace otherwise. The deploy stack's
dashboards are checked against ``METRIC_NAMES``; ``PROMETHEUS_NAMES`` says what those metrics are called after
the Collector's Prometheus exporter adds unit and ``_total`` suffixes (``add_metric_suffixes``).
"""

from __future__ import annotations

from typing import Final

# -- span names and events ---------------------------------------------------------------------------------------
SPAN_NAME_PREFIX: Final = "invoke "  # span name is "invoke <export>"
EXCEPTION_EVENT: Final = "exception"  # semconv exceptions: event / log record name
INSTRUMENTATION_SCOPE: Final = "tracer"

# -- resource ----------------------------------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
HOST_NAME: Final = "host.name"
MODULE_CODE_ID: Final = "tracer.module.code_id"
MODULE_BUILD_ID: Final = "tracer.module.build_id"
MODULE_SHA256: Final = "tracer.module.sha256"

# -- FaaS (semconv faas.*) ---------------------------------------------------------------------------------------
FAAS_COLDSTART: Final = "faas.coldstart"
FAAS_INVOCATION_ID: Final = "faas.invocation_id"
FAAS_NAME: Final = "faas.name"
FAAS_MAX_MEMORY: Final = "faas.max_memory"
FAAS_TRIGGER: Final = "faas.trigger"

# -- code.* for the innermost user frame (semconv code.*, 1.30+ names) ------------------------------------------
CODE_FUNCTION_NAME: Final = "code.function.name"
CODE_FILE_PATH: Final = "code.file.path"
CODE_LINE_NUMBER: Final = "code.line.number"
CODE_COLUMN_NUMBER: Final = "code.column.number"

# -- exceptions (semconv exception.*) ----------------------------------------------------------------------------
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
EXCEPTION_TYPE_PANIC: Final = "rust.panic"
EXCEPTION_TYPE_TRAP_PREFIX: Final = "wasm.trap."  # + wasmtime trap code: wasm.trap.unreachable
EXCEPTION_TYPE_HOST_ERROR: Final = "tracer.host_error"

# -- logs --------------------------------------------------------------------------------------------------------
LOG_IOSTREAM: Final = "log.iostream"  # semconv: stdout | stderr
LOG_STREAM: Final = "tracer.log.stream"  # stdout | stderr | log (the tracer.log import)
LOG_TRUNCATED: Final = "tracer.log.truncated"

# -- the project's own span attributes ---------------------------------------------------------------------------
OUTCOME: Final = "tracer.outcome"
EXPORT: Final = "tracer.export"
TRAP_CODE: Final = "tracer.trap.code"
TRAP_MESSAGE: Final = "tracer.trap.message"
EXIT_CODE: Final = "tracer.exit_code"
HOST_ERROR: Final = "tracer.host_error"
FUEL_CONSUMED: Final = "tracer.fuel.consumed"
FUEL_LIMIT: Final = "tracer.fuel.limit"
MEMORY_PEAK: Final = "tracer.memory.peak"
TIMEOUT: Final = "tracer.timeout"
FRAMES_TRUNCATED: Final = "tracer.frames_truncated"
FRAMES_COUNT: Final = "tracer.frames.count"
LOGS_DROPPED: Final = "tracer.logs.dropped"
PANIC_LOCATION: Final = "tracer.panic.location"
DURATION_LOAD: Final = "tracer.duration.load"  # seconds
DURATION_INSTANTIATE: Final = "tracer.duration.instantiate"
DURATION_EXECUTE: Final = "tracer.duration.execute"

# -- metrics -----------------------------------------------------------------------------------------------------
METRIC_INVOCATIONS: Final = "faas.invocations"  # counter {invocation}; attrs faas.trigger, tracer.outcome
METRIC_ERRORS: Final = "faas.errors"  # counter {error}; outcome != ok
METRIC_INVOKE_DURATION: Final = "faas.invoke_duration"  # histogram, s
METRIC_COLDSTARTS: Final = "faas.coldstarts"  # counter {coldstart}
METRIC_MEM_USAGE: Final = "faas.mem_usage"  # histogram, By (memory peak)
METRIC_FUEL_CONSUMED: Final = "tracer.fuel.consumed"  # histogram, {fuel}

METRIC_NAMES: Final = (
    METRIC_INVOCATIONS,
    METRIC_ERRORS,
    METRIC_INVOKE_DURATION,
    METRIC_COLDSTARTS,
    METRIC_MEM_USAGE,
    METRIC_FUEL_CONSUMED,
)

METRIC_UNITS: Final = {
    METRIC_INVOCATIONS: "{invocation}",
    METRIC_ERRORS: "{error}",
    METRIC_INVOKE_DURATION: "s",
    METRIC_COLDSTARTS: "{coldstart}",
    METRIC_MEM_USAGE: "By",
    METRIC_FUEL_CONSUMED: "{fuel}",
}

# What the OpenTelemetry Collector's Prometheus exporter (add_metric_suffixes: true) exposes: dots become
# underscores, "s" adds _seconds, "By" adds _bytes, {annotations} add nothing, counters add _total.
PROMETHEUS_NAMES: Final = {
    METRIC_INVOCATIONS: "faas_invocations_total",
    METRIC_ERRORS: "faas_errors_total",
    METRIC_INVOKE_DURATION: "faas_invoke_duration_seconds",  # _bucket, _sum, _count
    METRIC_COLDSTARTS: "faas_coldstarts_total",
    METRIC_MEM_USAGE: "faas_mem_usage_bytes",  # _bucket, _sum, _count
    METRIC_FUEL_CONSUMED: "tracer_fuel_consumed",  # _bucket, _sum, _count
}

# Explicit bucket boundaries (semconv's advice for durations; powers of four for bytes and fuel).
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
MEMORY_BUCKETS: Final = tuple(float(1 << s) for s in range(16, 33, 2))  # 64 KiB .. 4 GiB
FUEL_BUCKETS: Final = tuple(float(10**e) for e in range(3, 13))  # 1e3 .. 1e12

TRIGGER_HTTP: Final = "http"
TRIGGER_OTHER: Final = "other"
