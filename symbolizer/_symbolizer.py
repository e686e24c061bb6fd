"""``Symbolizer``: module offsets in, Rust (or C) frames out, from the module's DWARF or its debug twin.

Cost model (measured on the 6 MB ``panics-O1.wasm``, 126 units, 2 shared cores):

- construction reads the module without its DWARF bytes (and an explicit debug file the same way)
  and loads the cached index when there is one — a few milliseconds, no DWARF parsing;
- without a cached index, lookups parse lazily: unit headers and unit DIEs once (~10 ms), then each
  unit the first time an address falls in it (1–35 ms a unit), results and errors cached; a 16-frame
  panic trace touches 10 units: a whole cold process takes ~190 ms (llvm-symbolizer-14: ~32 ms);
- :meth:`Symbolizer.build_index` parses every unit and writes the index (~0.7 s as a whole process,
  a 620 KB file); later processes load it in about a millisecond. Building it inside a one-shot
  ``tracer symbolize`` would cost more than the lazy answer, so the CLI builds it only on ``--index``
  or hands it to a background process (:meth:`Symbolizer.spawn_index_build`).

Reuse one ``Symbolizer`` per module version: it caches parsed units, symbols and frames.
:meth:`symbolize` never raises; a broken unit degrades to name-section names, then to
``wasm-function[N]``.
"""

from __future__ import annotations

import os
import sys

from ._demangle import demangle as _demangle
from ._errors import (
    DebugInfoError,
    IndexFormatError,
    IndexWriteError,
    SymbolizerError,
    translate,
)
from ._index import (
    Index,
    IndexLevel,
    build_index,
    building_lock,
    default_cache_dir,
    index_location,
    load_index,
    write_index,
)
from ._model import SourceLocation, Symbol, SymbolizedFrame
from ._wasm import WasmModule, code_to_module_offset, module_to_code_offset, parse_module, read_module_file

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the warm path

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from ._dwarf import DwarfInfo
    from ._index import ProgressFn
    from ._model import RawFrame

    StrPath = str | os.PathLike[str]

__all__ = ["Symbolizer", "code_to_module_offset", "module_to_code_offset"]

_FRAME_CACHE_MAX = 65536


class Symbolizer:
    """Symbolizes frames of one module version (identified by ``code_id``). See the module docstring.

    Build it with :meth:`from_path` or :meth:`from_bytes`; both raise only :class:`SymbolizerError`
    subclasses (unreadable or invalid module, a debug file that does not match).
    """

    def __init__(
        self,
        module: WasmModule,
        *,
        debug: WasmModule | None = None,
        symbols_dir: StrPath | None = None,
        cache_dir: StrPath | None = None,
        use_cache: bool = True,
        module_path: StrPath | None = None,
        debug_path: StrPath | None = None,
    ) -> None:
        self._module = module
        self._debug: WasmModule | None = debug if debug is not None else (module if module.has_dwarf else None)
        # paths are kept as str: pathlib costs ~5 ms to import, more than a whole warm lookup
        self._symbols_dir = os.fspath(symbols_dir) if symbols_dir is not None else None
        self._searched = debug is not None or module.has_dwarf
        self._module_path = os.fspath(module_path) if module_path is not None else None
        self._debug_path = os.fspath(debug_path) if debug_path is not None else None
        self._cache_dir: str | None = None
        if use_cache:
            self._cache_dir = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
        self._dwarf: DwarfInfo | None = None
        self._dwarf_error: SymbolizerError | None = None
        self._frames: dict[tuple[int, int | None], SymbolizedFrame] = {}
        self._symbols: dict[tuple[IndexLevel, str | None], Symbol] = {}  # (level, name-section stand-in)
        self.code_id: str = module.code_id
        self.index_state = "none"  # none | loaded | missing | corrupt | built
        self._index: Index | None = None
        if self._cache_dir is not None:
            self._load_cached_index()
        self.build_id: str | None = (
            module.build_id
            or (self._debug.build_id if self._debug is not None else None)
            or (self._index.build_id if self._index is not None else None)
        )

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def from_path(
        cls,
        module_path: StrPath,
        debug_file: StrPath | None = None,
        symbols_dir: StrPath | None = None,
        cache_dir: StrPath | None = None,
        *,
        use_cache: bool = True,
    ) -> Symbolizer:
        """A symbolizer for the module at ``module_path``.

        ``debug_file``: its debug twin (refused with :class:`DebugFileMismatch` if the code differs).
        ``symbols_dir``: a directory searched by code id and build id (``_debugfile.py`` names).
        ``cache_dir``: index cache root (default ``$TRACER_CACHE_DIR`` or ``~/.cache/tracer``).
        """
        path = os.fspath(module_path)
        module = read_module_file(path)
        debug = None
        dpath: str | None = None
        if debug_file is not None:
            from ._debugfile import read_debug_file

            dpath = os.fspath(debug_file)
            debug = read_debug_file(dpath, module)
        elif not module.has_dwarf and module.external_debug_info:
            debug, dpath = _external_debug(path, module)
        return cls(
            module,
            debug=debug,
            symbols_dir=symbols_dir,
            cache_dir=cache_dir,
            use_cache=use_cache,
            module_path=path,
            debug_path=dpath,
        )

    @classmethod
    def from_bytes(
        cls,
        module_bytes: bytes,
        debug_bytes: bytes | None = None,
        cache_dir: StrPath | None = None,
        *,
        use_cache: bool = True,
    ) -> Symbolizer:
        """A symbolizer for in-memory module bytes, optionally with the debug twin's bytes."""
        from ._debugfile import check_twin

        module = parse_module(bytes(module_bytes))
        debug = None
        if debug_bytes is not None:
            debug = parse_module(bytes(debug_bytes))
            check_twin(module, debug)
            if not debug.has_dwarf:
                raise DebugInfoError("the debug bytes have no DWARF (.debug_info) section")
        return cls(
            module,
            debug=debug,
            cache_dir=cache_dir,
            use_cache=use_cache,
        )

    # -- properties --------------------------------------------------------------------------------

    @property
    def module(self) -> WasmModule:
        """The parsed module (sections, names, code start)."""
        return self._module

    @property
    def module_name(self) -> str | None:
        """The module's name from its name section, if any (the section is decoded on first use)."""
        return self._module.module_name

    @property
    def code_start(self) -> int:
        """Module offset of the code section payload: ``code_offset = module_offset - code_start``."""
        return self._module.code_start

    @property
    def has_debug_info(self) -> bool:
        """True when DWARF is available (in the module, a debug twin, or a cached index)."""
        return self._index is not None or self._debug_module() is not None

    @property
    def index_file(self) -> Path | None:
        """Where this module's index is (or would be) cached; None when caching is off."""
        if self._cache_dir is None:
            return None
        from pathlib import Path

        return Path(index_location(self._cache_dir, self.code_id))

    def module_to_code_offset(self, module_offset: int) -> int:
        """This module's code offset for ``module_offset``."""
        return module_to_code_offset(module_offset, self._module.code_start)

    def code_to_module_offset(self, code_offset: int) -> int:
        """This module's module offset for ``code_offset``."""
        return code_to_module_offset(code_offset, self._module.code_start)

    # -- symbolization -----------------------------------------------------------------------------

    def symbolize(self, module_offset: int, func_index: int | None = None) -> SymbolizedFrame:
        """The frame at ``module_offset``: its inline chain, innermost first. Never raises."""
        key = (module_offset, func_index)
        got = self._frames.get(key)
        if got is not None:
            return got
        try:
            frame = self._symbolize(module_offset, func_index)
        except Exception:  # never let one address fail a whole trace
            frame = SymbolizedFrame(module_offset, func_index, ())
        if len(self._frames) >= _FRAME_CACHE_MAX:
            self._frames.clear()
        self._frames[key] = frame
        return frame

    def symbolize_code_offset(self, code_offset: int) -> SymbolizedFrame:
        """Like :meth:`symbolize` for a code offset (llvm-symbolizer's convention)."""
        return self.symbolize(self.code_to_module_offset(code_offset))

    def symbolize_frames(self, frames: Sequence[RawFrame]) -> tuple[SymbolizedFrame, ...]:
        """Symbolize engine frames in order; a frame without an offset keeps its name-section name."""
        out: list[SymbolizedFrame] = []
        for f in frames:
            if f.module_offset is None:
                raw = f.func_name or (self._module.function_name(f.func_index) if f.func_index is not None else None)
                if raw is None and f.func_index is not None:
                    raw = f"wasm-function[{f.func_index}]"
                syms = (self._fallback_symbol(raw),) if raw is not None else ()
                out.append(SymbolizedFrame(-1, f.func_index, syms))
            else:
                out.append(self.symbolize(f.module_offset, f.func_index))
        return tuple(out)

    def _fallback_symbol(self, raw: str) -> Symbol:
        function = _demangle(raw)
        return Symbol(function, raw if function != raw else None, None, False)

    def _raw_name(self, func_index: int | None) -> str | None:
        """The name section's name of a function, ``wasm-function[N]`` without one, None without an index."""
        if func_index is None:
            return None
        name = self._module.function_name(func_index)
        return name if name is not None else f"wasm-function[{func_index}]"

    def _symbolize(self, module_offset: int, func_index: int | None) -> SymbolizedFrame:
        m = self._module
        code_offset = module_offset - m.code_start
        in_code = 0 <= code_offset < m.code_size
        fi = func_index if func_index is not None else (m.function_index_at(code_offset) if in_code else None)
        levels = self.levels(code_offset) if in_code else None
        if not levels:
            raw_name = self._raw_name(fi)
            return SymbolizedFrame(module_offset, fi, (self._fallback_symbol(raw_name),) if raw_name is not None else ())
        cache = self._symbols
        symbols: list[Symbol] = []
        for level in levels:
            name, link, file, line, col, inlined = level
            raw = link or name
            # The name section's name stands in only for a physical function that DWARF leaves unnamed; only
            # then is it part of the cache key (and looked up at all).
            raw_name = self._raw_name(fi) if raw is None and not inlined else None
            key = (level, raw_name)
            sym = cache.get(key)
            if sym is None:
                if raw is None:
                    raw = raw_name if raw_name is not None else "??"
                function = _demangle(raw)
                mangled = link if link else (raw if function != raw else None)
                loc = SourceLocation(file, line, col) if (file is not None or line or col) else None
                sym = Symbol(function, mangled, loc, inlined)
                if len(cache) >= _FRAME_CACHE_MAX:
                    cache.clear()
                cache[key] = sym
            symbols.append(sym)
        return SymbolizedFrame(module_offset, fi, tuple(symbols))

    def levels(self, code_offset: int) -> list[IndexLevel] | None:
        """Raw DWARF levels at a code offset, innermost first: (name, linkage name, file, line, column,
        inlined). None when no debug info covers it or its unit is broken. Never raises."""
        if self._index is not None:
            return self._index.levels(code_offset)
        dw = self._dwarf_info()
        if dw is None:
            return None
        try:
            with translate(DebugInfoError, f"code offset 0x{code_offset:x}"):
                chain = dw.chain(code_offset)
        except SymbolizerError:
            return None
        if not chain:
            return None
        return [(lv.name, lv.linkage_name, lv.file, lv.line, lv.column, lv.inlined) for lv in chain]

    # -- DWARF and the index ---------------------------------------------------------------------

    def _debug_module(self) -> WasmModule | None:
        if self._debug is None and not self._searched:
            self._searched = True
            if self._symbols_dir is not None:
                from ._debugfile import find_debug_file

                self._debug = find_debug_file(self._symbols_dir, self._module)
        return self._debug

    def _dwarf_info(self) -> DwarfInfo | None:
        if self._dwarf is None and self._dwarf_error is None:
            debug = self._debug_module()
            if debug is None:
                return None
            from ._dwarf import SECTIONS, DwarfInfo

            try:
                with translate(DebugInfoError, "reading DWARF"):
                    self._dwarf = DwarfInfo(debug.debug_sections(SECTIONS))
            except SymbolizerError as exc:
                self._dwarf_error = exc
        return self._dwarf

    @property
    def dwarf_error(self) -> SymbolizerError | None:
        """Why DWARF could not be read at all, if it could not (units that fail are not listed)."""
        return self._dwarf_error

    def _load_cached_index(self) -> None:
        if self._cache_dir is None:
            return
        path = index_location(self._cache_dir, self.code_id)
        try:
            self._index = load_index(path, self.code_id)
            self.index_state = "loaded"
        except (FileNotFoundError, NotADirectoryError):
            self.index_state = "missing"
        except (OSError, IndexFormatError):
            # never trust a damaged index: drop it so the next build writes a fresh one
            self.index_state = "corrupt"
            try:
                os.unlink(path)
            except OSError:
                pass

    def build_index(self, progress: ProgressFn | None = None, *, write: bool = True) -> Index:
        """Parse all DWARF, switch lookups to the index, and (``write``) cache it atomically.

        Costly (about a second for a 6 MB Rust module): do it once per module version. ``progress``
        is called with (units done, units total). Raises :class:`DebugInfoError` when there is no
        DWARF to index, :class:`IndexWriteError` when the cache cannot be written (the index built
        is still used by this instance).
        """
        dw = self._dwarf_info()
        if dw is None:
            if self._dwarf_error is not None:
                raise self._dwarf_error
            raise DebugInfoError("the module has no DWARF and no debug file was found (use a debug file)")
        with translate(DebugInfoError, "building the symbol index"):
            index = build_index(dw, self.code_id, self.build_id, progress)
        self._index = index
        self.index_state = "built"
        self._frames.clear()
        self._symbols.clear()
        if write and self._cache_dir is not None:
            path = index_location(self._cache_dir, self.code_id)
            try:
                write_index(path, index)
            except OSError as exc:
                raise IndexWriteError(f"cannot write the symbol index {path}: {exc.strerror or exc}") from exc
        return index

    def spawn_index_build(self) -> bool:
        """Build and cache the index in a detached background process; True when one was started.

        Needs the module (and debug file) on disk and caching on. A lock file next to the index keeps
        concurrent runs from building the same index twice.
        """
        if self._module_path is None or self._cache_dir is None or self._index is not None:
            return False
        if self._debug_module() is None:
            return False
        import time

        path = index_location(self._cache_dir, self.code_id)
        lock = building_lock(path)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            try:
                if time.time() - os.stat(lock).st_mtime < 300:
                    return False
                os.unlink(lock)
            except FileNotFoundError:
                pass
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(fd)
        except OSError:
            return False
        args = [self._module_path, self._cache_dir, lock]
        if self._debug_path is not None:
            args.append(self._debug_path)
        elif self._debug is not None and self._debug is not self._module and self._symbols_dir is not None:
            args += ["", self._symbols_dir]
        import subprocess

        code = "import sys; from symbolizer._symbolizer import _background_build; _background_build(sys.argv[1:])"
        root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        try:
            subprocess.Popen(
                [sys.executable, "-c", code, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        except OSError:
            try:
                os.unlink(lock)
            except OSError:
                pass
            return False
        return True


def _external_debug(path: str, module: WasmModule) -> tuple[WasmModule | None, str | None]:
    """Follow ``external_debug_info`` when it names a local file (no URL fetching); None otherwise."""
    from ._debugfile import read_debug_file

    url = module.external_debug_info or ""
    if "://" in url and not url.startswith("file://"):
        return None, None
    target = url.removeprefix("file://")
    if not os.path.isabs(target):
        target = os.path.join(os.path.dirname(path), target)
    try:
        return read_debug_file(target, module), target
    except SymbolizerError:
        return None, None


def _background_build(argv: list[str]) -> None:
    """Entry point of :meth:`Symbolizer.spawn_index_build`'s child: build, write, drop the lock."""
    module_path, cache_dir, lock = argv[0], argv[1], argv[2]
    debug_file = argv[3] if len(argv) > 3 and argv[3] else None
    symbols_dir = argv[4] if len(argv) > 4 else None
    try:
        s = Symbolizer.from_path(module_path, debug_file=debug_file, symbols_dir=symbols_dir, cache_dir=cache_dir)
        if s.index_state != "loaded":
            s.build_index()
    except SymbolizerError:
        pass
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
