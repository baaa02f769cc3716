"""``GET /api/v1/openapi.json`` describes the assessment endpoint from the same schemas that
validate it, so the document cannot drift from what the API accepts and answers; it lists every
route of the app, and the token and scope each needs. (``tests/web/test_schemathesis.py`` holds
every operation to what the document says.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.access import Permission
from fhirnet.adapters.store import search_support
from fhirnet.criteria.models import Criteria, NonTargetStatus
from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.web import auth
from fhirnet.web.fhir_http import FORMAT_PARAMETERS, FORMAT_VALUES

ValidBody = Callable[..., dict[str, Any]]


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a ``$ref`` into ``components`` (or return an inline schema)."""
    if "$ref" not in schema:
        return schema
    prefix = "#/components/schemas/"
    assert schema["$ref"].startswith(prefix)
    resolved: dict[str, Any] = document["components"]["schemas"][schema["$ref"][len(prefix) :]]
    return resolved


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "$ref":
                yield child
            else:
                yield from refs(child)
    elif isinstance(value, list):
        for child in value:
            yield from refs(child)


def json_content(document: dict[str, Any], holder: dict[str, Any]) -> dict[str, Any]:
    return resolve(document, holder["content"]["application/json"]["schema"])


def test_the_document_is_openapi_3(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"]
    assert document["info"]["version"] == "0.1.0"


def test_every_reference_points_to_a_component(document: dict[str, Any]) -> None:
    names = set(document["components"]["schemas"])
    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in names, ref


def test_the_assessment_endpoint_is_a_post_with_a_json_request_body(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/api/v1/assessments"]["post"]

    assert operation["requestBody"]["required"] is True
    assert set(operation["requestBody"]["content"]) == {"application/json"}


def test_the_request_schema_lists_the_four_criteria_and_its_required_fields(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/api/v1/assessments"]["post"]
    request = json_content(document, operation["requestBody"])

    assert set(request["properties"]["criteria"]["enum"]) == {c.value for c in Criteria}
    assert set(request["properties"]["criteria"]["enum"]) == {
        "recist-1.1", "irecist", "choi", "percist-1.0",
    }  # fmt: skip
    assert set(request["required"]) == {"criteria", "timepoints"}
    assert request["additionalProperties"] is False
    timepoints = request["properties"]["timepoints"]
    assert (timepoints["minItems"], timepoints["maxItems"]) == (1, 200)


def test_target_diameters_are_documented_as_numbers_from_0_to_1000_or_null(
    document: dict[str, Any],
) -> None:
    target = document["components"]["schemas"]["TargetLesion"]
    diameter = target["properties"]["diameterMm"]

    assert set(diameter["type"]) == {"number", "null"}
    assert (diameter["minimum"], diameter["maximum"]) == (0, 1000)


def test_densities_are_documented_from_minus_1024_to_3071_hu(document: dict[str, Any]) -> None:
    density = document["components"]["schemas"]["TargetLesion"]["properties"]["densityHu"]

    assert (density["minimum"], density["maximum"]) == (-1024, 3071)


def test_the_non_target_statuses_include_increased(document: dict[str, Any]) -> None:
    status = document["components"]["schemas"]["NonTargetLesion"]["properties"]["status"]

    assert set(status["enum"]) == {s.value for s in NonTargetStatus}
    assert "increased" in status["enum"]


@pytest.mark.parametrize("status", ["200", "413", "415", "422"])
def test_the_documented_responses_include_success_and_each_error(
    document: dict[str, Any], status: str
) -> None:
    responses = document["paths"]["/api/v1/assessments"]["post"]["responses"]

    schema = json_content(document, responses[status])

    if status == "200":
        assert "bestOverallResponse" in schema["properties"]
    else:
        assert schema["required"] == ["errors"]


@pytest.mark.parametrize("criteria", [c.value for c in Criteria])
def test_a_real_response_uses_only_documented_fields_and_all_required_ones(
    document: dict[str, Any], client: FlaskClient, valid_body: ValidBody, criteria: str
) -> None:
    body = valid_body(criteria, pre_baseline=True)
    answer = client.post("/api/v1/assessments", json=body).get_json()
    responses = document["paths"]["/api/v1/assessments"]["post"]["responses"]
    assessment = json_content(document, responses["200"])
    timepoint = document["components"]["schemas"]["TimePointAssessment"]

    assert set(assessment["required"]) <= set(answer) <= set(assessment["properties"])
    for entry in answer["timepoints"]:
        assert set(timepoint["required"]) <= set(entry) <= set(timepoint["properties"])


def test_every_route_outside_the_fhir_endpoint_is_in_the_document(
    app: Flask, document: dict[str, Any]
) -> None:
    """Health, this document, the assessments and the CRF page (static files aside); the FHIR
    routes are checked by ``test_every_fhir_route_is_in_the_openapi_document``."""
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.endswith("static") and not rule.rule.startswith("/fhir")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }

    assert served == {
        ("GET", "/health"),
        ("GET", "/.well-known/smart-configuration"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/assessments"),
        ("POST", "/api/v1/endpoints"),
        ("GET", "/crf"),
        *(
            (method, f"/api/v1/studies/<study_id>{tail}")
            for tail in ("", "/subjects/<subject_id>")
            for method in ("GET", "PUT", "DELETE")
        ),
        ("GET", "/api/v1/studies/<study_id>/endpoints"),
        ("PUT", "/api/v1/studies/<study_id>/subjects/<subject_id>/adjudication"),
        ("GET", "/api/v1/studies/<study_id>/sdtm/<domain>"),
        ("GET", "/api/v1/studies/<study_id>/plots/<plot>"),
        ("GET", "/auth/token"),
        ("POST", "/auth/token"),
        ("POST", "/api/v1/forms/assessment"),
        ("GET", "/api/v1/patients/<patient_id>/timeline"),
        ("GET", "/crf/timeline"),
        ("GET", "/crf/config.json"),
    }
    variables = {
        "<study_id>": "{studyId}",
        "<subject_id>": "{subjectId}",
        "<domain>": "{domain}",
        "<plot>": "{plot}",
        "<patient_id>": "{patientId}",
    }
    named = set()
    for method, path in served:
        for variable, name in variables.items():
            path = path.replace(variable, name)
        named.add((method, path))
    assert named <= documented


def test_each_operation_names_the_token_and_scope_the_service_requires(
    app: Flask, document: dict[str, Any]
) -> None:
    """The security requirement of every operation is what ``fhirnet.web.auth`` enforces: none
    for public ones, a token for the assessments, the SMART scope for the FHIR ones."""
    urls = app.url_map.bind("localhost")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            endpoint, arguments = urls.match(path.replace("{id}", "some-id"), method=method)
            needed = auth.required_permission(endpoint, arguments)
            if auth.is_public(endpoint, arguments):
                expected = []
            elif isinstance(needed, Permission):
                also = [str(p) for p in auth.ALSO_NEEDED.get(endpoint, ())]
                expected = [{"bearer": [str(needed), *also]}]
            else:
                expected = [{"bearer": []}]
            assert operation["security"] == expected, (method, path)
            if expected:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


@pytest.mark.parametrize("resource_type", STORED_TYPES)
def test_a_stored_search_documents_exactly_the_parameters_the_store_accepts(
    document: dict[str, Any], client: FlaskClient, resource_type: str
) -> None:
    """The document, the search view and the CapabilityStatement read one description."""
    operation = document["paths"][f"/fhir/{resource_type}"]["get"]
    documented = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    statement = client.get("/fhir/metadata").get_json()
    (listed,) = (r for r in statement["rest"][0]["resource"] if r["type"] == resource_type)
    support = search_support(resource_type)

    assert documented - set(FORMAT_PARAMETERS) == support.accepted
    assert [p["name"] for p in listed["searchParam"]] == [p.name for p in support.parameters]
    assert listed.get("searchInclude", []) == list(support.includes)


def test_the_format_parameter_lists_every_format_the_endpoint_accepts(
    document: dict[str, Any],
) -> None:
    (parameter,) = (
        p
        for p in document["paths"]["/fhir/metadata"]["get"]["parameters"]
        if p["name"] == "_format"
    )

    assert set(parameter["schema"]["enum"]) == FORMAT_VALUES
