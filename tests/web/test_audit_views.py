"""The audit trail over HTTP, on the embedded store: every write and every read of patient data
leaves exactly one AuditEvent with the right action, outcome, requester and entities; failures
are recorded too; what touches no patient data is not."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.errors import FhirServerRejectedError
from fhirnet.fhir.audit import CLIENT_SYSTEM
from fhirnet.fhir.resources import model_class, parse
from fhirnet.ports import Json
from fhirnet.web.app import create_app
from tests.submissions import (
    CHOI,
    NOW,
    RECIST,
    SUBMIT,
    FailingStore,
    RecordingStore,
    body,
    bundle_of,
    counts,
    form,
    post,
)
from tests.web.test_submission_views import EXTRACT, store_of

API_KEY = "audit-test-key-0123456789"


@pytest.fixture
def app(settings: Settings) -> Flask:
    app = create_app(settings, clock=lambda: NOW)
    app.config["TESTING"] = True
    return app


def audit_events(app: Flask) -> list[Json]:
    """Every AuditEvent in the store, oldest first (read from the store: not itself audited)."""
    found = list(store_of(app).search("AuditEvent", {"_sort": "_lastUpdated"}))
    for event in found:
        assert parse(event, model_class("AuditEvent")).issues == ()
    return found


def new_events(app: Flask, before: int) -> list[Json]:
    return audit_events(app)[before:]


def subtype(event: Json) -> str:
    return str(event["subtype"][0]["code"])


def requester(event: Json) -> str:
    (agent,) = [a for a in event["agent"] if a["requestor"]]
    assert agent["who"]["identifier"]["system"] == CLIENT_SYSTEM
    return str(agent["who"]["identifier"]["value"])


def whats(event: Json, role: str | None = None) -> list[str]:
    return [
        e["what"]["reference"]
        for e in event.get("entity", [])
        if "what" in e and (role is None or e["role"]["code"] == role)
    ]


def patient_of(resource: Json) -> str:
    return str(resource["subject"]["reference"])


def submit_one(client: FlaskClient, patient: str = RECIST, number: int = 1) -> Json:
    response = post(client, form(patient, number))
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return body(response)


# -- writes ------------------------------------------------------------------------------------


def test_a_submission_writes_one_audit_event_naming_the_patient_and_what_was_written(
    app: Flask, client: FlaskClient
) -> None:
    report = submit_one(client)

    (event,) = audit_events(app)
    assert (subtype(event), event["action"], event["outcome"]) == ("create", "C", "0")
    assert requester(event) == "anonymous"
    assert whats(event, role="1") == [patient_of(report)]
    written = whats(event)
    assert f"DiagnosticReport/{report['id']}" in whats(event, role="3")
    assert not [w for w in written if w.startswith("urn:")], "fullUrls not resolved"
    stored = counts(store_of(app))
    assert len(written) == 1 + sum(stored.values())  # the patient, and every resource written


def test_the_audit_event_is_in_the_same_transaction_as_the_results(
    settings: Settings, tmp_path: Any
) -> None:
    with EmbeddedStore.open(tmp_path / "recorded") as inner:
        recording = RecordingStore(inner)
        client = create_app(settings, store=recording, clock=lambda: NOW).test_client()

        submit_one(client)

    (sent,) = recording.sent
    *results, audit = sent["entry"]
    assert audit["request"] == {"method": "POST", "url": "AuditEvent"}
    assert "AuditEvent" not in {entry["resource"]["resourceType"] for entry in results}


def test_an_identical_resubmission_writes_only_a_new_audit_event(
    app: Flask, client: FlaskClient
) -> None:
    """The audit is a log: the one resource that grows on resubmission."""
    report = submit_one(client)
    before = counts(store_of(app))

    again = post(client, form(RECIST, 1))

    assert again.status_code == 200
    assert counts(store_of(app)) == before
    first, second = audit_events(app)
    assert second["outcome"] == "0"
    assert whats(second) == [patient_of(report), f"DiagnosticReport/{report['id']}"]
    assert first["id"] != second["id"]


def test_an_invalid_form_writes_a_failure_audit_event_and_nothing_else(
    app: Flask, client: FlaskClient
) -> None:
    invalid = form(RECIST, 1)
    invalid["status"] = "in-progress"

    assert post(client, invalid).status_code == 422

    (event,) = audit_events(app)
    assert (event["action"], event["outcome"]) == ("C", "4")
    assert event["outcomeDesc"] == "refused: UnprocessableResourceError"
    assert whats(event) == [patient_of(invalid)]
    assert sum(counts(store_of(app)).values()) == 0


def test_a_failure_audit_that_cannot_be_written_leaves_the_answer_as_it_was(
    settings: Settings, tmp_path: Any
) -> None:
    """Best effort: the store refuses every transaction, the failure's own AuditEvent too; the
    client still gets the 502 of its submission, not a 500."""
    refusal = FhirServerRejectedError("POST / answered 400", status=400, outcome=None)
    with EmbeddedStore.open(tmp_path / "other") as inner:
        failing = FailingStore(inner, refusal)
        client = create_app(settings, store=failing, clock=lambda: NOW).test_client()

        response = post(client, form(RECIST, 1))

    assert response.status_code == 502
    assert len(failing.sent) == 2  # the submission, then its failure AuditEvent
    (failure,) = failing.sent[1]["entry"]
    assert failure["resource"]["outcome"] == "8"
    assert failure["resource"]["outcomeDesc"] == "failed: FhirServerRejectedError"


def test_a_transaction_bundle_writes_one_audit_event_per_form(
    app: Flask, client: FlaskClient
) -> None:
    forms = [form(RECIST, 1), form(CHOI, 1)]

    assert post(client, bundle_of(*forms), url="/fhir").status_code == 200

    events = audit_events(app)
    assert [subtype(e) for e in events] == ["transaction", "transaction"]
    assert sorted(whats(e, role="1")[0] for e in events) == sorted(map(patient_of, forms))


def test_a_batch_audits_each_entry_with_its_own_outcome(app: Flask, client: FlaskClient) -> None:
    invalid = form(CHOI, 1)
    invalid["status"] = "in-progress"

    response = post(client, bundle_of(form(RECIST, 1), invalid, kind="batch"), url="/fhir")

    assert response.status_code == 200
    events = audit_events(app)
    assert sorted((subtype(e), e["outcome"], whats(e, "1")[0]) for e in events) == sorted(
        [("batch", "0", patient_of(form(RECIST, 1))), ("batch", "4", patient_of(invalid))]
    )


def test_extract_records_the_read_of_the_history_and_writes_no_results(
    app: Flask, client: FlaskClient
) -> None:
    submit_one(client)
    before = len(audit_events(app))
    stored = counts(store_of(app))

    assert post(client, form(RECIST, 2), url=EXTRACT).status_code == 200

    (event,) = new_events(app, before)
    assert (subtype(event), event["action"], event["outcome"]) == ("operation", "E", "0")
    assert whats(event) == [patient_of(form(RECIST, 2))]
    assert counts(store_of(app)) == stored


# -- reads -------------------------------------------------------------------------------------


def test_reading_a_stored_resource_records_it_and_its_patient(
    app: Flask, client: FlaskClient
) -> None:
    report = submit_one(client)
    before = len(audit_events(app))

    assert client.get(f"/fhir/DiagnosticReport/{report['id']}").status_code == 200

    (event,) = new_events(app, before)
    assert (subtype(event), event["action"], event["outcome"]) == ("read", "R", "0")
    assert whats(event) == [patient_of(report), f"DiagnosticReport/{report['id']}"]


def details(entity: Json) -> dict[str, str]:
    return {d["type"]: d["valueString"] for d in entity.get("detail", [])}


def test_a_search_records_its_query_counts_and_patients_not_every_resource(
    app: Flask, client: FlaskClient
) -> None:
    report = submit_one(client)
    before = len(audit_events(app))
    patient = patient_of(report)

    response = client.get(
        f"/fhir/DiagnosticReport?patient={patient}&_include=DiagnosticReport:result"
    )

    assert response.status_code == 200
    returned = [
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in body(response)["entry"]
    ]
    (event,) = new_events(app, before)
    assert (subtype(event), event["action"]) == ("search-type", "E")
    assert whats(event, role="1") == [patient]
    assert whats(event, role="3") + whats(event, role="4") == []  # bounded: see docs/security.md
    (query,) = [e for e in event["entity"] if e["role"]["code"] == "24"]
    by_type: dict[str, int] = {}
    for reference in returned:
        by_type[reference.split("/")[0]] = by_type.get(reference.split("/")[0], 0) + 1
    assert details(query) == {
        "disclosed": str(len(returned)),
        **{f"disclosed {kind}": str(count) for kind, count in by_type.items()},
        "patients": "1",
    }
    assert base64.b64decode(query["query"]).decode() == (
        f"DiagnosticReport?patient={patient}&_include=DiagnosticReport:result"
    )


def test_a_search_that_finds_nothing_is_still_recorded(app: Flask, client: FlaskClient) -> None:
    assert client.get("/fhir/Observation?patient=Patient/nobody").status_code == 200

    (event,) = audit_events(app)
    assert [e["role"]["code"] for e in event["entity"]] == ["24"]


@pytest.mark.parametrize(
    "request_",
    [
        lambda c: c.get("/fhir/DiagnosticReport/unknown"),  # 404: nothing disclosed
        lambda c: c.get("/fhir/metadata"),
        lambda c: c.get("/fhir/Questionnaire"),
        lambda c: post(c, form(RECIST, 1), url="/fhir/QuestionnaireResponse/$validate"),
        lambda c: c.get("/fhir/DiagnosticReport?bogus=1"),  # 400 before the store answers
    ],
    ids=["read-404", "metadata", "conformance-search", "validate", "bad-search"],
)
def test_what_touches_no_patient_data_is_not_recorded(
    app: Flask, client: FlaskClient, request_: Callable[[FlaskClient], Any]
) -> None:
    request_(client)

    assert audit_events(app) == []


def test_audit_events_are_searched_by_patient_and_their_reads_are_not_recorded(
    app: Flask, client: FlaskClient
) -> None:
    report = submit_one(client)
    submit_one(client, CHOI)

    response = client.get(f"/fhir/AuditEvent?patient={patient_of(report)}")

    assert response.status_code == 200
    (entry,) = body(response)["entry"]
    assert whats(entry["resource"], role="1") == [patient_of(report)]
    assert client.get(f"/fhir/AuditEvent/{entry['resource']['id']}").status_code == 200
    assert len(audit_events(app)) == 2  # the two submissions only


# -- who ---------------------------------------------------------------------------------------


def test_the_requester_is_the_authenticated_client(settings: Settings) -> None:
    secured = replace(settings, auth="keys", api_keys=((API_KEY, ()),))
    app = create_app(secured, clock=lambda: NOW)
    client = app.test_client()
    token = {"Authorization": f"Bearer {API_KEY}"}

    response = client.post(
        f"{SUBMIT}/$submit",  # answered with the report
        data=json.dumps(form(RECIST, 1)),
        content_type="application/fhir+json",
        headers=token,
    )
    assert response.status_code == 201
    assert (
        client.get(f"/fhir/DiagnosticReport/{body(response)['id']}", headers=token).status_code
        == 200
    )

    assert [requester(e) for e in audit_events(app)] == ["key:1", "key:1"]
