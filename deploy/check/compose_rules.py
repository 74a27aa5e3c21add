"""What the Compose schema cannot say about deploy/compose.yaml and
deploy/otel-collector.yaml: two replicas from the image, each with its own audit
key volume, one PostgreSQL, traces to the collector's OTLP/gRPC port, health
checks and start order. Usage: compose_rules.py DEPLOY_DIR."""

import sys
from pathlib import Path
from urllib.parse import urlparse

import yaml

from rules import Problems, listen_port

DATA_DIR = "/var/lib/onshi-gateway"
TLS_DIR = "/etc/onshi-gateway/tls"


def volume_at(service: dict, target: str) -> str | None:
    for v in service.get("volumes", []):
        source, _, rest = v.partition(":")
        if rest.split(":")[0] == target:
            return source
    return None


def check(deploy: Path) -> Problems:
    p = Problems()
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
        env = s.get("environment") or {}
        p.expect("ONSHI_AUDIT_KEY" not in env, f"{name}: ONSHI_AUDIT_KEY would be shared through the anchor")
        audit = volume_at(s, DATA_DIR)
        p.expect(audit in named_volumes, f"{name}: {DATA_DIR} is not a named volume (its audit key would not survive a restart)")
        audit_volumes[name] = audit
        p.expect(volume_at(s, TLS_DIR) in named_volumes, f"{name}: no certificates at {TLS_DIR}")
        url = env.get("ONSHI_DATABASE_URL", "")
        database_urls.add(url)
        host = urlparse(url).hostname
        p.expect(host in postgres, f"{name}: ONSHI_DATABASE_URL does not point at the PostgreSQL service")
        otlp = urlparse(env.get("ONSHI_OTLP_ENDPOINT", ""))
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
        drain = int(env.get("ONSHI_DRAIN_TIMEOUT_SECS", "10"))
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
    sys.exit(check(Path(sys.argv[1])).report("deploy/compose.yaml"))
