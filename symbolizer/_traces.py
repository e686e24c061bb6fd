"""Find the wasm frames in pasted stack-trace text, and write the text back with those frames symbolized.

Formats recognised, one frame per line (offsets are module offsets in all of them):

* V8 — Node, Chrome, Cloudflare Workers (workerd), Deno::

      at NAME (wasm://wasm/HASH:wasm-function[N]:0xOFF)
      at wasm://wasm/HASH:wasm-function[N]:0xOFF
      at NAME (wasm-function[N]:0xOFF)        (our own OTel exception.stacktrace of an unsymbolized frame)
      at wasm-function[N]:0xOFF               (older Chrome)

* Firefox (SpiderMonkey)::

      NAME@URL:wasm-function[N]:0xOFF
      wasm-function[N]:0xOFF

* wasmtime (its CLI and ``Trap.message``), plain or with ``WASMTIME_BACKTRACE_DETAILS=1`` detail lines,
  which are replaced along with their frame::

         N: 0xOFF - NAME
         N: 0xOFF - <unknown>!<wasm function N>

Each wasm frame line becomes one line per symbol of its inline chain (innermost first), in the same style and
indentation; every other line is kept byte for byte. Parsing (:func:`find_frames`) is apart from rendering
(:func:`rewrite_trace`) so a caller can symbolize the frames any way it likes, or just emit JSON.
"""

from __future__ import annotations

import re

from ._model import FrozenRecord, RawFrame, SymbolizedFrame
from ._render import format_location, sanitize_terminal

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the CLI's path
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Literal

    Style = Literal["v8", "firefox", "wasmtime"]

__all__ = ["TraceFrame", "find_frames", "rewrite_trace", "symbolize_trace"]

_OFF = r"(?P<off>0x[0-9a-fA-F]+)"
_IDX = r"wasm-function\[(?P<idx>\d+)\]"
# V8: the name is greedy so that a name holding " (" (C++ signatures) still leaves the last " (" to the URL.
_V8 = re.compile(
    r"^(?P<indent>\s*)at (?:"
    r"(?P<name>.*) \((?:(?P<url>[^\s()]*):)?wasm-function\[(?P<idx>\d+)\]:(?P<off>0x[0-9a-fA-F]+)\)"
    r"|(?:(?P<url2>[^\s()]*):)?wasm-function\[(?P<idx2>\d+)\]:(?P<off2>0x[0-9a-fA-F]+)"
    r")\s*$"
)
_FIREFOX = re.compile(rf"^(?P<indent>\s*)(?:(?P<name>[^@]*)@(?P<url>.*?):)?{_IDX}:{_OFF}\s*$")
_WASMTIME = re.compile(r"^(?P<prefix>(?P<indent>\s*)(?P<num>\d+):\s+(?P<off>0x[0-9a-fA-F]+) - )(?P<name>.*?)\s*$")
_WASMTIME_DETAIL = re.compile(r"^\s+(?:at \S.*|- \S.*)$")
_WASMTIME_INDEX = re.compile(r"<wasm function (\d+)>$")


class TraceFrame(FrozenRecord):
    """A wasm frame found in trace text: where it is, how it was written, and what it says.

    ``first_line``/``end_line`` delimit the input lines it covers (more than one for wasmtime detail lines);
    ``location`` is the text V8 or Firefox had in place of a source location (``URL:wasm-function[N]:0xOFF``),
    kept for symbols whose location is unknown; ``prefix`` is everything before the name (wasmtime).
    """

    __slots__ = ("first_line", "end_line", "style", "indent", "prefix", "location", "raw")
    __match_args__ = ("first_line", "end_line", "style", "indent", "prefix", "location", "raw")

    first_line: int
    end_line: int
    style: Style
    indent: str
    prefix: str
    location: str
    raw: RawFrame

    def __init__(
        self, first_line: int, end_line: int, style: Style, indent: str, prefix: str, location: str, raw: RawFrame
    ) -> None:
        _set = object.__setattr__
        _set(self, "first_line", first_line)
        _set(self, "end_line", end_line)
        _set(self, "style", style)
        _set(self, "indent", indent)
        _set(self, "prefix", prefix)
        _set(self, "location", location)
        _set(self, "raw", raw)


def _parse_line(line: str) -> tuple[Style, str, str, str, RawFrame] | None:
    name: str | None
    if "wasm-function[" in line:
        m = _V8.match(line)
        if m:
            if m["off"] is not None:
                name, url, idx, off = m["name"], m["url"], m["idx"], m["off"]
            else:
                name, url, idx, off = None, m["url2"], m["idx2"], m["off2"]
            where = f"{url}:wasm-function[{idx}]:{off}" if url is not None else f"wasm-function[{idx}]:{off}"
            return "v8", m["indent"], "", where, RawFrame(int(idx), name, int(off, 16), None)
        m = _FIREFOX.match(line)
        if m:
            url = f"{m['url']}:" if m["url"] is not None else ""
            where = f"{url}wasm-function[{m['idx']}]:{m['off']}"
            name = m["name"] or None
            return "firefox", m["indent"], "", where, RawFrame(int(m["idx"]), name, int(m["off"], 16), None)
    m = _WASMTIME.match(line)
    if m:
        full = m["name"]
        func_index: int | None = None
        name = full.split("!", 1)[1] if "!" in full else full
        im = _WASMTIME_INDEX.search(full)
        if im:
            func_index, name = int(im[1]), None
        return "wasmtime", m["indent"], m["prefix"], "", RawFrame(func_index, name or None, int(m["off"], 16), None)
    return None


def find_frames(lines: Sequence[str]) -> list[TraceFrame]:
    """Every wasm frame in ``lines`` (without their line endings), in input order."""
    frames: list[TraceFrame] = []
    i = 0
    while i < len(lines):
        parsed = _parse_line(lines[i])
        if parsed is None:
            i += 1
            continue
        style, indent, prefix, where, raw = parsed
        end = i + 1
        if style == "wasmtime":  # detail lines of WASMTIME_BACKTRACE_DETAILS=1 belong to the frame above
            while end < len(lines) and _WASMTIME_DETAIL.match(lines[end]) and _parse_line(lines[end]) is None:
                end += 1
        frames.append(TraceFrame(i, end, style, indent, prefix, where, raw))
        i = end
    return frames


def _render(frame: TraceFrame, symbolized: SymbolizedFrame) -> list[str]:
    symbols = symbolized.symbols
    out: list[str] = []
    if frame.style == "wasmtime":
        # wasmtime's own detailed layout: the inline chain under one number, each with its "at" line.
        pad_name = " " * max(len(frame.prefix) - 2, 0) + "- "
        pad_at = " " * (len(frame.prefix) + 2)
        if not symbols:
            return [frame.prefix + (frame.raw.func_name or f"<wasm function {frame.raw.func_index}>")]
        for i, sym in enumerate(symbols):
            out.append((frame.prefix if i == 0 else pad_name) + sym.function)
            where = format_location(sym.location)
            if where is not None:
                out.append(f"{pad_at}at {where}")
        return out
    if not symbols:
        name = frame.raw.func_name or f"wasm-function[{frame.raw.func_index}]"
        symbols_view: list[tuple[str, str, bool]] = [(name, frame.location, False)]
    else:
        symbols_view = [
            (sym.function, format_location(sym.location) or frame.location, sym.inlined) for sym in symbols
        ]
    for function, where, inlined in symbols_view:
        tag = " [inlined]" if inlined else ""
        if frame.style == "v8":
            out.append(f"{frame.indent}at {function} ({where}){tag}")
        else:
            out.append(f"{frame.indent}{function}@{where}{tag}")
    return out


def rewrite_trace(text: str, frames: Sequence[TraceFrame], symbolized: Sequence[SymbolizedFrame]) -> str:
    """``text`` with each of ``frames`` replaced by the lines of its symbolized twin (same order, same length).

    Lines that are not wasm frames are kept as they were, line endings included; the new lines are passed
    through :func:`sanitize_terminal` since their names and paths come from the module.
    """
    if len(frames) != len(symbolized):
        raise ValueError("one symbolized frame per trace frame is needed")
    lines = text.splitlines(keepends=True)
    # New lines end like the text's lines do (CRLF stays CRLF); the last line keeps its lack of a newline.
    first_ending = next((ln[len(ln.rstrip("\r\n")) :] for ln in lines if ln.endswith(("\n", "\r"))), "\n")
    out: list[str] = []
    pos = 0
    for frame, sym in zip(frames, symbolized):
        out.extend(lines[pos : frame.first_line])
        last = lines[frame.end_line - 1]
        ending = last[len(last.rstrip("\r\n")) :]
        rendered = [sanitize_terminal(x) for x in _render(frame, sym)]
        out.append((ending or first_ending).join(rendered) + ending)
        pos = frame.end_line
    out.extend(lines[pos:])
    return "".join(out)


def symbolize_trace(
    text: str, symbolize_frames: Callable[[Sequence[RawFrame]], Sequence[SymbolizedFrame]]
) -> tuple[str, tuple[SymbolizedFrame, ...]]:
    """Find the wasm frames of ``text``, symbolize them in one call, and return (rewritten text, frames)."""
    lines = [line.rstrip("\r\n") for line in text.splitlines(keepends=True)]
    frames = find_frames(lines)
    symbolized = tuple(symbolize_frames([f.raw for f in frames]))
    return rewrite_trace(text, frames, symbolized), symbolized
