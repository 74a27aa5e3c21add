#!/usr/bin/env bash
# Installs the browser driver (Playwright for Python; the browser itself is Debian's chromium), at its pinned
# versions, into tests/console/.venv. Does nothing when the pins have not changed since
# the last install, so it is cheap to re-run.
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
command -v python3 >/dev/null 2>&1 || { echo "tests/console/setup.sh: python3 (3.9+, with venv) is needed" >&2; exit 1; }
if command -v flock >/dev/null 2>&1; then
  exec 9>"$here/.setup.lock"
  flock 9
fi
stamp="$here/.venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$here/.venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "tests/console/setup.sh: creating tests/console/.venv and installing requirements.txt" >&2
  rm -rf "$here/.venv"
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" >"$stamp"
fi
