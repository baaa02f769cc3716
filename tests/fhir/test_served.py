"""The served Questionnaire: every answer ValueSet contained and pre-expanded (``#id``), so that
renderers without a terminology server (LHC-Forms) can show the form; nothing else changed."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from fhirnet.config import DEFAULT_PROFILES_DIR
from fhirnet.errors import ProfileNotFoundError
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL, Catalog, load_catalog
from fhirnet.fhir.resources import Questionnaire, parse
from fhirnet.fhir.served import UNDATED_PACKAGE_TIMESTAMP, package_timestamp, served_questionnaire


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_PROFILES_DIR)


@pytest.fixture(scope="module")
def served(catalog: Catalog) -> dict[str, Any]:
    return served_questionnaire(catalog)


def items(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in tree:
        yield item
        yield from items(item.get("item", []))


def contained_by_id(questionnaire: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {resource["id"]: resource for resource in questionnaire["contained"]}


def test_the_authored_questionnaire_uses_canonical_answer_value_sets(catalog: Catalog) -> None:
    # Guards the tests below: without canonicals there would be nothing to contain.
    canonicals = [
        i["answerValueSet"] for i in items(catalog.questionnaire()["item"]) if "answerValueSet" in i
    ]
    assert len(canonicals) > 10
    assert all(c.startswith("https://fhirnet.dev/fhir/ValueSet/") for c in canonicals)


def test_every_answer_value_set_is_a_local_reference_to_a_contained_value_set(
    served: dict[str, Any],
) -> None:
    contained = contained_by_id(served)
    references = [i["answerValueSet"] for i in items(served["item"]) if "answerValueSet" in i]

    assert references
    for reference in references:
        assert reference.startswith("#")
        assert contained[reference[1:]]["resourceType"] == "ValueSet"


def test_every_contained_value_set_carries_a_non_empty_expansion(
    served: dict[str, Any], catalog: Catalog
) -> None:
    for value_set in served["contained"]:
        expansion = value_set["expansion"]
        expected = [concept.coding() for concept in catalog.expand(value_set["url"])]

        assert expansion["contains"], value_set["id"]
        assert expansion["contains"] == expected
        assert expansion["total"] == len(expected)
        assert expansion["identifier"].startswith("urn:uuid:")
        assert expansion["timestamp"]
        for entry in expansion["contains"]:
            assert set(entry) <= {"system", "code", "display"}
            assert entry["system"]
            assert entry["code"]


def test_there_is_one_contained_value_set_per_distinct_value_set_and_ids_are_unique(
    served: dict[str, Any], catalog: Catalog
) -> None:
    ids = [resource["id"] for resource in served["contained"]]
    distinct = {
        i["answerValueSet"] for i in items(catalog.questionnaire()["item"]) if "answerValueSet" in i
    }

    assert len(ids) == len(set(ids))
    assert len(ids) == len(distinct)
    # lesion-location is used by three groups and imaging-procedure by two items: once each.
    assert ids.count("lesion-location") == 1


def test_the_contained_copy_is_the_package_value_set_plus_its_expansion(
    served: dict[str, Any], catalog: Catalog
) -> None:
    for value_set in served["contained"]:
        original = catalog.by_url(value_set["url"])
        assert original is not None
        assert {k: v for k, v in value_set.items() if k != "expansion"} == original


def test_the_item_tree_is_otherwise_the_authored_one(
    served: dict[str, Any], catalog: Catalog
) -> None:
    urls = {f"#{resource['id']}": resource["url"] for resource in served["contained"]}
    restored = copy.deepcopy(served)
    for item in items(restored["item"]):
        if "answerValueSet" in item:
            item["answerValueSet"] = urls[item["answerValueSet"]]
    del restored["contained"]

    assert restored == catalog.questionnaire()
    assert served["url"] == QUESTIONNAIRE_URL
    assert served["version"] == catalog.questionnaire()["version"]


def test_contained_is_placed_after_the_id(served: dict[str, Any]) -> None:
    keys = list(served)
    assert keys.index("contained") == keys.index("id") + 1


def test_the_served_questionnaire_is_a_valid_r4_questionnaire(served: dict[str, Any]) -> None:
    parsed = parse(served, Questionnaire)

    assert parsed.issues == ()
    assert parsed.resource is not None


def test_contained_value_sets_obey_the_contained_resource_rules(served: dict[str, Any]) -> None:
    # R4 dom-2 (no nested contained), dom-4 (no meta.versionId/lastUpdated), dom-5 (no security).
    for value_set in served["contained"]:
        assert "contained" not in value_set
        assert "meta" not in value_set


def test_building_is_deterministic_and_leaves_the_catalog_alone(catalog: Catalog) -> None:
    before = json.dumps(catalog.questionnaire(), sort_keys=True)

    first, second = served_questionnaire(catalog), served_questionnaire(catalog)

    assert json.dumps(first) == json.dumps(second)
    assert json.dumps(catalog.questionnaire(), sort_keys=True) == before
    first["contained"][0]["expansion"]["contains"].clear()
    assert served_questionnaire(catalog)["contained"][0]["expansion"]["contains"]


def test_expansion_identifiers_differ_per_value_set(served: dict[str, Any]) -> None:
    identifiers = [value_set["expansion"]["identifier"] for value_set in served["contained"]]
    assert len(identifiers) == len(set(identifiers))


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (None, UNDATED_PACKAGE_TIMESTAMP),
        ("20251121103000", "2025-11-21T10:30:00Z"),  # the FHIR NPM package form
        ("20251121", "2025-11-21T00:00:00Z"),
        ("2025-11-21T10:30:00+01:00", "2025-11-21T10:30:00+01:00"),
    ],
)
def test_the_expansion_timestamp_comes_from_the_package_date(
    date: str | None, expected: str
) -> None:
    package = {"name": "fhirnet.crf", "version": "0.1.0"} | ({"date": date} if date else {})
    assert package_timestamp(package) == expected


def test_a_dated_package_dates_every_expansion(catalog: Catalog) -> None:
    dated = Catalog({**catalog.package, "date": "20260102030405"}, catalog.resources)

    served = served_questionnaire(dated)

    assert {vs["expansion"]["timestamp"] for vs in served["contained"]} == {"2026-01-02T03:04:05Z"}


def test_an_answer_value_set_missing_from_the_package_fails_the_build(catalog: Catalog) -> None:
    questionnaire = copy.deepcopy(dict(catalog.questionnaire()))
    questionnaire["item"][1]["answerValueSet"] = "https://fhirnet.dev/fhir/ValueSet/nope"
    others = tuple(r for r in catalog.resources if r["resourceType"] != "Questionnaire")
    broken = Catalog(catalog.package, (*others, questionnaire))

    with pytest.raises(ProfileNotFoundError, match="ValueSet/nope"):
        served_questionnaire(broken)


def test_a_versioned_canonical_and_an_existing_local_reference_are_handled(
    catalog: Catalog,
) -> None:
    questionnaire = copy.deepcopy(dict(catalog.questionnaire()))
    own = {"resourceType": "ValueSet", "id": "own", "status": "active"}
    questionnaire["contained"] = [own]
    questionnaire["item"][1]["answerValueSet"] += "|0.1.0"
    questionnaire["item"][2]["answerValueSet"] = "#own"
    others = tuple(r for r in catalog.resources if r["resourceType"] != "Questionnaire")

    served = served_questionnaire(Catalog(catalog.package, (*others, questionnaire)))

    assert served["contained"][0] == own
    assert served["item"][1]["answerValueSet"] == "#assessment-type"
    assert served["item"][2]["answerValueSet"] == "#own"
