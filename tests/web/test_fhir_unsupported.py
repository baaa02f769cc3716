"""What fhirnet does not do, said in FHIR: history, operations other than its own, write
interactions on what it stores, and ``OPTIONS`` everywhere (R4 http.html). Every such answer is
an OperationOutcome with one ``not-supported`` error issue, never werkzeug's generic 404."""

from __future__ import annotations

import json

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

FHIR_JSON = "application/fhir+json; charset=utf-8"


def not_supported(response: TestResponse, status: int) -> str:
    """The diagnostics of the single ``not-supported`` issue of a FHIR error answer."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == FHIR_JSON
    outcome = json.loads(response.get_data())
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert (issue["severity"], issue["code"]) == ("error", "not-supported")
    diagnostics: str = issue["diagnostics"]
    return diagnostics


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/_history",
        "/fhir/Observation/_history",
        "/fhir/DiagnosticReport/abc/_history",
        "/fhir/Questionnaire/gep-net-imaging-crf/_history",
        "/fhir/Patient/_history",
    ],
    ids=["system", "type", "instance", "conformance-instance", "unserved-type"],
)
def test_history_is_400_not_supported_and_points_at_vread(client: FlaskClient, path: str) -> None:
    assert "vread" in not_supported(client.get(path), 400)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/fhir/ValueSet/$expand", "$expand"),
        ("/fhir/ValueSet/assessment-type/$expand", "$expand"),
        ("/fhir/CodeSystem/$lookup", "$lookup"),
        ("/fhir/ConceptMap/$translate", "$translate"),
        ("/fhir/Patient/p1/$everything", "$everything"),
        ("/fhir/$meta", "$meta"),
        ("/fhir/Observation/abc/$meta", "$meta"),
        ("/fhir/QuestionnaireResponse/$populate", "$populate"),
        ("/fhir/$anything-else", "$anything-else"),
    ],
)
def test_other_operations_are_400_not_supported_naming_those_offered(
    client: FlaskClient, method: str, path: str, operation: str
) -> None:
    message = not_supported(client.open(path, method=method, json={}), 400)
    assert operation in message
    assert "QuestionnaireResponse/$validate" in message
    assert "Group/[id]/$export" in message


def test_an_offered_operation_with_another_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.get("/fhir/QuestionnaireResponse/$validate")
    not_supported(response, 405)
    assert "POST" in response.headers["Allow"]
    assert "GET" not in response.headers["Allow"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/fhir/$export"),
        ("TRACE", "/fhir/Patient/$export"),
        ("DELETE", "/fhir/Group/g1/$export"),
        ("POST", "/fhir/$export-status/some-job"),
    ],
)
def test_a_bulk_data_url_with_another_method_is_405_with_allow(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method)
    not_supported(response, 405)
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("method", "path", "interaction"),
    [
        ("PATCH", "/fhir/Observation/abc", "patch"),
        ("DELETE", "/fhir/Observation/abc", "delete"),
        ("PUT", "/fhir/DiagnosticReport/abc", "update"),
        ("DELETE", "/fhir/Observation", "delete"),
        ("PATCH", "/fhir/Questionnaire/gep-net-imaging-crf", "patch"),
        ("POST", "/fhir/Observation", "create"),
    ],
)
def test_write_interactions_are_405_with_allow(
    client: FlaskClient, method: str, path: str, interaction: str
) -> None:
    response = client.open(path, method=method)
    assert f"{interaction} interaction" in not_supported(response, 405)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed
    assert method not in allowed


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/fhir/metadata", {"GET"}),
        ("/fhir/Observation/abc", {"GET"}),
        ("/fhir/Observation", {"GET"}),
        ("/fhir/QuestionnaireResponse", {"GET", "POST"}),
        ("/fhir/QuestionnaireResponse/$validate", {"POST"}),
        ("/fhir/QuestionnaireResponse/$submit", {"POST"}),
        ("/fhir", {"POST"}),
        ("/fhir/DiagnosticReport/abc/_history/1", {"GET"}),
    ],
)
def test_options_is_200_with_allow_and_no_body(
    client: FlaskClient, path: str, methods: set[str]
) -> None:
    response = client.options(path)
    assert response.status_code == 200
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed - {"HEAD", "OPTIONS"} == methods


def test_a_url_that_is_no_fhir_interaction_is_404_in_fhir(client: FlaskClient) -> None:
    response = client.get("/fhir/Observation/abc/def/ghi")
    assert response.status_code == 404
    outcome = json.loads(response.get_data())
    assert outcome["issue"][0]["code"] == "not-found"
    assert "/fhir/metadata" in outcome["issue"][0]["diagnostics"]
