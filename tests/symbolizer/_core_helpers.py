"""Helpers shared by the symbolizer core tests: fixture paths, a tiny wasm/DWARF writer, llvm oracle."""

from __future__ import annotations

from symbolizer._wasm import encode_uleb

import json
import shutil
import struct
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
O1 = FIXTURES / "panics-O1.wasm"
O1_STRIPPED = FIXTURES / "panics-O1.stripped.wasm"
DWARF_FIXTURES = [
    "panics-O0.wasm", "panics-O1.wasm", "panics-Os.wasm", "panics-O3.wasm", "panics-v0.wasm", "lib.wasm",
    "trap-c-O0.wasm", "trap-c-O1.wasm",
]
LLVM_SYMBOLIZER = "llvm-symbolizer-14"


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


leb = encode_uleb


def section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + leb(len(payload)) + payload


def custom(name: str, payload: bytes) -> bytes:
    n = name.encode()
    return section(0, leb(len(n)) + n + payload)


def name_section(names: dict[int, str], module_name: str | None = None) -> bytes:
    subs = b""
    if module_name is not None:
        m = module_name.encode()
        subs += bytes([0]) + leb(len(leb(len(m)) + m)) + leb(len(m)) + m
    body = leb(len(names)) + b"".join(leb(i) + leb(len(s.encode())) + s.encode() for i, s in sorted(names.items()))
    subs += bytes([1]) + leb(len(body)) + body
    return custom("name", subs)


# One function whose body occupies code offsets [2, 8): count=1, size=6, body = no locals, 4 nops, end.
CODE_SECTION = section(10, b"\x01\x06\x00\x01\x01\x01\x01\x0b")
FUNC_LO, FUNC_HI = 2, 8
TYPE_SECTION = section(1, b"\x01\x60\x00\x00")  # one type: () -> ()
FUNCTION_SECTION = section(3, b"\x01\x00")  # one function of type 0


def module(*sections: bytes) -> bytes:
    return b"\x00asm\x01\x00\x00\x00" + b"".join(sections)


def dwarf_module(
    *,
    extra_sub_attrs: bytes = b"",
    extra_abbrev: bytes = b"",
    sub_children: bool = False,
    sub_payload: bytes = b"",
    line_range: int = 14,
    body_dies: bytes | None = None,
    abbrev_override: bytes | None = None,
) -> bytes:
    """A one-function module with hand-written DWARF 4 for it (unit, one subprogram, a line row).

    Abbrev 1: compile_unit (name string, stmt_list sec_offset, low_pc addr, high_pc data4), children.
    Abbrev 2: subprogram (name string, low_pc addr, high_pc data4, then ``extra_abbrev`` specs).
    """
    sub_specs = b"\x03\x08\x11\x01\x12\x06" + extra_abbrev
    abbrev = abbrev_override if abbrev_override is not None else (
        b"\x01\x11\x01" + b"\x03\x08\x10\x17\x11\x01\x12\x06" + b"\x00\x00"
        + b"\x02\x2e" + (b"\x01" if sub_children else b"\x00") + sub_specs + b"\x00\x00"
        + b"\x03\x34\x01\x03\x08\x00\x00"  # 3: variable with children (for nesting tests)
        + b"\x00"
    )
    cu_die = b"\x01" + b"cu.c\0" + struct.pack("<III", 0, FUNC_LO, FUNC_HI - FUNC_LO)
    sub_die = b"\x02" + b"hostile_fn\0" + struct.pack("<II", FUNC_LO, FUNC_HI - FUNC_LO) + extra_sub_attrs
    dies = cu_die + (body_dies if body_dies is not None else sub_die + sub_payload) + b"\x00"
    info_body = struct.pack("<HIB", 4, 0, 4) + dies
    info = struct.pack("<I", len(info_body)) + info_body
    # line program v4: one file, rows at FUNC_LO (line 3) via set_address + special opcode, end at FUNC_HI
    std_lengths = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    hdr_rest = bytes([1, 1, 1]) + struct.pack("<b", -5) + bytes([line_range, 13]) + std_lengths
    hdr_rest += b"\0" + b"cu.c\0\0\0\0" + b"\0"
    special_line_3 = bytes([13 + (3 - 1 - (-5))])  # address += 0, line += 2: a row at line 3
    prog = b"\x00\x05\x02" + struct.pack("<I", FUNC_LO) + special_line_3
    prog += b"\x02" + leb(FUNC_HI - FUNC_LO) + b"\x00\x01\x01"  # advance to the end, end_sequence
    lbody = struct.pack("<H", 4) + struct.pack("<I", len(hdr_rest)) + hdr_rest + prog
    line = struct.pack("<I", len(lbody)) + lbody
    return module(
        TYPE_SECTION,
        FUNCTION_SECTION,
        CODE_SECTION,
        custom(".debug_info", info),
        custom(".debug_abbrev", abbrev),
        custom(".debug_line", line),
        name_section({0: "hostile_fn_from_names"}),
    )


def llvm_chains(path: Path, code_offsets: list[int]) -> list[list[tuple[str | None, str | None, int, int]]]:
    """llvm-symbolizer-14's chain per code offset: (mangled-or-name, file, line, column), innermost first."""
    out = subprocess.run(
        [LLVM_SYMBOLIZER, f"--obj={path}", "--inlining", "--output-style=JSON", "--no-demangle"],
        input="".join(f"{a:#x}\n" for a in code_offsets), capture_output=True, text=True, check=True,
    ).stdout
    chains = []
    for line in out.splitlines():
        if not line.strip():
            continue
        syms = json.loads(line)["Symbol"]
        chain = [(s["FunctionName"] or None, s["FileName"] or None, s["Line"], s["Column"]) for s in syms]
        chains.append([] if chain == [(None, None, 0, 0)] else chain)
    assert len(chains) == len(code_offsets)
    return chains
