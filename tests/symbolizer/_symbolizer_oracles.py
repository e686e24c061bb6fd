"""The oracles the symbolizer tests compare against, all real programs on this machine.

* names in the fixtures: ``wasm-objdump`` (name section) and ``llvm-dwarfdump-14`` (DWARF linkage names);
* ``llvm-cxxfilt-14`` and wasmtime (rustc-demangle inside) for demangling;
* ``llvm-symbolizer-14`` (code offsets, batch on stdin) and wasmtime's ``WASMTIME_BACKTRACE_DETAILS=1`` trap
  text for symbolization;
* Node (``node:wasi``) for V8 stack traces.

Each is memoized per session: they are slow (dwarfdump over the fixtures takes seconds) and deterministic.
"""

from __future__ import annotations

from symbolizer._wasm import encode_uleb

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ALL_MODULES = sorted(p.name for p in FIXTURES.glob("*.wasm"))
# Fixtures that carry DWARF (the stripped twin does not).
DWARF_MODULES = [m for m in ALL_MODULES if "stripped" not in m]
RUST_WASI = ["panics-O0.wasm", "panics-O1.wasm", "panics-Os.wasm", "panics-O3.wasm", "panics-v0.wasm"]
# Scenarios of panics.rs that end in a trap with a stack (panics, plus a division trap via a panic).
PANIC_SCENARIOS = ["unwrap_none", "expect_err", "index_oob", "panic", "multiline", "refcell", "div_zero"]

LLVM_SYMBOLIZER = "llvm-symbolizer-14"
LLVM_CXXFILT = "llvm-cxxfilt-14"
LLVM_DWARFDUMP = "llvm-dwarfdump-14"


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


# ---------------------------------------------------------------------------------------------- names


@functools.cache
def name_section_names(module: str) -> tuple[str, ...]:
    out = subprocess.run(
        ["wasm-objdump", "-x", "-j", "name", str(FIXTURES / module)], capture_output=True, text=True
    ).stdout
    return tuple(re.findall(r"^ - func\[\d+\] <(.*)>$", out, re.M))


@functools.cache
def dwarf_linkage_names(module: str) -> tuple[str, ...]:
    dump = subprocess.Popen([LLVM_DWARFDUMP, "--debug-info", str(FIXTURES / module)], stdout=subprocess.PIPE)
    grep = subprocess.run(["grep", "-F", "linkage_name"], stdin=dump.stdout, capture_output=True, text=True)
    dump.wait()
    return tuple(sorted(set(re.findall(r'DW_AT_(?:MIPS_)?linkage_name\t\("(.*)"\)$', grep.stdout, re.M))))


@functools.cache
def all_fixture_names() -> tuple[str, ...]:
    """Every symbol of every fixture: name sections and DWARF linkage names, deduplicated, sorted."""
    names: set[str] = set()
    for m in ALL_MODULES:
        names.update(name_section_names(m))
        names.update(dwarf_linkage_names(m))
    return tuple(sorted(names))


def cxxfilt(names: tuple[str, ...]) -> list[str]:
    """llvm-cxxfilt-14 over ``names``, one per line on stdin (fast: one process)."""
    out = subprocess.run([LLVM_CXXFILT], input="\n".join(names) + "\n", capture_output=True, text=True).stdout
    lines = out.split("\n")[: len(names)]
    assert len(lines) == len(names)
    return lines


# ------------------------------------------------------------------------------------ wasmtime names


_leb = encode_uleb


def _vec(items: list[bytes]) -> bytes:
    return _leb(len(items)) + b"".join(items)


def _name(s: str) -> bytes:
    b = s.encode()
    return _leb(len(b)) + b


def _section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + _leb(len(payload)) + payload


def chain_module(names: tuple[str, ...], depth: int = 20) -> tuple[bytes, int]:
    """A module with one function per name, in call chains of ``depth`` (wasmtime's frame cap) ending in a trap.

    Export ``c<j>`` runs chain j; its trap's backtrace names ``depth`` functions at once.
    """
    n = len(names)
    starts = list(range(0, n, depth))
    types = _section(1, _vec([b"\x60\x00\x00"]))
    funcs = _section(3, _vec([b"\x00"] * n))
    exports = _section(7, _vec([_name(f"c{j}") + b"\x00" + _leb(s) for j, s in enumerate(starts)]))
    bodies = []
    for i in range(n):
        last = (i + 1) % depth == 0 or i + 1 == n
        body = b"\x00" + (b"\x00" if last else b"\x10" + _leb(i + 1)) + b"\x0b"  # unreachable | call i+1
        bodies.append(_leb(len(body)) + body)
    fnames = _vec([_leb(i) + _name(s) for i, s in enumerate(names)])
    custom = _section(0, _name("name") + b"\x01" + _leb(len(fnames)) + fnames)
    return b"\x00asm\x01\x00\x00\x00" + types + funcs + exports + _section(10, _vec(bodies)) + custom, len(starts)


def wasmtime_demangled(names: tuple[str, ...]) -> dict[str, str]:
    """What wasmtime prints for each name-section name in a trap backtrace (rustc-demangle's ``{}`` form)."""
    import wasmtime

    module, chains = chain_module(names)
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, wasmtime.Module(engine, module), []).exports(store)
    result: dict[str, str] = {}
    for j in range(chains):
        func = exports[f"c{j}"]
        assert isinstance(func, wasmtime.Func)
        try:
            func(store)
        except wasmtime.Trap as trap:
            lines = [ln for ln in trap.message.split("\n") if re.match(r"\s*\d+:\s+0x[0-9a-f]+ - ", ln)]
            for frame, line in zip(trap.frames, lines):
                text = line.split(" - ", 1)[1]
                assert frame.func_index is not None
                result[names[frame.func_index]] = text.split("!", 1)[1] if text.startswith("<unknown>!") else text
    return result


# ------------------------------------------------------------------------------ symbolization oracles


def llvm_symbolize(module: Path, code_offsets: list[int]) -> list[list[dict[str, object]]]:
    """llvm-symbolizer-14's inline chain at each code offset, innermost first, as JSON dicts.

    Keys per symbol: FunctionName (mangled: --no-demangle), FileName, Line, Column; "" and 0 when unknown.
    Batch: one process for all offsets.
    """
    proc = subprocess.run(
        [LLVM_SYMBOLIZER, f"--obj={module}", "--inlining", "--output-style=JSON", "--no-demangle"],
        input="".join(f"{off:#x}\n" for off in code_offsets), capture_output=True, text=True, check=True,
    )
    chains = []
    for line in proc.stdout.splitlines():
        if line.strip():
            chains.append(json.loads(line)["Symbol"])
    assert len(chains) == len(code_offsets)
    return chains


def _details_engine() -> "wasmtime.Engine":
    import wasmtime

    saved = os.environ.get("WASMTIME_BACKTRACE_DETAILS")
    os.environ["WASMTIME_BACKTRACE_DETAILS"] = "1"  # read when the Engine's Config is made
    try:
        return wasmtime.Engine(wasmtime.Config())
    finally:
        if saved is None:
            del os.environ["WASMTIME_BACKTRACE_DETAILS"]
        else:
            os.environ["WASMTIME_BACKTRACE_DETAILS"] = saved


# What makes each fixture trap: panics.rs and trap.c take a scenario in argv; lib.wasm is a cdylib whose
# ``divide`` export panics on a zero divisor.
TRAP_SCENARIOS: dict[str, list[str]] = {
    **{m: PANIC_SCENARIOS for m in RUST_WASI},
    "trap-c-O0.wasm": ["div", "oob", "abort"],
    "trap-c-O1.wasm": ["div", "oob", "abort"],
    "lib.wasm": ["divide"],
}


@functools.cache
def wasmtime_trap(
    module: str, scenario: str, details: bool = True
) -> tuple[str, tuple[tuple[int | None, str | None, int], ...]]:
    """Run ``module``'s scenario under wasmtime; (trap message, frames).

    WASI modules get argv ``[worker, scenario]``; ``lib.wasm`` gets ``divide(1, 0)`` called. Frames are
    (func_index, func_name, module_offset), innermost first (at most 20: wasmtime's cap).
    """
    import wasmtime

    engine = _details_engine() if details else wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.define_func(
        "tracer", "log", wasmtime.FuncType([wasmtime.ValType.i32()] * 3, []), lambda *_: None
    )
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["worker", scenario]
    store.set_wasi(wasi)
    instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(FIXTURES / module)))
    exports = instance.exports(store)
    try:
        if module == "lib.wasm":
            divide = exports["divide"]
            assert isinstance(divide, wasmtime.Func)
            divide(store, 1, 0)
        else:
            start = exports["_start"]
            assert isinstance(start, wasmtime.Func)
            start(store)
    except wasmtime.Trap as trap:
        frames = tuple((f.func_index, f.func_name, f.module_offset) for f in trap.frames)
        return trap.message, frames
    raise AssertionError(f"{module} {scenario} did not trap")


_WT_FRAME = re.compile(r"^\s*(\d+):\s+(0x[0-9a-f]+) - (.*)$")
_WT_AT = re.compile(r"^\s+at (.*):(\d+):(\d+)$")
_WT_INLINE = re.compile(r"^\s+- (.*)$")


def parse_wasmtime_details(message: str) -> list[tuple[int, list[tuple[str, str | None, int | None, int | None]]]]:
    """wasmtime's detailed backtrace as [(module_offset, [(name, file, line, column), ...])].

    Symbols innermost first, as wasmtime prints them (and as our frames hold them); a symbol without an
    ``at`` line has file, line and column None.
    """
    frames: list[tuple[int, list[tuple[str, str | None, int | None, int | None]]]] = []
    for line in message.splitlines():
        m = _WT_FRAME.match(line)
        if m:
            frames.append((int(m[2], 16), [(m[3], None, None, None)]))
            continue
        if not frames:
            continue
        m = _WT_INLINE.match(line)
        if m:
            frames[-1][1].append((m[1], None, None, None))
            continue
        m = _WT_AT.match(line)
        if m:
            name = frames[-1][1][-1][0]
            frames[-1][1][-1] = (name, m[1], int(m[2]), int(m[3]))
    return frames


# ------------------------------------------------------------------------------------------------ node

NODE_RUNNER = r"""
const { readFileSync } = require('node:fs');
const { WASI } = require('node:wasi');
const [path, ...args] = process.argv.slice(1);  // with -e there is no script path
(async () => {
  const wasi = new WASI({ version: 'preview1', args: ['worker', ...args], env: {}, returnOnExit: true });
  const mod = await WebAssembly.compile(readFileSync(path));
  const imports = { wasi_snapshot_preview1: wasi.wasiImport, tracer: { log: () => {} } };
  const instance = await WebAssembly.instantiate(mod, imports);
  Error.stackTraceLimit = 100;
  try {
    if (instance.exports._start) wasi.start(instance);
    else instance.exports[args[0]](...args.slice(1).map(Number));
  } catch (e) {
    process.stdout.write(e.stack + '\n');
  }
})();
"""


@functools.cache
def node_trace(module_path: str, *args: str) -> str:
    """V8's ``error.stack`` for running ``module_path`` under Node (WASI ``_start``, or an export with args)."""
    proc = subprocess.run(
        ["node", "--no-warnings", "-e", NODE_RUNNER, "--", module_path, *args],
        capture_output=True, text=True, timeout=60,
    )
    return proc.stdout


def run_cli(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """The real ``python -m tracer._cli ARGS`` in a subprocess, from the repository root."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tracer._cli", *args], input=stdin, capture_output=True, cwd=ROOT,
        env=full_env, timeout=timeout,
    )
