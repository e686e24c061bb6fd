"""The record of one invocation: plain frozen data, no wasmtime objects.

The interceptor copies everything out of wasmtime at once (``Frame`` fields are ctypes views owned by the trap)
and hands on an ``InvocationRecord``; the collector and the CLI read only these types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from symbolizer._model import RawFrame, SymbolizedFrame


class Outcome(enum.StrEnum):
    """How an invocation ended; the names follow Cloudflare's Tail Worker outcomes."""

    OK = "ok"
    EXCEPTION = "exception"
    EXCEEDED_CPU = "exceededCpu"
    EXCEEDED_WALL_TIME = "exceededWallTime"
    EXCEEDED_MEMORY = "exceededMemory"
    HOST_ERROR = "hostError"


@dataclass(frozen=True, slots=True)
class TrapInfo:
    """A wasm trap: ``code`` is wasmtime's trap code in snake case (``unreachable``, ``out_of_fuel``, ...)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Panic:
    """A Rust panic parsed from the guest's stderr."""

    thread: str | None
    message: str
    file: str | None
    line: int | None
    column: int | None


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One line of guest console output. ``stream`` is ``stdout``, ``stderr`` or ``log`` (the log import)."""

    timestamp_ns: int
    stream: str
    level: str | None
    text: str
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Timings:
    """Durations in milliseconds. ``load_ms`` is compiling or loading the compiled module (0 when warm)."""

    load_ms: float = 0.0
    instantiate_ms: float = 0.0
    execute_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.load_ms + self.instantiate_ms + self.execute_ms


@dataclass(frozen=True, slots=True)
class InvocationRecord:
    """Everything observed about one invocation of one export of one module version."""

    invocation_id: str
    module_name: str
    module_sha256: str
    export: str
    outcome: Outcome
    started_at_ns: int
    exit_code: int | None = None
    trap: TrapInfo | None = None
    panic: Panic | None = None
    host_error: str | None = None
    frames: tuple[RawFrame, ...] = ()
    frames_truncated: bool = False
    stack: tuple[SymbolizedFrame, ...] = ()
    fuel_limit: int | None = None
    fuel_consumed: int | None = None
    memory_limit_bytes: int | None = None
    memory_peak_bytes: int = 0
    timeout_s: float | None = None
    timings: Timings = field(default_factory=Timings)
    cold_start: bool = False
    logs: tuple[LogRecord, ...] = ()
    logs_dropped: int = 0
    results: tuple[object, ...] = ()
    code_id: str | None = None
    build_id: str | None = None
    stdout: bytes = b""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK
