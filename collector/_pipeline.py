"""The wiring: providers, batch workers, transports, spool and the accounting that ties them together.

Cost model: ``Pipeline.start`` imports the OpenTelemetry SDK (and gRPC only for a ``grpc`` endpoint), ~0.3 s
here; nothing in this module imports it at load time, and ``OTEL_SDK_DISABLED=true`` never imports it.

Flow: ``Pipeline.record`` maps a record (``_mapping``) and hands it to the SDK; a span or log record reaching our
processor is *emitted* and queued in a bounded ``_BatchWorker`` (full queue → dropped ``queue_full``, never a
wait). A worker thread encodes batches (``_otlp``: straight to OTLP protobuf, or to OTLP/JSON lines for the file
exporter), split under the request size limit, and gives them to the signal's ``_Delivery``, which sends with retries bounded by the OTLP timeout; a retryable failure goes to
the spool (*pending*), a rejection is dropped. After a failure the collector is considered away for a short,
growing window and batches go straight to the spool; the first success after that re-sends the spool in the
background. Metrics are exported by the SDK's periodic reader (at shutdown for short runs) through the same
delivery. ``shutdown`` flushes within its timeout; whatever is still queued or in flight then is written to the
spool, so the counts always add up.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from collector._config import SIGNALS, BatchConfig, ExporterConfig, PipelineConfig, Signal
from collector._errors import ConfigError
from collector._file_exporter import FileTransport, count_items, split_request, to_json_line
from collector._otlp import Format, Parts, encode_batch
from collector._report import Counts, DeliveryReport
from collector._spool import PutResult, Spool, SpoolEntry
from collector._transport import SendResult, Transport, make_transport

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from tracer._record import InvocationRecord

_log = logging.getLogger("collector")


def _checked_transport(exp: ExporterConfig, abort: threading.Event,
                       hurry: threading.Event | None = None) -> Transport:
    """``make_transport``, with an unreadable certificate or key turned into a ``ConfigError``."""
    try:
        return make_transport(exp, abort, hurry)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        var = f"OTEL_EXPORTER_OTLP_{exp.signal.upper()}_CERTIFICATE (or CLIENT_KEY/CLIENT_CERTIFICATE)"
        raise ConfigError(f"{var}: {exc}") from exc


class _Book:
    """All counters of a pipeline and the spool entries it is answerable for, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.counts: dict[Signal, Counts] = {s: Counts(self.lock) for s in SIGNALS}
        self.resent: dict[Signal, Counts] = {s: Counts(self.lock) for s in SIGNALS}
        self.own: dict[Path, tuple[Signal, int]] = {}  # spooled by this process, still in the spool
        self.foreign: dict[Path, tuple[Signal, int]] = {}  # earlier processes' entries this one claimed

    def spooled(self, signal: Signal, put: PutResult, items: int) -> None:
        with self.lock:
            self.evicted(put.evicted)
            if put.stored and put.path is not None:
                self.counts[signal].pending += items
                self.own[put.path] = (signal, items)
            else:
                self.counts[signal].drop(put.reason or "spool_error", items)

    def evicted(self, entries: Sequence[SpoolEntry]) -> None:
        with self.lock:
            for e in entries:
                if e.path in self.own:
                    sig, n = self.own.pop(e.path)
                    self.counts[sig].pending -= n
                    self.counts[sig].drop("spool_evicted", n)
                elif e.path in self.foreign:
                    sig, n = self.foreign.pop(e.path)
                    self.resent[sig].pending -= n
                    self.resent[sig].drop("spool_evicted", n)
                else:
                    self.resent[e.signal].emitted += e.items
                    self.resent[e.signal].drop("spool_evicted", e.items)

    def claimed(self, entry: SpoolEntry) -> None:
        with self.lock:
            if entry.path in self.own or entry.path in self.foreign:
                return
            self.foreign[entry.path] = (entry.signal, entry.items)
            c = self.resent[entry.signal]
            c.emitted += entry.items
            c.pending += entry.items

    def resolved(self, entry: SpoolEntry, result: SendResult) -> None:
        if not result.ok and result.retryable:
            return  # back in the spool: still pending
        with self.lock:
            if entry.path in self.own:
                sig, n = self.own.pop(entry.path)
                c = self.counts[sig]
            elif entry.path in self.foreign:
                sig, n = self.foreign.pop(entry.path)
                c = self.resent[sig]
            else:
                return
            c.pending -= n
            if result.ok:
                c.exported += n - result.rejected
                c.drop("rejected", result.rejected)
            else:
                c.drop("rejected", n)

    def report(self) -> DeliveryReport:
        with self.lock:
            return DeliveryReport(
                signals={s: self.counts[s].snapshot() for s in SIGNALS},
                resent={s: self.resent[s].snapshot() for s in SIGNALS},
            )


class _Delivery:
    """One signal's way out: split, send (bounded), then exported / dropped / spooled — counted in the book."""

    def __init__(
        self,
        signal: Signal,
        transport: Transport,
        *,
        spool: Spool | None,
        book: _Book,
        timeout_s: float,
        max_request_bytes: int,
        reject_reason: str = "rejected",
        on_recovery: Callable[[], None] | None = None,
    ) -> None:
        self.signal = signal
        self.transport = transport
        self.spool = spool
        self.book = book
        self.timeout_s = timeout_s
        self.max_request_bytes = max_request_bytes
        self.reject_reason = reject_reason
        self.on_recovery = on_recovery
        # What the transport takes: OTLP/JSON lines for the file/console exporter, serialized protobuf otherwise.
        self.format: Format = "json" if isinstance(transport, FileTransport) else "protobuf"
        self._write_line = transport.write_line if isinstance(transport, FileTransport) else None
        self.shutdown_deadline: float | None = None
        # Guards in-flight requests and spool writes against the shutdown take-over. Separate from the book's
        # lock so that record() (which counts under the book's lock) never waits on a spool fsync.
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[bytes, int]] = {}
        self._keys = itertools.count()
        self._closed = False
        self._down_until = 0.0
        self._down_window = 1.0
        self._failed_since_ok = False

    def deadline(self) -> float:
        d = time.monotonic() + self.timeout_s
        return d if self.shutdown_deadline is None else min(d, self.shutdown_deadline)

    def send_payload(self, payload: bytes) -> SendResult:
        """Send one serialized request, honouring the 'collector away' window; never raises."""
        if time.monotonic() < self._down_until:
            return SendResult(False, retryable=True, error="collector unreachable (recent failure)")
        try:
            if self._write_line is not None:
                result = self._write_line(payload)
            else:
                result = self.transport.send(payload, self.deadline())
        except Exception as exc:  # noqa: BLE001 - a transport bug must not lose the batch
            result = SendResult(False, retryable=True, error=f"{type(exc).__name__}: {exc}")
        if result.ok:
            self._down_window = 1.0
            self._down_until = 0.0
            if self._failed_since_ok:
                self._failed_since_ok = False
                if self.on_recovery is not None:
                    self.on_recovery()
        elif result.retryable:
            self._failed_since_ok = True
            self._down_until = time.monotonic() + self._down_window
            self._down_window = min(self._down_window * 2, 30.0)
            _log.debug("%s export failed, spooling: %s", self.signal, result.error)
        else:
            _log.warning("%s export rejected: %s", self.signal, result.error)
        return result

    def deliver(self, request: Any) -> None:
        """Deliver a request message (its items already counted as emitted)."""
        try:
            messages, too_large = split_request(self.signal, request, self.max_request_bytes)
            parts = [
                ((part.SerializeToString() if self.format == "protobuf" else to_json_line(part).encode("utf-8")),
                 count_items(self.signal, part))
                for part in messages
            ]
        except Exception:  # noqa: BLE001
            self.book.counts[self.signal].drop("encode_error", count_items(self.signal, request))
            return
        self.deliver_parts(parts, too_large)

    def deliver_parts(self, parts: Parts, too_large: int = 0) -> None:
        """Deliver requests already encoded in ``self.format`` (their items already counted as emitted)."""
        self.book.counts[self.signal].drop("too_large", too_large)
        for payload, n in parts:
            key = next(self._keys)
            with self._lock:
                if self._closed:
                    return
                self._inflight[key] = (payload, n)
            result = self.send_payload(payload)
            with self._lock:
                if self._inflight.pop(key, None) is None:
                    continue  # shutdown took this request over and accounted for it
                self._record(payload, n, result)

    def _record(self, payload: bytes, n: int, result: SendResult) -> None:
        c = self.book.counts[self.signal]
        if result.ok:
            with self.book.lock:
                c.exported += n - result.rejected
                c.drop("rejected", result.rejected)
        elif not result.retryable:
            c.drop(self.reject_reason, n)
        else:
            self.to_spool(payload, n)

    def to_spool(self, payload: bytes, n: int) -> None:
        if self.spool is None:
            self.book.counts[self.signal].drop("export_failed", n)
            return
        self.book.spooled(self.signal, self.spool.put(self.signal, payload, n), n)

    def take_over(self) -> None:
        """At the shutdown deadline: spool what is still being sent; stop counting later results."""
        with self._lock:
            self._closed = True
            inflight = list(self._inflight.values())
            self._inflight.clear()
            for payload, n in inflight:
                self.to_spool(payload, n)


def _encoder(signal: Signal, limit: int) -> Callable[[list[Any], Format], tuple[Parts, int, int]]:
    def encode(batch: list[Any], fmt: Format) -> tuple[Parts, int, int]:
        return encode_batch(signal, batch, fmt, limit)

    return encode


class _BatchWorker:
    """A bounded queue and one thread that exports batches (spans or log records)."""

    def __init__(
        self,
        signal: Signal,
        encode: Callable[[list[Any], Format], tuple[Parts, int, int]],
        delivery: _Delivery,
        book: _Book,
        max_queue_size: int,
        max_batch: int,
        delay_s: float,
    ) -> None:
        self.signal = signal
        self.encode = encode
        self.delivery = delivery
        self.book = book
        self.max_queue_size = max_queue_size
        self.max_batch = max_batch
        self.delay_s = delay_s
        self._queue: deque[Any] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._flush_requested = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"collector-{signal}", daemon=True)
        self._thread.start()

    def add(self, item: Any) -> None:
        counts = self.book.counts[self.signal]
        with self._cond:
            with self.book.lock:
                counts.emitted += 1
                if self._stopping or len(self._queue) >= self.max_queue_size:
                    counts.drop("queue_full", 1)
                    return
            self._queue.append(item)
            if len(self._queue) >= self.max_batch:
                self._cond.notify_all()

    def _encode(self, batch: list[Any], fmt: Format) -> tuple[Parts, int]:
        """Requests in ``fmt`` and the number of items too large for any; refused items are counted here."""
        try:
            parts, too_large, errors = self.encode(batch, fmt)
        except Exception:  # noqa: BLE001 - the encoder skips bad items itself; this is a bug's last resort
            _log.exception("collector: encoding a %s batch failed", self.signal)
            parts, too_large, errors = [], 0, len(batch)
        self.book.counts[self.signal].drop("encode_error", errors)
        return parts, too_large

    def _run(self) -> None:
        while True:
            with self._cond:
                end = time.monotonic() + self.delay_s
                while not (self._stopping or self._flush_requested or len(self._queue) >= self.max_batch):
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if not self._queue:
                    self._flush_requested = False
                    self._cond.notify_all()
                    if self._stopping:
                        return
                    continue
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                self._busy = True
            try:
                parts, too_large = self._encode(batch, self.delivery.format)
                self.delivery.deliver_parts(parts, too_large)
            except Exception:  # noqa: BLE001 - keep the worker alive whatever happens
                _log.exception("collector %s worker failed on a batch", self.signal)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._queue or self._busy:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._flush_requested = True
                self._cond.notify_all()
                self._cond.wait(remaining)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join(self, deadline: float) -> None:
        self._thread.join(max(deadline - time.monotonic(), 0.0))

    def leftovers(self) -> list[Any]:
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            return items


class _NoopPipeline:
    """What ``Pipeline.start`` returns when OTEL_SDK_DISABLED=true: records nothing, costs nothing."""

    config: PipelineConfig
    tracer_provider: None = None  # no SDK: callers make no spans of their own either

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config

    def record(self, rec: "InvocationRecord", parent: "Context | None" = None,
               http: Mapping[str, object] | None = None) -> None:
        return None

    def flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def flush_on_sigterm(self) -> bool:
        return False

    def shutdown(self, timeout_s: float | None = None) -> DeliveryReport:
        return DeliveryReport()


class Pipeline:
    """The OpenTelemetry pipeline of one process: ``start`` once, ``record`` per invocation (thread-safe, never
    raises, never blocks on the network), ``shutdown`` once (also run at interpreter exit)."""

    def __init__(self, config: PipelineConfig, *, _span_exporter: Any = None, _log_exporter: Any = None,
                 _metric_reader: Any = None) -> None:
        from collector import _sdk

        self.config = config
        self.book = _Book()
        self.abort = threading.Event()
        self.hurry = threading.Event()  # set at shutdown: no more backoff waits of our own
        self.spool = Spool(config.spool_dir, config.spool_max_bytes) if config.any_otlp else None
        self._lock = threading.Lock()
        self._closed = False
        self._report: DeliveryReport | None = None
        self.record_errors = 0
        self.deliveries: dict[Signal, _Delivery] = {}
        self.workers: dict[Signal, _BatchWorker] = {}
        self._resend_threads: list[threading.Thread] = []
        self._resending: set[Signal] = set()
        for signal in SIGNALS:
            exp = config.exporter(signal)
            if exp.kind == "none":
                continue
            transport: Transport
            if exp.kind == "otlp":
                transport = _checked_transport(exp, self.abort, self.hurry)
            elif exp.kind == "file":
                transport = FileTransport(signal, config.telemetry_dir)
            else:
                transport = FileTransport(signal, None)
            self.deliveries[signal] = _Delivery(
                signal,
                transport,
                spool=self.spool if exp.kind == "otlp" else None,
                book=self.book,
                timeout_s=exp.timeout_s,
                max_request_bytes=config.max_request_bytes,
                reject_reason="rejected" if exp.kind == "otlp" else "export_failed",
                on_recovery=self._resender(signal) if exp.kind == "otlp" else None,
            )
        batches: tuple[tuple[Signal, BatchConfig], ...] = (("traces", config.span_batch), ("logs", config.log_batch))
        for signal, batch in batches:
            if signal in self.deliveries:
                self.workers[signal] = _BatchWorker(
                    signal, _encoder(signal, config.max_request_bytes), self.deliveries[signal], self.book,
                    batch.max_queue_size, batch.max_export_batch_size, batch.schedule_delay_s,
                )
        self.sdk = _sdk.Providers(self, _span_exporter=_span_exporter, _log_exporter=_log_exporter,
                                  _metric_reader=_metric_reader)
        if config.resend_spool_on_start and self.spool is not None:
            self._start_resend(tuple(s for s in SIGNALS if config.exporter(s).kind == "otlp"))
        atexit.register(self._atexit)

    @classmethod
    def start(cls, config: PipelineConfig) -> "Pipeline | _NoopPipeline":
        """Build the pipeline (re-sending what an earlier process spooled, in the background)."""
        if config.disabled:
            return _NoopPipeline(config)
        return cls(config)

    @property
    def tracer_provider(self) -> Any:
        """The pipeline's own ``TracerProvider`` (never installed as the global one): spans made with its tracers
        share the invocation spans' resource, sampler, queue and delivery — e.g. ``tracer serve``'s HTTP span."""
        return self.sdk.tracer_provider

    # -- recording ---------------------------------------------------------------------------------------------

    def record(self, rec: "InvocationRecord", parent: "Context | None" = None,
               http: Mapping[str, object] | None = None) -> None:
        """Turn one record into a span, its exception, log records and metric points. Never raises."""
        if self._closed:
            return
        try:
            self.sdk.record(rec, parent, http)
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the traced program
            self.record_errors += 1
            _log.warning("collector: could not record invocation %s: %s: %s",
                         getattr(rec, "invocation_id", "?"), type(exc).__name__, exc)
            _log.debug("collector: record failure", exc_info=True)

    # -- the spool ---------------------------------------------------------------------------------------------

    def _resender(self, signal: Signal) -> Callable[[], None]:
        def resend() -> None:
            self._start_resend((signal,))

        return resend

    def _start_resend(self, signals: Sequence[Signal]) -> None:
        with self._lock:
            todo = [s for s in signals if s not in self._resending and s in self.deliveries]
            if not todo or self._closed or self.spool is None:
                return
            self._resending.update(todo)
        thread = threading.Thread(target=self._resend, args=(todo,), name="collector-resend", daemon=True)
        self._resend_threads.append(thread)
        thread.start()

    def _resend(self, signals: Sequence[Signal]) -> None:
        assert self.spool is not None
        try:
            for signal in signals:
                delivery = self.deliveries[signal]
                self.spool.drain(
                    signal,
                    delivery.send_payload,
                    should_stop=self.abort.is_set,
                    on_claim=self.book.claimed,
                    on_result=self.book.resolved,
                )
        except Exception:  # noqa: BLE001
            _log.exception("collector: re-sending the spool failed")
        finally:
            with self._lock:
                self._resending.difference_update(signals)

    # -- flushing and shutdown ---------------------------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export what is queued now (spans, logs, then metrics); True when done within the timeout."""
        end = time.monotonic() + timeout_s
        done = all(w.flush(max(end - time.monotonic(), 0.0)) for w in self.workers.values())
        return self.sdk.flush_metrics(max(end - time.monotonic(), 0.0)) and done

    def report(self) -> DeliveryReport:
        return self.book.report()

    def shutdown(self, timeout_s: float | None = None) -> DeliveryReport:
        """Flush within ``timeout_s`` (default: the config's), then spool whatever is left; returns the counts.
        Idempotent: a second call returns the first report."""
        with self._lock:
            if self._closed:
                return self._report or self.book.report()
            self._closed = True
        timeout = self.config.shutdown_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        self.hurry.set()
        for d in self.deliveries.values():
            d.shutdown_deadline = deadline
        for w in self.workers.values():
            w.stop()
        try:
            self.sdk.shutdown_metrics(max(deadline - time.monotonic(), 0.0))
        except Exception:  # noqa: BLE001
            _log.exception("collector: metric shutdown failed")
        for w in self.workers.values():
            w.join(deadline)
        for t in list(self._resend_threads):
            t.join(max(deadline - time.monotonic(), 0.0))
        self.abort.set()
        for signal, w in self.workers.items():
            items = w.leftovers()
            if items:
                parts, too_large = w._encode(items, "protobuf")
                self.book.counts[signal].drop("too_large", too_large)
                for payload, n in parts:
                    self.deliveries[signal].to_spool(payload, n)
        for d in self.deliveries.values():
            d.take_over()
            try:
                d.transport.close()
            except Exception:  # noqa: BLE001
                pass
        self._report = self.book.report()
        try:
            atexit.unregister(self._atexit)
        except Exception:  # noqa: BLE001
            pass
        return self._report

    def flush_on_sigterm(self) -> bool:
        """Make SIGTERM shut the pipeline down (bounded by ``shutdown_timeout_s``, leftovers spooled) and then
        exit with status 143, as the default action would. Only from the main thread; False otherwise. For
        programs without their own SIGTERM handling (``tracer run``); a server wires ``shutdown`` itself."""
        import signal

        if threading.current_thread() is not threading.main_thread():
            return False

        def on_term(signum: int, frame: object) -> None:
            self.shutdown()
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)
        return True

    def _atexit(self) -> None:
        try:
            self.shutdown()
        except Exception:  # noqa: BLE001
            pass


def resend_spool(config: PipelineConfig, *, timeout_s: float | None = None) -> tuple[DeliveryReport, dict[Signal, int]]:
    """``tracer flush``: re-send every spooled request to the configured collector, without starting the SDK.

    Returns the report (``resent`` per signal: claimed, exported, dropped, put back) and, per signal, the items
    still in the spool afterwards (including signals with no OTLP endpoint configured, which are not sent)."""
    book = _Book()
    abort = threading.Event()
    spool = Spool(config.spool_dir, config.spool_max_bytes)
    for signal in SIGNALS:
        exp = config.exporter(signal)
        if exp.kind != "otlp" or not spool.entries(signal):
            continue
        transport = _checked_transport(exp, abort)
        delivery = _Delivery(signal, transport, spool=spool, book=book, timeout_s=exp.timeout_s
                             if timeout_s is None else timeout_s, max_request_bytes=config.max_request_bytes)
        try:
            spool.drain(signal, delivery.send_payload, on_claim=book.claimed, on_result=book.resolved)
        finally:
            transport.close()
    left = {s: spool.pending_items(s) for s in SIGNALS}
    return book.report(), left


