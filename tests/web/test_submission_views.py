"""The HTTP contract of the main job, end to end through the Flask test client on the embedded
store: ``POST /fhir/QuestionnaireResponse``, ``POST /fhir`` (transaction and batch Bundles),
``POST /fhir/QuestionnaireResponse/$extract``, and reading the results back with ``GET /fhir``."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.errors import FhirServerRejectedError, FhirServerUnavailableError
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.ports import Json
from fhirnet.web import WebState
from fhirnet.web.app import create_app
from tests.submissions import (
    CHOI,
    IRECIST,
    NOW,
    RECIST,
    SUBMIT,
    FailingStore,
    amended,
    body,
    bundle_of,
    counts,
    form,
    golden,
    issues_of,
    normalised,
    post,
    set_answer,
    target,
)

EXTRACT = "/fhir/QuestionnaireResponse/$extract"
BASE = "http://localhost/fhir"
CODES = {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()}


@pytest.fixture
def app(settings: Settings) -> Flask:
    app = create_app(settings, clock=lambda: NOW)
    app.config["TESTING"] = True
    return app


def store_of(app: Flask) -> EmbeddedStore:
    state: WebState = app.extensions["fhirnet"]
    store = state.backend.embedded_store()
    assert store is not None
    return store


def errors(response: TestResponse, status: int) -> list[tuple[str, list[str] | None]]:
    return [
        (issue["code"], issue.get("expression"))
        for issue in issues_of(response, status)
        if issue["severity"] == "error"
    ]


def category(report: Json) -> str | None:
    codings = [c for concept in report.get("conclusionCode", []) for c in concept["coding"]]
    return CODES[codings[0]["code"]] if codings else None


def path_of(url: str) -> str:
    """A URL the service gave, as the test client takes it."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def results_of(client: FlaskClient, form_id: str) -> Json:
    """The DiagnosticReport of a stored form, found the documented way: the Provenance that
    names the form as its entity, with the report included."""
    found = search(
        client,
        f"/fhir/Provenance?entity=QuestionnaireResponse/{form_id}"
        "&_include=Provenance:target:DiagnosticReport",
    )
    (report,) = [e["resource"] for e in found["entry"] if e["search"]["mode"] == "include"]
    included: Json = report
    return included


def search(client: FlaskClient, url: str) -> Json:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = body(response)
    assert bundle["type"] == "searchset"
    return bundle


def reports_newest_first(client: FlaskClient, patient: str) -> list[Json]:
    bundle = search(client, f"/fhir/DiagnosticReport?subject=Patient/{patient}&_sort=-date")
    return [entry["resource"] for entry in bundle.get("entry", [])]


# -- POST /fhir/QuestionnaireResponse ----------------------------------------------------------


# -- POST /fhir/QuestionnaireResponse: a FHIR create --------------------------------------------


def test_a_new_form_is_created_201_with_its_versioned_location_etag_and_the_stored_form(
    client: FlaskClient,
) -> None:
    response = post(client, form(RECIST, 1), url=SUBMIT)

    assert response.status_code == 201
    stored = body(response)
    assert stored["resourceType"] == "QuestionnaireResponse"
    assert response.headers["Location"] == (
        f"{BASE}/QuestionnaireResponse/{stored['id']}/_history/{stored['meta']['versionId']}"
    )
    assert response.headers["ETag"] == f'W/"{stored["meta"]["versionId"]}"'
    assert "Last-Modified" in response.headers
    assert body(client.get(path_of(response.headers["Location"]))) == stored
    assert body(client.get(f"/fhir/QuestionnaireResponse/{stored['id']}")) == stored


def test_an_identical_resubmission_of_a_form_is_200_with_the_same_stored_form(
    app: Flask, client: FlaskClient
) -> None:
    first = post(client, form(RECIST, 1), url=SUBMIT)
    before = counts(store_of(app))

    again = post(client, form(RECIST, 1), url=SUBMIT)

    # R4 conditional create: a match is not created again, it is answered 200 OK.
    assert again.status_code == 200
    assert body(again) == body(first)
    assert again.headers["Location"] == first.headers["Location"]
    assert counts(store_of(app)) == before


def test_an_amended_form_is_200_with_the_location_of_its_next_version(client: FlaskClient) -> None:
    first = body(post(client, form(RECIST, 1), url=SUBMIT))

    response = post(client, amended(form(RECIST, 1)), url=SUBMIT)

    assert response.status_code == 200
    stored = body(response)
    assert (stored["id"], stored["status"]) == (first["id"], "amended")
    assert response.headers["Location"].endswith(
        f"/QuestionnaireResponse/{first['id']}/_history/{stored['meta']['versionId']}"
    )
    assert stored["meta"]["versionId"] != first["meta"]["versionId"]


def test_a_created_form_prefers_minimal_or_an_outcome_with_the_category_and_the_report(
    client: FlaskClient,
) -> None:
    post(client, form(RECIST, 1), url=SUBMIT)
    post(client, form(RECIST, 2), url=SUBMIT, Prefer="return=minimal")

    minimal = post(client, form(RECIST, 3), url=SUBMIT, Prefer="return=minimal")
    outcome = post(client, form(RECIST, 3), url=SUBMIT, Prefer="return=OperationOutcome")

    assert (minimal.status_code, minimal.get_data()) == (201, b"")
    assert "/QuestionnaireResponse/" in minimal.headers["Location"]
    issues = issues_of(outcome, 200)
    text = " ".join(i["diagnostics"] for i in issues)
    assert "SD" in text or "Stable" in text
    form_id = minimal.headers["Location"].split("/")[-3]
    report = results_of(client, form_id)
    assert f"{BASE}/DiagnosticReport/{report['id']}" in text
    assert category(report) == "SD"


def test_submit_answers_the_report_of_the_same_submission(client: FlaskClient) -> None:
    created = body(post(client, form(RECIST, 1), url=SUBMIT))

    response = post(client, form(RECIST, 1), url=f"{SUBMIT}/$submit")

    assert response.status_code == 200
    report = body(response)
    assert report["resourceType"] == "DiagnosticReport"
    assert response.headers["Location"] == f"{BASE}/DiagnosticReport/{report['id']}"
    assert report == results_of(client, created["id"])


@pytest.mark.parametrize(
    "prefer", ["return=representation", "return=minimal", "return=OperationOutcome"]
)
def test_a_batch_answers_each_form_like_a_create_as_prefer_asks(
    client: FlaskClient, prefer: str
) -> None:
    bundle = bundle_of(form(RECIST, 1), form(CHOI, 1), kind="batch")

    answer = body(post(client, bundle, url="/fhir", Prefer=prefer))

    for entry in answer["entry"]:
        response = entry["response"]
        assert response["status"] == "201 Created"
        assert "/QuestionnaireResponse/" in response["location"]
        assert response["etag"] == 'W/"1"'
        if prefer == "return=representation":
            assert entry["resource"]["resourceType"] == "QuestionnaireResponse"
            assert response["location"].endswith(f"/{entry['resource']['id']}/_history/1")
        else:
            assert "resource" not in entry
        assert ("outcome" in response) is (prefer == "return=OperationOutcome")


def test_a_baseline_and_three_follow_ups_give_reports_with_the_computed_categories(
    client: FlaskClient,
) -> None:
    statuses = [post(client, form(RECIST, n)).status_code for n in range(1, 5)]

    reports = reports_newest_first(client, RECIST)

    assert statuses == [201] * 4
    assert [r["effectiveDateTime"] for r in reports] == [
        "2025-10-13", "2025-07-14", "2025-04-14", "2025-01-13"
    ]  # fmt: skip
    assert [category(r) for r in reports] == ["PR", "SD", "SD", None]
    assert {r["status"] for r in reports} == {"final"}


def test_a_written_report_is_answered_201_with_its_location_and_etag(
    client: FlaskClient,
) -> None:
    response = post(client, form(RECIST, 1))

    assert response.status_code == 201
    report = body(response)
    assert report["resourceType"] == "DiagnosticReport"
    assert response.headers["Location"] == f"{BASE}/DiagnosticReport/{report['id']}"
    assert response.headers["ETag"] == 'W/"1"'
    read = client.get(path_of(response.headers["Location"]))
    assert (read.status_code, body(read)) == (200, report)
    assert read.headers["ETag"] == 'W/"1"'


def test_a_resubmission_is_answered_200_and_writes_nothing(app: Flask, client: FlaskClient) -> None:
    first = post(client, form(RECIST, 1))
    before = counts(store_of(app))

    again = [post(client, form(RECIST, 1)) for _ in range(2)]

    assert [r.status_code for r in again] == [200, 200]
    assert {r.headers["Location"] for r in again} == {first.headers["Location"]}
    assert {r.headers["ETag"] for r in again} == {'W/"1"'}
    assert body(again[-1]) == body(first)
    assert counts(store_of(app)) == before


@pytest.mark.parametrize("number", [1, 2], ids=["baseline", "follow-up"])
def test_eight_simultaneous_submissions_of_one_form_leave_one_set_of_results(
    app: Flask, client: FlaskClient, number: int
) -> None:
    if number > 1:
        post(client, form(RECIST, 1))
    answers: list[TestResponse] = []

    def send() -> None:
        answers.append(post(app.test_client(), form(RECIST, number)))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.headers["Location"] for a in answers}) == 1
    per_exam = {"QuestionnaireResponse": 1, "DiagnosticReport": 1, "Provenance": 1}
    expected = {kind: n * number for kind, n in per_exam.items()}
    # 3 targets + sum + 4 risk Observations at baseline; 3 targets + sum + response + status later.
    assert counts(store_of(app)) == expected | {
        "BodyStructure": 3,
        "Observation": 8 + 6 * (number - 1),
    }


def test_an_amended_baseline_reassesses_the_later_exams_and_amends_their_reports(
    client: FlaskClient,
) -> None:
    for n in range(1, 5):
        post(client, form(RECIST, n))
    before = {r["id"]: r for r in reports_newest_first(client, RECIST)}
    baseline = amended(form(RECIST, 1))
    set_answer(target(baseline, "T1"), "lesion-size", "valueDecimal", 43.0)  # sum 92 -> 93 mm

    response = post(client, baseline, Prefer="return=OperationOutcome")

    assert response.status_code == 200  # the report was updated, not created
    messages = [i["diagnostics"] for i in issues_of(response, 200)]
    assert any("Re-assessed" in m for m in messages)
    after = reports_newest_first(client, RECIST)
    assert [category(r) for r in after] == ["PR", "PR", "SD", None]  # 2025-07-14: SD -> PR
    assert {r["status"] for r in after} == {"amended"}
    assert {r["id"] for r in after} == set(before)  # the same reports, new versions
    assert all(r["meta"]["versionId"] == "2" for r in after)


def test_an_invalid_form_is_422_with_the_validators_expressions_and_nothing_is_written(
    app: Flask, client: FlaskClient
) -> None:
    post(client, form(RECIST, 1))
    before = counts(store_of(app))
    follow_up = form(RECIST, 2)
    del follow_up["subject"]
    set_answer(target(follow_up, "T1"), "lesion-size", "valueDecimal", 2000)

    refused = post(client, follow_up)
    validated = post(client, follow_up, url="/fhir/QuestionnaireResponse/$validate")

    assert errors(refused, 422) == [
        ("required", ["QuestionnaireResponse"]),
        ("value", ["QuestionnaireResponse.item[8].item[3].answer[0].valueDecimal"]),
    ]
    assert errors(refused, 422) == errors(validated, 422)
    assert counts(store_of(app)) == before


@pytest.mark.parametrize("status", ["in-progress", "stopped", "entered-in-error"])
def test_a_form_that_is_not_completed_or_amended_is_422(
    app: Flask, client: FlaskClient, status: str
) -> None:
    baseline = form(RECIST, 1)
    baseline["status"] = status

    assert errors(post(client, baseline), 422) == [
        ("business-rule", ["QuestionnaireResponse.status"])
    ]
    assert set(counts(store_of(app)).values()) == {0}


def test_a_follow_up_target_unknown_at_baseline_is_422_at_its_item(
    app: Flask, client: FlaskClient
) -> None:
    post(client, form(RECIST, 1))
    before = counts(store_of(app))
    follow_up = form(RECIST, 2)
    set_answer(target(follow_up, "T3"), "lesion-id", "valueString", "T4")

    assert errors(post(client, follow_up), 422) == [
        ("business-rule", ["QuestionnaireResponse.item[10].item[0]"])
    ]
    assert counts(store_of(app)) == before


def test_a_follow_up_without_a_baseline_form_is_422(client: FlaskClient) -> None:
    issues = issues_of(post(client, form(CHOI, 2)), 422)

    assert [i["expression"] for i in issues] == [["QuestionnaireResponse.item[3]"]]
    assert "send the baseline form first" in issues[0]["diagnostics"]


def test_a_discordant_reader_conclusion_is_accepted_and_flagged(client: FlaskClient) -> None:
    for n in (1, 2):
        post(client, form(RECIST, n))

    response = post(client, form(RECIST, 3), Prefer="return=OperationOutcome")

    issues = issues_of(response, 201)
    assert [i["severity"] for i in issues] == ["information", "warning", "information"]
    assert issues[1]["expression"] == ["QuestionnaireResponse.item[13]"]
    assert "Discordant" in issues[1]["diagnostics"]
    assert response.headers["Location"] in issues[2]["diagnostics"]
    report = body(client.get(path_of(response.headers["Location"])))
    assert category(report) == "SD"
    assert "The reader's conclusion (PR versus baseline, SD versus nadir)" in report["conclusion"]
    assert report["conclusion"].endswith("differs from the computed SD: discordant.")


def test_prefer_minimal_answers_no_body_but_the_location(client: FlaskClient) -> None:
    response = post(client, form(RECIST, 1), Prefer="return=minimal")

    assert response.status_code == 201
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers
    assert response.headers["Location"].startswith(f"{BASE}/DiagnosticReport/")


@pytest.mark.parametrize(
    ("sent", "status", "code"),
    [
        ({"resourceType": "Patient"}, 400, "invalid"),
        ([], 400, "structure"),
        ({"resourceType": "QuestionnaireResponse"}, 422, "required"),
    ],
    ids=["a Patient", "not a resource", "an empty form"],
)
def test_a_body_that_is_not_a_form_is_refused(
    client: FlaskClient, sent: Any, status: int, code: str
) -> None:
    assert code in {c for c, _ in errors(post(client, sent), status)}


def test_a_refused_transaction_is_502_with_the_servers_issues(
    settings: Settings, tmp_path: Any
) -> None:
    server_issue = {"severity": "error", "code": "invalid", "diagnostics": "no BodyStructure"}
    refusal = FhirServerRejectedError(
        "POST / answered 400",
        status=400,
        outcome={"resourceType": "OperationOutcome", "issue": [server_issue]},
    )
    with EmbeddedStore.open(tmp_path / "other") as inner:
        client = create_app(settings, store=FailingStore(inner, refusal)).test_client()

        issues = issues_of(post(client, form(RECIST, 1)), 502)

    assert issues[0]["code"] == "exception"
    assert "A refused transaction is not applied" in issues[0]["diagnostics"]
    assert issues[1:] == [server_issue]


def test_an_unavailable_server_is_503_with_retry_after(settings: Settings, tmp_path: Any) -> None:
    down = FhirServerUnavailableError("GET answered 503", status=503, retry_after=7.2)
    with EmbeddedStore.open(tmp_path / "other") as inner:
        client = create_app(settings, store=FailingStore(inner, down, on_search=True)).test_client()

        response = post(client, form(RECIST, 1))

    assert [i["code"] for i in issues_of(response, 503)] == ["transient"]
    assert response.headers["Retry-After"] == "8"


# -- POST /fhir: Bundles -----------------------------------------------------------------------


def test_a_transaction_bundle_of_several_patients_is_written_and_answered_per_entry(
    app: Flask, client: FlaskClient
) -> None:
    resources = [form(RECIST, 2), form(IRECIST, 1), form(RECIST, 1), form(IRECIST, 2)]

    response = post(client, bundle_of(*resources), url="/fhir")

    assert response.status_code == 200
    answer = body(response)
    assert answer["type"] == "transaction-response"
    assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created"] * 4
    located = [body(client.get(path_of(e["response"]["location"]))) for e in answer["entry"]]
    assert located == [e["resource"] for e in answer["entry"]]
    assert [r["resourceType"] for r in located] == ["QuestionnaireResponse"] * 4
    assert all("/_history/1" in e["response"]["location"] for e in answer["entry"])
    reports = [results_of(client, r["id"]) for r in located]
    assert [(r["subject"]["reference"], category(r)) for r in reports] == [
        (f"Patient/{RECIST}", "SD"),
        (f"Patient/{IRECIST}", None),
        (f"Patient/{RECIST}", None),
        (f"Patient/{IRECIST}", "iUPD"),
    ]
    assert counts(store_of(app))["Provenance"] == 4


def test_a_transaction_bundle_with_an_invalid_form_is_422_and_writes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    broken = form(IRECIST, 1)
    set_answer(target(broken, "T1"), "lesion-size", "valueDecimal", -1)

    response = post(client, bundle_of(form(RECIST, 1), broken), url="/fhir")

    assert errors(response, 422) == [
        ("value", ["Bundle.entry[1].resource.item[6].item[3].answer[0].valueDecimal"])
    ]
    assert set(counts(store_of(app)).values()) == {0}


def test_a_batch_bundle_answers_each_entry_with_its_own_status(
    app: Flask, client: FlaskClient
) -> None:
    broken = form(CHOI, 1)
    broken["status"] = "in-progress"
    post(client, form(RECIST, 1))

    response = post(
        client,
        bundle_of(form(RECIST, 1), broken, form(RECIST, 2), kind="batch"),
        url="/fhir",
        Prefer="return=OperationOutcome",
    )

    answer = body(response)
    assert answer["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["200 OK", "422 Unprocessable Entity", "201 Created"]
    refused = answer["entry"][1]["response"]["outcome"]["issue"]
    assert [i["expression"] for i in refused] == [["Bundle.entry[1].resource.status"]]
    assert all("resource" not in entry for entry in answer["entry"])
    assert counts(store_of(app))["DiagnosticReport"] == 2


def test_a_bundle_entry_that_is_not_a_form_is_400(client: FlaskClient) -> None:
    bundle = bundle_of(form(RECIST, 1))
    bundle["entry"][0]["request"] = {"method": "PUT", "url": "QuestionnaireResponse/x"}

    assert errors(post(client, bundle, url="/fhir"), 400) == [
        ("not-supported", ["Bundle.entry[0].request"])
    ]


# -- $extract ----------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "Parameters"])
def test_extract_answers_the_golden_transaction_and_writes_nothing(
    app: Flask, client: FlaskClient, wrapped: bool
) -> None:
    for n in (0, 1, 2):  # the golden history: the pre-baseline form first
        post(client, form(IRECIST, n))
    before = counts(store_of(app))
    resource = form(IRECIST, 3)
    sent = (
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": resource}],
        }
        if wrapped
        else resource
    )

    response = post(client, sent, url=EXTRACT)

    assert response.status_code == 200
    assert normalised(body(response)) == normalised(golden(IRECIST, 3))
    assert counts(store_of(app)) == before


def test_extract_refuses_what_submission_refuses(app: Flask, client: FlaskClient) -> None:
    assert errors(post(client, form(RECIST, 2), url=EXTRACT), 422)[0][0] == "business-rule"
    assert errors(post(client, {"resourceType": "Parameters"}, url=EXTRACT), 400) == [
        ("required", ["Parameters.parameter"])
    ]


# -- GET /fhir/<type>: what the embedded store holds -------------------------------------------


def test_include_adds_each_reports_observations_and_next_links_page_through(
    client: FlaskClient,
) -> None:
    for n in range(1, 5):
        post(client, form(RECIST, n))
    url: str | None = (
        f"/fhir/DiagnosticReport?subject=Patient/{RECIST}&_sort=-date"
        "&_include=DiagnosticReport:result&_count=1"
    )
    pages = []
    while url is not None:
        bundle = search(client, url)
        pages.append(bundle)
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = path_of(links["next"]) if "next" in links else None

    assert [page["total"] for page in pages] == [4] * 4
    for page in pages:
        (report,) = [e["resource"] for e in page["entry"] if e["search"]["mode"] == "match"]
        included = {
            f"Observation/{e['resource']['id']}"
            for e in page["entry"]
            if e["search"]["mode"] == "include"
        }
        assert included == {r["reference"] for r in report["result"]}
    dates = [p["entry"][0]["resource"]["effectiveDateTime"] for p in pages]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        (f"patient=Patient/{RECIST}", 2),
        ("code=http://loinc.org|18748-4", 3),
        ("date=ge2025-02-01", 2),
        ("status=final", 3),
        (
            f"identifier=https://fhirnet.dev/fhir/sid/imaging-response-report|{RECIST}/{RECIST}-01",
            1,
        ),
        ("_lastUpdated=gt2000-01-01", 3),
    ],
)
def test_reports_are_searched_by_the_registry_parameters(
    client: FlaskClient, query: str, matches: int
) -> None:
    for resource in (form(RECIST, 1), form(RECIST, 2), form(CHOI, 1)):
        post(client, resource)

    assert search(client, f"/fhir/DiagnosticReport?{query}")["total"] == matches


def test_stored_resources_are_read_by_id_and_unknown_ones_are_404(client: FlaskClient) -> None:
    post(client, form(RECIST, 1))
    (stored,) = [e["resource"] for e in search(client, "/fhir/QuestionnaireResponse")["entry"]]

    assert body(client.get(f"/fhir/QuestionnaireResponse/{stored['id']}")) == stored
    assert errors(client.get("/fhir/Observation/no-such-id"), 404) == [("not-found", None)]


def test_an_unknown_search_parameter_is_400_unless_lenient(client: FlaskClient) -> None:
    assert errors(client.get("/fhir/Observation?focus=x"), 400)[0][0] == "not-supported"

    lenient = client.get("/fhir/Observation?focus=x", headers={"Prefer": "handling=lenient"})

    assert body(lenient)["link"][0]["url"] == f"{BASE}/Observation"


# -- documentation -----------------------------------------------------------------------------


def test_the_openapi_document_describes_the_submission_statuses(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()

    def statuses(path: str) -> set[str]:
        return set(document["paths"][path]["post"]["responses"])

    auth = {"401", "403"}  # a token is needed (docs/auth.md)
    failures = {"400", "406", "413", "415", "422", "502", "503"}
    assert statuses(SUBMIT) == {"200", "201", "202"} | failures | auth  # 202: docs/delivery.md
    assert statuses("/fhir") == {"200", "202"} | failures | auth
    assert statuses(EXTRACT) == {"200", "400", "406", "413", "415", "422", "503"} | auth
