"""The tracer's exceptions: errors of the embedder or the environment, never of the guest.

A guest that traps, panics, exits or exhausts a limit produces an ``InvocationRecord`` with an outcome; these
exceptions are for what prevents an invocation from happening at all::

    TracerError
    ├── ModuleLoadError      the file is missing, unreadable, not wasm, truncated or invalid
    ├── InstantiationError   the module needs imports the host does not provide
    ├── ExportError          the export does not exist, is not a function, or the arguments do not fit
    └── ConfigError          a limit or size that does not parse
"""

from __future__ import annotations


class TracerError(Exception):
    """Base of every error the tracer raises on purpose."""


class ModuleLoadError(TracerError):
    """The module could not be read, compiled or loaded from the cache."""


class InstantiationError(TracerError):
    """The module could not be instantiated (missing imports, bad start function setup)."""


class ExportError(TracerError):
    """The requested export is missing, not a function, or the arguments do not match its type."""


class ConfigError(TracerError, ValueError):
    """A configuration value that does not parse or is out of range."""
