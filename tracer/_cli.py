"""The ``tracer`` command: one entry point, one module per subcommand, imported only when chosen.

Each subcommand module (``_cmd_<name>.py``) provides ``add_parser(subparsers)`` and ``run(args) -> int``.
Heavy imports (wasmtime, OpenTelemetry, pyelftools) happen inside ``run`` so ``tracer symbolize`` on a warm
cache never pays for them. Errors of ours become one line on stderr and a status from ``_exit``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from tracer import _exit

# name -> (module, one-line help). The module is imported only for the chosen subcommand.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("tracer._cmd_run", "run a module's export under the tracer and report how it ended"),
    "symbolize": ("tracer._cmd_symbolize", "turn wasm offsets or a pasted stack trace into Rust frames"),
    "split": ("tracer._cmd_split", "strip a module's debug info into a separate debug file"),
    "serve": ("tracer._cmd_serve", "serve a WAGI worker over HTTP under the tracer"),
    "flush": ("tracer._cmd_flush", "re-send spooled telemetry and report what is pending"),
    "export": ("tracer._cmd_export", "replay telemetry files written by the embedded default"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 64 (EX_USAGE)."""

    def error(self, message: str) -> NoReturn:
        self.exit(_exit.USAGE, f"{self.prog}: error: {message}\n")


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="tracer", description="Observability agent for WebAssembly workers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
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
