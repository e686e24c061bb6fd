"""The collector: maps invocation records to OpenTelemetry spans, log records and metrics, and delivers them.

``Pipeline.start(PipelineConfig.from_env(os.environ, service_name=...))`` → ``pipe.record(rec)`` per invocation
→ ``pipe.shutdown()`` → ``DeliveryReport``. Importing this package is cheap: the OpenTelemetry SDK is imported
when a pipeline starts (names below load lazily, PEP 562), never for ``OTEL_SDK_DISABLED=true``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from collector import _semconv as semconv
from collector._config import BatchConfig, ExporterConfig, PipelineConfig
from collector._errors import CollectorError, ConfigError, ReplayError
from collector._mapping import map_record
from collector._report import DeliveryReport, SignalCounts
from collector._semconv import METRIC_NAMES

if TYPE_CHECKING:
    from collector._pipeline import Pipeline, resend_spool

__all__ = [
    "BatchConfig",
    "CollectorError",
    "ConfigError",
    "DeliveryReport",
    "ExporterConfig",
    "METRIC_NAMES",
    "Pipeline",
    "PipelineConfig",
    "ReplayError",
    "SignalCounts",
    "map_record",
    "resend_spool",
    "semconv",
]

_LAZY = {"Pipeline": "collector._pipeline", "resend_spool": "collector._pipeline"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'collector' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
