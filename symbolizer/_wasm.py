"""A strict, small reader for the parts of a WebAssembly module the symbolizer needs.

Sections and their offsets, the code section (its payload start, the function bodies, the content id),
the ``name`` section (module and function names), and the tool-conventions custom sections
``build_id`` (BuildId.md: one vector of bytes), ``external_debug_info`` (DebugInfo.md: one UTF-8 URL)
and ``producers`` (ProducersSection.md). The ``.debug_*`` custom sections are handed over as bytes.

Offsets are named after what they count from: a ``module_offset`` counts from the first byte of the
file (what V8 and wasmtime print); a ``code_offset`` counts from the first byte of the code section's
payload, i.e. right after the section's size field, where the function count starts (what DWARF for
wasm uses, tool-conventions Debugging.md). :func:`module_to_code_offset` converts.

Every length and count is checked against the bytes that remain, so a hostile module fails with
:class:`~symbolizer._errors.InvalidModule` rather than a hang or a huge allocation. The name section
and the tool-convention sections are advisory: when malformed they are ignored, not fatal.
"""

from __future__ import annotations

import os
import sys
from bisect import bisect_right
from mmap import mmap

from ._errors import InvalidModule, ModuleNotReadable

try:  # the builtin SHA-256 imports in 0.3 ms; hashlib's OpenSSL binding costs ~4 ms per process
    from _sha256 import sha256 as _sha256_new
except ImportError:  # pragma: no cover - Python >= 3.12 renamed it; hashlib works everywhere
    from hashlib import sha256 as _sha256_new  # type: ignore[assignment,unused-ignore]

Buffer = bytes | bytearray | memoryview | mmap

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the warm path
if TYPE_CHECKING:
    from collections.abc import Callable
    from hashlib import _Hash

    DebugReader = Callable[[int, int], bytes]

MAGIC = b"\x00asm"
VERSION_1 = b"\x01\x00\x00\x00"

SEC_CUSTOM = 0
SEC_IMPORT = 2
SEC_CODE = 10

_EXTERNAL_KIND_FUNC = 0


def encode_uleb(n: int) -> bytes:
    """Encode ``n`` (≥ 0) as unsigned LEB128, the inverse of :func:`read_uleb`."""
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_uleb(data: Buffer, pos: int, end: int, max_bits: int = 64) -> tuple[int, int]:
    """Decode an unsigned LEB128 at ``pos``; return (value, next position). Bounded by ``end``."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise InvalidModule(f"truncated LEB128 at offset {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= max_bits + 7:
            raise InvalidModule(f"LEB128 too long at offset {pos}")


def read_sleb(data: Buffer, pos: int, end: int, max_bits: int = 64) -> tuple[int, int]:
    """Decode a signed LEB128 at ``pos``; return (value, next position). Bounded by ``end``."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise InvalidModule(f"truncated LEB128 at offset {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, pos
        if shift >= max_bits + 7:
            raise InvalidModule(f"LEB128 too long at offset {pos}")


class _Reader:
    """A cursor over ``data[pos:end]`` whose every read is bounds-checked."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: Buffer, pos: int, end: int) -> None:
        self.data = data
        self.pos = pos
        self.end = end

    def u8(self) -> int:
        if self.pos >= self.end:
            raise InvalidModule(f"unexpected end of data at offset {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self, max_bits: int = 32) -> int:
        value, self.pos = read_uleb(self.data, self.pos, self.end, max_bits)
        return value

    def count(self, min_item_size: int = 1) -> int:
        """A vector length, refused when the remaining bytes cannot possibly hold it."""
        n = self.uleb()
        if n * min_item_size > self.end - self.pos:
            raise InvalidModule(f"vector of {n} items at offset {self.pos} exceeds its section")
        return n

    def raw(self, n: int) -> bytes:
        if n < 0 or n > self.end - self.pos:
            raise InvalidModule(f"length {n} at offset {self.pos} exceeds its section")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def name(self) -> str:
        return self.raw(self.uleb()).decode("utf-8", errors="replace")


class Section:
    """One section: its id, its name (custom sections only), and where its payload lies (module offsets)."""

    __slots__ = ("id", "name", "offset", "size")

    def __init__(self, id: int, name: str | None, offset: int, size: int) -> None:
        self.id = id
        self.name = name
        self.offset = offset
        self.size = size

    def __repr__(self) -> str:
        return f"Section(id={self.id}, name={self.name!r}, offset={self.offset}, size={self.size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Section) and (self.id, self.name, self.offset, self.size) == (
            other.id, other.name, other.offset, other.size)

    def __hash__(self) -> int:
        return hash((self.id, self.name, self.offset, self.size))


class WasmModule:
    """What the symbolizer knows about one module, read once by :func:`parse_module`.

    ``code_start`` is the module offset of the code section payload; ``body_starts``/``body_ends`` are
    the code offsets of each defined function's body (after its size field), in index order, so the
    function index of body ``i`` is ``func_imports + i``. ``code_id`` is the first 32 hex digits of the
    SHA-256 of the code section payload: identical code, identical id, whatever else was stripped.
    The name section is decoded on first use (a warm lookup that finds DWARF never needs it).
    """

    __slots__ = ("sections", "code_start", "code_size", "code_id", "func_imports", "body_starts", "body_ends",
                 "build_id", "external_debug_info", "producers", "data", "_names", "_debug_reader")

    def __init__(
        self,
        *,
        sections: tuple[Section, ...],
        code_start: int,
        code_size: int,
        code_id: str,
        func_imports: int,
        body_starts: tuple[int, ...],
        body_ends: tuple[int, ...],
        build_id: str | None,
        external_debug_info: str | None,
        producers: dict[str, tuple[tuple[str, str], ...]],
        data: Buffer,
        debug_reader: DebugReader | None = None,
    ) -> None:
        self.sections = sections
        self.code_start = code_start
        self.code_size = code_size
        self.code_id = code_id
        self.func_imports = func_imports
        self.body_starts = body_starts
        self.body_ends = body_ends
        self.build_id = build_id
        self.external_debug_info = external_debug_info
        self.producers = producers
        self.data = data
        self._names: tuple[str | None, dict[int, str]] | None = None
        self._debug_reader = debug_reader

    def __repr__(self) -> str:
        return f"WasmModule(code_id={self.code_id!r}, code_start={self.code_start}, code_size={self.code_size})"

    def _name_info(self) -> tuple[str | None, dict[int, str]]:
        if self._names is None:
            got: tuple[str | None, dict[int, str]] = (None, {})
            for s in self.sections:
                if s.id == SEC_CUSTOM and s.name == "name":
                    try:
                        got = _name_section(self.data, s)
                    except InvalidModule:
                        pass  # advisory: a malformed name section is ignored
            self._names = got
        return self._names

    @property
    def module_name(self) -> str | None:
        """The module name from the name section, if any."""
        return self._name_info()[0]

    @property
    def function_names(self) -> dict[int, str]:
        """Function index → name, from the name section."""
        return self._name_info()[1]

    @property
    def has_dwarf(self) -> bool:
        """True when the module carries a ``.debug_info`` section."""
        return any(s.id == SEC_CUSTOM and s.name == ".debug_info" for s in self.sections)

    def debug_sections(self, names: frozenset[str] | None = None) -> dict[str, bytes]:
        """The ``.debug_*`` custom sections by name (copied out of the module on each call).

        ``names`` limits the result to those sections (the symbolizer never reads .debug_loc or
        .debug_pub*, which are a third of a Rust module's DWARF).
        """
        out: dict[str, bytes] = {}
        for s in self.sections:
            if s.id == SEC_CUSTOM and s.name is not None and s.name.startswith(".debug_"):
                if names is not None and s.name not in names:
                    continue
                if self._debug_reader is not None:
                    out[s.name] = self._debug_reader(s.offset, s.size)
                else:
                    out[s.name] = bytes(self.data[s.offset : s.offset + s.size])
        return out

    def code_payload(self) -> bytes:
        """The code section payload (what ``code_id`` hashes)."""
        return bytes(self.data[self.code_start : self.code_start + self.code_size])

    def module_to_code_offset(self, module_offset: int) -> int:
        """The code offset of ``module_offset`` in this module."""
        return module_to_code_offset(module_offset, self.code_start)

    def code_to_module_offset(self, code_offset: int) -> int:
        """The module offset of ``code_offset`` in this module."""
        return code_to_module_offset(code_offset, self.code_start)

    def function_index_at(self, code_offset: int) -> int | None:
        """The index (imports counted) of the function whose body holds ``code_offset``, if any."""
        i = bisect_right(self.body_starts, code_offset) - 1
        if i >= 0 and code_offset < self.body_ends[i]:
            return self.func_imports + i
        return None

    def function_name(self, func_index: int) -> str | None:
        """The name section's name for ``func_index``, if it has one."""
        return self._name_info()[1].get(func_index)


def module_to_code_offset(module_offset: int, code_start: int) -> int:
    """Convert a module offset (from file start, as V8/wasmtime print) to a code offset (as DWARF uses).

    ``code_start`` is the module offset of the code section payload (:attr:`WasmModule.code_start`).
    """
    return module_offset - code_start


def code_to_module_offset(code_offset: int, code_start: int) -> int:
    """Convert a code offset (from the code section payload, as DWARF uses) to a module offset."""
    return code_offset + code_start


def _sha256(data: Buffer) -> _Hash:
    """OpenSSL's SHA-256 when ``hashlib`` is already loaded (3x faster here: it uses the CPU's SHA
    instructions), else the builtin one, which is cheaper to import on the warm ``tracer symbolize`` path."""
    hashlib = sys.modules.get("hashlib")
    digest: _Hash = hashlib.sha256(data) if hashlib is not None else _sha256_new(data)
    return digest


def sha256_digest(data: Buffer) -> bytes:
    """SHA-256 of ``data``."""
    return bytes(_sha256(data).digest())


def code_id_of(code_payload: bytes | memoryview) -> str:
    """The content id of a module: first 32 hex digits of SHA-256 over the code section payload."""
    return str(_sha256(code_payload).hexdigest())[:32]


def iter_sections(data: Buffer) -> list[Section]:
    """Split a module into sections, checking the header and every size against the file."""
    if len(data) < 8 or data[:4] != MAGIC:
        raise InvalidModule("not a WebAssembly module (bad magic)")
    if data[4:8] != VERSION_1:
        raise InvalidModule(f"unsupported WebAssembly version {data[4:8].hex()} (components are not modules)")
    out: list[Section] = []
    pos = 8
    end = len(data)
    while pos < end:
        sid = data[pos]
        if sid > 13:
            raise InvalidModule(f"unknown section id {sid} at offset {pos}")
        size, pos = read_uleb(data, pos + 1, end, 32)
        if size > end - pos:
            raise InvalidModule(f"section {sid} at offset {pos} runs past the end of the file")
        name = None
        payload = pos
        if sid == SEC_CUSTOM:
            r = _Reader(data, pos, pos + size)
            name = r.name()
            payload = r.pos
        out.append(Section(sid, name, payload, pos + size - payload))
        pos += size
    return out


def _count_func_imports(data: Buffer, sec: Section) -> int:
    r = _Reader(data, sec.offset, sec.offset + sec.size)
    funcs = 0
    for _ in range(r.count(3)):
        r.name()
        r.name()
        kind = r.u8()
        if kind == 0:
            r.uleb()
            funcs += 1
        elif kind == 1:  # table: reftype, limits
            r.u8()
            _limits(r)
        elif kind == 2:  # memory: limits
            _limits(r)
        elif kind == 3:  # global: valtype, mutability
            r.u8()
            r.u8()
        elif kind == 4:  # tag: attribute, type index
            r.u8()
            r.uleb()
        else:
            raise InvalidModule(f"unknown import kind {kind}")
    return funcs


def _limits(r: _Reader) -> None:
    flags = r.u8()
    r.uleb(64)
    if flags & 1:
        r.uleb(64)


def _code_bodies(data: Buffer, sec: Section) -> tuple[tuple[int, ...], tuple[int, ...]]:
    r = _Reader(data, sec.offset, sec.offset + sec.size)
    starts: list[int] = []
    ends: list[int] = []
    for _ in range(r.count(1)):
        size = r.uleb()
        start = r.pos
        r.raw(size)
        starts.append(start - sec.offset)
        ends.append(r.pos - sec.offset)
    if r.pos != r.end:
        raise InvalidModule("code section has trailing bytes")
    return tuple(starts), tuple(ends)


def _name_section(data: Buffer, sec: Section) -> tuple[str | None, dict[int, str]]:
    """Module name and function names (subsections 0 and 1); others are skipped."""
    r = _Reader(data, sec.offset, sec.offset + sec.size)
    module_name: str | None = None
    names: dict[int, str] = {}
    while r.pos < r.end:
        sub = r.u8()
        size = r.uleb()
        body = _Reader(data, r.pos, r.pos + size)
        r.raw(size)
        if sub == 0:
            module_name = body.name()
        elif sub == 1:
            names = _name_map(bytes(data[body.pos : body.end]))
    return module_name, names


def _name_map(buf: bytes) -> dict[int, str]:
    """A name map (index → UTF-8 name), decoded from its own bytes.

    The same checks as :class:`_Reader`'s ``count``/``uleb``/``name``, with one-byte LEB128s (nearly every
    index and length) decoded inline: a Rust module's map has hundreds of names, and a warm lookup that
    meets a function DWARF leaves unnamed decodes it.
    """
    end = len(buf)
    count, pos = read_uleb(buf, 0, end, 32)
    if count * 2 > end - pos:
        raise InvalidModule(f"vector of {count} items exceeds its section")
    names: dict[int, str] = {}
    for _ in range(count):
        if pos < end and buf[pos] < 0x80:
            idx = buf[pos]
            pos += 1
        else:
            idx, pos = read_uleb(buf, pos, end, 32)
        if pos < end and buf[pos] < 0x80:
            n = buf[pos]
            pos += 1
        else:
            n, pos = read_uleb(buf, pos, end, 32)
        if n > end - pos:
            raise InvalidModule(f"name of {n} bytes exceeds its section")
        names[idx] = buf[pos : pos + n].decode("utf-8", errors="replace")
        pos += n
    return names


def _producers(data: Buffer, sec: Section) -> dict[str, tuple[tuple[str, str], ...]]:
    r = _Reader(data, sec.offset, sec.offset + sec.size)
    out: dict[str, tuple[tuple[str, str], ...]] = {}
    for _ in range(r.count(2)):
        fname = r.name()
        values = []
        for _ in range(r.count(2)):
            values.append((r.name(), r.name()))
        out[fname] = tuple(values)
    return out


def identify(data: Buffer) -> tuple[str, str | None]:
    """``(code_id, build_id)`` from the section headers alone: no function bodies, names or producers are read.

    The tracer calls this per module version on the cold-start path, where ``parse_module`` (which walks every
    code body) costs several times more. Raises :class:`InvalidModule` like ``parse_module``.
    """
    sections = iter_sections(data)
    code = [s for s in sections if s.id == SEC_CODE]
    if len(code) != 1:
        raise InvalidModule("module has no code section" if not code else "module has several code sections")
    build_id: str | None = None
    for s in sections:
        if s.id == SEC_CUSTOM and s.name == "build_id":
            try:
                r = _Reader(data, s.offset, s.offset + s.size)
                build_id = r.raw(r.uleb()).hex() or None
            except InvalidModule:
                pass
    payload = memoryview(data)[code[0].offset : code[0].offset + code[0].size]
    return code_id_of(payload), build_id


def parse_module(data: Buffer, debug_reader: DebugReader | None = None) -> WasmModule:
    """Read a module's sections, code bodies, names, build id and debug sections.

    Raises :class:`InvalidModule` when the structure is broken or there is no code section.
    ``debug_reader(offset, size)``, when given, supplies the ``.debug_*`` payloads instead of ``data``
    (see :func:`read_module_file`).
    """
    sections = iter_sections(data)
    code = [s for s in sections if s.id == SEC_CODE]
    if len(code) != 1:
        raise InvalidModule("module has no code section" if not code else "module has several code sections")
    code_sec = code[0]
    imports = [s for s in sections if s.id == SEC_IMPORT]
    func_imports = _count_func_imports(data, imports[0]) if imports else 0
    starts, ends = _code_bodies(data, code_sec)

    build_id: str | None = None
    external: str | None = None
    producers: dict[str, tuple[tuple[str, str], ...]] = {}
    for s in sections:
        if s.id != SEC_CUSTOM or s.name is None:
            continue
        try:
            if s.name == "build_id":
                r = _Reader(data, s.offset, s.offset + s.size)
                build_id = r.raw(r.uleb()).hex() or None
            elif s.name == "external_debug_info":
                external = _Reader(data, s.offset, s.offset + s.size).name()
            elif s.name == "producers":
                producers = _producers(data, s)
        except InvalidModule:
            continue  # advisory sections: a malformed one is ignored, the code is still symbolizable
    payload = memoryview(data)[code_sec.offset : code_sec.offset + code_sec.size]
    return WasmModule(
        sections=tuple(sections),
        code_start=code_sec.offset,
        code_size=code_sec.size,
        code_id=code_id_of(payload),
        func_imports=func_imports,
        body_starts=starts,
        body_ends=ends,
        build_id=build_id,
        external_debug_info=external,
        producers=producers,
        data=data,
        debug_reader=debug_reader,
    )


_SPARSE_THRESHOLD = 1 << 20


def read_module_file(path: str | os.PathLike[str]) -> WasmModule:
    """Read and parse the module at ``path``, skipping the bytes of its ``.debug_*`` sections.

    A Rust module is ~95% DWARF; a warm lookup needs none of it. Small files are read whole; large
    ones section by section into a buffer with holes where the DWARF is, which is read on demand
    (and refused with :class:`InvalidModule` if the file changed in between). The buffer is an
    anonymous memory mapping, not a ``bytearray``: a bytearray zero-fills every page up front (~8 ms
    for a 6 MB module, a fifth of a warm ``tracer symbolize``), a mapping only the pages written.
    It maps no file, so a file truncated under us cannot fault (SIGBUS) on a later read.
    Raises :class:`ModuleNotReadable` when the file cannot be read.
    """
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size <= _SPARSE_THRESHOLD:
                return parse_module(f.read())
            buf = mmap(-1, st.st_size)
            view = memoryview(buf)
            head = f.read(min(st.st_size, 4096))
            view[: len(head)] = head
            pos = 8
            end = st.st_size
            if len(head) < 8:
                return parse_module(bytes(buf[: len(head)]))
            while pos < end:
                hdr = os.pread(f.fileno(), 16, pos)
                if not hdr:
                    break
                size, body = read_uleb(hdr, 1, len(hdr), 32)
                payload_end = pos + (body - 0) + size
                skip_from = None
                if hdr[0] == SEC_CUSTOM:
                    name_hdr = os.pread(f.fileno(), 5 + 7, pos + body)
                    try:
                        n, q = read_uleb(name_hdr, 0, len(name_hdr), 32)
                    except InvalidModule:
                        n, q = -1, 0
                    if name_hdr[q : q + 7] == b".debug_" and n >= 7:
                        # keep the section header and name, leave the payload as a hole
                        skip_from = pos + body + q + n
                stop = min(payload_end, end) if skip_from is None else min(skip_from, end)
                if stop > pos:
                    f.seek(pos)
                    f.readinto(view[pos:stop])
                if payload_end <= pos:
                    break
                pos = payload_end
    except OSError as exc:
        raise ModuleNotReadable(f"cannot read module {path}: {exc.strerror or exc}") from exc
    stamp = (st.st_size, st.st_mtime_ns)

    def read_debug(offset: int, size: int) -> bytes:
        try:
            with open(path, "rb") as g:
                now = os.fstat(g.fileno())
                if (now.st_size, now.st_mtime_ns) != stamp:
                    raise InvalidModule(f"module {path} changed while it was being read")
                return os.pread(g.fileno(), size, offset)
        except OSError as exc:
            raise InvalidModule(f"cannot re-read DWARF of {path}: {exc.strerror or exc}") from exc

    return parse_module(buf, read_debug)
