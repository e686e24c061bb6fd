"""Renderers over the frame model: JSON-ready dicts, a human backtrace, OTel's ``exception.stacktrace`` text.

Data first, rendering second (structlog's tracebacks module): the model in ``_model.py`` holds no text, and
each function here is one way of showing it. Names and paths come from the module being symbolized, i.e. from
whoever built it, so human output goes through :func:`sanitize_terminal` — a hostile name must not be able to
move the cursor, retitle the terminal or reorder text on screen.
"""

from __future__ import annotations

from ._model import SourceLocation, Symbol, SymbolizedFrame

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the warm path
if TYPE_CHECKING:
    import re
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "format_frames",
    "format_location",
    "format_stacktrace",
    "frame_to_json",
    "sanitize_terminal",
    "symbol_to_json",
]

# ECMA-48 escape sequences: CSI (ESC [ … final byte), OSC/DCS/SOS/PM/APC strings (ended by BEL or ST),
# and the two-byte ESC sequences; the 8-bit C1 forms of CSI (U+009B) and of the string introducers too.
# An unterminated string ends at the end of its line, so it cannot swallow the rest of a trace.
_ESCAPES_PATTERN = (
    r"""
      (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?       # CSI … final
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) [^\n]*? (?:\x07|\x1b\\|\x9c|(?=\n)|\Z)  # OSC, DCS, … BEL/ST
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                               # other ESC sequences (ESC c, ESC ( B, …)
    """
)
# What is left that a terminal acts on: C0 controls but tab and newline, DEL, C1 controls, and the Unicode
# bidirectional overrides and isolates that reorder how a line displays ("Trojan Source", CVE-2021-42574).
_CONTROLS_PATTERN = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
# Compiled on first use: printable text (nearly all of it) never needs them.
_compiled: tuple[re.Pattern[str], re.Pattern[str]] | None = None


def sanitize_terminal(text: str) -> str:
    """Remove terminal escape sequences and control characters from ``text``; keep tabs and newlines.

    Escape sequences vanish whole (``"\\x1b[31mred\\x1b[0m"`` → ``"red"``); any other control character,
    carriage return included, is replaced by U+FFFD so that its presence stays visible.
    """
    global _compiled
    if text.isprintable() or text.replace("\n", "").replace("\t", "").isprintable():
        return text  # nothing to remove (the usual case: skip the regular expressions)
    if _compiled is None:
        import re

        _compiled = (re.compile(_ESCAPES_PATTERN, re.VERBOSE), re.compile(_CONTROLS_PATTERN))
    escapes, controls = _compiled
    return controls.sub("\ufffd", escapes.sub("", text))


def format_location(location: SourceLocation | None) -> str | None:
    """``file:line:column`` with the parts that are known, or None when the file is unknown."""
    if location is None or location.file is None:
        return None
    text = location.file
    if location.line is not None:
        text += f":{location.line}"
        if location.column is not None:
            text += f":{location.column}"
    return text


def symbol_to_json(symbol: Symbol) -> dict[str, Any]:
    """One symbol as a JSON-ready dict: function, mangled, file, line, column, inlined."""
    loc = symbol.location
    return {
        "function": symbol.function,
        "mangled": symbol.mangled,
        "file": loc.file if loc else None,
        "line": loc.line if loc else None,
        "column": loc.column if loc else None,
        "inlined": symbol.inlined,
    }


def frame_to_json(frame: SymbolizedFrame) -> dict[str, Any]:
    """One frame as a JSON-ready dict: address (module offset), func_index, symbols innermost first."""
    return {
        "address": frame.address,
        "func_index": frame.func_index,
        "symbols": [symbol_to_json(s) for s in frame.symbols],
    }


def _fallback_name(frame: SymbolizedFrame) -> str:
    if frame.func_index is not None:
        return f"wasm-function[{frame.func_index}]"
    return "<unknown>"


def format_frames(frames: Sequence[SymbolizedFrame], *, sanitize: bool = True) -> str:
    """A human backtrace: one line per symbol, its location on the next, inlined calls tagged.

    ::

          0: 0x29a5 - core::option::Option<T>::unwrap [inlined]
                at /rustc/library/core/src/option.rs:775:21
              panics::worker::handle
                at src/main.rs:30:17
          1: 0xd3e - panics::main
                at src/main.rs:78:28

    The frame number and module offset head each wasm frame; an inline chain reads innermost first, the
    last entry being the function the code physically belongs to. Ends with a newline unless empty.
    """
    lines: list[str] = []
    width = len(str(max(len(frames) - 1, 0)))
    for n, frame in enumerate(frames):
        head = f"  {n:>{width}}: {frame.address:#x} - "
        pad = " " * len(head)
        symbols = frame.symbols or (Symbol(_fallback_name(frame), None, None, False),)
        for i, symbol in enumerate(symbols):
            tag = " [inlined]" if symbol.inlined else ""
            lines.append(f"{head if i == 0 else pad}{symbol.function}{tag}")
            where = format_location(symbol.location)
            if where is not None:
                lines.append(f"{pad}  at {where}")
    text = "\n".join(lines) + ("\n" if lines else "")
    return sanitize_terminal(text) if sanitize else text


def format_stacktrace(frames: Sequence[SymbolizedFrame]) -> str:
    """Text for OTel's ``exception.stacktrace``: one ``    at function (file:line:column)`` line per symbol.

    Inlined symbols end with `` [inlined]``; a symbol without a known file shows the wasm position instead
    (``wasm-function[N]:0xOFF``), like V8 does. Not sanitized: it is data for a backend, not a terminal.
    """
    lines: list[str] = []
    for frame in frames:
        symbols = frame.symbols or (Symbol(_fallback_name(frame), None, None, False),)
        for symbol in symbols:
            where = format_location(symbol.location)
            if where is None:
                func = f"wasm-function[{frame.func_index}]:" if frame.func_index is not None else ""
                where = f"{func}{frame.address:#x}"
            tag = " [inlined]" if symbol.inlined else ""
            lines.append(f"    at {symbol.function} ({where}){tag}")
    return "\n".join(lines)
