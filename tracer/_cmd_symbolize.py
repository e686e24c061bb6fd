"""``tracer symbolize``: module offsets, or a pasted stack trace, turned into Rust (or C) frames.

``tracer symbolize MODULE ADDRESS...`` prints the inline chain at each address; without ADDRESS it reads a
stack trace (V8/Node/Chrome/Cloudflare, Firefox, wasmtime) on stdin and writes it back with every wasm frame
symbolized. ``--json`` prints ``{"module", "code_id", "build_id", "frames": [...]}`` instead.
``tracer symbolize --index MODULE`` builds the cached index and exits (for build pipelines).

Exit status (tracer/_exit.py): 0; 64 for a bad flag or address; 65 for a module that is not wasm or is
truncated, a debug file that does not match it, or ``--index`` without DWARF; 66 for a file that cannot be
read. A module without usable debug info (e.g. stripped, and no twin in ``--symbols DIR``) still answers with
name-section names, after one warning line on stderr.

Imports stay lazy: on a warm cache this loads the symbolizer's index and nothing heavy (no wasmtime, no
OpenTelemetry, no pyelftools; not even json, pathlib or typing unless asked for; paths stay ``str``). On a
cold cache it answers lazily from DWARF, then starts a background process that writes the index
(``Symbolizer.spawn_index_build``) so the next run is warm.
"""

from __future__ import annotations

import os
import sys

from tracer import _exit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the warm path
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from symbolizer import Symbolizer

_PROG = "tracer symbolize"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("module", metavar="MODULE", help="the .wasm module (stripped or not)")
    p.add_argument(
        "addresses", nargs="*", metavar="ADDRESS",
        help="module offsets (0x-hex or decimal) as V8 and wasmtime print them; none: read a trace on stdin",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--debug-file", metavar="PATH", help="the module's separate debug file")
    where.add_argument(
        "--symbols", metavar="DIR", help="a directory of debug files, found by code id or build id"
    )
    p.add_argument(
        "--code-offsets", action="store_true",
        help="ADDRESSes count from the code section payload (llvm-symbolizer's convention)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--index", action="store_true", help="build the cached index for MODULE and exit")


# What parse_simple accepts: the flags of add_parser, spelled in full. Keep the two in step
# (tests/tracer/test_cli_parse.py compares them).
_SIMPLE_SWITCHES = {"--code-offsets": "code_offsets", "--json": "json", "--index": "index"}
_SIMPLE_VALUES = {"--debug-file": "debug_file", "--symbols": "symbols"}


def parse_simple(argv: list[str]) -> dict[str, object] | None:
    """What :func:`add_parser`'s argparse parser gives for ``argv``, for plain command lines; None otherwise.

    Plain: every option spelled in full as a separate word (``--debug-file PATH``, not ``--debug-file=PATH`` or
    an abbreviation), values not starting with ``-``, at most one of ``--debug-file``/``--symbols`` given
    once, and MODULE with its ADDRESSes in one run of words. Anything else (``-h``, an unknown option, a usage
    error) returns None and goes through argparse, which prints help or the error. This saves the warm
    path argparse's import and set-up (see ``tracer/_cli.py``).
    """
    values: dict[str, object] = {
        "module": None, "addresses": [], "debug_file": None, "symbols": None,
        "code_offsets": False, "json": False, "index": False,
    }
    positionals: list[str] = []
    run_ended = False  # argparse takes the positionals as one run: words after a later option are an error
    given: set[str] = set()
    i = 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("-"):
            if positionals:
                run_ended = True
            if word in _SIMPLE_SWITCHES:
                values[_SIMPLE_SWITCHES[word]] = True
            elif word in _SIMPLE_VALUES and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                if given:
                    return None  # repeated, or both (argparse: last wins, or "not allowed with")
                given.add(word)
                values[_SIMPLE_VALUES[word]] = argv[i + 1]
                i += 1
            else:
                return None
        elif run_ended:
            return None
        else:
            positionals.append(word)
        i += 1
    if not positionals:
        return None  # MODULE is required: argparse says so
    values["module"] = positionals[0]
    values["addresses"] = positionals[1:]
    return values


def parse_address(text: str) -> int:
    """``0x1a2b`` or ``6699`` as an int; ValueError for anything else (signs, empty, other bases)."""
    t = text.strip()
    if t[:2].lower() == "0x":
        digits, base = t[2:], 16
        ok = bool(digits) and all(c in "0123456789abcdefABCDEF" for c in digits)
    else:
        digits, base = t, 10
        ok = t.isascii() and t.isdigit()
    if not ok or len(digits) > 16:
        raise ValueError(f"not an address: {text!r} (use 0x-hex or decimal)")
    return int(digits, base)


def _fail(message: str, status: int) -> int:
    from symbolizer._render import sanitize_terminal

    print(f"{_PROG}: {sanitize_terminal(message)}", file=sys.stderr)
    return status


def _status_for(exc: BaseException) -> int:
    from symbolizer import _errors

    if isinstance(exc, (OSError, _errors.ModuleNotReadable, _errors.DebugFileNotFound)):
        return _exit.NO_INPUT
    if isinstance(exc, _errors.SymbolizerError):
        return _exit.DATA
    return _exit.SOFTWARE


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _cache_dir() -> str:
    """``tracer._config.default_cache_dir`` (the documented rule), spelled with ``os.path``.

    Importing ``tracer._config`` would cost its dataclasses, pathlib and re (~15 ms) on every warm run.
    """
    explicit = os.environ.get("TRACER_CACHE_DIR")
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_CACHE_HOME")
    return os.path.join(xdg if xdg else os.path.join(os.path.expanduser("~"), ".cache"), "tracer")


def _open(args: argparse.Namespace) -> Symbolizer:
    from symbolizer import Symbolizer

    return Symbolizer.from_path(
        args.module, debug_file=args.debug_file, symbols_dir=args.symbols, cache_dir=_cache_dir()
    )


def _warn_without_debug_info(args: argparse.Namespace, s: Symbolizer) -> None:
    """Say once on stderr why answers will be name-section names only (stdout stays clean for pipes)."""
    if s.has_debug_info:
        return
    if args.symbols is not None:
        why = f"no debug file for code id {s.code_id} (build id {s.build_id}) in {args.symbols}"
    else:
        why = "the module has no DWARF (pass --debug-file or --symbols DIR)"
    print(f"{_PROG}: warning: {why}; names from the name section only", file=sys.stderr)


def _document(args: argparse.Namespace, s: Symbolizer, frames: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "module": str(args.module),
        "module_name": s.module_name,
        "code_id": s.code_id,
        "build_id": s.build_id,
        "frames": frames,
    }


def run(args: argparse.Namespace) -> int:
    try:
        addresses = [parse_address(a) for a in args.addresses]
    except ValueError as exc:
        return _fail(str(exc), _exit.USAGE)
    if args.index and addresses:
        return _fail("--index takes no ADDRESS", _exit.USAGE)
    if args.code_offsets and not addresses:
        return _fail("--code-offsets applies to ADDRESSes (traces on stdin hold module offsets)", _exit.USAGE)
    for path, what in ((args.module, "module"), (args.debug_file, "debug file"), (args.symbols, "symbols dir")):
        if path is not None and not os.path.exists(path):
            return _fail(f"{path}: no such {what}", _exit.NO_INPUT)
    if args.symbols is not None and not os.path.isdir(args.symbols):
        return _fail(f"{args.symbols}: not a directory", _exit.NO_INPUT)

    from symbolizer._errors import SymbolizerError

    try:
        s = _open(args)
        if args.index:
            return _build_index(args, s)
        _warn_without_debug_info(args, s)
        if addresses:
            status = _symbolize_addresses(args, s, addresses)
        else:
            status = _symbolize_stdin(args, s)
    except (SymbolizerError, OSError) as exc:
        message = _describe(exc)
        if str(args.module) not in message and (args.debug_file is None or str(args.debug_file) not in message):
            message = f"{args.module}: {message}"
        return _fail(message, _status_for(exc))
    if s.index_state in ("missing", "corrupt"):
        # This run answered lazily; build the index in the background so the next one is warm.
        s.spawn_index_build()
    return status


def _build_index(args: argparse.Namespace, s: Symbolizer) -> int:
    import time

    from symbolizer import terminal_progress

    started = time.perf_counter()
    s.build_index(progress=terminal_progress(label=f"indexing {os.path.basename(args.module)}"))
    elapsed = time.perf_counter() - started
    path = s.index_file
    size = path.stat().st_size if path is not None and path.exists() else 0
    if args.json:
        import json

        doc = _document(args, s, [])
        del doc["frames"]
        doc.update({"index": str(path) if path else None, "index_bytes": size, "seconds": round(elapsed, 3)})
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        print(f"{args.module}: index {path} ({size} bytes) built in {elapsed:.2f} s")
    return _exit.OK


def _symbolize_addresses(args: argparse.Namespace, s: Symbolizer, addresses: list[int]) -> int:
    from symbolizer._render import format_frames, frame_to_json

    offsets = [s.code_to_module_offset(a) for a in addresses] if args.code_offsets else addresses
    frames = [s.symbolize(off) for off in offsets]
    if args.json:
        import json

        out = []
        for frame in frames:
            d = frame_to_json(frame)
            d["code_offset"] = s.module_to_code_offset(frame.address)
            out.append(d)
        sys.stdout.write(json.dumps(_document(args, s, out)) + "\n")
    else:
        sys.stdout.write(format_frames(frames))
    return _exit.OK


def _symbolize_stdin(args: argparse.Namespace, s: Symbolizer) -> int:
    from symbolizer._render import frame_to_json
    from symbolizer._traces import symbolize_trace

    if sys.stdin.isatty():
        print(f"{_PROG}: reading a stack trace on stdin (end it with Ctrl-D)", file=sys.stderr)
    # Bytes in, bytes out: lines we do not touch come back exactly, whatever their encoding.
    text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    rewritten, frames = symbolize_trace(text, s.symbolize_frames)
    if args.json:
        import json

        sys.stdout.write(json.dumps(_document(args, s, [frame_to_json(f) for f in frames])) + "\n")
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(rewritten.encode("utf-8", "surrogateescape"))
        sys.stdout.buffer.flush()
    return _exit.OK
