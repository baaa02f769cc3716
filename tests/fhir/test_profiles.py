"""``profiles/``, the committed FHIR package: every file parses as the R4 resource it says it is,
every conformance resource sits at its canonical URL, and every ValueSet it binds (and every other
canonical of ours it names) resolves inside the package."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhirnet.config import DEFAULT_PROFILES_DIR
from fhirnet.fhir.profiles import CANONICAL_BASE, Catalog, load_catalog
from fhirnet.fhir.resources import FHIR_VERSION, model_class, parse

PROFILES = DEFAULT_PROFILES_DIR
INDEXES = (PROFILES / ".index.json", PROFILES / "example" / ".index.json")
RESOURCE_FILES = sorted(
    p for p in PROFILES.glob("*.json") if p.name != "package.json" and not p.name.startswith(".")
)
EXAMPLE_FILES = sorted(
    p for p in (PROFILES / "example").glob("*.json") if not p.name.startswith(".")
)
CONFORMANCE_TYPES = {"Questionnaire", "StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap"}
#: A canonical URL of ours naming a conformance resource, optionally ``|version`` or ``#fragment``.
OUR_CANONICAL = re.compile(
    rf"^{re.escape(CANONICAL_BASE)}/(?:{'|'.join(sorted(CONFORMANCE_TYPES))})/[^|#]+"
)


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def name(path: Path) -> str:
    return str(path.relative_to(PROFILES))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(PROFILES)


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from strings(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from strings(child, f"{path}[{index}]")


def bound_value_sets(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, canonical)`` of every ValueSet a resource binds or maps from/to."""
    kind = resource["resourceType"]
    if kind == "StructureDefinition":
        for part in ("snapshot", "differential"):
            for element in resource.get(part, {}).get("element", []):
                if "valueSet" in element.get("binding", {}):
                    yield f"{part} {element['id']}", element["binding"]["valueSet"]
    elif kind == "Questionnaire":
        stack = list(resource.get("item", []))
        while stack:
            item = stack.pop()
            stack += item.get("item", [])
            if "answerValueSet" in item:
                yield f"item {item['linkId']}", item["answerValueSet"]
    elif kind == "ConceptMap":
        for key in ("sourceCanonical", "sourceUri", "targetCanonical", "targetUri"):
            if key in resource:
                yield key, resource[key]
    elif kind == "ValueSet":
        for part in ("include", "exclude"):
            for rule in resource.get("compose", {}).get(part, []):
                for canonical in rule.get("valueSet", []):
                    yield f"compose.{part}", canonical
    elif kind == "CodeSystem" and "valueSet" in resource:
        yield "valueSet", resource["valueSet"]


def test_the_package_is_there() -> None:
    # Guards the parametrized tests: an empty glob would make them vacuous.
    assert len(RESOURCE_FILES) > 50
    assert EXAMPLE_FILES
    assert {read(path)["resourceType"] for path in RESOURCE_FILES} == CONFORMANCE_TYPES


def test_the_package_manifest_names_the_package_and_its_fhir_version() -> None:
    manifest = read(PROFILES / "package.json")

    assert manifest["name"] == "fhirnet.crf"
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert manifest["fhirVersions"] == [FHIR_VERSION]
    assert manifest["canonical"] == CANONICAL_BASE
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": FHIR_VERSION}


@pytest.mark.parametrize(
    ("index", "files"),
    [(INDEXES[0], RESOURCE_FILES), (INDEXES[1], EXAMPLE_FILES)],
    ids=["package", "examples"],
)
def test_each_index_lists_every_resource_file_as_it_is(index: Path, files: list[Path]) -> None:
    listed = {entry["filename"]: entry for entry in read(index)["files"]}

    assert set(listed) == {path.name for path in files}
    for path in files:
        resource, entry = read(path), listed[path.name]
        for key in ("resourceType", "id", "url", "version"):
            assert entry.get(key) == resource.get(key), (path.name, key)


@pytest.mark.parametrize("path", RESOURCE_FILES + EXAMPLE_FILES, ids=name)
def test_every_file_parses_as_the_r4_resource_it_declares(path: Path) -> None:
    resource = read(path)

    parsed = parse(resource, model_class(resource["resourceType"]))

    assert parsed.issues == ()
    assert parsed.resource is not None
    assert path.name == f"{resource['resourceType']}-{resource['id']}.json"


@pytest.mark.parametrize("path", RESOURCE_FILES, ids=name)
def test_every_conformance_resource_sits_at_its_canonical_url(path: Path, catalog: Catalog) -> None:
    resource = read(path)

    assert resource["url"] == f"{CANONICAL_BASE}/{resource['resourceType']}/{resource['id']}"
    assert resource["version"] == catalog.version
    assert catalog.by_url(resource["url"]) == resource
    assert catalog.by_url(f"{resource['url']}|{resource['version']}") == resource


@pytest.mark.parametrize("path", RESOURCE_FILES, ids=name)
def test_every_value_set_a_resource_binds_resolves(path: Path, catalog: Catalog) -> None:
    resource = read(path)

    for where, canonical in bound_value_sets(resource):
        if not canonical.startswith(CANONICAL_BASE + "/"):
            continue  # core R4 ValueSets (hl7.org) are outside the package
        found = catalog.by_url(canonical)
        assert found is not None, f"{where}: {canonical} is not in the package"
        assert found["resourceType"] == "ValueSet", f"{where}: {canonical} is no ValueSet"


def test_the_binding_scan_finds_bindings_of_ours(catalog: Catalog) -> None:
    # Guards the test above against a scan that sees nothing.
    ours = [
        canonical
        for path in RESOURCE_FILES
        for _, canonical in bound_value_sets(read(path))
        if canonical.startswith(CANONICAL_BASE)
    ]
    assert len(ours) > 50
    assert {catalog.by_url(c)["resourceType"] for c in ours} == {"ValueSet"}  # type: ignore[index]


def test_the_canonical_scan_sees_the_profiles_the_examples_claim() -> None:
    claimed = [
        value
        for path in EXAMPLE_FILES
        for where, value in strings(read(path))
        if where.startswith("meta.profile") and OUR_CANONICAL.match(value)
    ]
    assert len(claimed) == len(EXAMPLE_FILES)


@pytest.mark.parametrize("path", RESOURCE_FILES + EXAMPLE_FILES, ids=name)
def test_every_canonical_of_ours_anywhere_in_a_file_resolves(path: Path, catalog: Catalog) -> None:
    # Profiles, extension URLs, coding systems, ConceptMap groups, meta.profile of examples...
    for where, value in strings(read(path)):
        if OUR_CANONICAL.match(value):
            assert catalog.by_url(value.split("#", 1)[0]) is not None, f"{where}: {value}"
