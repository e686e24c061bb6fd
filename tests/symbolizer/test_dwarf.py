"""DWARF → inline chains, checked against llvm-symbolizer-14, wasmtime's trap frames and pyelftools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from _core_helpers import DWARF_FIXTURES, FIXTURES, O1, dwarf_module, have, llvm_chains

from symbolizer import Symbolizer, parse_module
from symbolizer._dwarf import DwarfInfo, _parse_line_program

needs_llvm = pytest.mark.skipif(not have("llvm-symbolizer-14"), reason="llvm-symbolizer-14 not installed")
PANIC_SCENARIOS = ["unwrap_none", "expect_err", "index_oob", "panic", "multiline", "refcell", "div_zero"]


def _mine(dw: DwarfInfo, code_offset: int) -> list[tuple[str | None, str | None, int, int]]:
    return [(lv.linkage_name or lv.name, lv.file, lv.line or 0, lv.column or 0) for lv in dw.chain(code_offset) or []]


def _trap_offsets(module: Path, scenario: str) -> list[int]:
    """Module offsets of every frame of the trap a fixture scenario ends in, run under wasmtime."""
    code = f"""
import wasmtime
eng = wasmtime.Engine()
m = wasmtime.Module.from_file(eng, {str(module)!r})
linker = wasmtime.Linker(eng); linker.define_wasi()
st = wasmtime.Store(eng)
w = wasmtime.WasiConfig(); w.argv = ["guest", {scenario!r}]; st.set_wasi(w)
linker.define_func("tracer", "log", wasmtime.FuncType([wasmtime.ValType.i32()] * 3, []), lambda a, b, c: None)
try:
    linker.instantiate(st, m).exports(st)["_start"](st)
except wasmtime.Trap as t:
    print(" ".join(str(f.module_offset) for f in t.frames))
"""
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    return [int(x) for x in out.split()]


@needs_llvm
@pytest.mark.parametrize("scenario", PANIC_SCENARIOS)
def test_panic_frames_agree_with_llvm_symbolizer(scenario: str) -> None:
    """At every frame of a real panic trap, the chain equals llvm-symbolizer's (names, files, lines, columns)."""
    offsets = _trap_offsets(O1, scenario)
    assert len(offsets) >= 5
    m = parse_module(O1.read_bytes())
    dw = DwarfInfo(m.debug_sections())
    code = [m.module_to_code_offset(o) for o in offsets]
    expected = llvm_chains(O1, code)
    assert [_mine(dw, c) for c in code] == expected
    assert any(len(chain) > 1 for chain in expected)  # inlined frames are part of what is compared


@needs_llvm
@pytest.mark.parametrize("name", DWARF_FIXTURES)
def test_sampled_addresses_agree_with_llvm_symbolizer(name: str) -> None:
    """At ~1,500 code offsets spread over each fixture's code section the chains equal llvm-symbolizer's."""
    path = FIXTURES / name
    m = parse_module(path.read_bytes())
    dw = DwarfInfo(m.debug_sections())
    step = max(1, m.code_size // 1500)
    code = list(range(0, m.code_size + 2, step)) + [m.code_size - 1, m.code_size, 10**7]
    expected = llvm_chains(path, code)
    mismatches = [(hex(c), _mine(dw, c), e) for c, e in zip(code, expected) if _mine(dw, c) != e]
    assert mismatches == []
    if name != "trap-c-O1.wasm":  # clang 14 -O1 here writes zero-length ranges: no DWARF coverage at all
        assert sum(1 for e in expected if e) > len(code) // 2


C_INLINE = r"""
#include <stdlib.h>
static inline __attribute__((always_inline)) int leaf(int x) { if (x > 3) abort(); return x * 2; }
static inline __attribute__((always_inline)) int mid(int x) { return leaf(x + 1) + 1; }
int main(int argc, char **argv) { return mid(argc); }
"""


@needs_llvm
@pytest.mark.skipif(not have("clang-14"), reason="clang-14 not installed")
@pytest.mark.parametrize("version", ["4", "5"])
def test_dwarf4_and_dwarf5_inline_chains_agree_with_llvm(tmp_path: Path, version: str) -> None:
    """A C module built with -gdwarf-N (mixed with the v4 libc units) symbolizes like llvm-symbolizer everywhere."""
    src = tmp_path / "inl.c"
    src.write_text(C_INLINE)
    out = tmp_path / "inl.wasm"
    subprocess.run(
        ["clang-14", "--target=wasm32-wasi", "--sysroot=/usr", f"-gdwarf-{version}", "-O0", "-o", str(out), str(src)],
        check=True, capture_output=True,
    )
    m = parse_module(out.read_bytes())
    dw = DwarfInfo(m.debug_sections())
    assert {u.version for u in dw.units} >= {int(version)}
    code = list(range(0, m.code_size + 1))
    expected = llvm_chains(out, code)
    assert [_mine(dw, c) for c in code] == expected
    assert any([n for n, *_ in e][:2] == ["leaf", "mid"] for e in expected)


def _pyelftools_info(path: Path):  # type: ignore[no-untyped-def]
    import io

    from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo

    secs = parse_module(path.read_bytes()).debug_sections()
    names = ["info", "aranges", "abbrev", "frame", "str", "loc", "ranges", "line", "pubtypes", "pubnames", "addr",
             "str_offsets", "line_str", "loclists", "rnglists", "sup", "types"]
    kw = {}
    for n in names:
        data = secs.get(".debug_" + n)
        kw[f"debug_{n}_sec"] = (
            DebugSectionDescriptor(io.BytesIO(data), ".debug_" + n, 0, len(data), 0) if data is not None else None
        )
    return DWARFInfo(DwarfConfig(little_endian=True, machine_arch="wasm", default_address_size=4),
                     eh_frame_sec=None, gnu_debugaltlink_sec=None, **kw)


def test_line_rows_equal_pyelftools() -> None:
    """The line rows of the first units of panics-O1 equal those pyelftools decodes (address, file, line, column)."""
    m = parse_module(O1.read_bytes())
    dw = DwarfInfo(m.debug_sections())
    ref = _pyelftools_info(O1)
    for cu, unit in zip(list(ref.iter_CUs())[:12], dw.units):
        rows = []
        seq: list[tuple[int, int, int, int]] = []
        for entry in ref.line_program_for_CU(cu).get_entries():
            st = entry.state
            if st is None:
                continue
            if st.end_sequence:
                if seq:
                    rows.append(seq)
                seq = []
            else:
                seq.append((st.address, st.file, st.line, st.column))
        _resolve, seqs = _parse_line_program(dw, unit)
        mine = [list(zip(a, f, ln, c)) for _lo, _hi, a, f, ln, c in seqs]
        # pyelftools keeps sequences of discarded code (address 0 or the tombstone -1); we drop them
        live = [s for s in rows if s and 0 < s[0][0] < 0xFFFFFFFE]
        assert mine == live


def test_subroutine_ranges_equal_pyelftools() -> None:
    """Every subprogram/inlined subroutine of the panics.rs unit has the ranges pyelftools computes."""
    m = parse_module(O1.read_bytes())
    dw = DwarfInfo(m.debug_sections())
    ref = _pyelftools_info(O1)
    unit = dw.unit_for(0x24E8)  # the unit of panics::worker::handle
    assert unit is not None and unit.name is not None and unit.name.startswith("panics.rs")
    ud = dw.unit_data(unit)
    cu = ref.get_CU_at(unit.offset)
    rl = ref.range_lists()
    expected = {}
    for die in cu.iter_DIEs():
        if die.tag not in ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine"):
            continue
        a = die.attributes
        if "DW_AT_ranges" in a:
            rs = [(r.begin_offset, r.end_offset) for r in rl.get_range_list_at_offset(a["DW_AT_ranges"].value, cu=cu)]
        elif "DW_AT_low_pc" in a and "DW_AT_high_pc" in a:
            lo = a["DW_AT_low_pc"].value
            rs = [(lo, lo + a["DW_AT_high_pc"].value)]
        else:
            rs = []
        expected[die.offset] = [(lo, hi) for lo, hi in rs if 0 < lo < 0xFFFFFFFE and hi > lo]
    mine = dict(zip(ud.node_die, ud.node_ranges))
    assert mine == expected
    assert sum(len(r) for r in mine.values()) > 10


def test_frame_carries_demangled_and_mangled_names() -> None:
    """The physical function and its inlined callee come back demangled, with the linkage names kept."""
    s = Symbolizer.from_path(O1, use_cache=False)
    frame = s.symbolize(0x29A5)
    assert frame.func_index == 45
    assert [(sym.function, sym.inlined) for sym in frame.symbols] == [
        ("core::option::Option<T>::unwrap", True), ("panics::worker::handle", False)]
    assert frame.symbols[1].mangled == "_ZN6panics6worker6handle17h4f85183a7c65d26fE"
    loc = frame.symbols[1].location
    # The path is the one rustc recorded when `make fixtures` ran (absolute, in the build tree), not this checkout.
    assert loc is not None and loc.file is not None and loc.file.endswith("/tests/fixtures/panics.rs")
    assert (loc.line, loc.column) == (30, 17)


def test_falls_back_to_name_section_then_wasm_function_n() -> None:
    """Without DWARF at an address the name section names the frame; without a name, wasm-function[N]."""
    s = Symbolizer.from_path(O1, use_cache=False)
    frame = s.symbolize(0x199F)  # __original_main: no DWARF for it
    assert [(x.function, x.location) for x in frame.symbols] == [("__original_main", None)]
    assert s.symbolize(0x199F, func_index=9999).symbols[0].function == "wasm-function[9999]"
    assert s.symbolize(10**9).symbols == ()
    assert s.symbolize(-5).symbols == ()


@needs_llvm
def test_unit_without_subroutine_keeps_the_line_and_takes_the_name_section_name(tmp_path: Path) -> None:
    """Where a unit's line table covers an address no subroutine covers, the location survives (llvm: '??')."""
    data = dwarf_module(body_dies=b"")
    path = tmp_path / "nosub.wasm"
    path.write_bytes(data)
    assert llvm_chains(path, [3]) == [[(None, "cu.c", 3, 0)]]
    s = Symbolizer.from_bytes(data, use_cache=False)
    frame = s.symbolize(s.code_to_module_offset(3))
    assert [(x.function, x.location.file if x.location else None) for x in frame.symbols] == [
        ("hostile_fn_from_names", "cu.c")]
