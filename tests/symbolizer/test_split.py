"""split_module: a stripped module to ship, a debug twin to keep, both stamped with one build id."""

from __future__ import annotations

import pytest
from _core_helpers import FIXTURES, O1, O1_STRIPPED

from symbolizer import InvalidModule, Symbolizer, parse_module, split_module
from symbolizer._split import build_id_section


def test_split_strips_dwarf_keeps_names_and_code() -> None:
    """The stripped output has no .debug_* section, keeps the name section, and has the same code id."""
    stripped, debug, build_id = split_module(O1.read_bytes())
    s, d, orig = parse_module(stripped), parse_module(debug), parse_module(O1.read_bytes())
    assert not s.has_dwarf and d.has_dwarf
    assert s.function_names == orig.function_names
    assert s.code_id == d.code_id == orig.code_id == parse_module(O1_STRIPPED.read_bytes()).code_id
    assert s.build_id == d.build_id == build_id and len(build_id) == 32
    assert len(stripped) < len(O1.read_bytes()) // 20


def test_split_keeps_an_existing_build_id() -> None:
    """A module that already has a build_id section keeps it; no second one is stamped."""
    data = O1.read_bytes() + build_id_section(b"\x01\x02\x03\x04")
    stripped, debug, build_id = split_module(data)
    assert build_id == "01020304"
    assert parse_module(stripped).build_id == "01020304" and stripped.count(b"build_id") == 1


def test_split_is_stable() -> None:
    """Splitting twice gives the same bytes (the stamped build id is a hash of the code)."""
    assert split_module(O1.read_bytes()) == split_module(O1.read_bytes())


def test_stripped_output_is_a_valid_module_for_wasmtime() -> None:
    """wasmtime validates and compiles the stripped output."""
    wasmtime = pytest.importorskip("wasmtime")
    stripped, _debug, _bid = split_module((FIXTURES / "trap-c-O0.wasm").read_bytes())
    wasmtime.Module(wasmtime.Engine(), stripped)


def test_split_pair_symbolizes_like_the_original() -> None:
    """The stripped output with its debug twin gives the original's frames."""
    stripped, debug, _bid = split_module(O1.read_bytes())
    pair = Symbolizer.from_bytes(stripped, debug, use_cache=False)
    orig = Symbolizer.from_path(O1, use_cache=False)
    for code in (0x24E8, 0xB073, 0x2C00, 0xE, 0x14E2):
        assert pair.symbolize(pair.code_to_module_offset(code)).symbols == orig.symbolize(
            orig.code_to_module_offset(code)).symbols


def test_split_refuses_non_modules() -> None:
    """Bytes that are not a module raise InvalidModule."""
    with pytest.raises(InvalidModule):
        split_module(b"not wasm at all")
