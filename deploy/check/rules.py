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
