"""Submission scenarios of the issue, end to end against a real FHIR server process.

An EHR posts filled imaging CRFs (QuestionnaireResponses) to fhirnet; fhirnet assesses them
against the patient's earlier forms on the FHIR server and writes the results there. These tests
hold fhirnet to its HTTP contract (201/200/422/502/503, Location, OperationOutcome bodies,
``transaction-response``/``batch-response``) and check every outcome by reading the FHIR server
back with a plain :class:`~fhirnet.adapters.fhir_client.FhirClient`, never by asking fhirnet.

Written for any FHIR R4 server (``FHIRNET_TEST_FHIR_URL``):

* each test makes its own Patient and Practitioners on the server (ids are whatever the server
  assigns) and rewrites the example forms to them, with exam identifiers carrying a per-test
  suffix, so tests never see each other's data and can be re-run against a persistent server;
* a search parameter the server does not know may be ignored (sekmet-fhir then returns every
  resource of the type) or refused: every search is filtered again on the client, and a refused
  one is repeated without parameters (:func:`search`);
* server failures that cannot be provoked on a real server (500, 503 with ``Retry-After``, 429,
  a timeout, a refusal, a dropped connection) come from the fault proxy
  (:mod:`tests.integration.fault_proxy`) between fhirnet and the server.

fhirnet runs in-process (``create_app`` and Flask's test client) except for the concurrency
scenario, which needs real parallel requests to separate gunicorn workers.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.errors import FhirServerRejectedError
from tests.integration.conftest import RecordingSession
from tests.integration.fault_proxy import (
    TRANSACTION,
    WRITE,
    Delay,
    Drop,
    Fault,
    FaultProxy,
    ProxiedRequest,
    Respond,
    refuse,
    server_error,
    too_many_requests,
    unavailable,
)
from tests.integration.fhirnets import (
    FHIR_JSON,
    Answer,
    Fhirnet,
    MakeFhirnet,
    fhirnet_settings_environment,
)
from tests.servers import free_port, serving

pytestmark = pytest.mark.integration

Json = dict[str, Any]

ROOT = Path(__file__).parents[2]
FORMS = ROOT / "examples" / "questionnaire-responses"
RESPONSE_CATEGORY_VALUESET = ROOT / "profiles" / "ValueSet-response-category.json"

CONTENT_TYPE = "Content-Type"
SID = "https://fhirnet.dev/fhir/sid"
REPORT_SID = f"{SID}/imaging-response-report"
RESPONSE_ASSESSMENT_SID = f"{SID}/response-assessment"
CRF_SUBMISSION_SID = f"{SID}/crf-submission"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
OBSERVATION_CODES = "https://fhirnet.dev/fhir/CodeSystem/observation-codes"
#: Identifies the test's own Patients and Practitioners on a shared server.
TEST_SYSTEM = "urn:fhirnet:integration-test"

#: Seconds fhirnet waits for the FHIR server in the fault scenarios (``FHIRNET_FHIR_TIMEOUT``).
FHIRNET_TIMEOUT = 2.0
#: gunicorn workers and threads of the concurrency scenario: parallel in processes and threads.
WORKERS, THREADS = 4, 4
CONCURRENT_SUBMISSIONS = 8
#: Page size of the read-back searches.
READ_BACK_PAGE = "100"

#: The computed categories of each example series, from its README, exam 1 (baseline) onwards.
CATEGORIES: Mapping[str, Sequence[str | None]] = {
    "pancreatic-net-everolimus": (None, "PR", "PR", "SD", "PD"),
    # The last exam is a continuing PR (criteria v2 §2.1 rule 6, D16).
    "small-bowel-net-prrt": (None, "SD", "SD", "PR", "PR", "PR"),
    "g3-nec-immunotherapy": (None, "iUPD", "iSD", "iSD", "iPR"),
}


# -- the CRF forms, rewritten per test -----------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    """A Patient made on the server for one test, with the example forms of one series.

    The forms name this Patient and Practitioners made with it, and their exam identifiers end
    in the test's suffix; ``id`` is the server's.
    """

    id: str
    series: str
    suffix: str
    practitioners: Mapping[str, str] = field(repr=False)

    @property
    def reference(self) -> str:
        return f"Patient/{self.id}"

    def form(self, number: int, **changes: Any) -> Json:
        """The ``number``-th form of the series (1 is the baseline), as the EHR would post it."""
        response = copy.deepcopy(_example(self.series, number))
        response.pop("id", None)  # a create carries no id; fhirnet must not depend on one
        response["identifier"]["value"] = self.exam(number)
        response["subject"] = {"reference": self.reference}
        author = response.get("author", {}).get("reference")
        if author in self.practitioners:
            response["author"] = {"reference": self.practitioners[author]}
        response.update(changes)
        return response

    def exam(self, number: int) -> str:
        """The form's identifier value, which identifies the exam across amendments."""
        return f"{_example(self.series, number)['identifier']['value']}-{self.suffix}"

    def report_identifier(self, number: int) -> str:
        """The value of the exam's DiagnosticReport identifier: ``<patient-id>/<exam>``."""
        return f"{self.id}/{self.exam(number)}"

    def imaging_date(self, number: int) -> str:
        return str(answer(_example(self.series, number), "imaging-date")["valueDate"])


@cache
def _example_paths(series: str) -> tuple[Path, ...]:
    # The baseline and follow-ups (01, 02, ...); a pre-baseline form (00) is not part of a series.
    paths = tuple(
        path
        for path in sorted((FORMS / series).glob("[0-9][0-9]-*.json"))
        if not path.name.endswith("-pre-baseline.json")
    )
    assert paths, f"no example forms in {FORMS / series}"
    return paths


@cache
def _example_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _example(series: str, number: int) -> Json:
    result: Json = json.loads(_example_text(_example_paths(series)[number - 1]))
    return result


def answer(response: Json, link_id: str) -> Json:
    """The first answer to the top-level item ``link_id`` of a form."""
    for item in response["item"]:
        if item["linkId"] == link_id:
            first: Json = item["answer"][0]
            return first
    raise KeyError(link_id)


def target_lesion(response: Json, lesion_id: str) -> Json:
    """The ``target-lesion`` group of ``lesion_id``, to change its answers in place."""
    for item in response["item"]:
        if item["linkId"] == "target-lesion":
            ids = [i for i in item["item"] if i["linkId"] == "lesion-id"]
            if ids and ids[0]["answer"][0]["valueString"] == lesion_id:
                group: Json = item
                return group
    raise KeyError(lesion_id)


def set_lesion_size(response: Json, lesion_id: str, size: float) -> None:
    for item in target_lesion(response, lesion_id)["item"]:
        if item["linkId"] == "lesion-size":
            item["answer"] = [{"valueDecimal": size}]


def new_patient(fhir: FhirClient, series: str) -> Patient:
    """Create a Patient and the forms' Practitioners on the server in one transaction.

    Servers that check references (HAPI's default) refuse forms naming resources they do not
    have, so they are made first; their ids are the server's.
    """
    suffix = uuid.uuid4().hex[:12]
    authors = sorted(
        {
            str(_example(series, n)["author"]["reference"])
            for n in range(1, len(_example_paths(series)) + 1)
            if "author" in _example(series, n)
        }
    )
    entries = [_create("Patient", f"{series}-{suffix}")]
    entries += [_create("Practitioner", f"{author}-{suffix}") for author in authors]
    answered = fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    ids = [
        _located_id(entry, expected_type)
        for entry, expected_type in zip(
            answered["entry"], ["Patient", *("Practitioner" for _ in authors)], strict=True
        )
    ]
    practitioners = {author: f"Practitioner/{ids[i + 1]}" for i, author in enumerate(authors)}
    return Patient(id=ids[0], series=series, suffix=suffix, practitioners=practitioners)


def _create(resource_type: str, value: str) -> Json:
    resource: Json = {
        "resourceType": resource_type,
        "identifier": [{"system": TEST_SYSTEM, "value": value}],
    }
    if resource_type == "Patient":
        resource["name"] = [{"family": "Integration", "given": ["Scenario"]}]
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {"method": "POST", "url": resource_type},
    }


def _located_id(entry: Json, resource_type: str) -> str:
    """The id in a ``response.location`` (relative or absolute, with or without history)."""
    path = urlsplit(str(entry["response"]["location"])).path.split("/_history/")[0]
    found_type, found_id = path.rstrip("/").split("/")[-2:]
    assert found_type == resource_type, entry
    return found_id


# -- fhirnet, as the EHR sees it -----------------------------------------------------------------


@pytest.fixture
def fhirnet(make_fhirnet: MakeFhirnet, fhir_base_url: str) -> Fhirnet:
    """fhirnet writing straight to the server under test."""
    return make_fhirnet(fhir_base_url)


@pytest.fixture
def proxied_fhirnet(make_fhirnet: MakeFhirnet, fault_proxy: FaultProxy) -> Fhirnet:
    """fhirnet writing through the fault proxy, with a short timeout so that timeouts are quick."""
    return make_fhirnet(fault_proxy.base_url, timeout=FHIRNET_TIMEOUT)


@pytest.fixture
def proxied_sync_fhirnet(make_fhirnet: MakeFhirnet, fault_proxy: FaultProxy) -> Fhirnet:
    """:func:`proxied_fhirnet` without durable delivery (``FHIRNET_OUTBOX=off``): a failure of
    the server is the EHR's to retry, answered 502/503 (durable delivery answers 202 instead:
    ``test_durable_delivery.py``)."""
    return make_fhirnet(fault_proxy.base_url, timeout=FHIRNET_TIMEOUT, outbox=False)


@pytest.fixture
def served_fhirnet(fhir_base_url: str, tmp_path: Path) -> Iterator[Fhirnet]:
    """fhirnet served by gunicorn in a subprocess (``wsgi:app``, as deployed) with several
    worker processes and threads each, so that submissions really run in parallel and no
    in-process lock can hide a race."""
    data_dir = tmp_path / "fhirnet-data"
    data_dir.mkdir()
    log_path = tmp_path / "gunicorn.log"
    port = free_port()
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("FHIRNET_") and name not in ("GUNICORN_CMD_ARGS",)
    }
    environment |= fhirnet_settings_environment(fhir_base_url, data_dir, timeout=None)
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(WORKERS), "--threads", str(THREADS),
        "--bind", f"127.0.0.1:{port}", "--no-control-socket",
        "--log-level", "warning", "--timeout", "120",
        "wsgi:app",
    ]  # fmt: skip
    with serving(
        command,
        port=port,
        env=environment,
        log_path=log_path,
        startup_seconds=60,
        stop_seconds=15,
    ):
        yield Fhirnet(url=f"http://127.0.0.1:{port}")


# -- reading the FHIR server back ----------------------------------------------------------------


def search(
    fhir: FhirClient, resource_type: str, params: Mapping[str, str], keep: Callable[[Json], bool]
) -> list[Json]:
    """The resources a search finds that ``keep`` accepts, filtered on the client.

    A server may ignore a parameter it does not support (and match everything) or refuse it
    with a 4xx; refused, the search is repeated with no parameter and filtered all the same.
    """
    try:
        found = list(fhir.search(resource_type, params))
    except FhirServerRejectedError:
        found = list(fhir.search(resource_type, {"_count": READ_BACK_PAGE}))
    unique = {resource["id"]: resource for resource in found if keep(resource)}
    return list(unique.values())


def refers_to(reference: Any, target: str) -> bool:
    """Whether a Reference points at ``target`` (``Type/id``), written relative or absolute,
    with or without a version."""
    if not isinstance(reference, Mapping):
        return False
    value = str(reference.get("reference", "")).split("/_history/")[0]
    return value == target or value.endswith(f"/{target}")


def identifiers(resource: Json) -> list[tuple[str, str]]:
    found = resource.get("identifier") or []
    if isinstance(found, Mapping):  # QuestionnaireResponse.identifier is 0..1
        found = [found]
    return [(str(i.get("system")), str(i.get("value"))) for i in found]


def has_identifier(resource: Json, system: str, value: str) -> bool:
    return (system, value) in identifiers(resource)


@dataclass(frozen=True)
class Written:
    """What the server holds for one patient, read back from it directly."""

    reports: list[Json]
    observations: list[Json]
    responses: list[Json]
    lesions: list[Json]
    provenances: list[Json]

    @property
    def everything(self) -> list[Json]:
        return [
            *self.reports,
            *self.observations,
            *self.responses,
            *self.lesions,
            *self.provenances,
        ]

    def keys(self) -> set[tuple[str, str]]:
        """``(type, id)`` of every resource: equal sets mean nothing was created or removed."""
        return {(r["resourceType"], r["id"]) for r in self.everything}

    def report(self, patient: Patient, number: int) -> Json:
        """The exam's one DiagnosticReport (fails when there is none or more than one)."""
        value = patient.report_identifier(number)
        found = [r for r in self.reports if has_identifier(r, REPORT_SID, value)]
        assert len(found) == 1, f"{len(found)} DiagnosticReports {REPORT_SID}|{value}"
        return found[0]

    def assessment(self, patient: Patient, number: int) -> Json:
        """The exam's one response-assessment Observation."""
        value = patient.report_identifier(number)
        found = [o for o in self.observations if has_identifier(o, RESPONSE_ASSESSMENT_SID, value)]
        assert len(found) == 1, f"{len(found)} Observations {RESPONSE_ASSESSMENT_SID}|{value}"
        return found[0]

    def categories(self) -> list[tuple[str, str | None]]:
        """``(effectiveDateTime, category)`` of every report, in date order."""
        return sorted((str(r.get("effectiveDateTime")), category(r)) for r in self.reports)


def targets(target: str) -> Callable[[Json], bool]:
    """Whether a Provenance has ``target`` among its targets."""
    return lambda provenance: any(refers_to(t, target) for t in provenance.get("target") or [])


def written(fhir: FhirClient, patient: Patient) -> Written:
    """Everything of ``patient`` on the server: reports, Observations, forms, lesions, and the
    Provenance of each report."""
    subject = patient.reference

    def of_subject(resource: Json) -> bool:
        return refers_to(resource.get("subject"), subject)

    # Large pages: a server that ignores ``subject`` (sekmet for QuestionnaireResponse and
    # BodyStructure) returns every resource of the type, and the client filters them.
    by_subject = {"subject": subject, "_count": READ_BACK_PAGE}
    reports = search(fhir, "DiagnosticReport", by_subject, of_subject)
    provenances: dict[str, Json] = {}
    for report in reports:
        target = f"DiagnosticReport/{report['id']}"
        for provenance in search(fhir, "Provenance", {"target": target}, targets(target)):
            provenances[provenance["id"]] = provenance
    return Written(
        reports=reports,
        observations=search(fhir, "Observation", by_subject, of_subject),
        responses=search(fhir, "QuestionnaireResponse", by_subject, of_subject),
        lesions=search(
            fhir,
            "BodyStructure",
            {"patient": subject, "_count": READ_BACK_PAGE},
            lambda r: refers_to(r.get("patient"), subject),
        ),
        provenances=list(provenances.values()),
    )


@cache
def _category_names() -> Mapping[str, str]:
    """NCIt code → category (``C18058`` → ``PR``) from the project's response-category ValueSet."""
    valueset = json.loads(RESPONSE_CATEGORY_VALUESET.read_text(encoding="utf-8"))
    names = {}
    for include in valueset["compose"]["include"]:
        for concept in include.get("concept", []):
            names[concept["code"]] = concept["designation"][0]["value"]
    return names


def category_of(concept: Any) -> str | None:
    """The category of a CodeableConcept with an NCIt coding of the ValueSet."""
    for coding in (concept or {}).get("coding") or []:
        if coding.get("system") == NCIT and coding.get("code") in _category_names():
            return _category_names()[coding["code"]]
    return None


def category(report: Json) -> str | None:
    """The report's computed overall response (``conclusionCode``), ``None`` without one."""
    found = [category_of(concept) for concept in report.get("conclusionCode") or []]
    assert len(found) <= 1, report.get("conclusionCode")
    return found[0] if found else None


def component(observation: Json, code: str) -> Json:
    """The component of the response-assessment Observation with a fhirnet observation code."""
    for part in observation.get("component") or []:
        for coding in part.get("code", {}).get("coding") or []:
            if coding.get("system") == OBSERVATION_CODES and coding.get("code") == code:
                found: Json = part
                return found
    raise AssertionError(f"no component {code} in {json.dumps(observation)[:2000]}")


def assert_one_set(now: Written, patient: Patient, exams: Sequence[int]) -> None:
    """Exactly one set of results per exam: one form, one report, one Provenance per report,
    and no business identifier of fhirnet on more than one resource."""
    assert sorted(identifiers(r)[0][1] for r in now.responses if identifiers(r)) == sorted(
        patient.exam(n) for n in exams
    ), "QuestionnaireResponses on the server"
    for number in exams:
        now.report(patient, number)
    assert len(now.reports) == len(exams), [identifiers(r) for r in now.reports]
    repeated = Counter(
        key for r in now.everything for key in identifiers(r) if key[0].startswith(SID)
    )
    assert [key for key, n in repeated.items() if n > 1] == [], "identifiers on several resources"
    for report in now.reports:
        target = f"DiagnosticReport/{report['id']}"
        targeting = [p for p in now.provenances if any(refers_to(t, target) for t in p["target"])]
        assert len(targeting) == 1, f"{len(targeting)} Provenances target {target}"


# -- checks of fhirnet's answers -----------------------------------------------------------------


def media_type(answer: Answer) -> str:
    return answer.headers.get("Content-Type", "").split(";")[0].strip()


def assert_created(answer: Answer, now: Written, patient: Patient, number: int) -> Json:
    """201 with the exam's DiagnosticReport as body and its absolute URL in ``Location``.

    :returns: the report as the server holds it.
    """
    assert answer.status == 201, answer
    assert media_type(answer) == FHIR_JSON, answer
    report = now.report(patient, number)
    assert answer.body["resourceType"] == "DiagnosticReport", answer
    assert answer.body.get("id") == report["id"], answer
    assert has_identifier(answer.body, REPORT_SID, patient.report_identifier(number)), answer
    location = answer.headers.get("Location", "")
    parts = urlsplit(location)
    assert parts.scheme in ("http", "https"), f"Location {location!r} is not an absolute URL"
    assert parts.netloc, f"Location {location!r} is not an absolute URL"
    assert f"/DiagnosticReport/{report['id']}" in parts.path, f"Location {location!r}"
    return report


def assert_outcome(answer: Answer, status: int) -> list[Json]:
    """An OperationOutcome with ``status`` and at least one error issue; returns the issues."""
    assert answer.status == status, answer
    assert media_type(answer) == FHIR_JSON, answer
    assert isinstance(answer.body, dict), answer
    assert answer.body.get("resourceType") == "OperationOutcome", answer
    issues: list[Json] = answer.body.get("issue") or []
    assert any(i.get("severity") in ("error", "fatal") for i in issues), answer
    return issues


def outcome_text(issues: Sequence[Json]) -> str:
    """Every issue's diagnostics and details text, each said once."""
    texts = [t for i in issues for t in (i.get("diagnostics"), i.get("details", {}).get("text"))]
    return " | ".join(dict.fromkeys(str(text) for text in texts if text))


def DATA_WRITE(request: ProxiedRequest) -> bool:  # noqa: N802 - a predicate, like WRITE
    """A write of anything but AuditEvents: a failed submission still writes its failure
    AuditEvent, in a transaction of its own (fhirnet.services.audits), and no patient data."""
    if not WRITE(request):
        return False
    try:
        entries = request.json().get("entry") or []
        types = {entry["resource"]["resourceType"] for entry in entries}
    except (ValueError, AttributeError, KeyError, TypeError):
        return True
    return types != {"AuditEvent"}


def assert_one_transaction(proxy: FaultProxy) -> None:
    """fhirnet wrote with exactly one request since the proxy's record was cleared, and it was a
    transaction: no partial data can come from a submission failing half way."""
    writes = proxy.requests(WRITE)
    shown = [(seen.method, seen.request.path) for seen in writes]
    assert len(writes) == 1, shown
    assert TRANSACTION(writes[0].request), shown


def submit_all(fhirnet: Fhirnet, patient: Patient, exams: Sequence[int]) -> list[Answer]:
    answers = [fhirnet.submit(patient.form(number)) for number in exams]
    for number, answer in zip(exams, answers, strict=True):
        assert answer.status == 201, f"exam {number}: {answer}"
    return answers


def bundle(kind: str, forms: Sequence[Json]) -> Json:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": form,
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            }
            for form in forms
        ],
    }


def entry_status(entry: Json) -> int:
    """The code of ``response.status`` (``"201"`` or ``"201 Created"``)."""
    return int(str(entry["response"]["status"]).split()[0])


# -- the scenarios -------------------------------------------------------------------------------


@pytest.mark.parametrize("series", sorted(CATEGORIES))
def test_a_baseline_then_three_follow_ups_give_the_expected_categories_on_the_reports(
    fhirnet: Fhirnet, fhir: FhirClient, series: str
) -> None:
    """The core promise, for each criteria family (Choi, RECIST 1.1, iRECIST): each follow-up is
    assessed against the earlier forms that fhirnet finds on the server."""
    patient = new_patient(fhir, series)
    exams = (1, 2, 3, 4)

    answers = submit_all(fhirnet, patient, exams)

    now = written(fhir, patient)
    expected = list(CATEGORIES[series][:4])
    assert now.categories() == list(
        zip((patient.imaging_date(n) for n in exams), expected, strict=True)
    )
    assert_one_set(now, patient, exams)
    observations = {o["id"]: o for o in now.observations}
    for number, answer in zip(exams, answers, strict=True):
        report = assert_created(answer, now, patient, number)
        assert category(answer.body) == expected[number - 1], answer
        assert report["status"] == "final"
        assert refers_to(report["subject"], patient.reference)
        assert report["effectiveDateTime"] == patient.imaging_date(number)
        results = [
            str(r["reference"]).split("/_history/")[0].rsplit("/", 1)[-1] for r in report["result"]
        ]
        assert results, report
        assert set(results) <= set(observations), "result points at Observations not on the server"
        if number > 1:  # the assessment carries the same category as the report
            assessment = now.assessment(patient, number)
            assert assessment["id"] in results
            assert category_of(assessment.get("valueCodeableConcept")) == expected[number - 1]


def test_prefer_return_operation_outcome_answers_201_with_an_operation_outcome(
    fhirnet: Fhirnet, fhir: FhirClient
) -> None:
    """An EHR that does not want the report back asks for an OperationOutcome instead."""
    patient = new_patient(fhir, "small-bowel-net-prrt")

    answer = fhirnet.submit(patient.form(1), prefer="return=OperationOutcome")

    assert answer.status == 201, answer
    assert answer.body["resourceType"] == "OperationOutcome", answer
    assert not any(i.get("severity") in ("error", "fatal") for i in answer.body["issue"]), answer
    report = written(fhir, patient).report(patient, 1)
    assert (
        answer.headers.get("Location", "")
        .split("/_history/")[0]
        .endswith(f"/DiagnosticReport/{report['id']}")
    ), answer


def test_resubmitting_the_same_forms_answers_200_and_creates_nothing(
    fhirnet: Fhirnet, fhir: FhirClient
) -> None:
    """EHRs resend on timeouts and restarts; a form already processed must not add results."""
    patient = new_patient(fhir, "small-bowel-net-prrt")
    submit_all(fhirnet, patient, (1, 2))
    before = written(fhir, patient)

    again = [fhirnet.submit(patient.form(n)) for n in (2, 2, 1)]

    for answer in again:
        assert answer.status == 200, answer
    assert again[0].body["resourceType"] == "DiagnosticReport", again[0]
    assert again[0].body["id"] == before.report(patient, 2)["id"], again[0]
    after = written(fhir, patient)
    assert after.keys() == before.keys()
    assert_one_set(after, patient, (1, 2))


def test_eight_concurrent_submissions_of_one_form_leave_exactly_one_set_of_results(
    served_fhirnet: Fhirnet, fhir: FhirClient
) -> None:
    """The same form sent 8 times at once to several gunicorn workers (an EHR retrying while
    the first attempt is still running): one creates, the others create nothing."""
    patient = new_patient(fhir, "small-bowel-net-prrt")
    submit_all(served_fhirnet, patient, (1,))
    form = patient.form(2)
    start = threading.Barrier(CONCURRENT_SUBMISSIONS)
    answers: list[Answer] = []
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def submit() -> None:
        start.wait()
        sent = time.monotonic()
        answer = served_fhirnet.submit(form)
        with lock:
            answers.append(answer)
            spans.append((sent, time.monotonic()))

    threads = [threading.Thread(target=submit) for _ in range(CONCURRENT_SUBMISSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    statuses = sorted(answer.status for answer in answers)
    assert statuses == [200] * (CONCURRENT_SUBMISSIONS - 1) + [201], "\n".join(map(str, answers))
    # Not vacuous: at one moment all eight were sent and none was answered yet.
    assert max(sent for sent, _ in spans) < min(done for _, done in spans), spans
    now = written(fhir, patient)
    assert_one_set(now, patient, (1, 2))
    assert category(now.report(patient, 2)) == "SD"


def test_an_amended_baseline_reassesses_the_later_exams(
    proxied_fhirnet: Fhirnet, fault_proxy: FaultProxy, fhir: FhirClient
) -> None:
    """A corrected baseline changes what every follow-up is measured against, so their reports
    are replaced (status ``amended``), not duplicated.

    Small-bowel NET, RECIST 1.1: the baseline sum is 42 + 28 + 22 = 92 mm. Corrected to
    T1 = 44 mm it is 94 mm, and the third exam's 65 mm becomes -30.9 % (PR, was -29.3 %: SD);
    the second (82 mm, -12.8 %) stays SD, the fourth (60 mm, -36.2 %) stays PR.
    """
    patient = new_patient(fhir, "small-bowel-net-prrt")
    exams = (1, 2, 3, 4)
    submit_all(proxied_fhirnet, patient, exams)
    before = written(fhir, patient)
    assert [c for _, c in before.categories()] == [None, "SD", "SD", "PR"]
    fault_proxy.forget()

    amended = patient.form(1, status="amended")
    set_lesion_size(amended, "T1", 44.0)
    answer = proxied_fhirnet.submit(amended)

    assert answer.status in (200, 201), answer
    assert answer.body["resourceType"] == "DiagnosticReport", answer
    after = written(fhir, patient)
    assert_one_set(after, patient, exams)
    assert {(r["resourceType"], r["id"]) for r in after.reports} == {
        (r["resourceType"], r["id"]) for r in before.reports
    }, "the reports were replaced, not added"
    assert [c for _, c in after.categories()] == [None, "SD", "PR", "PR"]
    assert [after.report(patient, n)["status"] for n in exams] == ["amended"] * 4
    assert answer.body["id"] == after.report(patient, 1)["id"], answer
    responses = [
        r for r in after.responses if has_identifier(r, CRF_SUBMISSION_SID, patient.exam(1))
    ]
    assert [r["status"] for r in responses] == ["amended"]
    assert_one_transaction(fault_proxy)  # the four exams are rewritten together


def _without_imaging_date(form: Json) -> None:
    form["item"] = [i for i in form["item"] if i["linkId"] != "imaging-date"]


def _negative_lesion_size(form: Json) -> None:
    set_lesion_size(form, "T1", -5.0)


def _status(status: str) -> Callable[[Json], None]:
    return lambda form: form.__setitem__("status", status)


@pytest.mark.parametrize(
    "spoil",
    [
        _without_imaging_date,
        _negative_lesion_size,
        _status("in-progress"),
        _status("stopped"),
        _status("entered-in-error"),
    ],
    ids=[
        "no-imaging-date",
        "negative-lesion-size",
        "in-progress",
        "stopped",
        "entered-in-error",
    ],
)
def test_an_invalid_form_is_answered_422_with_an_operation_outcome_and_writes_nothing(
    proxied_fhirnet: Fhirnet,
    fault_proxy: FaultProxy,
    fhir: FhirClient,
    spoil: Callable[[Json], None],
) -> None:
    """A form that is wrong, or not final, is refused before anything reaches the server."""
    patient = new_patient(fhir, "small-bowel-net-prrt")
    form = patient.form(1)
    spoil(form)

    answer = proxied_fhirnet.submit(form)

    assert_outcome(answer, 422)
    assert fault_proxy.requests(DATA_WRITE) == [], "fhirnet wrote to the server"
    assert written(fhir, patient).everything == []


def test_a_discordant_reader_answer_is_accepted_and_flagged(
    fhirnet: Fhirnet, fhir: FhirClient
) -> None:
    """The reader rounded -29.3 % to -30 % and answered PR; the form is still accepted, the
    report carries the computed SD and the assessment flags the discordance (exam 3 only)."""
    patient = new_patient(fhir, "small-bowel-net-prrt")

    submit_all(fhirnet, patient, (1, 2, 3))

    now = written(fhir, patient)
    assert category(now.report(patient, 3)) == "SD"
    discordant = now.assessment(patient, 3)
    assert component(discordant, "reader-discordant")["valueBoolean"] is True
    reader = component(discordant, "reader-response-vs-baseline")["valueCodeableConcept"]
    assert category_of(reader) == "PR"
    assert component(now.assessment(patient, 2), "reader-discordant")["valueBoolean"] is False


# -- the FHIR server failing ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServerFault:
    fault: Fault
    status: int  # what fhirnet must answer
    retry_after: int | None = None  # the least Retry-After fhirnet must pass on


SERVER_FAULTS = {
    "500": ServerFault(server_error(500, "Injected: database is locked"), 503),
    "503-retry-after": ServerFault(unavailable(retry_after=2), 503, retry_after=2),
    "429-retry-after": ServerFault(too_many_requests(retry_after=2), 503, retry_after=2),
    "timeout": ServerFault(Delay(FHIRNET_TIMEOUT + 1.5), 503),
    "connection-dropped": ServerFault(Drop(), 503),
    "refused-400": ServerFault(refuse(400, "Injected: Observation.code is not allowed here"), 502),
    "refused-422": ServerFault(
        refuse(422, "Injected: business rule R-17 failed", "business-rule"), 502
    ),
}


@pytest.mark.parametrize("case", list(SERVER_FAULTS.values()), ids=list(SERVER_FAULTS))
def test_a_failing_transaction_leaves_no_data_and_answers_with_a_clear_outcome(
    proxied_sync_fhirnet: Fhirnet, fault_proxy: FaultProxy, fhir: FhirClient, case: ServerFault
) -> None:
    """The server fails only the transaction (the history searches before it still work): the
    EHR gets 502 (refused: resending will not help) or 503 (resend later), nothing of the exam
    is on the server, and the same form goes through once the server is back."""
    patient = new_patient(fhir, "small-bowel-net-prrt")
    submit_all(proxied_sync_fhirnet, patient, (1,))
    before = written(fhir, patient)
    rule = fault_proxy.inject(case.fault, when=TRANSACTION)

    answer = proxied_sync_fhirnet.submit(patient.form(2))

    assert rule.applied >= 1, "fhirnet never sent its transaction"
    issues = assert_outcome(answer, case.status)
    text = outcome_text(issues)
    assert "fhir server" in text.lower(), f"the message does not say the FHIR server failed: {text}"
    if case.status == 502:
        assert isinstance(case.fault, Respond)
        injected = json.loads(case.fault.body)["issue"][0]["diagnostics"]
        assert injected in json.dumps(answer.body), "the server's issues are not passed on"
    if case.retry_after is not None:
        retry_after = answer.headers.get("Retry-After", "")
        assert retry_after.isdigit(), answer
        assert int(retry_after) >= case.retry_after, answer
    if isinstance(case.fault, Delay):  # fhirnet gave up after its timeout, not the server's
        assert answer.seconds < FHIRNET_TIMEOUT * 4 + 5, answer
    assert fault_proxy.wait_idle(30)
    assert written(fhir, patient).keys() == before.keys(), "partial data after a failure"

    fault_proxy.pass_through()
    fault_proxy.forget()
    retried = proxied_sync_fhirnet.submit(patient.form(2))
    now = written(fhir, patient)
    assert_created(retried, now, patient, 2)
    assert_one_set(now, patient, (1, 2))
    assert_one_transaction(fault_proxy)


#: Faults after which the server has committed but fhirnet cannot know it.
UNSEEN_COMMITS: dict[str, Fault] = {
    "committed-after-timeout": Delay(FHIRNET_TIMEOUT + 1.0, forward=True),
    "answer-lost": Drop(forward=True),
    "gateway-504-after-commit": Respond(
        504, ((CONTENT_TYPE, "text/html"),), b"<html>504 Gateway Time-out</html>", forward=True
    ),
    "html-200-after-commit": Respond(
        200, ((CONTENT_TYPE, "text/html"),), b"<html>Request accepted</html>", forward=True
    ),
}


@pytest.mark.parametrize("fault", list(UNSEEN_COMMITS.values()), ids=list(UNSEEN_COMMITS))
def test_a_transaction_the_server_committed_unseen_is_not_duplicated_by_the_resubmission(
    proxied_sync_fhirnet: Fhirnet, fault_proxy: FaultProxy, fhir: FhirClient, fault: Fault
) -> None:
    """The worst failures: the server committed, but a timeout, a lost connection or a gateway's
    answer hid it from fhirnet, which answers 502/503; the EHR resends. The data is complete
    (never partial), fhirnet does not tell the EHR that nothing was written, and the resend
    creates nothing."""
    patient = new_patient(fhir, "small-bowel-net-prrt")
    submit_all(proxied_sync_fhirnet, patient, (1,))
    fault_proxy.inject(fault, when=TRANSACTION, times=1)

    answer = proxied_sync_fhirnet.submit(patient.form(2))
    assert fault_proxy.wait_idle(30)

    assert answer.status in (201, 502, 503), answer  # 201 if fhirnet found out it had committed
    committed = written(fhir, patient)
    assert_one_set(committed, patient, (1, 2))
    resent = proxied_sync_fhirnet.submit(patient.form(2))
    assert resent.status == 200, resent
    assert written(fhir, patient).keys() == committed.keys()
    if answer.status != 201:
        # Nobody knows here whether the server committed; it did, so an EHR (or a person
        # reading the message) told that nothing was written would be misled.
        text = outcome_text(assert_outcome(answer, answer.status))
        assert "nothing was written" not in text.lower(), f"untrue after a commit: {text}"


def test_a_failing_history_search_answers_503_and_writes_nothing(
    proxied_sync_fhirnet: Fhirnet, fault_proxy: FaultProxy, fhir: FhirClient
) -> None:
    """A follow-up cannot be assessed without the earlier forms: if reading them fails, nothing
    is written, rather than a report assessed against no baseline."""
    patient = new_patient(fhir, "small-bowel-net-prrt")
    submit_all(proxied_sync_fhirnet, patient, (1,))
    before = written(fhir, patient)
    fault_proxy.forget()
    fault_proxy.inject(server_error(500), when=lambda request: request.method == "GET")

    answer = proxied_sync_fhirnet.submit(patient.form(2))

    assert_outcome(answer, 503)
    assert fault_proxy.requests(DATA_WRITE) == [], "fhirnet wrote without reading the history"
    assert written(fhir, patient).keys() == before.keys()


def test_an_unreachable_server_answers_503(make_fhirnet: MakeFhirnet, fhir: FhirClient) -> None:
    """Nobody listens at the configured URL (the server is down): 503, with a message saying so."""
    nobody = f"http://127.0.0.1:{free_port()}/fhir"
    unreachable = make_fhirnet(nobody, timeout=FHIRNET_TIMEOUT, outbox=False)
    patient = new_patient(fhir, "small-bowel-net-prrt")

    answer = unreachable.submit(patient.form(1))

    issues = assert_outcome(answer, 503)
    assert "fhir server" in outcome_text(issues).lower(), outcome_text(issues)
    assert written(fhir, patient).everything == []


# -- Bundles of forms ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["date-order", "reverse-order"])
def test_several_forms_of_one_patient_in_one_transaction_are_assessed_in_date_order(
    fhirnet: Fhirnet, fhir: FhirClient, order: str
) -> None:
    """An EHR catching up sends a patient's exams together; each follow-up is assessed against
    the earlier exams of the same Bundle. In a FHIR transaction the order of entries carries
    no meaning, so reversed entries give the same results."""
    patient = new_patient(fhir, "small-bowel-net-prrt")
    exams = [1, 2, 3, 4] if order == "date-order" else [4, 3, 2, 1]

    answer = fhirnet.submit_bundle(bundle("transaction", [patient.form(n) for n in exams]))

    assert answer.status == 200, answer
    assert answer.body["resourceType"] == "Bundle", answer
    assert answer.body["type"] == "transaction-response", answer
    now = written(fhir, patient)
    assert [c for _, c in now.categories()] == [None, "SD", "SD", "PR"]
    assert_one_set(now, patient, exams)
    assert len(answer.body["entry"]) == len(exams), answer
    for number, entry in zip(exams, answer.body["entry"], strict=True):  # in the input's order
        assert entry_status(entry) == 201, entry
        # Each entry answers a create of its form; the form's report is on the server.
        assert _located_id(entry, "QuestionnaireResponse") == entry["resource"]["id"], entry
        assert now.report(patient, number)["id"], entry


def test_a_transaction_of_forms_for_several_patients_is_processed_in_one_request(
    proxied_fhirnet: Fhirnet, fault_proxy: FaultProxy, fhir: FhirClient
) -> None:
    """Several patients' forms in one Bundle: one entry per form in the answer, in order, each
    locating its own patient's report, all written in one server transaction."""
    small_bowel = new_patient(fhir, "small-bowel-net-prrt")
    pancreatic = new_patient(fhir, "pancreatic-net-everolimus")
    g3_nec = new_patient(fhir, "g3-nec-immunotherapy")
    sent = [(small_bowel, 1), (pancreatic, 1), (small_bowel, 2), (g3_nec, 1), (pancreatic, 2)]

    answer = proxied_fhirnet.submit_bundle(bundle("transaction", [p.form(n) for p, n in sent]))

    assert answer.status == 200, answer
    assert answer.body["type"] == "transaction-response", answer
    assert len(answer.body["entry"]) == len(sent), answer
    now = {p.id: written(fhir, p) for p in (small_bowel, pancreatic, g3_nec)}
    for (patient, number), entry in zip(sent, answer.body["entry"], strict=True):
        assert entry_status(entry) == 201, entry
        report = now[patient.id].report(patient, number)
        assert _located_id(entry, "QuestionnaireResponse") == entry["resource"]["id"], entry
        assert entry["resource"]["subject"]["reference"] == f"Patient/{patient.id}", entry
        assert report["id"], entry
    assert [c for _, c in now[small_bowel.id].categories()] == [None, "SD"]
    assert [c for _, c in now[pancreatic.id].categories()] == [None, "PR"]
    assert [c for _, c in now[g3_nec.id].categories()] == [None]
    assert_one_set(now[small_bowel.id], small_bowel, (1, 2))
    assert_one_set(now[pancreatic.id], pancreatic, (1, 2))
    assert_one_set(now[g3_nec.id], g3_nec, (1,))
    assert_one_transaction(fault_proxy)  # all or nothing, by the server's own transaction


def test_a_transaction_with_one_invalid_form_writes_nothing_for_any_patient(
    proxied_fhirnet: Fhirnet, fault_proxy: FaultProxy, fhir: FhirClient
) -> None:
    """All or nothing: one bad form in a transaction refuses the whole Bundle, with an
    OperationOutcome saying which entry, before anything is written."""
    first = new_patient(fhir, "small-bowel-net-prrt")
    second = new_patient(fhir, "pancreatic-net-everolimus")
    invalid = second.form(2)
    _without_imaging_date(invalid)

    answer = proxied_fhirnet.submit_bundle(
        bundle("transaction", [first.form(1), first.form(2), second.form(1), invalid])
    )

    assert 400 <= answer.status < 500, answer
    assert answer.body.get("resourceType") == "OperationOutcome", answer
    assert fault_proxy.requests(DATA_WRITE) == [], "fhirnet wrote to the server"
    assert written(fhir, first).everything == []
    assert written(fhir, second).everything == []


def test_a_transaction_whose_write_fails_leaves_nothing_for_any_patient(
    proxied_sync_fhirnet: Fhirnet, fault_proxy: FaultProxy, fhir: FhirClient
) -> None:
    """All or nothing across patients: the server fails whichever write carries the second
    patient's data; had fhirnet written patient by patient, the first one's would remain."""
    first = new_patient(fhir, "small-bowel-net-prrt")
    second = new_patient(fhir, "pancreatic-net-everolimus")

    transactions = 0

    def fails(request: ProxiedRequest) -> bool:
        """The transaction with the second patient's data, and any transaction after the first:
        whatever order per-patient writes came in, one would succeed and one fail."""
        nonlocal transactions
        if not TRANSACTION(request):
            return False
        transactions += 1
        return transactions > 1 or second.reference.encode() in request.body

    fault_proxy.inject(server_error(500), when=fails)

    answer = proxied_sync_fhirnet.submit_bundle(
        bundle("transaction", [first.form(1), first.form(2), second.form(1)])
    )

    assert_outcome(answer, 503)
    assert fault_proxy.wait_idle(30)
    assert written(fhir, first).everything == [], "the first patient's data was left"
    assert written(fhir, second).everything == []


def test_a_batch_processes_each_form_on_its_own(fhirnet: Fhirnet, fhir: FhirClient) -> None:
    """A batch is not all or nothing: the invalid form gets its own 422 entry with an
    OperationOutcome, the others are written."""
    good = new_patient(fhir, "pancreatic-net-everolimus")
    bad = new_patient(fhir, "g3-nec-immunotherapy")
    invalid = bad.form(1, status="in-progress")

    answer = fhirnet.submit_bundle(bundle("batch", [good.form(1), invalid, good.form(2)]))

    assert answer.status == 200, answer
    assert answer.body["type"] == "batch-response", answer
    statuses = [entry_status(entry) for entry in answer.body["entry"]]
    assert statuses == [201, 422, 201], answer
    refused = answer.body["entry"][1]["response"]
    assert refused.get("outcome", {}).get("resourceType") == "OperationOutcome", refused
    assert [c for _, c in written(fhir, good).categories()] == [None, "PR"]
    assert written(fhir, bad).everything == []


# -- a registry reading the results --------------------------------------------------------------


def test_a_registry_pulls_the_patients_reports_from_the_server_page_by_page(
    fhirnet: Fhirnet, fhir_base_url: str, fhir: FhirClient
) -> None:
    """Registries read DiagnosticReports from the FHIR server, not from fhirnet: by patient,
    report code, date and status, two per page, they find every exam with its computed
    category."""
    patient = new_patient(fhir, "small-bowel-net-prrt")
    exams = (1, 2, 3, 4, 5, 6)
    submit_all(fhirnet, patient, exams)
    recording = RecordingSession()

    with FhirClient(fhir_base_url, timeout=(5.0, 30.0), session=recording) as registry:
        reports = search(
            registry,
            "DiagnosticReport",
            {
                "patient": patient.reference,
                "code": "http://loinc.org|18748-4",
                "date": "ge2025-01-01",
                "status": "final,amended",
                "_count": "2",
            },
            lambda r: (
                r["resourceType"] == "DiagnosticReport"
                and refers_to(r.get("subject"), patient.reference)
            ),
        )

    pages = [url for method, url in recording.sent if method == "GET"]
    assert len(pages) >= 3, pages  # six reports, two a page
    found = sorted((r["effectiveDateTime"], category(r), r["status"]) for r in reports)
    expected = [
        (patient.imaging_date(n), CATEGORIES[patient.series][n - 1], "final") for n in exams
    ]
    assert found == expected
    assert all(refers_to(r["subject"], patient.reference) for r in reports)


def _with_non_target_status(response: Json, status: str, display: str) -> Json:
    """Every non-target of a form set to ``status``, and the targets to the iRECIST baseline's
    sizes (target iSD), so that only the non-targets decide."""
    for lesion_id, size in (("T1", 45.0), ("T2", 30.0), ("T3", 25.0)):
        set_lesion_size(response, lesion_id, size)
    coding = {
        "system": "https://fhirnet.dev/fhir/CodeSystem/non-target-status",
        "code": status,
        "display": display,
    }
    for item in response["item"]:
        if item["linkId"] == "non-target-lesion":
            for child in item["item"]:
                if child["linkId"] == "lesion-status":
                    child["answer"] = [{"valueCoding": coding}]
    return response


@pytest.mark.parametrize(
    ("status", "display", "expected"),
    [("increased", "Increased", "iCPD"), ("progression", "Unequivocal progression", "iUPD")],
    ids=["increased confirms iCPD", "unchanged progression stays iUPD"],
)
def test_a_non_target_driven_iupd_is_confirmed_by_increased_not_by_unchanged_progression(
    fhirnet: Fhirnet, fhir: FhirClient, status: str, display: str, expected: str
) -> None:
    """criteria v2 §3.2 b, D18, on the FHIR server: after an iUPD driven by a non-target in
    unequivocal progression, the status ``increased`` confirms iCPD; the same status again does
    not."""
    patient = new_patient(fhir, "g3-nec-immunotherapy")
    forms = [
        patient.form(1),
        _with_non_target_status(patient.form(2), "progression", "Unequivocal progression"),
        _with_non_target_status(patient.form(3), status, display),
    ]

    answers = [fhirnet.submit(form) for form in forms]

    assert [a.status for a in answers] == [201, 201, 201], answers
    assert [category(a.body) for a in answers] == [None, "iUPD", expected]
    now = written(fhir, patient)
    assert [c for _, c in now.categories()] == [None, "iUPD", expected]
    assessment = now.assessment(patient, 3)
    assert category_of(assessment.get("valueCodeableConcept")) == expected
