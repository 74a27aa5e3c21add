"""Reads the gateway's refusals as a Python terminal does, with grpcio-status.

tests/status_conformance.rs runs this with the example clients' virtualenv
(examples/setup.sh). It reads one JSON object on stdin:

    {"targets": {"<name>": {"address": "host:port",
                            "tls": null | {"ca": PEM, "cert": PEM, "key": PEM}}},
     "cases": [{"name": ..., "target": "<name>", "method": "/pkg.Service/Method",
                "metadata": [[key, value], ...], "body": "<hex>", "repeat": n}]}

Each case's body is an already encoded request, sent `repeat` times as raw bytes
(no stubs needed). For the last answer it prints one JSON line: the gRPC code, and
what `grpc_status.rpc_status.from_call` made of `grpc-status-details-bin` (or the
error it raised: it raises ValueError when the status proto's code or message
differs from the call's).
"""

import json
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

CALL_TIMEOUT_SECS = 10


def channel(target):
    tls = target.get("tls")
    if not tls:
        return grpc.insecure_channel(target["address"])
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls["ca"].encode(),
        private_key=tls["key"].encode(),
        certificate_chain=tls["cert"].encode(),
    )
    # The development server certificate is for localhost.
    options = [("grpc.ssl_target_name_override", "localhost")]
    return grpc.secure_channel(target["address"], credentials, options)


def read(error):
    """What a client learns from a refusal."""
    out = {
        "code": error.code().name,
        "code_number": error.code().value[0],
        "message": error.details() or "",
    }
    try:
        status = rpc_status.from_call(error)
    except ValueError as e:
        out["from_call_error"] = str(e)
        return out
    if status is None:
        out["details"] = False
        return out
    out["details"] = True
    out["status_code"] = status.code
    out["fields"] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            out["reason"], out["domain"] = info.reason, info.domain
            out["metadata"] = dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out["fields"] += [v.field for v in bad.field_violations]
    return out


def run(case, channels):
    # No serializers: the request and the reply are raw bytes.
    call = channels[case["target"]].unary_unary(case["method"])
    metadata = [tuple(kv) for kv in case["metadata"]]
    body = bytes.fromhex(case["body"])
    result = {}
    for _ in range(case.get("repeat", 1)):
        try:
            call(body, metadata=metadata, timeout=CALL_TIMEOUT_SECS)
            result = {"code": "OK"}
        except grpc.RpcError as e:
            result = read(e)
    return {"name": case["name"], **result}


def main():
    spec = json.load(sys.stdin)
    channels = {name: channel(t) for name, t in spec["targets"].items()}
    for case in spec["cases"]:
        print(json.dumps(run(case, channels), ensure_ascii=False), flush=True)
    for c in channels.values():
        c.close()


if __name__ == "__main__":
    main()
