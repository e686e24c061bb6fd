"""Renderings of an ``InvocationRecord``: the JSON object of ``tracer run --json`` and the human report.

Data first, rendering second: these are pure functions over records; frames use the symbolizer's renderers so
``tracer run --json`` and ``tracer symbolize --json`` share one frame shape.
"""

from __future__ import annotations

from typing import Any

from symbolizer._model import SymbolizedFrame
from symbolizer._render import format_frames, frame_to_json, sanitize_terminal
from tracer._record import InvocationRecord, Outcome

_HEADLINES = {
    Outcome.EXCEPTION: "the guest trapped",
    Outcome.EXCEEDED_CPU: "the guest ran out of fuel (CPU limit)",
    Outcome.EXCEEDED_WALL_TIME: "the guest exceeded its wall-clock limit",
    Outcome.EXCEEDED_MEMORY: "the guest exceeded its memory limit",
    Outcome.HOST_ERROR: "a host import failed",
}


def record_to_json(rec: InvocationRecord) -> dict[str, Any]:
    """The ``tracer run --json`` object (documented in docs/cli.md)."""
    return {
        "invocation_id": rec.invocation_id,
        "module": rec.module_name,
        "module_sha256": rec.module_sha256,
        "code_id": rec.code_id,
        "build_id": rec.build_id,
        "export": rec.export,
        "outcome": str(rec.outcome),
        "exit_code": rec.exit_code,
        "results": list(rec.results),
        "trap": {"code": rec.trap.code, "message": rec.trap.message} if rec.trap else None,
        "panic": (
            {
                "thread": rec.panic.thread,
                "message": rec.panic.message,
                "file": rec.panic.file,
                "line": rec.panic.line,
                "column": rec.panic.column,
            }
            if rec.panic
            else None
        ),
        "host_error": rec.host_error,
        "frames": [frame_to_json(f) for f in rec.stack],
        "frames_truncated": rec.frames_truncated,
        "fuel_consumed": rec.fuel_consumed,
        "fuel_limit": rec.fuel_limit,
        "memory_peak_bytes": rec.memory_peak_bytes,
        "memory_limit_bytes": rec.memory_limit_bytes,
        "duration_ms": round(rec.timings.total_ms, 3),
        "timings_ms": {
            "load": round(rec.timings.load_ms, 3),
            "instantiate": round(rec.timings.instantiate_ms, 3),
            "execute": round(rec.timings.execute_ms, 3),
        },
        "cold_start": rec.cold_start,
        "logs": [
            {"stream": r.stream, "level": r.level, "text": r.text, "truncated": r.truncated, "time_ns": r.timestamp_ns}
            for r in rec.logs
        ],
        "logs_dropped": rec.logs_dropped,
    }


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def short_backtrace(frames: tuple[SymbolizedFrame, ...]) -> tuple[tuple[SymbolizedFrame, ...], int]:
    """Rust's short-backtrace convention: keep the frames between ``__rust_end_short_backtrace`` (the panic
    machinery above it) and ``__rust_begin_short_backtrace`` (the runtime's start-up below it), as std's own
    ``RUST_BACKTRACE=1`` printer does. Returns the kept frames and how many were hidden; a stack without the
    markers is kept whole."""

    def has(frame: SymbolizedFrame, marker: str) -> bool:
        return any(marker in sym.function for sym in frame.symbols)

    start = next((i + 1 for i, f in enumerate(frames) if has(f, "__rust_end_short_backtrace")), 0)
    end = next((i for i, f in enumerate(frames) if i >= start and has(f, "__rust_begin_short_backtrace")), len(frames))
    kept = frames[start:end] or frames
    return kept, len(frames) - len(kept)


def format_report(rec: InvocationRecord, *, full_backtrace: bool = False) -> str:
    """The human report printed after the guest's output. Guest-controlled text is made terminal-safe."""
    lines: list[str] = []
    if rec.outcome is Outcome.OK:
        status = f"exit code {rec.exit_code}" if rec.exit_code is not None else "ok"
        if rec.results:
            status += f", returned {', '.join(map(str, rec.results))}"
        lines.append(f"tracer: {rec.export} finished: {status}")
    else:
        trap = f", trap: {rec.trap.code}" if rec.trap else ""
        lines.append(f"tracer: {_HEADLINES[rec.outcome]} (outcome: {rec.outcome}{trap})")
        if rec.panic:
            where = f"{rec.panic.file}:{rec.panic.line}:{rec.panic.column}" if rec.panic.file else "?"
            thread = f" in thread '{sanitize_terminal(rec.panic.thread)}'" if rec.panic.thread else ""
            lines.append(f"  panicked at {sanitize_terminal(where)}{thread}:")
            lines.extend("    " + sanitize_terminal(ln) for ln in rec.panic.message.splitlines() or [""])
        elif rec.trap:
            lines.append(f"  {sanitize_terminal(rec.trap.message)}")
        if rec.host_error:
            lines.append(f"  {sanitize_terminal(rec.host_error)}")
        if rec.stack:
            frames, hidden = (rec.stack, 0) if full_backtrace else short_backtrace(rec.stack)
            lines.append("")
            lines.append("backtrace (innermost first):")
            lines.append(sanitize_terminal(format_frames(frames)).rstrip("\n"))
            if hidden:
                lines.append(f"  note: {hidden} frame(s) of the panic machinery and runtime start-up hidden; "
                             "--full-backtrace shows them")
            if rec.frames_truncated:
                lines.append("  ... more frames not shown: wasmtime reports at most 20")
    fuel = f"{rec.fuel_consumed:,}" if rec.fuel_consumed is not None else "-"
    if rec.fuel_limit is not None:
        fuel += f" of {rec.fuel_limit:,}"
    limit = f" of {_size(rec.memory_limit_bytes)}" if rec.memory_limit_bytes else ""
    cold = ", cold start" if rec.cold_start else ""
    lines.append("")
    lines.append(
        f"fuel: {fuel}   memory peak: {_size(rec.memory_peak_bytes)}{limit}   "
        f"duration: {rec.timings.total_ms:.1f} ms{cold}"
    )
    if rec.logs_dropped:
        lines.append(f"console: {rec.logs_dropped} line(s) dropped past the per-invocation cap")
    return "\n".join(lines) + "\n"
