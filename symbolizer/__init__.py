"""Turn wasm module offsets into Rust (and C) stack traces from DWARF — pure: bytes in, frames out.

``Symbolizer`` reads a module (and its debug twin), looks addresses up lazily or in a cached index,
and returns :class:`SymbolizedFrame` records; renderers turn them into text or JSON. The package
imports neither wasmtime nor OpenTelemetry. Every name loads on first use (PEP 562), so importing the
package, or one of its submodules, for its record types or a warm lookup pays only for what it uses.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the warm path
if TYPE_CHECKING:
    from ._demangle import demangle
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
    from ._render import format_frames, format_stacktrace, frame_to_json
    from ._split import split_module
    from ._symbolizer import Symbolizer
    from ._wasm import WasmModule, code_to_module_offset, module_to_code_offset, parse_module

# public name -> the private module that defines it
_LAZY = {
    "DebugFileMismatch": "._errors",
    "DebugFileNotFound": "._errors",
    "DebugInfoError": "._errors",
    "IndexFormatError": "._errors",
    "IndexWriteError": "._errors",
    "InvalidModule": "._errors",
    "ModuleNotReadable": "._errors",
    "RawFrame": "._model",
    "SourceLocation": "._model",
    "Symbol": "._model",
    "SymbolizedFrame": "._model",
    "Symbolizer": "._symbolizer",
    "SymbolizerError": "._errors",
    "WasmModule": "._wasm",
    "code_to_module_offset": "._wasm",
    "demangle": "._demangle",
    "format_frames": "._render",
    "format_stacktrace": "._render",
    "frame_to_json": "._render",
    "module_to_code_offset": "._wasm",
    "parse_module": "._wasm",
    "split_module": "._split",
    "terminal_progress": "._index",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        # AttributeError (not ImportError) lets ``from symbolizer import _index`` fall back to the submodule.
        raise AttributeError(f"module 'symbolizer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
