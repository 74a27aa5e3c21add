"""Runs the shipped configuration: two `onshi-gateway serve` processes with the
Kubernetes ConfigMap's file (deploy/k8s/configmap.yaml) and the Deployment's
variables, on one PostgreSQL, each with its own data directory, started together
as a rollout starts them. Then, for each replica: the compose
health check command (deploy/compose.yaml) passes, gRPC health over mutual TLS on
the terminals' port is SERVING and refused without a client certificate, and the
kubelet's plaintext gRPC probes of deployment.yaml are SERVING on the health port; a third gateway,
its upstream unreachable, is NOT_SERVING and fails the compose health check; the access log
holds two chains that verify; SIGTERM stops each with exit 0 within the drain
timeout (plus 5 s) and before the grace period's end.

Only the addresses (loopback, free ports), directories (temporary), the upstream
(the built-in simulator instead of the cluster's OQS) and the collector (a local
port where none listens, as when the collector is down) are changed, by variables
over the file as the gateway reads them.

Usage: replicas.py GATEWAY_BINARY DATABASE_URL"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from pathlib import Path

os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # the refused handshake is expected

import grpc  # noqa: E402
import yaml  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

from rules import Problems, listen_port  # noqa: E402

DEPLOY = Path(__file__).resolve().parent.parent
FACILITY = "0410110019"
STARTUP_SECS = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deployment() -> tuple[dict, dict, int]:
    """The ConfigMap's data, the gateway container of the Deployment and its
    termination grace period."""
    config, container, grace = {}, {}, 30
    for path in (DEPLOY / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "ConfigMap":
                config = doc["data"]
            if doc and doc["kind"] == "Deployment":
                container = doc["spec"]["template"]["spec"]["containers"][0]
                grace = doc["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    return config, container, grace


def compose_healthcheck() -> list[str]:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    test = compose["x-gateway"]["healthcheck"]["test"]
    assert test[0] == "CMD", "the gateway's compose health check is in exec form"
    # Compose interpolates the file: $$ stands for $.
    return [a.replace("$$", "$") for a in test[1:]]


def psql(base_url: str, sql: str) -> None:
    subprocess.run(["psql", base_url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True, timeout=30)


class Replica:
    def __init__(self, name: str, binary: str, env: dict, log: Path):
        self.name = name
        self.env = env
        self.log = log
        self.process = subprocess.Popen(
            [binary, "serve"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def port(self, variable: str) -> int:
        return listen_port(self.env[variable])

    def wait_listening(self, p: Problems) -> bool:
        deadline = time.monotonic() + STARTUP_SECS
        while time.monotonic() < deadline:
            if "onshi-gateway listening on" in self.log.read_text():
                return True
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        p.add(f"{self.name} did not start: exit {self.process.poll()}\n{self.tail()}")
        return False

    def tail(self) -> str:
        return "\n".join("    " + l for l in self.log.read_text().splitlines()[-15:])

    def stop(self, within: float, p: Problems) -> None:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            p.add(f"{self.name} still running {within:.0f} s after SIGTERM (the pod would be killed)")
            return
        took = time.monotonic() - started
        p.expect(code == 0, f"{self.name} exited {code} on SIGTERM\n{self.tail()}")
        print(f"  {self.name}: SIGTERM -> exit {code} in {took:.1f} s")


def health(channel: grpc.Channel, service: str) -> str:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.RpcError as e:
        return f"error {e.code().name}: {e.details()}"


def main(binary: str, base_url: str) -> int:
    p = Problems()
    config, container, grace = deployment()
    tmp = Path(tempfile.mkdtemp(prefix="onshi-deploy-check-"))
    tls = tmp / "tls"
    subprocess.run([binary, "certs", "dev", "--dir", str(tls)], check=True, capture_output=True, timeout=60)
    schema = f"deploy_check_{uuid.uuid4().hex[:12]}"
    psql(base_url, f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base_url else "?"
    database_url = f"{base_url}{separator}options=-c%20search_path%3D{schema}"

    base = {k: v for k, v in os.environ.items() if not k.startswith("ONSHI_")}
    literal = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    config_file = tmp / Path(literal["ONSHI_CONFIG"]).name
    config_file.write_text(config[config_file.name])
    settings = tomllib.loads(config_file.read_text())
    replicas = []
    try:
        for i in (1, 2):
            env = {**base, **literal, "ONSHI_CONFIG": str(config_file)}
            for variable in ["ONSHI_LISTEN", "ONSHI_ADMIN_LISTEN", "ONSHI_METRICS_LISTEN", "ONSHI_HEALTH_LISTEN"]:
                env[variable] = f"127.0.0.1:{free_port()}"
            env.update(
                ONSHI_DATA_DIR=str(tmp / f"replica-{i}"),
                ONSHI_TLS_DIR=str(tls),
                ONSHI_DATABASE_URL=database_url,
                ONSHI_UPSTREAM="",
                ONSHI_POPULATION="2000",
                ONSHI_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
            )
            replicas.append(Replica(f"replica {i}", binary, env, tmp / f"replica-{i}.log"))
        started = [r for r in replicas if r.wait_listening(p)]
        if len(started) != len(replicas):
            return p.report("shipped configuration")
        print(f"  two replicas started together on one PostgreSQL schema ({schema})")

        credentials = grpc.ssl_channel_credentials(
            root_certificates=(tls / "server-ca.pem").read_bytes(),
            private_key=(tls / f"facility-{FACILITY}.key").read_bytes(),
            certificate_chain=(tls / f"facility-{FACILITY}.pem").read_bytes(),
        )
        healthcheck = compose_healthcheck()
        for r in replicas:
            # The compose health check, aimed at this replica's metrics port.
            metrics = r.port("ONSHI_METRICS_LISTEN")
            command = [a.replace("127.0.0.1/9464", f"127.0.0.1/{metrics}") for a in healthcheck]
            result = subprocess.run(command, capture_output=True, timeout=10)
            p.expect(result.returncode == 0, f"{r.name}: the compose health check failed: {result.stderr!r}")
            # Terminals (and load balancers) ask health over mutual TLS.
            with grpc.secure_channel(f"127.0.0.1:{r.port('ONSHI_LISTEN')}", credentials) as channel:
                status = health(channel, "")
                p.expect(status == "SERVING", f"{r.name}: health over mutual TLS is {status}")
            # Without a client certificate the terminals' port refuses the kubelet.
            anonymous = grpc.ssl_channel_credentials(root_certificates=(tls / "server-ca.pem").read_bytes())
            with grpc.secure_channel(f"127.0.0.1:{r.port('ONSHI_LISTEN')}", anonymous) as channel:
                status = health(channel, "")
                p.expect(status != "SERVING", f"{r.name}: health answered a caller without a certificate")
            # The kubelet's probes: plaintext gRPC on the health port, no certificate.
            probes = []
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"]:
                service = container[probe]["grpc"].get("service", "")
                with grpc.insecure_channel(f"127.0.0.1:{r.port('ONSHI_HEALTH_LISTEN')}") as channel:
                    status = health(channel, service)
                probes.append(f"{probe} {status}")
                p.expect(
                    status == "SERVING",
                    f"{r.name}: the kubelet's {probe} (plaintext gRPC, service {service!r}) gets {status}",
                )
            print(f"  {r.name}: compose health check exit {result.returncode}, health over mutual TLS checked, "
                  + ", ".join(probes))
        # The failing cases of the compose health check, so that its pass means
        # something: nothing listening, and a gateway whose upstream is down.
        dead = [a.replace("127.0.0.1/9464", f"127.0.0.1/{free_port()}") for a in healthcheck]
        p.expect(subprocess.run(dead, capture_output=True, timeout=10).returncode != 0,
                 "the compose health check passes with nothing listening")
        cut_off = {**replicas[0].env, "ONSHI_UPSTREAM": f"http://127.0.0.1:{free_port()}",
                   "ONSHI_DATA_DIR": str(tmp / "cut-off")}
        cut_off.pop("ONSHI_DATABASE_URL")  # its own store: the shared one keeps two chains
        for variable in ["ONSHI_LISTEN", "ONSHI_ADMIN_LISTEN", "ONSHI_METRICS_LISTEN", "ONSHI_HEALTH_LISTEN"]:
            cut_off[variable] = f"127.0.0.1:{free_port()}"
        r = Replica("a replica without upstream", binary, cut_off, tmp / "cut-off.log")
        replicas.append(r)
        if r.wait_listening(p):
            command = [a.replace("127.0.0.1/9464", f"127.0.0.1/{r.port('ONSHI_METRICS_LISTEN')}") for a in healthcheck]
            with grpc.secure_channel(f"127.0.0.1:{r.port('ONSHI_LISTEN')}", credentials) as channel:
                status = health(channel, "")
            result = subprocess.run(command, capture_output=True, timeout=10)
            p.expect(status == "NOT_SERVING", f"{r.name}: health over mutual TLS is {status}")
            p.expect(result.returncode != 0, f"{r.name}: the compose health check passes")
            # Not ready, yet alive: the kubelet takes it out of the Service without a restart.
            probes = {}
            for probe in ["readinessProbe", "livenessProbe"]:
                service = container[probe]["grpc"].get("service", "")
                with grpc.insecure_channel(f"127.0.0.1:{r.port('ONSHI_HEALTH_LISTEN')}") as channel:
                    probes[probe] = health(channel, service)
            p.expect(probes["readinessProbe"] == "NOT_SERVING", f"{r.name}: readiness {probes['readinessProbe']}")
            p.expect(probes["livenessProbe"] == "SERVING", f"{r.name}: liveness {probes['livenessProbe']}")
            print(f"  {r.name}: health {status}, compose health check exit {result.returncode}, "
                  f"readiness {probes['readinessProbe']}, liveness {probes['livenessProbe']}")
        r.stop(within=15, p=p)
        replicas.remove(r)

        # The kubelet sends SIGTERM after the preStop pause, and SIGKILL at the end
        # of the grace period.
        pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        drain = settings.get("grpc", {}).get("drain_timeout_secs", 10)
        for r in replicas:
            r.stop(within=min(drain + 5, grace - pause), p=p)
        replicas = []

        verify = subprocess.run(
            [binary, "audit", "verify", "--database-url", database_url],
            env=base, capture_output=True, text=True, timeout=60,
        )
        p.expect(verify.returncode == 0, f"audit verify exited {verify.returncode}: {verify.stdout}{verify.stderr}")
        chains = psql_count(base_url, f"SELECT count(*) FROM {schema}.audit_chains")
        p.expect(chains == 2, f"the access log has {chains} chain(s), not one per replica")
        print(f"  access log: {chains} chains, audit verify exit {verify.returncode}")
    finally:
        for r in replicas:
            r.process.kill()
            r.process.wait()
        psql(base_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return p.report("shipped configuration")


def psql_count(base_url: str, sql: str) -> int:
    out = subprocess.run(["psql", base_url, "-Atc", sql], check=True, capture_output=True, text=True, timeout=30)
    return int(out.stdout.strip())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
