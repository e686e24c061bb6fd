"""The OpenTelemetry SDK side of the pipeline: providers, our span/log processors and metric exporter.

Imported only by ``Pipeline.__init__`` (the SDK import is the pipeline's main start-up cost). Providers are
private to the pipeline (never installed as globals) and built from ``PipelineConfig`` alone: nothing here reads
``os.environ`` (limits are passed explicitly so the SDK's own environment lookups cannot disagree with the config).

Per record, the span, its log records and metric points reach the SDK's processors and aggregations without the
SDK's generic per-call work that cannot change them (``_finished_span``, ``_log_emitter``, ``_BoundMetrics``; the
argument for each is in its docstring and docs/collector.md, and tests/collector/test_otlp.py compares each with
the API path). Each reads a few SDK 1.45 internals and falls back to the public API when they are not there.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import get_current
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
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
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from collector import _semconv as sc
from collector._config import PipelineConfig
from collector._file_exporter import count_items
from collector._mapping import FULL_TEXT_LIMIT, LogData, MetricPoint, SpanData, map_record

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from collector._pipeline import Pipeline
    from tracer._record import InvocationRecord


def build_resource(config: PipelineConfig) -> Resource:
    attrs: dict[str, Any] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": sdk_version,
    }
    # One instance per process (semconv service.instance.id: a random UUID when nothing names the instance):
    # `tracer serve --workers N` forks N processes whose cumulative metric streams must not merge into one
    # series downstream (Prometheus would see counters jump between the workers' values). Built at pipeline
    # start, which for serve is after fork.
    attrs["service.instance.id"] = str(uuid.uuid4())
    attrs["process.pid"] = os.getpid()
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


_UNSET = Status(StatusCode.UNSET)


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


def _api_record(instrument: Any, point: MetricPoint, context: Any) -> None:
    if point.kind == "counter":
        instrument.add(point.value, point.attributes, context)
    else:
        instrument.record(point.value, point.attributes, context)


class _BoundMetrics:
    """Metric points → the SDK's aggregations, with each (instrument, attribute set) bound once.

    ``Counter.add``/``Histogram.record`` re-clean the attributes, ask the exemplar filter, look up the view
    matches of every reader and hash the attribute set again on every call (~18 µs here). Our attribute sets are
    few and fixed (trigger × outcome), so the first point of a set goes through the API, which creates its
    aggregations, and later points are handed straight to those same aggregation objects: the exported data is the
    SDK's own. Bound only where that is exactly what the API would do — cumulative aggregations that live as long as
    the provider (no reset on collect, no attribute-filtering views), no exemplar to take (the exemplar filter is
    off or trace-based with no sampled span in the current context), a finite, non-negative value — anything
    else, or an SDK whose internals differ, goes through the API."""

    def __init__(self, meter_provider: Any, instruments: Mapping[str, Any]) -> None:
        self._instruments = instruments
        self._bound: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
        self._filter: Any = None
        try:
            from opentelemetry.sdk.metrics._internal.exemplar import (
                AlwaysOffExemplarFilter,
                TraceBasedExemplarFilter,
            )
            from opentelemetry.sdk.metrics._internal.measurement import Measurement

            self._measurement = Measurement

            self._consumer = meter_provider._measurement_consumer  # noqa: SLF001
            flt = self._consumer._sdk_config.exemplar_filter  # noqa: SLF001
            if isinstance(flt, (TraceBasedExemplarFilter, AlwaysOffExemplarFilter)):
                self._filter = flt
        except Exception:  # noqa: BLE001 - another SDK: the API path only
            self._filter = None

    def record(self, points: Sequence[MetricPoint]) -> None:
        context = get_current()
        now = time.time_ns()
        fast = self._filter is not None and not self._filter.should_sample(0, now, None, context)
        for p in points:
            instrument = self._instruments[p.name]
            if not fast:
                _api_record(instrument, p, context)
                continue
            key = (p.name, tuple(p.attributes.items()))
            aggregations = self._bound.get(key)
            if aggregations is None or not 0 <= p.value < math.inf:
                _api_record(instrument, p, context)
                if aggregations is None:
                    self._bound[key] = self._bind(instrument, p.attributes)
                continue
            if aggregations is False:
                _api_record(instrument, p, context)
                continue
            measurement = self._measurement(p.value, now, instrument, context, None)
            for aggregation in aggregations:
                aggregation.aggregate(measurement, False)

    def _bind(self, instrument: Any, attributes: Mapping[str, Any]) -> Any:
        """The aggregation objects the API just fed for this attribute set (one per reader), or False."""
        try:
            from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes

            if not instrument._is_enabled():  # noqa: SLF001
                return False
            key = _hash_attributes(dict(attributes))
            found = []
            for storage in self._consumer._reader_storages.values():  # noqa: SLF001
                matches = storage._instrument_view_instrument_matches.get(instrument)  # noqa: SLF001
                if not matches:
                    return False
                for match in matches:
                    if match._reset_on_collect or match._view._attribute_keys is not None:  # noqa: SLF001
                        return False
                    aggregation = match._attributes_aggregation.get(key)  # noqa: SLF001
                    if aggregation is None:
                        return False
                    found.append(aggregation)
            return tuple(found)
        except Exception:  # noqa: BLE001
            return False


class Providers:
    """Tracer, logger and meter providers of one pipeline, and the record → SDK calls."""

    def __init__(self, pipeline: "Pipeline", *, _span_exporter: Any = None, _log_exporter: Any = None,
                 _metric_reader: Any = None) -> None:
        config = pipeline.config
        self.config = config
        resource = build_resource(config)
        limit = config.attribute_value_limit
        self.span_limits = SpanLimits(
                max_span_attributes=256,
                max_events=128,
                max_links=128,
                max_attributes=256,
                max_event_attributes=128,
                max_link_attributes=128,
                max_span_attribute_length=limit,
                max_attribute_length=FULL_TEXT_LIMIT,  # event attributes: the whole stack trace
            )
        self.tracer_provider = TracerProvider(
            resource=resource,
            sampler=build_sampler(config),
            span_limits=self.span_limits,
            shutdown_on_exit=False,
        )
        if "traces" in pipeline.workers:
            self.tracer_provider.add_span_processor(_SpanQueue(pipeline.workers["traces"].add))
        if _span_exporter is not None:
            self.tracer_provider.add_span_processor(SimpleSpanProcessor(_span_exporter))
        self.tracer = self.tracer_provider.get_tracer(sc.INSTRUMENTATION_SCOPE)
        try:  # what _finished_span needs of the SDK's Tracer; an SDK without it gets the API path
            tracer: Any = self.tracer
            self._sampler = tracer.sampler
            self._ids = tracer.id_generator
            self._span_processor = tracer.span_processor
            self._tracer_metrics = tracer._tracer_metrics  # noqa: SLF001 - the SDK's own span metrics (off by default)
            self._tracer_enabled = tracer._is_enabled  # noqa: SLF001
            self._scope = tracer._instrumentation_scope  # noqa: SLF001
            self._fast_span = True
        except AttributeError:
            self._fast_span = False

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
        self._log_attribute_limit = 128
        self._emit_log = self._log_emitter()

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
        self._metrics = _BoundMetrics(self.meter_provider, {**self.counters, **self.histograms})

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
        if self._fast_span:
            span_context = self._finished_span(mapped.span, parent)
        else:
            span_context = self._api_span(mapped.span, parent)

        if self.logs_enabled and mapped.logs:
            span_ctx = trace.set_span_in_context(NonRecordingSpan(span_context), parent)
            observed = time.time_ns()
            fast = self._emit_log if self._emit_log is not None and self._log_enabled() else None
            for log in mapped.logs:
                if fast is not None and len(log.attributes) <= self._log_attribute_limit:
                    fast(log, observed, span_ctx)
                    continue
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
            self._metrics.record(mapped.metrics)

    def _api_span(self, s: SpanData, parent: "Context | None") -> SpanContext:
        """The invocation span through the tracing API (the reference ``_finished_span`` is checked against)."""
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
        return span.get_span_context()

    def _log_emitter(self) -> Callable[[LogData, int, Any], None] | None:
        """What ``Logger.emit`` does for one of our log records, minus re-validating attributes the mapping already
        made valid, capped (``FULL_TEXT_LIMIT``) and few (under the record limit, checked by the caller): an API
        ``LogRecord`` in the span's context, the SDK's writable record around it with the logger's resource, scope
        and limits, the SDK's own log metric, the processors. None (``Logger.emit`` always) on an SDK whose
        logger differs."""
        try:
            from opentelemetry._logs import LogRecord as APILogRecord
            from opentelemetry.sdk._logs import ReadWriteLogRecord

            logger: Any = self.logger
            resource, scope = logger._resource, logger._instrumentation_scope  # noqa: SLF001
            limits, processor = logger._log_record_limits, logger._multi_log_record_processor  # noqa: SLF001
            emitted = logger._logger_metrics.emit_log  # noqa: SLF001
            self._log_enabled = logger._is_enabled  # noqa: SLF001
            self._log_attribute_limit = limits.max_log_record_attributes or 128
        except Exception:  # noqa: BLE001
            return None
        severities = {n.value: n for n in SeverityNumber}

        def emit(log: LogData, observed: int, context: Any) -> None:
            record = APILogRecord(
                timestamp=log.timestamp_ns,
                observed_timestamp=observed,
                context=context,
                severity_number=severities.get(log.severity_number) or SeverityNumber(log.severity_number),
                severity_text=log.severity_text,
                body=log.body,
                attributes=dict(log.attributes),
                event_name=log.event_name,
            )
            writable = ReadWriteLogRecord.__new__(ReadWriteLogRecord)  # its __post_init__ is the re-validation
            writable.log_record = record
            writable.resource = resource
            writable.instrumentation_scope = scope
            writable.limits = limits
            emitted()
            processor.on_emit(writable)

        return emit

    def _finished_span(self, s: SpanData, parent: "Context | None") -> SpanContext:
        """The invocation span, built finished and handed to the span processors' ``on_end``; its context.

        What ``tracer.start_span`` + ``add_event`` + ``set_status`` + ``end`` do, step for step (parent, ids,
        sampler, trace flags, the SDK's own span metrics, limits), minus what is pure overhead for a span whose
        content is known in full up front: the span lock, re-validating attributes the mapping already made valid
        and capped, and the ``on_start``/``_on_ending`` hooks (their processors would see a span that is already
        over; the pipeline's own do nothing there)."""
        tracer: Any = self.tracer
        kind = SpanKind.INTERNAL if s.kind == "INTERNAL" else SpanKind.SERVER
        current = trace.get_current_span(parent).get_span_context()
        if not self._tracer_enabled():  # a disabled tracer gives a non-recording span
            return current
        parent_ctx: SpanContext | None = current
        if current is None or not current.is_valid:
            parent_ctx = None
            trace_id = self._ids.generate_trace_id()
            random_trace_id = self._ids.is_trace_id_random()
        else:
            trace_id = current.trace_id
            random_trace_id = current.trace_flags.random_trace_id
        result = self._sampler.should_sample(parent, trace_id, s.name, kind, s.attributes, ())
        flags = TraceFlags.SAMPLED if result.decision.is_sampled() else TraceFlags.DEFAULT
        if random_trace_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        context = SpanContext(trace_id, self._ids.generate_span_id(), is_remote=False,
                              trace_flags=TraceFlags(flags), trace_state=result.trace_state)
        end_metrics = self._tracer_metrics.start_span(parent_ctx, result.decision)
        if not result.decision.is_recording():
            return context
        limits = self.span_limits
        attributes: Any = dict(result.attributes) if result.attributes is not None else {}
        most = limits.max_span_attributes
        if (most is not None and len(attributes) > most) or "" in attributes:  # the SDK drops and counts these
            attributes = BoundedAttributes(limits.max_span_attributes, attributes, immutable=True,
                                           max_value_len=limits.max_span_attribute_length)
        events: tuple[Event, ...] = ()
        if s.events:
            events = tuple(
                Event(e.name, MappingProxyType(e.attributes), timestamp=e.timestamp_ns) for e in s.events
            )
        status = Status(StatusCode.ERROR, s.status_description) if s.error else _UNSET
        span = ReadableSpan(
            name=s.name,
            context=context,
            parent=parent_ctx,
            resource=tracer.resource,
            attributes=attributes,
            events=events,
            links=(),
            kind=kind,
            status=status,
            start_time=s.start_ns,
            end_time=s.end_ns,
            instrumentation_info=tracer.instrumentation_info,
            instrumentation_scope=self._scope,
        )
        end_metrics()
        self._span_processor.on_end(span)
        return context

    def flush_metrics(self, timeout_s: float) -> bool:
        if not self._has_metric_readers:
            return True
        return bool(self.meter_provider.force_flush(timeout_millis=max(timeout_s, 0.001) * 1000.0))

    def shutdown_metrics(self, timeout_s: float) -> None:
        if self._has_metric_readers:
            self.meter_provider.shutdown(timeout_millis=max(timeout_s, 0.001) * 1000.0)
