"""The collector's exceptions: mistakes in configuration or input files, never a failing collector.

A collector that is down, slow or answering errors is an outcome counted in a ``DeliveryReport`` (exported,
dropped by reason, pending in the spool); telemetry never raises into the traced program. These exceptions are
for what the caller must fix::

    CollectorError
    ├── ConfigError     an OTEL_* / TRACER_* value that does not parse (bad protocol, sampler, number, header)
    └── ReplayError     a telemetry file for ``tracer export replay`` that is missing or not OTLP/JSON
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base of every error the collector raises on purpose."""


class ConfigError(CollectorError):
    """A configuration value does not parse; the message names the variable and shows the value."""


class ReplayError(CollectorError):
    """A telemetry file cannot be read or is not OTLP/JSON as the file exporter writes it."""
