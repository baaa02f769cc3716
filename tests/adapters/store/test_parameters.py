"""Search index rows of a resource (:mod:`fhirnet.adapters.store.parameters`): the rows computed
in two steps, the settled ones before the write lock and the others under it, are the rows of
the stored resource computed at once."""

from __future__ import annotations

import copy

from fhirnet.adapters.store.parameters import (
    PARAMETERS,
    index_rows,
    is_settled,
    settled_rows,
)
from fhirnet.adapters.store.resources import rewrite_references
from fhirnet.ports import Json

REPORT: Json = {
    "resourceType": "DiagnosticReport",
    "identifier": [{"system": "s", "value": "r1"}],
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "59776-5"}]},
    "subject": {"reference": "urn:uuid:p"},
    "effectiveDateTime": "2025-01-13",
    "result": [{"reference": "urn:uuid:o1"}, {"reference": "Observation/o2"}],
}
PROVENANCE: Json = {
    "resourceType": "Provenance",
    "target": [{"reference": "urn:uuid:o1"}],
    "recorded": "2025-01-13T10:00:00Z",
    "entity": [{"role": "source", "what": {"reference": "urn:uuid:q"}}],
}
MAPPING = {
    "urn:uuid:p": "Patient/p1",
    "urn:uuid:o1": "Observation/o1",
    "urn:uuid:q": "QuestionnaireResponse/q1",
}


def stored(resource: Json) -> Json:
    """The resource as the store writes it: references rewritten, id and meta set."""
    final: Json = rewrite_references(resource, lambda ref: MAPPING.get(ref, ref))
    final["id"] = "x1"
    final["meta"] = {"versionId": "1", "lastUpdated": "2025-01-13T10:00:00Z"}
    return final


def test_settled_rows_then_the_rest_equal_the_rows_of_the_stored_resource() -> None:
    for resource in (REPORT, PROVENANCE):
        before = copy.deepcopy(resource)
        settled = settled_rows(resource)

        assert index_rows(stored(resource), settled=settled) == index_rows(stored(resource))
        assert resource == before


def test_references_id_and_meta_are_never_settled() -> None:
    for parameters in PARAMETERS.values():
        for parameter in parameters.values():
            if is_settled(parameter):
                assert parameter.kind.value != "reference"
                assert all(path.split(".")[0] not in ("id", "meta") for path in parameter.paths)
    rows = settled_rows(REPORT)
    assert {row.param for row in rows} == {"identifier", "status", "code", "date"}
    assert "subject" in {row.param for row in index_rows(stored(REPORT))}
