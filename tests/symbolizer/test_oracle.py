"""Differential tests: our frames against llvm-symbolizer-14 and wasmtime's own DWARF symbolication.

Over every fixture with DWARF: every frame of every trap scenario (wasmtime ``WASMTIME_BACKTRACE_DETAILS=1``)
and 1,500 seeded-random instruction boundaries (``wasm-objdump -d``) per fixture (llvm-symbolizer-14
``--inlining``, batched on stdin), through both lookup paths (lazy DWARF, built index). Compared: the inline
chain (length and order), function, file, line, column.

Normalizations — each a difference of convention, not of answer:

N1. Unknown values: llvm-symbolizer prints "" for an unknown function or file and 0 for an unknown line or
    column; we hold None. DWARF line 0 and column 0 mean "unknown" (DWARF 5 §6.2.2), so 0 ≡ None.
N2. Addresses no DWARF subprogram covers (runtime glue such as ``__rust_alloc``, ``main.command_export``,
    a C unit whose ranges are empty): llvm-symbolizer answers nothing, wasmtime prints ``<unknown>!NAME``
    or ``<unknown>!<wasm function N>``; we answer one non-inlined symbol without location named from the
    name section (demangled), or ``wasm-function[N]`` when there is none.
N3. Function names: llvm-symbolizer (``--no-demangle``) prints the DIE's linkage name, else its name; we
    compare it with ``mangled or function`` and check ``function`` is its demangling. wasmtime prints
    rustc-demangle's full form (legacy ``::h<hash>``, v0 ``[<crate hash>]``); we print the readable form
    without those, so they are removed from wasmtime's text before comparing.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

import _symbolizer_oracles as oracles
from symbolizer import Symbolizer, SymbolizedFrame
from symbolizer._demangle import demangle
from symbolizer._traces import symbolize_trace

FIXTURES = oracles.FIXTURES
SAMPLES = 1500

pytestmark = pytest.mark.skipif(
    not (oracles.have(oracles.LLVM_SYMBOLIZER) and oracles.have("wasm-objdump")),
    reason="needs llvm-symbolizer-14 and wasm-objdump",
)


@cache
def lazy(module: str) -> Symbolizer:
    return Symbolizer.from_path(FIXTURES / module, use_cache=False)


@cache
def indexed(module: str) -> Symbolizer:
    s = Symbolizer.from_path(FIXTURES / module, use_cache=False)
    s.build_index(write=False)
    return s


@cache
def instruction_offsets(module: str) -> tuple[int, ...]:
    """Module offsets of every instruction in the code section (wasm-objdump -d), i.e. instruction boundaries."""
    out = subprocess.run(["wasm-objdump", "-d", str(FIXTURES / module)], capture_output=True, text=True).stdout
    return tuple(int(m, 16) for m in re.findall(r"^ ([0-9a-f]{6,}):", out, re.M))


@cache
def sample(module: str) -> tuple[int, ...]:
    offsets = instruction_offsets(module)
    assert len(offsets) > SAMPLES
    return tuple(sorted(random.Random(f"oracle:{module}").sample(offsets, SAMPLES)))


def fallback_name(s: Symbolizer, module_offset: int) -> str:
    """N2: the name-section name (demangled) of the function holding ``module_offset``, or wasm-function[N]."""
    index = s.module.function_index_at(module_offset - s.code_start)
    assert index is not None
    name = s.module.function_name(index)
    return demangle(name) if name is not None else f"wasm-function[{index}]"


def assert_matches_llvm(s: Symbolizer, module_offset: int, chain: list[dict[str, object]]) -> None:
    frame = s.symbolize(module_offset)
    where = f"{module_offset:#x}"
    if chain == [] or (len(chain) == 1 and chain[0]["FunctionName"] == "" and chain[0]["FileName"] == ""):
        # N2
        assert len(frame.symbols) == 1, where
        only = frame.symbols[0]
        assert (only.function, only.location, only.inlined) == (fallback_name(s, module_offset), None, False), where
        return
    assert len(frame.symbols) == len(chain), where
    for i, (ours, theirs) in enumerate(zip(frame.symbols, chain)):
        name = str(theirs["FunctionName"])
        assert (ours.mangled or ours.function) == name, where  # N3
        assert ours.function == demangle(name), where
        loc = ours.location
        assert (loc.file if loc else None) == (theirs["FileName"] or None), where  # N1
        assert ((loc.line if loc else None) or None) == (theirs["Line"] or None), where
        assert ((loc.column if loc else None) or None) == (theirs["Column"] or None), where
        assert ours.inlined == (i < len(chain) - 1), where


@pytest.mark.parametrize("path", ["lazy", "indexed"])
@pytest.mark.parametrize("module", oracles.DWARF_MODULES)
def test_sampled_addresses_match_llvm_symbolizer(module: str, path: str) -> None:
    """At 1,500 random instruction boundaries, each lookup path gives llvm-symbolizer-14's inline chain."""
    s = lazy(module) if path == "lazy" else indexed(module)
    offsets = sample(module)
    chains = oracles.llvm_symbolize(FIXTURES / module, [o - s.code_start for o in offsets])
    covered = sum(1 for c in chains if c and c[0]["FunctionName"])
    if module != "trap-c-O1.wasm":  # N2: clang-14 -O1 wrote empty ranges for this one's units
        assert covered > SAMPLES * 0.9
    for offset, chain in zip(offsets, chains):
        assert_matches_llvm(s, offset, chain)


def _wasmtime_name(text: str) -> str:
    """N2 + N3: wasmtime's printed name as we print it."""
    text = text.removeprefix("<unknown>!")
    m = re.fullmatch(r"<wasm function (\d+)>", text)
    if m:
        return f"wasm-function[{m[1]}]"
    return re.sub(r"\[[0-9a-f]+\]", "", re.sub(r"::h[0-9a-f]{16}$", "", text))


def _ours_as_wasmtime(frame: SymbolizedFrame) -> list[tuple[str, str | None, int | None, int | None]]:
    out: list[tuple[str, str | None, int | None, int | None]] = []
    for sym in frame.symbols:
        loc = sym.location
        if loc is None or loc.file is None:
            out.append((sym.function, None, None, None))
        else:
            out.append((sym.function, loc.file, loc.line or 0, loc.column or 0))
    return out


TRAPS = [(m, sc) for m in oracles.DWARF_MODULES for sc in oracles.TRAP_SCENARIOS[m]]


@pytest.mark.parametrize(("module", "scenario"), TRAPS)
def test_trap_frames_match_wasmtime(module: str, scenario: str) -> None:
    """Every frame of every fixture's trap symbolizes as wasmtime's WASMTIME_BACKTRACE_DETAILS=1 text says."""
    message, frames = oracles.wasmtime_trap(module, scenario, details=True)
    theirs = oracles.parse_wasmtime_details(message)
    assert [offset for offset, _ in theirs] == [offset for _i, _n, offset in frames]
    for s in (lazy(module), indexed(module)):
        for offset, chain in theirs:
            expected = [(_wasmtime_name(n), f, line, col) for n, f, line, col in chain]
            # wasmtime prints column 0 as 0 and we hold None (N1): _ours_as_wasmtime maps None back to 0.
            assert _ours_as_wasmtime(s.symbolize(offset)) == expected, f"{module} {scenario} {offset:#x}"


def test_stripped_twin_with_its_debug_file_matches_the_original() -> None:
    """panics-O1.stripped.wasm + panics-O1.wasm as debug file answers like panics-O1.wasm at every sample."""
    original = lazy("panics-O1.wasm")
    twin = Symbolizer.from_path(
        FIXTURES / "panics-O1.stripped.wasm", debug_file=FIXTURES / "panics-O1.wasm", use_cache=False
    )
    assert twin.code_id == original.code_id
    for offset in sample("panics-O1.wasm"):
        code_offset = offset - original.code_start  # the twin's module offsets may differ; code offsets do not
        assert twin.symbolize_code_offset(code_offset).symbols == original.symbolize(offset).symbols


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    cache_dir = tmp_path_factory.mktemp("cache")
    for module in oracles.RUST_WASI:
        s = Symbolizer.from_path(FIXTURES / module, cache_dir=cache_dir)
        s.build_index()
    return {"TRACER_CACHE_DIR": str(cache_dir)}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
@pytest.mark.parametrize("module", oracles.RUST_WASI)
def test_v8_traces_round_trip_through_stdin_to_wasmtimes_answer(module: str, warm_cache: dict[str, str]) -> None:
    """A Node trace piped to `tracer symbolize MODULE --json` yields, frame for frame, wasmtime's own answer."""
    for scenario in ["unwrap_none", "index_oob"]:
        trace = oracles.node_trace(str(FIXTURES / module), scenario)
        proc = oracles.run_cli("symbolize", str(FIXTURES / module), "--json", stdin=trace.encode(), env=warm_cache)
        assert proc.returncode == 0, proc.stderr
        frames = json.loads(proc.stdout)["frames"]
        theirs = oracles.parse_wasmtime_details(oracles.wasmtime_trap(module, scenario, details=True)[0])
        assert len(frames) >= len(theirs) >= 10  # wasmtime stops at 20 frames, V8 does not
        for ours, (offset, chain) in zip(frames, theirs):
            assert ours["address"] == offset
            got = [(s["function"], s["file"], s["line"] or 0 if s["file"] else None, s["column"] or 0 if s["file"] else None)
                   for s in ours["symbols"]]
            assert got == [(_wasmtime_name(n), f, line, col) for n, f, line, col in chain]
        # and the text mode writes exactly what the library renders
        text = oracles.run_cli("symbolize", str(FIXTURES / module), stdin=trace.encode(), env=warm_cache)
        assert text.stdout.decode() == symbolize_trace(trace, lazy(module).symbolize_frames)[0]
