#!/usr/bin/env bash
# Browser-test tooling for the /crf page, idempotent (shared/reference/tooling.md §4):
#   1. Debian's chromium at /usr/bin/chromium (apt-get update once, then install; needs root);
#   2. LHC-Forms prebuilt bundles from `npm pack lforms@<version>` into fhirnet/web/static/lforms/.
# Never `npm install lforms` (its peer-dependency resolution does not finish) and never
# `playwright install` (it downloads a browser build; we use Debian's).
# The vendored files are not committed (.gitignore: /fhirnet/web/static/lforms/).
# Usage: bash tools/browser/install.sh [--no-chromium]
# `make run` calls it with --no-chromium before serving: when LHC-Forms is there in the pinned
# version it only checks the files (a few milliseconds, no network).
set -euo pipefail

LFORMS_VERSION="40.1.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/fhirnet/web/static/lforms"
MARKER="$DEST/VERSION"
# What the page loads, relative to the package's dist/lforms/ (no *.map files).
FILES=(
  webcomponent/styles.css
  webcomponent/assets/lib/zone.min.js
  webcomponent/runtime.js
  webcomponent/polyfills.js
  webcomponent/main.js
  webcomponent/down_arrow_gray_10_10.png
  webcomponent/magnifying_glass.png
  fhir/R4/lformsFHIR.min.js
)

WORK=""
log() { printf 'install.sh: %s\n' "$*" >&2; }
cleanup() { if [[ -n "$WORK" ]]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

install_chromium() {
  if [[ -x /usr/bin/chromium ]]; then
    log "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
    return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "chromium is missing and this is not root: run 'apt-get install -y chromium' as root"
    exit 1
  fi
  log "installing Debian chromium (20 s to 1.5 min, ~350 MB)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Without Recommends (upower, notification-daemon, system-config-printer, ... a headless
  # browser needs none of them); fonts-liberation so that screenshots have Arial's metrics.
  apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
  log "installed: $(/usr/bin/chromium --version)"
}

install_lforms() {
  if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$LFORMS_VERSION" ]]; then
    local missing=0
    for file in "${FILES[@]}"; do [[ -f "$DEST/$file" ]] || missing=1; done
    if [[ $missing -eq 0 ]]; then
      log "lforms $LFORMS_VERSION present in ${DEST#"$ROOT"/}"
      return
    fi
  fi
  if ! command -v npm >/dev/null; then
    log "npm was not found: it is needed once, to fetch the form renderer lforms@$LFORMS_VERSION"
    log "  Debian/Ubuntu: sudo apt-get install -y nodejs npm   (elsewhere: https://nodejs.org)"
    log "  then run the same command again (only the /crf pages need it; fhirnet demo serves the rest)"
    exit 1
  fi
  WORK="$(mktemp -d)"
  log "fetching lforms@$LFORMS_VERSION with npm pack"
  (cd "$WORK" && npm pack --loglevel=error "lforms@$LFORMS_VERSION" >/dev/null)
  tar -xzf "$WORK/lforms-$LFORMS_VERSION.tgz" -C "$WORK"
  local staging="$DEST.partial"
  rm -rf "$staging"
  for file in "${FILES[@]}"; do
    install -D -m 0644 "$WORK/package/dist/lforms/$file" "$staging/$file"
  done
  install -m 0644 "$WORK/package/LICENSE.md" "$staging/LICENSE.md" 2>/dev/null || true
  printf '%s\n' "$LFORMS_VERSION" >"$staging/VERSION"
  # Swap in whole, so a failed run never leaves a half-populated directory behind.
  rm -rf "$DEST"
  mv "$staging" "$DEST"
  log "lforms $LFORMS_VERSION installed in ${DEST#"$ROOT"/} ($(du -sh "$DEST" | cut -f1))"
}

if [[ "${1:-}" != "--no-chromium" ]]; then
  install_chromium
fi
install_lforms
