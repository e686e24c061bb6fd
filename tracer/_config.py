"""Tracer configuration: a frozen dataclass with defaults and ``from_env``; precedence flag > env > default.

The project's variables (all documented in docs/configuration.md):

``TRACER_CACHE_DIR``   compiled modules and symbol indexes (default ``~/.cache/tracer``)
``TRACER_FUEL``        fuel budget per invocation (default: unlimited, fuel still counted)
``TRACER_MEMORY``      linear-memory cap per invocation, e.g. ``64MiB`` (default ``128MiB``, as Workers)
``TRACER_TIMEOUT``     wall-clock limit per invocation in seconds (default ``30``)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from tracer._errors import ConfigError

MiB = 1 << 20
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1 << 10, "kib": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "mi": 1 << 20, "mib": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gi": 1 << 30, "gib": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "ti": 1 << 40, "tib": 1 << 40,
}


def parse_size(text: str) -> int:
    """Parse a byte size: ``65536``, ``64MiB``, ``1.5GiB``, ``10MB`` (SI) — binary units when ``i`` is given."""
    m = _SIZE.match(text)
    if not m or (m.group(2) or "").lower() not in _UNITS:
        raise ConfigError(f"not a size: {text!r} (examples: 65536, 64MiB, 1GiB)")
    value = int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])
    if value <= 0:
        raise ConfigError(f"size must be positive: {text!r}")
    return value


def parse_positive_int(text: str, what: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ConfigError(f"{what} must be a whole number, got {text!r}") from None
    if value <= 0:
        raise ConfigError(f"{what} must be positive, got {text!r}")
    return value


def parse_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"timeout must be a number of seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"timeout must be a positive number of seconds, got {text!r}")
    return value


def default_cache_dir(environ: Mapping[str, str] = os.environ) -> Path:
    explicit = environ.get("TRACER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tracer"


@dataclass(frozen=True, slots=True)
class TracerConfig:
    """Limits and capture bounds for every invocation of one interceptor."""

    fuel: int | None = None
    memory_limit_bytes: int = 128 * MiB
    timeout_s: float = 30.0
    cache_dir: Path = field(default_factory=default_cache_dir)
    max_line_bytes: int = 16 * 1024  # a longer console line is cut and marked truncated
    max_log_bytes: int = 1 * MiB  # console bytes kept per invocation; later lines are counted as dropped
    max_stdout_bytes: int = 16 * MiB  # captured stdout (a WAGI response) per invocation
    symbolize: bool = True  # symbolize trap frames in-process

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> "TracerConfig":
        """Defaults, then ``TRACER_*`` variables, then keyword overrides that are not None (flags)."""
        values: dict[str, object] = {"cache_dir": default_cache_dir(environ)}
        if environ.get("TRACER_FUEL"):
            values["fuel"] = parse_positive_int(environ["TRACER_FUEL"], "TRACER_FUEL")
        if environ.get("TRACER_MEMORY"):
            values["memory_limit_bytes"] = parse_size(environ["TRACER_MEMORY"])
        if environ.get("TRACER_TIMEOUT"):
            values["timeout_s"] = parse_seconds(environ["TRACER_TIMEOUT"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)  # type: ignore[arg-type]
