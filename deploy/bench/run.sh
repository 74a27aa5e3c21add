#!/usr/bin/env bash
# Side-by-side load benchmark (docs/performance.md): the same h2load client and the
# same upstream simulator process against
#   direct    the upstream simulator itself,
#   nginx     Debian's nginx as a plain gRPC proxy (grpc_pass, upstream keepalive),
#   floor     a plain HTTP/2 proxy on the gateway's own stack (hyper, hyper-util's
#             client, tokio, mimalloc; benches/floor.rs): what that stack costs a
#             call before any gateway work,
#   sqlite    the gateway, every rule, the durable access log in SQLite,
#   postgres  the same gateway with the access log in PostgreSQL.
# Scenarios: closed loop at 32x1 and 50x20 (connections x streams), an open-loop
# sweep of offered rates (h2load --rps), and 10,000 streams over 1,000 connections.
# Prints throughput, p50/p99/p99.9, CPU per 10k calls, peak RSS and the ratios, and
# writes report.md and sweep.svg to the output directory.
#
# No TLS anywhere: h2load presents no client certificate, so the gateway runs in
# its development identity mode (the facility from `x-onshi-dev-facility`
# metadata) and every target is plaintext HTTP/2; the TLS cost is excluded for all
# alike. Installs h2load (nghttp2-client) and nginx if missing (apt-get, as root);
# kills only the processes it started.
#
# Usage: deploy/bench/run.sh [GATEWAY_BINARY]    (default: cargo build --release)
# Knobs (environment): BENCH_SECS (10) per closed-loop run, BENCH_SWEEP_SECS (5)
# per offered rate, BENCH_RATES ("1000 2000 4000 6000 8000 12000 16000 24000"),
# BENCH_TARGETS ("direct nginx floor sqlite postgres"), BENCH_SCENARIOS ("low high sweep
# streams"), BENCH_PG (postgres://postgres@127.0.0.1:5432; the run creates and
# drops its own database onshi_bench), BENCH_OUT (target/bench-report),
# BENCH_LOADMIX (a built benches/loadmix binary; default: cargo bench --bench loadmix),
# BENCH_FLOOR (a built benches/floor binary; default: cargo bench --bench floor),
# BENCH_POPULATION (100000), BENCH_GATEWAY_ENV (extra VAR=value for the gateway).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
cargo="${CARGO:-cargo}"
secs="${BENCH_SECS:-10}"
sweep_secs="${BENCH_SWEEP_SECS:-5}"
rates="${BENCH_RATES:-1000 2000 4000 6000 8000 12000 16000 24000}"
targets="${BENCH_TARGETS:-direct nginx floor sqlite postgres}"
scenarios="${BENCH_SCENARIOS:-low high sweep streams}"
pg="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
population="${BENCH_POPULATION:-100000}"
seed=20220317
target_dir="$("$cargo" metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
out="${BENCH_OUT:-$target_dir/bench-report}"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need h2load || ! { need nginx || [ -x /usr/sbin/nginx ]; }; then
  echo "bench: installing h2load and nginx (apt-get)" >&2
  apt-get install -y nghttp2-client nginx-light >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y nghttp2-client nginx-light >/dev/null; }
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

gateway="${1:-}"
if [ -z "$gateway" ]; then
  "$cargo" build --locked --release --bin onshi-gateway
  gateway="$target_dir/release/onshi-gateway"
fi

work="$(mktemp -d)"
started=()
cleanup() {
  for p in "${started[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${started[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ -n "${pg_db_made:-}" ]; then psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS onshi_bench" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 600); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "bench: $3 exited before listening" >&2; tail -20 "$work/$3.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "bench: $3 did not listen on $1" >&2; exit 1
}

# The request mix: one frame file and one h2load process per profile
# (benches/loadmix.rs; BENCH_LOADMIX may name its built binary instead).
loadmix() {
  if [ -n "${BENCH_LOADMIX:-}" ]; then "$BENCH_LOADMIX" "$@"
  else "$cargo" bench --locked --bench loadmix -- "$@"; fi
}
mix="$work/mix"
loadmix --out "$mix" --profiles 50 --seed "$seed" --population "$population" >/dev/null
# Each profile's path and facility, read once: every run starts its h2load
# processes from these without a helper process apiece (see load). The gateways'
# `--check` rewrites the mix from the same seed, so these stay its rows.
mapfile -t mix_paths < <(awk -F'\t' 'NR > 1 {print $2}' "$mix/profiles.tsv")
mapfile -t mix_facilities < <(awk -F'\t' 'NR > 1 {print $3}' "$mix/profiles.tsv")

# One upstream simulator for every target.
up_port=$(free_port)
"$gateway" upstream --listen "127.0.0.1:$up_port" --seed "$seed" --population "$population" >"$work/upstream.log" 2>&1 &
up_pid=$!; started+=("$up_pid")
wait_port "$up_port" "$up_pid" upstream

mkdir -p "$out"
results="$out/results.tsv"
printf 'target\tscenario\trate\tconns\tstreams\tsecs\tcpu_ticks\thwm_kib\tlogs\tunexpected\twriter\n' >"$results"
clk=$(getconf CLK_TCK)

# Processes of a target: the process and its children (nginx's workers).
pids_of() { echo "$1"; pgrep -P "$1" || true; }
cpu_ticks() {
  local sum=0 p
  for p in $(pids_of "$1"); do
    [ -r "/proc/$p/stat" ] && sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$sum"
}
peak_rss_kib() {
  local sum=0 p v
  for p in $(pids_of "$1"); do
    v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
reset_peak() { local p; for p in $(pids_of "$1"); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }

# h2load over the mix: $1 port, $2 total connections, $3 streams each, $4 seconds,
# $5 total offered rate (0: closed loop), $6 log directory. Connections go to the
# profiles round-robin, one h2load process per profile that has any.
load() {
  local port=$1 conns=$2 streams=$3 dur=$4 rate=$5 logs=$6
  local procs=$(( conns < 50 ? conns : 50 )) i c pids=() extra=()
  mkdir -p "$logs"
  # Everything each h2load needs is worked out before the first starts: a helper
  # process per h2load (python, ~90 ms each on an idle machine, far more under
  # load) would stagger the 50 starts over seconds, so their runs would overlap
  # only in part and the offered rate would be below its nominal value.
  if [ "$rate" -gt 0 ]; then
    local per=$(( (rate + conns / 2) / conns ))
    extra=(--rps "$(( per > 0 ? per : 1 ))")
  fi
  for i in $(seq 0 $((procs - 1))); do
    c=$(( conns / procs + (i < conns % procs ? 1 : 0) ))
    # -N: a stream left unanswered must not hold h2load past the run (it can wait
    # forever on one at the end); timeout is the last resort.
    timeout -s KILL $((dur + 30)) h2load -c "$c" -m "$streams" -D "$dur" -N 5 "${extra[@]}" -d "$mix/$i.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      -H 'grpc-accept-encoding: identity,deflate,gzip' -H "x-onshi-dev-facility: ${mix_facilities[$i]}" \
      --log-file "$logs/$i.log" "http://127.0.0.1:$port${mix_paths[$i]}" >"$logs/$i.out" 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
}

# The gateway's calls so far by decision and reason, from its /metrics ($1 port),
# then the access-log writer's totals as rows whose decision is "writer".
call_counts() {
  python3 - "$1" <<'PY'
import collections, re, sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=10).read().decode()
counts = collections.Counter()
for line in text.splitlines():
    m = re.match(r'onshi_requests_total\{([^}]*)\} (\S+)', line)
    if m:
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        counts[(labels.get("decision", ""), labels.get("reason", ""))] += float(m.group(2))
for (decision, reason), n in sorted(counts.items()):
    print(f"{decision}\t{reason or '-'}\t{int(n)}")
# The access-log writer's totals, for how busy it was over a run.
for name in ("audit_commit_seconds_sum", "audit_commit_seconds_count", "audit_batch_records_sum"):
    m = re.search(rf'^onshi_{name} (\S+)$', text, re.M)
    print(f"writer\t{name}\t{float(m.group(1)) if m else 0.0}")
PY
}

# How the access-log writer spent a run of $3 seconds between two call_counts files:
# busy=fraction of the time committing, batch=mean records per commit, commit_ms=mean
# time per commit; "-" when it committed nothing.
writer_use() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
def read(path):
    return {r: float(n) for d, r, n in (l.rstrip("\n").split("\t") for l in open(path)) if d == "writer"}
b, a, secs = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])
d = {k: a.get(k, 0.0) - b.get(k, 0.0) for k in a}
n = d.get("audit_commit_seconds_count", 0.0)
if n <= 0:
    print("-")
else:
    t = d["audit_commit_seconds_sum"]
    print(f"busy={t / secs:.2f},batch={d['audit_batch_records_sum'] / n:.1f},commit_ms={1000 * t / n:.2f}")
PY
}

# The calls denied or failed between two call_counts files other than the mix's own
# denials, as REASON=count,...; "-" for none. A run whose calls were refused for
# another reason (AUDIT_UNAVAILABLE when a commit stalled, say) shows it here, since
# a fast refusal would otherwise pass for throughput.
unexpected() {
  python3 - "$1" "$2" <<'PY'
import collections, sys
def read(path):
    c = collections.Counter()
    for line in open(path):
        decision, reason, n = line.rstrip("\n").split("\t")
        c[(decision, reason)] += int(float(n))
    return c
before, after = read(sys.argv[1]), read(sys.argv[2])
mix = {"AREA_NOT_ACTIVATED", "INSURER_NUMBER_CHECK_DIGIT"}
odd = collections.Counter()
for (decision, reason), n in (after - before).items():
    if decision != "allowed" and decision != "writer" and reason not in mix:
        odd[reason] += n
print(",".join(f"{r if r != '-' else 'NO_REASON'}={n}" for r, n in sorted(odd.items())) or "-")
PY
}

# One measured run against a target: records CPU and peak RSS around it, and for a
# gateway ($9: its metrics port) the calls refused beyond the mix's own denials.
measure() {
  local name=$1 port=$2 pid=$3 scenario=$4 conns=$5 streams=$6 dur=$7 rate=$8 metrics=${9:-}
  local logs="$out/logs/$name-$scenario-$rate" before after odd=- writer=-
  rm -rf "$logs"
  [ -n "$metrics" ] && call_counts "$metrics" >"$work/calls-before"
  reset_peak "$pid"
  before=$(cpu_ticks "$pid")
  load "$port" "$conns" "$streams" "$dur" "$rate" "$logs"
  after=$(cpu_ticks "$pid")
  if [ -n "$metrics" ]; then
    call_counts "$metrics" >"$work/calls-after"
    odd=$(unexpected "$work/calls-before" "$work/calls-after")
    writer=$(writer_use "$work/calls-before" "$work/calls-after" "$dur")
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$scenario" "$rate" "$conns" "$streams" \
    "$dur" "$((after - before))" "$(peak_rss_kib "$pid")" "$logs" "$odd" "$writer" >>"$results"
  echo "bench: $name $scenario${rate:+ rate $rate} done" >&2
}

start_nginx() {
  local port=$1 dir="$work/nginx"
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
worker_processes auto;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  keepalive_requests 100000000;
  http2_max_concurrent_streams 256;
  upstream onshi { server 127.0.0.1:$up_port; keepalive 64; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:$port http2;
    location / { grpc_pass grpc://onshi; }
  }
}
EOF
  "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$work/nginx.log" 2>&1 &
  echo $!
}

# The floor proxy's binary, built once (cargo would otherwise stand between the
# benchmark and the process it measures).
floor_binary() {
  if [ -n "${BENCH_FLOOR:-}" ]; then echo "$BENCH_FLOOR"; return; fi
  "$cargo" bench --locked --bench floor --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "floor" and m.get("executable"):
        print(m["executable"])'
}

start_floor() {
  "$(floor_binary)" --listen "127.0.0.1:$1" --upstream "http://127.0.0.1:$up_port" >"$work/floor.log" 2>&1 &
  echo $!
}

start_gateway() {
  local name=$1 port=$2 admin=$3 db=$4 metrics=$5 data="$work/data-$1" extra=()
  [ -n "$db" ] && extra=(--database-url "$db")
  # shellcheck disable=SC2086
  env ONSHI_FACILITY_RATE_PER_SEC=0 ONSHI_MAX_IN_FLIGHT=0 ${BENCH_GATEWAY_ENV:-} \
    "$gateway" serve --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
    --metrics-listen "127.0.0.1:$metrics" --data-dir "$data" \
    --upstream "http://127.0.0.1:$up_port" --dev-identity-from-metadata "${extra[@]}" \
    >"$work/$name.log" 2>&1 &
  echo $!
}

run_target() {
  local name=$1 port pid admin db="" metrics=""
  port=$(free_port)
  case "$name" in
    direct) port=$up_port; pid=$up_pid ;;
    nginx) pid=$(start_nginx "$port"); started+=("$pid") ;;
    floor) pid=$(start_floor "$port"); started+=("$pid") ;;
    sqlite|postgres)
      admin=$(free_port); metrics=$(free_port)
      if [ "$name" = postgres ]; then
        psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS onshi_bench" -c "CREATE DATABASE onshi_bench" >/dev/null
        pg_db_made=1; db="$pg/onshi_bench"
      fi
      pid=$(start_gateway "$name" "$port" "$admin" "$db" "$metrics"); started+=("$pid")
      wait_port "$admin" "$pid" "$name"
      # Miyagi and Fukushima activated for the run, as in the 2022 notice.
      "$gateway" activation create --admin "http://127.0.0.1:$admin" --event "load benchmark" \
        --prefecture 04,07 --from "$(TZ=Asia/Tokyo date +%F)" --one-week --by bench >/dev/null
      ;;
  esac
  [ "$name" = direct ] || wait_port "$port" "$pid" "$name"
  if [ "$name" = sqlite ] || [ "$name" = postgres ]; then
    loadmix --out "$mix" --profiles 50 --seed "$seed" --population "$population" \
      --check "http://127.0.0.1:$port" >&2
  fi
  # Warm-up: connections, caches, the log's first pages; not measured.
  load "$port" 50 20 2 0 "$work/warmup-$name"
  for s in $scenarios; do
    case "$s" in
      low) measure "$name" "$port" "$pid" low 32 1 "$secs" 0 "$metrics" ;;
      high) measure "$name" "$port" "$pid" high 50 20 "$secs" 0 "$metrics" ;;
      sweep) for r in $rates; do measure "$name" "$port" "$pid" sweep 50 100 "$sweep_secs" "$r" "$metrics"; done ;;
      streams) measure "$name" "$port" "$pid" streams 1000 10 "$secs" 0 "$metrics" ;;
    esac
  done
  if [ "$name" != direct ]; then kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; fi
  # The target's own log, kept beside the report (why a call was refused, say).
  [ -f "$work/$name.log" ] && cp "$work/$name.log" "$out/$name.log"
  if [ "$name" = sqlite ] || [ "$name" = postgres ]; then
    "$gateway" audit verify ${db:+--database-url "$db"} --data-dir "$work/data-$name" >"$out/verify-$name.txt" 2>&1 \
      || { cat "$out/verify-$name.txt" >&2; echo "bench: the $name gateway's access log does not verify" >&2; exit 1; }
  fi
}

{
  echo "# conditions"
  echo "date: $(date -u +%FT%TZ); host: $(nproc) CPUs, $(awk '/MemTotal/ {print $2/1024 " MiB"}' /proc/meminfo)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "gateway: $gateway ($("$gateway" --version)); extra env: ${BENCH_GATEWAY_ENV:-none}"
  echo "h2load: $(h2load --version | head -1); nginx: $("$nginx_bin" -v 2>&1)"
} >"$out/conditions.txt"
for t in $targets; do run_target "$t"; done
python3 "$root/deploy/bench/report.py" "$out" | tee "$out/report.md"
