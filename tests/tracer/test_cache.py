"""The compiled-module cache: reuse, integrity verification, private directory."""

from __future__ import annotations

from pathlib import Path

from tracer import Interceptor, Outcome, TracerConfig


def _build(cache: Path, fixtures: Path) -> Interceptor:
    return Interceptor.from_path(fixtures / "lib.wasm", config=TracerConfig(cache_dir=cache, symbolize=False))


def test_second_build_loads_from_cache(cache_dir: Path, fixtures: Path) -> None:
    """The first build compiles and writes the cache; the next one deserializes it."""
    assert _build(cache_dir, fixtures).compiled
    again = _build(cache_dir, fixtures)
    assert not again.compiled and again.invoke("add", [2, 3]).results == (5,)


def test_tampered_entry_is_not_loaded(cache_dir: Path, fixtures: Path) -> None:
    """A compiled entry whose bytes no longer match the recorded hash is recompiled, not executed."""
    _build(cache_dir, fixtures)
    (entry,) = (cache_dir / "modules").glob("*.cwasm")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    icp = _build(cache_dir, fixtures)
    assert icp.compiled and icp.invoke("add", [2, 3]).outcome is Outcome.OK
    assert not _build(cache_dir, fixtures).compiled  # rewritten intact


def test_world_writable_cache_dir_is_not_used(tmp_path: Path, fixtures: Path) -> None:
    """A cache directory others can write to is never trusted: every build compiles."""
    cache = tmp_path / "shared"
    (cache / "modules").mkdir(parents=True)
    (cache / "modules").chmod(0o777)
    assert _build(cache, fixtures).compiled
    assert _build(cache, fixtures).compiled
    assert not list((cache / "modules").glob("*.cwasm"))
