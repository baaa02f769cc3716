"""The AuditEvent builder: valid R4 (fhir.resources R4B), who/what/when/outcome, and nothing of
the patient beyond references."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from fhirnet.fhir import audit
from fhirnet.fhir.audit import (
    ANONYMOUS,
    CLIENT_SYSTEM,
    SOFTWARE,
    Action,
    Interaction,
    Outcome,
    audit_event,
    audit_transaction,
)
from fhirnet.fhir.resources import model_class, parse
from fhirnet.ports import Json

#: A non-UTC clock catches timezone slips (style P13).
RECORDED = dt.datetime(2025, 6, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def _event(**overrides: Any) -> Json:
    arguments: dict[str, Any] = {
        "interaction": Interaction.CREATE,
        "action": Action.CREATE,
        "recorded": RECORDED,
        "requester": "api-key-1",
        "entities": [
            audit.patient("Patient/p1"),
            audit.resource("urn:uuid:7f0c4f2e-0000-4000-8000-000000000001", "DiagnosticReport"),
            audit.resource("Observation/o1", "Observation"),
        ],
    }
    return audit_event(**(arguments | overrides))


def _is_valid_r4(event: object) -> bool:
    parsed = parse(event, model_class("AuditEvent"))
    return parsed.resource is not None and not parsed.issues


@pytest.mark.parametrize(
    ("interaction", "action", "outcome"),
    [
        (Interaction.CREATE, Action.CREATE, Outcome.SUCCESS),
        (Interaction.TRANSACTION, Action.CREATE, Outcome.SERIOUS_FAILURE),
        (Interaction.READ, Action.READ, Outcome.SUCCESS),
        (Interaction.SEARCH_TYPE, Action.EXECUTE, Outcome.SUCCESS),
        (Interaction.OPERATION, Action.EXECUTE, Outcome.MINOR_FAILURE),
    ],
    ids=["create", "failed-transaction", "read", "search", "refused-extract"],
)
def test_every_kind_of_event_is_a_valid_r4_audit_event(
    interaction: Interaction, action: Action, outcome: Outcome
) -> None:
    description = None if outcome is Outcome.SUCCESS else "failed: FhirServerUnavailableError"
    event = _event(
        interaction=interaction,
        action=action,
        outcome=outcome,
        outcome_description=description,
        entities=[audit.patient("Patient/p1"), audit.query("Observation", "patient=p1&_count=5")],
    )

    assert _is_valid_r4(event), parse(event, model_class("AuditEvent")).issues
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": interaction.value}
    ]
    assert (event["action"], event["outcome"]) == (action.value, outcome.value)
    assert event.get("outcomeDesc") == description


def test_the_event_says_who_when_and_what() -> None:
    event = _event()

    assert event["type"]["code"] == "rest"
    assert event["recorded"] == "2025-06-01T09:30:00+02:00"
    requester, software = event["agent"]
    assert requester == {
        "who": {"identifier": {"system": CLIENT_SYSTEM, "value": "api-key-1"}},
        "requestor": True,
    }
    assert software == {"who": {"display": SOFTWARE}, "requestor": False}
    assert event["source"] == {"observer": {"display": SOFTWARE}}
    whats = [(e["what"]["reference"], e["role"]["code"]) for e in event["entity"]]
    assert whats == [
        ("Patient/p1", "1"),
        ("urn:uuid:7f0c4f2e-0000-4000-8000-000000000001", "3"),  # a Report
        ("Observation/o1", "4"),  # a Domain Resource
    ]


def test_a_search_records_its_type_and_query_as_sent_in_base64() -> None:
    entity = audit.query("Observation", "patient=Patient/p1&code=1234-5").json()

    assert (
        base64.b64decode(entity["query"]).decode() == "Observation?patient=Patient/p1&code=1234-5"
    )
    assert entity["role"]["code"] == "24"
    assert "name" not in entity  # R4 sev-1: name or query, not both


def test_an_entity_named_twice_is_recorded_once() -> None:
    event = _event(entities=[audit.patient("Patient/p1"), audit.patient("Patient/p1")])

    assert len(event["entity"]) == 1


def test_the_anonymous_requester_of_open_access_is_still_named() -> None:
    event = _event(requester=ANONYMOUS)

    assert event["agent"][0]["who"]["identifier"]["value"] == "anonymous"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _event(recorded=dt.datetime(2025, 6, 1, 9, 30))


def test_patients_are_found_in_subject_patient_and_provenance_targets() -> None:
    assert audit.patients_of({"subject": {"reference": "Patient/a"}}) == ["Patient/a"]
    assert audit.patients_of({"patient": {"reference": "http://x/fhir/Patient/b"}}) == ["Patient/b"]
    assert audit.patients_of(
        {"target": [{"reference": "Patient/c"}, {"reference": "urn:uuid:1"}]}
    ) == ["Patient/c"]
    assert audit.patients_of({"subject": {"display": "Jane Doe"}}) == []


def test_no_answer_or_name_of_the_patient_gets_into_an_event() -> None:
    """Entities are references; the event holds nothing from the form's content."""
    form = {
        "resourceType": "QuestionnaireResponse",
        "subject": {"reference": "Patient/p1", "display": "Jane Doe"},
        "item": [{"linkId": "lesion", "answer": [{"valueDecimal": 23.5}]}],
    }
    event = _event(entities=[audit.patient(p) for p in audit.patients_of(form)])

    text = json.dumps(event)
    assert "Jane" not in text
    assert "23.5" not in text
    assert "lesion" not in text


def test_events_written_on_their_own_are_posted_in_a_transaction() -> None:
    bundle = audit_transaction([(_event(), "urn:uuid:00000000-0000-4000-8000-000000000000")])

    assert bundle["type"] == "transaction"
    (entry,) = bundle["entry"]
    assert entry["request"] == {"method": "POST", "url": "AuditEvent"}
    assert _is_valid_r4(entry["resource"])
    assert _is_valid_r4(bundle) or parse(bundle, model_class("Bundle")).resource is not None
