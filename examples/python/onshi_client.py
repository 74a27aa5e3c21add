#!/usr/bin/env python3
"""A terminal's disaster-time lookup through onshi-gateway, over mutual TLS.

What a facility's terminal does when a patient arrives without a card while the
emergency function is active: an attribute search, the qualification of the chosen
candidate, drug history and check-ups, an access under the life-or-body exemption,
and the refusals a terminal must be able to explain (each read from the
`google.rpc.ErrorInfo` reason and `google.rpc.BadRequest` field in the status details).

stdout: one JSON object per step (machine-readable); stderr: what the terminal shows.
Exit status: 0 if every step behaved as expected, 1 if one did not, 2 if the client
could not start (missing certificate files, bad arguments).
"""

import argparse
import json
import sys
from pathlib import Path

import stubs

stubs.ensure()

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402
from grpc_status import rpc_status  # noqa: E402
from onshi.v1 import common_pb2  # noqa: E402
from onshi.v1 import medical_pb2, medical_pb2_grpc  # noqa: E402
from onshi.v1 import qualification_pb2, qualification_pb2_grpc  # noqa: E402

ACCESS_RECORD_HEADER = "x-onshi-access-record"
ERROR_DOMAIN = "onshi.gateway"
CALL_TIMEOUT_SECS = 10

# What the terminal tells its user for the reasons this scenario meets (docs/reasons.md
# lists them all). A terminal switches on the reason, never on the message text.
TELL_USER = {
    "AREA_NOT_ACTIVATED": "The emergency function is not active here now; use the normal card-reader flow.",
    "INSURER_NUMBER_CHECK_DIGIT": "A digit of the insurer number is mistyped; check the card.",
    "EXEMPTION_REASON_MISSING": "Say why the patient's consent cannot be obtained.",
    "SEARCH_FACILITY_MISMATCH": "That search was made at another facility; search again from here.",
    "INSURER_OR_ADDRESS_MISSING": "Enter the insurer's name or part of the patient's address.",
    "CONSENT_BASIS_MISSING": "Record the patient's consent, or the life-or-body exemption.",
    "CONSENT_KIND_NOT_GIVEN": "The patient did not consent to this information; ask for consent or leave it out.",
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="127.0.0.1:50051", help="the gateway's terminal listener")
    p.add_argument(
        "--certs",
        default="certs",
        help="directory written by `onshi-gateway certs dev`: server-ca.pem and facility-<code>.pem/.key",
    )
    p.add_argument(
        "--authority",
        default="",
        help="TLS server name to verify, when --target is not a name in the gateway's certificate",
    )
    p.add_argument("--facility", default="0410110019", help="this terminal's facility (in an activated area)")
    p.add_argument(
        "--other-facility",
        default="0740140017",
        help="another facility in an activated area, whose certificate is also in --certs",
    )
    p.add_argument(
        "--outside-facility",
        default="1310110018",
        help="a facility outside every activated area, whose certificate is also in --certs",
    )
    p.add_argument("--staff-id", default="dr-0001")
    # The patient as the user types them; the defaults are the simulator's demo patient.
    p.add_argument("--name", default="やまだ　たろう", help="name in kanji or kana")
    p.add_argument("--birth-date", default="1958-04-12")
    p.add_argument("--sex", default="male", choices=["male", "female"])
    p.add_argument("--address", default="石巻", help="part of the patient's address")
    return p.parse_args(argv)


class UsageError(Exception):
    """The client cannot start: exit status 2."""


class Terminal:
    """One facility's connection: its own certificate is its identity."""

    def __init__(self, args, facility):
        certs = Path(args.certs)
        try:
            creds = grpc.ssl_channel_credentials(
                root_certificates=(certs / "server-ca.pem").read_bytes(),
                private_key=(certs / f"facility-{facility}.key").read_bytes(),
                certificate_chain=(certs / f"facility-{facility}.pem").read_bytes(),
            )
        except OSError as e:
            raise UsageError(f"cannot read the certificates of facility {facility}: {e}") from None
        options = [("grpc.ssl_target_name_override", args.authority)] if args.authority else []
        self.facility = facility
        self.channel = grpc.secure_channel(args.target, creds, options)
        self.qualification = qualification_pb2_grpc.QualificationServiceStub(self.channel)
        self.medical = medical_pb2_grpc.MedicalInformationServiceStub(self.channel)


class Outcome:
    """What one call came back with: a response, or a refusal read from its details."""

    def __init__(self, response=None, error=None):
        self.response = response
        self.code = "OK"
        self.access_record = ""
        self.reason = ""
        self.domain = ""
        self.metadata = {}
        self.field_violations = []
        self.message = ""
        if error is not None:
            self.code = error.code().name
            self.message = error.details() or ""
            self.access_record = _record_id(error.trailing_metadata()) or _record_id(error.initial_metadata())
            # grpc-status-details-bin, decoded as a google.rpc.Status.
            status = rpc_status.from_call(error)
            for detail in status.details if status else []:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    self.reason, self.domain = info.reason, info.domain
                    self.metadata = dict(info.metadata)
                elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    self.field_violations += [
                        {"field": v.field, "description": v.description} for v in bad.field_violations
                    ]

    @property
    def allowed(self):
        return self.response is not None


def _record_id(metadata):
    for key, value in metadata or ():
        if key == ACCESS_RECORD_HEADER:
            return value
    return ""


def call(method, request):
    try:
        response, rpc = method.with_call(request, timeout=CALL_TIMEOUT_SECS)
    except grpc.RpcError as e:
        return Outcome(error=e)
    outcome = Outcome(response=response)
    outcome.access_record = _record_id(rpc.initial_metadata())
    return outcome


def as_dict(message):
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


class Scenario:
    def __init__(self, args):
        self.args = args
        self.failures = 0
        self.steps = 0

    def access(self, consent, identification=None):
        return common_pb2.AccessContext(
            staff=common_pb2.Staff(staff_id=self.args.staff_id, role=common_pb2.STAFF_ROLE_DOCTOR),
            consent=consent,
            purpose=common_pb2.PURPOSE_MEDICAL_CARE,
            identification=identification,
        )

    def report(self, step, expect, result, problem="", **data):
        """Prints the step's JSON line; returns whether it behaved as expected."""
        self.steps += 1
        line = {"step": step, "expect": expect, "ok": not problem, "code": result.code}
        line["access_record"] = result.access_record
        if result.allowed:
            line.update(data)
        else:
            line.update(
                reason=result.reason,
                domain=result.domain,
                metadata=result.metadata,
                field_violations=result.field_violations,
                message=result.message,
                tell_user=TELL_USER.get(result.reason, result.message),
            )
        if problem:
            line["problem"] = problem
            self.failures += 1
            say(f"  UNEXPECTED: {problem}")
        print(json.dumps(line, ensure_ascii=False), flush=True)
        return not problem

    def allowed(self, step, outcome, **data):
        problem = ""
        if not outcome.allowed:
            problem = f"expected to be served, got {outcome.code} {outcome.reason}: {outcome.message}"
            say(f"  REFUSED {outcome.code} {outcome.reason}: {outcome.message}")
        elif not outcome.access_record:
            problem = f"the response names no access record ({ACCESS_RECORD_HEADER})"
        return self.report(step, "allowed", outcome, problem, **data)

    def refused(self, step, label, outcome, reason, field=""):
        """A refusal as the terminal reads it: the ErrorInfo reason, and the field the
        BadRequest names."""
        say(f"  {label}")
        problem = ""
        if outcome.allowed:
            problem = f"expected {reason}, but the call was served"
        else:
            fields = [v["field"] for v in outcome.field_violations]
            say(f"    {outcome.code} {outcome.reason or '-'}" + (f" (field {', '.join(fields)})" if fields else ""))
            say(f"    the terminal shows: {TELL_USER.get(outcome.reason, outcome.message)}")
            if outcome.reason != reason:
                problem = f"expected reason {reason}, got {outcome.code} {outcome.reason or '(no ErrorInfo)'}"
            elif outcome.domain != ERROR_DOMAIN:
                problem = f"expected ErrorInfo domain {ERROR_DOMAIN}, got {outcome.domain!r}"
            elif field and field not in fields:
                problem = f"expected a BadRequest naming {field}, got {fields}"
            elif not outcome.access_record:
                problem = f"the refusal names no access record ({ACCESS_RECORD_HEADER})"
        return self.report(step, reason, outcome, problem)

    def run(self):
        a = self.args
        home = Terminal(a, a.facility)
        other = Terminal(a, a.other_facility)
        outside = Terminal(a, a.outside_facility)
        consent = common_pb2.Consent(basis=common_pb2.CONSENT_BASIS_PATIENT_CONSENT)
        sex = common_pb2.SEX_MALE if a.sex == "male" else common_pb2.SEX_FEMALE
        say(f"onshi-gateway at {a.target}, as facility {a.facility} (mutual TLS, certificates in {a.certs})")

        say(f"\n1. Attribute search: {a.name} {a.birth_date} {a.sex} address containing {a.address}")
        search = call(
            home.qualification.SearchPatients,
            qualification_pb2.SearchPatientsRequest(
                access=self.access(consent),
                name=a.name,
                birth_date=a.birth_date,
                sex=sex,
                address_fragment=a.address,
            ),
        )
        if not search.allowed:
            return self.allowed("search", search)
        r = search.response
        outcome = qualification_pb2.SearchOutcome.Name(r.outcome)
        say(f"  {outcome}: {len(r.candidates)} candidate(s), search_id {r.search_id}")
        for c in r.candidates:
            i = c.insured
            say(f"    {c.name} ({c.name_kana}) {c.birth_date} {c.insurer_name} {i.insurer_number} 記号 {i.symbol} 番号 {i.number} 枝番 {i.branch}")
        # Nothing is picked automatically: with several candidates the user chooses.
        problem = "" if r.outcome == qualification_pb2.SEARCH_OUTCOME_SINGLE_MATCH else (
            f"expected a single match, got {outcome} ({r.explanation})"
        )
        ok = self.report(
            "search",
            "allowed",
            search,
            problem,
            outcome=outcome,
            search_id=r.search_id,
            candidates=[as_dict(c) for c in r.candidates],
            explanation=r.explanation,
        )
        if not ok:
            return
        patient = r.candidates[0].insured
        by_search = common_pb2.Identification(
            method=common_pb2.IDENTIFICATION_METHOD_ATTRIBUTE_SEARCH, search_id=r.search_id
        )
        known = common_pb2.Identification(method=common_pb2.IDENTIFICATION_METHOD_INSURED_NUMBER_KNOWN)

        say("\n2. Qualification of the chosen candidate, identified by that search:")
        lookup = call(
            home.qualification.LookupQualification,
            qualification_pb2.LookupQualificationRequest(access=self.access(consent, by_search), insured=patient),
        )
        data = {}
        if lookup.allowed:
            q = lookup.response.qualification
            status = common_pb2.QualificationStatus.Name(lookup.response.status)
            say(f"  {status}: {q.name} {q.insurer_name} 負担割合 {q.copayment_ratio} 資格取得 {q.qualification_start} {q.address}")
            data = {"status": status, "qualification": as_dict(q)}
        self.allowed("lookup", lookup, **data)

        say("\n3. Drug history (薬剤情報):")
        drugs = call(
            home.medical.GetDrugHistory,
            medical_pb2.GetDrugHistoryRequest(access=self.access(consent, by_search), insured=patient),
        )
        data = {}
        if drugs.allowed:
            ds = drugs.response.dispensings
            say(f"  {len(ds)} dispensing(s)")
            for d in ds[:5]:
                say(f"    {d.dispensing_date} {d.drug_name} {d.dose} {d.quantity} × {d.days}日 ({d.dispensing_facility})")
            data = {"count": len(ds), "dispensings": [as_dict(d) for d in ds]}
        self.allowed("drug_history", drugs, **data)

        say("\n4. Specific health check-ups (特定健診情報):")
        checkups = call(
            home.medical.GetHealthCheckups,
            medical_pb2.GetHealthCheckupsRequest(access=self.access(consent, by_search), insured=patient),
        )
        data = {}
        if checkups.allowed:
            cs = checkups.response.checkups
            say(f"  {len(cs)} check-up(s)")
            if cs:
                say("    " + cs[0].checkup_date + ": " + ", ".join(f"{i.name} {i.value}{i.unit}" for i in cs[0].items[:6]))
            data = {"count": len(cs), "checkups": [as_dict(c) for c in cs]}
        self.allowed("checkups", checkups, **data)

        say("\n5. An unconscious patient: the life-or-body exemption, identified from an ID document:")
        exemption_reason = "意識不明で救急搬送、家族と連絡がつかない"
        exempt = call(
            home.qualification.LookupQualification,
            qualification_pb2.LookupQualificationRequest(
                access=self.access(
                    common_pb2.Consent(
                        basis=common_pb2.CONSENT_BASIS_LIFE_OR_BODY_EXEMPTION,
                        exemption_reason=exemption_reason,
                        exemption_identification=common_pb2.EXEMPTION_IDENTIFICATION_ID_DOCUMENT,
                    ),
                    known,
                ),
                insured=patient,
                birth_date=a.birth_date,
            ),
        )
        data = {}
        if exempt.allowed:
            status = common_pb2.QualificationStatus.Name(exempt.response.status)
            say(f"  {status}, recorded under the exemption ({exemption_reason}) for the operators' review")
            data = {
                "status": status,
                "consent_basis": "CONSENT_BASIS_LIFE_OR_BODY_EXEMPTION",
                "exemption_reason": exemption_reason,
                "qualification": as_dict(exempt.response.qualification),
            }
        self.allowed("exemption_lookup", exempt, **data)

        say("\n5b. Clinical information (診療情報), newest first, one page of 20:")
        clinical = call(
            home.medical.GetClinicalInformation,
            medical_pb2.GetClinicalInformationRequest(
                access=self.access(consent, by_search), insured=patient, page_size=20
            ),
        )
        data = {}
        if clinical.allowed:
            r = clinical.response
            say(f"  {len(r.items)} of {r.total_items} item(s); dialysis: {r.dialysis.on_dialysis} {r.dialysis.method} {r.dialysis.since}")
            data = {
                "count": len(r.items),
                "total_items": r.total_items,
                "next_page_token": r.next_page_token,
                "on_dialysis": r.dialysis.on_dialysis,
            }
        self.allowed("clinical_information", clinical, **data)

        say("\n5c. The emergency summary: every section in its window, each COMPLETE, EMPTY or UNAVAILABLE:")
        summary = call(
            home.medical.GetEmergencySummary,
            medical_pb2.GetEmergencySummaryRequest(access=self.access(consent, known), insured=patient),
        )
        data = {}
        if summary.allowed:
            s = summary.response
            sections = {
                name: medical_pb2.SectionStatus.Name(getattr(s, name + "_section").status)
                for name in ("qualification", "visits", "prescriptions", "dispensings", "operations", "procedures", "dialysis", "checkup")
            }
            for name, status in sections.items():
                say(f"    {name:<14} {status}")
            data = {"sections": sections, "on_dialysis": s.dialysis.on_dialysis}
        self.allowed("emergency_summary", summary, **data)

        say("\n6. Refusals, as the terminal reads them from the status details:")
        self.refused(
            "refused_outside_area",
            f"facility {a.outside_facility}, outside the activated areas, looks the patient up",
            call(
                outside.qualification.LookupQualification,
                qualification_pb2.LookupQualificationRequest(access=self.access(consent, known), insured=patient),
            ),
            "AREA_NOT_ACTIVATED",
        )
        mistyped = common_pb2.InsuredNumber()
        mistyped.CopyFrom(patient)
        mistyped.insurer_number = mistyped_check_digit(patient.insurer_number)
        self.refused(
            "refused_check_digit",
            f"an insurer number with a wrong check digit ({mistyped.insurer_number})",
            call(
                home.qualification.LookupQualification,
                qualification_pb2.LookupQualificationRequest(access=self.access(consent, known), insured=mistyped),
            ),
            "INSURER_NUMBER_CHECK_DIGIT",
            "insured.insurer_number",
        )
        self.refused(
            "refused_exemption_without_reason",
            "the exemption without a reason",
            call(
                home.medical.GetDrugHistory,
                medical_pb2.GetDrugHistoryRequest(
                    access=self.access(
                        common_pb2.Consent(
                            basis=common_pb2.CONSENT_BASIS_LIFE_OR_BODY_EXEMPTION,
                            exemption_identification=common_pb2.EXEMPTION_IDENTIFICATION_FAMILY_INFORMATION,
                        ),
                        known,
                    ),
                    insured=patient,
                ),
            ),
            "EXEMPTION_REASON_MISSING",
            "access.consent.exemption_reason",
        )
        self.refused(
            "refused_other_facility_search",
            f"facility {a.other_facility} names the search made by {a.facility}",
            call(
                other.medical.GetDrugHistory,
                medical_pb2.GetDrugHistoryRequest(access=self.access(consent, by_search), insured=patient),
            ),
            "SEARCH_FACILITY_MISMATCH",
            "access.identification.search_id",
        )
        self.refused(
            "refused_search_without_insurer_or_address",
            "a search without insurer name or address",
            call(
                home.qualification.SearchPatients,
                qualification_pb2.SearchPatientsRequest(
                    access=self.access(consent), name=a.name, birth_date=a.birth_date, sex=sex
                ),
            ),
            "INSURER_OR_ADDRESS_MISSING",
            "insurer_name",
        )
        self.refused(
            "refused_consent_kind",
            "drug history when the patient consented to check-ups only",
            call(
                home.medical.GetDrugHistory,
                medical_pb2.GetDrugHistoryRequest(
                    access=self.access(
                        common_pb2.Consent(
                            basis=common_pb2.CONSENT_BASIS_PATIENT_CONSENT,
                            kinds=[common_pb2.CONSENT_KIND_CHECKUPS],
                        ),
                        known,
                    ),
                    insured=patient,
                ),
            ),
            "CONSENT_KIND_NOT_GIVEN",
            "access.consent.kinds",
        )
        self.refused(
            "refused_no_consent_basis",
            "no consent basis given",
            call(
                home.qualification.LookupQualification,
                qualification_pb2.LookupQualificationRequest(
                    access=self.access(common_pb2.Consent(), known), insured=patient
                ),
            ),
            "CONSENT_BASIS_MISSING",
            "access.consent.basis",
        )


def mistyped_check_digit(insurer_number):
    """The same insurer number with its last (check) digit changed."""
    last = insurer_number[-1]
    return insurer_number[:-1] + str((int(last) + 1) % 10 if last.isdigit() else 0)


def say(text):
    print(text, file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    scenario = Scenario(args)
    try:
        scenario.run()
    except UsageError as e:
        say(str(e))
        return 2
    except grpc.RpcError as e:  # a call that failed outside the expected steps
        scenario.failures += 1
        print(json.dumps({"step": "error", "ok": False, "problem": f"{e.code().name}: {e.details()}"}), flush=True)
    passed = scenario.steps - scenario.failures
    print(json.dumps({"step": "summary", "passed": passed, "failed": scenario.failures}), flush=True)
    say(f"\n{passed} of {scenario.steps} steps as expected")
    return 1 if scenario.failures or scenario.steps == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
