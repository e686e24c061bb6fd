"""Hostile input: malformed wasm and DWARF never hang, never crash, and only raise SymbolizerError.

pyelftools loops forever on a self-referencing DW_AT_sibling, recurses on deep nesting, divides by a
zero line_range and raises KeyError on unknown forms; these are the cases written out by hand here,
then hypothesis mutates real modules.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys

import pytest
from _core_helpers import FIXTURES, FUNC_LO, ROOT, custom, dwarf_module, module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbolizer import InvalidModule, Symbolizer, SymbolizerError, parse_module
from symbolizer._wasm import SEC_CUSTOM, iter_sections

SUB_DIE_OFFSET = 11 + 18  # unit header, then the unit DIE: the subprogram's unit-relative offset


def _frame_names(data: bytes) -> list[tuple[str, object]]:
    s = Symbolizer.from_bytes(data, use_cache=False)
    frame = s.symbolize(s.code_to_module_offset(FUNC_LO + 1))
    return [(x.function, x.location.line if x.location else None) for x in frame.symbols]


def test_well_formed_baseline() -> None:
    """The hand-written module symbolizes from its DWARF (the baseline the hostile variants break)."""
    assert _frame_names(dwarf_module()) == [("hostile_fn", 3)]


def test_self_referencing_sibling_does_not_hang() -> None:
    """A DW_AT_sibling pointing at its own DIE is ignored (the tree is walked in order, never by siblings)."""
    data = dwarf_module(extra_abbrev=b"\x01\x13", extra_sub_attrs=struct.pack("<I", SUB_DIE_OFFSET))
    assert _frame_names(data) == [("hostile_fn", 3)]


def test_self_referencing_abstract_origin_does_not_hang() -> None:
    """A DW_AT_abstract_origin loop is cut by the cycle check while resolving names."""
    data = dwarf_module(extra_abbrev=b"\x31\x13", extra_sub_attrs=struct.pack("<I", SUB_DIE_OFFSET))
    assert _frame_names(data) == [("hostile_fn", 3)]


def test_deep_nesting_degrades_to_name_section() -> None:
    """100,000 nested DIEs exceed the depth cap: that unit fails once, the name section names the frame."""
    n = 100_000
    data = dwarf_module(body_dies=b"\x03v\0" * n + b"\0" * n)
    s = Symbolizer.from_bytes(data, use_cache=False)
    assert [x.function for x in s.symbolize(s.code_to_module_offset(FUNC_LO + 1)).symbols] == ["hostile_fn_from_names"]
    dw = s._dwarf
    assert dw is not None and 0 in dw.unit_errors and "deeper" in str(dw.unit_errors[0])
    err = dw._unit_data[0]
    s.symbolize(s.code_to_module_offset(FUNC_LO + 2))
    assert dw._unit_data[0] is err  # the broken unit is not parsed again


def test_zero_line_range_keeps_function_names() -> None:
    """line_range 0 breaks only the line table: the frame keeps its DWARF name, without a location."""
    assert _frame_names(dwarf_module(line_range=0)) == [("hostile_fn", None)]


def test_unknown_form_degrades_to_name_section() -> None:
    """An attribute form no DWARF version defines fails its unit; the name section names the frame."""
    assert _frame_names(dwarf_module(extra_abbrev=b"\x3a\x7f", extra_sub_attrs=b"\x01")) == [
        ("hostile_fn_from_names", None)]


def test_unknown_abbreviation_code_degrades() -> None:
    """A DIE using an abbreviation code the table lacks fails its unit, not the trace."""
    assert _frame_names(dwarf_module(body_dies=b"\x09\x00")) == [("hostile_fn_from_names", None)]


def test_garbage_debug_info_degrades() -> None:
    """A .debug_info of random bytes leaves a working symbolizer that names frames from the name section."""
    rng = random.Random(7)
    data = module(*[sec for sec in _sections(dwarf_module()) if b".debug_info" not in sec[:16]],
                  custom(".debug_info", bytes(rng.getrandbits(8) for _ in range(4000))))
    names = _frame_names(data)
    assert names in ([("hostile_fn_from_names", None)], [("hostile_fn_from_names", 3)])


def test_index_build_on_broken_dwarf_raises_only_symbolizer_errors() -> None:
    """build_index over broken units leaves them out instead of failing."""
    s = Symbolizer.from_bytes(dwarf_module(line_range=0), use_cache=False)
    index = s.build_index(write=False)
    assert index.levels(FUNC_LO + 1) == [("hostile_fn", None, None, None, None, False)]


def _sections(data: bytes) -> list[bytes]:
    """The raw bytes of each section of a module, as found."""
    out = []
    pos = 8
    for sec in iter_sections(data):
        end = sec.offset + sec.size
        out.append(data[pos:end])
        pos = end
    return out


def _rebuild(data: bytes, name: str, payload: bytes) -> bytes:
    """The module with custom section ``name``'s payload replaced."""
    parts = []
    pos = 8
    for sec in iter_sections(data):
        end = sec.offset + sec.size
        parts.append(custom(name, payload) if sec.id == SEC_CUSTOM and sec.name == name else data[pos:end])
        pos = end
    return module(*parts)


C_MODULE = (FIXTURES / "trap-c-O0.wasm").read_bytes()
C_PARSED = parse_module(C_MODULE)
C_DEBUG = C_PARSED.debug_sections()
PROBES = [C_PARSED.code_start + o for o in range(0, C_PARSED.code_size, max(1, C_PARSED.code_size // 40))]


def _exercise(data: bytes) -> None:
    try:
        s = Symbolizer.from_bytes(data, use_cache=False)
    except SymbolizerError:
        return
    for off in PROBES:
        s.levels(off - s.code_start)  # the raw DWARF path: must not raise anything at all
        s.symbolize(off)
    try:
        s.build_index(write=False)
    except SymbolizerError:
        pass


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    section=st.sampled_from(sorted(C_DEBUG)),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_mutated_dwarf_never_escapes_the_error_family(
    section: str, flips: list[tuple[float, int]], cut: float | None
) -> None:
    """Random byte changes and truncations of a real module's DWARF sections raise nothing but SymbolizerError."""
    payload = bytearray(C_DEBUG[section])
    for where, value in flips:
        payload[int(where * len(payload))] = value
    if cut is not None:
        del payload[int(cut * len(payload)):]
    _exercise(_rebuild(C_MODULE, section, bytes(payload)))


@settings(max_examples=150, deadline=None)
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_module_bytes_never_escape_the_error_family(flips: list[tuple[float, int]]) -> None:
    """Random byte changes anywhere in a real module give a symbolizer or InvalidModule, nothing else."""
    data = bytearray(C_MODULE)
    for where, value in flips:
        data[int(where * len(data))] = value
    _exercise(bytes(data))


def test_mutations_stay_within_a_memory_cap() -> None:
    """Under a 1 GiB address-space limit, 200 seeded mutations of a real module finish without MemoryError."""
    code = f"""
import random, resource, sys
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests' / 'symbolizer')!r}]
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from test_hostile import C_MODULE, C_DEBUG, _rebuild, _exercise
rng = random.Random(1234)
for i in range(200):
    name = rng.choice(sorted(C_DEBUG))
    payload = bytearray(C_DEBUG[name])
    for _ in range(rng.randint(1, 20)):
        payload[rng.randrange(len(payload))] = rng.getrandbits(8)
    _exercise(_rebuild(C_MODULE, name, bytes(payload)))
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.stdout.strip() == "ok", proc.stderr[-3000:]


def test_truncated_module_is_invalid() -> None:
    """A module cut inside its code section raises InvalidModule."""
    with pytest.raises(InvalidModule):
        Symbolizer.from_bytes(C_MODULE[: C_PARSED.code_start + 10], use_cache=False)
