"""The tracer: wraps wasmtime invocations and records how each one ended.

Only this package imports ``wasmtime``, and only when the interceptor is used: the names below load lazily
(PEP 562), so ``tracer symbolize`` and the record types cost no wasmtime import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tracer._config import TracerConfig, parse_size
from tracer._errors import ConfigError, ExportError, InstantiationError, ModuleLoadError, TracerError
from tracer._panic import parse_panic
from tracer._record import InvocationRecord, LogRecord, Outcome, Panic, Timings, TrapInfo

if TYPE_CHECKING:
    from tracer._interceptor import HostImportError, Interceptor

__all__ = [
    "ConfigError",
    "ExportError",
    "HostImportError",
    "InstantiationError",
    "Interceptor",
    "InvocationRecord",
    "LogRecord",
    "ModuleLoadError",
    "Outcome",
    "Panic",
    "Timings",
    "TracerConfig",
    "TracerError",
    "TrapInfo",
    "parse_panic",
    "parse_size",
]

_LAZY = {"Interceptor": "tracer._interceptor", "HostImportError": "tracer._interceptor"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
