"""Fixtures for the collector tests: real records from the committed guests, and a pipeline wired to the SDK's
in-memory exporters (nothing leaves the process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from collector._config import ExporterConfig, PipelineConfig


@pytest.fixture(scope="session")
def interceptor(fixtures: Path) -> Any:
    from tracer import Interceptor

    return Interceptor.from_path(fixtures / "panics-O1.wasm")


@pytest.fixture(scope="session")
def records(fixtures: Path) -> dict[str, Any]:
    """One real record per scenario of the panics fixture, from an interceptor of its own (so the first run is
    its cold start whatever ran before)."""
    from tracer import Interceptor

    interceptor = Interceptor.from_path(fixtures / "panics-O1.wasm")
    out = {}
    for scenario in ("unwrap_none", "log", "ok", "badbytes"):
        out[scenario] = interceptor.invoke(argv=[scenario])
    return out


def quiet_config(tmp_path: Path, **changes: Any) -> PipelineConfig:
    """A config whose own exporters are all ``none`` (tests attach in-memory exporters instead)."""
    base = PipelineConfig(
        traces=ExporterConfig("traces", kind="none"),
        logs=ExporterConfig("logs", kind="none"),
        metrics=ExporterConfig("metrics", kind="none"),
        telemetry_dir=tmp_path / "telemetry",
        spool_dir=tmp_path / "spool",
        resend_spool_on_start=False,
    )
    return base.replace(**changes)


class InMemory:
    def __init__(self, tmp_path: Path, **changes: Any) -> None:
        from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from collector._pipeline import Pipeline

        self.spans = InMemorySpanExporter()
        self.logs = InMemoryLogRecordExporter()
        self.metrics = InMemoryMetricReader()
        self.pipeline = Pipeline(quiet_config(tmp_path, **changes), _span_exporter=self.spans,
                                 _log_exporter=self.logs, _metric_reader=self.metrics)

    def metric_points(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        data = self.metrics.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[InMemory]:
    mem = InMemory(tmp_path)
    yield mem
    mem.pipeline.shutdown(1.0)
