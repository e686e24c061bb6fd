"""``tracer split MODULE -o STRIPPED --debug-out DEBUG``: the production workflow's first step.

Writes STRIPPED (the module without its ``.debug_*`` sections: ship this) and DEBUG (the debug twin: keep it).
When DEBUG is an existing directory, the twin is written there as ``<code_id>.debug.wasm``: the name
``tracer symbolize --symbols DIR`` looks for first, so a symbols directory fills itself one build at a time. Both carry the same ``build_id`` custom
section (tool-conventions BuildId.md); one is stamped when the module has none. The code section is kept byte
for byte, so offsets in traces from the stripped module are offsets in the original.

Exit status: 0; 64 when an output would overwrite MODULE or both outputs are one path; 65 for a module that
is not wasm; 66 for a module that cannot be read or an output that cannot be written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tracer import _exit

_PROG = "tracer split"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("module", type=Path, metavar="MODULE", help="the .wasm module built with debug info")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="STRIPPED", help="the module to ship")
    p.add_argument(
        "--debug-out", type=Path, required=True, metavar="DEBUG",
        help="the debug twin to keep (a directory: written there as <code_id>.debug.wasm)",
    )


def _fail(message: str, status: int) -> int:
    from symbolizer._render import sanitize_terminal

    print(f"{_PROG}: {sanitize_terminal(message)}", file=sys.stderr)
    return status


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader never sees half; readable by all, like a build output."""
    from symbolizer._atomic import write_atomic

    write_atomic(path, data, mode=0o644)


def run(args: argparse.Namespace) -> int:
    src = args.module
    debug_dir = args.debug_out if args.debug_out.is_dir() else None
    try:
        same = {os.path.realpath(src), os.path.realpath(args.output), os.path.realpath(args.debug_out)}
    except OSError as exc:
        return _fail(str(exc), _exit.USAGE)
    if len(same) != 3:
        return _fail("MODULE, -o and --debug-out must be three different paths", _exit.USAGE)
    try:
        data = src.read_bytes()
    except OSError as exc:
        return _fail(f"{src}: {exc.strerror or exc}", _exit.NO_INPUT)

    from symbolizer._errors import SymbolizerError
    from symbolizer._split import split_module
    from symbolizer._wasm import parse_module

    try:
        stripped, debug, build_id = split_module(data)
        code_id = parse_module(stripped).code_id
    except SymbolizerError as exc:
        return _fail(f"{src}: {exc}", _exit.DATA)
    debug_out = args.debug_out if debug_dir is None else debug_dir / f"{code_id}.debug.wasm"
    for path, blob in ((args.output, stripped), (debug_out, debug)):
        try:
            _write_atomic(path, blob)
        except OSError as exc:
            return _fail(f"{path}: {exc.strerror or exc}", _exit.NO_INPUT)
    print(
        f"{args.output}: {len(stripped)} bytes (ship this); {debug_out}: {len(debug)} bytes (keep this); "
        f"code_id {code_id}, build_id {build_id}"
    )
    return _exit.OK
