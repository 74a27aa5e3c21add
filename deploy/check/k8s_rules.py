"""What the schema cannot say about deploy/k8s/: the manifests fit together and
keep the promises deploy/README.md makes (probes, shutdown timing, non-root,
per-pod audit keys, secrets). Usage: k8s_rules.py DIR DEFAULTS_TOML (the
repository's onshi-gateway.toml). Prints each broken rule."""

import sys
import tomllib
from pathlib import Path

import yaml

from rules import Problems, effective, listen_port

TLS_FILES = {"server.pem", "server.key", "facility-ca.pem", "operator-ca.pem"}


def load(directory: Path) -> list:
    docs = []
    for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("examples/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                doc["__file__"] = str(path.relative_to(directory))
                docs.append(doc)
    return docs


def one(docs: list, kind: str, problems: Problems) -> dict:
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1:
        problems.add(f"expected one {kind}, found {len(found)}")
        return {}
    return found[0]


def selects(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check(directory: Path, defaults: dict) -> Problems:
    p = Problems()
    docs = load(directory)
    deployment = one(docs, "Deployment", p)
    configmap = one(docs, "ConfigMap", p)
    pdb = one(docs, "PodDisruptionBudget", p)
    services = [d for d in docs if d.get("kind") == "Service"]
    secrets = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Secret"}
    if not deployment or not configmap:
        return p

    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    p.expect(spec.get("replicas", 1) >= 2, "the Deployment runs fewer than 2 replicas")
    p.expect(
        selects(spec["selector"]["matchLabels"], labels),
        "the Deployment's selector does not select its own pods",
    )
    containers = pod["containers"]
    p.expect(len(containers) == 1, "the gateway pod has one container")
    c = containers[0]
    ports = {port["name"]: port["containerPort"] for port in c.get("ports", [])}
    env = {e["name"]: e for e in c.get("env", [])}
    literal = {name: e["value"] for name, e in env.items() if "value" in e}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}

    # The configuration: the ConfigMap's file, where ONSHI_CONFIG names it.
    files = configmap.get("data", {})
    config_path = Path(literal.get("ONSHI_CONFIG", "/"))
    mount = mounts.get(str(config_path.parent))
    p.expect(
        mount is not None
        and (volumes.get(mount["name"], {}).get("configMap") or {}).get("name") == configmap["metadata"]["name"]
        and config_path.name in files,
        f"ONSHI_CONFIG ({config_path}) is not a file of the ConfigMap mounted in the container",
    )
    try:
        file = tomllib.loads(files.get(config_path.name, ""))
    except tomllib.TOMLDecodeError as e:
        p.add(f"the ConfigMap's {config_path.name} is not TOML: {e}")
        return p
    config = effective(defaults, file, literal)

    # The container's ports are the ones the gateway listens on.
    for name, address in [
        ("grpc", config["listen"]["terminals"]),
        ("operators", config["listen"]["admin"]),
        ("metrics", config["listen"]["metrics"]),
        ("health", config["listen"].get("health", "")),
    ]:
        p.expect(
            address.startswith("0.0.0.0:"),
            f"the {name} listener ({address!r}) must listen beyond the pod's loopback",
        )
        p.expect(
            ports.get(name) == listen_port(address),
            f"container port {name!r} ({ports.get(name)}) is not the {name} listener's ({address!r})",
        )

    # Readiness and liveness: the kubelet's native gRPC probe, on the plain health
    # listener (the terminal listener demands a client certificate the kubelet lacks).
    for probe_name in ["readinessProbe", "livenessProbe"]:
        probe = c.get(probe_name)
        if not probe:
            p.add(f"no {probe_name}")
            continue
        grpc = probe.get("grpc")
        p.expect(grpc is not None, f"{probe_name} is not a gRPC probe")
        if grpc:
            p.expect(
                grpc.get("port") == ports.get("health"),
                f"{probe_name} asks port {grpc.get('port')}, not the health listener's",
            )
    readiness = (c.get("readinessProbe") or {}).get("grpc") or {}
    liveness = (c.get("livenessProbe") or {}).get("grpc") or {}
    p.expect(
        readiness.get("service", "") == "",
        "readiness follows the gateway's overall health (service \"\")",
    )
    p.expect(
        liveness.get("service", "") != "",
        "liveness must not follow the overall health: a database outage would restart every pod",
    )

    # Shutdown: the preStop pause and the drain fit in the grace period, with room
    # for the access log's final flush.
    pause = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
    drain = config["grpc"]["drain_timeout_secs"]
    grace = pod.get("terminationGracePeriodSeconds", 30)
    p.expect(
        grace >= pause + drain + 5,
        f"terminationGracePeriodSeconds {grace} leaves under 5 s after the preStop pause ({pause}) and the drain ({drain})",
    )

    # Non-root, read-only, nothing extra.
    pod_security = pod.get("securityContext") or {}
    security = c.get("securityContext") or {}
    p.expect(pod_security.get("runAsNonRoot") is True, "runAsNonRoot is not set")
    p.expect(pod_security.get("runAsUser", 0) > 0, "runAsUser is root or unset")
    p.expect(security.get("readOnlyRootFilesystem") is True, "the root file system is writable")
    p.expect(security.get("allowPrivilegeEscalation") is False, "privilege escalation is allowed")
    p.expect(
        "ALL" in ((security.get("capabilities") or {}).get("drop") or []),
        "capabilities are not all dropped",
    )
    resources = c.get("resources") or {}
    p.expect(
        "cpu" in resources.get("requests", {}) and "memory" in resources.get("requests", {}),
        "cpu and memory requests are not set",
    )
    p.expect("memory" in resources.get("limits", {}), "no memory limit")

    # The database URL (with its password) from a Secret only.
    p.expect(
        file.get("store", {}).get("database_url", "") == "" and "ONSHI_DATABASE_URL" not in literal,
        "the database URL (with its password) is in the ConfigMap or the Deployment",
    )
    db = (env.get("ONSHI_DATABASE_URL") or {}).get("valueFrom", {}).get("secretKeyRef")
    if not db:
        p.add("ONSHI_DATABASE_URL does not come from a Secret")
    else:
        secret = secrets.get(db["name"])
        p.expect(
            secret is not None and db["key"] in secret.get("stringData", {}),
            f"the database Secret {db['name']}/{db['key']} is not described in examples/",
        )

    # Each pod its own audit key: none configured, so each generates one in its own
    # emptyDir data directory.
    p.expect(
        config["audit"]["key"] == "" and "ONSHI_AUDIT_KEY" not in env,
        "an audit key is configured for every pod alike: replicas would share one key",
    )
    data = mounts.get(config["store"]["data_dir"])
    p.expect(
        data is not None and "emptyDir" in volumes.get(data["name"], {}),
        "store.data_dir is not a per-pod emptyDir",
    )

    # Certificates: the Secret mounted where ONSHI_TLS_DIR points, with the four files.
    tls = mounts.get(config["tls"]["dir"])
    tls_volume = volumes.get(tls["name"], {}) if tls else {}
    tls_secret = (tls_volume.get("secret") or {}).get("secretName")
    p.expect(tls_secret is not None, "tls.dir is not a mounted Secret")
    if tls_secret:
        described = secrets.get(tls_secret, {}).get("stringData", {})
        p.expect(
            set(described) == TLS_FILES,
            f"the TLS Secret {tls_secret} in examples/ holds {sorted(described)}, not {sorted(TLS_FILES)}",
        )
    for name, secret in secrets.items():
        for key, value in {**secret.get("stringData", {}), **secret.get("data", {})}.items():
            p.expect(
                "-----BEGIN" not in value and "REPLACE" in value,
                f"example Secret {name}/{key} is not an obvious placeholder",
            )

    # The Services and the PDB reach these pods, by ports they have.
    p.expect(len(services) >= 1, "no Service")
    for service in services:
        name = service["metadata"]["name"]
        p.expect(selects(service["spec"].get("selector", {}), labels), f"Service {name} selects no gateway pod")
        for port in service["spec"]["ports"]:
            p.expect(
                port.get("targetPort") in ports,
                f"Service {name} targets port {port.get('targetPort')!r}, which the pod does not name",
            )
    exposed = {port["targetPort"] for s in services for port in s["spec"]["ports"]}
    p.expect("grpc" in exposed, "no Service for the terminals' port")
    p.expect("health" not in exposed, "the plain health listener is for the kubelet only")
    if pdb:
        p.expect(selects(pdb["spec"].get("selector", {}).get("matchLabels", {}), labels), "the PDB selects no gateway pod")
        unavailable = pdb["spec"].get("maxUnavailable")
        available = pdb["spec"].get("minAvailable")
        p.expect(
            (isinstance(unavailable, int) and 0 < unavailable < spec["replicas"])
            or (isinstance(available, int) and 0 < available < spec["replicas"]),
            "the PDB must keep a replica up yet let a node drain proceed",
        )
    return p


if __name__ == "__main__":
    defaults = tomllib.loads(Path(sys.argv[2]).read_text())
    sys.exit(check(Path(sys.argv[1]), defaults).report("deploy/k8s"))
