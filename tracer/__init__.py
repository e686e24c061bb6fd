"""The tracer: wraps wasmtime invocations and records how each one ended.

Only this package imports ``wasmtime``, and only when the interceptor is used. Every name below loads on
first use (PEP 562): importing a submodule such as ``tracer._cli`` runs this file, so it imports nothing —
``tracer symbolize`` on a warm cache pays neither for wasmtime nor for the records' dataclasses and the
configuration's pathlib.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the CLI's start path
if TYPE_CHECKING:
    from tracer._config import TracerConfig, parse_size
    from tracer._errors import ConfigError, ExportError, InstantiationError, ModuleLoadError, TracerError
    from tracer._interceptor import HostImportError, Interceptor
    from tracer._panic import parse_panic
    from tracer._record import InvocationRecord, LogRecord, Outcome, Panic, Timings, TrapInfo

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

# public name -> the private module that defines it
_LAZY = {
    "ConfigError": "tracer._errors",
    "ExportError": "tracer._errors",
    "HostImportError": "tracer._interceptor",
    "InstantiationError": "tracer._errors",
    "Interceptor": "tracer._interceptor",
    "InvocationRecord": "tracer._record",
    "LogRecord": "tracer._record",
    "ModuleLoadError": "tracer._errors",
    "Outcome": "tracer._record",
    "Panic": "tracer._record",
    "Timings": "tracer._record",
    "TracerConfig": "tracer._config",
    "TracerError": "tracer._errors",
    "TrapInfo": "tracer._record",
    "parse_panic": "tracer._panic",
    "parse_size": "tracer._config",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        # AttributeError (not ImportError) lets ``from tracer import _exit`` fall back to the submodule.
        raise AttributeError(f"module 'tracer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
