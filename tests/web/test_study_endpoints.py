"""The study endpoints and adjudication over HTTP (fhirnet.web.study_views) on the embedded
store, with access control on: the example RECIST patient's six real forms (author
Practitioner/reader-nuclear-radiology, the study's central RADIOLOGIST 1) submitted through the
FHIR endpoint, read back as endpoints by a statistician's key that may not read forms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests.submissions import NOW, RECIST, form, post

FULL_KEY = "full-access-key-0123456789"
#: A statistician: the study, its subjects, their reports; no QuestionnaireResponse.
STATISTICIAN = "statistician-key-0123456789"
STAT_SCOPES = ("system/ResearchStudy.r", "system/ResearchSubject.r", "system/DiagnosticReport.r")
#: The same without DiagnosticReport.
NO_REPORTS = "no-reports-key-0123456789"
STUDY_URL = "/api/v1/studies/NET-03"
STUDY: dict[str, Any] = {
    "title": "Real forms, one central reader",
    "criteria": "recist-1.1",
    "options": {"confirmationRequired": True, "confirmationMinDays": 28, "sdMinDays": 42},
    "arms": [{"code": "A", "name": "177Lu-DOTATATE"}],
    "sites": [{"id": "001", "name": "Uppsala"}],
    "readers": [
        {
            "reference": "Practitioner/reader-nuclear-radiology",
            "role": "central",
            "label": "RADIOLOGIST 1",
        },
        {"reference": "Practitioner/reader-2", "role": "central", "label": "RADIOLOGIST 2"},
    ],
    "schedule": [{"visit": "WEEK 13", "day": 91, "windowDays": 7}],
}
SUBJECT = {"patient": f"Patient/{RECIST}", "site": "001", "arm": "A", "referenceDate": "2025-01-14"}


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys=((FULL_KEY, ()), (STATISTICIAN, STAT_SCOPES), (NO_REPORTS, STAT_SCOPES[:2])),
    )
    app = create_app(settings, clock=lambda: NOW)
    app.config["TESTING"] = True
    client = app.test_client()
    full = headers(FULL_KEY)
    assert client.put(STUDY_URL, json=STUDY, headers=full).status_code == 201
    enrolled = client.put(f"{STUDY_URL}/subjects/001-0001", json=SUBJECT, headers=full)
    assert enrolled.status_code == 201, enrolled.get_json()
    for number in range(1, 7):
        submitted = post(client, form(RECIST, number), **full)
        assert submitted.status_code in (200, 201), submitted.get_data(as_text=True)
    return client


def test_a_statistician_reads_the_endpoints_of_real_forms_without_reading_forms(
    client: FlaskClient,
) -> None:
    answer = client.get(f"{STUDY_URL}/endpoints", headers=headers(STATISTICIAN))
    forms = client.get("/fhir/QuestionnaireResponse?patient=x", headers=headers(STATISTICIAN))

    assert answer.status_code == 200, answer.get_json()
    assert forms.status_code == 403
    body = answer.get_json()
    assert "Patient/" not in json.dumps(body)  # derived numbers, no patient id
    assert "resourceType" not in json.dumps(body)  # no resource
    (subject,) = body["subjects"]
    assert [e["evaluator"] for e in subject["evaluations"]] == ["RADIOLOGIST 1", "CENTRAL"]
    central = subject["evaluations"][1]
    assert (central["basis"], central["readBy"]) == ("SINGLE READER", "RADIOLOGIST 1")
    endpoints = central["endpoints"]
    # The example's reads: baseline 2025-01-13 (day -1), SD 2025-04-14 (day 91, WEEK 13),
    # SD 2025-07-14, PR 2025-10-13, PR 2026-01-12, PR 2026-04-13: the PR of 2025-10-13 is
    # confirmed by the PR 91 days later.
    assert [
        (v["date"], v["studyDay"], v["visit"], v["overallResponse"]) for v in endpoints["visits"]
    ][:2] == [("2025-01-13", -1, "UNSCHEDULED", None), ("2025-04-14", 91, "WEEK 13", "SD")]
    assert endpoints["confirmedBestOverallResponse"] == {"response": "PR", "date": "2025-10-13"}
    assert endpoints["firstResponseDate"] == "2025-10-13"
    # DoR censored at the last adequate assessment 2026-04-13: 182 + 1 days.
    assert endpoints["durationOfResponse"]["days"] == 183
    # PFS censored at 2026-04-13: 2025-01-14 to 2026-04-13 is 454 days, + 1.
    assert endpoints["progressionFreeSurvival"]["days"] == 455
    assert endpoints["progressionFreeSurvival"]["censoringReason"] == "LAST ADEQUATE ASSESSMENT"
    # Arm A: 1 of 1 responds: Clopper-Pearson lower = 0.025^(1/1) = 0.025, upper 1.
    central_a = next(s for s in body["summaries"] if s["evaluator"] == "CENTRAL")
    assert central_a["objectiveResponse"] == {
        "count": 1,
        "n": 1,
        "rate": 1.0,
        "lower": 0.025,
        "upper": 1.0,
        "confidence": 0.95,
    }


def test_the_endpoints_need_read_on_the_reports(client: FlaskClient) -> None:
    refused = client.get(f"{STUDY_URL}/endpoints", headers=headers(NO_REPORTS))

    assert refused.status_code == 403
    assert 'scope="system/DiagnosticReport.r"' in refused.headers["WWW-Authenticate"]


def test_adjudication_answers(client: FlaskClient) -> None:
    full = headers(FULL_KEY)
    url = f"{STUDY_URL}/subjects/001-0001/adjudication"
    body = {"accept": "RADIOLOGIST 1", "by": "Practitioner/adj-1"}

    agreed = client.put(url, json=body, headers=full)  # one central reader: nothing to settle
    unknown = client.put(f"{STUDY_URL}/subjects/009-0009/adjudication", json=body, headers=full)
    bad = client.put(url, json={"accept": "", "by": "Patient/x", "extra": 1}, headers=full)
    statistician = client.put(url, json=body, headers=headers(STATISTICIAN))

    assert agreed.status_code == 422
    assert list(agreed.get_json()["errors"]) == ["$.accept"]
    assert unknown.status_code == 404
    assert bad.status_code == 422
    assert set(bad.get_json()["errors"]) == {"$.accept", "$.by", "$.extra"}
    assert statistician.status_code == 403


def test_reader_labels_may_not_name_an_evaluation(client: FlaskClient) -> None:
    readers = [{"reference": "Practitioner/r", "role": "central", "label": "CENTRAL"}]
    answer = client.put(
        "/api/v1/studies/NET-04", json={**STUDY, "readers": readers}, headers=headers(FULL_KEY)
    )

    assert answer.status_code == 422
    assert list(answer.get_json()["errors"]) == ["$.readers[0].label"]
