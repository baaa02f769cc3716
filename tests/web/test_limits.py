"""Hostile JSON bodies are refused before any work on them: nesting, values, items and answers,
Bundle entries, string lengths, lone surrogates; on the FHIR endpoint and the JSON API alike, with
the settings' limits (``FHIRNET_MAX_*``); and strict JSON and media types on every POST."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhirnet.config import Settings, load_settings
from fhirnet.web.app import create_app
from fhirnet.web.errors import JsonLimitError
from fhirnet.web.limits import JsonLimits, check_json
from tests.submissions import IRECIST, bundle_of, form

FHIR_POSTS = (
    "/fhir/QuestionnaireResponse",
    "/fhir",
    "/fhir/QuestionnaireResponse/$validate",
    "/fhir/QuestionnaireResponse/$extract",
)
API = "/api/v1/assessments"
FHIR = "application/fhir+json"


def post(client: FlaskClient, url: str, body: bytes, content_type: str = FHIR) -> Any:
    return client.post(url, data=body, content_type=content_type)


def issue(response: Any) -> dict[str, Any]:
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert response.content_type.startswith("application/fhir+json")
    first: dict[str, Any] = outcome["issue"][0]
    return first


def questionnaire_response(**fields: Any) -> bytes:
    return json.dumps({"resourceType": "QuestionnaireResponse", **fields}).encode()


HOSTILE = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, 400, "structure", id="100,000 deep"),
    pytest.param(b"[" * 65 + b"]" * 65, 400, "structure", id="65 deep"),
    pytest.param(
        questionnaire_response(item=[{"linkId": "a", "answer": [{"valueString": "x"}]}] * 1001),
        413,
        "too-long",
        id="2,002 items and answers",
    ),
    pytest.param(questionnaire_response(status="x" * 10_001), 422, "too-long", id="long string"),
    pytest.param(json.dumps({"x" * 10_001: 1}).encode(), 422, "too-long", id="long key"),
    pytest.param(questionnaire_response(id="a" * 65), 422, "too-long", id="id of 65"),
    pytest.param(
        json.dumps({"resourceType": "Bundle", "type": "batch", "entry": [{}] * 101}).encode(),
        413,
        "too-long",
        id="101 Bundle entries",
    ),
    pytest.param(json.dumps([0] * 200_001).encode(), 413, "too-long", id="200,001 values"),
    pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": "\\ud800"}', 400, "structure"),
    pytest.param(questionnaire_response(status="a\u0000b"), 400, "structure", id="NUL"),
    pytest.param(questionnaire_response(status="\u001b[31m"), 400, "structure", id="ESC"),
    pytest.param(json.dumps({"a\u0007": 1}).encode(), 400, "structure", id="BEL in a key"),
]


@pytest.mark.parametrize("url", FHIR_POSTS)
@pytest.mark.parametrize(("body", "status", "code"), HOSTILE)
def test_a_fhir_post_refuses_a_body_over_a_limit_with_an_operation_outcome(
    client: FlaskClient, url: str, body: bytes, status: int, code: str
) -> None:
    response = post(client, url, body)

    assert response.status_code == status
    assert issue(response)["code"] == code


@pytest.mark.parametrize(("body", "status", "code"), HOSTILE)
def test_the_json_api_refuses_a_body_over_a_limit_with_its_error_envelope(
    client: FlaskClient, body: bytes, status: int, code: str
) -> None:
    response = post(client, API, body, "application/json")

    # The API has no 400; its schemas bound each list (the value count is left to them).
    assert response.status_code == (422 if status == 400 or body.startswith(b"[0") else status)
    assert set(response.get_json()) == {"errors"}


def test_the_outcome_locates_the_string_over_the_limit(client: FlaskClient) -> None:
    body = questionnaire_response(item=[{"linkId": "a"}, {"linkId": "b" * 10_001}])

    found = issue(post(client, "/fhir/QuestionnaireResponse", body))

    assert found["expression"] == ["QuestionnaireResponse.item[1].linkId"]


def test_the_api_envelope_locates_the_string_over_the_limit(
    client: FlaskClient, valid_body: Any
) -> None:
    body = valid_body()
    body["timepoints"][0]["date"] = "2" * 10_001

    response = post(client, API, json.dumps(body).encode(), "application/json")

    assert response.status_code == 422
    assert response.get_json() == {
        "errors": {"$.timepoints[0].date": ["A string has more than 10000 characters."]}
    }


def test_every_example_form_and_a_bundle_of_all_are_within_the_default_limits() -> None:
    forms = [form(IRECIST, number) for number in range(1, 6)]
    for resource in forms:
        check_json(resource, JsonLimits())
    check_json(bundle_of(*forms), JsonLimits())


def test_items_are_counted_per_resource_so_a_bundle_of_forms_is_not_summed() -> None:
    one = {"resourceType": "QuestionnaireResponse", "item": [{"linkId": "a"}] * 3}
    bundle = {"resourceType": "Bundle", "entry": [{"resource": one}] * 3}

    check_json(bundle, JsonLimits(max_items=3))
    with pytest.raises(JsonLimitError) as raised:
        check_json(bundle, JsonLimits(max_items=2))

    assert raised.value.expression == "Bundle.entry[2].resource"


@pytest.mark.parametrize(
    ("limits", "body", "fits"),
    [
        (JsonLimits(max_depth=3), [[[1]]], True),
        (JsonLimits(max_depth=3), [[[[1]]]], False),
        (JsonLimits(max_values=4), [1, 2, 3], True),  # the array and its three numbers
        (JsonLimits(max_values=4), [1, 2, 3, 4], False),
        (JsonLimits(max_string_length=3), {"abc": "def"}, True),
        (JsonLimits(max_string_length=3), {"abc": "defg"}, False),
        (JsonLimits(max_string_length=3), "abcd", False),  # the body itself a string
        (JsonLimits(max_bundle_entries=1), {"resourceType": "Bundle", "entry": [{}]}, True),
        (JsonLimits(max_bundle_entries=1), {"resourceType": "Bundle", "entry": [{}, {}]}, False),
        (JsonLimits(), {"resourceType": "Patient", "id": "a" * 64}, True),
        (JsonLimits(), {"id": "a" * 65}, True),  # not a resource: an element id has no limit
        (JsonLimits(), "\U0001f600 caf\u00e9", True),
    ],
)
def test_check_json_honours_each_limit_exactly_at_its_boundary(
    limits: JsonLimits, body: Any, fits: bool
) -> None:
    if fits:
        check_json(body, limits)
    else:
        with pytest.raises(JsonLimitError):
            check_json(body, limits)


def test_check_json_walks_100_000_levels_without_recursion() -> None:
    body: list[Any] = []
    for _ in range(100_000):
        body = [body]

    check_json(body, JsonLimits(max_depth=200_000, max_values=200_000))
    with pytest.raises(JsonLimitError) as raised:
        check_json(body, JsonLimits())

    assert raised.value.status == 400


def test_the_limits_come_from_the_settings(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, max_json_depth=2, max_string_length=5))
    client = app.test_client()

    assert post(client, "/fhir", b"[[[]]]").status_code == 400
    assert post(client, "/fhir", questionnaire_response(status="x" * 6)).status_code == 422


def test_the_limit_variables_are_read() -> None:
    settings = load_settings(
        {
            "FHIRNET_MAX_JSON_DEPTH": "10",
            "FHIRNET_MAX_JSON_VALUES": "11",
            "FHIRNET_MAX_STRING_LENGTH": "12",
            "FHIRNET_MAX_ITEMS": "13",
            "FHIRNET_MAX_BUNDLE_ENTRIES": "14",
            "FHIRNET_AUTH": "none",
        }
    )

    assert (
        settings.max_json_depth,
        settings.max_json_values,
        settings.max_string_length,
        settings.max_items,
        settings.max_bundle_entries,
    ) == (10, 11, 12, 13, 14)


STRICT = [
    pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": NaN}', id="NaN"),
    pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": -Infinity}', id="-Infinity"),
    pytest.param(b'{"resourceType": "QuestionnaireResponse", "a": 1e999}', id="1e999"),
    pytest.param(
        b'{"resourceType": "QuestionnaireResponse", "resourceType": "QuestionnaireResponse"}',
        id="duplicate key",
    ),
]


@pytest.mark.parametrize("url", FHIR_POSTS)
@pytest.mark.parametrize("body", STRICT)
def test_a_fhir_post_refuses_json_that_fhir_json_cannot_be(
    client: FlaskClient, url: str, body: bytes
) -> None:
    response = post(client, url, body)

    assert response.status_code == 400
    assert issue(response)["code"] == "structure"


@pytest.mark.parametrize("url", [*FHIR_POSTS, API])
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/fhir+xml",
        "",
        "application/json; charset=latin-1",
    ],
)
def test_every_post_refuses_a_body_that_is_not_json_with_415(
    client: FlaskClient, url: str, content_type: str
) -> None:
    response = post(client, url, b"{}", content_type)

    assert response.status_code == 415


@pytest.mark.parametrize("url", FHIR_POSTS)
@pytest.mark.parametrize(
    "content_type",
    [
        "application/fhir+json",
        "application/json",
        "Application/FHIR+JSON; charset=UTF-8",
        "application/json;charset=utf-8",
    ],
)
def test_a_fhir_post_takes_both_json_media_types_with_or_without_charset(
    client: FlaskClient, url: str, content_type: str
) -> None:
    response = post(client, url, b"{}", content_type)

    assert response.status_code == 400  # past the media type: {} is no resource
    assert "resourceType" in issue(response)["diagnostics"]


def test_tab_carriage_return_and_line_feed_are_text() -> None:
    check_json({"resourceType": "QuestionnaireResponse", "text": "a\tb\r\nc"}, JsonLimits())
