"""Tiny real OTLP receivers on 127.0.0.1 for the delivery tests: scripted answers, recorded requests.

``HttpReceiver`` answers OTLP/HTTP POSTs from a script of (status, headers, delay, body) steps (the last step
repeats); ``GrpcReceiver`` does the same for the three OTLP gRPC Export methods with (code, retry_delay_s) steps.
Both keep every request they accepted, parsed, so tests can count items.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from collector._file_exporter import count_items, request_class

_PATHS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}


@dataclass
class Step:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    body: bytes = b""


class HttpReceiver:
    def __init__(self, steps: list[Step] | None = None) -> None:
        self.steps = steps or [Step()]
        self.lock = threading.Lock()
        self.calls: list[tuple[str, int]] = []  # (signal, status) per request
        self.accepted: dict[str, list[Any]] = {"traces": [], "logs": [], "metrics": []}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                signal = _PATHS.get(self.path, "traces")
                with receiver.lock:
                    step = receiver.steps[min(len(receiver.calls), len(receiver.steps) - 1)]
                    receiver.calls.append((signal, step.status))
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.status == 200:
                    request = request_class(signal)()
                    request.ParseFromString(body)
                    with receiver.lock:
                        receiver.accepted[signal].append(request)
                try:
                    self.send_response(step.status)
                    for k, v in step.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(step.body)))
                    self.end_headers()
                    self.wfile.write(step.body)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def items(self, signal: str) -> int:
        with self.lock:
            return sum(count_items(signal, r) for r in self.accepted[signal])  # type: ignore[arg-type]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class GrpcStep:
    code: str = "OK"  # a grpc.StatusCode name
    retry_delay_s: float | None = None


class GrpcReceiver:
    def __init__(self, steps: list[GrpcStep] | None = None) -> None:
        import grpc

        self.steps = steps or [GrpcStep()]
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []
        self.accepted: dict[str, list[Any]] = {"traces": [], "logs": [], "metrics": []}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        services = {
            "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
            "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
            "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
        }
        for signal, service in services.items():
            handler = grpc.unary_unary_rpc_method_handler(self._handler(signal))
            self.server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, {"Export": handler}),)
            )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _handler(self, signal: str) -> Any:
        import grpc
        from google.rpc.error_details_pb2 import RetryInfo

        def export(body: bytes, context: Any) -> bytes:
            with self.lock:
                step = self.steps[min(len(self.calls), len(self.steps) - 1)]
                self.calls.append((signal, step.code))
            if step.code != "OK":
                if step.retry_delay_s is not None:
                    info = RetryInfo()
                    info.retry_delay.FromNanoseconds(int(step.retry_delay_s * 1e9))
                    context.set_trailing_metadata((("google.rpc.retryinfo-bin", info.SerializeToString()),))
                context.abort(getattr(grpc.StatusCode, step.code), "scripted failure")
            request = request_class(signal)()  # type: ignore[arg-type]
            request.ParseFromString(body)
            with self.lock:
                self.accepted[signal].append(request)
            return b""

        return export

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def items(self, signal: str) -> int:
        with self.lock:
            return sum(count_items(signal, r) for r in self.accepted[signal])  # type: ignore[arg-type]

    def close(self) -> None:
        self.server.stop(0)
