"""``tracer serve``: serve a WAGI worker over HTTP under the tracer (docs/serve.md).

Exit status: 0 after a graceful stop (SIGTERM/SIGINT); 64 for a bad flag, 66 for a missing module, 65 for a file
that is not a valid module, 69 when the address cannot be bound, 70 when the server fails otherwise.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from tracer import _exit
from tracer._config import parse_positive_int, parse_seconds, parse_size
from tracer._errors import ConfigError

DEFAULT_LISTEN = "127.0.0.1:8080"
MAX_BODY_ENV = "TRACER_MAX_BODY"  # request body bound, e.g. 16MiB (default)
MAX_QUEUE_ENV = "TRACER_MAX_QUEUE"  # requests waiting for the guest per worker before 503 (default 8)
SERVER_SPAN_ENV = "TRACER_SERVER_SPAN"  # "separate": an HTTP SERVER span above the invocation span


def _checked(parse: Any, what: str) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what
    return convert


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (loopback) or ``[v6]:PORT``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--listen wants HOST:PORT with a port from 1 to 65535, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port_text)


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key, value


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("module", help="the WAGI module (.wasm, wasm32-wasi) that answers every request")
    p.add_argument("--listen", type=_checked(parse_listen, "HOST:PORT"), default=DEFAULT_LISTEN,
                   metavar="HOST:PORT", help=f"address to listen on (default {DEFAULT_LISTEN})")
    p.add_argument("--workers", type=_checked(lambda t: parse_positive_int(t, "--workers"), "N"),
                   metavar="N", help="worker processes (default: the CPUs this process may run on)")
    p.add_argument("--fuel", type=_checked(lambda t: parse_positive_int(t, "--fuel"), "N"), metavar="N",
                   help="fuel budget per request (default: unlimited, still counted; env TRACER_FUEL)")
    p.add_argument("--memory", type=_checked(parse_size, "SIZE"), metavar="SIZE",
                   help="linear-memory cap per request, e.g. 64MiB (default 128MiB; env TRACER_MEMORY)")
    p.add_argument("--timeout", type=_checked(parse_seconds, "SECONDS"), metavar="SECONDS",
                   help="wall-clock limit per request (default 30; env TRACER_TIMEOUT)")
    p.add_argument("--env", type=_kv, action="append", default=[], metavar="K=V",
                   help="an environment variable for the guest (repeatable; request variables win)")
    p.add_argument("--max-body", type=_checked(parse_size, "SIZE"), metavar="SIZE",
                   help=f"largest request body, larger is 413 (default 16MiB; env {MAX_BODY_ENV})")
    p.add_argument("--max-queue", type=_checked(lambda t: parse_positive_int(t, "--max-queue"), "N"),
                   metavar="N",
                   help=f"requests waiting per worker before 503 + Retry-After (default 8; env {MAX_QUEUE_ENV})")
    p.add_argument("--keepalive", type=_checked(parse_seconds, "SECONDS"), metavar="SECONDS",
                   help="how long an idle keep-alive connection stays open (default 5)")
    p.add_argument("--dev", action="store_true",
                   help="development: the symbolized report in 500 bodies, access log, guest console on stderr")


def run(args: argparse.Namespace) -> int:
    from tracer._config import TracerConfig
    from tracer._serve import ServeConfig, serve, warm_cache

    module = Path(args.module)
    if not module.is_file():
        what = "is a directory, not a module" if module.is_dir() else "no such file"
        print(f"tracer serve: {module}: {what}", file=sys.stderr)
        return _exit.NO_INPUT
    try:
        tracer_config = TracerConfig.from_env(
            os.environ, fuel=args.fuel, memory_limit_bytes=args.memory, timeout_s=args.timeout
        )
        max_body = args.max_body or (parse_size(os.environ[MAX_BODY_ENV]) if os.environ.get(MAX_BODY_ENV) else None)
        max_queue = args.max_queue or (
            parse_positive_int(os.environ[MAX_QUEUE_ENV], MAX_QUEUE_ENV) if os.environ.get(MAX_QUEUE_ENV) else None
        )
        span_mode = os.environ.get(SERVER_SPAN_ENV, "").strip().lower()
        if span_mode not in ("", "single", "separate"):
            raise ConfigError(f"{SERVER_SPAN_ENV} must be single or separate, got {span_mode!r}")
    except ConfigError as exc:
        print(f"tracer serve: {exc}", file=sys.stderr)
        return _exit.USAGE
    host, port = args.listen if isinstance(args.listen, tuple) else parse_listen(args.listen)
    overrides: dict[str, Any] = {}
    if args.workers:
        overrides["workers"] = args.workers
    if max_body:
        overrides["max_body_bytes"] = max_body
    if max_queue:
        overrides["max_queue"] = max_queue
    if args.keepalive:
        overrides["keepalive_s"] = args.keepalive
    config = ServeConfig(
        module=module.resolve(), host=host, port=port, env=tuple(args.env), dev=args.dev, tracer=tracer_config,
        separate_server_span=span_mode == "separate", **overrides,
    )
    problem = _check_bind(host, port)
    if problem:
        print(f"tracer serve: cannot listen on {host}:{port}: {problem}", file=sys.stderr)
        return _exit.UNAVAILABLE
    status, message = warm_cache(config)
    if status != 0:
        print(message or f"tracer serve: {module}: cannot load the module", file=sys.stderr)
        return status if status in (_exit.DATA, _exit.NO_INPUT) else _exit.SOFTWARE
    mode = ", dev" if config.dev else ""
    print(f"tracer serve: {module} on http://{host}:{port} ({config.workers} workers{mode})", file=sys.stderr)
    return serve(config)


def _check_bind(host: str, port: int) -> str:
    """Bind once before forking so "address in use" is one line, not gunicorn's retry loop."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return str(exc.strerror)
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            return os.strerror(exc.errno) if exc.errno else str(exc)
    return ""


def warm_main(path: str) -> int:
    """In a child of ``tracer serve``: compile ``path`` into the cache so workers load it (see _serve)."""
    from tracer._config import TracerConfig
    from tracer._errors import ModuleLoadError, TracerError
    from tracer._interceptor import Interceptor

    try:
        interceptor = Interceptor.from_path(path, config=TracerConfig.from_env(os.environ, symbolize=False))
        if not any(export.name == "_start" for export in interceptor.module.exports):
            print(f"tracer serve: {path}: not a WASI command (no _start export); WAGI needs a wasm32-wasi program",
                  file=sys.stderr)
            return _exit.DATA
    except ModuleLoadError as exc:
        print(f"tracer serve: {exc}", file=sys.stderr)
        return _exit.DATA
    except TracerError as exc:
        print(f"tracer serve: {path}: {exc}", file=sys.stderr)
        return _exit.DATA
    return _exit.OK
