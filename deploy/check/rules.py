"""What the rule checks share: a list of broken rules, printed with its verdict."""


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(message)

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.add(message)

    def report(self, what: str) -> int:
        for item in self.items:
            print(f"{what}: {item}")
        if self.items:
            print(f"{what}: {len(self.items)} rule(s) broken")
            return 1
        print(f"{what}: rules hold")
        return 0


def listen_port(address: str) -> int | None:
    """The port of HOST:PORT, or None."""
    _, _, port = address.rpartition(":")
    return int(port) if port.isdigit() else None


# The variables the checks read, with the key each overrides in the file.
VARIABLES = {
    "ONSHI_LISTEN": ("listen", "terminals"),
    "ONSHI_ADMIN_LISTEN": ("listen", "admin"),
    "ONSHI_METRICS_LISTEN": ("listen", "metrics"),
    "ONSHI_DATA_DIR": ("store", "data_dir"),
    "ONSHI_DATABASE_URL": ("store", "database_url"),
    "ONSHI_TLS_DIR": ("tls", "dir"),
    "ONSHI_AUDIT_KEY": ("audit", "key"),
    "ONSHI_DRAIN_TIMEOUT_SECS": ("grpc", "drain_timeout_secs"),
    "ONSHI_OTLP_ENDPOINT": ("telemetry", "otlp_endpoint"),
    "ONSHI_UPSTREAM": ("upstream", "url"),
}


def effective(defaults: dict, file: dict, env: dict) -> dict:
    """The settings the gateway would use, as far as the checks need them: the
    defaults (the repository's onshi-gateway.toml), then the file, then the
    environment's variables."""
    merged = {section: dict(keys) for section, keys in defaults.items()}
    for section, keys in file.items():
        merged.setdefault(section, {}).update(keys)
    for variable, (section, key) in VARIABLES.items():
        if variable in env:
            value = env[variable]
            default = merged.get(section, {}).get(key)
            merged.setdefault(section, {})[key] = int(value) if isinstance(default, int) else value
    return merged
