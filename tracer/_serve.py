"""``tracer serve``: a WAGI worker runtime on gunicorn, one fresh wasm instance per request, traced.

Process model (why each choice):

- gunicorn, embedded through ``gunicorn.app.base.BaseApplication``: a maintained HTTP/1.1 server with pre-fork
  workers, graceful SIGTERM and worker supervision. Guest execution is CPU-bound and wasmtime-py is not
  thread-safe, so parallelism comes from processes (``--workers``, default: CPU count).
- The ``gthread`` worker class: its main loop keeps idle keep-alive connections in a selector (the ``sync``
  worker closes every connection) and hands requests to a small thread pool. Threads only do connection I/O;
  guest execution is serialized by one lock per process (``_GuestSlot``). A request that would find more than
  ``max_queue`` others already waiting for that lock is answered 503 with ``Retry-After`` at once (admission
  control); the pool has ``max_queue + 2`` threads so one is always free to say so, and ``/healthz`` and
  ``/readyz`` never wait for the guest.
- The master never imports wasmtime or OpenTelemetry: before it forks, a short-lived child process compiles the
  module into the tracer's verified cache (a bad module fails ``tracer serve`` there, with one line). Each worker
  then builds its ``Interceptor`` from that cache after the fork. Forking a process that has compiled (wasmtime's
  compile thread pool) or started the OTel batch processor's thread would leave those threads missing in the
  children; so both start per worker: the interceptor in ``load()`` and the collector ``Pipeline`` in
  ``post_fork``, shut down (flushed) in ``worker_exit``.
- Graceful stop: SIGTERM to the master makes each gthread worker stop accepting, finish in-flight requests for
  up to ``graceful_timeout`` (the guest timeout + 5 s, so a request under the wall-clock limit always ends), then
  run ``worker_exit``, which flushes telemetry.
- Reload: before each request the module file is ``stat``-ed (about a microsecond); when its size, mtime or
  inode changed, a new ``Interceptor`` is built (from the cache or by compiling) and its first request is a cold
  start. A file that does not load keeps the previous version serving, and is retried when it changes again.

Telemetry: an incoming W3C ``traceparent`` (TraceContext propagator) is the parent of the request's SERVER span
(http.* semantic conventions plus the tracer's attributes), with the guest's console lines as log records in its
context; see ``_Telemetry`` for the optional separate HTTP span. ``OTEL_SDK_DISABLED=true`` turns all of it off: no
collector or OpenTelemetry import, no context extraction.
"""

from __future__ import annotations

import http
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracer import _wagi
from tracer._config import MiB, TracerConfig
from tracer._record import InvocationRecord, Outcome

if TYPE_CHECKING:
    from tracer._interceptor import Interceptor

log = logging.getLogger("tracer.serve")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
TELEMETRY_OFF_ENV = "OTEL_SDK_DISABLED"
_FAILURE_LINES = 20

# Status of a request whose guest did not produce a response (see docs/serve.md, "Failure statuses").
OUTCOME_STATUS: dict[Outcome, int] = {
    Outcome.EXCEPTION: 500,
    Outcome.HOST_ERROR: 500,
    Outcome.EXCEEDED_MEMORY: 500,
    Outcome.EXCEEDED_CPU: 504,
    Outcome.EXCEEDED_WALL_TIME: 504,
}


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Everything ``tracer serve`` needs; the CLI fills it from flags > ``TRACER_*`` env > defaults."""

    module: Path
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: available_cpus())
    max_queue: int = 8  # requests waiting for the guest per worker before 503
    max_body_bytes: int = 16 * MiB
    keepalive_s: float = 5.0
    env: tuple[tuple[str, str], ...] = ()
    dev: bool = False
    separate_server_span: bool = False  # TRACER_SERVER_SPAN=separate: an HTTP span above the invocation span
    tracer: TracerConfig = field(default_factory=TracerConfig)

    @property
    def graceful_timeout_s(self) -> float:
        return self.tracer.timeout_s + 5.0


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset), not the host's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def telemetry_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(TELEMETRY_OFF_ENV, "").strip().lower() != "true"


# -- the guest slot: one invocation at a time per process, bounded waiting --------------------------------------


class Saturated(Exception):
    """More than ``max_queue`` requests are already waiting for this process's guest slot."""


class _GuestSlot:
    """A lock around guest execution plus a count of waiters; admission fails fast past the bound."""

    def __init__(self, max_queue: int) -> None:
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._waiting = 0
        self.max_queue = max_queue

    def __enter__(self) -> None:
        with self._count_lock:
            if self._waiting >= self.max_queue and self._lock.locked():
                raise Saturated
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._count_lock:
                self._waiting -= 1

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


# -- module versions: build once, rebuild when the file changes -------------------------------------------------


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ModuleWatch:
    """The current ``Interceptor`` for a path; ``current()`` swaps in a new one when the file changed."""

    def __init__(self, path: Path, build: Callable[[Path], "Interceptor"]) -> None:
        self.path = path
        self._build = build
        self._seen = _signature(path)
        self.interceptor = build(path)
        self.reloads = 0

    def current(self) -> "Interceptor":
        """Called under the guest slot, so a rebuild never races an invocation."""
        sig = _signature(self.path)
        if sig is not None and sig != self._seen:
            self._seen = sig
            try:
                self.interceptor = self._build(self.path)
                self.reloads += 1
                log.info("module reloaded: %s (sha256 %s)", self.path, self.interceptor.module_sha256[:12])
            except Exception as exc:  # keep serving the previous version; retried when the file changes again
                log.warning("module %s changed but does not load, keeping the previous version: %s", self.path, exc)
        return self.interceptor


# -- the WSGI application ---------------------------------------------------------------------------------------


class _Telemetry:
    """The collector pipeline of one worker process, W3C context extraction and the HTTP server span.

    Default: one span per request. The collector's invocation span is the SERVER span (its parent is remote or
    absent) and carries the http.* attributes passed as ``http=`` next to the tracer's own; the guest's console
    lines are log records in its context. With ``separate_server_span`` a SERVER span named after the method is
    made here with the pipeline's tracer provider, and the invocation span becomes its INTERNAL child; it costs
    a second span per request (measured in docs/benchmarks.md), hence not the default. Either way the work
    happens after the response is sent (``_Body.close``), so the client's latency does not include it.
    """

    def __init__(self, pipeline: Any, separate_server_span: bool = False) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.pipeline = pipeline
        self._propagator = TraceContextTextMapPropagator()
        self._trace = trace
        provider = getattr(pipeline, "tracer_provider", None)
        self._tracer = (
            provider.get_tracer("tracer.serve") if provider is not None and separate_server_span else None
        )

    @classmethod
    def start(cls, config: ServeConfig) -> "_Telemetry | None":
        if not telemetry_enabled():
            return None
        from collector import Pipeline, PipelineConfig

        pipeline_config = PipelineConfig.from_env(os.environ, service_name=config.module.stem)
        return cls(Pipeline.start(pipeline_config), config.separate_server_span)

    def extract(self, environ: Environ) -> Any:
        carrier = {}
        for name in ("traceparent", "tracestate"):
            value = environ.get("HTTP_" + name.upper())
            if isinstance(value, str):
                carrier[name] = value
        return self._propagator.extract(carrier) if carrier else None

    def finish(
        self,
        parent: Any,
        rec: InvocationRecord | None,
        method: str,
        attributes: dict[str, object],
        start_ns: int,
    ) -> None:
        """Record the server span (and the invocation under it); never raises."""
        try:
            if self._tracer is None:  # one span: the invocation span is the SERVER span and carries http.*
                if rec is not None:
                    self.pipeline.record(rec, parent=parent, http=attributes)
                return
            status = attributes.get("http.response.status_code")
            if isinstance(status, int) and status >= 500:
                attributes["error.type"] = str(status)
            span = self._tracer.start_span(
                method,
                context=parent,
                kind=self._trace.SpanKind.SERVER,
                attributes=attributes,
                start_time=start_ns,
            )
            if rec is not None:
                # An empty http mapping: faas.trigger=http on the invocation span, http.* on the server span.
                self.pipeline.record(rec, parent=self._trace.set_span_in_context(span, parent), http={})
            if isinstance(status, int) and status >= 500:
                span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
            span.end()
        except Exception:  # telemetry never breaks serving; the collector counts its own failures
            log.exception("telemetry record failed")

    def shutdown(self) -> None:
        self.pipeline.shutdown()


def _new_request_id() -> str:
    return os.urandom(8).hex()


class _Body:
    """The response body, recording telemetry in ``close()`` after gunicorn has sent the bytes (PEP 3333)."""

    __slots__ = ("_chunks", "_after")

    def __init__(self, chunks: list[bytes], after: Callable[[], None] | None) -> None:
        self._chunks = chunks
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:
        after, self._after = self._after, None
        if after is not None:
            after()


class WagiApp:
    """The WSGI callable of one worker process: health endpoints, limits, WAGI in and out, telemetry."""

    def __init__(
        self, config: ServeConfig, watch: ModuleWatch, telemetry: _Telemetry | None = None
    ) -> None:
        self.config = config
        self.watch = watch
        self.telemetry = telemetry
        self.slot = _GuestSlot(config.max_queue)
        self.extra_env = dict(config.env)
        self.stopping = False

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == HEALTH_PATH:
            return _plain(start_response, 200, b"ok\n")
        if path == READY_PATH:
            if self.stopping:
                return _plain(start_response, 503, b"stopping\n")
            return _plain(start_response, 200, b"ready\n")
        request_id = _new_request_id()
        start_ns = time.time_ns()

        body = self._read_body(environ)
        if body is None:
            detail = f"the body exceeds {self.config.max_body_bytes} bytes"
            return self._traced(environ, None, _error(start_response, 413, request_id, detail=detail), 413, start_ns)
        env = _wagi.request_env(environ, content_length=len(body), extra=self.extra_env)
        argv = _wagi.request_args(environ)
        try:
            with self.slot:
                interceptor = self.watch.current()
                rec = interceptor.invoke(
                    argv=argv, env=env, stdin=body, capture_stdout=True, invocation_id=request_id
                )
        except Saturated:
            chunks = _error(start_response, 503, request_id, extra=(("retry-after", "1"),))
            return self._traced(environ, None, chunks, 503, start_ns)
        except Exception as exc:  # a host-side failure (not the guest's): one line, a 500 with the request id
            log.error("request %s: the invocation failed on the host: %s: %s", request_id, type(exc).__name__, exc)
            return self._traced(environ, None, _error(start_response, 500, request_id), 500, start_ns)

        status, headers, chunks = self._respond(rec, request_id)
        headers.append(("content-length", str(sum(map(len, chunks)))))
        if self.config.dev or rec.outcome is not Outcome.OK:
            self._console(rec)
        start_response(_status_line(status), headers)
        return self._traced(environ, rec, chunks, status, start_ns, len(body))

    def _traced(
        self,
        environ: Environ,
        rec: InvocationRecord | None,
        chunks: list[bytes],
        status: int,
        start_ns: int,
        request_size: int = 0,
    ) -> Iterable[bytes]:
        telemetry = self.telemetry
        if telemetry is None:
            return chunks
        parent = telemetry.extract(environ)
        attributes = _http_attributes(environ, status, request_size, sum(map(len, chunks)))
        method = str(environ.get("REQUEST_METHOD", "GET"))
        return _Body(chunks, lambda: telemetry.finish(parent, rec, method, attributes, start_ns))

    def _read_body(self, environ: Environ) -> bytes | None:
        """The request body, or None when it exceeds the bound (413; nothing past the bound is buffered)."""
        limit = self.config.max_body_bytes
        length_text = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length_text:
            try:
                length = int(length_text)
            except ValueError:
                length = -1
            if length > limit:
                return None
            if length >= 0:
                return stream.read(length) if length else b""
        # Chunked (or no length): read up to one byte past the bound to tell "exactly the bound" from "more".
        parts: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = stream.read(min(65536, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return None if size > limit else b"".join(parts)

    def _respond(self, rec: InvocationRecord, request_id: str) -> tuple[int, list[tuple[str, str]], list[bytes]]:
        rid = ("x-request-id", request_id)
        if rec.outcome is not Outcome.OK:
            status = OUTCOME_STATUS.get(rec.outcome, 500)
            if self.config.dev:
                text = report(rec, status, request_id)
                return status, [("content-type", "text/plain; charset=utf-8"), rid], [text.encode()]
            return status, [("content-type", "text/plain; charset=utf-8"), rid], [_error_body(status, request_id)]
        parsed = _wagi.parse_response(rec.stdout)
        if isinstance(parsed, _wagi.Malformed):
            log.warning("request %s: malformed guest response: %s", request_id, parsed.reason)
            body = _error_body(502, request_id)
            if self.config.dev:
                body += f"\nthe guest's output is not a WAGI response: {parsed.reason}\n".encode()
            return 502, [("content-type", "text/plain; charset=utf-8"), rid], [body]
        headers = [h for h in parsed.headers if h[0] != "x-request-id"]  # the host's id is the one in telemetry
        headers.append(rid)
        return parsed.status, headers, [parsed.body]

    def _console(self, rec: InvocationRecord) -> None:
        """Guest console lines on the server's stderr, tagged with the request id (as WAGI logs them).

        Every line in ``--dev``; otherwise only for a failed request, and only its last ``_FAILURE_LINES`` lines
        (a panic's message is at the end), so a flooding guest cannot flood the server's log.
        """
        rid = rec.invocation_id
        logs = rec.logs if self.config.dev else rec.logs[-_FAILURE_LINES:]
        lines = [f"[{rid}] {r.stream}: {r.text}\n" for r in logs]
        if rec.outcome is not Outcome.OK:
            lines.append(f"[{rid}] outcome {rec.outcome.value}" + (f" ({rec.trap.code})" if rec.trap else "") + "\n")
        if lines:
            sys.stderr.write("".join(lines))


def _status_line(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Status {status}"


def _error_body(status: int, request_id: str) -> bytes:
    return f"{_status_line(status)}\nrequest id: {request_id}\n".encode()


def _plain(start_response: StartResponse, status: int, body: bytes) -> list[bytes]:
    start_response(
        _status_line(status), [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body)))]
    )
    return [body]


def _error(
    start_response: StartResponse,
    status: int,
    request_id: str,
    *,
    detail: str = "",
    extra: tuple[tuple[str, str], ...] = (),
) -> list[bytes]:
    body = _error_body(status, request_id) + (detail + "\n").encode() if detail else _error_body(status, request_id)
    headers = [
        ("content-type", "text/plain; charset=utf-8"),
        ("content-length", str(len(body))),
        ("x-request-id", request_id),
        *extra,
    ]
    start_response(_status_line(status), headers)
    return [body]


def report(rec: InvocationRecord, status: int, request_id: str) -> str:
    """The ``--dev`` error page: outcome, panic, symbolized stack and console, as text."""
    lines = [f"{_status_line(status)} (request id {request_id})", f"outcome: {rec.outcome.value}"]
    if rec.trap is not None:
        lines.append(f"trap: {rec.trap.code}: {rec.trap.message}")
    if rec.panic is not None:
        where = f" at {rec.panic.file}:{rec.panic.line}:{rec.panic.column}" if rec.panic.file else ""
        lines.append(f"panic: {rec.panic.message}{where}")
    if rec.host_error:
        lines.append(f"host error: {rec.host_error}")
    if rec.stack:
        lines.append("stack:")
        lines.append(_format_stack(rec).rstrip("\n"))
    if rec.logs:
        lines.append("console:")
        lines.extend(f"  {r.stream}: {r.text}" for r in rec.logs)
    return "\n".join(lines) + "\n"


def _format_stack(rec: InvocationRecord) -> str:
    try:
        from symbolizer import format_frames

        return str(format_frames(rec.stack))
    except Exception:  # the renderer is optional here; a plain listing is enough for a dev page
        out = []
        n = 0
        for frame in rec.stack:
            for sym in frame.symbols:
                loc = sym.location
                at = f"\n        at {loc.file}:{loc.line}:{loc.column}" if loc is not None and loc.file else ""
                tag = " [inlined]" if sym.inlined else ""
                out.append(f"  {n:>2}: {sym.function}{tag}{at}")
                n += 1
        return "\n".join(out)


def _http_attributes(environ: Environ, status: int, request_size: int, response_size: int) -> dict[str, object]:
    """HTTP server attributes, stable semantic conventions (``http.*``, ``url.*``, ``server.*``, ``client.*``)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host, port = _wagi._host_port(environ, scheme)
    attrs: dict[str, object] = {
        "http.request.method": environ.get("REQUEST_METHOD", "GET"),
        "http.response.status_code": status,
        "url.scheme": scheme,
        "url.path": _wagi._raw_path(environ),
        "server.address": host,
        "network.protocol.version": str(environ.get("SERVER_PROTOCOL", "HTTP/1.1")).partition("/")[2] or "1.1",
        "http.request.body.size": request_size,
        "http.response.body.size": response_size,
    }
    if port.isdigit():
        attrs["server.port"] = int(port)
    query = environ.get("QUERY_STRING")
    if query:
        attrs["url.query"] = query
    if environ.get("REMOTE_ADDR"):
        attrs["client.address"] = environ["REMOTE_ADDR"]
    if environ.get("HTTP_USER_AGENT"):
        attrs["user_agent.original"] = environ["HTTP_USER_AGENT"]
    return attrs


# -- gunicorn wiring ---------------------------------------------------------------------------------------------


def _configure_logging(dev: bool) -> None:
    """Our lines on stderr like gunicorn's own: time, pid, level (reloads are INFO, shown with --dev)."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s",
                                           "%Y-%m-%d %H:%M:%S %z"))
    log.addHandler(handler)
    log.setLevel(logging.INFO if dev else logging.WARNING)
    log.propagate = False


def _build_interceptor(config: ServeConfig) -> Callable[[Path], "Interceptor"]:
    def build(path: Path) -> "Interceptor":
        from tracer._interceptor import Interceptor

        return Interceptor.from_path(path, config=config.tracer)

    return build


class _State:
    """Per-worker-process state, set after fork (module-level so gunicorn's hooks can reach it)."""

    telemetry: _Telemetry | None = None
    app: WagiApp | None = None


def _post_fork(server: Any, worker: Any) -> None:
    config: ServeConfig = server.app.serve_config
    _State.telemetry = _Telemetry.start(config)


def _worker_int(worker: Any) -> None:
    if _State.app is not None:
        _State.app.stopping = True


def _worker_exit(server: Any, worker: Any) -> None:
    # gunicorn also calls this hook in the master when a worker vanished; there is nothing to flush there.
    if _State.app is not None:
        _State.app.stopping = True
    telemetry, _State.telemetry = _State.telemetry, None
    if telemetry is not None:
        telemetry.shutdown()


def _on_exit(server: Any) -> None:
    log.info("tracer serve stopped")


def gunicorn_application(config: ServeConfig) -> Any:
    """The embedded gunicorn application for ``config`` (imports gunicorn only when called)."""
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):  # type: ignore[misc]
        def __init__(self) -> None:
            self.serve_config = config
            super().__init__()

        def load_config(self) -> None:
            threads = config.max_queue + 2
            settings: dict[str, object] = {
                "bind": [f"[{config.host}]:{config.port}" if ":" in config.host else f"{config.host}:{config.port}"],
                "workers": config.workers,
                "worker_class": "gthread",
                "threads": threads,
                "worker_connections": max(1000, threads * 4),
                "keepalive": math.ceil(config.keepalive_s),
                "graceful_timeout": math.ceil(config.graceful_timeout_s),
                "timeout": max(30, math.ceil(config.graceful_timeout_s)),
                "post_fork": _post_fork,
                "worker_int": _worker_int,
                "worker_exit": _worker_exit,
                "on_exit": _on_exit,
                "proc_name": f"tracer-serve {config.module.name}",
                "accesslog": "-" if config.dev else None,
                "errorlog": "-",
                "loglevel": "info" if config.dev else "warning",
                "preload_app": False,
            }
            # gunicorn >= 24 opens a control socket under ~/.gunicorn by default; a worker runtime needs none.
            if "control_socket_disable" in self.cfg.settings:
                settings["control_socket_disable"] = True
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> WagiApp:
            # Runs in each worker after the fork: the module comes from the cache the master's child filled.
            _configure_logging(config.dev)
            watch = ModuleWatch(config.module, _build_interceptor(config))
            _State.app = WagiApp(config, watch, _State.telemetry)
            return _State.app

    return Application()


def warm_cache(config: ServeConfig, environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Compile the module into the cache in a child process; returns (status, one-line error or "")."""
    env = dict(os.environ if environ is None else environ)
    env["TRACER_CACHE_DIR"] = str(config.tracer.cache_dir)
    code = (
        "import sys\n"
        "from tracer._cmd_serve import warm_main\n"
        "sys.exit(warm_main(sys.argv[1]))\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-c", code, str(config.module)], env=env, capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""


def serve(config: ServeConfig) -> int:
    """Run the server until SIGTERM/SIGINT; returns gunicorn's exit status."""
    app = gunicorn_application(config)
    try:
        app.run()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
