"""Fuzzing with hypothesis over mutated real modules: only SymbolizerError escapes, nothing hangs or balloons.

Mutations of real fixtures: byte flips anywhere or inside one chosen section (code, name, each ``.debug_*``),
truncation, LEB corruption (a section's size field made to lie, or turned into an overlong LEB), and splices
of random bytes. Each example goes through the whole path: ``parse_module``, ``Symbolizer.from_bytes``,
lookups at every function start and random addresses, and a full index build.

A hang is caught by a SIGALRM watchdog per example (hypothesis' own deadline only reports slowness after the
fact); memory by the peak RSS (``resource.getrusage``) across the whole file.
"""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbolizer import Symbolizer, SymbolizerError
from symbolizer._model import RawFrame
from symbolizer._traces import find_frames
from symbolizer._wasm import iter_sections, parse_module

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
C_O0 = (FIXTURES / "trap-c-O0.wasm").read_bytes()  # 140 KB, DWARF 4 from clang: fast enough for many examples
LIB = (FIXTURES / "lib.wasm").read_bytes()  # 5 MB, rustc's DWARF: fewer examples, lazy path only
WATCHDOG_S = 20  # far above any honest example (~0.2 s here); only a hang gets there
MAX_RSS_GROWTH = 1024 * 1024 * 1024  # 1 GiB over the whole file

SETTINGS = settings(
    deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


class Hang(Exception):
    """An example ran past the watchdog."""


@contextmanager
def watchdog(seconds: int = WATCHDOG_S) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise Hang(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


@pytest.fixture(scope="module", autouse=True)
def bounded_memory() -> Iterator[None]:
    before = _peak_rss()
    yield
    assert _peak_rss() - before < MAX_RSS_GROWTH


def _sections(data: bytes) -> list[tuple[str, int, int]]:
    return [(s.name or f"id{s.id}", s.offset, s.size) for s in iter_sections(data)]


C_SECTIONS = _sections(C_O0)
LIB_SECTIONS = _sections(LIB)


Op = tuple[str, int, int, bytes]


@st.composite
def mutations(draw: st.DrawFn, size: int, sections: list[tuple[str, int, int]]) -> list[Op]:
    """A short list of edits (kind, position, value, bytes) to apply to a module of ``size`` bytes.

    Drawn as a plan rather than as the mutated bytes, so a failing example prints (and shrinks) readably.
    """
    ops: list[Op] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "flip_in_section", "truncate", "size_lie", "overlong", "splice"]))
        if kind in ("flip_in_section", "size_lie", "overlong"):
            _name, off, sec_size = draw(st.sampled_from(sections))
            if kind == "flip_in_section":
                pos = off + draw(st.integers(0, max(sec_size - 1, 0)))
                value = draw(st.integers(0, 255))
            else:
                pos = off  # the size field sits right before the payload; wasm-ld pads it to 5 bytes
                value = draw(st.sampled_from([0, 1, sec_size - 1, sec_size + 1, size, 2**32 - 1, 2**31]))
            ops.append((kind, pos, max(value, 0), b""))
        elif kind == "splice":
            ops.append((kind, draw(st.integers(0, size)), 0, draw(st.binary(min_size=1, max_size=64))))
        else:
            ops.append((kind, draw(st.integers(0, size - 1)), draw(st.integers(1, 255)), b""))
    return ops


def _leb5(n: int) -> bytes:
    """``n`` as a 5-byte (padded) unsigned LEB128, so it replaces a padded size field in place."""
    return bytes([(n >> (7 * i) & 0x7F) | (0x80 if i < 4 else 0) for i in range(5)])


def apply(data: bytes, ops: list[Op]) -> bytes:
    buf = bytearray(data)
    for kind, pos, value, blob in ops:
        if kind == "truncate":
            del buf[pos:]
        elif kind == "splice":
            buf[pos:pos] = blob
        elif kind == "size_lie" and 9 <= pos - 5 and pos <= len(buf):
            buf[pos - 5 : pos] = _leb5(value & 0xFFFFFFFF)
        elif kind == "overlong" and 9 <= pos - 5 and pos <= len(buf):
            buf[pos - 5 : pos] = b"\xff\xff\xff\xff\xff"  # continues past 5 bytes: an overlong LEB
        elif kind == "flip" and pos < len(buf):
            buf[pos] ^= value
        elif kind == "flip_in_section" and pos < len(buf):
            buf[pos] = value
    return bytes(buf)


DWARF_OPS = ["flip", "truncate", "insert", "zero", "u32_lie"]
DwarfOp = tuple[str, str, int, int, bytes]


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def with_custom_sections(data: bytes, replace: dict[str, bytes]) -> bytes:
    """``data`` with the payloads of the named custom sections replaced and every size re-encoded.

    The module stays well-formed, so the mutation reaches the DWARF reader instead of the wasm reader.
    """
    out = bytearray(data[:8])
    for sec in iter_sections(data):
        if sec.name is not None and sec.name in replace:
            name = sec.name.encode()
            body = _leb(len(name)) + name + replace[sec.name]
        else:
            start = sec.offset if sec.name is None else sec.offset - len(sec.name.encode()) - len(_leb(len(sec.name.encode())))
            body = data[start : sec.offset + sec.size]
        out += bytes([sec.id]) + _leb(len(body)) + body
    return bytes(out)


@st.composite
def dwarf_mutations(draw: st.DrawFn, sections: list[tuple[str, int, int]]) -> list[DwarfOp]:
    """Edits inside .debug_* payloads: byte flips, truncation, inserted bytes, zeroed bytes (line_range 0,
    abbreviation code 0), and 32-bit fields overwritten with lies (unit lengths, offsets)."""
    ops: list[DwarfOp] = []
    for _ in range(draw(st.integers(1, 6))):
        name, _off, size = draw(st.sampled_from(sections))
        kind = draw(st.sampled_from(DWARF_OPS))
        pos = draw(st.integers(0, max(size - 1, 0)))
        value = draw(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0xFFFFFFF0, 0xFFFFFFFF, size, size * 2]))
        blob = draw(st.binary(min_size=1, max_size=32)) if kind == "insert" else b""
        ops.append((name, kind, pos, value, blob))
    return ops


def apply_dwarf(data: bytes, ops: list[DwarfOp]) -> bytes:
    payloads = {s.name: bytearray(data[s.offset : s.offset + s.size]) for s in iter_sections(data) if s.name}
    for name, kind, pos, value, blob in ops:
        buf = payloads[name]
        if pos >= len(buf):
            continue
        if kind == "flip":
            buf[pos] ^= (value & 0xFF) or 0x5A
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = blob
        elif kind == "zero":
            buf[pos] = 0
        else:
            buf[pos : pos + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
    return with_custom_sections(data, {k: bytes(v) for k, v in payloads.items() if k.startswith(".debug_")})


def _exercise(data: bytes, *, index: bool, lookups: int) -> None:
    """The whole path; only SymbolizerError may come out of it."""
    try:
        module = parse_module(data)
    except SymbolizerError:
        return
    try:
        s = Symbolizer.from_bytes(data, use_cache=False)
    except SymbolizerError:
        return
    starts = [module.code_start + b for b in module.body_starts[:lookups]]
    for offset in [*starts, 0, module.code_start, len(data) - 1, len(data) + 10, 2**40]:
        frame = s.symbolize(offset)
        assert frame.address == offset
        for sym in frame.symbols:
            assert isinstance(sym.function, str)
    s.symbolize_frames([RawFrame(0, None, starts[0] if starts else 1, None), RawFrame(3, "x", None, None)])
    if index:
        try:
            s.build_index(write=False)
        except SymbolizerError:
            return
        for offset in starts:
            s.symbolize(offset)


@settings(SETTINGS, max_examples=200)
@given(mutations(len(C_O0), C_SECTIONS))
def test_mutated_c_module_whole_path(ops: list[Op]) -> None:
    """A mutated C module (DWARF from clang) goes through reading, lookups and indexing raising only our errors."""
    with watchdog():
        _exercise(apply(C_O0, ops), index=True, lookups=400)


DEBUG_SECTIONS = [s for s in C_SECTIONS if s[0].startswith(".debug_")]


@settings(SETTINGS, max_examples=250)
@given(dwarf_mutations(DEBUG_SECTIONS))
def test_mutated_dwarf_sections(ops: list[DwarfOp]) -> None:
    """Edits inside the .debug_* payloads of a still well-formed module: DWARF errors stay ours."""
    with watchdog():
        _exercise(apply_dwarf(C_O0, ops), index=True, lookups=400)


LIB_DEBUG = [s for s in LIB_SECTIONS if s[0] in (".debug_info", ".debug_abbrev", ".debug_line", ".debug_ranges")]


@settings(SETTINGS, max_examples=25)
@given(dwarf_mutations(LIB_DEBUG))
def test_mutated_rust_dwarf_lazy_lookups(ops: list[DwarfOp]) -> None:
    """rustc's DWARF, mutated inside a well-formed module: lazy lookups never raise and never hang."""
    with watchdog():
        _exercise(apply_dwarf(LIB, ops), index=False, lookups=60)


@settings(SETTINGS, max_examples=400)
@given(st.binary(max_size=300).map(lambda b: b"\x00asm\x01\x00\x00\x00" + b))
def test_random_bytes_after_the_header(data: bytes) -> None:
    """Random section streams behind a valid header are read or refused with SymbolizerError, never a crash."""
    with watchdog():
        _exercise(data, index=True, lookups=20)


@settings(SETTINGS, max_examples=200)
@given(st.lists(st.one_of(
    st.text(max_size=120),
    st.from_regex(r"\s*at [^\n]{0,30} \(wasm://wasm/[0-9a-f]{0,8}:wasm-function\[\d{1,12}\]:0x[0-9a-f]{1,20}\)", fullmatch=True),
    st.from_regex(r"\s*\d{1,5}:\s+0x[0-9a-f]{1,20} - [^\n]{0,40}", fullmatch=True),
), max_size=30))
def test_trace_parser_takes_any_text(lines: list[str]) -> None:
    """Any text (including huge offsets and indexes) parses into frames without raising."""
    with watchdog():
        for frame in find_frames(lines):
            assert frame.raw.module_offset is not None and frame.raw.module_offset >= 0
