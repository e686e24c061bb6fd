"""The ``tracer`` command: one entry point, one module per subcommand, imported only when chosen.

Each subcommand module (``_cmd_<name>.py``) provides ``add_parser(subparsers)`` and ``run(args) -> int``.
Heavy imports (wasmtime, OpenTelemetry, pyelftools) happen inside ``run`` so ``tracer symbolize`` on a warm
cache never pays for them. Errors of ours become one line on stderr and a status from ``_exit``.

A subcommand module may also provide ``parse_simple(argv) -> dict | None``: the values argparse would give
for the plain command lines it recognises, None for anything else (help, abbreviations, errors...), which
then go through argparse as usual. Importing and running argparse costs ~15 ms here, about what a warm
``tracer symbolize`` spends on everything else past the interpreter's start (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib
import sys

from tracer import _exit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms) on every start
if TYPE_CHECKING:
    import argparse
    from collections.abc import MutableMapping, Sequence
    from typing import Any, NoReturn

# name -> (module, one-line help). The module is imported only for the chosen subcommand.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("tracer._cmd_run", "run a module's export under the tracer and report how it ended"),
    "symbolize": ("tracer._cmd_symbolize", "turn wasm offsets or a pasted stack trace into Rust frames"),
    "split": ("tracer._cmd_split", "strip a module's debug info into a separate debug file"),
    "serve": ("tracer._cmd_serve", "serve a WAGI worker over HTTP under the tracer"),
    "flush": ("tracer._cmd_flush", "re-send spooled telemetry and report what is pending"),
    "export": ("tracer._cmd_export", "replay telemetry files written by the embedded default"),
}


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse

    class _Parser(argparse.ArgumentParser):
        """argparse, but a usage error is one line and exit status 64 (EX_USAGE)."""

        def error(self, message: str) -> NoReturn:
            self.exit(_exit.USAGE, f"{self.prog}: error: {message}\n")

    return _Parser


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser_class = _parser_class()
    parser = parser_class(prog="tracer", description="Observability agent for WebAssembly workers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    sub.required = True
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if name == chosen:
            module = importlib.import_module(module_name)
            p = sub.add_parser(name, help=help_text, description=help_text)
            module.add_parser(p)
            p.set_defaults(_run=module.run)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _configure_logging() -> None:
    """Our own diagnostics go to stderr as ``tracer: level: event key=value`` lines, never to stdout."""
    import structlog

    def render(_: Any, method: str, event: MutableMapping[str, Any]) -> str:  # a structlog processor
        text = str(event.pop("event", ""))
        extra = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("level", "logger"))
        return f"tracer: {method}: {text}" + (f" ({extra})" if extra else "")

    structlog.configure(
        processors=[structlog.processors.add_log_level, render],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _parse_simple(argv: list[str]) -> argparse.Namespace | None:
    """The subcommand's ``parse_simple`` result as a namespace, when it has one for ``argv`` (see above)."""
    entry = SUBCOMMANDS.get(argv[0]) if argv else None
    if entry is None:
        return None
    module = importlib.import_module(entry[0])
    parse_simple = getattr(module, "parse_simple", None)
    values = parse_simple(argv[1:]) if parse_simple is not None else None
    if values is None:
        return None
    from types import SimpleNamespace

    # duck-typed like argparse.Namespace: the subcommands only read attributes
    return SimpleNamespace(command=argv[0], **values, _run=module.run)  # type: ignore[return-value]


# structlog costs ~0.1 s to import: only the commands that load wasmtime or OpenTelemetry configure it.
_LOGGING_COMMANDS = {"run", "serve", "flush", "export"}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" belongs to the guest, untouched (argparse would bind an empty
    # positional list before it and then refuse what follows).
    rest: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, rest = args_list[:cut], args_list[cut + 1 :]
    args = _parse_simple(args_list)
    if args is None:
        args = build_parser(args_list).parse_args(args_list)
    args.rest = rest
    if args.command in _LOGGING_COMMANDS:
        _configure_logging()
    try:
        status: int = args._run(args)
    except KeyboardInterrupt:
        print("tracer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _exit.OK
    return status


if __name__ == "__main__":
    raise SystemExit(main())
