"""The interceptor: wraps wasmtime so that one call of a guest export becomes one ``InvocationRecord``.

Cost model: building an ``Interceptor`` is costly (hash, compile or verified cache load, linking); reuse it for
every invocation of that module version. ``invoke`` is cheap: a fresh Store and instance per call (nothing a
trapped guest did survives it), limits set on the Store, console through pipes (see ``_console``).

Limits (each exhausted limit is its own outcome):
- fuel: the engine always consumes fuel so that ``fuel_consumed`` is measured; the budget is the configured
  fuel or, when none is set, effectively unlimited.
- memory: ``Store.set_limits(memory_size=...)`` makes ``memory.grow`` fail past the cap; a Rust guest then aborts
  through ``unreachable`` after printing ``memory allocation of N bytes failed``.
- wall clock: epoch interruption; one ticker thread per process advances every engine's epoch each
  ``TICK_S`` and a Store's deadline is the timeout in ticks.

Like wasmtime-py itself, an interceptor is not thread-safe: one invocation at a time per interceptor.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import structlog
import wasmtime

from symbolizer._model import RawFrame, Symbol, SymbolizedFrame
from tracer._cache import ModuleCache, cache_key
from tracer._config import TracerConfig
from tracer._console import Console, Pipes
from tracer._errors import ExportError, InstantiationError, ModuleLoadError
from tracer._panic import allocation_failure, parse_panic
from tracer._record import InvocationRecord, LogRecord, Outcome, Timings, TrapInfo

_ffi: Any
try:  # the C API's lookup of one export by name (see _export)
    from wasmtime import _ffi
    from wasmtime._extern import wrap_extern as _wrap_extern
except ImportError:  # pragma: no cover - bindings moved; the public API still works
    _ffi = None

log = structlog.get_logger("tracer")

TICK_S = 0.01
FRAME_CAP = 20  # wasmtime's default backtrace cap; not settable from Python
_UNLIMITED_FUEL = (1 << 63) - 1
_WASM_MAGIC = b"\0asm"
LOG_LEVELS = {0: "debug", 1: "info", 2: "warn", 3: "error"}
_ENGINE_SETTINGS = "fuel=1;epoch=1"


class _Ticker:
    """Advances the epoch of every live engine every TICK_S, from one daemon thread per process.

    The thread is (re)started on first use in each process, so it survives ``fork`` (threads do not).
    """

    def __init__(self) -> None:
        self._engines: "weakref.WeakSet[wasmtime.Engine]" = weakref.WeakSet()
        self._pid = 0
        self._lock = threading.Lock()

    def add(self, engine: wasmtime.Engine) -> None:
        with self._lock:
            self._engines.add(engine)
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="tracer-epoch", daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            time.sleep(TICK_S)
            for engine in list(self._engines):
                engine.increment_epoch()


_ticker = _Ticker()
_engines: dict[str, wasmtime.Engine] = {}


def shared_engine() -> wasmtime.Engine:
    """One engine per process for our settings: fuel metering and epoch interruption on."""
    engine = _engines.get(_ENGINE_SETTINGS)
    if engine is None:
        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        cfg.epoch_interruption = True
        engine = _engines[_ENGINE_SETTINGS] = wasmtime.Engine(cfg)
    _ticker.add(engine)
    return engine


@functools.cache
def _wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


class HostImportError(Exception):
    """Raised inside a host import; reaches the caller of the export and becomes outcome ``hostError``."""


class Interceptor:
    """One module version, compiled and linked once, invoked many times under limits. Build once, reuse."""

    def __init__(
        self,
        module_bytes: bytes,
        *,
        name: str,
        config: TracerConfig | None = None,
        define: Callable[[wasmtime.Linker], None] | None = None,
        path: Path | None = None,
        debug_file: Path | None = None,
        symbols_dir: Path | None = None,
    ) -> None:
        self.config = config or TracerConfig.from_env()
        self.module_name = name
        self.path = path
        self.debug_file = debug_file
        self.symbols_dir = symbols_dir
        self.module_bytes = module_bytes
        if module_bytes[:4] != _WASM_MAGIC:
            raise ModuleLoadError(f"{name}: not a WebAssembly module (no \\0asm header)")
        self.module_sha256 = hashlib.sha256(module_bytes).hexdigest()
        self.engine = shared_engine()
        t0 = time.perf_counter()
        self.module, self.compiled = self._load_module()
        # A module that imports no WASI gets no WASI context and no console pipes (its only output is the log
        # import): the cheapest per-invocation path for plain exports.
        self.uses_wasi = any(imp.module.startswith("wasi") for imp in self.module.imports)
        self._pipes = Pipes() if self.uses_wasi else None
        self.load_ms = (time.perf_counter() - t0) * 1000
        self._used = False
        self._no_params: set[str] = set()
        self._current: Console | None = None  # the running invocation's console, for the log import
        self._symbolizer: Any = None
        self._symbolizer_failed = False
        self.code_id, self.build_id = self._identify()
        self.linker = wasmtime.Linker(self.engine)
        self.linker.allow_shadowing = True
        self.linker.define_wasi()
        self._define_log_import()
        if define is not None:
            define(self.linker)
        try:
            self.pre = self.linker.instantiate_pre(self.module)
        except wasmtime.WasmtimeError as exc:
            raise InstantiationError(f"{name}: {_first_line(exc)}") from exc

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        config: TracerConfig | None = None,
        define: Callable[[wasmtime.Linker], None] | None = None,
        *,
        debug_file: str | os.PathLike[str] | None = None,
        symbols_dir: str | os.PathLike[str] | None = None,
    ) -> "Interceptor":
        """Build from a file; ``debug_file`` or ``symbols_dir`` name the debug twin of a stripped module."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise ModuleLoadError(f"{p}: no such file") from None
        except IsADirectoryError:
            raise ModuleLoadError(f"{p}: is a directory, not a module") from None
        except OSError as exc:
            raise ModuleLoadError(f"{p}: cannot read ({exc.strerror})") from exc
        return cls(
            data, name=p.stem, config=config, define=define, path=p,
            debug_file=Path(debug_file) if debug_file is not None else None,
            symbols_dir=Path(symbols_dir) if symbols_dir is not None else None,
        )

    # -- building -----------------------------------------------------------------------------------------------

    def _load_module(self) -> tuple[wasmtime.Module, bool]:
        cache = ModuleCache(self.config.cache_dir)
        key = cache_key(self.module_sha256, _wasmtime_version(), _ENGINE_SETTINGS)
        compiled = cache.load(key)
        if compiled is not None:
            try:
                # From the file: wasmtime maps it (~0.2 ms) instead of copying the bytes through ctypes (~0.5 ms).
                return wasmtime.Module.deserialize_file(self.engine, str(cache.path(key))), False
            except wasmtime.WasmtimeError as exc:
                log.warning("cached module rejected by wasmtime, recompiling", error=_first_line(exc))
        try:
            module = wasmtime.Module(self.engine, self.module_bytes)
        except wasmtime.WasmtimeError as exc:
            raise ModuleLoadError(f"{self.module_name}: invalid module: {_first_line(exc)}") from exc
        cache.store(key, module.serialize())
        return module, True

    def _identify(self) -> tuple[str | None, str | None]:
        try:
            from symbolizer import _wasm

            return _wasm.identify(self.module_bytes)
        except Exception:  # identification is best effort; the symbolizer reports its own errors
            return None, None

    def _define_log_import(self) -> None:
        ty = wasmtime.FuncType([wasmtime.ValType.i32()] * 3, [])

        def host_log(caller: wasmtime.Caller, level: int, ptr: int, length: int) -> None:
            console = self._current
            if console is None:
                return
            # Pointer and length are u32 in wasm32: check against the memory's bounds before reading.
            ptr &= 0xFFFFFFFF
            length &= 0xFFFFFFFF
            memory = caller.get("memory")
            if not isinstance(memory, wasmtime.Memory):
                raise HostImportError("tracer.log: the module exports no memory")
            size = memory.data_len(caller)
            if ptr + length > size:
                raise HostImportError(
                    f"tracer.log: range {ptr:#x}+{length} is outside linear memory of {size} bytes"
                )
            data = memory.read(caller, ptr, ptr + length) if length else b""
            console.add("log", LOG_LEVELS.get(level, f"level{level}"), bytes(data))

        self.linker.define_func("tracer", "log", ty, host_log, access_caller=True)

    # -- invoking -----------------------------------------------------------------------------------------------

    def invoke(
        self,
        export: str = "_start",
        args: Sequence[int | float] = (),
        *,
        argv: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        stdin: bytes = b"",
        dirs: Sequence[tuple[str, str]] = (),
        capture_stdout: bool = False,
        on_log: Callable[[LogRecord], None] | None = None,
        invocation_id: str | None = None,
    ) -> InvocationRecord:
        """Run ``export`` once in a fresh Store. Guest misbehaviour is the record's outcome, never raised.

        Raises ``ExportError`` for a missing export or arguments that do not fit its type (checked before the
        guest runs a single instruction of the export), ``TracerError`` subclasses for host-side failures.
        """
        cfg = self.config
        started = time.time_ns()
        cold = not self._used  # the first invocation of this module version in this process
        load_ms = self.load_ms if not self._used else 0.0
        self._used = True
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=cfg.memory_limit_bytes)
        budget = cfg.fuel if cfg.fuel is not None else _UNLIMITED_FUEL
        store.set_fuel(budget)
        store.set_epoch_deadline(max(1, math.ceil(cfg.timeout_s / TICK_S)))
        console = Console(
            max_line_bytes=cfg.max_line_bytes,
            max_log_bytes=cfg.max_log_bytes,
            pipes=self._pipes,
            capture_stdout=capture_stdout,
            max_stdout_bytes=cfg.max_stdout_bytes,
            on_log=on_log,
        )
        stdin_fd = -1
        if self.uses_wasi:
            wasi = wasmtime.WasiConfig()
            wasi.argv = [self.module_name, *argv]
            if env:
                wasi.env = list(env.items())
            assert self._pipes is not None
            wasi.stdout_file = self._pipes.stdout_path
            wasi.stderr_file = self._pipes.stderr_path
            if stdin:
                stdin_fd = os.memfd_create("tracer-stdin", os.MFD_CLOEXEC)
                os.write(stdin_fd, stdin)
                os.lseek(stdin_fd, 0, os.SEEK_SET)
                wasi.stdin_file = f"/proc/self/fd/{stdin_fd}"
            for host, guest in dirs:
                wasi.preopen_dir(host, guest)
            store.set_wasi(wasi)
        self._current = console

        outcome = Outcome.OK
        exit_code: int | None = None
        trap: TrapInfo | None = None
        frames: tuple[RawFrame, ...] = ()
        host_error: str | None = None
        results: tuple[object, ...] = ()
        memory_peak = 0
        fuel_left: int | None = None
        t_inst = t_exec = time.perf_counter()
        instance = None
        try:
            try:
                instance = self.pre.instantiate(store)
                t_exec = time.perf_counter()
                func, call_args = self._resolve(instance, store, export, args)
                raw = func(store, *call_args)
                results = tuple(raw) if isinstance(raw, (list, tuple)) else (() if raw is None else (raw,))
            except wasmtime.ExitTrap as exc:
                exit_code = exc.code
            except wasmtime.Trap as exc:
                frames = tuple(
                    RawFrame(f.func_index, f.func_name, f.module_offset, f.func_offset) for f in exc.frames
                )
                code = exc.trap_code
                trap = TrapInfo(code.name.lower() if code is not None else "unknown", _trap_reason(exc))
                outcome = {
                    "out_of_fuel": Outcome.EXCEEDED_CPU,
                    "interrupt": Outcome.EXCEEDED_WALL_TIME,
                }.get(trap.code, Outcome.EXCEPTION)
            except ExportError:
                raise
            except wasmtime.WasmtimeError as exc:
                # An error without a trap code (e.g. a WASI host failure): the guest did not finish.
                trap = TrapInfo("error", _first_line(exc))
                outcome = Outcome.EXCEPTION
            except Exception as exc:  # a host import raised: reaches us as that exception
                host_error = f"{type(exc).__name__}: {exc}"
                outcome = Outcome.HOST_ERROR
            t_end = time.perf_counter()
            if instance is not None:
                memory = _export(instance, store, "memory")
                if isinstance(memory, wasmtime.Memory):
                    memory_peak = memory.data_len(store)
            try:
                fuel_left = store.get_fuel()
            except wasmtime.WasmtimeError:
                fuel_left = None
        finally:
            self._current = None
            store.close()
            console.close()
            if stdin_fd >= 0:
                os.close(stdin_fd)
        panic = None
        if outcome is not Outcome.OK:  # only a failure reads stderr back
            stderr_text = console.stderr_tail.decode("utf-8", "replace")
            panic = parse_panic(stderr_text)
            if outcome is Outcome.EXCEPTION and (
                allocation_failure(stderr_text) is not None
                or trap is not None and trap.code == "allocation_too_large"
            ):
                outcome = Outcome.EXCEEDED_MEMORY
        stack = self._symbolize(frames) if frames else ()
        return InvocationRecord(
            invocation_id=invocation_id or os.urandom(16).hex(),
            module_name=self.module_name,
            module_sha256=self.module_sha256,
            export=export,
            outcome=outcome,
            started_at_ns=started,
            exit_code=exit_code,
            trap=trap,
            panic=panic,
            host_error=host_error,
            frames=frames,
            frames_truncated=len(frames) >= FRAME_CAP,
            stack=stack,
            fuel_limit=cfg.fuel,
            fuel_consumed=budget - fuel_left if fuel_left is not None else None,
            memory_limit_bytes=cfg.memory_limit_bytes,
            memory_peak_bytes=memory_peak,
            timeout_s=cfg.timeout_s,
            timings=Timings(load_ms, (t_exec - t_inst) * 1000, (t_end - t_exec) * 1000),
            cold_start=cold,
            logs=tuple(console.records),
            logs_dropped=console.dropped,
            results=results,
            code_id=self.code_id,
            build_id=self.build_id,
            stdout=bytes(console.stdout),
        )

    def _resolve(
        self, instance: wasmtime.Instance, store: wasmtime.Store, export: str, args: Sequence[int | float]
    ) -> tuple[wasmtime.Func, list[int | float]]:
        func = _export(instance, store, export)
        if not isinstance(func, wasmtime.Func):
            names = [n for n, e in instance.exports(store).items() if isinstance(e, wasmtime.Func)]
            what = "is not a function" if func is not None else "does not exist"
            raise ExportError(
                f"export {export!r} {what}; functions exported: {', '.join(sorted(names)) or 'none'}"
            )
        if not args:
            if export not in self._no_params:
                if func.type(store).params:
                    raise ExportError(f"export {export!r} takes {len(func.type(store).params)} argument(s), got 0")
                self._no_params.add(export)
            return func, []
        params = func.type(store).params
        if len(params) != len(args):
            raise ExportError(f"export {export!r} takes {len(params)} argument(s), got {len(args)}")
        converted: list[int | float] = []
        for ty, value in zip(params, args):
            kind = str(ty)
            if kind in ("i32", "i64"):
                if not isinstance(value, int):
                    raise ExportError(f"export {export!r}: {value!r} is not an integer for {kind}")
                bits = 32 if kind == "i32" else 64
                if not -(1 << (bits - 1)) <= value < (1 << bits):
                    raise ExportError(f"export {export!r}: {value} does not fit {kind}")
                if value >= 1 << (bits - 1):
                    value -= 1 << bits
            elif kind in ("f32", "f64"):
                value = float(value)
            else:
                raise ExportError(f"export {export!r}: parameters of type {kind} are not supported")
            converted.append(value)
        return func, converted

    def make_symbolizer(self) -> Any:
        """The symbolizer for this module version (its debug twin when one was named). Cheap with a cached
        index; otherwise the first lookups parse only the DWARF units they need."""
        from symbolizer import Symbolizer

        if self.path is not None and self.path.exists():
            return Symbolizer.from_path(
                self.path, debug_file=self.debug_file, symbols_dir=self.symbols_dir, cache_dir=self.config.cache_dir
            )
        debug = self.debug_file.read_bytes() if self.debug_file is not None else None
        return Symbolizer.from_bytes(self.module_bytes, debug, cache_dir=self.config.cache_dir)

    def prepare_symbolizer(self) -> None:
        """Build the symbolizer now, so a debug file that does not match is an error before the guest runs
        (raises ``symbolizer.SymbolizerError``) rather than a warning after it."""
        self._symbolizer = self.make_symbolizer()

    def _symbolize(self, frames: tuple[RawFrame, ...]) -> tuple[SymbolizedFrame, ...]:
        if self.config.symbolize and not self._symbolizer_failed:
            try:
                if self._symbolizer is None:
                    self._symbolizer = self.make_symbolizer()
                return tuple(self._symbolizer.symbolize_frames(frames))
            except Exception as exc:  # the report falls back to name-section names
                self._symbolizer_failed = True
                log.warning("symbolization failed, using name-section names", error=str(exc))
        return fallback_stack(frames)


def _export(instance: wasmtime.Instance, store: wasmtime.Store, name: str) -> Any:
    """One export by name. ``Instance.exports`` wraps every export of the instance (~0.1 ms per call for a
    Rust module); the C API looks up one. Falls back to the public API if the bindings change."""
    if _ffi is not None:
        try:
            raw = name.encode()
            item = _ffi.wasmtime_extern_t()
            found = _ffi.wasmtime_instance_export_get(
                store._context(), ctypes.byref(instance._instance), raw, len(raw), ctypes.byref(item)
            )
            return _wrap_extern(item) if found else None
        except AttributeError:
            pass
    return instance.exports(store).get(name)


def fallback_stack(frames: Sequence[RawFrame]) -> tuple[SymbolizedFrame, ...]:
    """Frames named from the name section (demangled) or ``wasm-function[N]`` when there is no DWARF."""
    from symbolizer import demangle

    out = []
    for f in frames:
        if f.func_name:
            sym = Symbol(demangle(f.func_name), f.func_name, None, False)
        else:
            sym = Symbol(f"wasm-function[{f.func_index}]", None, None, False)
        out.append(SymbolizedFrame(f.module_offset or 0, f.func_index, (sym,)))
    return tuple(out)


def _trap_reason(exc: BaseException) -> str:
    """The ``wasm trap: ...`` line of wasmtime's message (the rest is a backtrace we keep as frames)."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    for line in reversed(lines):
        if line.startswith("wasm trap: "):
            return line[len("wasm trap: "):]
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
