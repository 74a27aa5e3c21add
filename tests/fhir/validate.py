"""Validates every line of a FHIR NDJSON export as an R4 AuditEvent with the
fhir.resources models (R4B, whose AuditEvent is R4's), and checks the codes that
the models leave open against their R4 value sets. Prints one line per resource and
`N valid, N invalid`; exits 1 if any line fails."""
import json
import sys

from fhir.resources.R4B.auditevent import AuditEvent

ACTIONS = {"C", "R", "U", "D", "E"}
OUTCOMES = {"0", "4", "8", "12"}


def check(line):
    event = AuditEvent.model_validate_json(line)
    assert event.action in ACTIONS, f"action {event.action!r}"
    assert event.outcome in OUTCOMES, f"outcome {event.outcome!r}"
    assert any(a.requestor for a in event.agent), "no requesting agent"
    return event


def main(path):
    passed = failed = 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                event = check(line)
                purpose = event.purposeOfEvent[0].coding[0].code
                print(f"line {n}: valid AuditEvent {event.id} {purpose}")
                passed += 1
            except Exception as e:  # every failure is reported, then counted
                print(f"line {n}: INVALID: {e}")
                failed += 1
    print(f"{passed} valid, {failed} invalid")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
