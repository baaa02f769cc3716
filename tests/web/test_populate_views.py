"""SDC ``$populate`` over HTTP (fhirnet.web.populate_views): a FHIR operation, Parameters in
(``POST``) or query parameters (``GET``), Parameters with the pre-filled QuestionnaireResponse
out, for each criteria's example patient submitted through the FHIR endpoint; bad input is a
4xx OperationOutcome. Access scopes: ``tests/web/test_auth.py``."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fhirnet.fhir.populate import follow_up
from fhirnet.fhir.resources import model_class, parse
from fhirnet.ports import Json
from tests.fhir.test_populate import (
    PERCIST,
    QUESTIONNAIRE,
    answers,
    assessed,
    exam_count,
    forms_up_to,
)
from tests.submissions import CHOI, IRECIST, RECIST, body, form, issues_of, post

INSTANCE = "/fhir/Questionnaire/gep-net-imaging-crf/$populate"
TYPE = "/fhir/Questionnaire/$populate"
READER = "Practitioner/reader-1"


def submit_up_to(client: FlaskClient, patient: str, last: int) -> list[Json]:
    forms = forms_up_to(patient, last)
    for resource in forms:
        response = post(client, resource)
        assert response.status_code == 201, response.get_data(as_text=True)
    return forms


def parameters(**values: Any) -> Json:
    """A Parameters body: ``subject`` and ``author`` as References, ``stream`` as a context."""
    entries: list[Json] = []
    for name in ("subject", "author"):
        if name in values:
            entries.append({"name": name, "valueReference": {"reference": values[name]}})
    if "stream" in values:
        entries.append(
            {
                "name": "context",
                "part": [
                    {"name": "name", "valueString": "stream"},
                    {"name": "content", "valueString": values["stream"]},
                ],
            }
        )
    return {"resourceType": "Parameters", "parameter": entries}


def populated(response: TestResponse) -> tuple[Json, Json | None]:
    """The ``response`` QuestionnaireResponse and the ``issues`` OperationOutcome, if any, of a
    valid Parameters answer."""
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = body(response)
    assert answer["resourceType"] == "Parameters"
    assert parse(answer, model_class("Parameters")).issues == ()
    by_name = {p["name"]: p["resource"] for p in answer["parameter"]}
    assert set(by_name) <= {"response", "issues"}
    return by_name["response"], by_name.get("issues")


@pytest.mark.parametrize("patient", [RECIST, IRECIST, CHOI, PERCIST])
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("url", [INSTANCE, TYPE], ids=["instance", "type"])
def test_each_criteria_s_patient_gets_its_follow_up_pre_filled(
    client: FlaskClient, patient: str, method: str, url: str
) -> None:
    forms = submit_up_to(client, patient, exam_count(patient) - 1)

    if method == "GET":
        answer = client.get(url, query_string={"subject": f"Patient/{patient}", "author": READER})
    else:
        answer = client.post(url, json=parameters(subject=f"Patient/{patient}", author=READER))

    response, issues = populated(answer)
    assert issues is None
    assert response == follow_up_of(forms, patient)
    assert parse(response, model_class("QuestionnaireResponse")).issues == ()


def follow_up_of(forms: list[Json], patient: str) -> Json:
    return follow_up(
        assessed(forms), questionnaire=QUESTIONNAIRE, subject=f"Patient/{patient}", author=READER
    )


def test_the_pre_filled_form_validates_at_the_server_s_own_validate(client: FlaskClient) -> None:
    submit_up_to(client, RECIST, 3)
    response, _ = populated(client.get(INSTANCE, query_string={"subject": f"Patient/{RECIST}"}))

    checked = client.post("/fhir/QuestionnaireResponse/$validate", json=response)

    assert checked.status_code == 200, checked.get_data(as_text=True)
    issues = body(checked)["issue"]
    assert {i["severity"] for i in issues} <= {"warning", "information"}


def test_an_unknown_patient_gets_a_blank_baseline(client: FlaskClient) -> None:
    response, issues = populated(client.post(TYPE, json=parameters(subject="Patient/nobody")))

    assert [a["code"] for a in answers(response, "assessment-type")] == ["baseline"]
    assert response["subject"] == {"reference": "Patient/nobody"}
    assert response["status"] == "in-progress"
    assert issues is None


def test_what_could_not_be_filled_comes_as_issues(client: FlaskClient) -> None:
    assert post(client, form(IRECIST, 0)).status_code == 201  # a pre-baseline scan only

    response, issues = populated(client.get(TYPE, query_string={"subject": f"Patient/{IRECIST}"}))

    assert [a["code"] for a in answers(response, "assessment-type")] == ["baseline"]
    assert issues is not None
    assert issues["resourceType"] == "OperationOutcome"
    assert any("blank baseline" in i["diagnostics"] for i in issues["issue"])


def test_the_stream_is_chosen_by_get_and_post_alike(client: FlaskClient) -> None:
    submit_up_to(client, RECIST, 2)

    by_get, _ = populated(
        client.get(TYPE, query_string={"subject": f"Patient/{RECIST}", "stream": "site"})
    )
    by_post, _ = populated(
        client.post(TYPE, json=parameters(subject=f"Patient/{RECIST}", stream="site"))
    )

    assert by_get == by_post
    assert answers(by_get, "baseline-date") == ["2025-01-13"]


def test_an_author_context_names_the_reader(client: FlaskClient) -> None:
    body_ = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueReference": {"reference": "Patient/nobody"}},
            {
                "name": "context",
                "part": [
                    {"name": "name", "valueString": "author"},
                    {"name": "content", "valueReference": {"reference": READER}},
                ],
            },
        ],
    }

    response, _ = populated(client.post(TYPE, json=body_))

    assert response["author"] == {"reference": READER}


@pytest.mark.parametrize(
    ("method", "sent", "says"),
    [
        ("GET", {}, "needs the subject"),
        ("GET", {"subject": "Group/x"}, "must be a Patient"),
        ("GET", {"subject": "nonsense"}, "must be a Patient"),
        ("GET", {"subject": "Patient/x", "stream": "x" * 201}, "stream"),
        ("GET", {"subject": "Patient/x", "author": "Patient/x"}, "author"),
        ("GET", {"subject": "Patient/x", "colour": "blue"}, "not supported"),
        ("POST", {"resourceType": "Bundle"}, "Parameters"),
        ("POST", [1, 2], "Parameters"),
        ("POST", {"resourceType": "Parameters"}, "needs the subject"),
        ("POST", parameters(subject="Group/x"), "must be a Patient"),
        (
            "POST",
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "subject", "valueInteger": 3}],
            },
            "no value",
        ),
        (
            "POST",
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "subject", "valueReference": {"reference": "Patient/a"}},
                    {"name": "subject", "valueReference": {"reference": "Patient/b"}},
                ],
            },
            "2 times",
        ),
        (
            "POST",
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "subject", "valueReference": {"reference": "Patient/a"}},
                    {"name": "questionnaire", "resource": {"resourceType": "Questionnaire"}},
                ],
            },
            "not supported",
        ),
        (
            "POST",
            {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "subject", "valueReference": {"reference": "Patient/a"}},
                    {"name": "context", "part": [{"name": "name", "valueString": "stream"}]},
                ],
            },
            "context",
        ),
    ],
    ids=[
        "no-subject",
        "group-subject",
        "no-reference",
        "overlong-stream",
        "author-not-a-reader",
        "unknown-query-parameter",
        "not-parameters",
        "not-an-object",
        "no-subject-parameter",
        "group-subject-parameter",
        "subject-without-reference",
        "two-subjects",
        "unsupported-sdc-input",
        "context-without-content",
    ],
)
def test_bad_input_is_a_400_operation_outcome(
    client: FlaskClient, method: str, sent: Any, says: str
) -> None:
    if method == "GET":
        answer = client.get(TYPE, query_string=sent)
    else:
        answer = client.post(TYPE, json=sent)

    issues = issues_of(answer, 400)
    assert says in issues[0]["diagnostics"]


def test_a_stream_that_names_no_reader_of_the_patient_is_a_422(client: FlaskClient) -> None:
    issues = issues_of(
        client.get(TYPE, query_string={"subject": "Patient/x", "stream": "everyone"}), 422
    )

    assert "stream" in issues[0]["diagnostics"]


def test_another_questionnaire_is_a_404(client: FlaskClient) -> None:
    issues = issues_of(
        client.get("/fhir/Questionnaire/other-form/$populate?subject=Patient/x"), 404
    )
    assert "gep-net-imaging-crf" in issues[0]["diagnostics"]
    issues = issues_of(
        client.get(TYPE, query_string={"subject": "Patient/x", "canonical": "http://x.org/Q"}),
        404,
    )
    assert issues[0]["code"] == "not-found"


def test_the_form_s_canonical_is_accepted_with_any_version(client: FlaskClient) -> None:
    canonical = QUESTIONNAIRE.replace("|0.1.0", "|9.9.9")

    populated(client.get(TYPE, query_string={"subject": "Patient/x", "canonical": canonical}))


def test_only_json_is_served(client: FlaskClient) -> None:
    answer = client.get(
        TYPE, query_string={"subject": "Patient/x"}, headers={"Accept": "application/fhir+xml"}
    )

    issues_of(answer, 406)


def test_the_read_writes_one_audit_event_naming_the_patient(client: FlaskClient) -> None:
    populated(client.get(TYPE, query_string={"subject": "Patient/nobody"}))

    events = body(client.get("/fhir/AuditEvent", query_string={"entity": "Patient/nobody"}))

    assert events["total"] == 1
