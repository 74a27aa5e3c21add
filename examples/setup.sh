#!/usr/bin/env bash
# Installs what the example clients need, from PyPI and npm at their pinned versions:
# a virtualenv at examples/python/.venv with requirements.txt, and
# examples/node/node_modules from package-lock.json (npm ci). Does nothing for a part
# whose pins have not changed since it was last installed, so it is cheap to re-run.
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"

missing=()
for tool in python3 node npm; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "examples/setup.sh: missing ${missing[*]}: the example clients need Python 3.9+ (with venv) and Node.js 18.3+ with npm" >&2
  exit 1
fi

# One setup at a time (a test run and a shell may start it together).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.setup.lock"
  flock 9
fi

digest() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

# Python: a venv with the pinned packages; the stamp records which pins it holds.
py_stamp="$here/python/.venv/.requirements.sha256"
py_want="$(digest "$here/python/requirements.txt")"
if [[ ! -x "$here/python/.venv/bin/python" || "$(cat "$py_stamp" 2>/dev/null)" != "$py_want" ]]; then
  echo "examples/setup.sh: creating examples/python/.venv and installing requirements.txt" >&2
  rm -rf "$here/python/.venv"
  python3 -m venv "$here/python/.venv"
  "$here/python/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"
  echo "$py_want" >"$py_stamp"
fi
# The stubs are generated from proto/ (and again by the client whenever proto/ changes).
(cd "$here/python" && .venv/bin/python -c 'import stubs; stubs.ensure()')

# Node: exactly the locked tree.
node_stamp="$here/node/node_modules/.package-lock.sha256"
node_want="$(digest "$here/node/package-lock.json" "$here/node/package.json")"
if [[ ! -d "$here/node/node_modules" || "$(cat "$node_stamp" 2>/dev/null)" != "$node_want" ]]; then
  echo "examples/setup.sh: installing examples/node/node_modules (npm ci)" >&2
  (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$node_want" >"$node_stamp"
fi
echo "examples/setup.sh: the Python and Node clients are ready" >&2
