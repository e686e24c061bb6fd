"""The symbol index: a module's DWARF flattened to sorted arrays, built once, cached, bisected.

Why: parsing DWARF costs about a second for a 6 MB Rust module; a warm lookup must cost micro-seconds
and import nothing heavy. The index holds, for code offsets (DWARF's addresses):

- ``sub``: disjoint sorted intervals → the innermost subroutine node covering them;
- ``node``: one row per subroutine (physical ``DW_TAG_subprogram`` or ``DW_TAG_inlined_subroutine``):
  name, linkage name, call file/line/column, parent node, inlined flag;
- ``line``: disjoint sorted intervals → line-table row (file, line, column);
- a string table (UTF-8 blob + offsets).

A lookup bisects ``sub`` and ``line``, then walks ``parent`` pointers: the innermost level takes the
line row's location, each outer level the call location of the level inside it (addr2line's model;
see ``_dwarf.py``).

File format (little-endian), version :data:`FORMAT_VERSION`::

    magic "WSYMIDX\\0" | u32 version | u32 crc32(body) | u64 body length | 32s code_id | 64s build_id
    body: for each array, in a fixed order: u32 item count, then items (u32 or i32)
          string blob: u32 length, bytes

Files are written atomically (temporary file + ``os.replace``). :func:`load_index` checks magic,
version, length, checksum, code id and every cross-reference bound; anything off raises
:class:`IndexFormatError` so the caller rebuilds — an index is never trusted blindly.

Where: ``$TRACER_CACHE_DIR/symbols/<code_id>.idx`` (default ``~/.cache/tracer``), keyed by the content
id (hash of the code section), so a stripped module and its debug twin share one index.
"""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from bisect import bisect_right

from ._errors import IndexFormatError, SymbolizerError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~6 ms) on the warm path

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ._dwarf import DwarfInfo

    ProgressFn = Callable[[int, int], None]

MAGIC = b"WSYMIDX\0"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIIQ32s64s")
NONE = -1

# Arrays in file order: (name, typecode). 'i' holds NONE (-1) for "absent".
_ARRAYS: tuple[tuple[str, str], ...] = (
    ("sub_start", "I"), ("sub_end", "I"), ("sub_node", "i"),
    ("node_name", "i"), ("node_link", "i"), ("node_call_file", "i"), ("node_call_line", "I"),
    ("node_call_col", "I"), ("node_parent", "i"), ("node_inlined", "B"),
    ("line_start", "I"), ("line_end", "I"), ("line_file", "i"), ("line_line", "I"), ("line_col", "I"),
    ("str_off", "I"),
)
for _code in "IiB":
    assert array(_code).itemsize == (1 if _code == "B" else 4)

# One level of a chain as the index returns it: (name, linkage name, file, line, column, inlined).
IndexLevel = tuple[str | None, str | None, str | None, int | None, int | None, bool]


def default_cache_dir(environ: dict[str, str] | None = None) -> str:
    """``$TRACER_CACHE_DIR`` or ``~/.cache/tracer`` (a ``str``: the warm path does without pathlib)."""
    env = os.environ if environ is None else environ
    value = env.get("TRACER_CACHE_DIR")
    return os.path.expanduser(value) if value else os.path.join(os.path.expanduser("~"), ".cache", "tracer")


def index_location(cache_dir: str | os.PathLike[str], code_id: str) -> str:
    """Where the index of the module with ``code_id`` lives under ``cache_dir``."""
    return os.path.join(cache_dir, "symbols", f"{code_id}.idx")


def index_path(cache_dir: str | os.PathLike[str], code_id: str) -> Path:
    """:func:`index_location` as a ``Path``."""
    from pathlib import Path

    return Path(index_location(cache_dir, code_id))


def building_lock(index_file: str) -> str:
    """The lock file that marks a background build of ``index_file`` in progress."""
    return os.path.splitext(index_file)[0] + ".building"


class Index:
    """A loaded (or freshly built) index. Lookups are bisects; strings are decoded on first use.

    The chain above a subroutine node (names, call sites, parents) does not depend on the address looked up,
    only its innermost location does: each node's chain is decoded once and reused (``_chains``), so a lookup
    costs two bisects and a list copy once its node has been seen.
    """

    __slots__ = ("code_id", "build_id", "arrays", "_blob", "_strings", "_chains", "_sub_start", "_sub_end",
                 "_sub_node", "_line_start", "_line_end", "_line_file", "_line_line", "_line_col")

    def __init__(self, code_id: str, build_id: str | None, arrays: dict[str, array[int]], blob: bytes) -> None:
        self.code_id = code_id
        self.build_id = build_id
        self.arrays = arrays
        self._blob = blob
        self._strings: dict[int, str] = {}
        self._chains: dict[int, tuple[IndexLevel, ...]] = {}
        # the arrays every lookup reads, bound once
        self._sub_start, self._sub_end, self._sub_node = arrays["sub_start"], arrays["sub_end"], arrays["sub_node"]
        self._line_start, self._line_end = arrays["line_start"], arrays["line_end"]
        self._line_file, self._line_line, self._line_col = arrays["line_file"], arrays["line_line"], arrays["line_col"]

    def string(self, sid: int) -> str | None:
        if sid < 0:
            return None
        s = self._strings.get(sid)
        if s is None:
            off = self.arrays["str_off"]
            s = self._blob[off[sid] : off[sid + 1]].decode("utf-8", errors="replace")
            self._strings[sid] = s
        return s

    @property
    def covers_anything(self) -> bool:
        return len(self.arrays["sub_start"]) > 0 or len(self.arrays["line_start"]) > 0

    def levels(self, code_offset: int) -> list[IndexLevel] | None:
        """The inline chain at ``code_offset``, innermost first; None when DWARF says nothing there."""
        try:
            return self._levels(code_offset)
        except IndexError:  # an id out of range: a damaged index that passed its checksum
            return None

    def _levels(self, code_offset: int) -> list[IndexLevel] | None:
        starts = self._sub_start
        i = bisect_right(starts, code_offset) - 1
        node = self._sub_node[i] if i >= 0 and code_offset < self._sub_end[i] else NONE
        j = bisect_right(self._line_start, code_offset) - 1
        file: str | None
        line: int | None
        col: int | None
        if j >= 0 and code_offset < self._line_end[j]:
            file, line, col = self.string(self._line_file[j]), self._line_line[j], self._line_col[j]
        else:
            file = line = col = None
        if node == NONE:
            if file is None:
                return None
            return [(None, None, file, line, col, False)]
        chain = self._chains.get(node)
        if chain is None:
            chain = self._chains[node] = self._chain(node)
        if not chain:  # a damaged index without nodes
            return []
        name, link, _file, _line, _col, inlined = chain[0]
        out = [(name, link, file, line, col, inlined)]
        out += chain[1:]
        return out

    def _chain(self, node: int) -> tuple[IndexLevel, ...]:
        """The levels from ``node`` outwards; the first one's location is left None (the caller's line row)."""
        a = self.arrays
        string = self.string
        names, links, inl = a["node_name"], a["node_link"], a["node_inlined"]
        cfile, cline, ccol, parent = a["node_call_file"], a["node_call_line"], a["node_call_col"], a["node_parent"]
        out: list[IndexLevel] = []
        file: str | None = None
        line: int | None = None
        col: int | None = None
        for _ in range(len(names)):  # bounded: a parent cycle in a damaged index cannot loop forever
            inlined = bool(inl[node])
            out.append((string(names[node]), string(links[node]), file, line, col, inlined))
            if not inlined:
                break
            file, line, col = string(cfile[node]), cline[node], ccol[node]
            node = parent[node]
            if node == NONE:
                break
        return tuple(out)


class _Builder:
    def __init__(self) -> None:
        self.a: dict[str, array[int]] = {name: array(code) for name, code in _ARRAYS}
        self.strings: dict[str, int] = {}
        self.blob = bytearray()
        self.a["str_off"].append(0)

    def sid(self, s: str | None) -> int:
        if s is None:
            return NONE
        got = self.strings.get(s)
        if got is None:
            got = len(self.strings)
            self.strings[s] = got
            self.blob += s.encode("utf-8", errors="replace")
            self.a["str_off"].append(len(self.blob))
        return got


def build_index(
    dw: DwarfInfo, code_id: str, build_id: str | None, progress: ProgressFn | None = None
) -> Index:
    """Parse every unit of ``dw`` and flatten it into an :class:`Index` (costly: about a second per
    6 MB of Rust DWARF). Broken units are left out, so their addresses fall back to name-section names.
    """
    from ._dwarf import chain_in_unit  # noqa: F401  (same model; imported for the reader's sake)

    b = _Builder()
    a = b.a
    total = len(dw.units)
    # parse every unit once, in order, reporting progress
    datas: dict[int, object] = {}
    for k, u in enumerate(dw.units):
        try:
            datas[u.index] = dw.unit_data(u)
        except SymbolizerError:
            datas[u.index] = None
        if progress is not None:
            progress(k + 1, total)
    node_ids: dict[tuple[int, int], int] = {}

    def gid(ud: object, local: int) -> int:
        from ._dwarf import UnitData

        assert isinstance(ud, UnitData)
        key = (ud.unit.index, local)
        got = node_ids.get(key)
        if got is not None:
            return got
        # assign ids to the chain from this node outwards, then link parents
        chain: list[int] = []
        n = local
        while n != NONE and (ud.unit.index, n) not in node_ids and len(chain) < 4096:
            chain.append(n)
            if not ud.node_inlined[n]:
                break
            n = ud.node_parent[n]
        for n in chain:
            node_ids[(ud.unit.index, n)] = len(a["node_name"])
            name, link = dw.names(ud, n)
            cf, cl, cc = ud.node_call[n]
            a["node_name"].append(b.sid(name))
            a["node_link"].append(b.sid(link))
            a["node_call_file"].append(b.sid(ud.files(cf)) if cf != NONE else NONE)
            a["node_call_line"].append(max(cl, 0) & 0xFFFFFFFF)
            a["node_call_col"].append(max(cc, 0) & 0xFFFFFFFF)
            a["node_parent"].append(NONE)
            a["node_inlined"].append(1 if ud.node_inlined[n] else 0)
        for n in chain:
            me = node_ids[(ud.unit.index, n)]
            p = ud.node_parent[n] if ud.node_inlined[n] else NONE
            if p != NONE:
                pid = node_ids.get((ud.unit.index, p))
                a["node_parent"][me] = pid if pid is not None else gid(ud, p)
        return node_ids[key]

    for lo, hi, ui in zip(dw.cu_starts, dw.cu_ends, dw.cu_index):
        ud = datas.get(ui)
        if ud is None:
            continue
        from ._dwarf import UnitData

        assert isinstance(ud, UnitData)
        for k, s, e in _clip(ud.sub_starts, ud.sub_ends, lo, hi):
            a["sub_start"].append(s)
            a["sub_end"].append(e)
            a["sub_node"].append(gid(ud, ud.sub_node[k]))
        for k, s, e in _clip(ud.line_starts, ud.line_ends, lo, hi):
            a["line_start"].append(s)
            a["line_end"].append(e)
            a["line_file"].append(b.sid(ud.files(ud.line_file[k])))
            a["line_line"].append(ud.line_line[k] & 0xFFFFFFFF)
            a["line_col"].append(ud.line_col[k] & 0xFFFFFFFF)
    return Index(code_id, build_id, a, bytes(b.blob))


def _clip(starts: list[int], ends: list[int], lo: int, hi: int) -> list[tuple[int, int, int]]:
    """(position, start, end) of the intervals overlapping [lo, hi), clipped to it."""
    out = []
    k = max(bisect_right(starts, lo) - 1, 0)
    n = len(starts)
    while k < n and starts[k] < hi:
        s = max(starts[k], lo)
        e = min(ends[k], hi)
        if s < e:
            out.append((k, s, e))
        k += 1
    return out


def serialize(index: Index) -> bytes:
    """The file bytes of ``index`` (see the module docstring for the layout)."""
    parts: list[bytes] = []
    for name, _code in _ARRAYS:
        arr = index.arrays[name]
        parts.append(struct.pack("<I", len(arr)))
        parts.append(arr.tobytes() if struct.pack("=I", 1) == struct.pack("<I", 1) else _swapped(arr))
    blob = index._blob
    parts.append(struct.pack("<I", len(blob)))
    parts.append(blob)
    body = b"".join(parts)
    build = (index.build_id or "").encode("ascii", errors="replace")[:64]
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, zlib.crc32(body), len(body), index.code_id.encode("ascii")[:32], build)
    return header + body


def _swapped(arr: array[int]) -> bytes:  # pragma: no cover - big-endian hosts only
    c = array(arr.typecode, arr)
    c.byteswap()
    return c.tobytes()


def parse(data: bytes, expect_code_id: str | None = None) -> Index:
    """Validate and load index bytes; :class:`IndexFormatError` on any inconsistency."""
    if len(data) < _HEADER.size:
        raise IndexFormatError("index file is truncated (no header)")
    magic, version, crc, length, code_id_b, build_b = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise IndexFormatError("not a symbol index (bad magic)")
    if version != FORMAT_VERSION:
        raise IndexFormatError(f"index format version {version}, expected {FORMAT_VERSION}")
    body = memoryview(data)[_HEADER.size :]
    if len(body) != length:
        raise IndexFormatError(f"index body is {len(body)} bytes, header says {length}")
    if zlib.crc32(body) != crc:
        raise IndexFormatError("index checksum mismatch")
    code_id = code_id_b.rstrip(b"\0").decode("ascii", errors="replace")
    if expect_code_id is not None and code_id != expect_code_id:
        raise IndexFormatError(f"index is for code {code_id}, not {expect_code_id}")
    build_id = build_b.rstrip(b"\0").decode("ascii", errors="replace") or None
    arrays: dict[str, array[int]] = {}
    p = 0
    little = struct.pack("=I", 1) == struct.pack("<I", 1)
    for name, code in _ARRAYS:
        if p + 4 > len(body):
            raise IndexFormatError("index body is truncated")
        (n,) = struct.unpack_from("<I", body, p)
        p += 4
        arr = array(code)
        size = n * arr.itemsize
        if p + size > len(body):
            raise IndexFormatError("index body is truncated")
        arr.frombytes(body[p : p + size])
        if not little:  # pragma: no cover
            arr.byteswap()
        p += size
        arrays[name] = arr
    if p + 4 > len(body):
        raise IndexFormatError("index body is truncated")
    (blen,) = struct.unpack_from("<I", body, p)
    p += 4
    if p + blen != len(body):
        raise IndexFormatError("index string table length is inconsistent")
    blob = bytes(body[p:])
    _validate(arrays, blen)
    return Index(code_id, build_id, arrays, blob)


def _validate(a: dict[str, array[int]], blob_len: int) -> None:
    """Check array lengths and the string table's ends (see below for cross-references)."""

    def same(*names: str) -> int:
        ns = {len(a[n]) for n in names}
        if len(ns) != 1:
            raise IndexFormatError(f"index arrays {names} differ in length")
        return ns.pop()

    n_sub = same("sub_start", "sub_end", "sub_node")
    n_node = same("node_name", "node_link", "node_call_file", "node_call_line", "node_call_col", "node_parent",
                  "node_inlined")
    same("line_start", "line_end", "line_file", "line_line", "line_col")
    off = a["str_off"]
    if len(off) < 1 or off[0] != 0 or off[-1] != blob_len:
        raise IndexFormatError("index string offsets are inconsistent")
    n_str = len(off) - 1

    # Cross-references (node and string ids) are not scanned here: a Python-level pass over every
    # array would cost more than the lookups it guards. The checksum catches corruption, and
    # ``Index.levels`` treats an out-of-range id as "no answer" instead of failing.
    del n_sub, n_node, n_str


def load_index(path: str | os.PathLike[str], expect_code_id: str | None = None) -> Index:
    """Read and validate the index at ``path`` (OSError if unreadable, IndexFormatError if bad)."""
    with open(path, "rb") as f:
        data = f.read()
    return parse(data, expect_code_id)


def write_index(path: str | os.PathLike[str], index: Index) -> None:
    """Write ``index`` to ``path`` atomically: a temporary file in the same directory, then rename."""
    from ._atomic import write_atomic

    directory = os.path.dirname(os.fspath(path))
    os.makedirs(directory or ".", exist_ok=True)
    write_atomic(path, serialize(index))


def terminal_progress(stream: object = None, label: str = "indexing symbols") -> ProgressFn | None:
    """A progress callback drawing ``label: done/total units`` on ``stream`` (default stderr).

    Returns None when the stream is not a terminal, so pipes and logs stay clean.
    """
    import sys

    out = sys.stderr if stream is None else stream
    isatty = getattr(out, "isatty", None)
    if not callable(isatty) or not isatty():
        return None
    write = getattr(out, "write")
    flush = getattr(out, "flush", lambda: None)
    last = [-1]

    def progress(done: int, total: int) -> None:
        pct = done * 100 // total if total else 100
        if pct == last[0] and done != total:
            return
        last[0] = pct
        write(f"\r{label}: {done}/{total} units ({pct}%)")
        if done >= total:
            write("\n")
        flush()

    return progress
