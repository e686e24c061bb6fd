"""The cached index: same answers as a naive scan, validated on load, atomic, and light to use warm."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _core_helpers import FIXTURES, O1, O1_STRIPPED, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from symbolizer import IndexFormatError, Symbolizer, parse_module, terminal_progress
from symbolizer._dwarf import DwarfInfo, _parse_line_program
from symbolizer._index import FORMAT_VERSION, MAGIC, build_index, index_path, parse, serialize


class _Built:
    def __init__(self, path: Path) -> None:
        self.module = parse_module(path.read_bytes())
        self.dw = DwarfInfo(self.module.debug_sections())
        self.index = parse(serialize(build_index(self.dw, self.module.code_id, None)), self.module.code_id)


_BUILT: dict[str, _Built] = {}


def built(name: str) -> _Built:
    if name not in _BUILT:
        _BUILT[name] = _Built(FIXTURES / name)
    return _BUILT[name]


def naive(dw: DwarfInfo, a: int) -> list[tuple[object, ...]] | None:
    """The model of _dwarf.py by brute force: linear scans over units, subroutine DIEs and line rows."""
    units = [u for u in dw.units if any(lo <= a < hi for lo, hi in u.ranges)]
    if not units:
        return None
    u = units[0]  # the lowest offset wins
    ud = dw.unit_data(u)
    hits = [n for n, rs in enumerate(ud.node_ranges) if any(lo <= a < hi for lo, hi in rs)]
    loc: tuple[object, ...] = (None, None, None)
    _files, seqs = _parse_line_program(dw, u)
    for lo, hi, addrs, files, lines, cols in sorted(seqs, key=lambda s: s[0]):
        if lo <= a < hi:
            k = max(i for i, x in enumerate(addrs) if x <= a) if addrs[0] <= a else None
            if k is not None:
                loc = (ud.files(files[k]), lines[k], cols[k])
                break
    if not hits:
        return None if loc[0] is None else [(None, None, *loc, False)]
    node = hits[-1]  # DFS order: the deepest, last range wins
    out: list[tuple[object, ...]] = []
    while True:
        name, link = dw.names(ud, node)
        inl = ud.node_inlined[node]
        out.append((name, link, *loc, inl))
        if not inl or ud.node_parent[node] == -1:
            return out
        cf, cl, cc = ud.node_call[node]
        loc = (ud.files(cf), cl, cc)
        node = ud.node_parent[node]


@pytest.mark.parametrize("name", ["panics-O1.wasm", "panics-O3.wasm", "trap-c-O0.wasm"])
@settings(max_examples=300, deadline=None)
@given(frac=st.floats(min_value=0.0, max_value=1.0, exclude_max=True), jitter=st.integers(-3, 3))
def test_indexed_lookup_equals_naive_scan(name: str, frac: float, jitter: int) -> None:
    """For any code offset, the index's chain equals a brute-force scan of the same DWARF."""
    b = built(name)
    a = max(0, int(frac * b.module.code_size) + jitter)
    assert b.index.levels(a) == naive(b.dw, a)


def test_index_equals_lazy_lookup_at_every_address() -> None:
    """At every code offset of panics-O1 the loaded index answers exactly what lazy per-unit parsing does."""
    b = built("panics-O1.wasm")
    for a in range(0, b.module.code_size + 1):
        lazy = b.dw.chain(a)
        expected = [(v.name, v.linkage_name, v.file, v.line, v.column, v.inlined) for v in lazy] if lazy else None
        assert b.index.levels(a) == expected, hex(a)


def _index_bytes() -> bytes:
    b = built("trap-c-O0.wasm")
    return serialize(b.index)


def test_round_trip_keeps_identity() -> None:
    """The header keeps the code id and build id; the body round-trips byte for byte."""
    b = built("trap-c-O0.wasm")
    data = serialize(build_index(b.dw, b.module.code_id, "abcd"))
    again = parse(data, b.module.code_id)
    assert (again.code_id, again.build_id) == (b.module.code_id, "abcd")
    assert serialize(again) == data


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d[:10], "truncated"),
        (lambda d: d[:-7], "body is"),
        (lambda d: b"XXXXXXXX" + d[8:], "magic"),
        (lambda d: d[:8] + (FORMAT_VERSION + 1).to_bytes(4, "little") + d[12:], "version"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 0xFF]), "checksum"),
        (lambda d: d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 1]) + d[len(d) // 2 + 1:], "checksum"),
    ],
)
def test_damaged_index_is_refused(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    """Truncation, another magic or version, or any flipped byte is detected on load."""
    data = _index_bytes()
    assert data.startswith(MAGIC)
    with pytest.raises(IndexFormatError, match=message):
        parse(mutate(data))


def test_index_for_other_code_is_refused() -> None:
    """An index whose header names another code id is not used for this module."""
    with pytest.raises(IndexFormatError, match="is for code"):
        parse(_index_bytes(), "0" * 32)


def test_symbolizer_caches_index_then_loads_it(cache_dir: Path) -> None:
    """build_index writes <cache>/symbols/<code_id>.idx atomically; a new Symbolizer loads it and agrees."""
    s = Symbolizer.from_path(O1, cache_dir=cache_dir)
    assert s.index_state == "missing"
    lazy = [s.symbolize(o) for o in (0xB530, 0x29A5, 0x30BD, 0x199F)]
    s.build_index()
    path = index_path(cache_dir, s.code_id)
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]
    warm = Symbolizer.from_path(O1, cache_dir=cache_dir)
    assert warm.index_state == "loaded"
    assert [warm.symbolize(o) for o in (0xB530, 0x29A5, 0x30BD, 0x199F)] == lazy


def test_corrupt_cached_index_is_dropped_and_rebuilt(cache_dir: Path) -> None:
    """A damaged index file is never trusted: it is removed, lookups stay right, and the next build replaces it."""
    s = Symbolizer.from_path(O1, cache_dir=cache_dir)
    good = s.symbolize(0x29A5)
    s.build_index()
    path = index_path(cache_dir, s.code_id)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x55
    path.write_bytes(bytes(data))
    again = Symbolizer.from_path(O1, cache_dir=cache_dir)
    assert again.index_state == "corrupt" and not path.exists()
    assert again.symbolize(0x29A5) == good
    again.build_index()
    assert Symbolizer.from_path(O1, cache_dir=cache_dir).index_state == "loaded"


def test_stripped_module_uses_the_twins_cached_index(cache_dir: Path) -> None:
    """The index is keyed by code id, so a stripped module symbolizes from the index its twin built."""
    full = Symbolizer.from_path(O1, cache_dir=cache_dir)
    full.build_index()
    stripped = Symbolizer.from_path(O1_STRIPPED, cache_dir=cache_dir)
    assert stripped.index_state == "loaded" and stripped.has_debug_info
    code = full.module_to_code_offset(0x29A5)
    assert stripped.symbolize(stripped.code_to_module_offset(code)).symbols == full.symbolize(0x29A5).symbols


def test_warm_lookup_imports_neither_pyelftools_nor_the_dwarf_reader(cache_dir: Path) -> None:
    """With a cached index, a fresh process symbolizes without importing elftools or symbolizer._dwarf."""
    Symbolizer.from_path(O1, cache_dir=cache_dir).build_index()
    code = (
        "import sys; from symbolizer import Symbolizer; "
        f"s = Symbolizer.from_path({str(O1)!r}, cache_dir={str(cache_dir)!r}); "
        "f = s.symbolize(0x29a5); assert s.index_state == 'loaded', s.index_state; "
        "assert f.symbols[-1].function == 'panics::worker::handle', f; print('ok')"
    )
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]
    imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "symbolizer._index" in imported
    assert not [m for m in imported if m.startswith("elftools") or m == "symbolizer._dwarf"]


def test_background_build_writes_the_index(cache_dir: Path) -> None:
    """spawn_index_build starts a detached process that leaves a loadable index and removes its lock."""
    s = Symbolizer.from_path(O1, cache_dir=cache_dir)
    assert s.spawn_index_build() is True
    assert s.spawn_index_build() is False  # the lock keeps a second build from starting
    path = index_path(cache_dir, s.code_id)
    for _ in range(600):  # waiting for the child, not timing it
        if path.exists() and not path.with_suffix(".building").exists():
            break
        time.sleep(0.1)
    assert Symbolizer.from_path(O1, cache_dir=cache_dir).index_state == "loaded"


def test_build_index_reports_progress() -> None:
    """build_index calls progress with (done, total) per unit, ending at total."""
    calls: list[tuple[int, int]] = []
    Symbolizer.from_path(FIXTURES / "trap-c-O0.wasm", use_cache=False).build_index(lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1] and [d for d, _t in calls] == list(range(1, len(calls) + 1))


def test_terminal_progress_draws_only_on_a_tty() -> None:
    """The progress printer is None for a pipe and draws a counter on a terminal."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert terminal_progress(io.StringIO()) is None
    out = Tty()
    draw = terminal_progress(out)
    assert draw is not None
    draw(1, 2)
    draw(2, 2)
    assert "1/2 units" in out.getvalue() and out.getvalue().endswith("\n")


def test_unwritable_cache_keeps_the_built_index_in_use(tmp_path: Path) -> None:
    """When the cache cannot be written, build_index raises IndexWriteError yet the instance uses the index."""
    from symbolizer import IndexWriteError

    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    s = Symbolizer.from_path(FIXTURES / "trap-c-O0.wasm", cache_dir=blocker)
    with pytest.raises(IndexWriteError, match="cannot write"):
        s.build_index()
    assert s.index_state == "built" and s.symbolize(s.code_to_module_offset(0xE)).symbols
