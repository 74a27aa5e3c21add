#!/usr/bin/env python3
"""A temporary site's terminal (a first-aid post's laptop, a mobile pharmacy's tablet).

Two steps, as at the site:

  1. `keygen`: makes the site's private key and a certificate signing request. The
     key never leaves this machine; the CSR goes to the operators, who sign it:
         onshi-gateway site issue-cert SITE_ID --csr site.csr --out site.pem --by OPERATOR
  2. `lookup`: with the signed certificate, looks a patient up by insured number and
     shows the qualification and the drug history, over the gateway's terminal listener.

The links at a site are a phone or a satellite terminal: the channel keeps the
connection alive with HTTP/2 pings, each call has a deadline, replies are gzip
compressed, and a refusal is explained from its `google.rpc.ErrorInfo` reason
(docs/sites.md, "At the site").

Exit status: 0 on success, 1 if the gateway refused or failed, 2 on bad arguments
or missing files. The key and CSR are made with the `openssl` command (EC P-256).
"""

import argparse
import subprocess
import sys
from pathlib import Path

import stubs

stubs.ensure()

import grpc  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402
from grpc_status import rpc_status  # noqa: E402
from onshi.v1 import common_pb2  # noqa: E402
from onshi.v1 import medical_pb2, medical_pb2_grpc  # noqa: E402
from onshi.v1 import qualification_pb2, qualification_pb2_grpc  # noqa: E402

# A satellite round trip is ~600 ms and phone links stall: generous, but bounded.
CALL_TIMEOUT_SECS = 30
# Settings that keep a NAT'd phone or satellite link open between patients.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
]

TELL_USER = {
    "SITE_NOT_OPEN": "This site is closed or past its validity; ask the prefecture to renew it.",
    "AREA_NOT_ACTIVATED": "The emergency function is no longer active for this site's area.",
    "SITE_LICENCE_REQUIRED": "Enter your licence registration number (医籍 / 薬剤師名簿).",
    "SITE_NOT_FOUND": "This certificate's site is not registered; ask the operators.",
    "CONSENT_BASIS_MISSING": "Record the patient's consent, or the life-or-body exemption.",
}


def keygen(args) -> int:
    key, csr = Path(args.key), Path(args.csr)
    if key.exists() and not args.force:
        print(f"{key} exists: the site already has a key (use --force to replace it)", file=sys.stderr)
        return 2
    cmd = [
        "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={args.name}",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True)
    except FileNotFoundError:
        print("the openssl command is needed to make the key and CSR", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"openssl failed: {e.stderr.decode(errors='replace')}", file=sys.stderr)
        return 2
    key.chmod(0o600)
    print(f"key: {key} (keep it here)\nCSR: {csr} (send it to the operators)")
    return 0


def channel(args):
    try:
        creds = grpc.ssl_channel_credentials(
            root_certificates=Path(args.ca).read_bytes(),
            private_key=Path(args.key).read_bytes(),
            certificate_chain=Path(args.cert).read_bytes(),
        )
    except OSError as e:
        print(f"cannot read a TLS file: {e}", file=sys.stderr)
        return None
    options = list(CHANNEL_OPTIONS)
    if args.authority:
        options.append(("grpc.ssl_target_name_override", args.authority))
    return grpc.secure_channel(args.target, creds, options, compression=grpc.Compression.Gzip)


def explain(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    reason = ""
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    hint = TELL_USER.get(reason, "")
    return f"{error.code().name} {reason}: {error.details()}" + (f"\n  -> {hint}" if hint else "")


def lookup(args) -> int:
    ch = channel(args)
    if ch is None:
        return 2
    staff = common_pb2.Staff(
        staff_id=args.staff_id, role=common_pb2.STAFF_ROLE_DOCTOR, licence_number=args.licence_number
    )
    access = common_pb2.AccessContext(
        staff=staff,
        consent=common_pb2.Consent(basis=common_pb2.CONSENT_BASIS_PATIENT_CONSENT),
        purpose=common_pb2.PURPOSE_MEDICAL_CARE,
        identification=common_pb2.Identification(method=common_pb2.IDENTIFICATION_METHOD_INSURED_NUMBER_KNOWN),
    )
    insured = common_pb2.InsuredNumber(
        insurer_number=args.insurer, symbol=args.symbol, number=args.number, branch=args.branch
    )
    try:
        q = qualification_pb2_grpc.QualificationServiceStub(ch).LookupQualification(
            qualification_pb2.LookupQualificationRequest(access=access, insured=insured),
            timeout=CALL_TIMEOUT_SECS,
        )
        p = q.qualification
        print(f"{p.name} ({p.name_kana}) {p.birth_date}  {p.insurer_name}  copayment {p.copayment_ratio}")
        drugs = medical_pb2_grpc.MedicalInformationServiceStub(ch).GetDrugHistory(
            medical_pb2.GetDrugHistoryRequest(access=access, insured=insured),
            timeout=CALL_TIMEOUT_SECS,
        )
        for d in drugs.dispensings[: args.max_drugs]:
            print(f"  {d.dispensing_date}  {d.drug_name}  {d.dose}  {d.quantity} x {d.days} days")
    except grpc.RpcError as e:
        print(explain(e), file=sys.stderr)
        return 1
    return 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen", help="make the site's key and CSR")
    k.add_argument("--key", default="site.key")
    k.add_argument("--csr", default="site.csr")
    k.add_argument("--name", default="site", help="a name for the CSR's subject (the gateway sets its own)")
    k.add_argument("--force", action="store_true")
    l = sub.add_parser("lookup", help="look a patient up with the site's certificate")
    l.add_argument("--target", default="127.0.0.1:50051", help="the gateway's terminal listener")
    l.add_argument("--ca", default="server-ca.pem", help="the CA of the gateway's certificate")
    l.add_argument("--cert", default="site.pem", help="the site's certificate from `site issue-cert`")
    l.add_argument("--key", default="site.key")
    l.add_argument("--authority", default="", help="TLS server name, if --target is not in the certificate")
    l.add_argument("--staff-id", default="dr-0001")
    l.add_argument("--licence-number", default="", help="licence registration number, if the site requires it")
    l.add_argument("--insurer", default="01040013")
    l.add_argument("--symbol", default="40250311")
    l.add_argument("--number", default="152")
    l.add_argument("--branch", default="00")
    l.add_argument("--max-drugs", type=int, default=10)
    return p.parse_args(argv)


def main(argv) -> int:
    args = parse_args(argv)
    return keygen(args) if args.command == "keygen" else lookup(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
