"""The FHIR endpoint ``/fhir``: CapabilityStatement, read and search of the conformance resources,
``QuestionnaireResponse/$validate``, content negotiation, and every error as an OperationOutcome
in ``application/fhir+json`` — never a 500 for bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fhirnet import __version__
from fhirnet.config import DEFAULT_EXAMPLES_DIR, Settings
from fhirnet.errors import ProfileNotFoundError
from fhirnet.fhir.capability import READABLE_TYPES, SEARCH_PARAMETERS
from fhirnet.fhir.outcome import Issue
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL, Catalog
from fhirnet.fhir.resources import model_class, parse
from fhirnet.web import WebState, fhir_views
from fhirnet.web.app import create_app
from fhirnet.web.fhir_views import STORED_TYPES

FHIR_CONTENT_TYPE = "application/fhir+json; charset=utf-8"
BASE = "http://localhost/fhir"
VALIDATE = "/fhir/QuestionnaireResponse/$validate"
Q_ID = "gep-net-imaging-crf"
CS = "https://fhirnet.dev/fhir/CodeSystem"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"

#: 00:30 on 1 June in UTC+02:00 — still 31 May in UTC, so a clock read in UTC would show.
FIXED_NOW = dt.datetime(2025, 6, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))


@pytest.fixture
def app(settings: Settings) -> Flask:
    """The app with a fixed, non-UTC clock (style P13)."""
    app = create_app(settings, clock=lambda: FIXED_NOW)
    app.config["TESTING"] = True
    return app


def state(app: Flask) -> WebState:
    web_state: WebState = app.extensions["fhirnet"]
    return web_state


def catalog_of(app: Flask) -> Catalog:
    return state(app).catalog


def answer(link_id: str, **value: Any) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [value]}


def coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"valueCoding": {"system": system, "code": code, "display": display}}


def minimal_baseline() -> dict[str, Any]:
    """A clearly valid QuestionnaireResponse: a RECIST 1.1 baseline CT with one liver target."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{QUESTIONNAIRE_URL}|0.1.0",
        "status": "completed",
        "subject": {"reference": "Patient/example"},
        "authored": "2025-01-15T10:00:00+01:00",
        "item": [
            answer("imaging-date", valueDate="2025-01-15"),
            answer("assessment-type", **coding(f"{CS}/assessment-type", "baseline", "Baseline")),
            answer(
                "imaging-procedure",
                **coding(f"{CS}/imaging-procedure", "CT", "Contrast-enhanced CT"),
            ),
            answer(
                "response-criteria",
                **coding(
                    NCIT, "C124415", "Response Evaluation Criteria in Solid Tumors Version 1.1"
                ),
            ),
            {
                "linkId": "target-lesion",
                "item": [
                    answer("lesion-id", valueString="T1"),
                    answer(
                        "lesion-location", **coding("http://snomed.info/sct", "10200004", "Liver")
                    ),
                    answer("lesion-nodal", valueBoolean=False),
                    answer("lesion-size", valueDecimal=32.0),
                ],
            },
        ],
    }


def without_subject() -> dict[str, Any]:
    response = minimal_baseline()
    del response["subject"]
    return response


def parameters(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(entries)}


def post(
    client: FlaskClient,
    body: Any,
    content_type: str | None = "application/fhir+json",
    url: str = VALIDATE,
    **kwargs: Any,
) -> TestResponse:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type, **kwargs)


def fhir_json(response: TestResponse) -> dict[str, Any]:
    """The body of a FHIR response, after checking its media type."""
    assert response.headers["Content-Type"] == FHIR_CONTENT_TYPE
    body: dict[str, Any] = json.loads(response.get_data())
    return body


def outcome(response: TestResponse, status: int) -> list[dict[str, Any]]:
    """The issues of an OperationOutcome answered with ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = fhir_json(response)
    assert body["resourceType"] == "OperationOutcome"
    assert parse(body, model_class("OperationOutcome")).issues == ()
    issues: list[dict[str, Any]] = body["issue"]
    assert issues
    return issues


def error_codes(issues: list[dict[str, Any]]) -> set[str]:
    return {issue["code"] for issue in issues if issue["severity"] in ("error", "fatal")}


# -- metadata --------------------------------------------------------------------------------------


def test_metadata_is_an_r4_capability_statement_of_this_instance(client: FlaskClient) -> None:
    response = client.get("/fhir/metadata")

    assert response.status_code == 200
    statement = fhir_json(response)
    assert parse(statement, model_class("CapabilityStatement")).issues == ()
    assert statement["resourceType"] == "CapabilityStatement"
    assert (statement["status"], statement["kind"]) == ("active", "instance")
    assert statement["fhirVersion"] == "4.0.1"
    assert "json" in statement["format"]
    assert statement["software"] == {"name": "fhirnet", "version": __version__}
    assert statement["implementation"]["url"] == BASE
    assert [rest["mode"] for rest in statement["rest"]] == ["server"]


def test_metadata_lists_exactly_the_served_types_and_the_operations(
    client: FlaskClient,
) -> None:
    statement = fhir_json(client.get("/fhir/metadata"))
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}

    # Patient: listed for its Bulk Data export operation only (no interaction).
    assert set(resources) == {*READABLE_TYPES, *STORED_TYPES, "Patient"}
    assert "interaction" not in resources["Patient"]
    for resource_type in READABLE_TYPES:
        entry = resources[resource_type]
        assert [i["code"] for i in entry["interaction"]] == ["read", "search-type"]
        assert {p["name"] for p in entry["searchParam"]} == {"_id", "url", "version"}
    for resource_type in STORED_TYPES:  # the embedded store serves what fhirnet writes
        codes = [i["code"] for i in resources[resource_type]["interaction"]]
        create = ["create"] if resource_type == "QuestionnaireResponse" else []
        assert codes == [*create, "read", "vread", "search-type"]
    qr = resources["QuestionnaireResponse"]
    assert [(op["name"], op["definition"]) for op in qr["operation"]] == [
        ("submit", "https://fhirnet.dev/fhir/OperationDefinition/QuestionnaireResponse-submit"),
        ("validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"),
        ("extract", "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract"),
    ]
    assert resources["DiagnosticReport"]["searchInclude"] == [
        "DiagnosticReport:subject",
        "DiagnosticReport:patient",
        "DiagnosticReport:result",
    ]
    assert [i["code"] for i in statement["rest"][0]["interaction"]] == ["transaction", "batch"]


def test_with_an_external_fhir_server_the_stored_types_are_not_served_here(
    settings: Settings,
) -> None:
    external = dataclasses.replace(settings, fhir_base_url="http://fhir.example.org/r4")
    client = create_app(external).test_client()
    resources = {
        r["type"]: r for r in fhir_json(client.get("/fhir/metadata"))["rest"][0]["resource"]
    }

    served = {t for t, r in resources.items() if "interaction" in r}
    assert served == {*READABLE_TYPES, "QuestionnaireResponse"}
    # The profiled types fhirnet writes there are listed with their profiles, no interaction.
    assert {t for t in resources if t not in served} == {
        "BodyStructure",
        "DiagnosticReport",
        "Observation",
        "Provenance",
        # the studies and enrolments of the trials wing (docs/trials.md)
        "ResearchStudy",
        "ResearchSubject",
        "Group",
        "Patient",  # for its Bulk Data export operation, the only type without a profile
    }
    assert all(resources[t]["supportedProfile"] for t in resources if t not in served | {"Patient"})
    assert [i["code"] for i in resources["QuestionnaireResponse"]["interaction"]] == ["create"]
    for url in ("/fhir/DiagnosticReport", "/fhir/Observation/x", "/fhir/QuestionnaireResponse"):
        issues = outcome(client.get(url), 404)
        assert error_codes(issues) == {"not-supported"}
        assert "http://fhir.example.org/r4" in issues[0]["diagnostics"]


def test_every_search_parameter_the_statement_lists_is_honoured(
    client: FlaskClient, app: Flask
) -> None:
    statement = fhir_json(client.get("/fhir/metadata"))
    for entry in statement["rest"][0]["resource"]:
        if entry["type"] in STORED_TYPES:
            continue  # tests/web/test_submission_views.py searches those
        for parameter in entry.get("searchParam", []):
            resource = next(catalog_of(app).of_type(entry["type"]))
            value = resource[{"_id": "id"}.get(parameter["name"], parameter["name"])]

            response = client.get(f"/fhir/{entry['type']}", query_string={parameter["name"]: value})

            assert response.status_code == 200, (entry["type"], parameter["name"])
            assert fhir_json(response)["total"] >= 1


def test_the_implementation_url_is_the_base_the_client_used(
    app: Flask, client: FlaskClient
) -> None:
    behind = client.get("/fhir/metadata", base_url="https://ehr.example.org/")

    assert fhir_json(behind)["implementation"]["url"] == "https://ehr.example.org/fhir"
    assert "url" not in state(app).capability["implementation"]  # per request, never stored


def test_metadata_modes_other_than_full_are_refused(client: FlaskClient) -> None:
    assert client.get("/fhir/metadata?mode=full").status_code == 200
    issues = outcome(client.get("/fhir/metadata?mode=terminology"), 400)
    assert error_codes(issues) == {"not-supported"}


# -- read ------------------------------------------------------------------------------------------


def test_every_conformance_resource_can_be_read_by_id(app: Flask, client: FlaskClient) -> None:
    resources = [r for r in catalog_of(app).resources if r["resourceType"] in READABLE_TYPES]
    assert len(resources) > 50

    for resource in resources:
        response = client.get(f"/fhir/{resource['resourceType']}/{resource['id']}")

        assert response.status_code == 200
        expected = state(app).questionnaire if resource["id"] == Q_ID else resource
        assert fhir_json(response) == expected


def test_the_questionnaire_is_served_with_contained_expanded_value_sets(
    client: FlaskClient,
) -> None:
    questionnaire = fhir_json(client.get(f"/fhir/Questionnaire/{Q_ID}"))

    assert questionnaire["url"] == QUESTIONNAIRE_URL
    contained = {resource["id"]: resource for resource in questionnaire["contained"]}
    first_choice = questionnaire["item"][1]
    assert first_choice["answerValueSet"] == "#assessment-type"
    codes = [c["code"] for c in contained["assessment-type"]["expansion"]["contains"]]
    assert codes == ["baseline", "follow-up", "pre-baseline"]  # pre-baseline: CRF v2


def test_a_value_set_is_served_as_authored(app: Flask, client: FlaskClient) -> None:
    value_set = fhir_json(client.get("/fhir/ValueSet/assessment-type"))

    assert value_set == catalog_of(app).by_id("ValueSet", "assessment-type")
    assert "expansion" not in value_set


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/fhir/Questionnaire/no-such-form", "not-found"),
        ("/fhir/ValueSet/gep-net-imaging-crf", "not-found"),  # an id of another type
        ("/fhir/Patient/example", "not-supported"),
        ("/fhir/QuestionnaireResponse/example", "not-found"),  # the embedded store's
        ("/fhir/Observation/not%20an%20id", "not-found"),
        ("/fhir/NoSuchType/1", "not-supported"),
        # Conformance resources are not versioned here: no vread of them.
        ("/fhir/ValueSet/assessment-type/_history/1", "not-supported"),
        ("/fhir/", "not-found"),
    ],
)
def test_what_is_not_served_is_a_404_operation_outcome(
    client: FlaskClient, url: str, code: str
) -> None:
    issues = outcome(client.get(url), 404)

    assert error_codes(issues) == {code}


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("DELETE", f"/fhir/Questionnaire/{Q_ID}", "GET"),
        ("PUT", "/fhir/ValueSet/assessment-type", "GET"),
        ("POST", "/fhir/Questionnaire", "GET"),
        ("POST", "/fhir/metadata", "GET"),
        ("GET", VALIDATE, "POST"),
        ("PUT", VALIDATE, "POST"),
        ("GET", "/fhir/QuestionnaireResponse/$extract", "POST"),
        ("GET", "/fhir", "POST"),  # the transaction/batch endpoint
    ],
)
def test_a_wrong_method_is_a_405_operation_outcome_with_allow(
    client: FlaskClient, method: str, url: str, allowed: str
) -> None:
    response = client.open(url, method=method)

    assert error_codes(outcome(response, 405)) == {"not-supported"}
    assert allowed in response.headers["Allow"]


@pytest.mark.parametrize("url", [VALIDATE, "/fhir/QuestionnaireResponse/$extract"])
@pytest.mark.parametrize("method", ["OPTIONS", "GET", "PUT"])
def test_an_operation_url_lists_post_as_its_only_method(
    client: FlaskClient, url: str, method: str
) -> None:
    # Not GET: an operation's URL is no read of a resource with id "$validate" (schemathesis
    # found Allow: GET there).
    allowed = client.open(url, method=method).headers["Allow"]

    assert {m.strip() for m in allowed.split(",")} == {"POST", "OPTIONS"}


def test_read_refuses_unknown_parameters(client: FlaskClient) -> None:
    issues = outcome(client.get(f"/fhir/Questionnaire/{Q_ID}?_contained=true"), 400)

    assert error_codes(issues) == {"not-supported"}
    assert "_contained" in issues[0]["diagnostics"]


# -- search ----------------------------------------------------------------------------------------


def search(client: FlaskClient, path: str, **kwargs: Any) -> dict[str, Any]:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = fhir_json(response)
    assert parse(bundle, model_class("Bundle")).issues == ()
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "searchset")
    return bundle


def ids(bundle: Mapping[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def link(bundle: Mapping[str, Any], relation: str) -> str | None:
    return next((li["url"] for li in bundle["link"] if li["relation"] == relation), None)


@pytest.mark.parametrize("version", ["", "|0.1.0"], ids=["url", "url|version"])
def test_an_ehr_finds_the_form_by_its_canonical_url(
    app: Flask, client: FlaskClient, version: str
) -> None:
    bundle = search(
        client, "/fhir/Questionnaire", query_string={"url": QUESTIONNAIRE_URL + version}
    )

    assert bundle["total"] == 1
    (entry,) = bundle["entry"]
    assert entry["fullUrl"] == f"{BASE}/Questionnaire/{Q_ID}"
    assert entry["search"] == {"mode": "match"}
    assert entry["resource"] == state(app).questionnaire  # with contained expansions
    self_link = link(bundle, "self")
    assert self_link is not None
    assert self_link.startswith(f"{BASE}/Questionnaire?")
    assert parse_qs(urlsplit(self_link).query) == {"url": [QUESTIONNAIRE_URL + version]}


@pytest.mark.parametrize(
    "query",
    [
        {"url": f"{QUESTIONNAIRE_URL}|9.9.9"},
        {"url": "https://fhirnet.dev/fhir/Questionnaire/other"},
        {"url": QUESTIONNAIRE_URL[:-1]},  # uri search is exact, not a prefix
        {"version": "9.9.9"},
        {"_id": "other"},
    ],
)
def test_a_search_without_matches_is_an_empty_searchset(
    client: FlaskClient, query: dict[str, str]
) -> None:
    bundle = search(client, "/fhir/Questionnaire", query_string=query)

    assert bundle["total"] == 0
    assert "entry" not in bundle  # R4 JSON has no empty arrays


@pytest.mark.parametrize("resource_type", READABLE_TYPES)
def test_every_conformance_resource_is_found_by_its_url(
    app: Flask, client: FlaskClient, resource_type: str
) -> None:
    for resource in catalog_of(app).of_type(resource_type):
        bundle = search(client, f"/fhir/{resource_type}", query_string={"url": resource["url"]})

        assert ids(bundle) == [resource["id"]]


def test_no_parameter_returns_every_resource_of_the_type(app: Flask, client: FlaskClient) -> None:
    bundle = search(client, "/fhir/ValueSet")

    expected = [r["id"] for r in catalog_of(app).of_type("ValueSet")]
    assert ids(bundle) == expected
    assert bundle["total"] == len(expected) > 20
    assert link(bundle, "self") == f"{BASE}/ValueSet"
    assert link(bundle, "next") is None


def test_comma_separated_values_match_any_and_repeated_parameters_match_all(
    client: FlaskClient,
) -> None:
    a = "https://fhirnet.dev/fhir/ValueSet/assessment-type"
    b = "https://fhirnet.dev/fhir/ValueSet/primary-site"

    either = search(client, f"/fhir/ValueSet?url={a},{b}")
    both = search(client, f"/fhir/ValueSet?url={a}&_id=primary-site")
    one = search(client, f"/fhir/ValueSet?url={a}&_id=assessment-type&version=0.1.0")

    assert sorted(ids(either)) == ["assessment-type", "primary-site"]
    assert ids(both) == []
    assert ids(one) == ["assessment-type"]


def test_an_empty_parameter_is_ignored(client: FlaskClient) -> None:
    assert (
        search(client, "/fhir/CodeSystem?url=")["total"]
        == search(client, "/fhir/CodeSystem")["total"]
    )


def test_count_pages_the_results_with_next_links(client: FlaskClient) -> None:
    total = search(client, "/fhir/ValueSet")["total"]
    seen: list[str] = []
    url: str | None = "/fhir/ValueSet?_count=10"
    pages = 0
    while url:
        bundle = search(client, url.removeprefix("http://localhost"))
        assert bundle["total"] == total
        assert len(bundle.get("entry", [])) <= 10
        seen += ids(bundle)
        url = link(bundle, "next")
        pages += 1

    assert pages == -(-total // 10)
    assert len(seen) == len(set(seen)) == total


def test_count_zero_answers_only_the_total(client: FlaskClient) -> None:
    bundle = search(client, "/fhir/StructureDefinition?_count=0")

    assert bundle["total"] > 0
    assert "entry" not in bundle


@pytest.mark.parametrize("query", ["_count=", "_offset=", "_count=&_offset=&url="])
def test_an_empty_count_or_offset_is_ignored_like_any_empty_parameter(
    client: FlaskClient, query: str
) -> None:
    # R4 search §3.1.1.1, as the embedded store's search does (found by schemathesis).
    assert ids(search(client, f"/fhir/ValueSet?{query}")) == ids(search(client, "/fhir/ValueSet"))


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("name=GepNetImagingCrf", "not-supported"),
        ("title:contains=form", "not-supported"),
        ("url:below=https://fhirnet.dev/fhir", "not-supported"),
        ("url:missing=false", "not-supported"),
        ("_summary=maybe", "invalid"),
        ("_contained=true", "not-supported"),
        ("_include=*", "not-supported"),
        ("_count=-1", "invalid"),
        ("_count=ten", "invalid"),
        ("_count=1&_count=2", "invalid"),
        ("_count=99999999999999999999999", "invalid"),
        ("_offset=-5", "invalid"),
        ("_pretty=yes", "invalid"),
    ],
)
def test_what_a_search_cannot_honour_is_a_400(client: FlaskClient, query: str, code: str) -> None:
    issues = outcome(client.get(f"/fhir/Questionnaire?{query}"), 400)

    assert error_codes(issues) == {code}


def test_prefer_lenient_ignores_unknown_parameters_and_leaves_them_out_of_the_self_link(
    client: FlaskClient,
) -> None:
    bundle = search(
        client,
        f"/fhir/Questionnaire?url={QUESTIONNAIRE_URL}&name=x&url:below=y",
        headers={"Prefer": "return=minimal, handling=lenient"},
    )

    assert bundle["total"] == 1
    self_link = link(bundle, "self")
    assert self_link is not None
    assert parse_qs(urlsplit(self_link).query) == {"url": [QUESTIONNAIRE_URL]}


def test_search_of_a_type_that_is_not_served_is_a_404(client: FlaskClient) -> None:
    for url in ("/fhir/Patient", "/fhir/Nope"):
        assert error_codes(outcome(client.get(url), 404)) == {"not-supported"}


# -- content negotiation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.0",
        "application/json",
        "*/*",
        "application/*",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # a browser
        "application/fhir+json;q=0, application/json",
    ],
)
def test_json_is_served_to_whoever_accepts_it(client: FlaskClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept is not None else {}

    response = client.get("/fhir/metadata", headers=headers)

    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    assert response.headers["Content-Type"] == FHIR_CONTENT_TYPE


@pytest.mark.parametrize(
    "accept",
    [
        "application/fhir+xml",
        "application/xml",
        "text/turtle",
        "text/html",
        "application/fhir+json;q=0",
    ],
)
def test_xml_and_other_formats_are_a_406(client: FlaskClient, accept: str) -> None:
    for url in ("/fhir/metadata", f"/fhir/Questionnaire/{Q_ID}", "/fhir/ValueSet"):
        issues = outcome(client.get(url, headers={"Accept": accept}), 406)
        assert error_codes(issues) == {"not-supported"}


def test_a_406_also_answers_a_validate_request(client: FlaskClient) -> None:
    response = post(client, minimal_baseline(), headers={"Accept": "application/fhir+xml"})

    assert error_codes(outcome(response, 406)) == {"not-supported"}


@pytest.mark.parametrize("value", ["json", "application/json", "application/fhir+json"])
def test_format_json_overrides_the_accept_header(client: FlaskClient, value: str) -> None:
    response = client.get(
        "/fhir/metadata", query_string={"_format": value}, headers={"Accept": "application/xml"}
    )

    assert response.status_code == 200
    assert fhir_json(response)["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize("value", ["xml", "application/fhir+xml", "text/xml", "ttl", "html"])
def test_format_other_than_json_is_a_406(client: FlaskClient, value: str) -> None:
    issues = outcome(client.get("/fhir/metadata", query_string={"_format": value}), 406)

    assert error_codes(issues) == {"not-supported"}


def test_pretty_indents_the_json(client: FlaskClient) -> None:
    compact = client.get("/fhir/ValueSet/assessment-type").get_data(as_text=True)
    pretty = client.get("/fhir/ValueSet/assessment-type?_pretty=true").get_data(as_text=True)

    assert json.loads(compact) == json.loads(pretty)
    assert "\n  " in pretty
    assert "\n  " not in compact


# -- $validate -------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/fhir+json", "application/json"])
def test_a_valid_questionnaire_response_is_a_200_without_errors(
    client: FlaskClient, content_type: str
) -> None:
    issues = outcome(post(client, minimal_baseline(), content_type), 200)

    assert error_codes(issues) == set()


def test_a_valid_questionnaire_response_in_parameters_is_a_200(client: FlaskClient) -> None:
    body = parameters(
        {"name": "resource", "resource": minimal_baseline()},
        {"name": "mode", "valueCode": "create"},
    )

    assert error_codes(outcome(post(client, body), 200)) == set()


@pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "in Parameters"])
def test_a_questionnaire_response_without_subject_is_a_422(
    client: FlaskClient, wrapped: bool
) -> None:
    body = (
        parameters({"name": "resource", "resource": without_subject()})
        if wrapped
        else without_subject()
    )

    issues = outcome(post(client, body), 422)

    errors = [issue for issue in issues if issue["severity"] == "error"]
    assert errors
    assert any(
        "subject" in " ".join([*issue.get("expression", []), issue["diagnostics"]]).lower()
        for issue in errors
    )


def test_validation_gets_the_utc_date_of_the_app_clock(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def recording(response: Mapping[str, Any], catalog: Catalog, *, today: dt.date) -> list[Issue]:
        calls.append({"response": response, "catalog": catalog, "today": today})
        return []

    monkeypatch.setattr(fhir_views, "validate_response", recording)

    assert post(client, minimal_baseline()).status_code == 200
    (call,) = calls
    assert call["today"] == dt.date(2025, 5, 31)  # 2025-06-01 00:30 at UTC+02:00
    assert call["response"] == minimal_baseline()


@pytest.mark.parametrize(
    ("authored", "status"),
    [
        ("2025-05-31T23:59:00+00:00", 200),
        ("2025-06-01T01:00:00+02:00", 200),  # 23:00 UTC on 31 May
        ("2025-06-01T00:10:00+00:00", 422),  # already 1 June in UTC: after the clock's UTC date
    ],
)
def test_authored_is_judged_against_the_utc_date_of_the_app_clock(
    client: FlaskClient, authored: str, status: int
) -> None:
    body = minimal_baseline() | {"authored": authored}

    issues = outcome(post(client, body), status)

    if status == 422:
        assert error_codes(issues) == {"business-rule"}


def test_the_default_clock_is_utc_now() -> None:
    now = state(create_app(Settings(auth="none"))).clock()

    assert now.utcoffset() == dt.timedelta(0)
    assert abs(now - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("query", "code"),
    [("mode=create", None), ("mode=update", None), ("mode=profile", None),
     ("mode=delete", "not-supported"), ("profile=https://example.org/sd", "not-supported"),
     ("foo=bar", "not-supported")],
)  # fmt: skip
def test_validate_query_parameters(client: FlaskClient, query: str, code: str | None) -> None:
    response = post(client, minimal_baseline(), url=f"{VALIDATE}?{query}")

    if code is None:
        assert response.status_code == 200
    else:
        assert error_codes(outcome(response, 400)) == {code}


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/xml", "application/fhir+xml", "multipart/form-data"],
)
def test_a_body_that_is_not_json_by_media_type_is_a_415(
    client: FlaskClient, content_type: str | None
) -> None:
    response = post(client, minimal_baseline(), content_type)

    assert error_codes(outcome(response, 415)) == {"not-supported"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"{'resourceType': 'QuestionnaireResponse'}", id="single quotes"),
        pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": NaN}', id="NaN"),
        pytest.param(
            b'{"resourceType": "QuestionnaireResponse", "resourceType": "Patient"}',
            id="duplicate key",
        ),
        pytest.param(b'{"resourceType": "Questionnaire\xffResponse"}', id="not UTF-8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested too deeply"),
        pytest.param(b'{"n": 1' + b"0" * 5000 + b"}", id="integer with 5001 digits"),
        pytest.param(b"[]", id="an array"),
        pytest.param(b'"QuestionnaireResponse"', id="a string"),
        pytest.param(b'{"status": "completed"}', id="no resourceType"),
        pytest.param(b'{"resourceType": 7}', id="resourceType not a string"),
        pytest.param(
            json.dumps({"resourceType": "Parameters", "parameter": {"name": "resource"}}).encode(),
            id="Parameters.parameter not a list",
        ),
        pytest.param(
            json.dumps(parameters({"name": "resource", "resource": ["x"]})).encode(),
            id="resource parameter not an object",
        ),
    ],
)
def test_a_body_that_is_no_fhir_json_resource_is_a_400(client: FlaskClient, body: bytes) -> None:
    issues = outcome(post(client, body), 400)

    assert error_codes(issues) <= {"structure", "required"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"resourceType": "Patient"}, "invalid", id="a Patient"),
        pytest.param(parameters(), "required", id="no resource parameter"),
        pytest.param(
            parameters(
                {"name": "resource", "resource": minimal_baseline()},
                {"name": "resource", "resource": minimal_baseline()},
            ),
            "required",
            id="two resource parameters",
        ),
        pytest.param(
            parameters({"name": "resource", "resource": {"resourceType": "Patient"}}),
            "invalid",
            id="a Patient in Parameters",
        ),
        pytest.param(
            parameters(
                {"name": "resource", "resource": minimal_baseline()},
                {"name": "mode", "valueCode": "delete"},
            ),
            "not-supported",
            id="mode delete",
        ),
        pytest.param(
            parameters(
                {"name": "resource", "resource": minimal_baseline()},
                {"name": "profile", "valueUri": "https://example.org/StructureDefinition/x"},
            ),
            "not-supported",
            id="a profile",
        ),
        pytest.param(
            parameters({"name": "resource", "resource": minimal_baseline()}, {"name": "format"}),
            "not-supported",
            id="an unknown parameter",
        ),
    ],
)
def test_a_validate_call_the_operation_does_not_define_is_a_400(
    client: FlaskClient, body: dict[str, Any], code: str
) -> None:
    assert error_codes(outcome(post(client, body), 400)) == {code}


#: Shapes a validator must reject without crashing: clearly not a QuestionnaireResponse.
MISSHAPEN = [
    pytest.param(lambda qr: qr.update(item="imaging-date"), id="item a string"),
    pytest.param(lambda qr: qr.update(item=[1, None, "x"]), id="items not objects"),
    pytest.param(lambda qr: qr["item"][0].update(answer=None), id="answer null"),
    pytest.param(lambda qr: qr["item"][0].update(answer=[{}]), id="answer empty"),
    pytest.param(lambda qr: qr["item"][0].update(linkId=["a"]), id="linkId a list"),
    pytest.param(lambda qr: qr.update(subject="Patient/x"), id="subject a string"),
    pytest.param(lambda qr: qr.update(questionnaire=42), id="questionnaire a number"),
    pytest.param(lambda qr: qr.update(contained=[{"resourceType": "Nope"}]), id="contained"),
]
#: Doubtful values: whether they are errors is the validator's call, a 500 never is.
DOUBTFUL = [
    pytest.param(lambda qr: qr.update(status="bogus"), id="status not a code"),
    pytest.param(
        lambda qr: qr["item"][4]["item"][3]["answer"][0].update(valueDecimal="1e999"),
        id="decimal as a string",
    ),
    pytest.param(lambda qr: qr.update(item=[]), id="no items"),
]


@pytest.mark.parametrize("change", MISSHAPEN)
def test_a_misshapen_questionnaire_response_is_a_4xx(
    client: FlaskClient, change: Callable[[dict[str, Any]], None]
) -> None:
    body = minimal_baseline()
    change(body)

    response = post(client, body)

    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert error_codes(outcome(response, response.status_code))


@pytest.mark.parametrize("change", DOUBTFUL)
def test_a_doubtful_questionnaire_response_is_never_a_500(
    client: FlaskClient, change: Callable[[dict[str, Any]], None]
) -> None:
    body = minimal_baseline()
    change(body)

    response = post(client, body)

    assert response.status_code in (200, 422), response.get_data(as_text=True)
    outcome(response, response.status_code)


EXAMPLE_RESPONSES = sorted((DEFAULT_EXAMPLES_DIR / "questionnaire-responses").glob("*/*.json"))


def test_there_are_example_questionnaire_responses() -> None:
    assert len(EXAMPLE_RESPONSES) >= 3


@pytest.mark.parametrize("path", EXAMPLE_RESPONSES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_questionnaire_response_is_valid(settings: Settings, path: Path) -> None:
    # The examples run into 2026; judge them on a day after the last one (UTC-05:00 evening).
    later = dt.datetime(2026, 12, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    client = create_app(settings, clock=lambda: later).test_client()

    issues = outcome(post(client, path.read_bytes()), 200)

    assert error_codes(issues) == set()


class TestBodySizeLimit:
    """The FHIR endpoint honours the same ``max_body_bytes`` as the JSON API."""

    LIMIT = 4000

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings(max_body_bytes=self.LIMIT, auth="none")

    @staticmethod
    def padded(size: int) -> bytes:
        data = json.dumps(minimal_baseline()).encode()
        return data + b" " * (size - len(data))

    @pytest.mark.parametrize("chunked", [False, True], ids=["Content-Length", "chunked"])
    def test_a_body_over_the_limit_is_a_413(self, client: FlaskClient, chunked: bool) -> None:
        # A chunked body has no Content-Length; werkzeug alone would stop reading at the limit.
        extra: dict[str, Any] = {}
        if chunked:
            extra["headers"] = {"Transfer-Encoding": "chunked"}
            extra["environ_overrides"] = {"wsgi.input_terminated": True}

        response = post(client, self.padded(self.LIMIT + 1), **extra)

        issues = outcome(response, 413)
        assert error_codes(issues) == {"too-long"}
        assert str(self.LIMIT) in issues[0]["diagnostics"]

    def test_a_body_at_the_limit_is_read(self, client: FlaskClient) -> None:
        assert post(client, self.padded(self.LIMIT)).status_code == 200


# -- errors: OperationOutcome on /fhir, the JSON envelope elsewhere --------------------------------


def test_an_unexpected_error_is_a_500_operation_outcome_without_internals(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    internals = "secret detail at /srv/app/internal.py line 42"

    def broken(*args: Any, **kwargs: Any) -> list[Issue]:
        raise RuntimeError(internals)

    monkeypatch.setattr(fhir_views, "validate_response", broken)

    response = post(client, minimal_baseline())

    assert error_codes(outcome(response, 500)) == {"exception"}
    assert internals not in response.get_data(as_text=True)
    assert internals in caplog.text


@pytest.mark.parametrize("url", ["/api/v1/nothing", "/fhirx/metadata", "/nothing"])
def test_errors_outside_fhir_keep_the_json_api_envelope(client: FlaskClient, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert set(response.get_json()) == {"errors"}


def test_the_served_questionnaire_is_computed_once_per_app(app: Flask) -> None:
    client = app.test_client()
    first = fhir_json(client.get(f"/fhir/Questionnaire/{Q_ID}"))
    first["contained"].clear()

    assert fhir_json(client.get(f"/fhir/Questionnaire/{Q_ID}"))["contained"]
    assert state(app).questionnaire["contained"]


def test_a_package_without_the_questionnaire_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "x", "version": "0.0.1"}))

    with pytest.raises(ProfileNotFoundError, match="Questionnaire/gep-net-imaging-crf"):
        create_app(Settings(profiles_dir=tmp_path, auth="none"))


# -- the OpenAPI document describes the FHIR endpoint ----------------------------------------------


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/v1/openapi.json").get_json()
    return body


def test_every_fhir_route_is_in_the_openapi_document(app: Flask, document: dict[str, Any]) -> None:
    documented = {path for path in document["paths"] if path.startswith("/fhir")}
    submission = {
        "/fhir",
        "/fhir/QuestionnaireResponse",
        "/fhir/QuestionnaireResponse/$extract",
        "/fhir/QuestionnaireResponse/$submit",
    }
    expected = {"/fhir/metadata", VALIDATE, *submission, "/fhir/_submission/{id}"} | {
        path
        for t in (*READABLE_TYPES, *STORED_TYPES)
        for path in (f"/fhir/{t}", f"/fhir/{t}/{{id}}")
    }
    expected |= {f"/fhir/{t}/{{id}}/_history/{{vid}}" for t in STORED_TYPES}
    expected |= {"/fhir/.well-known/smart-configuration"}
    expected |= {
        "/fhir/$export",
        "/fhir/Patient/$export",
        "/fhir/Group/{id}/$export",
        "/fhir/$export-status/{job_id}",
        "/fhir/$export-file/{job_id}/{file_name}",
        "/fhir/Questionnaire/$populate",
        "/fhir/Questionnaire/{questionnaire_id}/$populate",
    }
    fhir_rules = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/fhir")}

    assert documented == expected
    assert fhir_rules == {
        "/fhir/metadata", "/fhir/<resource_type>", "/fhir/<resource_type>/<logical_id:resource_id>",
        "/fhir/<resource_type>/<logical_id:resource_id>/_history/<version_id>",
        "/fhir/.well-known/smart-configuration",
        VALIDATE,
        *submission,
        "/fhir/_submission/<submission_id>",
        "/fhir/$export", "/fhir/Patient/$export", "/fhir/Group/<group_id>/$export",
        "/fhir/$export-status/<job_id>", "/fhir/$export-file/<job_id>/<file_name>",
        "/fhir/Questionnaire/$populate", "/fhir/Questionnaire/<questionnaire_id>/$populate",
    }  # fmt: skip


#: The answers of Bulk Data that are not FHIR JSON (export.md): the manifest is plain JSON, a
#: running export's status has no body, the files are NDJSON.
BULK_DATA_ANSWERS = {
    ("/fhir/$export-status/{job_id}", "200"),
    ("/fhir/$export-status/{job_id}", "202"),
    ("/fhir/$export-file/{job_id}/{file_name}", "200"),
}


def test_fhir_operations_document_fhir_json_responses(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        if not path.startswith("/fhir") or "/.well-known/" in path:  # SMART's JSON, not FHIR
            continue
        for operation in item.values():
            for status, response in operation["responses"].items():
                if (path, status) in BULK_DATA_ANSWERS:
                    continue
                assert set(response["content"]) == {"application/fhir+json"}, (path, status)
            if "/$export" not in path:  # Bulk Data kick-offs require Accept: fhir+json (400)
                assert "406" in operation["responses"]


def test_documented_search_parameters_are_the_supported_ones(document: dict[str, Any]) -> None:
    for resource_type in READABLE_TYPES:
        operation = document["paths"][f"/fhir/{resource_type}"]["get"]
        names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        supported = {p.name for p in SEARCH_PARAMETERS[resource_type]}
        assert names == supported | {
            "_count",
            "_offset",
            "_summary",
            "_elements",
            "_format",
            "_pretty",
        }


def test_validate_is_documented_with_both_media_types_and_its_statuses(
    document: dict[str, Any],
) -> None:
    operation = document["paths"][VALIDATE]["post"]

    assert set(operation["requestBody"]["content"]) == {"application/fhir+json", "application/json"}
    assert set(operation["responses"]) == {"200", "400", "401", "403", "406", "413", "415", "422"}


# -- discovery: the CapabilityStatement and SMART configuration -------------------------------


def test_the_capability_statement_is_a_valid_r4_statement_with_security_profiles_definitions(
    client: FlaskClient,
) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    statement = fhir_json(client.get("/fhir/metadata"))
    CapabilityStatement.model_validate(statement)
    rest = statement["rest"][0]

    security = rest["security"]
    assert security["cors"] is False
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert "system/QuestionnaireResponse.c" in security["description"]
    resources = {r["type"]: r for r in rest["resource"]}
    for written in ("Observation", "DiagnosticReport", "BodyStructure", "Provenance"):
        assert resources[written]["supportedProfile"], written
    for entry in rest["resource"]:
        for parameter in entry.get("searchParam", []):
            assert parameter["definition"].startswith("http://hl7.org/fhir/SearchParameter/")


@pytest.mark.parametrize(
    "url", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"]
)
def test_the_smart_configuration_has_the_required_fields_and_the_scopes_honoured(
    client: FlaskClient, url: str
) -> None:
    response = client.get(url)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    # SMART App Launch 2.x §2.1: required for a Backend Services server without authorize.
    for field in ("grant_types_supported", "capabilities", "scopes_supported"):
        assert document[field], field
    assert document["grant_types_supported"] == ["client_credentials"]
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert "system/QuestionnaireResponse.c" in document["scopes_supported"]
    assert "code_challenge_methods_supported" not in document  # no authorize endpoint


@pytest.mark.parametrize(
    ("fhir_version", "status"), [("3.0", 406), ("5.0", 406), ("4.0", 200), ("4.0.1", 200)]
)
def test_accept_with_a_fhir_version_other_than_r4_is_406(
    client: FlaskClient, fhir_version: str, status: int
) -> None:
    accept = f"application/fhir+json; fhirVersion={fhir_version}"

    response = client.get("/fhir/metadata", headers={"Accept": accept})

    assert response.status_code == status
    if status == 406:
        assert error_codes(outcome(response, 406)) == {"not-supported"}
