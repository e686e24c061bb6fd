"""Turn wasm module offsets into Rust (and C) stack traces from DWARF — pure: bytes in, frames out.

``Symbolizer`` reads a module (and its debug twin), looks addresses up lazily or in a cached index,
and returns :class:`SymbolizedFrame` records; renderers turn them into text or JSON. The package
imports neither wasmtime nor OpenTelemetry. The renderers, the demangler and ``split_module`` load on
first use (PEP 562), so importing the package for its record types or a warm lookup stays cheap.
"""

from ._errors import (
    DebugFileMismatch,
    DebugFileNotFound,
    DebugInfoError,
    IndexFormatError,
    IndexWriteError,
    InvalidModule,
    ModuleNotReadable,
    SymbolizerError,
)
from ._index import terminal_progress
from ._model import RawFrame, SourceLocation, Symbol, SymbolizedFrame
from ._symbolizer import Symbolizer
from ._wasm import WasmModule, code_to_module_offset, module_to_code_offset, parse_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._demangle import demangle
    from ._render import format_frames, format_stacktrace, frame_to_json
    from ._split import split_module

_LAZY = {
    "demangle": "._demangle",
    "format_frames": "._render",
    "format_stacktrace": "._render",
    "frame_to_json": "._render",
    "split_module": "._split",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symbolizer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DebugFileMismatch",
    "DebugFileNotFound",
    "DebugInfoError",
    "IndexFormatError",
    "IndexWriteError",
    "InvalidModule",
    "ModuleNotReadable",
    "RawFrame",
    "SourceLocation",
    "Symbol",
    "SymbolizedFrame",
    "Symbolizer",
    "SymbolizerError",
    "WasmModule",
    "code_to_module_offset",
    "demangle",
    "format_frames",
    "format_stacktrace",
    "frame_to_json",
    "module_to_code_offset",
    "parse_module",
    "split_module",
    "terminal_progress",
]
