"""The OpenTelemetry SDK side of the pipeline: providers, our span/log processors and metric exporter.

Imported only by ``Pipeline.__init__`` (the SDK import is the pipeline's main start-up cost). Providers are
private to the pipeline (never installed as globals) and built from ``PipelineConfig`` alone: nothing here reads
``os.environ`` (limits are passed explicitly so the SDK's own environment lookups cannot disagree with the config).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, LogRecordProcessor
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import SpanKind, Status, StatusCode

from collector import _semconv as sc
from collector._config import PipelineConfig, Signal
from collector._file_exporter import count_items
from collector._mapping import FULL_TEXT_LIMIT, map_record

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from collector._pipeline import Pipeline
    from tracer._record import InvocationRecord


def encoder(signal: Signal) -> Callable[[list[Any]], Any]:
    if signal == "traces":
        return encode_spans
    return encode_logs


def build_resource(config: PipelineConfig) -> Resource:
    attrs: dict[str, Any] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": sdk_version,
    }
    attrs.update(dict(config.resource_attributes))
    attrs[sc.SERVICE_NAME] = config.service_name
    if config.service_version:
        attrs[sc.SERVICE_VERSION] = config.service_version
    return Resource(attrs)


def build_sampler(config: PipelineConfig) -> sampling.Sampler:
    ratio = 1.0 if config.sampler_arg is None else config.sampler_arg
    root: sampling.Sampler
    name = config.sampler
    base = name.removeprefix("parentbased_")
    if base == "always_on":
        root = sampling.ALWAYS_ON
    elif base == "always_off":
        root = sampling.ALWAYS_OFF
    else:
        root = sampling.TraceIdRatioBased(ratio)
    return sampling.ParentBased(root) if name.startswith("parentbased_") else root


class _SpanQueue(SpanProcessor):
    """Ended, sampled spans → the traces batch worker (emitted there)."""

    def __init__(self, add: Callable[[Any], None]) -> None:
        self._add = add

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: Any) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self._add(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _LogQueue(LogRecordProcessor):
    def __init__(self, add: Callable[[Any], None]) -> None:
        self._add = add

    def on_emit(self, log_record: Any) -> None:
        self._add(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _MetricDelivery(MetricExporter):
    """The periodic reader's exporter: encode, count data points as emitted, deliver (bounded, never raises)."""

    def __init__(self, pipeline: "Pipeline") -> None:
        super().__init__()
        self._pipeline = pipeline

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        delivery = self._pipeline.deliveries.get("metrics")
        if delivery is None:
            return MetricExportResult.SUCCESS
        try:
            request = encode_metrics(metrics_data)
        except Exception:  # noqa: BLE001
            return MetricExportResult.FAILURE
        n = count_items("metrics", request)
        if n == 0:
            return MetricExportResult.SUCCESS
        self._pipeline.book.counts["metrics"].add_emitted(n)
        delivery.deliver(request)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class Providers:
    """Tracer, logger and meter providers of one pipeline, and the record → SDK calls."""

    def __init__(self, pipeline: "Pipeline", *, _span_exporter: Any = None, _log_exporter: Any = None,
                 _metric_reader: Any = None) -> None:
        config = pipeline.config
        self.config = config
        resource = build_resource(config)
        limit = config.attribute_value_limit
        self.tracer_provider = TracerProvider(
            resource=resource,
            sampler=build_sampler(config),
            span_limits=SpanLimits(
                max_span_attributes=256,
                max_events=128,
                max_links=128,
                max_attributes=256,
                max_event_attributes=128,
                max_link_attributes=128,
                max_span_attribute_length=limit,
                max_attribute_length=FULL_TEXT_LIMIT,  # event attributes: the whole stack trace
            ),
            shutdown_on_exit=False,
        )
        if "traces" in pipeline.workers:
            self.tracer_provider.add_span_processor(_SpanQueue(pipeline.workers["traces"].add))
        if _span_exporter is not None:
            self.tracer_provider.add_span_processor(SimpleSpanProcessor(_span_exporter))
        self.tracer = self.tracer_provider.get_tracer(sc.INSTRUMENTATION_SCOPE)

        self.logger_provider = LoggerProvider(
            resource=resource,
            shutdown_on_exit=False,
            log_record_limits=LogRecordLimits(max_attributes=128, max_attribute_length=FULL_TEXT_LIMIT),
        )
        self.logs_enabled = "logs" in pipeline.workers or _log_exporter is not None
        if "logs" in pipeline.workers:
            self.logger_provider.add_log_record_processor(_LogQueue(pipeline.workers["logs"].add))
        if _log_exporter is not None:
            self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(_log_exporter))
        self.logger = self.logger_provider.get_logger(sc.INSTRUMENTATION_SCOPE)

        readers: list[Any] = []
        if "metrics" in pipeline.deliveries:
            readers.append(
                PeriodicExportingMetricReader(
                    _MetricDelivery(pipeline),
                    export_interval_millis=config.metric_export_interval_s * 1000.0,
                    export_timeout_millis=config.metrics.timeout_s * 1000.0,
                )
            )
        if _metric_reader is not None:
            readers.append(_metric_reader)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
        meter = self.meter_provider.get_meter(sc.INSTRUMENTATION_SCOPE)
        u = sc.METRIC_UNITS
        self.counters = {
            name: meter.create_counter(name, unit=u[name])
            for name in (sc.METRIC_INVOCATIONS, sc.METRIC_ERRORS, sc.METRIC_COLDSTARTS)
        }
        self.histograms = {
            sc.METRIC_INVOKE_DURATION: meter.create_histogram(
                sc.METRIC_INVOKE_DURATION, unit=u[sc.METRIC_INVOKE_DURATION],
                explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS)),
            sc.METRIC_MEM_USAGE: meter.create_histogram(
                sc.METRIC_MEM_USAGE, unit=u[sc.METRIC_MEM_USAGE],
                explicit_bucket_boundaries_advisory=list(sc.MEMORY_BUCKETS)),
            sc.METRIC_FUEL_CONSUMED: meter.create_histogram(
                sc.METRIC_FUEL_CONSUMED, unit=u[sc.METRIC_FUEL_CONSUMED],
                explicit_bucket_boundaries_advisory=list(sc.FUEL_BUCKETS)),
        }
        self._has_metric_readers = bool(readers)

    def record(self, rec: "InvocationRecord", parent: "Context | None", http: Mapping[str, object] | None) -> None:
        local_parent = False
        if parent is not None:
            ctx = trace.get_current_span(parent).get_span_context()
            local_parent = ctx.is_valid and not ctx.is_remote
        mapped = map_record(
            rec,
            local_parent=local_parent,
            http=http,
            exception_signal=self.config.exception_signal,
            attribute_value_limit=self.config.attribute_value_limit,
        )
        s = mapped.span
        span = self.tracer.start_span(
            s.name,
            context=parent,
            kind=SpanKind.INTERNAL if s.kind == "INTERNAL" else SpanKind.SERVER,
            attributes=s.attributes,
            start_time=s.start_ns,
        )
        for event in s.events:
            span.add_event(event.name, event.attributes, timestamp=event.timestamp_ns)
        if s.error:
            span.set_status(Status(StatusCode.ERROR, s.status_description))
        span.end(end_time=s.end_ns)

        if self.logs_enabled and mapped.logs:
            span_ctx = trace.set_span_in_context(span, parent)
            observed = time.time_ns()
            for log in mapped.logs:
                self.logger.emit(
                    timestamp=log.timestamp_ns,
                    observed_timestamp=observed,
                    context=span_ctx,
                    severity_number=SeverityNumber(log.severity_number),
                    severity_text=log.severity_text,
                    body=log.body,
                    attributes=log.attributes,
                    event_name=log.event_name,
                )
        if self._has_metric_readers:
            for point in mapped.metrics:
                if point.kind == "counter":
                    self.counters[point.name].add(point.value, point.attributes)
                else:
                    self.histograms[point.name].record(point.value, point.attributes)

    def flush_metrics(self, timeout_s: float) -> bool:
        if not self._has_metric_readers:
            return True
        return bool(self.meter_provider.force_flush(timeout_millis=max(timeout_s, 0.001) * 1000.0))

    def shutdown_metrics(self, timeout_s: float) -> None:
        if self._has_metric_readers:
            self.meter_provider.shutdown(timeout_millis=max(timeout_s, 0.001) * 1000.0)
