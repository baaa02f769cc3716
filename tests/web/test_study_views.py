"""The study API over HTTP (fhirnet.web.study_views) on the embedded store: statuses, bodies,
field-level errors, idempotent PUTs, withdrawal, and both resources served by the FHIR endpoint."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests.submissions import NOW, RECIST, form

STUDY_URL = "/api/v1/studies/NET-01"
SUBJECT_URL = f"{STUDY_URL}/subjects/001-0001"
STUDY: dict[str, Any] = {
    "title": "Lutetium versus octreotide in midgut NET",
    "criteria": "recist-1.1",
    "options": {"confirmationRequired": True, "sdMinDays": 42},
    "arms": [{"code": "A", "name": "177Lu-DOTATATE"}, {"code": "B", "name": "Octreotide LAR"}],
    "sites": [{"id": "001", "name": "Uppsala"}],
    "readers": [
        {"reference": "Practitioner/reader-1", "role": "central", "label": "RADIOLOGIST 1"}
    ],
    "schedule": [{"visit": "WEEK 8", "day": 57, "windowDays": 7}],
}
SUBJECT: dict[str, Any] = {
    "patient": f"Patient/{RECIST}",
    "site": "001",
    "arm": "A",
    "referenceDate": "2025-01-14",
    "status": "on-study",
}


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    app = create_app(Settings(data_dir=tmp_path / "data", auth="none"), clock=lambda: NOW)
    app.config["TESTING"] = True
    return app.test_client()


def test_a_study_is_created_then_answered_unchanged_then_updated(client: FlaskClient) -> None:
    created = client.put(STUDY_URL, json=STUDY)
    again = client.put(STUDY_URL, json=STUDY)
    changed = client.put(STUDY_URL, json={**STUDY, "title": "New title"})
    read = client.get(STUDY_URL)

    assert [r.status_code for r in (created, again, changed, read)] == [201, 200, 200, 200]
    body = created.get_json()
    assert {k: body[k] for k in STUDY} == STUDY
    assert body["researchStudy"].startswith("ResearchStudy/")
    assert read.get_json()["title"] == "New title"
    stored = client.get(f"/fhir/{body['researchStudy']}").get_json()
    assert stored["meta"]["versionId"] == "2"  # the identical PUT wrote no version


def test_subjects_are_enrolled_read_and_withdrawn(client: FlaskClient) -> None:
    client.put(STUDY_URL, json=STUDY)

    created = client.put(SUBJECT_URL, json=SUBJECT)
    again = client.put(SUBJECT_URL, json=SUBJECT)
    read = client.get(SUBJECT_URL)
    withdrawn = client.delete(f"{SUBJECT_URL}?date=2025-06-01")

    assert [r.status_code for r in (created, again, read, withdrawn)] == [201, 200, 200, 200]
    assert read.get_json() == {
        "studyId": "NET-01",
        "subjectId": "001-0001",
        **SUBJECT,
        "withdrawalDate": None,
        "researchSubject": created.get_json()["researchSubject"],
    }
    assert withdrawn.get_json()["status"] == "withdrawn"
    assert withdrawn.get_json()["withdrawalDate"] == "2025-06-01"
    assert client.delete(STUDY_URL).status_code == 409


def test_both_resources_are_served_and_searchable_on_the_fhir_endpoint(
    client: FlaskClient,
) -> None:
    study = client.put(STUDY_URL, json=STUDY).get_json()
    subject = client.put(SUBJECT_URL, json=SUBJECT).get_json()

    assert client.get(f"/fhir/{study['researchStudy']}").status_code == 200
    assert client.get(f"/fhir/{study['group']}").get_json()["member"][0]["entity"] == {
        "reference": f"Patient/{RECIST}"
    }
    for query in (
        "identifier=https://fhirnet.dev/fhir/sid/research-study/NET-01/subject|001-0001",
        f"patient=Patient/{RECIST}",
        f"individual=Patient/{RECIST}",
        f"study={study['researchStudy']}",
        "status=on-study",
    ):
        found = client.get(f"/fhir/ResearchSubject?{query}").get_json()
        assert [e["resource"]["id"] for e in found["entry"] if e["search"]["mode"] == "match"] == [
            subject["researchSubject"].split("/")[1]
        ], query
    found = client.get(
        "/fhir/ResearchStudy?identifier=https://fhirnet.dev/fhir/sid/research-study|NET-01"
    )
    assert found.get_json()["total"] == 1


def test_reading_a_subject_writes_an_audit_event_naming_the_patient(client: FlaskClient) -> None:
    client.put(STUDY_URL, json=STUDY)
    client.put(SUBJECT_URL, json=SUBJECT)
    client.get(SUBJECT_URL)

    events = client.get(f"/fhir/AuditEvent?patient=Patient/{RECIST}&subtype=read").get_json()
    assert events["total"] >= 1


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({**STUDY, "criteria": "who"}, "$.criteria"),
        ({**STUDY, "arms": []}, "$.arms"),
        ({**STUDY, "arms": [STUDY["arms"][0], STUDY["arms"][0]]}, "$.arms"),
        (
            {**STUDY, "readers": [{**STUDY["readers"][0], "reference": "Patient/x"}]},
            "$.readers[0].reference",
        ),
        ({**STUDY, "readers": [{**STUDY["readers"][0], "role": "chief"}]}, "$.readers[0].role"),
        ({**STUDY, "options": {"sdMinDays": -1}}, "$.options.sdMinDays"),
        (
            {**STUDY, "schedule": [{"visit": "W8", "day": 0.5, "windowDays": 7}]},
            "$.schedule[0].day",
        ),
        ({**STUDY, "extra": 1}, "$.extra"),
    ],
)
def test_a_bad_study_body_is_a_field_level_422_and_writes_nothing(
    client: FlaskClient, body: dict[str, Any], path: str
) -> None:
    response = client.put(STUDY_URL, json=body)

    assert response.status_code == 422
    assert path in response.get_json()["errors"]
    assert client.get(STUDY_URL).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "path"),
    [
        ({"arm": "Z"}, 422, "$.arm"),
        ({"site": "999"}, 422, "$.site"),
        ({"status": "withdrawn"}, 422, "$.status"),
        ({"status": "enrolled"}, 422, "$.status"),
        ({"patient": "Practitioner/x"}, 422, "$.patient"),
        ({"referenceDate": "2025-13-01"}, 422, "$.referenceDate"),
        ({"referenceDate": "2025-05-01"}, 422, "$.referenceDate"),  # after a follow-up form
    ],
)
def test_a_bad_subject_is_refused_at_its_field(
    client: FlaskClient, change: dict[str, str], status: int, path: str
) -> None:
    client.put(STUDY_URL, json=STUDY)
    assert client.post("/fhir/QuestionnaireResponse", json=form(RECIST, 1)).status_code == 201
    assert client.post("/fhir/QuestionnaireResponse", json=form(RECIST, 2)).status_code == 201

    response = client.put(SUBJECT_URL, json={**SUBJECT, **change})

    assert response.status_code == status, response.get_json()
    assert path in response.get_json()["errors"]
    assert client.get(SUBJECT_URL).status_code == 404


def test_conflicting_enrolments_are_409_and_unknown_ones_404(client: FlaskClient) -> None:
    client.put(STUDY_URL, json=STUDY)
    client.put(SUBJECT_URL, json=SUBJECT)
    other = copy.deepcopy(SUBJECT)
    other["patient"] = "Patient/someone-else"

    taken = client.put(SUBJECT_URL, json=other)
    twice = client.put(f"{STUDY_URL}/subjects/001-0002", json=SUBJECT)

    assert (taken.status_code, twice.status_code) == (409, 409)
    assert "$.patient" in taken.get_json()["errors"]
    assert client.put("/api/v1/studies/NOPE/subjects/1", json=SUBJECT).status_code == 404
    assert client.get("/api/v1/studies/NOPE").status_code == 404
    assert client.get(f"{STUDY_URL}/subjects/nobody").status_code == 404
    assert client.delete(f"{STUDY_URL}/subjects/nobody").status_code == 404
    assert client.delete(f"{SUBJECT_URL}?date=yesterday").status_code == 422
    assert client.put("/api/v1/studies/bad id!", json=STUDY).status_code == 422


def test_an_empty_study_is_deleted(client: FlaskClient) -> None:
    client.put(STUDY_URL, json=STUDY)

    assert client.delete(STUDY_URL).status_code == 204
    assert client.get(STUDY_URL).status_code == 404
