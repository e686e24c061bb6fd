"""OTLP transports that send already-serialized export requests: one code path for live batches, the spool and
``tracer export replay``.

Retries follow the OTLP specification (and mirror the 1.45 SDK exporters): gRPC codes CANCELLED,
DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS and HTTP 429/502/503/504 or
a connection error are retried with exponential backoff (1 s, 2 s, 4 s … ±20 % jitter), a server's RetryInfo
(gRPC) or Retry-After (HTTP) replacing the backoff; no wait ever runs past the request's deadline
(OTEL_EXPORTER_OTLP_TIMEOUT), so one send is bounded by it. Anything else is a rejection, never retried.
Once the pipeline is shutting down (``hurry`` set) only a server-given delay is waited for; our own backoff is
skipped and the request goes to the spool at once, so a process exits promptly while its collector is down.

``grpc`` is imported only when a gRPC transport is built; HTTP uses the standard library.
"""

from __future__ import annotations

import gzip
import random
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from collector._config import ExporterConfig, Signal

_MAX_ATTEMPTS = 6
_RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
_GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}
_USER_AGENT = "wasm-tracer-collector/0.1"


@dataclass(frozen=True, slots=True)
class SendResult:
    """How one request ended. ``retryable`` failures go to the spool; others are dropped as rejected.
    ``rejected`` counts items a successful response refused (OTLP partial success)."""

    ok: bool
    retryable: bool = False
    rejected: int = 0
    error: str | None = None


class Transport(Protocol):
    def send(self, payload: bytes, deadline: float) -> SendResult: ...

    def close(self) -> None: ...


def _backoff(attempt: int) -> float:
    return float(2**attempt) * random.uniform(0.8, 1.2)


def _rejected_from_response(signal: Signal, body: bytes) -> int:
    """The partial_success count of an Export*ServiceResponse (0 when absent or unparsable)."""
    if not body:
        return 0
    try:
        from collector._file_exporter import response_class

        response = response_class(signal)()
        response.ParseFromString(body)
        ps = response.partial_success
        if signal == "traces":
            return int(ps.rejected_spans)
        if signal == "logs":
            return int(ps.rejected_log_records)
        return int(ps.rejected_data_points)
    except Exception:  # noqa: BLE001 - a response we cannot read means success without detail
        return 0


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class HttpTransport:
    """OTLP/HTTP with protobuf bodies (``http/protobuf``), standard library only."""

    def __init__(self, config: ExporterConfig, abort: threading.Event,
                 hurry: threading.Event | None = None) -> None:
        assert config.endpoint is not None
        self.signal = config.signal
        self.url = config.endpoint
        self.abort = abort
        self.hurry = hurry or threading.Event()
        self.headers = {"Content-Type": "application/x-protobuf", "User-Agent": _USER_AGENT}
        self.headers.update(dict(config.headers))
        self.gzip = config.compression == "gzip"
        if self.gzip:
            self.headers["Content-Encoding"] = "gzip"
        self.context: ssl.SSLContext | None = None
        if urlsplit(self.url).scheme == "https":
            self.context = ssl.create_default_context(cafile=config.certificate)
            if config.client_certificate:
                self.context.load_cert_chain(config.client_certificate, config.client_key)

    def _attempt(self, body: bytes, timeout: float) -> tuple[int | None, bytes, str | None, str | None]:
        """(status, response body, Retry-After, error) for one POST; status None on a connection error."""
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=max(timeout, 0.001), context=self.context) as resp:
                return resp.status, resp.read(), None, None
        except urllib.error.HTTPError as exc:
            try:
                data = exc.read()
            except Exception:  # noqa: BLE001
                data = b""
            return exc.code, data, exc.headers.get("Retry-After"), f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return None, b"", None, f"{type(reason).__name__}: {reason}"

    def send(self, payload: bytes, deadline: float) -> SendResult:
        body = gzip.compress(payload) if self.gzip else payload
        error = "not attempted"
        for attempt in range(_MAX_ATTEMPTS):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            status, data, retry_after, error_text = self._attempt(body, remaining)
            if status is not None and 200 <= status < 300:
                return SendResult(True, rejected=_rejected_from_response(self.signal, data))
            error = error_text or f"HTTP {status}"
            if status is not None and status not in _RETRYABLE_HTTP:
                return SendResult(False, retryable=False, error=error)
            wait = _backoff(attempt)
            server_wait = _retry_after_seconds(retry_after) if status is not None else None
            if server_wait is not None:
                wait = server_wait
            elif self.hurry.is_set():
                break
            if attempt + 1 == _MAX_ATTEMPTS or wait > deadline - time.monotonic():
                break
            if self.abort.wait(wait):
                error += " (aborted by shutdown)"
                break
        return SendResult(False, retryable=True, error=error)

    def close(self) -> None:
        pass


class GrpcTransport:
    """OTLP/gRPC: sends the serialized request bytes as they are (no re-encoding)."""

    def __init__(self, config: ExporterConfig, abort: threading.Event,
                 hurry: threading.Event | None = None) -> None:
        import grpc

        assert config.endpoint is not None
        self._grpc = grpc
        self.signal = config.signal
        self.abort = abort
        self.hurry = hurry or threading.Event()
        parts = urlsplit(config.endpoint)
        self.target = parts.netloc
        secure = parts.scheme == "https" or config.insecure is False
        self.credentials = None
        if secure:
            def read(path: str | None) -> bytes | None:
                if not path:
                    return None
                with open(path, "rb") as f:
                    return f.read()

            self.credentials = grpc.ssl_channel_credentials(
                read(config.certificate), read(config.client_key), read(config.client_certificate)
            )
        self.metadata = tuple((k.lower(), v) for k, v in config.headers)
        self.compression = grpc.Compression.Gzip if config.compression == "gzip" else grpc.Compression.NoCompression
        self.retryable = frozenset(
            {
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.ABORTED,
                grpc.StatusCode.OUT_OF_RANGE,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DATA_LOSS,
            }
        )
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        grpc = self._grpc
        # Short reconnect backoff: after an outage the next attempt should find the collector, not wait out
        # gRPC's default 120 s connection backoff.
        options = [
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.min_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.enable_retries", 0),
        ]
        if self.credentials is not None:
            self.channel = grpc.secure_channel(self.target, self.credentials, options=options,
                                               compression=self.compression)
        else:
            self.channel = grpc.insecure_channel(self.target, options=options, compression=self.compression)
        self.call = self.channel.unary_unary(_GRPC_METHODS[self.signal])

    def send(self, payload: bytes, deadline: float) -> SendResult:
        grpc = self._grpc
        error = "not attempted"
        for attempt in range(_MAX_ATTEMPTS):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                with self._lock:
                    call = self.call
                response: Any = call(payload, timeout=remaining, metadata=self.metadata)
                return SendResult(True, rejected=_rejected_from_response(self.signal, bytes(response)))
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                error = f"gRPC {getattr(code, 'name', code)}: {exc.details() if hasattr(exc, 'details') else exc}"
                if code not in self.retryable:
                    return SendResult(False, retryable=False, error=error)
                wait = _backoff(attempt)
                server_wait = self._retry_info(exc)
                if server_wait is not None:
                    wait = server_wait
                elif self.hurry.is_set():
                    break
                if code == grpc.StatusCode.UNAVAILABLE and attempt == 0:
                    with self._lock:  # as the SDK does: a fresh channel reconnects at once
                        try:
                            self.channel.close()
                        except Exception:  # noqa: BLE001
                            pass
                        self._open()
            if attempt + 1 == _MAX_ATTEMPTS or wait > deadline - time.monotonic():
                break
            if self.abort.wait(wait):
                error += " (aborted by shutdown)"
                break
        return SendResult(False, retryable=True, error=error)

    @staticmethod
    def _retry_info(exc: Any) -> float | None:
        try:
            trailers = dict(exc.trailing_metadata() or ())
            raw = trailers.get("google.rpc.retryinfo-bin")
            if raw is None:
                return None
            from google.rpc.error_details_pb2 import RetryInfo

            info = RetryInfo()
            info.ParseFromString(raw)
            return float(info.retry_delay.seconds) + float(info.retry_delay.nanos) / 1e9
        except Exception:  # noqa: BLE001
            return None

    def close(self) -> None:
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001
            pass


def make_transport(config: ExporterConfig, abort: threading.Event,
                   hurry: threading.Event | None = None) -> Transport:
    """The transport for an ``otlp`` exporter config, chosen by protocol (gRPC imported only for ``grpc``)."""
    if config.protocol == "grpc":
        return GrpcTransport(config, abort, hurry)
    return HttpTransport(config, abort, hurry)
