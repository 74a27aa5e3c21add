#!/usr/bin/env bash
# Runs the recipe of deploy/load-test.md against a gateway started here: a
# development PKI, `onshi-gateway serve` with mutual TLS on loopback ports, then
# `cargo bench --bench lookup` aimed at it (ONSHI_BENCH_TARGET) with a small
# request count, opening and ending its activation through the operators'
# listener. Passes if every lookup came back VALID with an access record, the
# gateway stopped cleanly, and its access log verifies with one record per call.
#
# Usage: deploy/load-test-local.sh [GATEWAY_BINARY]
# (default: builds target/…/onshi-gateway). ONSHI_LOAD_TEST_REQUESTS (200) and
# ONSHI_LOAD_TEST_PROFILE (dev: the bench's code under the test build's profile;
# `bench` measures optimised code) may be set.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo="${CARGO:-cargo}"
requests="${ONSHI_LOAD_TEST_REQUESTS:-200}"
profile="${ONSHI_LOAD_TEST_PROFILE:-dev}"
concurrency=4

gateway="${1:-}"
if [ -z "$gateway" ]; then
  "$cargo" build --locked --bin onshi-gateway
  gateway="$("$cargo" metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/onshi-gateway"
fi

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listen=$(free_port); admin=$(free_port); metrics=$(free_port)
facility=0410110019

"$gateway" certs dev --dir "$work/tls" >/dev/null

: >"$work/gateway.log"
# Only loopback addresses; the per-facility rate limit is lifted, as the recipe
# says to do on the gateway under test (one facility calls far above 20/s).
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
  ONSHI_LISTEN="127.0.0.1:$listen" ONSHI_ADMIN_LISTEN="127.0.0.1:$admin" \
  ONSHI_METRICS_LISTEN="127.0.0.1:$metrics" ONSHI_DATA_DIR="$work/data" \
  ONSHI_TLS_DIR="$work/tls" ONSHI_POPULATION=2000 ONSHI_FACILITY_RATE_PER_SEC=0 \
  "$gateway" serve >"$work/gateway.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  grep -q "onshi-gateway listening on" "$work/gateway.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/gateway.log"; echo "load test: the gateway did not start" >&2; exit 1; }
  sleep 0.2
done
grep -q "onshi-gateway listening on" "$work/gateway.log" || { cat "$work/gateway.log"; echo "load test: the gateway did not start in 60 s" >&2; exit 1; }

# The recipe's command, aimed at this gateway.
ONSHI_BENCH_TARGET="https://127.0.0.1:$listen" \
ONSHI_BENCH_CA="$work/tls/server-ca.pem" \
ONSHI_BENCH_CERT="$work/tls/facility-$facility.pem" \
ONSHI_BENCH_KEY="$work/tls/facility-$facility.key" \
ONSHI_BENCH_FACILITY="$facility" \
ONSHI_BENCH_ADMIN="https://127.0.0.1:$admin" \
ONSHI_BENCH_ADMIN_CERT="$work/tls/operator-activation-manager.pem" \
ONSHI_BENCH_ADMIN_KEY="$work/tls/operator-activation-manager.key" \
ONSHI_BENCH_POPULATION=2000 \
ONSHI_BENCH_REQUESTS="$requests" ONSHI_BENCH_CONCURRENCY="$concurrency" ONSHI_BENCH_ROUNDS=2 \
  "$cargo" bench --locked --bench lookup --profile "$profile" 2>"$work/bench.err" | tee "$work/bench.out" \
  || { cat "$work/bench.err"; echo "load test: the bench failed" >&2; exit 1; }

kill -TERM "$pid"
code=0; wait "$pid" || code=$?
pid=""
[ "$code" -eq 0 ] || { tail -20 "$work/gateway.log"; echo "load test: the gateway exited $code on SIGTERM" >&2; exit 1; }

# The bench's figures: one row for the deployed gateway, every request counted.
measured=$(awk '$1 == "gateway" && $2 == "(deployed)" { print $3 }' "$work/bench.out")
[ "$measured" = "$requests" ] || { echo "load test: the bench reported ${measured:-no} measured requests, not $requests" >&2; exit 1; }
grep -q "every lookup VALID with an access record; activation .* opened for the run and ended" "$work/bench.out" \
  || { echo "load test: the bench did not confirm its lookups and activation" >&2; exit 1; }

# Every call left one access record (the bench warms up with 8 calls a worker
# first), and the chain verifies.
"$gateway" audit verify --data-dir "$work/data" >"$work/verify.out" 2>&1 \
  || { cat "$work/verify.out"; echo "load test: the access log does not verify" >&2; exit 1; }
"$gateway" audit export --data-dir "$work/data" --facility "$facility" --format jsonl --out "$work/records.jsonl" >/dev/null 2>&1 \
  || { echo "load test: audit export failed" >&2; exit 1; }
records=$(grep -c . "$work/records.jsonl" || true)
expected=$((requests + 8 * concurrency))
[ "$records" -eq "$expected" ] || { echo "load test: $records access records of the facility, not $expected (the calls made)" >&2; exit 1; }
echo "load test: $measured lookups measured against a served gateway over mutual TLS; $records access records, the log verifies"
