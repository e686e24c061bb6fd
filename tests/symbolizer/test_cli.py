"""`tracer symbolize` and `tracer split`, run for real as `python -m tracer._cli` in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import _symbolizer_oracles as oracles
from symbolizer import Symbolizer
from symbolizer._traces import symbolize_trace
from symbolizer._wasm import parse_module
from tracer import _exit

FIXTURES = oracles.FIXTURES
O1 = FIXTURES / "panics-O1.wasm"
STRIPPED = FIXTURES / "panics-O1.stripped.wasm"


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """A private, empty cache for each test."""
    return {"TRACER_CACHE_DIR": str(tmp_path / "cache")}


def _json(proc: subprocess.CompletedProcess[bytes]) -> dict:  # type: ignore[type-arg]
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def test_addresses_print_the_inline_chain(env: dict[str, str]) -> None:
    """Module offsets print each frame's inline chain with source locations, innermost first."""
    proc = oracles.run_cli("symbolize", str(O1), "0x29a5", "3390", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == (
        "  0: 0x29a5 - core::option::Option<T>::unwrap [inlined]\n"
        "                at /usr/src/rustc-1.63.0/library/core/src/option.rs:775:21\n"
        "              panics::worker::handle\n"
        "                at /work/main/tests/fixtures/panics.rs:30:17\n"
        "  1: 0xd3e - panics::main\n"
        "               at /work/main/tests/fixtures/panics.rs:78:28\n"
    )
    assert proc.stderr == b""


def test_json_has_the_documented_shape(env: dict[str, str]) -> None:
    """--json prints module, code_id, build_id and frames in input order, symbols with the six keys."""
    doc = _json(oracles.run_cli("symbolize", str(O1), "0xd3e", "0x29a5", "--json", env=env))
    assert doc["module"] == str(O1)
    assert doc["code_id"] == parse_module(O1.read_bytes()).code_id
    assert doc["build_id"] is None  # the fixture has no build_id section
    assert [f["address"] for f in doc["frames"]] == [0xD3E, 0x29A5]
    for frame in doc["frames"]:
        assert set(frame) >= {"address", "func_index", "symbols"}
        for sym in frame["symbols"]:
            assert set(sym) == {"function", "mangled", "file", "line", "column", "inlined"}
        assert frame["symbols"][-1]["inlined"] is False  # the last symbol is the physical function
    assert [s["function"] for s in doc["frames"][1]["symbols"]] == [
        "core::option::Option<T>::unwrap", "panics::worker::handle",
    ]
    assert doc["frames"][0]["func_index"] == 25


def test_code_offsets_flag_uses_llvm_symbolizers_convention(env: dict[str, str]) -> None:
    """--code-offsets counts from the code section payload: the same frame as its module offset."""
    code_start = parse_module(O1.read_bytes()).code_start
    by_module = _json(oracles.run_cli("symbolize", str(O1), "0x29a5", "--json", env=env))
    by_code = _json(oracles.run_cli("symbolize", str(O1), hex(0x29A5 - code_start), "--code-offsets", "--json", env=env))
    assert by_code["frames"] == by_module["frames"]
    assert by_code["frames"][0]["code_offset"] == 0x29A5 - code_start


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_stdin_v8_trace_round_trips(env: dict[str, str]) -> None:
    """A Node trace on stdin comes back rewritten exactly as the library rewrites it; --json lists its frames."""
    trace = oracles.node_trace(str(O1), "expect_err")
    proc = oracles.run_cli("symbolize", str(O1), stdin=trace.encode(), env=env)
    assert proc.returncode == 0, proc.stderr
    expected, frames = symbolize_trace(trace, Symbolizer.from_path(O1, use_cache=False).symbolize_frames)
    assert proc.stdout.decode() == expected
    assert "    at panics::worker::parse_port (/work/main/tests/fixtures/panics.rs:36:9)" in expected
    doc = _json(oracles.run_cli("symbolize", str(O1), "--json", stdin=trace.encode(), env=env))
    assert len(doc["frames"]) == len(frames) > 10


def test_stdin_keeps_undecodable_bytes(env: dict[str, str]) -> None:
    """Bytes that are not UTF-8 in non-frame lines come back unchanged."""
    trace = b"boom \xff\xfe\n    at wasm://wasm/1:wasm-function[25]:0xd3e\ntail \x1b[31m\n"
    proc = oracles.run_cli("symbolize", str(O1), stdin=trace, env=env)
    assert proc.returncode == 0
    assert proc.stdout == (
        b"boom \xff\xfe\n    at panics::main (/work/main/tests/fixtures/panics.rs:78:28)\ntail \x1b[31m\n"
    )


def _imports_of_a_run(env: dict[str, str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tracer._cli", "symbolize", str(O1), "0x29a5"],
        capture_output=True, cwd=oracles.ROOT, env={**os.environ, **env}, timeout=60,
    )
    assert proc.returncode == 0
    assert b"panics::worker::handle" in proc.stdout
    return {line.split("|")[-1].strip() for line in proc.stderr.decode().splitlines() if "|" in line}


HEAVY = {"wasmtime", "opentelemetry", "elftools"}


def test_index_then_warm_run_imports_nothing_heavy(tmp_path: Path) -> None:
    """Neither a cold nor a warm run imports wasmtime, OpenTelemetry or pyelftools; a warm one not even DWARF code."""
    cold_env = {"TRACER_CACHE_DIR": str(tmp_path / "cold")}
    cold = _imports_of_a_run(cold_env)
    assert "symbolizer._dwarf" in cold  # the cold path did parse DWARF (with our reader)
    assert {m for m in cold if m.split(".")[0] in HEAVY} == set()

    env = {"TRACER_CACHE_DIR": str(tmp_path / "warm")}
    doc = _json(oracles.run_cli("symbolize", "--index", str(O1), "--json", env=env))
    index = Path(doc["index"])
    assert index.is_file() and doc["index_bytes"] == index.stat().st_size > 0
    assert index.parent.parent == Path(env["TRACER_CACHE_DIR"])
    warm = _imports_of_a_run(env)
    assert "symbolizer._index" in warm
    assert {m for m in warm if m.split(".")[0] in HEAVY} == set()
    assert "symbolizer._dwarf" not in warm  # a warm lookup loads only the index


def test_index_shows_no_progress_when_not_a_terminal(env: dict[str, str]) -> None:
    """Without a terminal, --index prints one summary line and no progress redraws."""
    proc = oracles.run_cli("symbolize", "--index", str(O1), env=env)
    assert proc.returncode == 0
    assert b"\r" not in proc.stderr and proc.stderr == b""
    assert proc.stdout.decode().startswith(f"{O1}: index ")


def test_split_then_symbolize_the_stripped_module_with_its_twin(tmp_path: Path, env: dict[str, str]) -> None:
    """`tracer split` makes a stripped module and a debug twin that symbolize exactly like the original."""
    stripped, debug = tmp_path / "w.wasm", tmp_path / "w.debug.wasm"
    proc = oracles.run_cli("split", str(O1), "-o", str(stripped), "--debug-out", str(debug), env=env)
    assert proc.returncode == 0, proc.stderr
    s_mod, d_mod, o_mod = (parse_module(p.read_bytes()) for p in (stripped, debug, O1))
    assert not s_mod.has_dwarf and d_mod.has_dwarf
    assert s_mod.code_id == d_mod.code_id == o_mod.code_id
    assert s_mod.build_id == d_mod.build_id is not None  # stamped, the same on both
    assert stripped.stat().st_size < O1.stat().st_size // 20

    addresses = ["0x29a5", "0xd3e", "0xb530", "0x30bd"]
    original = _json(oracles.run_cli("symbolize", str(O1), *addresses, "--json", env=env))
    twin = _json(oracles.run_cli("symbolize", str(stripped), *addresses, "--debug-file", str(debug), "--json", env=env))
    assert twin["frames"] == original["frames"]
    assert twin["build_id"] == s_mod.build_id


def test_split_into_a_symbols_directory(tmp_path: Path, env: dict[str, str]) -> None:
    """`--debug-out DIR` files the twin under its code id, where `--symbols DIR` finds it."""
    symbols = tmp_path / "symbols"
    symbols.mkdir()
    stripped = tmp_path / "w.wasm"
    proc = oracles.run_cli("split", str(O1), "-o", str(stripped), "--debug-out", str(symbols), env=env)
    assert proc.returncode == 0, proc.stderr
    code_id = parse_module(O1.read_bytes()).code_id
    assert [p.name for p in symbols.iterdir()] == [f"{code_id}.debug.wasm"]
    original = _json(oracles.run_cli("symbolize", str(O1), "0x29a5", "--json", env=env))
    found = _json(oracles.run_cli("symbolize", str(stripped), "0x29a5", "--symbols", str(symbols), "--json", env=env))
    assert found["frames"] == original["frames"]


def test_stripped_module_without_a_twin_falls_back_to_names(tmp_path: Path, env: dict[str, str]) -> None:
    """Without debug info the answer is the name-section name, after one warning line on stderr."""
    proc = oracles.run_cli("symbolize", str(STRIPPED), "0x29a5", "--symbols", str(tmp_path), env=env)
    assert proc.returncode == 0
    assert proc.stdout.decode() == "  0: 0x29a5 - panics::worker::handle\n"
    assert proc.stderr.decode().count("\n") == 1 and "warning: no debug file" in proc.stderr.decode()


def _error(proc: subprocess.CompletedProcess[bytes], status: int, words: str) -> None:
    err = proc.stderr.decode()
    assert proc.returncode == status, err
    assert err.count("\n") == 1 and err.startswith("tracer "), err
    assert "Traceback" not in err and words in err
    assert proc.stdout == b""


def test_bad_input_is_one_line_and_a_documented_status(tmp_path: Path, env: dict[str, str]) -> None:
    """Missing files, non-wasm, truncated modules, bad addresses and mismatched twins: one line, _exit status."""
    text = tmp_path / "notes.txt"
    text.write_text("not a module\n")
    truncated = tmp_path / "cut.wasm"
    truncated.write_bytes(O1.read_bytes()[:5000])
    cli = oracles.run_cli
    _error(cli("symbolize", str(tmp_path / "nope.wasm"), "0x1", env=env), _exit.NO_INPUT, "no such module")
    _error(cli("symbolize", str(text), "0x1", env=env), _exit.DATA, "notes.txt")
    _error(cli("symbolize", str(truncated), "0x1", env=env), _exit.DATA, "")
    for bad in ["xyz", "-1", "0x", "0xZZ", "1.5"]:
        _error(cli("symbolize", str(O1), bad, env=env), _exit.USAGE, "not an address")
    _error(
        cli("symbolize", str(STRIPPED), "0x1", "--debug-file", str(FIXTURES / "panics-O3.wasm"), env=env),
        _exit.DATA, "does not match",
    )
    _error(cli("symbolize", str(STRIPPED), "0x1", "--debug-file", str(tmp_path / "gone"), env=env), _exit.NO_INPUT, "gone")
    _error(cli("symbolize", "--index", str(STRIPPED), env=env), _exit.DATA, "DWARF")
    _error(cli("symbolize", str(O1), "--debug-file", "a", "--symbols", "b", env=env), _exit.USAGE, "not allowed")
    _error(cli("symbolize", str(O1), "--code-offsets", env=env), _exit.USAGE, "--code-offsets")
    _error(cli("symbolize", "--index", str(O1), "0x10", env=env), _exit.USAGE, "--index")
    _error(cli("split", str(text), "-o", str(tmp_path / "a"), "--debug-out", str(tmp_path / "b")), _exit.DATA, "")
    _error(cli("split", str(tmp_path / "nope"), "-o", str(tmp_path / "a"), "--debug-out", str(tmp_path / "b")),
           _exit.NO_INPUT, "nope")
    _error(cli("split", str(O1), "-o", str(O1), "--debug-out", str(tmp_path / "b")), _exit.USAGE, "different")


def test_raw_exception_stacktrace_from_the_collector_round_trips(tmp_path: Path) -> None:
    """The collector's unsymbolized exception.stacktrace (`at NAME (wasm-function[N]:0xOFF)`) pasted into
    `tracer symbolize` comes back with the Rust frames."""
    from collector._mapping import raw_stacktrace
    from symbolizer import RawFrame

    text = "Error: boom\n" + raw_stacktrace(
        [RawFrame(41, "_ZN6panics6worker6handle17h4f85183a7c65d26fE", 0x29A5, None)]) + "\n"
    env = {**os.environ, "TRACER_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(oracles.ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tracer._cli", "symbolize", str(FIXTURES / "panics-O1.wasm")],
                          input=text, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Error: boom\n")
    assert "at panics::worker::handle (" in proc.stdout and "panics.rs:30:17)" in proc.stdout
