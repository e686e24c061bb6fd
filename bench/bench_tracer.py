"""Per-invocation cost: the tracer's ``Interceptor.invoke`` against bare wasmtime-py, side by side in one run.

Both sides do what a worker runtime does per request: a fresh Store and instance, then the call, on the same
module and the same engine (fuel metering and epoch interruption on for both, since a runtime that enforces
limits needs them). The bare side gives WASI programs a WasiConfig with their stdout/stderr sent to /dev/null
files (no capture at all); the tracer captures, limits and records everything.

A third column, for context only, is bare wasmtime-py with the cheapest capture there is (two memfds read once
after the call, split into lines): what any runtime that keeps console output pays at least.

Workloads: ``lib.wasm`` ``add(1, 2)`` (trivial export) and ``panics-O1.wasm`` printing 10 lines (WASI).
Rounds alternate between the two sides to cancel drift; the figure is the median of per-round means.

Run: ``.venv/bin/python bench/bench_tracer.py [--rounds 30] [--calls 200]``
"""

from __future__ import annotations

import argparse
import os
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import wasmtime  # noqa: E402

from tracer import Interceptor, TracerConfig  # noqa: E402
from tracer._interceptor import shared_engine  # noqa: E402

FIX = ROOT / "tests" / "fixtures"


def bare_runner(path: Path, export: str, args: list[int], argv: list[str], wasi: bool, capture: bool = False):
    engine = shared_engine()
    module = wasmtime.Module(engine, path.read_bytes())
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.define_func("tracer", "log", wasmtime.FuncType([wasmtime.ValType.i32()] * 3, []), lambda *a: None)
    pre = linker.instantiate_pre(module)

    def call() -> None:
        store = wasmtime.Store(engine)
        store.set_fuel(1 << 62)
        store.set_epoch_deadline(1 << 30)
        fds = []
        if wasi:
            cfg = wasmtime.WasiConfig()
            cfg.argv = ["w", *argv]
            if capture:  # the cheapest capture there is: two memfds, read once after the call
                fds = [os.memfd_create("out"), os.memfd_create("err")]
                cfg.stdout_file = f"/proc/self/fd/{fds[0]}"
                cfg.stderr_file = f"/proc/self/fd/{fds[1]}"
            else:
                cfg.stdout_file = "/dev/null"
                cfg.stderr_file = "/dev/null"
            store.set_wasi(cfg)
        inst = pre.instantiate(store)
        try:
            inst.exports(store)[export](store, *args)
        except wasmtime.ExitTrap:
            pass
        store.close()
        for fd in fds:
            os.pread(fd, 1 << 20, 0).split(b"\n")
            os.close(fd)

    return call


def tracer_runner(path: Path, export: str, args: list[int], argv: list[str], cache: Path):
    icp = Interceptor.from_path(path, config=TracerConfig(cache_dir=cache, symbolize=False))

    def call() -> None:
        rec = icp.invoke(export, args, argv=argv)
        assert rec.ok, rec.outcome

    return call


def measure(call, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    opts = ap.parse_args()
    cache = Path(tempfile.mkdtemp())
    workloads = {
        "trivial export (lib.wasm add)": (FIX / "lib.wasm", "add", [1, 2], [], False),
        "WASI, 10 lines (panics-O1.wasm)": (FIX / "panics-O1.wasm", "_start", [], ["lines", "10"], True),
    }
    results = {}
    for name, (path, export, args, argv, wasi) in workloads.items():
        bare = bare_runner(path, export, args, argv, wasi)
        capturing = bare_runner(path, export, args, argv, wasi, capture=True)
        traced = tracer_runner(path, export, args, argv, cache)
        for _ in range(20):
            bare(); capturing(); traced()
        b, c, t = [], [], []
        for _ in range(opts.rounds):
            b.append(measure(bare, opts.calls))
            c.append(measure(capturing, opts.calls))
            t.append(measure(traced, opts.calls))
        bm, cm, tm = statistics.median(b), statistics.median(c), statistics.median(t)
        results[name] = {"bare_us": round(bm, 1), "bare_capture_us": round(cm, 1), "tracer_us": round(tm, 1),
                         "overhead_pct": round((tm / bm - 1) * 100, 1)}
    if opts.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'workload':36} {'bare µs':>9} {'bare+capture µs':>16} {'tracer µs':>10} {'overhead vs bare':>17}")
        for name, r in results.items():
            print(f"{name:36} {r['bare_us']:9.1f} {r['bare_capture_us']:16.1f} {r['tracer_us']:10.1f} "
                  f"{r['overhead_pct']:16.1f}%")


if __name__ == "__main__":
    main()
