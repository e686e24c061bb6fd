"""The packages' public surface: sorted __all__, every name importable, private modules only behind it."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("package", ["tracer", "symbolizer", "collector"])
def test_all_is_sorted_and_resolves(package: str) -> None:
    """Each package re-exports its API with a sorted __all__ whose names all resolve."""
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert names == sorted(names)
    for name in names:
        assert getattr(module, name) is not None


@pytest.mark.parametrize("package", ["tracer", "symbolizer", "collector"])
def test_ships_py_typed(package: str) -> None:
    """Each package ships a py.typed marker."""
    assert (ROOT / package / "py.typed").exists()


def test_symbolizer_and_records_import_without_wasmtime_or_opentelemetry() -> None:
    """The symbolizer and the record types load without wasmtime or OpenTelemetry (the CLI's warm path)."""
    code = (
        "import sys, symbolizer, tracer, tracer._record;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('wasmtime','opentelemetry','elftools')];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""
