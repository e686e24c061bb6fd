"""Stack-trace text: wasm frames found in real V8 and wasmtime traces, and the text rewritten around them."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

import _symbolizer_oracles as oracles
from symbolizer._model import RawFrame, SourceLocation, Symbol, SymbolizedFrame
from symbolizer._traces import find_frames, rewrite_trace, symbolize_trace

FIXTURES = oracles.FIXTURES
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


def _wasm_frames(frames: tuple[tuple[int | None, str | None, int], ...]) -> list[tuple[int | None, int]]:
    return [(index, offset) for index, _name, offset in frames]


@needs_node
@pytest.mark.parametrize("module", oracles.RUST_WASI)
@pytest.mark.parametrize("scenario", ["unwrap_none", "index_oob", "div_zero"])
def test_v8_frames_are_the_frames_wasmtime_reports(module: str, scenario: str) -> None:
    """Every wasm frame of Node's trace is found, with the function index and module offset wasmtime reports."""
    trace = oracles.node_trace(str(FIXTURES / module), scenario)
    assert trace.startswith("RuntimeError: unreachable")
    found = find_frames(trace.splitlines())
    assert all(f.style == "v8" for f in found)
    assert all(f.raw.func_name for f in found)  # the fixtures have a name section
    _message, wasmtime_frames = oracles.wasmtime_trap(module, scenario, details=False)
    ours = [(f.raw.func_index, f.raw.module_offset) for f in found]
    assert ours[: len(wasmtime_frames)] == _wasm_frames(wasmtime_frames)  # wasmtime stops at 20 frames


@needs_node
def test_v8_frames_without_names(tmp_path: Path) -> None:
    """A module without a name section gives V8 frames with no NAME; they are found all the same."""
    bare = tmp_path / "noname.wasm"
    subprocess.run(
        ["llvm-objcopy-14", "--remove-section=name", str(FIXTURES / "panics-O1.wasm"), str(bare)], check=True
    )
    trace = oracles.node_trace(str(bare), "index_oob")
    assert re.search(r"^    at wasm://wasm/[0-9a-f]+:wasm-function\[\d+\]:0x[0-9a-f]+$", trace, re.M)
    found = find_frames(trace.splitlines())
    assert len(found) >= 10
    assert all(f.raw.func_name is None and f.raw.func_index is not None for f in found)


@pytest.mark.parametrize("details", [False, True])
@pytest.mark.parametrize("scenario", ["unwrap_none", "expect_err"])
def test_wasmtime_frames_are_found_with_or_without_details(scenario: str, details: bool) -> None:
    """wasmtime's trap message gives one frame per Trap.frames entry; detail lines are folded into their frame."""
    message, frames = oracles.wasmtime_trap("panics-O1.wasm", scenario, details=details)
    lines = message.splitlines()
    found = find_frames(lines)
    assert [f.raw.module_offset for f in found] == [offset for _i, _n, offset in frames]
    assert all(f.style == "wasmtime" for f in found)
    covered = sum(f.end_line - f.first_line for f in found)
    detail_lines = sum(1 for ln in lines if re.match(r"^\s+(at |- )", ln))
    assert covered == len(found) + (detail_lines if details else 0)


def test_v8_frames_without_url() -> None:
    """Older Chrome's `at wasm-function[N]:0xOFF` and `<anonymous>:` URLs are V8 frames too."""
    found = find_frames(["    at wasm-function[45]:0x29a5", "    at f (<anonymous>:wasm-function[3]:0x10)"])
    assert [(f.style, f.location, f.raw) for f in found] == [
        ("v8", "wasm-function[45]:0x29a5", RawFrame(45, None, 0x29A5, None)),
        ("v8", "<anonymous>:wasm-function[3]:0x10", RawFrame(3, "f", 0x10, None)),
    ]


def test_wasmtime_frame_by_index() -> None:
    """`<unknown>!<wasm function N>` gives the function index; `module!name` gives the name."""
    found = find_frames(["    0:   0x1a2 - <unknown>!<wasm function 7>", "    1:  0x1b0 - worker!helper"])
    assert found[0].raw == RawFrame(7, None, 0x1A2, None)
    assert found[1].raw == RawFrame(None, "helper", 0x1B0, None)


def test_firefox_frames() -> None:
    """Firefox's `NAME@URL:wasm-function[N]:0xOFF` and bare `wasm-function[N]:0xOFF` lines are frames."""
    lines = [
        "_ZN6panics4main17he8304d9618c577cbE@http://localhost:8000/worker.js line 4 > WebAssembly.instantiate:wasm-function[25]:0xd3e",
        "@http://localhost:8000/w.wasm:wasm-function[10]:0x4cb",
        "wasm-function[45]:0x29a5",
        "main@http://localhost:8000/worker.js:12:3",
    ]
    found = find_frames(lines)
    assert [(f.style, f.raw) for f in found] == [
        ("firefox", RawFrame(25, "_ZN6panics4main17he8304d9618c577cbE", 0xD3E, None)),
        ("firefox", RawFrame(10, None, 0x4CB, None)),
        ("firefox", RawFrame(45, None, 0x29A5, None)),
    ]


def test_other_lines_are_not_frames() -> None:
    """JavaScript frames, messages and look-alikes are left alone."""
    lines = [
        "RuntimeError: unreachable",
        "    at WASI.start (node:wasi:136:7)",
        "    at file:///tmp/run.mjs:12:37",
        "Caused by:",
        "    wasm trap: wasm `unreachable` instruction executed",
        "the function wasm-function[3] failed",
    ]
    assert find_frames(lines) == []


_INNER = Symbol("worker::lookup", "_ZN6worker6lookup17h0123456789abcdefE", SourceLocation("src/lib.rs", 3, 9), True)
_OUTER = Symbol("worker::handle", "_ZN6worker6handle17h0123456789abcdefE", SourceLocation("src/lib.rs", 12, 5), False)


def _fake(frames: Sequence[RawFrame]) -> list[SymbolizedFrame]:
    return [SymbolizedFrame(f.module_offset or 0, f.func_index, (_INNER, _OUTER)) for f in frames]


def test_rewrite_keeps_other_lines_byte_for_byte() -> None:
    """Only frame lines change: CRLF endings, a missing final newline and odd bytes elsewhere stay as they were."""
    text = (
        "Error: boom \udcff\r\n"
        "    at f (wasm://wasm/ab:wasm-function[3]:0x10)\r\n"
        "    at g (file.js:1:2)\r\n"
        "    at wasm://wasm/ab:wasm-function[4]:0x20"
    )
    out, frames = symbolize_trace(text, _fake)
    assert len(frames) == 2
    assert out == (
        "Error: boom \udcff\r\n"
        "    at worker::lookup (src/lib.rs:3:9) [inlined]\r\n"
        "    at worker::handle (src/lib.rs:12:5)\r\n"
        "    at g (file.js:1:2)\r\n"
        "    at worker::lookup (src/lib.rs:3:9) [inlined]\r\n"
        "    at worker::handle (src/lib.rs:12:5)"
    )


def test_rewrite_wasmtime_style_matches_wasmtimes_own_layout() -> None:
    """A wasmtime frame becomes wasmtime's detailed layout: one number, `- name` per inline level, `at` lines."""
    text = "error while executing at wasm backtrace:\n    0:   0xb530 - <unknown>!__rust_start_panic\nend\n"
    out, _ = symbolize_trace(text, _fake)
    assert out == (
        "error while executing at wasm backtrace:\n"
        "    0:   0xb530 - worker::lookup\n"
        "                    at src/lib.rs:3:9\n"
        "                - worker::handle\n"
        "                    at src/lib.rs:12:5\n"
        "end\n"
    )


def test_rewrite_firefox_style_and_unknown_locations() -> None:
    """Firefox frames keep NAME@WHERE; a symbol without a file keeps the original wasm position."""
    text = "f@http://x/w.wasm:wasm-function[3]:0x10\n"
    sym = Symbol("wasm-function[3]", None, None, False)
    out = rewrite_trace(text, find_frames(text.splitlines()), [SymbolizedFrame(0x10, 3, (sym,))])
    assert out == "wasm-function[3]@http://x/w.wasm:wasm-function[3]:0x10\n"


def test_rewrite_sanitizes_names_from_the_module() -> None:
    """Escape sequences in a symbol name never reach the output."""
    evil = Symbol("x\x1b]0;pwned\x07y", None, None, False)
    text = "    at f (wasm://wasm/ab:wasm-function[3]:0x10)\n"
    out = rewrite_trace(text, find_frames(text.splitlines()), [SymbolizedFrame(0x10, 3, (evil,))])
    assert out == "    at xy (wasm://wasm/ab:wasm-function[3]:0x10)\n"


# ------------------------------------------------------------------- with the real symbolizer


@pytest.fixture(scope="module")
def o1(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from symbolizer import Symbolizer

    return Symbolizer.from_path(FIXTURES / "panics-O1.wasm", cache_dir=tmp_path_factory.mktemp("cache"))


@needs_node
def test_v8_trace_is_rewritten_into_rust_frames(o1) -> None:  # type: ignore[no-untyped-def]
    """Node's trace of a panicking worker comes back with Rust names, inlined calls and source lines."""
    trace = oracles.node_trace(str(FIXTURES / "panics-O1.wasm"), "unwrap_none")
    out, frames = symbolize_trace(trace, o1.symbolize_frames)
    lines = out.splitlines()
    assert lines[0] == "RuntimeError: unreachable"
    assert "    at core::option::Option<T>::unwrap (/usr/src/rustc-1.63.0/library/core/src/option.rs:775:21) [inlined]" in lines
    i = lines.index("    at core::option::Option<T>::unwrap (/usr/src/rustc-1.63.0/library/core/src/option.rs:775:21) [inlined]")
    assert lines[i + 1] == "    at panics::worker::handle (/work/main/tests/fixtures/panics.rs:30:17)"
    assert "    at panics::main (/work/main/tests/fixtures/panics.rs:78:28)" in lines
    assert any(ln.startswith("    at WASI.start (node:wasi") for ln in lines)  # JavaScript frames stay
    assert len(frames) == len(find_frames(trace.splitlines()))


def test_wasmtime_plain_trace_rewrites_to_wasmtimes_detailed_trace(o1) -> None:  # type: ignore[no-untyped-def]
    """Symbolizing wasmtime's plain trap text yields wasmtime's own WASMTIME_BACKTRACE_DETAILS=1 text.

    Normalizations (naming conventions, not disagreements): wasmtime prints legacy names with their
    ``::h<hash>``, we print them without; wasmtime prefixes functions it has no DWARF for with ``<unknown>!``;
    wasmtime adds a "note:" line suggesting the variable to the plain text only.
    """
    for scenario in ["unwrap_none", "index_oob", "refcell"]:
        plain, _ = oracles.wasmtime_trap("panics-O1.wasm", scenario, details=False)
        detailed, _ = oracles.wasmtime_trap("panics-O1.wasm", scenario, details=True)
        ours, _ = symbolize_trace(plain, o1.symbolize_frames)
        ours = "\n".join(ln for ln in ours.splitlines() if not ln.startswith("note: using the"))
        expected = re.sub(r"::h[0-9a-f]{16}$", "", detailed, flags=re.M).replace("<unknown>!", "")
        assert ours == expected.rstrip("\n")


def test_otel_stacktrace_of_a_stripped_module_round_trips(o1) -> None:  # type: ignore[no-untyped-def]
    """Our exception.stacktrace for a stripped module, pasted back with the debug twin, gives the full frames."""
    from symbolizer import Symbolizer
    from symbolizer._render import format_stacktrace

    stripped = Symbolizer.from_path(FIXTURES / "panics-O1.stripped.wasm", use_cache=False)
    _message, frames = oracles.wasmtime_trap("panics-O1.wasm", "unwrap_none", details=False)
    # The stripped twin keeps the code byte for byte but may lay sections out anew: move offsets across.
    shift = stripped.code_start - o1.code_start
    raw = [RawFrame(i, n, off + shift, None) for i, n, off in frames]
    text = format_stacktrace(stripped.symbolize_frames(raw))
    assert "    at panics::worker::handle (wasm-function[45]:" in text  # name section only: no file, no line
    twin = Symbolizer.from_path(
        FIXTURES / "panics-O1.stripped.wasm", debug_file=FIXTURES / "panics-O1.wasm", use_cache=False
    )
    out, again = symbolize_trace(text, twin.symbolize_frames)
    assert [f.symbols for f in again] == [f.symbols for f in o1.symbolize_frames([RawFrame(i, n, off, None) for i, n, off in frames])]
    assert out == format_stacktrace(again)
