"""Logs are JSON lines with a request id and the URL rule, and never hold patient data: no
identifiers, references, answers, dates, raw paths or query strings, nor exception messages."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.config import Settings
from fhirnet.ports import Json
from fhirnet.web import fhir_views
from fhirnet.web.app import create_app
from fhirnet.web.logs import ROOT_LOGGER, JsonFormatter, request_id_of
from fhirnet.web.serving import gunicorn_options
from tests.submissions import CHOI, IRECIST, NOW, RECIST, bundle_of, form, form_paths

FHIR = "application/fhir+json"
PATIENTS = (RECIST, CHOI, IRECIST)


@pytest.fixture
def app(settings: Settings) -> Flask:
    """The application on the submission tests' clock, so the example forms are valid."""
    return create_app(settings, clock=lambda: NOW)


@pytest.fixture
def log_lines(app: Flask) -> Iterator[io.StringIO]:
    """What the app's log handler writes, from now on."""
    (handler,) = [
        handler
        for handler in logging.getLogger(ROOT_LOGGER).handlers
        if isinstance(handler.formatter, JsonFormatter)
    ]
    assert isinstance(handler, logging.StreamHandler)
    captured = io.StringIO()
    previous = handler.setStream(captured)
    yield captured
    handler.setStream(previous)


def lines(captured: io.StringIO) -> list[dict[str, Any]]:
    """Every line, parsed: each must be one JSON object with a request id."""
    parsed = [json.loads(line) for line in captured.getvalue().splitlines()]
    for line in parsed:
        assert isinstance(line, dict)
        assert isinstance(line["request_id"], str)
    return parsed


def patient_data(resource: Json) -> set[str]:
    """What a form says about its patient: ids, identifiers, references, answers, dates."""
    found = {resource["id"], resource["identifier"]["value"], resource["authored"]}
    for reference in (resource["subject"]["reference"], resource["author"]["reference"]):
        found |= {reference, reference.split("/", 1)[1]}
    stack: list[Any] = [resource]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if key in ("valueString", "valueDate", "valueDateTime") and isinstance(child, str):
                    found.add(child)
                stack.append(child)
        elif isinstance(value, list):
            stack.extend(value)
    return found


def assert_free_of(line: dict[str, Any], secrets: set[str]) -> None:
    # ``time`` is the clock of the test run, which may happen to be a date of a form.
    text = json.dumps({key: value for key, value in line.items() if key != "time"})
    leaked = sorted(secret for secret in secrets if secret in text)
    assert not leaked, f"{leaked} in {text}"


def test_submitting_every_example_form_logs_no_patient_data(
    client: FlaskClient, log_lines: io.StringIO
) -> None:
    secrets: set[str] = set()
    requests = 0
    for patient in PATIENTS:
        forms = [form(patient, number) for number in range(1, len(form_paths(patient)) + 1)]
        for resource in forms:
            secrets |= patient_data(resource)
            headers = {"Content-Type": FHIR}
            query = f"?_format=json&subject=Patient/{patient}"
            for url in (
                "/fhir/QuestionnaireResponse/$validate",
                "/fhir/QuestionnaireResponse/$extract",
                "/fhir/QuestionnaireResponse",
            ):
                response = client.post(url, data=json.dumps(resource), headers=headers)
                assert response.status_code in (200, 201), response.get_data(as_text=True)
            client.get(f"/fhir/QuestionnaireResponse{query}")
            client.get(f"/fhir/QuestionnaireResponse/{resource['id']}")
            requests += 5
        client.post("/fhir", data=json.dumps(bundle_of(*forms, kind="batch")), headers=headers)
        requests += 1

    logged = lines(log_lines)

    assert sum(line["logger"] == "fhirnet.web.request" for line in logged) == requests
    for line in logged:
        assert_free_of(line, secrets)
    assert {line["path"] for line in logged} >= {
        "/fhir/QuestionnaireResponse",
        "/fhir/<resource_type>/<logical_id:resource_id>",
        "/fhir/<resource_type>",
    }


def test_invalid_and_hostile_forms_log_no_patient_data(
    client: FlaskClient, log_lines: io.StringIO
) -> None:
    resource = form(IRECIST, 2)
    secrets = patient_data(resource)
    broken = json.loads(json.dumps(resource))
    broken["item"][0]["answer"] = [{"valueDate": "2025-02-30"}]  # no such day
    future = json.loads(json.dumps(resource))
    future["authored"] = "2099-01-01T00:00:00Z"
    secrets |= {"2025-02-30", "2099-01-01"}
    bodies = [
        json.dumps(broken),
        json.dumps(future),
        json.dumps({**resource, "status": "x" * 20_000}),
        json.dumps(resource)[:-7],  # truncated
        json.dumps(resource).replace('"status"', '"status": "completed", "status"', 1),
        "[" * 5000 + "]" * 5000,
    ]
    for data in bodies:
        for url in ("/fhir/QuestionnaireResponse", "/fhir/QuestionnaireResponse/$validate"):
            response = client.post(url, data=data, headers={"Content-Type": FHIR})
            assert 400 <= response.status_code < 500

    for line in lines(log_lines):
        assert_free_of(line, secrets)


def test_an_unexpected_error_logs_its_type_and_code_locations_but_not_its_message(
    client: FlaskClient, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = form(IRECIST, 1)
    echo = f"cannot handle {resource['subject']['reference']} answer T1"

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(echo)

    monkeypatch.setattr(fhir_views, "validate_response", broken)

    response = client.post(
        f"/fhir/QuestionnaireResponse/$validate?{resource['id']}=1",
        data=json.dumps(resource),
        headers={"Content-Type": FHIR, "Prefer": "handling=lenient"},
    )

    assert response.status_code == 500
    (error,) = [line for line in lines(log_lines) if line["level"] == "ERROR"]
    assert error["exception"] == "builtins.RuntimeError"
    assert any(location.endswith(" in broken") for location in error["traceback"])
    assert error["path"] == "/fhir/QuestionnaireResponse/$validate"
    assert_free_of(error, patient_data(resource) | {echo})


def test_a_request_line_has_the_fields_of_the_contract(
    client: FlaskClient, log_lines: io.StringIO
) -> None:
    response = client.get("/fhir/Questionnaire/gep-net-imaging-crf?_format=json")

    (line,) = lines(log_lines)
    assert set(line) == {
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "path",
        "status",
        "duration_ms",
    }
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["path"] == "/fhir/<resource_type>/<logical_id:resource_id>"
    assert line["status"] == response.status_code
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def test_an_unmatched_path_is_logged_without_it(
    client: FlaskClient, log_lines: io.StringIO
) -> None:
    client.get("/nothing/Patient-123?identifier=MRN-42")

    (line,) = lines(log_lines)
    assert line["path"] is None
    assert "Patient-123" not in json.dumps(line)
    assert "MRN-42" not in json.dumps(line)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123_X.y", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("has space", False),
        ('x"}, {"level": "CRITICAL', False),
        ("Patient/123", False),
    ],
)
def test_a_well_formed_request_id_is_echoed_and_any_other_replaced(
    client: FlaskClient, log_lines: io.StringIO, sent: str, kept: bool
) -> None:
    response = client.get("/health", headers={"X-Request-ID": sent})

    echoed = response.headers["X-Request-ID"]
    assert (echoed == sent) is kept
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", echoed)
    (line,) = lines(log_lines)
    assert line["request_id"] == echoed


def test_a_request_id_is_generated_when_none_is_sent() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_of(None))
    assert request_id_of(None) != request_id_of(None)


def test_gunicorn_prints_no_access_log_and_formats_its_own_records_as_json() -> None:
    options = gunicorn_options(Settings(auth="none"))

    assert options["accesslog"] is None
    config = options["logconfig_dict"]
    assert config["formatters"]["json"] == {"()": "fhirnet.web.logs.JsonFormatter"}
    assert config["loggers"]["gunicorn.error"]["handlers"] == ["json"]
    assert config["root"]["handlers"] == []
