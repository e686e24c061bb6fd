"""The frame data model shared by the tracer, the symbolizer and the collector.

Small frozen records, every field optional where debug info can be partial (structlog's tracebacks module).
A symbolized frame is a tuple of symbols, innermost inlined call first, the physical function last
(gimli's addr2line model). Renderers live in ``_render.py``; nothing here formats text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One wasm frame as the engine reports it: offsets only, names from the name section at best.

    ``module_offset`` counts from the start of the module file (what V8 and wasmtime print);
    ``func_offset`` from the start of the function body.
    """

    func_index: int | None
    func_name: str | None
    module_offset: int | None
    func_offset: int | None


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A position in source as the compiler recorded it; any part may be unknown."""

    file: str | None
    line: int | None
    column: int | None


@dataclass(frozen=True, slots=True)
class Symbol:
    """One function at one address: readable name, the mangled name kept alongside, where it is."""

    function: str
    mangled: str | None
    location: SourceLocation | None
    inlined: bool


@dataclass(frozen=True, slots=True)
class SymbolizedFrame:
    """One wasm frame: its module offset and the inline chain at it, innermost first."""

    address: int
    func_index: int | None
    symbols: tuple[Symbol, ...]
