"""Pipeline configuration: a frozen dataclass built from the standard OpenTelemetry environment.

Precedence is flag > environment > default: ``PipelineConfig.from_env`` reads the environment over the defaults
(the keyword arguments are the defaults the caller derives from the module, e.g. its name as service.name), and a
CLI flag is applied afterwards with ``config.replace(...)``.

Variables read (docs/collector.md has the full reference). OpenTelemetry's own, per the SDK environment spec:

``OTEL_SDK_DISABLED``                       ``true``: a no-op pipeline
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``
``OTEL_EXPORTER_OTLP[_{TRACES,LOGS,METRICS}]_{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,COMPRESSION,INSECURE,CERTIFICATE,
CLIENT_KEY,CLIENT_CERTIFICATE}``             where telemetry goes; TIMEOUT in milliseconds as the spec says
``OTEL_{TRACES,LOGS,METRICS}_EXPORTER``     ``otlp`` (default), ``console`` or ``none``
``OTEL_TRACES_SAMPLER``, ``OTEL_TRACES_SAMPLER_ARG``
``OTEL_BSP_*``, ``OTEL_BLRP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``    batching and export interval (milliseconds)
``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT``, ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``  (default here: 2048)
``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN``    ``logs`` or ``logs/dup``: exceptions as log records (too)

The project's own: ``TRACER_TELEMETRY_DIR`` (default ``./telemetry``) where a signal with no endpoint is written
as OTLP/JSON; ``TRACER_SPOOL_DIR`` (default ``$TRACER_CACHE_DIR/spool``, i.e. ``~/.cache/tracer/spool``) where
batches wait while the collector is unreachable.
"""

from __future__ import annotations

import dataclasses
import math
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping
from urllib.parse import unquote, urlsplit

from collector._errors import ConfigError

MiB = 1 << 20
Signal = Literal["traces", "logs", "metrics"]
SIGNALS: tuple[Signal, ...] = ("traces", "logs", "metrics")
PROTOCOLS = ("grpc", "http/protobuf")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_ATTRIBUTE_VALUE_LIMIT = 2048  # Tempo truncates attribute values past 2 KiB
DEFAULT_SPOOL_MAX_BYTES = 64 * MiB
# gRPC's default maximum receive message size is 4 MiB; keep every request under it, with room for framing.
DEFAULT_MAX_REQUEST_BYTES = 4 * MiB - 64 * 1024


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    """Where one signal goes. ``kind``: ``otlp`` (``endpoint`` set), ``file`` (the embedded default, no
    endpoint configured), ``console`` or ``none``. ``endpoint`` is the full URL (for http/protobuf it includes
    the ``/v1/<signal>`` path)."""

    signal: Signal
    kind: Literal["otlp", "file", "console", "none"] = "file"
    endpoint: str | None = None
    protocol: Literal["grpc", "http/protobuf"] = "http/protobuf"
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 10.0
    compression: Literal["none", "gzip"] = "none"
    insecure: bool | None = None
    certificate: str | None = None
    client_key: str | None = None
    client_certificate: str | None = None


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """A batch processor's bounds: queue length (beyond it records are dropped and counted), batch size, and the
    delay between exports."""

    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    schedule_delay_s: float = 5.0


def _default_spool_dir(environ: Mapping[str, str]) -> Path:
    cache = environ.get("TRACER_CACHE_DIR")
    if cache:
        return Path(cache) / "spool"
    xdg = environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tracer" / "spool"


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Everything ``Pipeline.start`` needs; build it with ``from_env`` and override fields with ``replace``."""

    disabled: bool = False
    service_name: str = "unknown_service"
    service_version: str | None = None
    resource_attributes: tuple[tuple[str, str], ...] = ()
    traces: ExporterConfig = ExporterConfig("traces")
    logs: ExporterConfig = ExporterConfig("logs")
    metrics: ExporterConfig = ExporterConfig("metrics")
    sampler: str = "parentbased_always_on"
    sampler_arg: float | None = None
    exception_signal: Literal["span", "logs", "logs/dup"] = "span"
    attribute_value_limit: int = DEFAULT_ATTRIBUTE_VALUE_LIMIT
    span_batch: BatchConfig = BatchConfig()
    log_batch: BatchConfig = BatchConfig()
    metric_export_interval_s: float = 60.0
    telemetry_dir: Path = Path("telemetry")
    spool_dir: Path = field(default_factory=lambda: _default_spool_dir({}))
    spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    shutdown_timeout_s: float = 5.0
    resend_spool_on_start: bool = True

    def exporter(self, signal: Signal) -> ExporterConfig:
        cfg: ExporterConfig = getattr(self, signal)
        return cfg

    def replace(self, **changes: Any) -> PipelineConfig:
        """A copy with some fields changed (the flag layer of flag > env > default)."""
        return dataclasses.replace(self, **changes)

    @property
    def any_otlp(self) -> bool:
        return any(self.exporter(s).kind == "otlp" for s in SIGNALS)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        service_name: str | None = None,
        service_version: str | None = None,
        resource: Mapping[str, str] | None = None,
    ) -> PipelineConfig:
        """Read the OpenTelemetry environment over these defaults; raises ``ConfigError`` on a bad value.

        ``service_name``/``service_version``/``resource`` are defaults (typically the module's name and ids):
        ``OTEL_RESOURCE_ATTRIBUTES`` overrides them and ``OTEL_SERVICE_NAME`` overrides both.
        """
        env = {k: v for k, v in environ.items() if v is not None}

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value is not None and value.strip() != "" else None

        disabled = _parse_bool(get("OTEL_SDK_DISABLED"), "OTEL_SDK_DISABLED", default=False)

        attrs: dict[str, str] = {"host.name": socket.gethostname()}
        attrs.update({k: str(v) for k, v in (resource or {}).items()})
        attrs.update(_parse_pairs(get("OTEL_RESOURCE_ATTRIBUTES"), "OTEL_RESOURCE_ATTRIBUTES"))
        name = get("OTEL_SERVICE_NAME") or attrs.pop("service.name", None) or service_name or "unknown_service"
        attrs.pop("service.name", None)
        version = attrs.pop("service.version", None) or service_version

        exception_signal: Literal["span", "logs", "logs/dup"] = "span"
        opt_in = {v.strip() for v in (get("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN") or "").split(",")}
        if "logs/dup" in opt_in:
            exception_signal = "logs/dup"
        elif "logs" in opt_in:
            exception_signal = "logs"

        sampler = (get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").lower()
        if sampler not in SAMPLERS:
            raise ConfigError(f"OTEL_TRACES_SAMPLER: unknown sampler {sampler!r} (one of {', '.join(SAMPLERS)})")
        sampler_arg = None
        raw_arg = get("OTEL_TRACES_SAMPLER_ARG")
        if raw_arg is not None and sampler.endswith("traceidratio"):
            sampler_arg = _parse_float(raw_arg, "OTEL_TRACES_SAMPLER_ARG")
            if not 0.0 <= sampler_arg <= 1.0:
                raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG must be within [0, 1], got {raw_arg!r}")

        limit_raw = get("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT") or get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")
        limit = (
            _parse_int(limit_raw, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT")
            if limit_raw
            else DEFAULT_ATTRIBUTE_VALUE_LIMIT
        )

        def batch(prefix: str) -> BatchConfig:
            d = BatchConfig()
            queue = _parse_int(get(f"{prefix}_MAX_QUEUE_SIZE"), f"{prefix}_MAX_QUEUE_SIZE", d.max_queue_size)
            size = _parse_int(
                get(f"{prefix}_MAX_EXPORT_BATCH_SIZE"), f"{prefix}_MAX_EXPORT_BATCH_SIZE", d.max_export_batch_size
            )
            delay_ms = _parse_float(get(f"{prefix}_SCHEDULE_DELAY"), f"{prefix}_SCHEDULE_DELAY", 5000.0)
            return BatchConfig(queue, min(size, queue), delay_ms / 1000.0)

        interval_ms = _parse_float(get("OTEL_METRIC_EXPORT_INTERVAL"), "OTEL_METRIC_EXPORT_INTERVAL", 60000.0)

        telemetry_dir = Path(get("TRACER_TELEMETRY_DIR") or "telemetry")
        spool_raw = get("TRACER_SPOOL_DIR")
        spool_dir = Path(spool_raw) if spool_raw else _default_spool_dir(env)

        return cls(
            disabled=disabled,
            service_name=name,
            service_version=version,
            resource_attributes=tuple(sorted(attrs.items())),
            traces=_exporter_from_env("traces", get),
            logs=_exporter_from_env("logs", get),
            metrics=_exporter_from_env("metrics", get),
            sampler=sampler,
            sampler_arg=sampler_arg,
            exception_signal=exception_signal,
            attribute_value_limit=limit,
            span_batch=batch("OTEL_BSP"),
            log_batch=batch("OTEL_BLRP"),
            metric_export_interval_s=interval_ms / 1000.0,
            telemetry_dir=telemetry_dir,
            spool_dir=spool_dir,
        )


def _exporter_from_env(signal: Signal, get: Any) -> ExporterConfig:
    up = signal.upper()

    def pick(suffix: str) -> tuple[str, str | None]:
        specific = f"OTEL_EXPORTER_OTLP_{up}_{suffix}"
        value = get(specific)
        if value is not None:
            return specific, value
        generic = f"OTEL_EXPORTER_OTLP_{suffix}"
        return generic, get(generic)

    kind_var = f"OTEL_{up}_EXPORTER"
    kinds = [k.strip().lower() for k in (get(kind_var) or "otlp").split(",") if k.strip()]
    chosen = kinds[0] if kinds else "otlp"
    if chosen not in ("otlp", "console", "none"):
        raise ConfigError(f"{kind_var}: unsupported exporter {chosen!r} (otlp, console or none)")
    if chosen != "otlp":
        return ExporterConfig(signal, kind=chosen)  # type: ignore[arg-type]

    proto_var, protocol = pick("PROTOCOL")
    protocol = (protocol or "http/protobuf").lower()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{proto_var}: unsupported protocol {protocol!r} (grpc or http/protobuf)")

    specific_endpoint = get(f"OTEL_EXPORTER_OTLP_{up}_ENDPOINT")
    generic_endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if specific_endpoint:
        endpoint_var, endpoint = f"OTEL_EXPORTER_OTLP_{up}_ENDPOINT", specific_endpoint
    elif generic_endpoint:
        endpoint_var = "OTEL_EXPORTER_OTLP_ENDPOINT"
        # The spec: the generic endpoint is a base URL; http/protobuf appends the signal's path to it.
        endpoint = (
            generic_endpoint.rstrip("/") + f"/v1/{signal}" if protocol == "http/protobuf" else generic_endpoint
        )
    else:
        return ExporterConfig(signal, kind="file", protocol=protocol)  # type: ignore[arg-type]
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{endpoint_var}: not an http(s) URL: {endpoint!r} (example: http://localhost:4318)")

    headers: dict[str, str] = {}
    headers.update(_parse_pairs(get("OTEL_EXPORTER_OTLP_HEADERS"), "OTEL_EXPORTER_OTLP_HEADERS"))
    headers.update(_parse_pairs(get(f"OTEL_EXPORTER_OTLP_{up}_HEADERS"), f"OTEL_EXPORTER_OTLP_{up}_HEADERS"))

    timeout_var, timeout_raw = pick("TIMEOUT")
    timeout_ms = _parse_float(timeout_raw, timeout_var, 10000.0)  # milliseconds, per the SDK environment spec
    if timeout_ms <= 0:
        raise ConfigError(f"{timeout_var} must be a positive number of milliseconds, got {timeout_raw!r}")

    comp_var, compression = pick("COMPRESSION")
    compression = (compression or "none").lower()
    if compression not in ("none", "gzip"):
        raise ConfigError(f"{comp_var}: unsupported compression {compression!r} (gzip or none)")

    insecure_var, insecure_raw = pick("INSECURE")
    insecure = _parse_bool(insecure_raw, insecure_var, default=None)

    return ExporterConfig(
        signal,
        kind="otlp",
        endpoint=endpoint,
        protocol=protocol,  # type: ignore[arg-type]
        headers=tuple(sorted((k.lower(), v) for k, v in headers.items())),
        timeout_s=timeout_ms / 1000.0,
        compression=compression,  # type: ignore[arg-type]
        insecure=insecure,
        certificate=pick("CERTIFICATE")[1],
        client_key=pick("CLIENT_KEY")[1],
        client_certificate=pick("CLIENT_CERTIFICATE")[1],
    )


def _parse_pairs(text: str | None, var: str) -> dict[str, str]:
    """``k=v,k2=v2`` with percent-encoded values (W3C baggage-like, as OTEL_RESOURCE_ATTRIBUTES and headers)."""
    out: dict[str, str] = {}
    if not text:
        return out
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{var}: expected key=value pairs separated by commas, got {item.strip()!r}")
        out[unquote(key.strip())] = unquote(value.strip())
    return out


def _parse_bool(text: str | None, var: str, default: Any) -> Any:
    if text is None:
        return default
    low = text.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    raise ConfigError(f"{var} must be true or false, got {text!r}")


def _parse_float(text: str | None, var: str, default: float | None = None) -> float:
    if text is None:
        if default is None:
            raise ConfigError(f"{var} is required")
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{var} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{var} must be a finite, non-negative number, got {text!r}")
    return value


def _parse_int(text: str | None, var: str, default: int | None = None) -> int:
    if text is None:
        if default is None:
            raise ConfigError(f"{var} is required")
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{var} must be a whole number, got {text!r}") from None
    if value <= 0:
        raise ConfigError(f"{var} must be positive, got {text!r}")
    return value
