"""What the Compose schema cannot say about deploy/compose.yaml and
deploy/otel-collector.yaml: two replicas from the image, each with its own audit
key volume, one PostgreSQL, traces to the collector's OTLP/gRPC port, health
checks and start order. The gateways' settings are the image's file
(deploy/container.toml) under the compose file's environment. Usage:
compose_rules.py DEPLOY_DIR DEFAULTS_TOML (the repository's onshi-gateway.toml)."""

import sys
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import yaml

from rules import Problems, effective, listen_port


def volume_at(service: dict, target: str) -> str | None:
    for v in service.get("volumes", []):
        source, _, rest = v.partition(":")
        if rest.split(":")[0] == target:
            return source
    return None


def check(deploy: Path, defaults: dict) -> Problems:
    p = Problems()
    image_file = tomllib.loads((deploy / "container.toml").read_text())
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    collector = yaml.safe_load((deploy / "otel-collector.yaml").read_text())
    services = compose.get("services", {})
    named_volumes = set((compose.get("volumes") or {}).keys())

    gateways = {
        name: s
        for name, s in services.items()
        if (s.get("build") or {}).get("dockerfile") == "deploy/Dockerfile" and "entrypoint" not in s
    }
    p.expect(len(gateways) >= 2, f"expected at least two gateway replicas, found {sorted(gateways)}")
    postgres = {n for n, s in services.items() if str(s.get("image", "")).startswith("postgres:")}
    collectors = {n for n, s in services.items() if "opentelemetry-collector" in str(s.get("image", ""))}
    p.expect(len(postgres) == 1, "expected one PostgreSQL service")
    p.expect(len(collectors) == 1, "expected one OpenTelemetry collector service")

    for name, s in {**gateways, **{n: services[n] for n in postgres}}.items():
        test = (s.get("healthcheck") or {}).get("test")
        p.expect(bool(test), f"{name} has no healthcheck")

    audit_volumes = {}
    database_urls = set()
    host_ports = []
    for name, s in gateways.items():
        p.expect(s.get("build", {}).get("context") == "..", f"{name} is not built from the repository root")
        user = str(s.get("user", "0"))
        p.expect(not user.startswith("0") and user.split(":")[0].isdigit(), f"{name} runs as {user!r}, not a numeric non-root user")
        p.expect(s.get("read_only") is True, f"{name}'s root file system is writable")
        env = {k: str(v) for k, v in (s.get("environment") or {}).items()}
        config = effective(defaults, image_file, env)
        p.expect(config["audit"]["key"] == "", f"{name}: an audit key would be shared through the anchor")
        data_dir = config["store"]["data_dir"]
        audit = volume_at(s, data_dir)
        p.expect(audit in named_volumes, f"{name}: {data_dir} is not a named volume (its audit key would not survive a restart)")
        audit_volumes[name] = audit
        p.expect(volume_at(s, config["tls"]["dir"]) in named_volumes, f"{name}: no certificates at {config['tls']['dir']}")
        for listener, address in config["listen"].items():
            if address == "":
                continue  # not configured
            p.expect(address.startswith("0.0.0.0:"), f"{name}: the {listener} listener ({address}) is not reachable from outside the container")
        metrics = listen_port(config["listen"]["metrics"])
        test = " ".join((s.get("healthcheck") or {}).get("test") or [])
        p.expect(f"/dev/tcp/127.0.0.1/{metrics} " in test, f"{name}: the health check does not ask the metrics port {metrics}")
        url = config["store"]["database_url"]
        database_urls.add(url)
        host = urlparse(url).hostname
        p.expect(host in postgres, f"{name}: ONSHI_DATABASE_URL does not point at the PostgreSQL service")
        otlp = urlparse(config["telemetry"]["otlp_endpoint"])
        p.expect(
            otlp.hostname in collectors and otlp.port == 4317,
            f"{name}: ONSHI_OTLP_ENDPOINT is not the collector's OTLP/gRPC port 4317",
        )
        depends = s.get("depends_on") or {}
        for pg in postgres:
            p.expect(
                (depends.get(pg) or {}).get("condition") == "service_healthy",
                f"{name} does not wait for PostgreSQL to be healthy",
            )
        drain = config["grpc"]["drain_timeout_secs"]
        grace = str(s.get("stop_grace_period", "10s"))
        p.expect(grace.endswith("s") and int(grace[:-1]) > drain, f"{name}: stop_grace_period {grace} is not beyond the drain ({drain}s)")
        host_ports += [port.rsplit(":", 1)[0] for port in s.get("ports", [])]

    p.expect(
        len(set(audit_volumes.values())) == len(audit_volumes),
        f"replicas share an audit key volume: {audit_volumes}",
    )
    p.expect(len(database_urls) == 1, "the replicas do not share one database")
    p.expect(len(host_ports) == len(set(host_ports)), f"host ports collide: {host_ports}")

    # The collector receives OTLP/gRPC on 4317 and prints traces.
    grpc = (((collector.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("grpc") or {}
    p.expect(listen_port(str(grpc.get("endpoint", ""))) == 4317, "the collector does not receive OTLP/gRPC on 4317")
    pipelines = (collector.get("service") or {}).get("pipelines") or {}
    traces = pipelines.get("traces") or {}
    p.expect("otlp" in traces.get("receivers", []), "the traces pipeline does not receive OTLP")
    p.expect("debug" in traces.get("exporters", []), "the traces pipeline has no debug exporter")
    for pipeline in pipelines.values():
        for kind in ["receivers", "processors", "exporters"]:
            for component in pipeline.get(kind, []):
                p.expect(component in (collector.get(kind) or {}), f"the collector's pipeline names an undefined {kind[:-1]} {component}")
    for name in collectors:
        mounted = [v.split(":")[0] for v in services[name].get("volumes", [])]
        p.expect("./otel-collector.yaml" in mounted, f"{name} does not mount otel-collector.yaml")
    return p


if __name__ == "__main__":
    defaults = tomllib.loads(Path(sys.argv[2]).read_text())
    sys.exit(check(Path(sys.argv[1]), defaults).report("deploy/compose.yaml"))
