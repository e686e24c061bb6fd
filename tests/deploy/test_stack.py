"""The deploy stack agrees with itself and with the code: every file parses, names/ports/endpoints line up between
the compose file, the collector configs, Prometheus, the Grafana provisioning, the k8s manifests and the agent's
own defaults, and every metric, label and span attribute the dashboards and docs query is one the collector emits.

No Docker engine runs here, so these consistency checks (plus a careful reading of each component's documentation,
recorded in docs/deploy.md) are what stand for "the stack starts and the panels have data".
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCS = ROOT / "docs"
PACKAGES = ("tracer", "collector", "symbolizer")

# Ports the pinned third-party images listen on by default (we configure no other port for them). Tempo's and the
# collector's ports are read from their config files instead.
IMAGE_DEFAULT_PORTS = {
    "jaeger": {4317, 4318, 16686},  # Jaeger v2 all-in-one: OTLP gRPC, OTLP HTTP, UI/query API
    "loki": {3100},  # HTTP API, including the OTLP endpoint /otlp
    "prometheus": {9090},
    "grafana": {3000},
}

# Collector component types of otelcol-contrib 0.155.0 this stack may use, and the deprecated aliases it must not.
CURRENT_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "tail_sampling", "batch"},
    "exporters": {"otlp_grpc", "otlp_http", "prometheus", "load_balancing", "debug"},
    "extensions": {"health_check"},
}
DEPRECATED_EXPORTERS = {"otlp", "otlphttp", "loadbalancing", "loki", "logging", "jaeger"}


# -- loading -------------------------------------------------------------------------------------------------------


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=None)
def _parse_yaml(text: str) -> list[Any]:
    """Parsed once per text; callers treat the result as read-only."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def _load_yaml_docs(path: Path) -> list[Any]:
    return _parse_yaml(path.read_text())


def _compose() -> dict[str, Any]:
    doc = _load_yaml_docs(DEPLOY / "compose.yaml")[0]
    assert isinstance(doc, dict)
    return doc


def _services() -> dict[str, Any]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _k8s_objects() -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        objs.extend(_load_yaml_docs(path))
    return objs


def _k8s(kind: str, name: str) -> dict[str, Any]:
    for obj in _k8s_objects():
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def _k8s_collector_configs() -> dict[str, dict[str, Any]]:
    """The collector configs embedded in ConfigMaps, by ConfigMap name."""
    out: dict[str, dict[str, Any]] = {}
    for obj in _k8s_objects():
        if obj["kind"] == "ConfigMap" and "config.yaml" in obj.get("data", {}):
            out[obj["metadata"]["name"]] = _parse_yaml(obj["data"]["config.yaml"])[0]
    return out


def _collector_configs() -> dict[str, dict[str, Any]]:
    configs = {"deploy/collector.yaml": _load_yaml_docs(DEPLOY / "collector.yaml")[0]}
    configs.update({f"k8s ConfigMap {k}": v for k, v in _k8s_collector_configs().items()})
    return configs


def _datasources() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.yaml")):
        for doc in _load_yaml_docs(path):
            out.extend(doc.get("datasources", []))
    return out


def _dashboard() -> dict[str, Any]:
    doc = json.loads((DEPLOY / "grafana" / "dashboards" / "tracer.json").read_text())
    assert isinstance(doc, dict)
    return doc


def _host_port(endpoint: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` or a URL → (host, port)."""
    if "://" not in endpoint:
        endpoint = "//" + endpoint
    parts = urlsplit(endpoint)
    assert parts.hostname, endpoint
    port = parts.port or default_port
    if port is None:
        port = {"http": 80, "https": 443}[parts.scheme]
    return parts.hostname, port


def _listen_arg(args: list[str]) -> tuple[str, int]:
    value = args[args.index("--listen") + 1]
    host, _, port = value.rpartition(":")
    return host, int(port)


def _compose_container_ports(service: dict[str, Any]) -> set[int]:
    """Container-side ports of a service's ``ports:`` entries (``[ip:]host:container[/proto]``)."""
    ports = set()
    for entry in service.get("ports", []):
        container = str(entry).split("/")[0].rsplit(":", 1)[-1]
        ports.add(int(container))
    return ports


def _tempo_ports() -> set[int]:
    tempo = _load_yaml_docs(DEPLOY / "tempo.yaml")[0]
    ports = {tempo["server"]["http_listen_port"], tempo["server"]["grpc_listen_port"]}
    for proto in tempo["distributor"]["receivers"]["otlp"]["protocols"].values():
        ports.add(_host_port(proto["endpoint"])[1])
    return ports


def _collector_listen_ports(config: dict[str, Any]) -> dict[str, int]:
    """What a collector config listens on, by role."""
    out: dict[str, int] = {}
    for proto, settings in config["receivers"]["otlp"]["protocols"].items():
        out[f"otlp-{proto}"] = _host_port(settings["endpoint"])[1]
    for name, settings in config["exporters"].items():
        if name.split("/")[0] == "prometheus":
            out["prometheus"] = _host_port(settings["endpoint"])[1]
    if "health_check" in config.get("extensions", {}):
        out["health"] = _host_port(config["extensions"]["health_check"]["endpoint"])[1]
    return out


def _service_listen_ports() -> dict[str, set[int]]:
    """Every compose service → the ports it listens on, from the configs and the images' documented defaults."""
    services = _services()
    collector = _load_yaml_docs(DEPLOY / "collector.yaml")[0]
    ports: dict[str, set[int]] = {name: set(p) for name, p in IMAGE_DEFAULT_PORTS.items()}
    ports["tempo"] = _tempo_ports()
    ports["otel-collector"] = set(_collector_listen_ports(collector).values())
    ports["agent"] = {_listen_arg(services["agent"]["command"])[1]}
    assert set(ports) == set(services), "a compose service without known ports (or a port table without a service)"
    return ports


# -- what the code emits --------------------------------------------------------------------------------------------


def _mapped_records() -> list[Any]:
    """Real records through the collector's real mapping: a failed cold start with fuel counted, and an ok run."""
    from collector._mapping import map_record
    from tracer._record import InvocationRecord, Outcome, Panic, Timings, TrapInfo

    failed = InvocationRecord(
        invocation_id="inv-1",
        module_name="worker.wasm",
        module_sha256="0" * 64,
        export="_start",
        outcome=Outcome.EXCEPTION,
        started_at_ns=1_700_000_000_000_000_000,
        trap=TrapInfo("unreachable", "wasm trap: wasm `unreachable` instruction executed"),
        panic=Panic("main", "called `Option::unwrap()` on a `None` value", "src/main.rs", 12, 5),
        fuel_limit=10_000_000,
        fuel_consumed=12_345,
        memory_limit_bytes=128 << 20,
        memory_peak_bytes=1 << 20,
        timings=Timings(load_ms=90.0, instantiate_ms=0.1, execute_ms=1.0),
        cold_start=True,
    )
    ok = dataclasses.replace(failed, invocation_id="inv-2", outcome=Outcome.OK, trap=None, panic=None,
                             cold_start=False)
    return [map_record(failed, http={}), map_record(ok, http={})]


def _emitted_metrics() -> dict[str, tuple[str, set[str]]]:
    """OTel metric name → (instrument kind, attribute keys), as the collector's mapping produces them."""
    out: dict[str, tuple[str, set[str]]] = {}
    for mapped in _mapped_records():
        for point in mapped.metrics:
            kind, keys = out.get(point.name, (point.kind, set()))
            assert kind == point.kind
            out[point.name] = (kind, keys | set(point.attributes))
    return out


# OpenTelemetry unit → Prometheus unit word, per the collector's Prometheus translator
# (pkg/translator/prometheus: unit words, "per" units, {annotations} dropped, "1" adds nothing but "ratio" on gauges).
_UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "bit": "bits", "%": "percent", "Hz": "hertz",
    "Cel": "celsius", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "m": "meters",
}
_PER_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


def prometheus_name(name: str, unit: str, kind: str) -> str:
    """The name the collector's Prometheus exporter gives an OTel metric (UnderscoreEscapingWithSuffixes):
    non-alphanumerics become ``_``, the unit's word is appended unless already there, counters end in ``_total``.
    Histograms get ``_bucket``/``_sum``/``_count`` on top of this."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9]+", name) if t]
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    main, _, per = unit.partition("/")
    unit_tokens: list[str] = []
    if main and main != "1":
        unit_tokens.extend(_UNIT_WORDS.get(main, main).split("_"))
    if per:
        unit_tokens.extend(["per", _PER_WORDS.get(per, per)])
    for token in unit_tokens:
        if token not in tokens:
            tokens.append(token)
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    elif kind == "gauge" and main == "1":
        tokens.append("ratio")
    return "_".join(tokens)


def prometheus_label(attribute: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", attribute)


def _prometheus_series() -> dict[str, str]:
    """Every Prometheus series name the emitted metrics produce → the OTel metric it comes from."""
    from collector import _semconv

    series: dict[str, str] = {}
    for name, (kind, _keys) in _emitted_metrics().items():
        base = prometheus_name(name, _semconv.METRIC_UNITS[name], kind)
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                series[base + suffix] = name
        else:
            series[base] = name
    return series


_PROMQL_WORDS = {
    "sum", "rate", "irate", "increase", "histogram_quantile", "by", "without", "or", "and", "unless", "vector",
    "clamp_min", "clamp_max", "max", "min", "avg", "count", "label_values", "topk", "bottomk", "on", "ignoring",
    "group_left", "group_right", "abs", "delta", "deriv", "offset", "bool", "time", "scalar", "sort", "sort_desc",
}


def _promql_metric_names(expr: str) -> set[str]:
    """Identifiers in a PromQL expression that name series (not functions, keywords, labels or Grafana vars)."""
    expr = re.sub(r"\$\$?\{?[A-Za-z_][A-Za-z0-9_.]*\}?", " ", expr)  # $__rate_interval, ${var}, $$__tags
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        word = match.group(0)
        following = expr[match.end():].lstrip()
        if word in _PROMQL_WORDS or following.startswith("("):
            continue
        names.add(word)
    return names


def _promql_label_names(expr: str) -> set[str]:
    labels = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels.update(x.strip() for x in group.split(",") if x.strip())
    for matchers in re.findall(r"\{([^}]*)\}", re.sub(r"\$\$?\{[^}]*\}", "", expr)):
        labels.update(m.group(1) for m in re.finditer(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    labels.discard("__name__")
    return labels


def _dashboard_promql() -> list[str]:
    exprs: list[str] = []
    dash = _dashboard()
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            if target.get("datasource", panel.get("datasource", {})).get("type") == "prometheus":
                exprs.append(target["expr"])
    for var in dash.get("templating", {}).get("list", []):
        if var.get("datasource", {}).get("type") == "prometheus":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            exprs.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query))
    for ds in _datasources():
        for q in ds.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
            exprs.append(q["query"])
    return exprs


def _traceql_attributes(text: str) -> set[tuple[str, str]]:
    """(scope, attribute) pairs of ``span.x``/``event.x``/``resource.x`` references in TraceQL selectors."""
    found = set()
    for selector in re.findall(r"\{([^{}]*)\}", text):
        for scope, attr in re.findall(r"\b(span|event|resource)\.([A-Za-z_][A-Za-z0-9_.]*)", selector):
            found.add((scope, attr))
    return found


def _emitted_span_attributes() -> dict[str, set[str]]:
    """Attribute keys the mapping puts on invocation spans and on their events."""
    keys: dict[str, set[str]] = {"span": set(), "event": set()}
    for mapped in _mapped_records():
        keys["span"] |= set(mapped.span.attributes)
        for event in mapped.span.events:
            keys["event"] |= set(event.attributes)
    return keys


def _resource_attributes() -> set[str]:
    from collector import _semconv

    return {_semconv.SERVICE_NAME, _semconv.SERVICE_VERSION, _semconv.HOST_NAME, _semconv.MODULE_CODE_ID,
            _semconv.MODULE_BUILD_ID, _semconv.MODULE_SHA256}


# -- files parse -----------------------------------------------------------------------------------------------------


def _deploy_files(*suffixes: str) -> Iterator[Path]:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.suffix in suffixes:
            yield path


def test_every_yaml_and_json_file_under_deploy_parses() -> None:
    """Every YAML and JSON file under deploy/, and every config embedded in a k8s ConfigMap, parses."""
    seen = 0
    for path in _deploy_files(".yaml", ".yml"):
        assert _load_yaml_docs(path), f"{path} is empty"
        seen += 1
    for path in _deploy_files(".json"):
        json.loads(path.read_text())
        seen += 1
    assert seen >= 10
    assert len(_k8s_collector_configs()) == 2


def test_compose_images_are_pinned() -> None:
    """Every compose image names an explicit version, never ``latest``; the agent is built from deploy/Dockerfile."""
    for name, service in _services().items():
        image = service.get("image", "")
        assert re.search(r":[0-9v][^:/]*$", image), f"{name}: image {image!r} is not pinned to a version"
        assert not image.endswith(":latest")
    agent = _services()["agent"]
    context = (DEPLOY / agent["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / agent["build"]["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
    assert "FROM python:3.11-slim" in (DEPLOY / "Dockerfile").read_text()


def test_compose_bind_mounts_and_dependencies_exist() -> None:
    """Every file or directory a compose service bind-mounts from deploy/ exists, every named volume is declared,
    and every depends_on names a service."""
    declared = set(_compose().get("volumes", {}))
    for name, service in _services().items():
        for dependency in service.get("depends_on", []):
            assert dependency in _services(), f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: named volume {source} is not declared"
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


def test_dockerfile_copies_files_that_exist() -> None:
    """Every path the Dockerfile copies from the repository exists (README.md is required by pyproject.toml)."""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources = line.split()[1:-1]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


# -- the collector -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", list(_collector_configs()))
def test_collector_pipelines_reference_only_defined_components(where: str) -> None:
    """Each pipeline names only receivers, processors and exporters the config defines, and each one is used."""
    config = _collector_configs()[where]
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    for pipeline, spec in config["service"]["pipelines"].items():
        assert pipeline.split("/")[0] in {"traces", "metrics", "logs"}, pipeline
        for section in used:
            for component in spec.get(section, []):
                assert component in config.get(section, {}), f"{where}: {pipeline} uses undefined {component}"
                used[section].add(component)
        assert spec["receivers"] and spec["exporters"]
    for section, names in used.items():
        assert set(config.get(section, {})) == names, f"{where}: defined but unused {section}"
    for ext in config["service"].get("extensions", []):
        assert ext in config["extensions"]


@pytest.mark.parametrize("where", list(_collector_configs()))
def test_collector_uses_current_component_names(where: str) -> None:
    """Components use otelcol-contrib 0.155's names (otlp_grpc, otlp_http, load_balancing), not deprecated aliases."""
    config = _collector_configs()[where]
    for section, allowed in CURRENT_TYPES.items():
        for component in config.get(section, {}):
            kind = component.split("/")[0]
            assert kind in allowed, f"{where}: {section} type {kind!r} is not one this stack was checked against"
            if section == "exporters":
                assert kind not in DEPRECATED_EXPORTERS


def test_collector_exporters_reach_compose_services() -> None:
    """Each push exporter of the compose collector points at a compose service on a port that service listens on."""
    config = _load_yaml_docs(DEPLOY / "collector.yaml")[0]
    listen = _service_listen_ports()
    targets = {}
    for name, settings in config["exporters"].items():
        kind = name.split("/")[0]
        if kind in {"otlp_grpc", "otlp_http"}:
            host, port = _host_port(settings["endpoint"])
            assert host in listen, f"{name}: {host} is not a compose service"
            assert port in listen[host], f"{name}: {host} does not listen on {port}"
            targets[name] = host
    assert {"jaeger", "tempo", "loki"} <= set(targets.values())
    loki = config["exporters"]["otlp_http/loki"]["endpoint"]
    assert urlsplit(loki).path == "/otlp", "Loki ingests OTLP under /otlp (the exporter appends /v1/logs)"
    # Tempo's OTLP receiver the collector targets is the gRPC one.
    tempo = _load_yaml_docs(DEPLOY / "tempo.yaml")[0]
    tempo_grpc = _host_port(tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])[1]
    assert _host_port(config["exporters"]["otlp_grpc/tempo"]["endpoint"])[1] == tempo_grpc


def test_collector_sends_each_signal_to_its_backend() -> None:
    """Traces reach Jaeger and Tempo, metrics the Prometheus exporter, logs Loki."""
    config = _load_yaml_docs(DEPLOY / "collector.yaml")[0]
    pipes = config["service"]["pipelines"]

    def hosts(signal: str) -> set[str]:
        out = set()
        for exporter in pipes[signal]["exporters"]:
            settings = config["exporters"][exporter] or {}
            out.add(_host_port(settings["endpoint"])[0] if exporter.split("/")[0] != "prometheus" else "prometheus")
        return out

    assert hosts("traces") == {"jaeger", "tempo"}
    assert hosts("metrics") == {"prometheus"}
    assert hosts("logs") == {"loki"}


# -- the agent -----------------------------------------------------------------------------------------------------


def test_agent_exports_to_the_collectors_grpc_receiver() -> None:
    """The agent's OTEL_EXPORTER_OTLP_* settings, read by the collector package's own config code, send every
    signal over gRPC to the compose collector's OTLP gRPC receiver."""
    from collector._config import PipelineConfig

    env = {k: str(v) for k, v in _services()["agent"]["environment"].items()}
    collector = _load_yaml_docs(DEPLOY / "collector.yaml")[0]
    grpc_port = _collector_listen_ports(collector)["otlp-grpc"]
    config = PipelineConfig.from_env(env)
    assert config.service_name == env["OTEL_SERVICE_NAME"]
    for signal in ("traces", "logs", "metrics"):
        exporter = config.exporter(signal)
        assert exporter.kind == "otlp" and exporter.protocol == "grpc"
        assert exporter.endpoint is not None
        assert _host_port(exporter.endpoint) == ("otel-collector", grpc_port)
    assert "otel-collector" in _services()["agent"]["depends_on"]


def test_agent_listens_where_everything_expects_it() -> None:
    """The agent listens on tracer serve's default port (read from the code) on all interfaces, and the Dockerfile,
    the compose port mapping, the k8s containerPort and Service all use that port."""
    from tracer._cmd_serve import DEFAULT_LISTEN, parse_listen
    from tracer._serve import ServeConfig

    default_port = parse_listen(DEFAULT_LISTEN)[1]
    assert default_port == {f.name: f.default for f in dataclasses.fields(ServeConfig)}["port"]
    services = _services()
    assert _listen_arg(services["agent"]["command"]) == ("0.0.0.0", default_port)
    assert default_port in _compose_container_ports(services["agent"])

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"EXPOSE {default_port}" in dockerfile
    assert re.search(r'^ENTRYPOINT \["tracer", "serve"\]$', dockerfile, re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    assert _listen_arg(cmd) == ("0.0.0.0", default_port)
    assert cmd[0] == services["agent"]["command"][0], "compose runs the module the image ships"

    container = _k8s("Deployment", "agent")["spec"]["template"]["spec"]["containers"][0]
    assert _listen_arg(container["args"]) == ("0.0.0.0", default_port)
    assert {"name": "http", "containerPort": default_port, "protocol": "TCP"} in container["ports"]


def test_health_endpoints_are_the_ones_serve_answers() -> None:
    """Compose's health check and the k8s probes use the paths tracer serve answers (read from the code)."""
    from tracer._serve import HEALTH_PATH, READY_PATH

    test = " ".join(_services()["agent"]["healthcheck"]["test"])
    assert READY_PATH in test
    container = _k8s("Deployment", "agent")["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == READY_PATH
    assert container["livenessProbe"]["httpGet"]["path"] == HEALTH_PATH
    assert container["startupProbe"]["httpGet"]["path"] == HEALTH_PATH
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in {p["name"] for p in container["ports"]}


def _code_text() -> str:
    return "\n".join(p.read_text() for pkg in PACKAGES for p in sorted((ROOT / pkg).glob("*.py")))


def _tracer_vars_read_by_code() -> set[str]:
    return set(re.findall(r"\bTRACER_[A-Z0-9_]+\b", _code_text()))


def test_tracer_variables_in_the_stack_are_ones_the_code_reads() -> None:
    """Every TRACER_* variable the Dockerfile, compose file or k8s manifests set is one the code reads."""
    known = _tracer_vars_read_by_code()
    texts = [(DEPLOY / "Dockerfile").read_text(), (DEPLOY / "compose.yaml").read_text()]
    texts += [p.read_text() for p in sorted(K8S.glob("*.yaml"))]
    used = set(re.findall(r"\bTRACER_[A-Z0-9_]+\b", "\n".join(texts)))
    assert used, "the stack sets no TRACER_* variable at all"
    assert used <= known, f"set but never read: {sorted(used - known)}"


# -- Prometheus and Grafana --------------------------------------------------------------------------------------


def test_prometheus_scrapes_the_collectors_prometheus_exporter() -> None:
    """prometheus.yml scrapes the compose collector on its Prometheus exporter's port."""
    prom = _load_yaml_docs(DEPLOY / "prometheus.yml")[0]
    collector = _load_yaml_docs(DEPLOY / "collector.yaml")[0]
    port = _collector_listen_ports(collector)["prometheus"]
    targets = {t for job in prom["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]}
    assert f"otel-collector:{port}" in targets
    job = next(j for j in prom["scrape_configs"] if f"otel-collector:{port}" in j["static_configs"][0]["targets"])
    assert job.get("honor_labels") is True, "keep the exporter's job/instance (service.name/instance) labels"
    mounts = [str(v) for v in _services()["prometheus"]["volumes"]]
    assert any(m.startswith("./prometheus.yml:") for m in mounts)


def test_grafana_datasources_resolve_to_compose_services() -> None:
    """Each provisioned datasource's URL is a compose service on a port it listens on; all four kinds exist."""
    listen = _service_listen_ports()
    kinds = {}
    for ds in _datasources():
        host, port = _host_port(ds["url"])
        assert host in listen, f"datasource {ds['name']}: {host} is not a compose service"
        assert port in listen[host], f"datasource {ds['name']}: {host} does not listen on {port}"
        kinds[ds["type"]] = host
    assert kinds == {"prometheus": "prometheus", "tempo": "tempo", "jaeger": "jaeger", "loki": "loki"}
    tempo = _load_yaml_docs(DEPLOY / "tempo.yaml")[0]
    tempo_ds = next(ds for ds in _datasources() if ds["type"] == "tempo")
    assert _host_port(tempo_ds["url"])[1] == tempo["server"]["http_listen_port"]


def _uid_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasourceUid" and isinstance(value, str):
                yield value
            else:
                yield from _uid_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _uid_references(item)


def test_grafana_datasource_links_point_to_provisioned_datasources() -> None:
    """Trace↔logs↔metrics links (datasourceUid) name provisioned datasources; uids are unique."""
    uids = [ds["uid"] for ds in _datasources()]
    assert len(uids) == len(set(uids))
    refs = set(_uid_references(_datasources()))
    assert refs and refs <= set(uids)


def test_dashboard_panels_use_provisioned_datasources() -> None:
    """Every panel, target and variable of the dashboard names a provisioned datasource by uid and type."""
    provisioned = {(ds["uid"], ds["type"]) for ds in _datasources()}
    dash = _dashboard()
    refs = []
    for panel in dash["panels"]:
        refs.append(panel["datasource"])
        refs.extend(t["datasource"] for t in panel.get("targets", []))
    refs.extend(v["datasource"] for v in dash["templating"]["list"] if "datasource" in v)
    for ref in refs:
        assert (ref["uid"], ref["type"]) in provisioned, ref
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_provider_loads_the_mounted_dashboards() -> None:
    """The dashboard provider's path is where compose mounts deploy/grafana/dashboards, which holds tracer.json."""
    provider_file = DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml"
    paths = {p["options"]["path"] for p in _load_yaml_docs(provider_file)[0]["providers"]}
    mounts = {}
    for volume in _services()["grafana"]["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    for path in paths:
        assert path in mounts, f"provider path {path} is not mounted into grafana"
        assert (DEPLOY / mounts[path] / "tracer.json").is_file()
    for kind in ("datasources", "dashboards"):
        assert mounts.get(f"/etc/grafana/provisioning/{kind}") == f"./grafana/provisioning/{kind}"


def test_prometheus_names_follow_the_naming_rules() -> None:
    """The Prometheus names collector._semconv documents are the ones the OTel→Prometheus rules give for the
    metrics the mapping emits (name, unit from METRIC_UNITS, instrument kind from map_record)."""
    from collector import _semconv

    emitted = _emitted_metrics()
    assert set(emitted) == set(_semconv.METRIC_NAMES), "a record mapping emits exactly the declared metrics"
    for name, (kind, _keys) in emitted.items():
        assert prometheus_name(name, _semconv.METRIC_UNITS[name], kind) == _semconv.PROMETHEUS_NAMES[name]


def test_sdk_instruments_match_the_derived_prometheus_names() -> None:
    """A real collector Pipeline (OpenTelemetry SDK, in-memory metric reader) records a real failed cold start;
    the metrics it produces have the names, units and kinds (monotonic Sum = counter, Histogram) that give the
    Prometheus names the dashboard queries."""
    from opentelemetry.sdk.metrics.export import Histogram, InMemoryMetricReader, Sum

    from collector import _semconv
    from collector._config import ExporterConfig, PipelineConfig
    from collector._pipeline import Pipeline
    from tracer._record import InvocationRecord, Outcome, Timings

    none = {s: ExporterConfig(s, kind="none") for s in ("traces", "logs", "metrics")}
    config = PipelineConfig(service_name="deploy-test", resend_spool_on_start=False, **none)  # type: ignore[arg-type]
    reader = InMemoryMetricReader()
    pipeline = Pipeline(config, _metric_reader=reader)
    try:
        pipeline.record(InvocationRecord("inv", "worker.wasm", "0" * 64, "_start", Outcome.EXCEPTION, 1,
                                         fuel_consumed=5, cold_start=True, timings=Timings(1.0, 1.0, 1.0)),
                        http={})
        data = reader.get_metrics_data()
    finally:
        pipeline.shutdown(timeout_s=2.0)
    produced = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if isinstance(metric.data, Sum) and metric.data.is_monotonic:
                    kind = "counter"
                elif isinstance(metric.data, Histogram):
                    kind = "histogram"
                else:
                    kind = type(metric.data).__name__
                produced[metric.name] = prometheus_name(metric.name, metric.unit or "", kind)
    assert produced == _semconv.PROMETHEUS_NAMES


_RESOURCE_OF_THIS_PROCESS = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from collector._config import PipelineConfig
from collector._sdk import build_resource
print(json.dumps(dict(build_resource(PipelineConfig.from_env(os.environ)).attributes), default=str))
"""


def test_two_worker_processes_export_distinct_metric_streams() -> None:
    """Two processes with the agent's compose environment (as `tracer serve --workers 2` forks) build different
    resources, so their cumulative metric streams do not collide in the collector's Prometheus exporter."""
    import subprocess
    import sys

    env = {**os.environ, **{k: str(v) for k, v in _services()["agent"]["environment"].items()}}
    env.pop("TRACER_CACHE_DIR", None)
    resources = [
        json.loads(subprocess.run([sys.executable, "-c", _RESOURCE_OF_THIS_PROCESS, str(ROOT)], env=env,
                                  capture_output=True, text=True, check=True, timeout=60).stdout)
        for _ in range(2)
    ]
    assert resources[0]["service.name"] == resources[1]["service.name"] == env["OTEL_SERVICE_NAME"]
    assert resources[0] != resources[1]


def test_naming_rules_on_known_cases() -> None:
    """The naming helper reproduces the translator's documented examples (units, per-units, _total, ratio)."""
    assert prometheus_name("http.server.request.duration", "s", "histogram") == "http_server_request_duration_seconds"
    assert prometheus_name("system.network.io", "By", "counter") == "system_network_io_bytes_total"
    assert prometheus_name("requests.total", "{request}", "counter") == "requests_total"
    assert prometheus_name("throughput", "By/s", "gauge") == "throughput_bytes_per_second"
    assert prometheus_name("cpu.utilization", "1", "gauge") == "cpu_utilization_ratio"
    assert prometheus_name("latency_seconds", "s", "histogram") == "latency_seconds"


def test_dashboard_queries_only_metrics_the_collector_emits() -> None:
    """Every series the dashboard (and the Tempo→metrics link) queries is one the collector's mapping produces,
    and the dashboard covers every emitted metric."""
    series = _prometheus_series()
    queried: set[str] = set()
    for expr in _dashboard_promql():
        names = _promql_metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        unknown = names - set(series)
        assert not unknown, f"{expr!r} queries {sorted(unknown)}, which the collector does not emit"
        queried |= names
    assert {series[s] for s in queried} == set(_emitted_metrics()), "a metric without a panel"


def test_dashboard_labels_are_emitted_attributes() -> None:
    """Every label the dashboard groups or filters by is a Prometheus form of an attribute the metric carries or
    of service.name (a label via resource_to_telemetry_conversion), or the histogram's ``le``."""
    from collector import _semconv

    emitted = _emitted_metrics()
    series = _prometheus_series()
    resource_labels = {prometheus_label(_semconv.SERVICE_NAME)}
    config = _load_yaml_docs(DEPLOY / "collector.yaml")[0]
    assert config["exporters"]["prometheus"]["resource_to_telemetry_conversion"]["enabled"] is True
    for expr in _dashboard_promql():
        allowed = set(resource_labels) | {"le"}
        for name in _promql_metric_names(expr):
            allowed |= {prometheus_label(k) for k in emitted[series[name]][1]}
        assert _promql_label_names(expr) <= allowed, expr
    outcome_panels = [e for e in _dashboard_promql() if prometheus_label(_semconv.OUTCOME) in e]
    assert outcome_panels, "no panel splits invocations by outcome"


def test_dashboard_has_the_required_panels() -> None:
    """The dashboard shows invocations by outcome, error rate, p50/p99 duration, fuel, cold starts, memory peak."""
    from collector import _semconv

    titles = " | ".join(p["title"].lower() for p in _dashboard()["panels"])
    for word in ("by outcome", "error rate", "p50 / p99", "fuel", "cold starts", "memory peak"):
        assert word in titles, word
    exprs = " ".join(_dashboard_promql())
    duration = _semconv.PROMETHEUS_NAMES[_semconv.METRIC_INVOKE_DURATION]
    assert f"histogram_quantile(0.5, sum by (le) (rate({duration}_bucket" in exprs
    assert f"histogram_quantile(0.99, sum by (le) (rate({duration}_bucket" in exprs


def test_traceql_queries_use_emitted_span_attributes_and_outcomes() -> None:
    """TraceQL in the dashboard and docs/reading-panics.md names attributes the collector puts on spans, with
    outcome values of the record model."""
    from collector import _semconv
    from tracer._record import Outcome

    texts = [t.get("query", "") for p in _dashboard()["panels"] for t in p.get("targets", [])
             if t.get("queryType") == "traceql"]
    doc = DOCS / "reading-panics.md"
    if doc.exists():
        texts += re.findall(r"```traceql\n(.*?)```", doc.read_text(), re.S)
    assert texts
    emitted = _emitted_span_attributes()
    emitted["resource"] = _resource_attributes()
    for text in texts:
        for scope, attr in _traceql_attributes(text):
            pool = emitted[scope]
            assert attr in pool, f"TraceQL {scope}.{attr} is not emitted (in {text!r})"
        for value in re.findall(rf"span\.{re.escape(_semconv.OUTCOME)}\s*!?=\s*\"([^\"]*)\"", text):
            assert value in {o.value for o in Outcome}, value


# -- Kubernetes ------------------------------------------------------------------------------------------------------


def test_k8s_agent_exports_to_the_gateway_service() -> None:
    """The agent's ConfigMap points OTLP/gRPC at the gateway Service, whose port reaches the gateway's receiver."""
    from collector._config import PipelineConfig

    env = _k8s("ConfigMap", "agent-env")["data"]
    config = PipelineConfig.from_env(env)
    host, port = _host_port(config.exporter("traces").endpoint or "")
    assert config.exporter("traces").protocol == "grpc"
    service = _k8s("Service", host)
    svc_port = next(p for p in service["spec"]["ports"] if p["port"] == port)
    gateway = _k8s_collector_configs()["otel-gateway-config"]
    deployment = _k8s("Deployment", "otel-gateway")
    container_ports = {p["name"]: p["containerPort"] for p in
                       deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert container_ports[svc_port["targetPort"]] == _collector_listen_ports(gateway)["otlp-grpc"]
    agent = _k8s("Deployment", "agent")["spec"]["template"]["spec"]["containers"][0]
    assert {"configMapRef": {"name": "agent-env"}} in agent["envFrom"]
    assert set(_tracer_vars_read_by_code()) >= {k for k in env if k.startswith("TRACER_")}


def test_k8s_load_balancing_routes_to_the_headless_backend() -> None:
    """The gateway's load_balancing exporters resolve the headless backend Service (one address per pod) in the
    kustomization's namespace, on the port of the backend's OTLP gRPC receiver; traces route by trace ID."""
    gateway = _k8s_collector_configs()["otel-gateway-config"]
    backend = _k8s_collector_configs()["otel-backend-config"]
    namespace = _load_yaml_docs(K8S / "kustomization.yaml")[0]["namespace"]
    backend_grpc = _collector_listen_ports(backend)["otlp-grpc"]
    lb = {n: s for n, s in gateway["exporters"].items() if n.split("/")[0] == "load_balancing"}
    assert lb
    for name, settings in lb.items():
        assert "endpoint" not in settings["protocol"]["otlp"], "the exporter sets each backend's endpoint itself"
        dns = settings["resolver"]["dns"]
        service_name, ns = dns["hostname"].split(".")[:2]
        assert ns == namespace
        service = _k8s("Service", service_name)
        assert service["spec"].get("clusterIP") == "None", f"{service_name} must be headless for the DNS resolver"
        assert isinstance(dns["port"], str), "the DNS resolver's port is a string field (DNSResolver.Port)"
        assert int(dns["port"]) == backend_grpc
        assert backend_grpc in {p["port"] for p in service["spec"]["ports"]}
    traces = gateway["service"]["pipelines"]["traces"]["exporters"]
    assert all(gateway["exporters"][e]["routing_key"] == "traceID" for e in traces)


def test_k8s_tail_sampling_keeps_every_failed_outcome() -> None:
    """The backend's tail-sampling policy keeps exactly the record model's non-ok outcomes, on the span attribute
    the collector writes them to."""
    from collector import _semconv
    from tracer._record import Outcome

    backend = _k8s_collector_configs()["otel-backend-config"]
    policies = {p["name"]: p for p in backend["processors"]["tail_sampling"]["policies"]}
    rule = policies["failed-invocations"]["string_attribute"]
    assert rule["key"] == _semconv.OUTCOME
    assert set(rule["values"]) == {o.value for o in Outcome if o is not Outcome.OK}
    assert "tail_sampling" in backend["service"]["pipelines"]["traces"]["processors"]


def test_k8s_services_select_pods_and_ports_that_exist() -> None:
    """Each Service selects a Deployment's pods and targets a named container port that Deployment declares."""
    deployments = [o for o in _k8s_objects() if o["kind"] == "Deployment"]
    for service in (o for o in _k8s_objects() if o["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matches = [d for d in deployments
                   if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matches) == 1, f"Service {service['metadata']['name']} selects {len(matches)} deployments"
        names = {p["name"] for c in matches[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, f"{service['metadata']['name']}: {port['targetPort']}"
    for deployment in deployments:
        spec = deployment["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_k8s_collectors_mount_their_configmaps() -> None:
    """Each collector Deployment mounts an existing config ConfigMap at the directory its --config flag reads."""
    configmaps = {o["metadata"]["name"] for o in _k8s_objects() if o["kind"] == "ConfigMap"}
    for name in ("otel-gateway", "otel-backend"):
        pod = _k8s("Deployment", name)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        config_path = Path(next(a for a in container["args"] if a.startswith("--config=")).split("=", 1)[1])
        volumes = {v["name"]: v for v in pod["volumes"]}
        mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
        assert volumes[mount["name"]]["configMap"]["name"] in configmaps
        assert container["image"] == _services()["otel-collector"]["image"], "one collector version everywhere"
        health = _collector_listen_ports(_k8s_collector_configs()[f"{name}-config"])["health"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[container["readinessProbe"]["httpGet"]["port"]] == health


def test_k8s_autoscaler_targets_the_agent() -> None:
    """The HorizontalPodAutoscaler scales the agent Deployment, which declares a CPU request to scale on."""
    hpa = _k8s("HorizontalPodAutoscaler", "agent")
    target = hpa["spec"]["scaleTargetRef"]
    deployment = _k8s(target["kind"], target["name"])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "cpu" in container["resources"]["requests"]
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]


def test_k8s_kustomization_lists_every_manifest() -> None:
    """kustomization.yaml lists every manifest in deploy/k8s."""
    kustomization = _load_yaml_docs(K8S / "kustomization.yaml")[0]
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


# -- docs ------------------------------------------------------------------------------------------------------------


def _cli_flags() -> dict[str, set[str]]:
    """``--flag`` options of every ``tracer`` subcommand, from each ``tracer/_cmd_*.py``'s ``add_parser``."""
    flags: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tracer").glob("_cmd_*.py")):
        module = importlib.import_module(f"tracer.{path.stem}")
        parser = argparse.ArgumentParser()
        module.add_parser(parser)
        flags[path.stem.removeprefix("_cmd_")] = _parser_flags(parser) - {"--help"}
    return flags


def _parser_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Long options of a parser and of its sub-parsers (``tracer export replay ...``)."""
    options: set[str] = set()
    for action in parser._actions:
        options.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= _parser_flags(sub)
    return options


def test_configuration_reference_lists_every_flag_and_variable() -> None:
    """docs/configuration.md names every --flag of every tracer subcommand and every TRACER_* variable the code
    reads."""
    doc = (DOCS / "configuration.md").read_text()
    flags = _cli_flags()
    assert flags, "no tracer/_cmd_*.py found"
    missing = []
    for command, options in flags.items():
        section = re.search(rf"^## `tracer {command}`.*?(?=^## |\Z)", doc, re.S | re.M)
        assert section, f"docs/configuration.md has no section for `tracer {command}`"
        missing += [f"tracer {command} {o}" for o in sorted(options) if f"`{o}" not in section.group(0)]
    missing += [v for v in sorted(_tracer_vars_read_by_code()) if f"`{v}`" not in doc]
    assert not missing, f"not in docs/configuration.md: {missing}"


def test_configuration_reference_lists_the_otel_variables_the_collector_reads() -> None:
    """docs/configuration.md names every OTEL_* variable (or variable prefix) collector/_config.py reads."""
    doc = (DOCS / "configuration.md").read_text()
    names = set(re.findall(r"\bOTEL_[A-Z0-9_]*[A-Z0-9]\b", (ROOT / "collector" / "_config.py").read_text()))
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in names
    assert not [n for n in sorted(names) if n not in doc]


def test_docs_name_the_pinned_versions() -> None:
    """docs/deploy.md names the version of every image compose pins (the versions the configs were checked against)."""
    doc = (DOCS / "deploy.md").read_text()
    for name, service in _services().items():
        if name == "agent":
            continue
        image, _, version = service["image"].rpartition(":")
        assert version.lstrip("v") in doc, f"docs/deploy.md does not mention {image} {version}"

