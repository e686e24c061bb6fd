"""Symbolization cost: whole-process ``tracer symbolize`` against ``llvm-symbolizer-14``, side by side in one run.

The trace: every frame of the ``unwrap_none`` panic of ``tests/fixtures/panics-O1.wasm`` (6.2 MB, DWARF from
rustc 1.63), as wasmtime reports them. Both tools answer the same addresses with inline chains:

    tracer symbolize panics-O1.wasm 0xb530 0x69e0 ...                      (module offsets)
    llvm-symbolizer-14 --obj=panics-O1.wasm --inlining 0xb073 0x6523 ...     (the same, as code offsets)

- cold: ``TRACER_CACHE_DIR`` is a fresh empty directory for each run; the timed process answers lazily from
  DWARF, then starts a background index build — we wait for that build to finish (untimed) before the next
  run so it does not steal the CPU.
- warm: the index is already cached.
- llvm-symbolizer has no cache; its figure is the same in both columns.
- ``tracer`` script: the same warm command through the console script pip installs (``.venv/bin/tracer``),
  which is what users type; pip's script template imports ``re`` before our code runs.

Rounds alternate between the tools to cancel drift (llvm-symbolizer, ours and ``python -c pass`` in every
round); figures are medians of wall-clock time per process. The children run with bytecode caching on
(``PYTHONDONTWRITEBYTECODE`` removed) after one untimed run, as an installed package runs: with it set and a
stale ``.pyc``, every process recompiles the modules it imports and the figures measure the compiler.
Also measured, in process: index build time and index size against module and DWARF size, and the warm
lookup cost per frame (a Symbolizer loaded from the cached index, each address looked up once).

Run: ``.venv/bin/python bench/bench_symbolize.py [--rounds 15] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from symbolizer import Symbolizer  # noqa: E402
from symbolizer._index import index_path  # noqa: E402

MODULE = ROOT / "tests" / "fixtures" / "panics-O1.wasm"
LLVM = "llvm-symbolizer-14"


def panic_offsets() -> list[int]:
    """Module offsets of the unwrap_none panic's frames, from a real wasmtime run."""
    import wasmtime

    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.define_func("tracer", "log", wasmtime.FuncType([wasmtime.ValType.i32()] * 3, []), lambda *a: None)
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["worker", "unwrap_none"]
    store.set_wasi(wasi)
    inst = linker.instantiate(store, wasmtime.Module.from_file(engine, str(MODULE)))
    try:
        inst.exports(store)["_start"](store)
    except wasmtime.Trap as trap:
        return [f.module_offset for f in trap.frames]
    raise SystemExit("the fixture did not panic")


CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], env: dict[str, str] | None = None, label: str | None = None) -> float:
    """Wall-clock seconds of one run of ``cmd``; its CPU seconds (user + sys) go to ``CPU[label]``.

    CPU time is recorded too because wall time on a shared 2-core machine moves with the neighbours' load.
    """
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    err = proc.stderr.read() if proc.stderr else b""
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed: {err.decode()}")
    CPU.setdefault(label or cmd[0], []).append(usage.ru_utime + usage.ru_stime)
    return elapsed


def wait_for_background_build(cache: Path, code_id: str, timeout: float = 60.0) -> bool:
    idx = index_path(cache, code_id)
    lock = idx.with_suffix(".building")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if idx.exists() and not lock.exists():
            return True
        if not lock.exists() and not idx.exists():
            time.sleep(0.05)  # the child may not have created its lock yet
        time.sleep(0.05)
    return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--cold-rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    offsets = panic_offsets()
    probe = Symbolizer.from_path(MODULE, use_cache=False)
    code_id, code_start = probe.code_id, probe.code_start
    tracer_cmd = [sys.executable, "-m", "tracer._cli", "symbolize", str(MODULE), *map(hex, offsets)]
    llvm_cmd = [LLVM, f"--obj={MODULE}", "--inlining", *(hex(o - code_start) for o in offsets)]

    # Same answers? (a benchmark of two programs that disagree would be meaningless)
    out = subprocess.run(llvm_cmd, capture_output=True, text=True, check=True).stdout
    llvm_frames = out.strip().split("\n\n")
    assert len(llvm_frames) == len(offsets)

    results: dict[str, object] = {"frames": len(offsets), "module_bytes": MODULE.stat().st_size}
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        # untimed: one cold run writes any missing bytecode cache (in the background build's child too)
        warmup = Path(tmp) / "warmup"
        subprocess.run(tracer_cmd, env={**base_env, "TRACER_CACHE_DIR": str(warmup)}, cwd=ROOT, capture_output=True)
        wait_for_background_build(warmup, code_id)
        # cold
        cold, llvm_times = [], []
        for i in range(args.cold_rounds):
            cache = Path(tmp) / f"cold{i}"
            env = {**base_env, "TRACER_CACHE_DIR": str(cache)}
            cold.append(timed(tracer_cmd, env, "cold"))
            if not wait_for_background_build(cache, code_id):
                print("warning: background index build did not finish", file=sys.stderr)
            llvm_times.append(timed(llvm_cmd, label="llvm"))
        # warm: the last cold run's background build left an index behind; check it, then reuse it
        warm_env = {**base_env, "TRACER_CACHE_DIR": str(Path(tmp) / f"cold{args.cold_rounds - 1}")}
        assert index_path(Path(warm_env["TRACER_CACHE_DIR"]), code_id).exists()
        script = Path(sys.executable).parent / "tracer"
        script_cmd = [str(script), *tracer_cmd[3:]] if script.exists() else None
        warm, script_times, python_floor = [], [], []
        for cmd in (tracer_cmd, script_cmd, [sys.executable, "-c", "pass"]):
            if cmd is not None:  # untimed: write any missing bytecode cache
                subprocess.run(cmd, env=warm_env, cwd=ROOT, capture_output=True, check=True)
        for _ in range(args.rounds):
            warm.append(timed(tracer_cmd, warm_env, "warm"))
            llvm_times.append(timed(llvm_cmd, label="llvm"))
            if script_cmd is not None:
                script_times.append(timed(script_cmd, warm_env, "script"))
            python_floor.append(timed([sys.executable, "-c", "pass"], base_env, label="python"))

        # index: build time and size (in process, DWARF parse included; the module read is not)
        builds = []
        for _ in range(3):
            s = Symbolizer.from_path(MODULE, use_cache=False)
            t = time.perf_counter()
            s.build_index(write=False)
            builds.append(time.perf_counter() - t)
        index_bytes = index_path(Path(warm_env["TRACER_CACHE_DIR"]), code_id).stat().st_size
        dwarf_bytes = sum(len(v) for v in probe.module.debug_sections().values())

        # in-process warm lookups: a Symbolizer that loaded the cached index, distinct addresses, each once
        t = time.perf_counter()
        warm_s = Symbolizer.from_path(MODULE, cache_dir=Path(warm_env["TRACER_CACHE_DIR"]))
        load_s = time.perf_counter() - t
        assert warm_s.index_state == "loaded"
        dis = subprocess.run(["wasm-objdump", "-d", str(MODULE)], capture_output=True, text=True).stdout
        instrs = [int(m, 16) for m in re.findall(r"^ ([0-9a-f]{6,}):", dis, re.M)]
        sample = random.Random(7).sample(instrs, 20000)
        t = time.perf_counter()
        for off in sample:
            warm_s.symbolize(off)
        per_lookup_us = (time.perf_counter() - t) / len(sample) * 1e6
        t = time.perf_counter()
        for _ in range(100):
            for off in offsets:
                warm_s.symbolize(off)
        cached_us = (time.perf_counter() - t) / (100 * len(offsets)) * 1e6

    med = statistics.median
    llvm_med = med(llvm_times)
    results.update({
        "command_tracer": " ".join(["python -m tracer._cli symbolize panics-O1.wasm", f"<{len(offsets)} addresses>"]),
        "command_llvm": f"{LLVM} --obj=panics-O1.wasm --inlining <{len(offsets)} code offsets>",
        "tracer_cold_s": med(cold), "tracer_warm_s": med(warm), "llvm_s": llvm_med,
        "tracer_script_warm_s": med(script_times) if script_times else None,
        "python_startup_s": med(python_floor),
        "cold_ratio": med(cold) / llvm_med, "warm_ratio": med(warm) / llvm_med,
        "index_build_s": med(builds), "index_bytes": index_bytes, "dwarf_bytes": dwarf_bytes,
        "index_load_s": load_s, "lookup_us": per_lookup_us, "cached_lookup_us": cached_us,
        "rounds": args.rounds, "cold_rounds": args.cold_rounds,
        "cpu_s": {k: med(v) for k, v in CPU.items()},
    })
    if args.json:
        print(json.dumps(results, indent=2))
        return
    r = results
    mb = 1024 * 1024
    print(f"trace: {r['frames']} frames of panics-O1.wasm ({r['module_bytes'] / mb:.1f} MB, DWARF {dwarf_bytes / mb:.1f} MB)")
    cpu = r["cpu_s"]
    assert isinstance(cpu, dict)
    print(f"{'':34}{'wall':>10}{'vs llvm':>10}{'cpu':>10}{'vs llvm':>10}   (medians)")
    rows = [("llvm-symbolizer-14", llvm_med, "llvm", ""), ("tracer symbolize, cold cache", r["tracer_cold_s"], "cold", "goal <= 10x"),
            ("tracer symbolize, warm cache", r["tracer_warm_s"], "warm", "goal <= 1.0x")]
    if script_times:
        rows.append(("  the same, via the tracer script", r["tracer_script_warm_s"], "script", ""))
    rows.append(("(python -c pass)", r["python_startup_s"], "python", ""))
    for name, wall, key, goal in rows:
        print(f"{name:34}{wall * 1e3:>8.1f}ms{wall / llvm_med:>9.2f}x{cpu[key] * 1e3:>8.1f}ms{cpu[key] / cpu['llvm']:>9.2f}x   {goal}")
    print(f"index build (in process): {r['index_build_s']:.2f} s; index {r['index_bytes'] / 1024:.0f} KiB = "
          f"{r['index_bytes'] / r['module_bytes'] * 100:.1f}% of the module, {r['index_bytes'] / dwarf_bytes * 100:.1f}% of its DWARF")
    print(f"index load: {r['index_load_s'] * 1e3:.1f} ms; warm lookup: {r['lookup_us']:.1f} us/frame "
          f"(first time per address), {r['cached_lookup_us']:.2f} us/frame (repeated)   goal <= 50 us")


if __name__ == "__main__":
    main()
