"""Self-conformance: the profile validator of ``tests/conformance/`` (a test oracle).

Every example of the package conforms to the profiles it claims; one broken thing at a time is
found, with the right issue code and FHIRPath; arbitrary damage never crashes the validator.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhirnet.errors import ProfileNotFoundError
from fhirnet.fhir.outcome import Issue, IssueType, Severity, has_errors
from fhirnet.fhir.profiles import CANONICAL_BASE, Catalog, load_catalog
from tests.conformance import (
    ProfileValidator,
    validate_against_profile,
    validate_resource,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "profiles"
EXAMPLE_FILES = sorted((PACKAGE / "example").glob("[!.]*.json"))  # not .index.json
SD = f"{CANONICAL_BASE}/StructureDefinition"
NODAL = f"{SD}/lesion-nodal"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
SCT = "http://snomed.info/sct"

Resource = dict[str, Any]
Mutation = Callable[[Resource], None]
JsonPath = tuple[str | int, ...]


#: Loaded once: hypothesis tests cannot take function-scoped fixtures.
CATALOG = load_catalog(PACKAGE)


@pytest.fixture
def catalog() -> Catalog:
    return CATALOG


def example(name: str) -> Resource:
    """A fresh copy of ``profiles/example/<Type>-example-<name>.json``."""
    (path,) = (PACKAGE / "example").glob(f"*-example-{name}.json")
    loaded: Resource = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def fhir_instances_in_examples() -> Iterator[tuple[str, Resource]]:
    """Every FHIR resource among the JSON files of ``examples/`` (others are API requests)."""
    for path in sorted((ROOT / "examples").rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "resourceType" in data:
            yield str(path.relative_to(ROOT)), data


def describe(issues: list[Issue]) -> list[str]:
    return [f"{i.severity} {i.code} {i.expression}: {i.message}" for i in issues]


# ---------------------------------------------------------------------------------------------
# The examples conform


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_example_conforms_to_the_profiles_it_claims(path: Path, catalog: Catalog) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    ours = [p for p in resource.get("meta", {}).get("profile", []) if p.startswith(SD)]

    assert ours, "every example claims one of fhirnet's profiles"
    assert describe(validate_resource(resource, catalog)) == []
    for profile in ours:
        assert describe(validate_against_profile(resource, profile, catalog)) == []


def test_every_profile_of_the_package_has_an_example() -> None:
    claimed = {
        profile
        for path in EXAMPLE_FILES
        for profile in json.loads(path.read_text(encoding="utf-8"))["meta"]["profile"]
    }
    profiles = {
        json.loads(path.read_text(encoding="utf-8"))["url"]
        for path in PACKAGE.glob("StructureDefinition-*.json")
    }
    # An extension is exemplified by the examples that carry it, where it is validated: lesion-
    # nodal on the lesions, the study extensions on the study and its subjects.
    extensions = {
        json.loads(path.read_text(encoding="utf-8"))["url"]
        for path in PACKAGE.glob("StructureDefinition-*.json")
        if json.loads(path.read_text(encoding="utf-8"))["type"] == "Extension"
    }
    carried = {
        url for path in EXAMPLE_FILES for url in _extension_urls(json.loads(path.read_text()))
    }
    assert NODAL in carried
    assert profiles - claimed - extensions == set()
    assert extensions - carried == set()


def _extension_urls(value: object) -> set[str]:
    """The url of every extension anywhere in ``value``."""
    if isinstance(value, list):
        return {url for item in value for url in _extension_urls(item)}
    if not isinstance(value, dict):
        return set()
    found = {e["url"] for e in value.get("extension", []) if isinstance(e, dict) and "url" in e}
    return found | {url for child in value.values() for url in _extension_urls(child)}


def test_fhir_instances_in_examples_conform(catalog: Catalog) -> None:
    failures = {
        name: describe(issues)
        for name, resource in fhir_instances_in_examples()
        if has_errors(issues := validate_resource(resource, catalog))
    }
    assert failures == {}


def test_every_profile_loads_and_its_invariants_evaluate_on_an_empty_resource(
    catalog: Catalog,
) -> None:
    validator = ProfileValidator(catalog)
    for sd in catalog.of_type("StructureDefinition"):
        # An empty resource breaks each profile's rules, but no invariant may fail to evaluate.
        issues = validator.validate_against({"resourceType": sd["type"]}, sd["url"])
        assert has_errors(issues), sd["id"]
        assert not [i for i in issues if i.code == IssueType.PROCESSING], sd["id"]


# ---------------------------------------------------------------------------------------------
# One broken thing at a time


def setting(path: JsonPath, value: Any) -> Mutation:
    def mutate(resource: Resource) -> None:
        parent: Any = resource
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = copy.deepcopy(value)

    return mutate


def deleting(path: JsonPath) -> Mutation:
    def mutate(resource: Resource) -> None:
        parent: Any = resource
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]

    return mutate


def appending(path: JsonPath, value: Any) -> Mutation:
    def mutate(resource: Resource) -> None:
        target: Any = resource
        for step in path:
            target = target.setdefault(step, []) if isinstance(step, str) else target[step]
        target.append(copy.deepcopy(value))

    return mutate


def copying(source: JsonPath, to: JsonPath) -> Mutation:
    """Append a copy of the item at ``source`` to the array at ``to``."""

    def mutate(resource: Resource) -> None:
        item: Any = resource
        for step in source:
            item = item[step]
        appending(to, item)(resource)

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(resource: Resource) -> None:
        for mutation in mutations:
            mutation(resource)

    return mutate


def component(system: str, code: str, **value: Any) -> dict[str, Any]:
    return {"code": {"coding": [{"system": system, "code": code}]}, **value}


def concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


LONGEST_DIAMETER = component(
    "http://loinc.org",
    "33728-7",
    valueQuantity={"value": 12, "unit": "mm", "system": "http://unitsofmeasure.org", "code": "mm"},
)
TOO_SMALL = component(f"{CANONICAL_BASE}/CodeSystem/observation-codes", "too-small-to-measure")
TOO_SMALL["valueBoolean"] = True
BROKEN_LESION = {
    **{k: v for k, v in example("lesion-t1").items() if k != "meta"},
    "id": "lesion",
    "meta": {"profile": [f"{SD}/lesion"]},
    "location": concept(SCT, "12345678"),
}

# (example, what is broken, issue code, FHIRPath of the issue)
BROKEN = [
    # -- cardinality
    pytest.param(
        "measurement-t1",
        deleting(("subject",)),
        IssueType.REQUIRED,
        "Observation.subject",
        id="missing-1..1-element",
    ),
    pytest.param(
        "measurement-t1",
        deleting(("focus", 0, "identifier", "value")),
        IssueType.REQUIRED,
        "Observation.focus[0].identifier.value",
        id="missing-1..1-nested-element",
    ),
    pytest.param(
        "imaging-recommendation",
        deleting(("component",)),
        IssueType.REQUIRED,
        "Observation.component",
        id="missing-1..*-array",
    ),
    pytest.param(
        "report",
        copying(("conclusionCode", 0), ("conclusionCode",)),
        IssueType.STRUCTURE,
        "DiagnosticReport.conclusionCode[1]",
        id="two-of-a-0..1-array",
    ),
    pytest.param(
        "measurement-t1",
        setting(("specimen",), {"reference": "Specimen/s1"}),
        IssueType.STRUCTURE,
        "Observation.specimen",
        id="0..0-element-present",
    ),
    pytest.param(
        "measurement-t1",
        setting(("valueQuantity",), {"value": 3}),
        IssueType.STRUCTURE,
        "Observation.valueQuantity",
        id="0..0-value[x]-present",
    ),
    # -- fixed and pattern values
    pytest.param(
        "measurement-t1",
        setting(("code", "coding", 0, "code"), "12345-6"),
        IssueType.VALUE,
        "Observation.code",
        id="wrong-pattern-code",
    ),
    pytest.param(
        "who-grade",
        setting(("method",), concept(NCIT, "C0000")),
        IssueType.VALUE,
        "Observation.method",
        id="wrong-pattern-method",
    ),
    pytest.param(
        "measurement-t1",
        setting(("focus", 0, "identifier", "system"), "urn:example:lesions"),
        IssueType.VALUE,
        "Observation.focus[0].identifier.system",
        id="wrong-fixed-uri",
    ),
    pytest.param(
        "lesion-t1",
        setting(("identifier", 0, "use"), "official"),
        IssueType.VALUE,
        "BodyStructure.identifier[0].use",
        id="wrong-pattern-code-in-a-slice",
    ),
    pytest.param(
        "measurement-t1",
        setting(("component", 0, "valueQuantity", "code"), "cm"),
        IssueType.VALUE,
        "Observation.component[0].valueQuantity",
        id="wrong-unit-in-a-component-slice",
    ),
    pytest.param(
        "measurement-t1",
        setting(("component", 0, "valueQuantity", "value"), -1),
        IssueType.VALUE,
        "Observation.component[0].valueQuantity",
        id="diameter-below-minValue",
    ),
    pytest.param(
        "measurement-t1",
        setting(("component", 0, "valueQuantity", "value"), 1000.5),
        IssueType.VALUE,
        "Observation.component[0].valueQuantity",
        id="diameter-above-maxValue",
    ),
    # -- choice types
    pytest.param(
        "response-assessment",
        both(deleting(("valueCodeableConcept",)), setting(("valueString",), "SD")),
        IssueType.STRUCTURE,
        "Observation.valueString",
        id="valueString-where-CodeableConcept-required",
    ),
    pytest.param(
        "measurement-t1",
        both(deleting(("effectiveDateTime",)), setting(("effectivePeriod",), {"start": "2025"})),
        IssueType.STRUCTURE,
        "Observation.effectivePeriod",
        id="effectivePeriod-where-dateTime-required",
    ),
    pytest.param(
        "response-assessment",
        both(
            deleting(("component", 0, "valueBoolean")),
            setting(("component", 0, "valueString"), "no"),
        ),
        IssueType.STRUCTURE,
        "Observation.component[0].valueString",
        id="wrong-value-type-in-a-component-slice",
    ),
    # -- reference targets
    pytest.param(
        "measurement-t1",
        setting(("focus", 0, "reference"), "Patient/example-patient"),
        IssueType.STRUCTURE,
        "Observation.focus[0].reference",
        id="focus-refers-to-a-Patient-not-a-lesion",
    ),
    pytest.param(
        "report",
        setting(("subject", "reference"), "https://example.org/fhir/Group/g1/_history/2"),
        IssueType.STRUCTURE,
        "DiagnosticReport.subject.reference",
        id="absolute-reference-to-a-wrong-type",
    ),
    pytest.param(
        "report",
        setting(("result", 0, "type"), "Patient"),
        IssueType.STRUCTURE,
        "DiagnosticReport.result[0].type",
        id="reference-type-element-names-a-wrong-type",
    ),
    pytest.param(
        "provenance",
        setting(("agent", 0, "who", "reference"), "#nobody"),
        IssueType.NOT_FOUND,
        "Provenance.agent[0].who.reference",
        id="contained-reference-to-nothing",
    ),
    pytest.param(
        "provenance",
        setting(("agent", 0, "who", "reference"), "Patient/example-patient"),
        IssueType.STRUCTURE,
        "Provenance.agent[0].who.reference",
        id="agent-slice-refers-to-a-Patient-not-a-Device",
    ),
    pytest.param(
        "sum-of-diameters",
        setting(("derivedFrom", 0, "reference"), "example-follow-up"),
        IssueType.STRUCTURE,
        "Observation.derivedFrom[0].reference",
        id="relative-reference-not-Type/id",
    ),
    # -- bindings to our ValueSets and codes of our CodeSystems
    pytest.param(
        "measurement-t1",
        setting(("bodySite",), concept(SCT, "12345678")),
        IssueType.CODE_INVALID,
        "Observation.bodySite",
        id="bodySite-outside-lesion-location",
    ),
    pytest.param(
        "response-assessment",
        setting(("valueCodeableConcept",), concept(SCT, "359746009")),
        IssueType.CODE_INVALID,
        "Observation.valueCodeableConcept",
        id="value-outside-response-category",
    ),
    pytest.param(
        "prrt-eligibility",
        setting(
            ("component", 1, "valueCodeableConcept"),
            concept(f"{CANONICAL_BASE}/CodeSystem/differentiation", "well-differentiated"),
        ),
        IssueType.CODE_INVALID,
        "Observation.component[1].valueCodeableConcept",
        id="component-slice-value-outside-its-binding",
    ),
    pytest.param(
        "embryologic-origin",
        setting(("valueCodeableConcept", "coding", 0, "code"), "tailgut"),
        IssueType.CODE_INVALID,
        "Observation.valueCodeableConcept.coding[0].code",
        id="code-unknown-to-our-CodeSystem",
    ),
    pytest.param(
        "measurement-t1",
        both(
            setting(("contained",), [BROKEN_LESION]),
            setting(("focus", 0, "reference"), "#lesion"),
        ),
        IssueType.CODE_INVALID,
        "Observation.contained[0].location",
        id="contained-resource-checked-against-its-own-profile",
    ),
    # -- slicing
    pytest.param(
        "measurement-t1",
        appending(("component",), LONGEST_DIAMETER),
        IssueType.STRUCTURE,
        "Observation.component[2]",
        id="slice-over-its-max",
    ),
    pytest.param(
        "response-assessment",
        deleting(("component", 0)),
        IssueType.REQUIRED,
        "Observation.component",
        id="required-component-slice-missing",
    ),
    pytest.param(
        "sum-of-diameters",
        setting(("category", 0, "coding", 0, "code"), "laboratory"),
        IssueType.REQUIRED,
        "Observation.category",
        id="required-category-slice-missing",
    ),
    pytest.param(
        "provenance",
        setting(("entity", 0, "role"), "derivation"),
        IssueType.REQUIRED,
        "Provenance.entity",
        id="required-entity-slice-missing",
    ),
    pytest.param(
        "lesion-t1",
        deleting(("extension",)),
        IssueType.REQUIRED,
        "BodyStructure.extension",
        id="required-extension-slice-missing",
    ),
    # -- invariants
    pytest.param(
        "measurement-t2",
        appending(("component",), LONGEST_DIAMETER),
        IssueType.INVARIANT,
        "Observation",
        id="fhirnet-one-size-both-diameters",
    ),
    pytest.param(
        "measurement-t1",
        appending(("component",), TOO_SMALL),
        IssueType.INVARIANT,
        "Observation",
        id="fhirnet-too-small-no-size",
    ),
    pytest.param(
        "response-assessment",
        setting(("valueCodeableConcept",), concept(NCIT, "C142357")),
        IssueType.INVARIANT,
        "Observation",
        id="fhirnet-recist-categories-iCR-under-RECIST",
    ),
    pytest.param(
        "sum-of-diameters",
        deleting(("valueQuantity",)),
        IssueType.INVARIANT,
        "Observation",
        id="fhirnet-value-or-absent",
    ),
    pytest.param(
        "sum-of-diameters",
        setting(
            ("dataAbsentReason",),
            concept("http://terminology.hl7.org/CodeSystem/data-absent-reason", "unknown"),
        ),
        IssueType.INVARIANT,
        "Observation",
        id="base-obs-6-value-and-dataAbsentReason",
    ),
    pytest.param(
        "provenance",
        setting(("agent", 0, "who", "reference"), "Device/fhirnet"),
        IssueType.INVARIANT,
        "Provenance.contained[0]",
        id="base-dom-3-contained-resource-unreferenced",
    ),
    # -- extensions
    pytest.param(
        "lesion-t1",
        setting(("extension", 0), {"url": NODAL, "valueString": "no"}),
        IssueType.STRUCTURE,
        "BodyStructure.extension[0].valueString",
        id="extension-value-of-a-wrong-type",
    ),
    pytest.param(
        "lesion-t1",
        appending(("extension",), {"url": f"{SD}/lesion-nodule", "valueBoolean": True}),
        IssueType.STRUCTURE,
        "BodyStructure.extension[1]",
        id="extension-of-ours-the-package-does-not-define",
    ),
    pytest.param(
        "measurement-t1",
        appending(("extension",), {"url": NODAL, "valueBoolean": True}),
        IssueType.STRUCTURE,
        "Observation.extension[0]",
        id="extension-outside-its-context",
    ),
    pytest.param(
        "lesion-t1",
        appending(("extension", 0, "extension"), {"url": "part", "valueString": "x"}),
        IssueType.INVARIANT,
        "BodyStructure.extension[0]",
        id="base-ext-1-value-and-nested-extensions",
    ),
    # -- base structure and profile claims
    pytest.param(
        "measurement-t1",
        setting(("bogus",), 1),
        IssueType.STRUCTURE,
        "Observation.bogus",
        id="unknown-element",
    ),
    pytest.param(
        "measurement-t1",
        setting(("meta", "profile"), [f"{SD}/lesion-measurements"]),
        IssueType.NOT_FOUND,
        "Observation.meta.profile",
        id="claims-a-profile-the-package-does-not-define",
    ),
    pytest.param(
        "lesion-t1",
        setting(("meta", "profile"), [NODAL]),
        IssueType.STRUCTURE,
        "BodyStructure.meta.profile",
        id="claims-an-extension-definition-as-its-profile",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "code", "expression"), BROKEN)
def test_one_broken_thing_is_found_with_its_code_and_expression(
    name: str, mutate: Mutation, code: IssueType, expression: str, catalog: Catalog
) -> None:
    resource = example(name)
    mutate(resource)

    issues = validate_resource(resource, catalog)

    found = [(i.severity, i.code, i.expression) for i in issues]
    assert (Severity.ERROR, code, expression) in found, describe(issues)


# ---------------------------------------------------------------------------------------------
# Rules our profiles do not use today, on modified copies of the package


def variant(url: str, change: Mutation) -> Catalog:
    """The package with the conformance resource ``url`` changed by ``change``."""
    resources = []
    for resource in CATALOG.resources:
        if resource.get("url") == url:
            changed: Resource = copy.deepcopy(dict(resource))
            change(changed)
            resource = changed
        resources.append(resource)
    return Catalog(CATALOG.package, tuple(resources))


def on_element(element_id: str, **changes: Any) -> Mutation:
    """Change one snapshot element of a StructureDefinition (``None`` deletes a key)."""

    def mutate(sd: Resource) -> None:
        (element,) = (e for e in sd["snapshot"]["element"] if e["id"] == element_id)
        for key, value in changes.items():
            if value is None:
                element.pop(key, None)
            else:
                element[key] = copy.deepcopy(value)

    return mutate


def inserting_after(element_id: str, new: dict[str, Any]) -> Mutation:
    def mutate(sd: Resource) -> None:
        elements = sd["snapshot"]["element"]
        (index,) = (i for i, e in enumerate(elements) if e["id"] == element_id)
        elements.insert(index + 1, copy.deepcopy(new))

    return mutate


def unchanged(resource: Resource) -> None:
    """No change to the example."""


MEASUREMENT = f"{SD}/lesion-measurement"
COMPONENT = "Observation.component"
UNSLICED = component(SCT, "371508000", valueString="grade 2")
VALUE_TYPE_SLICES = both(
    on_element(
        "Observation.value[x]",
        type=[{"code": "Quantity"}, {"code": "string"}],
        slicing={"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"},
    ),
    inserting_after(
        "Observation.value[x]",
        {
            "id": "Observation.value[x]:valueQuantity",
            "path": "Observation.value[x]",
            "sliceName": "valueQuantity",
            "min": 1,
            "max": "1",
            "type": [{"code": "Quantity"}],
        },
    ),
)
STRING_VALUE = both(deleting(("valueQuantity",)), setting(("valueString",), "41 mm"))

# (changed resource, change, example, what is broken, expected issue)
VARIANTS = [
    pytest.param(
        MEASUREMENT,
        on_element(
            COMPONENT,
            slicing={"discriminator": [{"type": "pattern", "path": "code"}], "rules": "closed"},
        ),
        "measurement-t1",
        appending(("component",), UNSLICED),
        (Severity.ERROR, IssueType.STRUCTURE, "Observation.component[2]"),
        id="closed-slicing-rejects-an-unmatched-item",
    ),
    pytest.param(
        MEASUREMENT,
        on_element(
            COMPONENT,
            slicing={
                "discriminator": [{"type": "pattern", "path": "code"}],
                "rules": "open",
                "ordered": True,
            },
        ),
        "measurement-t1",
        lambda resource: resource["component"].reverse(),
        (Severity.ERROR, IssueType.STRUCTURE, "Observation.component"),
        id="ordered-slicing-rejects-slices-out-of-order",
    ),
    pytest.param(
        MEASUREMENT,
        on_element(
            COMPONENT,
            slicing={"discriminator": [{"type": "pattern", "path": "code"}], "rules": "openAtEnd"},
        ),
        "measurement-t1",
        lambda resource: resource["component"].insert(0, UNSLICED),
        (Severity.ERROR, IssueType.STRUCTURE, "Observation.component"),
        id="openAtEnd-slicing-rejects-an-unmatched-item-first",
    ),
    pytest.param(
        f"{SD}/sum-of-diameters",
        VALUE_TYPE_SLICES,
        "sum-of-diameters",
        STRING_VALUE,
        (Severity.ERROR, IssueType.STRUCTURE, "Observation.valueString"),
        id="closed-type-slicing-rejects-another-type",
    ),
    pytest.param(
        f"{SD}/sum-of-diameters",
        VALUE_TYPE_SLICES,
        "sum-of-diameters",
        STRING_VALUE,
        (Severity.ERROR, IssueType.REQUIRED, "Observation.value"),
        id="required-type-slice-missing",
    ),
    pytest.param(
        MEASUREMENT,
        on_element(
            "Observation.bodySite",
            binding={
                "strength": "extensible",
                "valueSet": f"{CANONICAL_BASE}/ValueSet/lesion-location",
            },
        ),
        "measurement-t1",
        setting(("bodySite",), concept(SCT, "12345678")),
        (Severity.WARNING, IssueType.CODE_INVALID, "Observation.bodySite"),
        id="extensible-binding-is-a-warning",
    ),
    pytest.param(
        f"{CANONICAL_BASE}/ValueSet/lesion-location",
        setting(
            ("compose", "include"),
            [{"system": SCT, "filter": [{"property": "concept", "op": "is-a", "value": "1"}]}],
        ),
        "measurement-t1",
        unchanged,
        (Severity.WARNING, IssueType.CODE_INVALID, "Observation.bodySite"),
        id="value-set-that-needs-a-terminology-server-is-a-warning",
    ),
    pytest.param(
        f"{SD}/lesion",
        on_element(
            "BodyStructure.identifier:crfLesionId.use",
            binding={
                "strength": "required",
                "valueSet": f"{CANONICAL_BASE}/ValueSet/assessment-type",
            },
        ),
        "lesion-t1",
        unchanged,
        (Severity.ERROR, IssueType.CODE_INVALID, "BodyStructure.identifier[0].use"),
        id="code-element-outside-a-required-binding",
    ),
    pytest.param(
        f"{SD}/lesion",
        on_element("BodyStructure.identifier:crfLesionId.value", maxLength=3),
        "lesion-t1",
        setting(("identifier", 0, "value"), "T1234"),
        (Severity.ERROR, IssueType.VALUE, "BodyStructure.identifier[0].value"),
        id="string-over-maxLength",
    ),
    pytest.param(
        MEASUREMENT,
        lambda sd: sd["snapshot"]["element"][0]["constraint"].append(
            {
                "key": "fhirnet-singleton",
                "severity": "error",
                "human": "as() needs one item",
                "expression": "component.as(BackboneElement).exists()",
                "source": MEASUREMENT,
            }
        ),
        "measurement-t1",
        unchanged,
        (Severity.WARNING, IssueType.PROCESSING, "Observation"),
        id="invariant-that-fhirpathpy-cannot-evaluate-is-a-warning",
    ),
]


@pytest.mark.parametrize(("url", "change", "name", "mutate", "expected"), VARIANTS)
def test_rule_of_a_changed_profile_is_enforced(
    url: str, change: Mutation, name: str, mutate: Mutation, expected: tuple[str, str, str]
) -> None:
    resource = example(name)
    mutate(resource)

    issues = validate_resource(resource, variant(url, change))

    assert expected in [(i.severity, i.code, i.expression) for i in issues], describe(issues)


def test_a_primitive_with_only_an_extension_is_present(catalog: Catalog) -> None:
    resource = example("measurement-t1")
    del resource["status"]
    resource["_status"] = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown",
            }
        ]
    }

    issues = validate_against_profile(resource, MEASUREMENT, catalog)

    assert not [i for i in issues if i.expression == "Observation.status"]


# ---------------------------------------------------------------------------------------------
# Rules of the validator


def test_validation_does_not_modify_the_resource(catalog: Catalog) -> None:
    resource = example("response-assessment")
    resource["valueCodeableConcept"] = concept(NCIT, "C142357")  # something to report
    before = copy.deepcopy(resource)

    validate_resource(resource, catalog)

    assert resource == before


def test_an_unknown_profile_url_cannot_be_validated_against(catalog: Catalog) -> None:
    with pytest.raises(ProfileNotFoundError):
        validate_against_profile(example("report"), f"{SD}/nope", catalog)


def test_a_profile_of_another_resource_type_is_one_structure_error(catalog: Catalog) -> None:
    issues = validate_against_profile(example("lesion-t1"), f"{SD}/lesion-measurement", catalog)

    assert [(i.code, i.expression) for i in issues] == [(IssueType.STRUCTURE, "BodyStructure")]


def test_the_extension_profile_validates_an_extension_alone(catalog: Catalog) -> None:
    assert validate_against_profile({"url": NODAL, "valueBoolean": True}, NODAL, catalog) == []
    issues = validate_against_profile({"url": NODAL}, NODAL, catalog)
    assert [(i.code, i.expression) for i in issues] == [(IssueType.REQUIRED, "Extension.value")]


@pytest.mark.parametrize("not_a_resource", [None, [], "Observation", {"status": "final"}], ids=repr)
def test_input_that_is_not_a_resource_is_one_structure_error(
    not_a_resource: Any, catalog: Catalog
) -> None:
    issues = validate_resource(not_a_resource, catalog)

    assert [(i.severity, i.code) for i in issues] == [(Severity.ERROR, IssueType.STRUCTURE)]


def test_a_foreign_profile_claim_is_information_only(catalog: Catalog) -> None:
    resource = example("report")
    resource["meta"]["profile"].append("http://hl7.org/fhir/4.0/StructureDefinition/Foo")

    issues = validate_resource(resource, catalog)

    assert [(i.severity, i.code) for i in issues] == [
        (Severity.INFORMATION, IssueType.NOT_SUPPORTED)
    ]


def test_urn_uuid_references_are_skipped_outside_a_bundle(catalog: Catalog) -> None:
    resource = example("report")
    resource["subject"]["reference"] = "urn:uuid:0c4d0b5e-6b3b-4a52-8a8a-59d6c7b7f1aa"

    assert validate_resource(resource, catalog) == []


def test_urn_uuid_references_resolve_through_the_bundle_full_urls(catalog: Catalog) -> None:
    patient = "urn:uuid:0c4d0b5e-0000-4a52-8a8a-000000000001"
    group = "urn:uuid:0c4d0b5e-0000-4a52-8a8a-000000000002"
    report = example("report")
    report["subject"]["reference"] = group  # a Group where the profile wants a Patient
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": group,
                "resource": {"resourceType": "Group", "type": "person", "actual": True},
            },
            {"fullUrl": patient, "resource": {"resourceType": "Patient"}},
            {"fullUrl": "urn:uuid:0c4d0b5e-0000-4a52-8a8a-000000000003", "resource": report},
        ],
    }

    issues = validate_resource(bundle, catalog)

    assert [(i.code, i.expression) for i in issues if i.is_error] == [
        (IssueType.STRUCTURE, "Bundle.entry[2].resource.subject.reference")
    ]
    report["subject"]["reference"] = patient
    assert validate_resource(bundle, catalog) == []


def test_bindings_to_value_sets_that_are_not_ours_are_not_checked(catalog: Catalog) -> None:
    # dataAbsentReason is bound (extensible) to a core ValueSet; no terminology server offline.
    resource = example("who-grade")
    del resource["valueCodeableConcept"]
    resource["dataAbsentReason"] = concept("urn:example:reasons", "whatever")

    assert validate_resource(resource, catalog) == []


def test_a_component_outside_the_open_slicing_is_allowed(catalog: Catalog) -> None:
    resource = example("who-grade")
    resource["component"].append(component(SCT, "371508000", valueString="G2"))

    assert validate_resource(resource, catalog) == []


def test_each_problem_is_reported_once(catalog: Catalog) -> None:
    resource = example("measurement-t1")
    resource["bodySite"] = concept(SCT, "12345678")

    issues = validate_resource(resource, catalog)

    assert len(issues) == len(set(issues)) == 1


# ---------------------------------------------------------------------------------------------
# Robustness: damage never crashes the validator


def json_paths(value: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    """Every key and array index below ``value``, parents before children."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from json_paths(child, (*prefix, index))


def damaged(resource: Resource, paths: list[JsonPath], *replacement: Any) -> Resource:
    """``resource`` with the element at each path deleted, or replaced by ``replacement``."""
    result = copy.deepcopy(resource)
    for path in paths:
        parent: Any = result
        try:
            for step in path[:-1]:
                parent = parent[step]
            if replacement:
                parent[path[-1]] = copy.deepcopy(replacement[0])
            else:
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced it
    return result


EXAMPLES = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in EXAMPLE_FILES}
PATHS = {name: list(json_paths(resource)) for name, resource in EXAMPLES.items()}
ROBUSTNESS = settings(max_examples=300, deadline=None, derandomize=True)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["url", "reference", "coding", "value", "x"]), children)
    ),
    max_leaves=8,
)


def never_crashes(resource: Resource, profiles: list[str]) -> None:
    """Both entry points return a list of issues for ``resource`` (and raise nothing)."""
    issues = validate_resource(resource, CATALOG)
    assert all(isinstance(issue, Issue) for issue in issues)
    for profile in profiles:
        assert all(
            isinstance(i, Issue) for i in validate_against_profile(resource, profile, CATALOG)
        )


@ROBUSTNESS
@given(st.sampled_from(sorted(EXAMPLES)), st.data())
def test_random_deletions_never_crash_the_validator(name: str, data: st.DataObject) -> None:
    paths = data.draw(st.lists(st.sampled_from(PATHS[name]), min_size=1, max_size=4))

    never_crashes(damaged(EXAMPLES[name], paths), EXAMPLES[name]["meta"]["profile"])


@ROBUSTNESS
@given(st.sampled_from(sorted(EXAMPLES)), st.data(), json_values)
def test_random_replacements_never_crash_the_validator(
    name: str, data: st.DataObject, replacement: Any
) -> None:
    paths = data.draw(st.lists(st.sampled_from(PATHS[name]), min_size=1, max_size=4))

    never_crashes(damaged(EXAMPLES[name], paths, replacement), EXAMPLES[name]["meta"]["profile"])
