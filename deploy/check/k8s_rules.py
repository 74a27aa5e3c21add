"""What the schema cannot say about deploy/k8s/: the manifests fit together and
keep the promises deploy/README.md makes (probes, shutdown timing, non-root,
per-pod audit keys, secrets). Usage: k8s_rules.py DIR. Prints each broken rule."""

import sys
from pathlib import Path

import yaml

from rules import Problems, listen_port

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


def check(directory: Path) -> Problems:
    p = Problems()
    docs = load(directory)
    deployment = one(docs, "Deployment", p)
    configmap = one(docs, "ConfigMap", p)
    pdb = one(docs, "PodDisruptionBudget", p)
    services = [d for d in docs if d.get("kind") == "Service"]
    secrets = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Secret"}
    if not deployment or not configmap:
        return p
    config = configmap.get("data", {})

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

    # The container's ports are the ones the gateway listens on.
    for name, variable in [
        ("grpc", "ONSHI_LISTEN"),
        ("operators", "ONSHI_ADMIN_LISTEN"),
        ("metrics", "ONSHI_METRICS_LISTEN"),
        ("health", "ONSHI_HEALTH_LISTEN"),
    ]:
        address = config.get(variable, "")
        p.expect(
            address.startswith("0.0.0.0:"),
            f"{variable} ({address!r}) must listen beyond the pod's loopback",
        )
        p.expect(
            ports.get(name) == listen_port(address),
            f"container port {name!r} ({ports.get(name)}) is not {variable}'s ({address!r})",
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
    drain = int(config.get("ONSHI_DRAIN_TIMEOUT_SECS", "10"))
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

    # Settings: the ConfigMap, the database URL from a Secret only.
    env = {e["name"]: e for e in c.get("env", [])}
    p.expect(
        any(s.get("configMapRef", {}).get("name") == configmap["metadata"]["name"] for s in c.get("envFrom", [])),
        "the container does not read the ConfigMap",
    )
    p.expect("ONSHI_DATABASE_URL" not in config, "the database URL (with its password) is in the ConfigMap")
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
        "ONSHI_AUDIT_KEY" not in config and "ONSHI_AUDIT_KEY" not in env,
        "ONSHI_AUDIT_KEY is set for every pod alike: replicas would share one key",
    )
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    data = mounts.get(config.get("ONSHI_DATA_DIR", ""))
    p.expect(
        data is not None and "emptyDir" in volumes.get(data["name"], {}),
        "ONSHI_DATA_DIR is not a per-pod emptyDir",
    )

    # Certificates: the Secret mounted where ONSHI_TLS_DIR points, with the four files.
    tls = mounts.get(config.get("ONSHI_TLS_DIR", ""))
    tls_volume = volumes.get(tls["name"], {}) if tls else {}
    tls_secret = (tls_volume.get("secret") or {}).get("secretName")
    p.expect(tls_secret is not None, "ONSHI_TLS_DIR is not a mounted Secret")
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
    sys.exit(check(Path(sys.argv[1])).report("deploy/k8s"))
