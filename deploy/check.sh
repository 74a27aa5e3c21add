#!/usr/bin/env bash
# Checks everything in deploy/, offline but for installing its pinned Python
# tools (deploy/requirements.txt) into deploy/.venv on first use:
#   image      deploy/Dockerfile linted (hadolint); the binary links only what
#              the runtime base has; its build context holds what the build
#              reads and the lock file resolves in it
#   k8s        deploy/k8s/ against the Kubernetes schemas (kubernetes-validate,
#              strict, oldest and newest supported versions), then the rules of
#              check/k8s_rules.py
#   compose    deploy/compose.yaml against the Compose Specification schema
#              (check-jsonschema), then the rules of check/compose_rules.py
#   systemd    deploy/onshi-gateway.service: systemd-analyze verify, its
#              sandbox's exposure at most 2.0 (systemd-analyze security), and its
#              ExecStartPre (config check) passing with its environment
#   replicas   the shipped configuration run: two replicas on PostgreSQL
#              (check/replicas.py)
#   load-test  deploy/load-test.md's recipe against a served gateway
#              (deploy/load-test-local.sh)
#
# Usage: deploy/check.sh [GATEWAY_BINARY]
# Without GATEWAY_BINARY, builds it with cargo. ONSHI_DEPLOY_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/test): a PostgreSQL where schemas may be
# created; the checks work in one of their own and drop it.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
cargo="${CARGO:-cargo}"
database_url="${ONSHI_DEPLOY_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
gateway="${1:-}"
# Kubernetes versions checked: the oldest with every field the manifests use
# (native preStop sleep) and the newest the schemas know.
k8s_versions="1.30.0 1.37.0"

fail() { echo "deploy check: $*" >&2; exit 1; }

# Tools: a venv reinstalled whenever requirements.txt changes.
venv="$here/.venv"
if ! cmp -s "$here/requirements.txt" "$venv/requirements.installed" 2>/dev/null; then
  echo "== installing the pinned tools into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || fail "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-virtualenv \
    -r "$here/requirements.txt" || fail "installing deploy/requirements.txt failed"
  cp "$here/requirements.txt" "$venv/requirements.installed"
fi
py="$venv/bin/python"

if [ -z "$gateway" ]; then
  "$cargo" build --locked --bin onshi-gateway || fail "building onshi-gateway failed"
  gateway="$("$cargo" metadata --format-version 1 --no-deps | "$py" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/onshi-gateway"
fi
[ -x "$gateway" ] || fail "no gateway binary at $gateway"
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (Debian: apt-get install systemd)"
command -v psql >/dev/null || fail "psql is missing (Debian: apt-get install postgresql-client)"
psql "$database_url" -qAtc 'SELECT 1' >/dev/null 2>&1 \
  || fail "PostgreSQL is unreachable at $database_url (set ONSHI_DEPLOY_DATABASE_URL)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=()
failed=()
step() {
  local name="$1"; shift
  echo "== $name"
  if "$@"; then passed+=("$name"); else failed+=("$name"); echo "== $name: FAILED"; fi
}

image() {
  "$venv/bin/hadolint" --failure-threshold warning deploy/Dockerfile || return 1
  # The runtime base adds no library: the binary may link only what every Debian
  # (slim or distroless cc) has.
  local extra
  extra="$(ldd "$gateway" | awk '{print $1}' | grep -vE '^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|ld-linux[^ ]*|libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1)$' || true)"
  [ -z "$extra" ] || { echo "the binary needs libraries the runtime base lacks: $extra"; return 1; }
  mkdir -p "$work/context"
  "$py" "$here/check/docker_context.py" "$root" "$work/context" || return 1
  # The manifest's targets and the lock file, as the build stage sees them. Only
  # the image's platform is resolved: a build fetches that platform's crates
  # alone, so resolving every platform offline would depend on what else filled
  # the cargo cache.
  local platform
  platform="$(rustc -vV | sed -n 's/^host: //p')"
  (cd "$work/context" && "$cargo" metadata --locked --offline --filter-platform "$platform" \
      --format-version 1 >/dev/null) || {
    echo "cargo cannot resolve the image's build context for $platform with --locked"; return 1; }
  echo "deploy/Dockerfile: lint clean, build context complete"
}

k8s() {
  local v
  for v in $k8s_versions; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" deploy/k8s/*.yaml deploy/k8s/examples/*.yaml || return 1
    echo "deploy/k8s: valid against Kubernetes $v (strict)"
  done
  (cd "$here/check" && "$py" k8s_rules.py "$here/k8s" "$root/onshi-gateway.toml")
}

compose() {
  "$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml || return 1
  (cd "$here/check" && "$py" compose_rules.py "$here" "$root/onshi-gateway.toml")
}

systemd() {
  # verify resolves ExecStart: point it at the binary under test.
  mkdir -p "$work/systemd"
  sed "s#/usr/local/bin/onshi-gateway#$gateway#g" deploy/onshi-gateway.service >"$work/systemd/onshi-gateway.service"
  systemd-analyze verify "$work/systemd/onshi-gateway.service" || return 1
  local exposure
  exposure="$(systemd-analyze security --offline=yes "$work/systemd/onshi-gateway.service" | tail -n 1)"
  echo "deploy/onshi-gateway.service: verified; $exposure"
  systemd-analyze security --offline=yes --threshold=20 "$work/systemd/onshi-gateway.service" >/dev/null || {
    echo "the unit's sandbox is weaker than exposure 2.0"; return 1; }
  # Its ExecStartPre with its Environment=, on the repository's onshi-gateway.toml
  # (the file an installation starts from) and a scratch state directory.
  local pre
  pre="$(sed -n 's/^ExecStartPre=//p' "$work/systemd/onshi-gateway.service")"
  mapfile -t unit_env < <(sed -n 's/^Environment=//p' deploy/onshi-gateway.service)
  env -i PATH="$PATH" "${unit_env[@]}" ONSHI_CONFIG="$root/onshi-gateway.toml" ONSHI_DATA_DIR="$work/systemd/state" \
    $pre || { echo "the unit's ExecStartPre ($pre) refuses the repository's onshi-gateway.toml"; return 1; }
}

replicas() {
  (cd "$here/check" && "$py" replicas.py "$gateway" "$database_url")
}

load_test() {
  CARGO="$cargo" "$here/load-test-local.sh" "$gateway"
}

step image image
step k8s k8s
step compose compose
step systemd systemd
step replicas replicas
step load-test load_test

echo "deploy checks: ${#passed[@]} of $(( ${#passed[@]} + ${#failed[@]} )) passed${failed:+; failed: ${failed[*]}}"
[ "${#failed[@]}" -eq 0 ]
