"""Separate debug files: a stripped module plus its twin symbolizes exactly like the original."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _core_helpers import FIXTURES, O1, O1_STRIPPED, custom, leb

from symbolizer import DebugFileMismatch, DebugFileNotFound, DebugInfoError, ModuleNotReadable, Symbolizer, split_module
from symbolizer._debugfile import candidate_names

O3 = FIXTURES / "panics-O3.wasm"


def _same_everywhere(stripped: Symbolizer, full: Symbolizer) -> int:
    """Compare both at every 7th code offset (translated per module); return how many had DWARF."""
    with_dwarf = 0
    for code in range(0, full.module.code_size, 7):
        a = stripped.symbolize(stripped.code_to_module_offset(code))
        b = full.symbolize(full.code_to_module_offset(code))
        assert (a.func_index, a.symbols) == (b.func_index, b.symbols), hex(code)
        with_dwarf += any(s.location is not None for s in b.symbols)
    return with_dwarf


def test_stripped_module_with_debug_file_symbolizes_like_the_original() -> None:
    """llvm-objcopy's stripped twin plus --debug-file gives the original's frames at every sampled address."""
    full = Symbolizer.from_path(O1, use_cache=False)
    stripped = Symbolizer.from_path(O1_STRIPPED, debug_file=O1, use_cache=False)
    assert stripped.code_start != full.code_start  # module offsets differ; code offsets do not
    assert _same_everywhere(stripped, full) > 1000


def test_stripped_module_alone_gets_name_section_names() -> None:
    """Without its twin a stripped module still names frames from the name section, with no locations."""
    s = Symbolizer.from_path(O1_STRIPPED, use_cache=False)
    assert not s.has_debug_info
    frame = s.symbolize(s.code_to_module_offset(0x24E8))
    assert [(x.function, x.location, x.inlined) for x in frame.symbols] == [("panics::worker::handle", None, False)]
    assert frame.symbols[0].mangled == "_ZN6panics6worker6handle17h4f85183a7c65d26fE"


@pytest.mark.parametrize("which", [0, 1, 2, 3])
def test_symbols_dir_is_searched_by_code_id_and_build_id(tmp_path: Path, which: int) -> None:
    """Each documented name in a symbols directory (code id or build id, flat or two-level) is found."""
    stripped_bytes, debug_bytes, build_id = split_module(O1.read_bytes())
    module = tmp_path / "app.wasm"
    module.write_bytes(stripped_bytes)
    probe = Symbolizer.from_path(module, use_cache=False)
    names = candidate_names(probe.code_id, probe.build_id)
    assert len(names) == 4 and probe.build_id == build_id
    target = tmp_path / "syms" / names[which]
    target.parent.mkdir(parents=True)
    target.write_bytes(debug_bytes)
    s = Symbolizer.from_path(module, symbols_dir=tmp_path / "syms", use_cache=False)
    assert s.has_debug_info
    assert s.symbolize(s.code_to_module_offset(0x24E8)).symbols[0].function == "core::option::Option<T>::unwrap"


def test_symbols_dir_skips_a_file_with_other_code(tmp_path: Path) -> None:
    """A file under the module's build id whose code differs is ignored: names only, no wrong DWARF."""
    stripped_bytes, _debug, build_id = split_module(O1.read_bytes())
    module = tmp_path / "app.wasm"
    module.write_bytes(stripped_bytes)
    (tmp_path / "syms").mkdir()
    shutil.copy(O3, tmp_path / "syms" / f"{build_id}.debug.wasm")
    s = Symbolizer.from_path(module, symbols_dir=tmp_path / "syms", use_cache=False)
    assert not s.has_debug_info
    assert s.symbolize(s.code_to_module_offset(0x24E8)).symbols[0].location is None


def test_debug_file_with_other_code_is_refused() -> None:
    """A debug file built from different code raises DebugFileMismatch naming both code ids."""
    with pytest.raises(DebugFileMismatch, match="does not match the module") as info:
        Symbolizer.from_path(O1_STRIPPED, debug_file=O3, use_cache=False)
    assert Symbolizer.from_path(O1_STRIPPED, use_cache=False).code_id in str(info.value)


def test_missing_debug_file_and_module_are_reported() -> None:
    """A debug file or module that cannot be read raises the matching SymbolizerError subclass."""
    with pytest.raises(DebugFileNotFound, match="cannot read debug file"):
        Symbolizer.from_path(O1_STRIPPED, debug_file=FIXTURES / "nope.wasm", use_cache=False)
    with pytest.raises(ModuleNotReadable):
        Symbolizer.from_path(FIXTURES / "nope.wasm", use_cache=False)


def test_debug_file_without_dwarf_is_refused() -> None:
    """Passing the stripped module itself as the debug file is an error, not a silent no-op."""
    with pytest.raises(DebugInfoError, match="no DWARF"):
        Symbolizer.from_path(O1_STRIPPED, debug_file=O1_STRIPPED, use_cache=False)


def test_from_bytes_with_debug_bytes_matches_from_path() -> None:
    """from_bytes(stripped, debug_bytes) answers like from_path with a debug file."""
    a = Symbolizer.from_bytes(O1_STRIPPED.read_bytes(), O1.read_bytes(), use_cache=False)
    b = Symbolizer.from_path(O1_STRIPPED, debug_file=O1, use_cache=False)
    offsets = [b.code_to_module_offset(c) for c in (0x24E8, 0xB073, 0x2C00)]
    assert [a.symbolize(o) for o in offsets] == [b.symbolize(o) for o in offsets]
    with pytest.raises(DebugFileMismatch):
        Symbolizer.from_bytes(O1_STRIPPED.read_bytes(), O3.read_bytes(), use_cache=False)


def test_external_debug_info_pointing_to_a_local_file_is_followed(tmp_path: Path) -> None:
    """A module whose external_debug_info names a file next to it finds its DWARF there."""
    stripped_bytes, debug_bytes, _bid = split_module(O1.read_bytes())
    (tmp_path / "app.debug.wasm").write_bytes(debug_bytes)
    url = b"app.debug.wasm"
    module = tmp_path / "app.wasm"
    module.write_bytes(stripped_bytes + custom("external_debug_info", leb(len(url)) + url))
    s = Symbolizer.from_path(module, use_cache=False)
    assert s.has_debug_info
    assert s.symbolize(s.code_to_module_offset(0x24E8)).symbols[-1].function == "panics::worker::handle"
