"""PipelineConfig.from_env: the standard OTEL_* variables and the project's TRACER_* ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector import ConfigError, PipelineConfig


def test_no_endpoint_means_the_embedded_file_default() -> None:
    """With no OTEL_EXPORTER_OTLP_*ENDPOINT every signal goes to OTLP/JSON files under ./telemetry."""
    cfg = PipelineConfig.from_env({})
    assert [cfg.exporter(s).kind for s in ("traces", "logs", "metrics")] == ["file", "file", "file"]
    assert cfg.telemetry_dir == Path("telemetry")


def test_generic_http_endpoint_gets_the_signal_path_appended() -> None:
    """For http/protobuf (the default protocol) the generic endpoint is a base URL: /v1/<signal> is appended."""
    cfg = PipelineConfig.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
    assert cfg.traces.kind == "otlp" and cfg.traces.protocol == "http/protobuf"
    assert cfg.traces.endpoint == "http://collector:4318/v1/traces"
    assert cfg.logs.endpoint == "http://collector:4318/v1/logs"
    assert cfg.metrics.endpoint == "http://collector:4318/v1/metrics"


def test_per_signal_endpoint_is_used_as_is_and_others_stay_on_files() -> None:
    """A per-signal endpoint is taken verbatim; signals without an endpoint keep the file default."""
    cfg = PipelineConfig.from_env(
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://phoenix:6006/v1/traces"}
    )
    assert cfg.traces.endpoint == "http://phoenix:6006/v1/traces"
    assert cfg.logs.kind == "file" and cfg.metrics.kind == "file"


def test_grpc_endpoint_and_per_signal_protocol() -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc keeps the endpoint as given; a per-signal protocol wins over it."""
    cfg = PipelineConfig.from_env({
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
    })
    assert (cfg.traces.protocol, cfg.traces.endpoint) == ("grpc", "http://collector:4317")
    assert (cfg.metrics.protocol, cfg.metrics.endpoint) == ("http/protobuf", "http://collector:4317/v1/metrics")


def test_timeout_is_milliseconds_and_headers_merge_per_signal() -> None:
    """OTEL_EXPORTER_OTLP_TIMEOUT is in milliseconds; per-signal headers override generic ones, percent-decoded."""
    cfg = PipelineConfig.from_env({
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,x-team=a",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-team=b",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
    })
    assert cfg.traces.timeout_s == 2.5
    assert dict(cfg.traces.headers) == {"authorization": "Bearer abc", "x-team": "b"}
    assert dict(cfg.logs.headers) == {"authorization": "Bearer abc", "x-team": "a"}
    assert cfg.traces.compression == "gzip"


def test_exporter_none_disables_a_signal() -> None:
    """OTEL_LOGS_EXPORTER=none turns the logs signal off even with an endpoint configured."""
    cfg = PipelineConfig.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_LOGS_EXPORTER": "none"})
    assert cfg.logs.kind == "none" and cfg.traces.kind == "otlp"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, "http/json"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "HEADERS"),
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_SDK_DISABLED": "yes"}, "OTEL_SDK_DISABLED"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(env: dict[str, str], needle: str) -> None:
    """A value that does not parse raises ConfigError whose message names the variable or value."""
    with pytest.raises(ConfigError, match=needle.replace("/", ".")):
        PipelineConfig.from_env(env)


def test_service_name_precedence() -> None:
    """OTEL_SERVICE_NAME > service.name in OTEL_RESOURCE_ATTRIBUTES > the caller's default (module name)."""
    assert PipelineConfig.from_env({}, service_name="mod").service_name == "mod"
    env = {"OTEL_RESOURCE_ATTRIBUTES": "service.name=res,team=x%2Cy"}
    cfg = PipelineConfig.from_env(env, service_name="mod")
    assert cfg.service_name == "res"
    assert dict(cfg.resource_attributes)["team"] == "x,y"
    env["OTEL_SERVICE_NAME"] = "svc"
    assert PipelineConfig.from_env(env, service_name="mod").service_name == "svc"
    assert PipelineConfig.from_env({}).service_name == "unknown_service"


def test_flag_overrides_env_with_replace() -> None:
    """A CLI flag applied with replace() wins over the environment (flag > env > default)."""
    cfg = PipelineConfig.from_env({"OTEL_SERVICE_NAME": "svc"}).replace(service_name="flag")
    assert cfg.service_name == "flag"


def test_spool_and_telemetry_dirs() -> None:
    """TRACER_SPOOL_DIR wins; else the spool is under TRACER_CACHE_DIR; TRACER_TELEMETRY_DIR moves the files."""
    assert PipelineConfig.from_env({"TRACER_SPOOL_DIR": "/s"}).spool_dir == Path("/s")
    assert PipelineConfig.from_env({"TRACER_CACHE_DIR": "/c"}).spool_dir == Path("/c/spool")
    assert PipelineConfig.from_env({"XDG_CACHE_HOME": "/x"}).spool_dir == Path("/x/tracer/spool")
    assert PipelineConfig.from_env({"TRACER_TELEMETRY_DIR": "/t"}).telemetry_dir == Path("/t")


def test_sampler_batching_limits_and_exception_opt_in() -> None:
    """Sampler, batch processor, attribute limit and exception-signal variables are read."""
    cfg = PipelineConfig.from_env({
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_BSP_MAX_QUEUE_SIZE": "100",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4096",
        "OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN": "logs/dup",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    })
    assert (cfg.sampler, cfg.sampler_arg) == ("parentbased_traceidratio", 0.25)
    assert (cfg.span_batch.max_queue_size, cfg.span_batch.max_export_batch_size) == (100, 100)
    assert cfg.span_batch.schedule_delay_s == 0.2
    assert cfg.attribute_value_limit == 4096
    assert cfg.exception_signal == "logs/dup"
    assert cfg.metric_export_interval_s == 1.0
    assert PipelineConfig.from_env({}).attribute_value_limit == 2048


def test_unreadable_certificate_is_a_config_error_at_start(tmp_path: Path) -> None:
    """An https endpoint whose CA file does not exist fails Pipeline.start with ConfigError, not a traceback."""
    from collector import Pipeline

    cfg = PipelineConfig.from_env({
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": str(tmp_path / "missing.pem"),
        "TRACER_SPOOL_DIR": str(tmp_path / "spool"),
    })
    with pytest.raises(ConfigError, match="CERTIFICATE"):
        Pipeline.start(cfg)
