"""Search index rows of a resource (:mod:`fhirnet.adapters.store.parameters`): the rows computed
in two steps, most of them before the write lock on the store's private copy and the rest once
its references are rewritten, are the rows of the stored resource computed at once."""

from __future__ import annotations

import copy

from fhirnet.adapters.store.parameters import IndexRow, draft_rows, index_rows
from fhirnet.adapters.store.resources import ReferenceDraft
from fhirnet.ports import Json

REPORT: Json = {
    "resourceType": "DiagnosticReport",
    "identifier": [{"system": "s", "value": "r1"}],
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "59776-5"}]},
    "subject": {"reference": "urn:uuid:p"},
    "effectiveDateTime": "2025-01-13",
    "result": [
        {"reference": "urn:uuid:o1"},
        {"reference": "Observation/o2"},
        {"reference": "urn:uuid:odd"},
    ],
}
PROVENANCE: Json = {
    "resourceType": "Provenance",
    "target": [{"reference": "urn:uuid:o1"}, {"reference": "Patient/p9"}],
    "recorded": "2025-01-13T10:00:00Z",
    "entity": [{"role": "source", "what": {"reference": "urn:uuid:q"}}],
}
MAPPING = {
    "urn:uuid:p": "Patient/p1",
    "urn:uuid:o1": "Observation/o1",
    "urn:uuid:q": "QuestionnaireResponse/q1",
    "urn:uuid:odd": "not a reference",
}


def needs(reference: str) -> bool:
    return reference.startswith("urn:uuid:")


def written(resource: Json) -> tuple[Json, list[IndexRow]]:
    """The resource as the store writes it (copied, rows drafted, references resolved, id and
    meta set) and the rows computed in two steps."""
    draft = ReferenceDraft(resource, needs)
    rows = draft_rows(draft.value, needs)
    draft.resolve(lambda ref: MAPPING.get(ref, ref))
    stored: Json = {
        **draft.value,
        "id": "x1",
        "meta": {"versionId": "1", "lastUpdated": "2025-01-13T10:00:00Z"},
    }
    return stored, index_rows(stored, draft=rows)


def test_rows_in_two_steps_equal_the_rows_of_the_stored_resource() -> None:
    for resource in (REPORT, PROVENANCE):
        before = copy.deepcopy(resource)
        stored, rows = written(resource)

        assert rows == index_rows(stored)
        assert resource == before


def test_rewritten_references_are_indexed_by_their_new_target_and_others_as_they_were() -> None:
    _, rows = written(REPORT)

    by_param = {(row.param, row.system, row.code) for row in rows}
    assert ("subject", "Patient", "p1") in by_param
    assert ("patient", "Patient", "p1") in by_param
    assert {(s, c) for p, s, c in by_param if p == "result"} == {
        ("Observation", "o1"),
        ("Observation", "o2"),
    }
    assert not any(row.code and row.code.startswith("urn:") for row in rows)


def test_only_references_that_may_change_wait_for_the_lock() -> None:
    draft = ReferenceDraft(PROVENANCE, needs)
    rows = draft_rows(draft.value, needs)

    waiting = sorted(
        (parameter.name, holder["reference"]) for parameter, _, holder in rows.references
    )
    # "patient" waits too: the urn may name a Patient.
    assert waiting == [
        ("entity", "urn:uuid:q"),
        ("patient", "urn:uuid:o1"),
        ("target", "urn:uuid:o1"),
    ]
    assert IndexRow("patient", system="Patient", code="p9") in rows.rows
    assert not rows.later


def test_with_nothing_to_rewrite_the_drafted_rows_are_all_the_rows() -> None:
    for resource in (
        REPORT,
        PROVENANCE,
        {"resourceType": "Unknown", "subject": {"reference": "a"}},
    ):
        rows = draft_rows(resource, lambda reference: False)

        assert not rows.references
        assert sorted(rows.rows, key=repr) == sorted(index_rows(resource), key=repr)
