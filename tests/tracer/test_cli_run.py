"""`tracer run` as a user runs it: a subprocess, its output, its exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tracer(*args: str, cache: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "TRACER_CACHE_DIR": str(cache), "OTEL_SDK_DISABLED": "true", "PYTHONPATH": str(ROOT)}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "tracer._cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cache)


def test_json_shape_of_a_panic(cache_dir: Path, fixtures: Path) -> None:
    """--json prints one object with the outcome, panic, frames with symbols, measurements and logs."""
    proc = tracer("run", str(fixtures / "panics-O1.wasm"), "--json", "--", "unwrap_none", cache=cache_dir)
    assert proc.returncode == 134, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outcome"] == "exception" and out["exit_code"] is None
    assert out["trap"]["code"] == "unreachable"
    assert out["panic"] == {"thread": "main", "message": "called `Option::unwrap()` on a `None` value",
                            "file": "panics.rs", "line": 30, "column": 34}
    assert out["frames"] and all(isinstance(f["address"], int) and f["symbols"] for f in out["frames"])
    for sym in out["frames"][0]["symbols"]:
        assert set(sym) >= {"function", "mangled", "file", "line", "column", "inlined"}
    assert out["frames_truncated"] is False
    assert out["fuel_consumed"] > 0 and out["memory_peak_bytes"] >= 65536
    assert isinstance(out["duration_ms"], float) and out["cold_start"] is True
    assert [log["stream"] for log in out["logs"]] == ["stderr", "stderr"] and out["logs_dropped"] == 0


def test_human_report_after_guest_output(cache_dir: Path, fixtures: Path) -> None:
    """The guest's stderr comes first, then the report with the panic and a backtrace naming the user's function."""
    proc = tracer("run", str(fixtures / "panics-O1.wasm"), "--", "expect_err", cache=cache_dir)
    assert proc.returncode == 134
    err = proc.stderr
    assert err.index("panicked at 'port must be a number") < err.index("tracer: the guest trapped")
    assert "backtrace" in err and "parse_port" in err
    assert err.rstrip().splitlines()[-1].startswith("fuel: ")  # nothing after the report
    assert "cannot unwind" not in err


@pytest.mark.parametrize(
    "args, status",
    [
        (["--", "exit3"], 3),
        (["--", "ok"], 0),
        (["--fuel", "100000", "--", "loop"], 152),
        (["--timeout", "0.5", "--", "loop"], 142),
        (["--memory", "16MiB", "--", "membomb"], 136),
        (["--", "log_oob"], 135),
        (["--", "stack_overflow"], 134),
    ],
)
def test_exit_status_per_outcome(cache_dir: Path, fixtures: Path, args: list[str], status: int) -> None:
    """Each outcome has its documented exit status; proc_exit(n) exits n."""
    proc = tracer("run", str(fixtures / "panics-O1.wasm"), *args, cache=cache_dir)
    assert proc.returncode == status, proc.stderr


def test_invoke_with_arguments(cache_dir: Path, fixtures: Path) -> None:
    """--invoke calls an export with numeric arguments and reports its result."""
    proc = tracer("run", str(fixtures / "lib.wasm"), "--invoke", "add", "40", "2", "--json", cache=cache_dir)
    assert proc.returncode == 0 and json.loads(proc.stdout)["results"] == [42]


def test_guest_output_is_sanitized_on_the_terminal(cache_dir: Path, fixtures: Path) -> None:
    """ANSI/OSC sequences from the guest are stripped in human output; invalid UTF-8 shows as U+FFFD."""
    proc = tracer("run", str(fixtures / "panics-O1.wasm"), "--", "badbytes", cache=cache_dir)
    assert proc.returncode == 0
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "bad \ufffd\ufffd utf8" in proc.stdout and "red and" in proc.stdout


@pytest.mark.parametrize(
    "make, args, status, message",
    [
        (None, ["missing.wasm"], 66, "no such file"),
        (b"not wasm at all", ["bad.wasm"], 65, "not a WebAssembly module"),
        ("truncate", ["trunc.wasm"], 65, "invalid module"),
        (None, ["{lib}", "--invoke", "nope"], 64, "does not exist"),
        (None, ["{lib}", "--memory", "lots"], 64, "not a size"),
        (None, ["{lib}", "--fuel", "-3"], 64, "--fuel"),
        (None, ["{lib}", "--timeout", "soon"], 64, "timeout"),
        (None, ["{lib}", "--invoke", "add", "x", "1"], 64, "not a number"),
        (None, ["{lib}", "--bogus"], 64, "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_a_documented_status(
    cache_dir: Path, fixtures: Path, make: object, args: list[str], status: int, message: str
) -> None:
    """Bad files, exports and flag values give one line on stderr, no traceback, and the documented status."""
    if make == "truncate":
        (cache_dir / "trunc.wasm").write_bytes((fixtures / "lib.wasm").read_bytes()[:5000])
    elif isinstance(make, bytes):
        (cache_dir / args[0]).write_bytes(make)
    args = [a.replace("{lib}", str(fixtures / "lib.wasm")) for a in args]
    proc = tracer("run", *args, cache=cache_dir)
    assert proc.returncode == status, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_stripped_module_with_debug_file_reports_like_the_original(cache_dir: Path, fixtures: Path) -> None:
    """The stripped twin run with --debug-file gives the same frames as the module with DWARF."""
    full = tracer("run", str(fixtures / "panics-O1.wasm"), "--json", "--", "index_oob", cache=cache_dir)
    stripped = tracer("run", str(fixtures / "panics-O1.stripped.wasm"), "--json",
                      "--debug-file", str(fixtures / "panics-O1.wasm"), "--", "index_oob", cache=cache_dir)
    assert full.returncode == stripped.returncode == 134, stripped.stderr
    frames = json.loads(stripped.stdout)["frames"]
    # Module offsets differ (llvm-objcopy re-encodes section headers, the code section moves); code is identical.
    assert [f["symbols"] for f in frames] == [f["symbols"] for f in json.loads(full.stdout)["frames"]]
    assert any(s["function"] == "panics::worker::nth" and s["file"].endswith("panics.rs")
               for f in frames for s in f["symbols"])


def test_mismatched_debug_file_is_refused_before_running(cache_dir: Path, fixtures: Path) -> None:
    """A debug file of another build is one line and status 65, and the guest does not run."""
    proc = tracer("run", str(fixtures / "panics-O1.stripped.wasm"), "--debug-file", str(fixtures / "panics-O3.wasm"),
                  "--", "ok", cache=cache_dir)
    assert proc.returncode == 65
    assert "hello from the worker" not in proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_report_hides_panic_machinery_unless_asked(cache_dir: Path, fixtures: Path) -> None:
    """The human backtrace starts at the user's code like Rust's short backtrace; --full-backtrace shows all."""
    short = tracer("run", str(fixtures / "panics-O1.wasm"), "--", "unwrap_none", cache=cache_dir).stderr
    full = tracer("run", str(fixtures / "panics-O1.wasm"), "--full-backtrace", "--", "unwrap_none", cache=cache_dir).stderr
    assert "panics::worker::handle" in short and "panics::main" in short
    assert "rust_panic_with_hook" not in short and "lang_start_internal" not in short
    assert "frame(s) of the panic machinery and runtime start-up hidden" in short
    assert "rust_panic_with_hook" in full and "lang_start_internal" in full and "hidden" not in full
