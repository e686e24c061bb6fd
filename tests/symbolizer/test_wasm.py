"""The wasm reader: sections, code payload start, names, tool-convention sections, strict bounds."""

from __future__ import annotations

import re
import subprocess

import pytest
from _core_helpers import (
    CODE_SECTION,
    FIXTURES,
    FUNCTION_SECTION,
    O1,
    O1_STRIPPED,
    TYPE_SECTION,
    custom,
    have,
    leb,
    module,
    name_section,
    section,
)

import symbolizer
from symbolizer import InvalidModule, code_to_module_offset, module_to_code_offset, parse_module
from symbolizer._wasm import read_sleb, read_uleb

needs_objdump = pytest.mark.skipif(not have("wasm-objdump"), reason="wasm-objdump not installed")


def _objdump_code_start(path: str) -> int:
    out = subprocess.run(["wasm-objdump", "-h", path], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Code start=0x([0-9a-f]+)", out)
    assert m
    return int(m.group(1), 16)


@needs_objdump
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.wasm")))
def test_code_start_matches_wasm_objdump(name: str) -> None:
    """The code section payload starts where wasm-objdump says, for every fixture."""
    m = parse_module((FIXTURES / name).read_bytes())
    assert m.code_start == _objdump_code_start(str(FIXTURES / name))


@needs_objdump
def test_function_names_match_wasm_objdump() -> None:
    """The name section's function names are those wasm-objdump lists."""
    out = subprocess.run(["wasm-objdump", "-x", "-j", "name", str(O1)], capture_output=True, text=True).stdout
    expected = {int(i): n for i, n in re.findall(r"^ - func\[(\d+)\] <(.*)>$", out, re.M)}
    m = parse_module(O1.read_bytes())
    assert m.function_names == expected and len(expected) > 300


def test_offset_conversion_round_trips_on_a_known_frame() -> None:
    """wasmtime's module offset 0x29a5 in panics-O1 is llvm-symbolizer's code offset 0x24e8, and back."""
    m = parse_module(O1.read_bytes())
    assert module_to_code_offset(0x29A5, m.code_start) == 0x24E8
    assert code_to_module_offset(0x24E8, m.code_start) == 0x29A5
    assert m.module_to_code_offset(m.code_to_module_offset(1234)) == 1234


def test_function_index_at_matches_wasmtime_frame() -> None:
    """The function containing a trap offset has the index wasmtime reported for it (45 at 0x29a5)."""
    m = parse_module(O1.read_bytes())
    assert m.function_index_at(m.module_to_code_offset(0x29A5)) == 45
    assert m.function_name(45) == "_ZN6panics6worker6handle17h4f85183a7c65d26fE"
    assert m.function_index_at(0) is None  # the function count, not a body


def test_stripped_twin_has_same_code_id_but_other_code_start() -> None:
    """The stripped twin's code id equals the original's although its sections sit at other offsets."""
    full = parse_module(O1.read_bytes())
    stripped = parse_module(O1_STRIPPED.read_bytes())
    assert full.code_id == stripped.code_id
    assert full.code_start != stripped.code_start
    assert full.has_dwarf and not stripped.has_dwarf


def test_producers_section_is_read() -> None:
    """The producers section lists the language and the compiler that made the module."""
    m = parse_module(O1.read_bytes())
    assert "processed-by" in m.producers or "language" in m.producers
    assert any("rustc" in name or "clang" in name for vals in m.producers.values() for name, _v in vals)


def test_tool_convention_sections_are_read() -> None:
    """build_id (bytes, shown as hex), external_debug_info (a URL) and the module name are read."""
    data = module(
        TYPE_SECTION, FUNCTION_SECTION, CODE_SECTION,
        custom("build_id", leb(4) + b"\xde\xad\xbe\xef"),
        custom("external_debug_info", leb(9) + b"x.debug.w"),
        name_section({0: "f"}, module_name="mod"),
    )
    m = parse_module(data)
    got = (m.build_id, m.external_debug_info, m.module_name, m.function_names)
    assert got == ("deadbeef", "x.debug.w", "mod", {0: "f"})


def test_a_malformed_name_section_is_ignored() -> None:
    """A name section that lies about its lengths is dropped; the module still parses."""
    data = module(TYPE_SECTION, FUNCTION_SECTION, CODE_SECTION, custom("name", b"\x01\x7f\x05"))
    m = parse_module(data)
    assert m.function_names == {} and m.code_size == 8


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "bad magic"),
        (b"\x7fELF\x01\x00\x00\x00", "bad magic"),
        (b"\x00asm\x0d\x00\x01\x00", "version"),
        (module(section(1, b"\x00")), "no code section"),
        (b"\x00asm\x01\x00\x00\x00\x0a\xff\xff\xff\xff\x0f", "runs past"),
        (b"\x00asm\x01\x00\x00\x00\x0a\x80\x80\x80\x80\x80\x80\x01", "LEB128 too long"),
        (module(section(10, b"\xff\xff\xff\x0f")), "exceeds its section"),
        (module(section(10, b"\x01\x05\x00")), "exceeds its section"),
        (module(section(10, b"\x00\x00")), "trailing bytes"),
        (module(section(42, b"")), "unknown section id"),
        (module(CODE_SECTION, CODE_SECTION), "several code sections"),
    ],
)
def test_malformed_modules_raise_invalid_module(data: bytes, message: str) -> None:
    """Broken headers, sizes, counts and LEB128s raise InvalidModule naming the problem."""
    with pytest.raises(InvalidModule, match=message):
        parse_module(data)


def test_every_truncation_of_a_module_is_refused_cleanly() -> None:
    """Cutting a real module at any point before its code section ends raises InvalidModule only."""
    data = (FIXTURES / "trap-c-O1.wasm").read_bytes()
    end = parse_module(data).code_start + parse_module(data).code_size
    for cut in range(0, end, 97):
        with pytest.raises(InvalidModule):
            parse_module(data[:cut])


def test_leb128_decoding() -> None:
    """LEB128 decodes unsigned and signed values, and refuses reads past the end."""
    assert read_uleb(b"\xe5\x8e\x26", 0, 3) == (624485, 3)
    assert read_sleb(b"\xc0\xbb\x78", 0, 3) == (-123456, 3)
    with pytest.raises(InvalidModule):
        read_uleb(b"\x80\x80", 0, 2)


def test_public_names_are_sorted_and_importable() -> None:
    """symbolizer.__all__ is sorted and every name in it exists."""
    assert list(symbolizer.__all__) == sorted(symbolizer.__all__)
    for name in symbolizer.__all__:
        assert hasattr(symbolizer, name)


def test_reading_a_large_file_skips_dwarf_but_serves_it_on_demand(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """read_module_file leaves the DWARF on disk until asked, then returns the same bytes as a full read."""
    from symbolizer._wasm import read_module_file

    lazy = read_module_file(O1)
    full = parse_module(O1.read_bytes())
    assert (lazy.code_id, lazy.code_start, lazy.function_names, lazy.body_starts) == (
        full.code_id, full.code_start, full.function_names, full.body_starts)
    info = next(s for s in lazy.sections if s.name == ".debug_info")
    assert not any(lazy.data[info.offset : info.offset + 4096])  # a hole until requested
    assert lazy.debug_sections() == full.debug_sections()


def test_a_module_changed_after_reading_is_not_trusted_for_its_dwarf(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """If the file changes between reading the module and reading its DWARF, the DWARF is refused."""
    import os

    from symbolizer._wasm import read_module_file

    path = tmp_path / "m.wasm"
    path.write_bytes(O1.read_bytes())
    lazy = read_module_file(path)
    path.write_bytes(O1.read_bytes() + b"\x00\x03\x01x\x00")  # one more custom section
    os.utime(path, ns=(1, 1))
    with pytest.raises(InvalidModule, match="changed"):
        lazy.debug_sections()


def test_a_truncated_large_file_is_invalid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A large module cut inside its DWARF raises InvalidModule from read_module_file."""
    from symbolizer._wasm import read_module_file

    path = tmp_path / "cut.wasm"
    path.write_bytes(O1.read_bytes()[:3_000_000])
    with pytest.raises(InvalidModule):
        read_module_file(path)


def test_identify_agrees_with_parse_module() -> None:
    """The header-only identify() gives the same code id and build id as a full parse, for every fixture."""
    from pathlib import Path

    from symbolizer._split import split_module
    from symbolizer._wasm import identify, parse_module

    for path in sorted((Path(__file__).parents[1] / "fixtures").glob("*.wasm")):
        data = path.read_bytes()
        full = parse_module(data)
        assert identify(data) == (full.code_id, full.build_id), path.name
    stripped, _debug, build_id = split_module((Path(__file__).parents[1] / "fixtures" / "lib.wasm").read_bytes())
    assert identify(stripped) == (parse_module(stripped).code_id, build_id)
