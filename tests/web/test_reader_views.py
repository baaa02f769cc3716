"""The reader's workstation API over HTTP (Flask test client, real embedded store): the live
assessment of a form being typed (``POST /api/v1/forms/assessment``) and the patient's timeline
(``GET /api/v1/patients/<id>/timeline``), with their errors, audit and links."""

from __future__ import annotations

import json
from typing import Any

import pytest
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.web import WebState, auth
from fhirnet.web.app import create_app
from fhirnet.web.openapi import build_openapi_document
from fhirnet.web.openapi.reader import add_reader
from fhirnet.web.schema_fields import ErrorsSchema
from tests.submissions import (
    NOW,
    RECIST,
    SUBMIT,
    counts,
    form,
    form_paths,
    post,
    set_answer,
    target,
)

ASSESS = "/api/v1/forms/assessment"
CODES = {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()}


@pytest.fixture
def app(settings: Settings) -> Flask:
    """Open access, the embedded store, a fixed clock that is not UTC."""
    app = create_app(settings, clock=lambda: NOW)
    app.config["TESTING"] = True
    return app


def store_of(app: Flask) -> EmbeddedStore:
    state: WebState = app.extensions["fhirnet"]
    store = state.backend.embedded_store()
    assert store is not None
    return store


@pytest.fixture
def with_baseline(client: FlaskClient) -> FlaskClient:
    assert post(client, form(RECIST, 1), SUBMIT).status_code == 201
    return client


def typed(sizes: dict[str, float]) -> dict[str, Any]:
    """The RECIST patient's follow-up of 2025-07-14 being typed (in-progress)."""
    resource = form(RECIST, 3)
    resource["status"] = "in-progress"
    for lesion_id, size in sizes.items():
        set_answer(target(resource, lesion_id), "lesion-size", "valueDecimal", size)
    return resource


def assess(client: FlaskClient, body: Any, content_type: str = "application/json") -> TestResponse:
    return client.post(ASSESS, data=json.dumps(body), content_type=content_type)


def answer_of(response: TestResponse, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/json"
    found: dict[str, Any] = json.loads(response.get_data())
    return found


def test_the_category_follows_the_sizes_with_the_numbers(with_baseline: FlaskClient) -> None:
    edits = [
        ({"T1": 30.0, "T2": 20.0, "T3": 14.0}, "PR", 64, -30.4),
        ({"T1": 30.0, "T2": 20.0, "T3": 15.0}, "SD", 65, -29.3),
        ({"T1": 50.0, "T2": 35.0, "T3": 26.0}, "PD", 111, 20.7),
    ]
    for sizes, overall, total, change in edits:
        found = answer_of(assess(with_baseline, typed(sizes)))

        assert found["assessable"] is True
        assert (found["overall"], found["sum_mm"]) == (overall, total)
        assert (found["baseline_sum_mm"], found["nadir_sum_mm"]) == (92, 92)
        assert found["change_from_baseline_pct"] == change
        assert found["change_from_nadir_pct"] == change
        assert found["criteria"] == "recist-1.1"
        assert found["reasons"]


def test_the_answer_has_the_contract_s_fields(with_baseline: FlaskClient) -> None:
    found = answer_of(assess(with_baseline, typed({"T1": 30.0, "T2": 20.0, "T3": 14.0})))

    assert list(found)[:2] == ["assessable", "missing"]
    assert {
        "criteria",
        "sum_mm",
        "baseline_sum_mm",
        "nadir_sum_mm",
        "change_from_baseline_pct",
        "change_from_nadir_pct",
        "target_response",
        "non_target_response",
        "new_lesion_response",
        "overall",
        "reasons",
        "warnings",
        "reader",
        "discordances",
    } <= set(found)
    assert (found["target_response"], found["non_target_response"]) == ("PR", "NON-CR/NON-PD")
    assert found["new_lesion_response"] == "absent"
    assert found["reader"] == {
        "overall": "PR",
        "response_vs_baseline": "PR",
        "response_vs_nadir": "SD",
    }


def test_a_different_conclusion_is_a_discordance(with_baseline: FlaskClient) -> None:
    found = answer_of(assess(with_baseline, typed({"T1": 30.0, "T2": 20.0, "T3": 15.0})))

    assert found["discordances"] == [
        {"item": "response-vs-baseline", "reader": "PR", "computed": "SD"}
    ]


def test_a_form_being_typed_is_200_with_what_is_missing(with_baseline: FlaskClient) -> None:
    resource = typed({"T1": 30.0})
    group = target(resource, "T3")
    group["item"] = [item for item in group["item"] if item["linkId"] != "lesion-size"]
    resource["item"] = [item for item in resource["item"] if item["linkId"] != "imaging-date"]

    found = answer_of(assess(with_baseline, resource))

    assert found["assessable"] is False
    assert [m["item"] for m in found["missing"]] == ["imaging-date"]
    # Once the date is there, the size the reader still owes is named.
    resource["item"].insert(0, form(RECIST, 3)["item"][0])
    again = answer_of(assess(with_baseline, resource))
    assert [m["item"] for m in again["missing"]] == ["target-lesion[2].lesion-size"]
    assert again["overall"] is None


def test_the_fhir_media_type_is_taken_too(with_baseline: FlaskClient) -> None:
    response = assess(
        with_baseline, typed({"T1": 30.0, "T2": 20.0, "T3": 14.0}), "application/fhir+json"
    )

    assert answer_of(response)["overall"] == "PR"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"resourceType": "Patient", "id": "x"}, {"$.resourceType", "$.questionnaire"}),
        (
            {"resourceType": "QuestionnaireResponse", "questionnaire": "http://example.org/Q"},
            {"$.questionnaire"},
        ),
        ({"resourceType": "QuestionnaireResponse", "questionnaire": 7}, {"$.questionnaire"}),
        ([1, 2], {"$"}),
        (
            {
                "resourceType": "QuestionnaireResponse",
                "questionnaire": "https://fhirnet.dev/fhir/Questionnaire/gep-net-imaging-crf",
                "item": "none",
            },
            {"$.item"},
        ),
    ],
)
def test_a_body_that_is_not_a_form_of_the_crf_is_422_naming_each_field(
    client: FlaskClient, body: Any, fields: set[str]
) -> None:
    found = answer_of(assess(client, body), 422)

    assert set(found["errors"]) == fields


def test_malformed_json_is_422_and_another_media_type_415(client: FlaskClient) -> None:
    bad = client.post(ASSESS, data="{", content_type="application/json")
    assert list(answer_of(bad, 422)["errors"]) == ["$"]
    text = client.post(ASSESS, data="{}", content_type="text/plain")
    assert text.status_code == 415
    assert "errors" in json.loads(text.get_data())


def test_nothing_is_written_but_the_audit_of_the_read(
    app: Flask, with_baseline: FlaskClient
) -> None:
    store = store_of(app)
    before = counts(store)
    events = store.search_page("AuditEvent", {"_count": "0"}).total

    for sizes in ({"T1": 30.0, "T2": 20.0, "T3": 14.0}, {"T1": 50.0, "T2": 35.0, "T3": 26.0}):
        answer_of(assess(with_baseline, typed(sizes)))

    assert counts(store) == before
    assert store.search_page("AuditEvent", {"_count": "0"}).total == events + 2


# --- the timeline ---------------------------------------------------------------------------


@pytest.fixture
def submitted(client: FlaskClient) -> FlaskClient:
    """Every example form of the RECIST patient submitted through the FHIR endpoint."""
    for number in range(1, len(form_paths(RECIST)) + 1):
        assert post(client, form(RECIST, number), SUBMIT).status_code == 201
    return client


def timeline(client: FlaskClient, patient: str = RECIST, **query: str) -> TestResponse:
    return client.get(f"/api/v1/patients/{patient}/timeline", query_string=query)


def test_each_exam_shows_what_its_stored_report_says(submitted: FlaskClient) -> None:
    found = answer_of(timeline(submitted))

    assert found["patient"] == RECIST
    assert (found["stream"], found["streams"]) == ("site", ["site"])
    exams = found["exams"]
    assert [e["overall"] for e in exams] == [None, "SD", "SD", "PR", "PR", "PR"]
    assert [e["sum_mm"] for e in exams] == [92, 82, 65, 60, 62, 67]
    assert [e["change_from_baseline_pct"] for e in exams] == [
        None,
        -10.9,
        -29.3,
        -34.8,
        -32.6,
        -27.2,
    ]
    for exam in exams:
        report = submitted.get(exam["diagnostic_report_url"])
        assert report.status_code == 200, exam["diagnostic_report_url"]
        stored = json.loads(report.get_data())
        assert stored["resourceType"] == "DiagnosticReport"
        assert stored["effectiveDateTime"][:10] == exam["date"]
        codes = [
            c["code"] for concept in stored.get("conclusionCode", []) for c in concept["coding"]
        ]
        assert [CODES[code] for code in codes][:1] == ([exam["overall"]] if exam["overall"] else [])
        form_answer = submitted.get(exam["questionnaire_response_url"])
        assert form_answer.status_code == 200
        assert json.loads(form_answer.get_data())["resourceType"] == "QuestionnaireResponse"


def test_the_links_are_urls_of_the_fhir_endpoint(submitted: FlaskClient) -> None:
    exam = answer_of(timeline(submitted))["exams"][0]

    assert exam["diagnostic_report_url"].startswith("http://localhost/fhir/DiagnosticReport/")
    assert exam["questionnaire_response_url"].startswith(
        "http://localhost/fhir/QuestionnaireResponse/"
    )


def test_the_chart_gets_the_baseline_nadir_thresholds_and_lesion_sizes(
    submitted: FlaskClient,
) -> None:
    found = answer_of(timeline(submitted))

    assert (found["baseline_date"], found["baseline_sum_mm"]) == ("2025-01-13", 92)
    assert (found["nadir_date"], found["nadir_sum_mm"]) == ("2025-10-13", 60)
    assert found["thresholds"]["partial_response_mm"] == 64.4
    assert found["thresholds"]["progression_mm"] == 72
    assert found["thresholds"]["basis"]
    lesions = found["exams"][2]["lesions"]
    assert [
        (lesion["id"], lesion["size_mm"]) for lesion in lesions if lesion["role"] == "target"
    ] == [
        ("T1", 30),
        ("T2", 20),
        ("T3", 15),
    ]
    discordant = [e["date"] for e in found["exams"] if e["discordances"]]
    assert discordant == ["2025-07-14"]


def test_the_timeline_read_is_audited(app: Flask, submitted: FlaskClient) -> None:
    store = store_of(app)
    events = store.search_page("AuditEvent", {"_count": "0"}).total

    answer_of(timeline(submitted))

    assert store.search_page("AuditEvent", {"_count": "0"}).total == events + 1


def test_an_unknown_patient_has_no_exams_and_a_bad_id_is_422(client: FlaskClient) -> None:
    assert answer_of(timeline(client, "nobody"))["exams"] == []
    assert list(answer_of(timeline(client, "not_an_id!"), 422)["errors"]) == ["$.patientId"]
    assert list(answer_of(timeline(client, stream="x" * 201), 422)["errors"]) == ["$.stream"]


# --- the OpenAPI piece ----------------------------------------------------------------------


def reader_document() -> dict[str, Any]:
    """The service's document with the reader's piece added (as the app's document will have it)."""
    spec = APISpec(
        title="fhirnet", version="0", openapi_version="3.1.0", plugins=[MarshmallowPlugin()]
    )
    spec.components.schema("Errors", schema=ErrorsSchema)
    add_reader(spec)
    document: dict[str, Any] = spec.to_dict()
    return document


def test_the_openapi_piece_documents_both_operations_with_their_scopes() -> None:
    paths = reader_document()["paths"]

    post_assess = paths["/api/v1/forms/assessment"]["post"]
    get_timeline = paths["/api/v1/patients/{patientId}/timeline"]["get"]
    for endpoint, operation in (("reader.assess", post_assess), ("reader.timeline", get_timeline)):
        needed = auth.required_permission(endpoint, {})
        also = [str(p) for p in auth.ALSO_NEEDED.get(endpoint, ())]
        assert operation["security"] == [{"bearer": [str(needed), *also]}]
        assert {"200", "401", "403", "422"} <= set(operation["responses"])


def test_a_real_answer_uses_only_documented_fields(with_baseline: FlaskClient) -> None:
    schemas = reader_document()["components"]["schemas"]
    live = answer_of(assess(with_baseline, typed({"T1": 30.0, "T2": 20.0, "T3": 15.0})))
    found = answer_of(timeline(with_baseline))

    assert set(live) == set(schemas["LiveAssessment"]["properties"])
    assert set(found) == set(schemas["PatientTimeline"]["properties"])
    exam_schema = next(name for name in schemas if "Exam" in name)
    assert set(found["exams"][0]) == set(schemas[exam_schema]["properties"])


def test_the_piece_fits_the_service_s_document() -> None:
    """Its schema names clash with no other schema of the document (same name: same schema,
    as when the piece is in it)."""
    service = build_openapi_document()["components"]["schemas"]
    mine = reader_document()["components"]["schemas"]

    for name in set(service) & set(mine):
        assert service[name] == mine[name], name
