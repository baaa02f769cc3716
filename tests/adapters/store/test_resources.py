"""References in stored resources (:mod:`fhirnet.adapters.store.resources`): what a transaction
rewrites when it resolves ``fullUrl``s, and what it leaves alone."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from fhirnet.adapters.store.resources import (
    ReferenceDraft,
    content_key,
    rewrite_references,
    to_json,
)
from fhirnet.ports import Json

PROVENANCE = {
    "resourceType": "Provenance",
    "target": [{"reference": "urn:uuid:a"}, {"reference": "urn:uuid:b", "display": "urn:uuid:a"}],
    "entity": [{"role": "source", "what": {"reference": "urn:uuid:a"}}],
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:a"}],
    "extension": [{"url": "x", "valueReference": {"reference": "urn:uuid:b"}}],
    "recorded": "2025-01-01T00:00:00Z",
    "policy": ["urn:uuid:a", "p"],
    "count": [1, 2.5, True, None],
}
MAPPING = {"urn:uuid:a": "Observation/1", "urn:uuid:b": "DiagnosticReport/2"}


def test_every_reference_element_is_rewritten_at_any_depth() -> None:
    rewritten = rewrite_references(PROVENANCE, lambda ref: MAPPING.get(ref, ref))

    assert rewritten["target"] == [
        {"reference": "Observation/1"},
        {"reference": "DiagnosticReport/2", "display": "urn:uuid:a"},
    ]
    assert rewritten["entity"][0]["what"] == {"reference": "Observation/1"}
    assert rewritten["extension"][0]["valueReference"] == {"reference": "DiagnosticReport/2"}


def test_other_strings_equal_to_a_full_url_and_other_values_stay_as_they_are() -> None:
    rewritten = rewrite_references(PROVENANCE, lambda ref: MAPPING.get(ref, ref))

    assert rewritten["identifier"] == PROVENANCE["identifier"]
    assert rewritten["policy"] == ["urn:uuid:a", "p"]
    assert rewritten["count"] == [1, 2.5, True, None]
    assert rewritten["recorded"] == PROVENANCE["recorded"]


def test_the_resource_given_is_not_changed_and_the_copy_shares_no_container() -> None:
    before = copy.deepcopy(PROVENANCE)

    rewritten = rewrite_references(PROVENANCE, lambda ref: "Patient/p")

    assert before == PROVENANCE
    assert rewritten["count"] is not PROVENANCE["count"]
    assert rewritten["identifier"][0] is not PROVENANCE["identifier"][0]


def test_a_reference_that_is_not_a_string_is_walked_not_rewritten() -> None:
    odd = {"reference": {"reference": "urn:uuid:a"}, "other": 3}

    assert rewrite_references(odd, lambda ref: MAPPING[ref]) == {
        "reference": {"reference": "Observation/1"},
        "other": 3,
    }


# -- the copy made before the write lock, resolved under it ----------------------------------

NESTED = {
    "resourceType": "DiagnosticReport",
    "contained": [
        {"resourceType": "Observation", "id": "c1", "subject": {"reference": "urn:uuid:a"}},
    ],
    "result": [{"reference": "#c1"}, {"reference": "urn:uuid:b"}],
    "subject": {"reference": "Patient/p", "display": "urn:uuid:a"},
    "note": [{"text": "see urn:uuid:a and Observation?code=x"}],
    "identifier": [{"value": "urn:uuid:a", "assigner": {"reference": "urn:uuid:a"}}],
    "extension": [{"url": "u", "extension": [{"valueReference": {"reference": "urn:uuid:b"}}]}],
    "basedOn": [{"reference": "ServiceRequest?identifier=s|1"}, {"reference": {"x": 1}}],
}


def needs_like_the_store(reference: str) -> bool:
    return reference in MAPPING or reference.startswith("urn:uuid:") or "?" in reference


def test_a_draft_resolved_equals_the_rewrite_at_any_depth_and_in_contained_resources() -> None:
    calls: list[str] = []

    def rewrite(reference: str) -> str:
        calls.append(reference)
        return MAPPING.get(reference, "Patient/q" if "?" in reference else reference)

    expected = rewrite_references(NESTED, rewrite)
    expected_calls, calls[:] = list(calls), []
    draft = ReferenceDraft(NESTED, needs_like_the_store)
    draft.resolve(rewrite)

    assert draft.value == expected
    # Only the references that may change are passed, in the order of the full rewrite.
    assert calls == [c for c in expected_calls if needs_like_the_store(c)]
    assert calls == [
        "urn:uuid:a",
        "urn:uuid:b",
        "urn:uuid:a",
        "urn:uuid:b",
        "ServiceRequest?identifier=s|1",
    ]
    assert draft.value["note"] == NESTED["note"]  # text merely containing a uuid stays
    assert draft.value["subject"] == {"reference": "Patient/p", "display": "urn:uuid:a"}


def test_a_draft_copies_before_resolving_and_leaves_the_original_alone() -> None:
    before = copy.deepcopy(NESTED)
    draft = ReferenceDraft(NESTED, needs_like_the_store)

    assert draft.pending == 5
    assert draft.value == NESTED
    assert draft.value["result"] is not NESTED["result"]
    draft.resolve(lambda reference: "Observation/1")

    assert before == NESTED
    assert draft.value["result"][1] == {"reference": "Observation/1"}
    assert draft.pending == 0


def test_a_draft_too_deep_to_copy_raises_when_resolved_after_the_references_met_first() -> None:
    deep: dict[str, object] = {"reference": "urn:uuid:a"}
    for _ in range(5000):
        deep = {"item": deep}
    value = {"first": {"reference": "urn:uuid:b"}, "deep": deep}
    draft = ReferenceDraft(value, needs_like_the_store)
    seen: list[str] = []

    def rewrite(reference: str) -> str:
        seen.append(reference)
        return reference

    assert draft.too_deep
    with pytest.raises(RecursionError):
        draft.resolve(rewrite)
    assert seen == ["urn:uuid:b"]


# -- the stored text -------------------------------------------------------------------------

TEXTS: list[Json] = [
    PROVENANCE,
    {"resourceType": "Patient", "name": [{"text": 'é \u2028 \\ " \x00'}], "n": [1.5, -0, 10**20]},
    {"resourceType": "Basic", "nested": [[{"a": {}}, []], None, True]},
]


def test_the_stored_text_is_compact_unescaped_json_whatever_the_thread() -> None:
    expected = [
        json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        for value in TEXTS
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: [to_json(value) for value in TEXTS], range(200)))

    assert all(answer == expected for answer in answers)


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), Decimal("1.5"), "\ud800", {1j: 1}])
def test_what_json_cannot_represent_is_a_value_error(odd: object) -> None:
    with pytest.raises(ValueError, match="not representable as FHIR JSON"):
        to_json({"resourceType": "Basic", "odd": odd})


def test_the_content_key_ignores_server_meta_and_key_order_only() -> None:
    one = {"resourceType": "Basic", "meta": {"versionId": "1", "lastUpdated": "x"}, "a": 1, "b": 2}
    two = {"b": 2, "a": 1, "resourceType": "Basic", "meta": {"lastUpdated": "y", "versionId": "2"}}
    tagged = {**two, "meta": {"versionId": "2", "tag": [{"code": "t"}]}}

    assert (
        content_key(one)
        == content_key(two)
        == content_key({"resourceType": "Basic", "a": 1, "b": 2})
    )
    assert content_key(tagged) != content_key(two)
    assert content_key(one) == json.dumps(
        {"a": 1, "b": 2, "resourceType": "Basic"}, sort_keys=True, separators=(",", ":")
    )
