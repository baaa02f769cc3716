#!/usr/bin/env bash
# Installs the FHIR R4 server the integration tests run against (sekmet-fhir, pinned) into its own
# virtual environment, so that its dependencies (FastAPI, uvicorn, lxml, faker, ...) never mix with
# fhirnet's. Idempotent: does nothing when the venv already holds the pinned version, which makes it
# cheap for the test fixture to call on every session.
#
# Usage: tools/fhir-test-server/install.sh [VENV_DIR]    (default: .fhir-server-venv at the repo root)
# Env:   PYTHON (default python3) builds the venv.
set -euo pipefail

PACKAGE=sekmet-fhir
VERSION=0.1.1
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${1:-$ROOT/.fhir-server-venv}"
PYTHON="${PYTHON:-python3}"

installed_version() {
    "$VENV/bin/python" -m pip show --disable-pip-version-check "$PACKAGE" 2>/dev/null \
        | sed -n 's/^Version: //p'
}

if [[ -x "$VENV/bin/sekmet" && "$(installed_version)" == "$VERSION" ]]; then
    echo "$PACKAGE==$VERSION already installed in $VENV"
    exit 0
fi

if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]]; then
    echo "$VENV exists and is not a virtual environment; not touching it" >&2
    exit 1
fi
echo "installing $PACKAGE==$VERSION into $VENV"
# A venv with a wrong version or a half-finished install is rebuilt from scratch rather than
# patched, so that what runs is always exactly what the pin says.
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE==$VERSION"
test "$(installed_version)" == "$VERSION"
echo "installed $PACKAGE==$VERSION into $VENV"
