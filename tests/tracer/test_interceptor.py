"""The interceptor on real guests: every outcome, limits, console capture, frames and measurements."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import wasmtime

from tracer import ExportError, Interceptor, ModuleLoadError, Outcome, TracerConfig
from tracer._interceptor import FRAME_CAP

MiB = 1 << 20


@pytest.fixture(scope="module")
def rust(tmp_path_factory: pytest.TempPathFactory, fixtures: Path) -> Interceptor:
    cache = tmp_path_factory.mktemp("cache")
    cfg = TracerConfig(cache_dir=cache, timeout_s=1.0, memory_limit_bytes=32 * MiB, symbolize=False)
    return Interceptor.from_path(fixtures / "panics-O1.wasm", config=cfg)


def wat(source: str, cache: Path, **kw: object) -> Interceptor:
    cfg = TracerConfig(cache_dir=cache, timeout_s=1.0, symbolize=False)
    return Interceptor(wasmtime.wat2wasm(source), name="wat", config=cfg, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "scenario, message, line",
    [
        ("unwrap_none", "called `Option::unwrap()` on a `None` value", 30),
        ("expect_err", "port must be a number: ParseIntError { kind: InvalidDigit }", 36),
        ("index_oob", "index out of bounds: the len is 3 but the index is 7", 41),
        ("panic", "explicit panic: the worker gave up", 88),
        ("refcell", "already borrowed: BorrowMutError", 96),
        ("div_zero", "attempt to divide by zero", 46),
    ],
)
def test_rust_panics_are_exceptions_with_the_parsed_panic(rust: Interceptor, scenario: str, message: str, line: int) -> None:
    """Each Rust panic ends as outcome exception, trap unreachable, with the panic message and location."""
    rec = rust.invoke(argv=[scenario])
    assert rec.outcome is Outcome.EXCEPTION
    assert rec.trap is not None and rec.trap.code == "unreachable"
    assert rec.panic is not None
    assert (rec.panic.thread, rec.panic.message, rec.panic.file, rec.panic.line) == ("main", message, "panics.rs", line)
    assert rec.frames and rec.frames[0].func_name == "__rust_start_panic"
    assert all(f.module_offset is not None and f.func_index is not None for f in rec.frames)


def test_multiline_panic_message_is_kept_whole(rust: Interceptor) -> None:
    """A panic message spanning lines is parsed in full."""
    rec = rust.invoke(argv=["multiline"])
    assert rec.panic is not None and rec.panic.message == "first line\nsecond line"


def test_stack_overflow_is_its_own_trap_code_and_frames_are_capped(rust: Interceptor) -> None:
    """Deep recursion traps with stack_overflow; wasmtime's 20-frame cap is reported as truncation."""
    rec = rust.invoke(argv=["stack_overflow"])
    assert rec.outcome is Outcome.EXCEPTION
    assert rec.trap is not None and rec.trap.code == "stack_overflow"
    assert len(rec.frames) == FRAME_CAP and rec.frames_truncated


def test_infinite_loop_stopped_by_fuel(rust: Interceptor, tmp_path: Path, fixtures: Path) -> None:
    """An infinite loop with a fuel budget ends as exceededCpu having consumed the whole budget."""
    cfg = TracerConfig(cache_dir=tmp_path, fuel=5_000_000, timeout_s=30, symbolize=False)
    rec = Interceptor.from_path(fixtures / "panics-O1.wasm", config=cfg).invoke(argv=["loop"])
    assert rec.outcome is Outcome.EXCEEDED_CPU
    assert rec.trap is not None and rec.trap.code == "out_of_fuel"
    assert rec.fuel_consumed == 5_000_000 and rec.fuel_limit == 5_000_000


def test_infinite_loop_stopped_by_wall_clock(rust: Interceptor) -> None:
    """Without a fuel budget the epoch deadline stops the loop as exceededWallTime."""
    rec = rust.invoke(argv=["loop"])
    assert rec.outcome is Outcome.EXCEEDED_WALL_TIME
    assert rec.trap is not None and rec.trap.code == "interrupt"
    assert rec.timings.execute_ms >= 1000 * 0.9


def test_memory_bomb_hits_the_cap(rust: Interceptor) -> None:
    """Allocating without end stops at the memory cap as exceededMemory, peak within the cap."""
    rec = rust.invoke(argv=["membomb"])
    assert rec.outcome is Outcome.EXCEEDED_MEMORY
    assert 16 * MiB < rec.memory_peak_bytes <= 32 * MiB
    assert any("memory allocation of" in r.text for r in rec.logs)


def test_proc_exit_is_ok_with_the_exit_code(rust: Interceptor) -> None:
    """proc_exit(3) is outcome ok with exit_code 3, output kept."""
    rec = rust.invoke(argv=["exit3"])
    assert rec.outcome is Outcome.OK and rec.exit_code == 3
    assert [r.text for r in rec.logs] == ["leaving with 3"]


def test_ok_run_captures_both_streams_in_order(rust: Interceptor) -> None:
    """stdout and stderr become log records tagged by stream, with fuel and memory measured."""
    rec = rust.invoke(argv=["ok"])
    assert rec.outcome is Outcome.OK and rec.exit_code is None
    assert [(r.stream, r.text) for r in rec.logs] == [("stdout", "hello from the worker"), ("stderr", "a line on stderr")]
    assert rec.fuel_consumed and rec.fuel_consumed > 0
    assert rec.memory_peak_bytes >= 65536


def test_log_import_records_levels(rust: Interceptor) -> None:
    """The tracer.log import becomes log records with the level named."""
    rec = rust.invoke(argv=["log"])
    assert [(r.stream, r.level, r.text) for r in rec.logs] == [
        ("log", "info", "info via the log import"),
        ("log", "error", "error via the log import"),
    ]


def test_log_import_out_of_bounds_is_a_host_error(rust: Interceptor) -> None:
    """A log pointer outside linear memory is refused as hostError, never read."""
    rec = rust.invoke(argv=["log_oob"])
    assert rec.outcome is Outcome.HOST_ERROR
    assert rec.host_error is not None and "outside linear memory" in rec.host_error


def test_host_import_that_raises_is_a_host_error(tmp_path: Path) -> None:
    """A Python exception in an embedder's host import becomes outcome hostError with its text."""

    def define(linker: wasmtime.Linker) -> None:
        def boom() -> None:
            raise RuntimeError("database unavailable")

        linker.define_func("env", "boom", wasmtime.FuncType([], []), boom)

    icp = wat('(module (import "env" "boom" (func $b)) (func (export "run") call $b))', tmp_path, define=define)
    rec = icp.invoke("run")
    assert rec.outcome is Outcome.HOST_ERROR and rec.host_error == "RuntimeError: database unavailable"


@pytest.mark.parametrize(
    "body, code",
    [
        ("(i32.div_s (i32.const 1) (i32.const 0)) drop", "integer_division_by_zero"),
        ("(i32.load (i32.const 0x7fffffff)) drop", "memory_out_of_bounds"),
        ("unreachable", "unreachable"),
    ],
)
def test_trap_kinds_from_wat(tmp_path: Path, body: str, code: str) -> None:
    """Non-panic traps are outcome exception with wasmtime's trap code and a frame in the export."""
    icp = wat(f'(module (memory 1) (func (export "run") {body}))', tmp_path)
    rec = icp.invoke("run")
    assert rec.outcome is Outcome.EXCEPTION and rec.trap is not None and rec.trap.code == code
    assert rec.panic is None and len(rec.frames) == 1 and rec.frames[0].func_index == 0


def test_c_guest_integer_division_traps(tmp_path: Path, fixtures: Path) -> None:
    """A C guest dividing by zero traps with integer_division_by_zero and no panic."""
    cfg = TracerConfig(cache_dir=tmp_path, symbolize=False)
    rec = Interceptor.from_path(fixtures / "trap-c-O0.wasm", config=cfg).invoke(argv=["div"])
    assert rec.outcome is Outcome.EXCEPTION and rec.trap is not None
    assert rec.trap.code == "integer_division_by_zero" and rec.panic is None


def test_invoke_export_with_arguments(tmp_path: Path, fixtures: Path) -> None:
    """A plain export is called with typed arguments and its result recorded."""
    cfg = TracerConfig(cache_dir=tmp_path, symbolize=False)
    rec = Interceptor.from_path(fixtures / "lib.wasm", config=cfg).invoke("add", [40, 2])
    assert rec.outcome is Outcome.OK and rec.results == (42,)


def test_unknown_export_and_bad_arity_raise_export_error(rust: Interceptor, tmp_path: Path, fixtures: Path) -> None:
    """A missing export or a wrong argument count is the caller's error, before the guest runs."""
    with pytest.raises(ExportError, match="does not exist"):
        rust.invoke("nope")
    cfg = TracerConfig(cache_dir=tmp_path, symbolize=False)
    with pytest.raises(ExportError, match="takes 2 argument"):
        Interceptor.from_path(fixtures / "lib.wasm", config=cfg).invoke("add", [1])


@pytest.mark.parametrize("data, match", [(b"", "not a WebAssembly"), (b"\0asm\x01\0\0\0\x01\xff", "invalid module"), (b"hello", "not a WebAssembly")])
def test_bad_module_bytes_raise_module_load_error(tmp_path: Path, data: bytes, match: str) -> None:
    """Empty, truncated or foreign bytes are refused with ModuleLoadError."""
    with pytest.raises(ModuleLoadError, match=match):
        Interceptor(data, name="bad", config=TracerConfig(cache_dir=tmp_path))


def test_missing_file_is_module_load_error(tmp_path: Path) -> None:
    """A path that does not exist is a ModuleLoadError naming the path."""
    with pytest.raises(ModuleLoadError, match="no such file"):
        Interceptor.from_path(tmp_path / "missing.wasm")


def test_stdin_and_env_reach_the_guest(rust: Interceptor) -> None:
    """stdin bytes and environment variables are visible to the guest (the WAGI echo scenario)."""
    rec = rust.invoke(argv=["echo"], env={"PATH_INFO": "/x"}, stdin=b"body bytes", capture_stdout=True)
    assert rec.outcome is Outcome.OK
    assert rec.stdout == b"content-type: application/octet-stream\nx-path: /x\n\nbody bytes"


def test_cold_start_is_the_first_invocation_only(tmp_path: Path, fixtures: Path) -> None:
    """The first invocation of a module version in a process is a cold start carrying the load time."""
    icp = Interceptor.from_path(fixtures / "lib.wasm", config=TracerConfig(cache_dir=tmp_path, symbolize=False))
    first, second = icp.invoke("add", [1, 2]), icp.invoke("add", [1, 2])
    assert first.cold_start and first.timings.load_ms > 0
    assert not second.cold_start and second.timings.load_ms == 0


def test_a_trapped_invocation_leaves_no_state(rust: Interceptor) -> None:
    """After a trap the next invocation starts from a fresh instance."""
    assert rust.invoke(argv=["membomb"]).outcome is Outcome.EXCEEDED_MEMORY
    rec = rust.invoke(argv=["ok"])
    assert rec.outcome is Outcome.OK and rec.memory_peak_bytes < 4 * MiB


def test_no_tokio_panic_message_at_interpreter_exit(fixtures: Path, tmp_path: Path) -> None:
    """A process that saw a trap exits without wasmtime's 'panic in a function that cannot unwind' message."""
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from pathlib import Path
        from tracer import Interceptor, TracerConfig
        icp = Interceptor.from_path({str(fixtures / 'panics-O1.wasm')!r},
                                    config=TracerConfig(cache_dir=Path({str(tmp_path)!r}), symbolize=False))
        for _ in range(3):
            print(icp.invoke(argv=["unwrap_none"]).outcome)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["exception"] * 3
    assert "cannot unwind" not in proc.stderr and "tokio" not in proc.stderr


def test_stdout_flood_keeps_host_memory_bounded(fixtures: Path, tmp_path: Path) -> None:
    """Two million stdout lines are capped and counted as dropped; the host's RSS grows by far less than the output."""
    script = textwrap.dedent(f"""
        import resource, sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from pathlib import Path
        from tracer import Interceptor, TracerConfig
        icp = Interceptor.from_path({str(fixtures / 'panics-O1.wasm')!r},
                                    config=TracerConfig(cache_dir=Path({str(tmp_path)!r}), symbolize=False))
        icp.invoke(argv=["lines", "10"])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rec = icp.invoke(argv=["flood", "2000000"])
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(rec.outcome, len(rec.logs), rec.logs_dropped, sum(len(r.text) for r in rec.logs), after - before)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    outcome, kept, dropped, kept_bytes, growth_kib = proc.stdout.split()
    assert outcome == "ok"
    assert int(kept) + int(dropped) == 2_000_000
    assert int(kept_bytes) <= 1 * MiB
    # ~34 MB of output went through; the host may grow by the 1 MiB of kept records and their objects only.
    assert int(growth_kib) < 24 * 1024


def test_invalid_utf8_is_replaced_and_escapes_kept_in_the_record(rust: Interceptor) -> None:
    """Invalid UTF-8 becomes U+FFFD; ANSI escapes stay in the record (stripped only when rendered)."""
    rec = rust.invoke(argv=["badbytes"])
    assert rec.logs[0].text == "bad \ufffd\ufffd utf8"
    assert rec.logs[1].text.startswith("\x1b[31mred")


def test_a_4_mib_line_is_truncated_and_marked(rust: Interceptor) -> None:
    """A 4 MiB line is cut at the line cap and marked truncated."""
    rec = rust.invoke(argv=["bigline"])
    assert len(rec.logs) == 1 and rec.logs[0].truncated
    assert len(rec.logs[0].text) == rust.config.max_line_bytes
