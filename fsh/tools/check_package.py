#!/usr/bin/env python3
"""Consistency checks of the generated package in profiles/ (stdlib only; run by build.sh).

What it checks, beyond what SUSHI does:

* every resource of ours has ``url`` = ``<canonical>/<ResourceType>/<id>`` and a version;
* every canonical of ours that a resource points at (bindings, answerValueSets, type and
  target profiles, extension URLs, ConceptMap source/target) resolves to a file of the package;
* every StructureDefinition has a differential and a snapshot;
* every ValueSet the Questionnaire uses expands without a terminology server (enumerated
  concepts, or whole project CodeSystems; no filters), and its concepts exist in our CodeSystems;
* Questionnaire linkIds are unique (R4 que-2), enableWhen points at an earlier question and its
  answerCoding is in that question's ValueSet;
* every Coding of one of our CodeSystems (in ValueSets, ConceptMaps, profiles, examples) names
  an existing code, and every example Coding bound (required) to one of our ValueSets is in it.

Usage: ``check_package.py PACKAGE_DIR``. Exit status 1 and one line per problem on failure.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CANONICAL = "https://fhirnet.dev/fhir"


class Package:
    """The resources of one package folder (top level and ``example/``), indexed by canonical."""

    def __init__(self, root: Path) -> None:
        self.root = root
        loaded = {p: json.loads(p.read_text(encoding="utf-8")) for p in _files(root)}
        self.resources = {p: r for p, r in loaded.items() if "resourceType" in r}
        self.by_url = {r["url"]: r for r in self.resources.values() if "url" in r}
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def resolve(self, canonical: str) -> dict[str, Any] | None:
        return self.by_url.get(canonical.split("|", 1)[0])

    def code_system(self, system: str) -> dict[str, Any] | None:
        resource = self.by_url.get(system)
        return resource if resource and resource["resourceType"] == "CodeSystem" else None

    def expand(self, url: str, where: str) -> set[tuple[str, str]] | None:
        """(system, code) pairs of one of our ValueSets, or None when it needs a server."""
        value_set = self.resolve(url)
        if value_set is None or value_set["resourceType"] != "ValueSet":
            self.problem(where, f"ValueSet {url} is not in the package")
            return None
        concepts: set[tuple[str, str]] = set()
        for include in value_set.get("compose", {}).get("include", []):
            system = include.get("system")
            if include.get("filter") or include.get("valueSet") or not system:
                self.problem(where, f"{url} has an include a renderer cannot expand offline")
                return None
            if "concept" in include:
                concepts |= {(system, c["code"]) for c in include["concept"]}
                continue
            code_system = self.code_system(system)
            if code_system is None or code_system.get("content") != "complete":
                self.problem(where, f"{url} includes all of {system}, which is not ours/complete")
                return None
            concepts |= {(system, code) for code in _codes(code_system["concept"])}
        if value_set.get("compose", {}).get("exclude"):
            self.problem(where, f"{url} has excludes")
        return concepts


def _files(root: Path) -> Iterator[Path]:
    """Resource files: ``*.json`` here and in ``example/``, not package.json or .index.json."""
    for folder in (root, root / "example"):
        yield from (
            p for p in sorted(folder.glob("*.json")) if not p.name.startswith((".", "package"))
        )


def _codes(concepts: list[dict[str, Any]]) -> Iterator[str]:
    for concept in concepts:
        yield concept["code"]
        yield from _codes(concept.get("concept", []))


def _walk(node: object, path: str = "") -> Iterator[tuple[str, object]]:
    """Every (json path, value) pair of a JSON tree."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _items(item.get("item", []))


def check_identity(pkg: Package) -> None:
    manifest = json.loads((pkg.root / "package.json").read_text(encoding="utf-8"))
    if manifest.get("canonical") != CANONICAL:
        pkg.problem("package.json", f"canonical is {manifest.get('canonical')!r}")
    for path, resource in pkg.resources.items():
        if path.parent != pkg.root:
            continue  # examples have no canonical URL
        expected = f"{CANONICAL}/{resource['resourceType']}/{resource['id']}"
        if resource.get("url") != expected:
            pkg.problem(path.name, f"url {resource.get('url')!r}, expected {expected!r}")
        if resource.get("version") != manifest["version"]:
            pkg.problem(path.name, f"version {resource.get('version')!r}")
        if path.name != f"{resource['resourceType']}-{resource['id']}.json":
            pkg.problem(path.name, "file name is not <ResourceType>-<id>.json")


def check_references(pkg: Package) -> None:
    keys = {
        "valueSet",
        "answerValueSet",
        "profile",
        "targetProfile",
        "baseDefinition",
        "sourceCanonical",
        "targetCanonical",
        "url",
        "valueCanonical",
    }
    for path, resource in pkg.resources.items():
        for json_path, value in _walk(resource):
            key = json_path.rsplit(".", 1)[-1].split("[", 1)[0]
            if json_path == "url" or key not in keys:
                continue
            for canonical in value if isinstance(value, list) else [value]:
                if isinstance(canonical, str) and canonical.startswith(CANONICAL + "/"):
                    if canonical.startswith(CANONICAL + "/sid/"):
                        continue  # identifier system, not a resource
                    if pkg.resolve(canonical) is None:
                        pkg.problem(path.name, f"{json_path} -> {canonical} does not resolve")
        if resource["resourceType"] == "StructureDefinition":
            for part in ("differential", "snapshot"):
                if not resource.get(part, {}).get("element"):
                    pkg.problem(path.name, f"no {part}")


def check_codings(pkg: Package) -> None:
    """Codings (and ValueSet/ConceptMap codes) of our CodeSystems name existing codes."""
    known = {
        r["url"]: set(_codes(r.get("concept", [])))
        for r in pkg.resources.values()
        if r["resourceType"] == "CodeSystem"
    }

    def verify(where: str, system: str | None, code: str | None) -> None:
        if system in known and code not in known[system]:
            pkg.problem(where, f"{system}#{code} is not in the CodeSystem")

    for path, resource in pkg.resources.items():
        for json_path, value in _walk(resource):
            if isinstance(value, dict) and "system" in value and "code" in value:
                verify(f"{path.name} {json_path}", value["system"], value["code"])
        if resource["resourceType"] == "ValueSet":
            for include in resource.get("compose", {}).get("include", []):
                for concept in include.get("concept", []):
                    verify(path.name, include.get("system"), concept["code"])
        if resource["resourceType"] == "ConceptMap":
            for group in resource.get("group", []):
                for element in group.get("element", []):
                    verify(path.name, group.get("source"), element.get("code"))
                    for target in element.get("target", []):
                        if "code" in target:
                            verify(path.name, group.get("target"), target["code"])


def check_questionnaire(pkg: Package) -> None:
    for path, resource in pkg.resources.items():
        if resource["resourceType"] != "Questionnaire":
            continue
        items = list(_items(resource.get("item", [])))
        seen: dict[str, dict[str, Any]] = {}
        for item in items:
            link_id = item["linkId"]
            if link_id in seen:
                pkg.problem(path.name, f"linkId {link_id!r} is not unique (que-2)")
            where = f"{path.name} item {link_id}"
            answers = None
            if "answerValueSet" in item:
                answers = pkg.expand(item["answerValueSet"], where)
                item["_answers"] = answers
            for condition in item.get("enableWhen", []):
                question = seen.get(condition["question"])
                if question is None:
                    pkg.problem(
                        where, f"enableWhen names {condition['question']!r}, no earlier item"
                    )
                    continue
                coding = condition.get("answerCoding")
                allowed = question.get("_answers")
                if (
                    coding
                    and allowed is not None
                    and (coding["system"], coding["code"]) not in allowed
                ):
                    pkg.problem(
                        where, f"enableWhen answer {coding['code']} not in the question's ValueSet"
                    )
            seen[link_id] = item
        for item in items:
            item.pop("_answers", None)


def check_example_bindings(pkg: Package) -> None:
    """Required bindings of the profiles to our ValueSets hold in the examples (unsliced paths)."""
    for path, resource in pkg.resources.items():
        if path.parent == pkg.root:
            continue
        for profile_url in resource.get("meta", {}).get("profile", []):
            profile = pkg.resolve(profile_url)
            if profile is None:
                continue
            for element in profile.get("snapshot", {}).get("element", []):
                binding = element.get("binding", {})
                if binding.get("strength") != "required" or ":" in element["id"]:
                    continue
                url = binding.get("valueSet", "")
                if not url.startswith(CANONICAL + "/"):
                    continue
                allowed = pkg.expand(url, f"{profile['id']} {element['id']}")
                for concept in _values(resource, element["path"].split(".")[1:]):
                    codings = concept.get("coding", []) if "coding" in concept else [concept]
                    if allowed is not None and not any(
                        (c.get("system"), c.get("code")) in allowed for c in codings
                    ):
                        pkg.problem(path.name, f"{element['id']} has no code from {url}")


def _values(node: object, steps: list[str]) -> Iterator[dict[str, Any]]:
    if not steps:
        if isinstance(node, dict):
            yield node
        return
    head, rest = steps[0], steps[1:]
    children = []
    if isinstance(node, dict):
        if head.endswith("[x]"):
            stem = head[:-3]
            children = [v for k, v in node.items() if k.startswith(stem) and k != stem]
        elif head in node:
            children = [node[head]]
    for child in children:
        for value in child if isinstance(child, list) else [child]:
            yield from _values(value, rest)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    pkg = Package(Path(argv[1]))
    for check in (
        check_identity,
        check_references,
        check_codings,
        check_questionnaire,
        check_example_bindings,
    ):
        check(pkg)
    for problem in pkg.problems:
        print(f"   {problem}")
    count = len(pkg.resources)
    if pkg.problems:
        print(f"{len(pkg.problems)} problem(s) in {count} resources", file=sys.stderr)
        return 1
    print(f"package checks passed: {count} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
