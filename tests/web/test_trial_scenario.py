"""The multicenter trial scenario (tests/trials_scenario.py) end to end on the embedded store, the
web app in-process: the study, eight subjects, the site's and two central readers' real forms, one
adjudication, one withdrawal; the endpoints against the values worked by hand in the table. Then
the bad inputs: each refused with nothing written (every resource of the study and its forms at
the same version; the refusal's AuditEvent is the only write)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.web.app import create_app
from tests import trials_scenario as scenario
from tests.submissions import NOW

STUDY_ID = "NET-TRIAL-1"
URL = f"/api/v1/studies/{STUDY_ID}"
PREFIX = "trial"


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore.open(tmp_path / "data")


@pytest.fixture
def client(tmp_path: Path, store: EmbeddedStore) -> FlaskClient:
    settings = Settings(data_dir=tmp_path, auth="none")
    app = create_app(settings, store=store, clock=lambda: NOW, durable=False)
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture
def played(client: FlaskClient) -> dict[str, object]:
    """The scenario played; its endpoints' answer."""
    return scenario.run(client, STUDY_ID, PREFIX)


def test_the_trial_endpoints_are_the_values_worked_by_hand(
    played: dict[str, object], store: EmbeddedStore
) -> None:
    scenario.check_endpoints(played)
    reads = sum(len(r) for s in scenario.SUBJECTS for _, r in s.readers)
    assert scenario.counts(store, ["QuestionnaireResponse", "DiagnosticReport"]) == {
        "QuestionnaireResponse": reads,
        "DiagnosticReport": reads,
    }
    assert reads == 71  # 9 + 9 + 12 + 6 + 9 + 9 + 10 + 7: each subject's three readers


def test_unknown_study_is_404_and_nothing_is_written(
    played: dict[str, object], client: FlaskClient, store: EmbeddedStore
) -> None:
    before = scenario.versions(store)
    subject = scenario.enrolment(PREFIX, scenario.SUBJECTS[0]) | {"patient": "Patient/new-1"}

    answers = [
        client.get("/api/v1/studies/NO-SUCH-STUDY/endpoints"),
        client.get("/api/v1/studies/NO-SUCH-STUDY"),
        client.put("/api/v1/studies/NO-SUCH-STUDY/subjects/001-99", json=subject),
        client.put(
            "/api/v1/studies/NO-SUCH-STUDY/subjects/001-01/adjudication",
            json={"accept": "RADIOLOGIST 1", "by": scenario.ADJUDICATOR},
        ),
        client.delete("/api/v1/studies/NO-SUCH-STUDY/subjects/001-01?date=2025-06-01"),
    ]

    assert [a.status_code for a in answers] == [404] * 5
    assert scenario.versions(store) == before


def test_a_subject_enrolled_twice_is_409_and_nothing_is_written(
    played: dict[str, object], client: FlaskClient, store: EmbeddedStore
) -> None:
    before = scenario.versions(store)
    first = scenario.SUBJECTS[0]
    # The same patient under a second subject number.
    again = client.put(f"{URL}/subjects/001-99", json=scenario.enrolment(PREFIX, first))
    # The same subject number for another patient.
    taken = client.put(
        f"{URL}/subjects/{first.number}",
        json=scenario.enrolment(PREFIX, first) | {"patient": "Patient/someone-else"},
    )

    assert (again.status_code, taken.status_code) == (409, 409), (again.json, taken.json)
    assert scenario.versions(store) == before


def test_a_reference_date_after_a_follow_up_form_is_422_and_nothing_is_written(
    played: dict[str, object], client: FlaskClient, store: EmbeddedStore
) -> None:
    """docs/trials.md "Refusals": study day 1 on or after a stored follow-up would turn that
    follow-up into a pre-treatment scan; the baseline before the reference date is expected."""
    before = scenario.versions(store)
    first = scenario.SUBJECTS[0]  # follow-ups 2025-03-11 and 2025-05-06
    body = scenario.enrolment(PREFIX, first)

    after = client.put(
        f"{URL}/subjects/{first.number}", json=body | {"referenceDate": "2025-04-01"}
    )
    on = client.put(f"{URL}/subjects/{first.number}", json=body | {"referenceDate": "2025-03-11"})
    unchanged = client.put(f"{URL}/subjects/{first.number}", json=body)

    assert after.status_code == 422, after.json
    assert list(after.get_json()["errors"]) == ["$.referenceDate"]
    assert on.status_code == 422, on.json
    assert unchanged.status_code == 200  # the stored enrolment again: allowed, nothing new
    assert scenario.versions(store) == before


def test_adjudication_naming_a_reader_not_in_the_study_is_422_and_nothing_is_written(
    played: dict[str, object], client: FlaskClient, store: EmbeddedStore
) -> None:
    before = scenario.versions(store)
    url = f"{URL}/subjects/001-04/adjudication"

    unknown_label = client.put(url, json={"accept": "RADIOLOGIST 9", "by": scenario.ADJUDICATOR})
    not_adjudicator = client.put(
        url, json={"accept": "RADIOLOGIST 2", "by": "Practitioner/not-in-the-study"}
    )

    assert unknown_label.status_code == 422
    assert list(unknown_label.get_json()["errors"]) == ["$.accept"]
    assert not_adjudicator.status_code == 422
    assert list(not_adjudicator.get_json()["errors"]) == ["$.by"]
    assert scenario.versions(store) == before
    endpoints = client.get(f"{URL}/endpoints").get_json()
    (subject,) = (s for s in endpoints["subjects"] if s["subjectId"] == "001-04")
    assert subject["adjudication"]["accepted"] == "RADIOLOGIST 1"  # the stored decision stays


def test_a_form_by_a_reader_not_in_the_study_is_a_site_read(
    played: dict[str, object], client: FlaskClient
) -> None:
    """Not an error (docs/trials.md "Independent read streams"): a reader the study does not name
    as central is read as the site's. 001-01's site stream gains a WEEK 24 visit; the central
    readers' evaluations are unchanged."""
    first = scenario.SUBJECTS[0]
    outsider = "Practitioner/visiting-radiologist"
    read = scenario.scan(scenario.WEEK_24, 27, 17, 14)  # 58 mm: -42 %, PR
    resource = scenario.scan_form(PREFIX, first, outsider, 3, read)

    answer = client.post(
        "/fhir/QuestionnaireResponse/$submit",
        data=json.dumps(resource),
        content_type="application/fhir+json",
    )

    assert answer.status_code == 201, answer.get_data(as_text=True)
    report = answer.get_json()
    assert report["resultsInterpreter"] == [{"reference": outsider}]
    assert not report["conclusion"].startswith("Central read")
    endpoints = client.get(f"{URL}/endpoints").get_json()
    (subject,) = (s for s in endpoints["subjects"] if s["subjectId"] == first.number)
    site, central_1, central_2, central = subject["evaluations"]
    assert [v["date"] for v in site["endpoints"]["visits"]][-1] == scenario.WEEK_24
    assert site["endpoints"]["visits"][-1]["overallResponse"] == "PR"
    assert site["endpoints"]["progressionFreeSurvival"]["days"] == 169  # censored at WEEK 24
    for evaluation in (central_1, central_2, central):
        assert [v["date"] for v in evaluation["endpoints"]["visits"]][-1] == scenario.WEEK_16
