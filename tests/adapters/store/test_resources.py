"""References in stored resources (:mod:`fhirnet.adapters.store.resources`): what a transaction
rewrites when it resolves ``fullUrl``s, and what it leaves alone."""

from __future__ import annotations

import copy

from fhirnet.adapters.store.resources import rewrite_references

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
