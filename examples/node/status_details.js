// Reads the rich error model of a gRPC refusal: the `grpc-status-details-bin`
// trailer holds a serialized google.rpc.Status whose `details` are Any messages
// (google.rpc.ErrorInfo, google.rpc.BadRequest, google.rpc.RetryInfo, ...).
//
// The google/rpc protos are vendored under proto/google/rpc (the gateway's proto/
// does not carry them); protobufjs bundles google/protobuf/any.proto and duration.proto.
'use strict';

const path = require('node:path');
const protobuf = require('protobufjs');

const STATUS_DETAILS_HEADER = 'grpc-status-details-bin';

let root = null;

function rpcTypes() {
  if (!root) {
    root = new protobuf.Root();
    const dir = path.join(__dirname, 'proto');
    root.resolvePath = (_origin, target) => path.join(dir, target);
    root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  }
  return root;
}

// The details of a refusal's status as [{ type, message }], `type` the full name of
// the message (e.g. "google.rpc.ErrorInfo"); an empty list if the status has none.
// A detail of a type not known here is kept with `message: null`.
function statusDetails(metadata) {
  const raw = metadata ? metadata.get(STATUS_DETAILS_HEADER) : [];
  if (!raw.length) {
    return [];
  }
  const types = rpcTypes();
  const status = types.lookupType('google.rpc.Status').decode(raw[0]);
  return status.details.map((any) => {
    const type = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    let message = null;
    try {
      message = types.lookupType(type).toObject(types.lookupType(type).decode(any.value), {
        defaults: true,
        arrays: true,
        objects: true,
      });
    } catch (_) {
      // Not a type of google/rpc/error_details.proto: leave it undecoded.
    }
    return { type, message };
  });
}

module.exports = { statusDetails };
