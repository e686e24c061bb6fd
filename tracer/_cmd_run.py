"""``tracer run``: one invocation of a module under the tracer, its output live, then the report.

Exit status: the guest's exit code when it ends normally (``proc_exit(n)`` gives n), else the outcome's status
from ``tracer._exit`` (134 for a trap, 152 out of fuel, 142 wall clock, 136 memory, 135 host import error);
64 for a bad flag, 65 for a module that is not valid wasm, 66 for a missing file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from tracer import _exit
from tracer._config import parse_positive_int, parse_seconds, parse_size
from tracer._errors import ConfigError

_OUTCOME_STATUS = {
    "exception": _exit.TRAP,
    "exceededCpu": _exit.EXCEEDED_CPU,
    "exceededWallTime": _exit.EXCEEDED_WALL_TIME,
    "exceededMemory": _exit.EXCEEDED_MEMORY,
    "hostError": _exit.HOST_ERROR,
}


def _kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key, value


def _dir(text: str) -> tuple[str, str]:
    host, sep, guest = text.partition("::")
    return host, guest if sep else host


def _arg(value: str) -> int | float:
    try:
        return int(value, 0)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None


def _checked(parse: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("module", help="the .wasm module to run")
    p.add_argument("guest_args", nargs="*", metavar="GUEST_ARGS", help="argv[1:] for the guest (after --)")
    p.add_argument("--invoke", nargs="+", metavar=("EXPORT", "ARG"),
                   help="call EXPORT with numeric ARGs instead of _start")
    p.add_argument("--fuel", type=_checked(lambda t: parse_positive_int(t, "--fuel")),
                   help="fuel budget (default: unlimited, still counted; env TRACER_FUEL)")
    p.add_argument("--memory", type=_checked(parse_size), help="linear-memory cap, e.g. 64MiB (default 128MiB)")
    p.add_argument("--timeout", type=_checked(parse_seconds), help="wall-clock limit in seconds (default 30)")
    p.add_argument("--env", type=_kv, action="append", default=[], metavar="K=V", help="guest environment")
    p.add_argument("--dir", type=_dir, action="append", default=[], metavar="HOST[::GUEST]",
                   help="preopen a host directory for the guest")
    sym = p.add_mutually_exclusive_group()
    sym.add_argument("--debug-file", metavar="PATH", help="the debug twin of a stripped module (tracer split)")
    sym.add_argument("--symbols", metavar="DIR", help="a directory of debug files, found by code id or build id")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("--no-symbolize", action="store_true", help="name frames from the name section only")
    p.add_argument("--full-backtrace", action="store_true",
                   help="show the panic machinery and runtime frames too (hidden as in Rust's short backtraces)")


def run(args: argparse.Namespace) -> int:
    from tracer._config import TracerConfig
    from tracer._errors import ExportError, ModuleLoadError, TracerError
    from tracer._interceptor import Interceptor
    from tracer._report import format_report, record_to_json
    from symbolizer._render import sanitize_terminal

    try:
        config = TracerConfig.from_env(
            os.environ, fuel=args.fuel, memory_limit_bytes=args.memory, timeout_s=args.timeout,
            symbolize=False if args.no_symbolize else None,
        )
    except ConfigError as exc:
        print(f"tracer run: {exc}", file=sys.stderr)
        return _exit.USAGE
    for host, _guest in args.dir:
        if not os.path.isdir(host):
            print(f"tracer run: --dir {host}: not a directory", file=sys.stderr)
            return _exit.NO_INPUT
    export, call_args = "_start", []
    if args.invoke:
        export = args.invoke[0]
        try:
            call_args = [_arg(a) for a in args.invoke[1:]]
        except argparse.ArgumentTypeError as exc:
            print(f"tracer run: --invoke: {exc}", file=sys.stderr)
            return _exit.USAGE

    def live(record: Any) -> None:
        out = sys.stdout if record.stream == "stdout" else sys.stderr
        prefix = f"[{record.level}] " if record.stream == "log" else ""
        out.write(prefix + sanitize_terminal(record.text) + ("…\n" if record.truncated else "\n"))
        out.flush()

    try:
        for what, given in (("--debug-file", args.debug_file), ("--symbols", args.symbols)):
            if given is not None and not os.path.exists(given):
                print(f"tracer run: {what} {given}: no such file or directory", file=sys.stderr)
                return _exit.NO_INPUT
        interceptor = Interceptor.from_path(
            args.module, config=config, debug_file=args.debug_file, symbols_dir=args.symbols
        )
        if args.debug_file or args.symbols:
            from symbolizer import SymbolizerError

            try:
                interceptor.prepare_symbolizer()
            except SymbolizerError as exc:
                print(f"tracer run: {exc}", file=sys.stderr)
                return _exit.DATA
        rec = interceptor.invoke(
            export, call_args, argv=[*args.guest_args, *args.rest], env=dict(args.env), dirs=args.dir,
            on_log=None if args.json else live,
        )
    except ModuleLoadError as exc:
        print(f"tracer run: {exc}", file=sys.stderr)
        return _exit.NO_INPUT if not os.path.exists(args.module) else _exit.DATA
    except ExportError as exc:
        print(f"tracer run: {exc}", file=sys.stderr)
        return _exit.USAGE
    except TracerError as exc:
        print(f"tracer run: {exc}", file=sys.stderr)
        return _exit.DATA

    _record_telemetry(rec)
    if args.json:
        sys.stdout.write(json.dumps(record_to_json(rec)) + "\n")
    else:
        sys.stderr.write(format_report(rec, full_backtrace=args.full_backtrace))
    sys.stdout.flush()
    sys.stderr.flush()
    if rec.ok:
        return rec.exit_code or 0
    return _OUTCOME_STATUS[str(rec.outcome)]


def _record_telemetry(rec: Any) -> None:
    """Hand the record to the collector (embedded default: OTLP/JSON files), never failing the run."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    try:
        from collector import Pipeline, PipelineConfig

        resource = {k: v for k, v in (("tracer.module.code_id", rec.code_id),
                                      ("tracer.module.build_id", rec.build_id)) if v}
        pipe = Pipeline.start(PipelineConfig.from_env(os.environ, service_name=rec.module_name, resource=resource))
        pipe.record(rec)
        report = pipe.shutdown()
    except Exception as exc:  # telemetry never breaks the traced program
        print(f"tracer run: telemetry not recorded: {exc}", file=sys.stderr)
        return
    if report.pending or any(c.dropped_total for c in report.signals.values()):
        for line in report.lines():
            print(f"tracer run: telemetry: {line}", file=sys.stderr)
