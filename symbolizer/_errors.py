"""The symbolizer's exception family, and the one boundary where foreign exceptions are translated.

::

    SymbolizerError                 every error this package raises
    ├── ModuleNotReadable           the module file cannot be read (missing, permissions)
    ├── InvalidModule               the bytes are not a well-formed wasm module (or truncated)
    ├── DebugInfoError              DWARF present but malformed, or beyond a safety cap
    ├── DebugFileMismatch           a separate debug file whose code section differs from the module's
    ├── DebugFileNotFound           ``debug_file=`` / ``symbols_dir=`` gave nothing usable
    ├── IndexFormatError            a cached index that is corrupt, truncated or of another version
    └── IndexWriteError             the index was built but could not be written to the cache

``Symbolizer.symbolize`` never raises for a bad address: a broken compilation unit degrades to
name-section names. These errors reach callers only from constructors (bad module, wrong debug file)
and from explicit index builds.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the warm path
if TYPE_CHECKING:
    from types import TracebackType


class SymbolizerError(Exception):
    """Base class of every error raised by the symbolizer."""


class ModuleNotReadable(SymbolizerError):
    """The module file cannot be read."""


class InvalidModule(SymbolizerError):
    """The bytes are not a well-formed WebAssembly module."""


class DebugInfoError(SymbolizerError):
    """DWARF data is malformed, or parsing it hit a safety cap (depth, size, iteration count)."""


class DebugFileMismatch(SymbolizerError):
    """A separate debug file does not describe this module: its code section differs."""


class DebugFileNotFound(SymbolizerError):
    """No usable debug file was found where the caller said to look."""


class IndexFormatError(SymbolizerError):
    """A cached index file is corrupt, truncated, or written by another format version."""


class IndexWriteError(SymbolizerError):
    """The index was built (and is in use) but could not be written to the cache directory."""


# What malformed input makes our parsers (and pyelftools, used by the tests as a reference) raise.
_FOREIGN: tuple[type[BaseException], ...] = (
    IndexError,
    KeyError,
    ValueError,  # includes UnicodeDecodeError
    AssertionError,
    struct.error,
    RecursionError,
    ZeroDivisionError,
    OverflowError,
    TypeError,
    MemoryError,
    EOFError,
)


def _foreign_errors() -> tuple[type[BaseException], ...]:
    try:  # pyelftools is optional at run time: only its exceptions are named here, lazily.
        import sys

        mod = sys.modules.get("elftools.common.exceptions")
        if mod is not None:
            return _FOREIGN + (mod.ELFError,)
    except Exception:  # pragma: no cover - defensive
        pass
    return _FOREIGN


class translate:  # noqa: N801 - used like a function: `with translate(...)`
    """Run a parsing step; turn any foreign exception into ``error`` with ``what`` as context::

        with translate(DebugInfoError, "reading DWARF"):
            ...

    This is the package's single translation boundary (``raise ... from exc`` keeps the cause). A class
    rather than a ``@contextmanager`` generator: contextlib is not on the warm path's import list.
    """

    __slots__ = ("error", "what")

    def __init__(self, error: type[SymbolizerError], what: str) -> None:
        self.error = error
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, SymbolizerError):
            return  # nothing raised, or already ours: let it through unchanged
        if isinstance(exc, _foreign_errors()):
            raise self.error(f"{self.what}: {type(exc).__name__}: {exc}") from exc
