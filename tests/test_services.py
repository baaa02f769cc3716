"""The submission pipeline (``fhirnet.services``) against the real embedded store in a temporary
directory, and against stores that fail or ignore search parameters: categories, idempotence,
amendments and what they make stale, every refusal with nothing written, Bundles, ``$extract``."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fhirnet.adapters.locks import FileLocks
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.errors import (
    FhirServerRejectedError,
    FhirServerUnavailableError,
    PatientBusyError,
)
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.identifiers import CRF_SUBMISSION, ExamKey, Kind
from fhirnet.fhir.outcome import (
    Issue,
    MalformedRequestError,
    Severity,
    UnprocessableResourceError,
)
from fhirnet.fhir.profiles import Catalog, load_catalog
from fhirnet.ports import FhirStore, Json
from fhirnet.services import Context, Submission, extract, submit, submit_bundle
from tests.submissions import (
    CHOI,
    IRECIST,
    NOW,
    RECIST,
    FailingStore,
    ParameterIgnoringStore,
    RecordingStore,
    amended,
    bundle_of,
    counts,
    form,
    form_paths,
    golden,
    items,
    normalised,
    set_answer,
    set_top,
    target,
)

#: The categories of each exam (baseline and pre-baseline: ``None``), as
#: examples/questionnaire-responses/README.md tells them; the last RECIST exam is a continuing PR
#: (criteria v2 §2.1 rule 6, D16).
EXPECTED = {
    RECIST: [None, "SD", "SD", "PR", "PR", "PR"],
    CHOI: [None, "PR", "PR", "SD", "PD"],
    IRECIST: [None, None, "iUPD", "iSD", "iSD", "iPR"],
}
#: The number of each patient's first form: 0 for a patient with a pre-baseline scan (00-...).
FIRST = {RECIST: 1, CHOI: 1, IRECIST: 0}
CODES = {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()}
FORMS = [
    (patient, FIRST[patient] + i) for patient in EXPECTED for i in range(len(EXPECTED[patient]))
]

Submit = Callable[..., Submission]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(Settings().profiles_dir)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedStore]:
    with EmbeddedStore.open(tmp_path / "data") as store:
        yield store


@pytest.fixture
def store(embedded: EmbeddedStore) -> RecordingStore:
    return RecordingStore(embedded)


@pytest.fixture
def locks(tmp_path: Path) -> FileLocks:
    return FileLocks(tmp_path / "data" / "locks", timeout=10)


@pytest.fixture
def context(store: RecordingStore, catalog: Catalog, locks: FileLocks) -> Context:
    """The recording store, the catalog, the file locks and :data:`NOW`; no audit trail."""
    return Context(store=store, catalog=catalog, locks=locks, now=NOW)


@pytest.fixture
def send(context: Context) -> Submit:
    """``submit`` in :func:`context`: ``send(resource)`` or ``send(resource, store=...)``."""

    def run(resource: Json, **overrides: Any) -> Submission:
        return submit(resource, replace(context, **overrides))

    return run


def category(report: Json) -> str | None:
    codings = [c for concept in report.get("conclusionCode", []) for c in concept["coding"]]
    return CODES[codings[0]["code"]] if codings else None


def reports(store: FhirStore, patient: str) -> list[Json]:
    """The patient's DiagnosticReports, by date."""
    found = store.search("DiagnosticReport", {"subject": f"Patient/{patient}", "_sort": "date"})
    return list(found)


def observation(
    store: FhirStore, kind: Kind, patient: str, exam: str, lesion: str | None = None
) -> Json:
    identifier = ExamKey(patient=patient, exam=exam).identifier(kind, lesion)
    (found,) = store.search(
        "Observation", {"identifier": f"{identifier.system}|{identifier.value}"}
    )
    return found


def submit_all(send: Submit, patient: str, up_to: int | None = None) -> list[Submission]:
    """Submit the patient's example forms in order, its pre-baseline form first, up to the form
    numbered ``up_to`` (all of them by default)."""
    last = len(form_paths(patient)) if up_to is None else up_to
    return [send(form(patient, n)) for n in range(FIRST[patient], last + 1)]


def errors(error: UnprocessableResourceError | MalformedRequestError) -> list[Issue]:
    return [issue for issue in error.issues if issue.is_error]


# -- the main job ----------------------------------------------------------------------------


@pytest.mark.parametrize("patient", EXPECTED)
def test_each_exam_gets_a_report_with_the_category_the_criteria_compute(
    send: Submit, store: RecordingStore, patient: str
) -> None:
    submissions = submit_all(send, patient)

    assert [s.created for s in submissions] == [True] * len(submissions)
    assert [category(s.report) for s in submissions] == EXPECTED[patient]
    assert [category(r) for r in reports(store, patient)] == EXPECTED[patient]
    assert len(store.sent) == len(submissions)  # one transaction per form


@pytest.mark.parametrize(("patient", "number"), FORMS, ids=[f"{p}-{n}" for p, n in FORMS])
def test_what_a_form_writes_is_its_golden_transaction(
    send: Submit, store: RecordingStore, patient: str, number: int
) -> None:
    submit_all(send, patient, number - 1)

    send(form(patient, number))

    assert normalised(store.sent[-1]) == normalised(golden(patient, number))


@pytest.mark.parametrize(("patient", "number"), FORMS, ids=[f"{p}-{n}" for p, n in FORMS])
def test_extract_gives_the_golden_transaction_and_writes_nothing(
    send: Submit,
    store: RecordingStore,
    embedded: EmbeddedStore,
    context: Context,
    patient: str,
    number: int,
) -> None:
    submit_all(send, patient, number - 1)
    before = counts(embedded)

    bundle = extract(form(patient, number), context)

    assert normalised(bundle) == normalised(golden(patient, number))
    assert counts(embedded) == before
    assert len(store.sent) == number - FIRST[patient]


def test_extract_of_a_stored_form_still_gives_its_exam(
    send: Submit, store: RecordingStore, context: Context
) -> None:
    submit_all(send, RECIST, 2)

    bundle = extract(form(RECIST, 2), context)

    assert normalised(bundle) == normalised(golden(RECIST, 2))


# -- idempotent and correctable --------------------------------------------------------------


def test_an_identical_resubmission_writes_nothing_and_answers_the_stored_report(
    send: Submit, store: RecordingStore, embedded: EmbeddedStore
) -> None:
    first = submit_all(send, RECIST, 2)[-1]
    before = counts(embedded)

    again = send(form(RECIST, 2))

    assert (again.created, len(store.sent)) == (False, 2)
    assert again.report == first.report  # same id, same version
    assert counts(embedded) == before
    assert "unchanged" in again.issues[0].message


def test_a_submission_carries_the_form_as_the_server_stored_it(
    send: Submit, embedded: EmbeddedStore
) -> None:
    """From the transaction-response: the web layer answers with it (Location, ETag, body)
    without searching for the form again."""
    written = send(form(RECIST, 1))

    (stored,) = embedded.search("QuestionnaireResponse", {})
    assert written.form == stored
    assert stored["meta"]["versionId"] == "1"
    # An identical resubmission writes nothing, so there is no response to carry it.
    assert send(form(RECIST, 1)).form is None


def test_a_form_without_identifier_is_identified_by_its_id(
    send: Submit, store: RecordingStore, embedded: EmbeddedStore
) -> None:
    baseline = form(RECIST, 1)
    del baseline["identifier"]

    first = send(copy.deepcopy(baseline))
    again = send(baseline)

    assert (first.created, again.created, len(store.sent)) == (True, False, 1)
    assert counts(embedded)["QuestionnaireResponse"] == 1
    (stored,) = embedded.search("QuestionnaireResponse", {})
    assert stored["identifier"] == {"system": CRF_SUBMISSION, "value": baseline["id"]}
    assert [i.expression for i in first.issues if i.severity is Severity.INFORMATION][1:] == [
        "QuestionnaireResponse.id"
    ]


def test_an_amended_baseline_reassesses_every_later_exam(
    send: Submit, store: RecordingStore
) -> None:
    submit_all(send, RECIST)
    baseline = amended(form(RECIST, 1))
    # 92 -> 93 mm: the 65 mm of 2025-07-14 is now a 30.1 % decrease, a PR.
    set_answer(target(baseline, "T1"), "lesion-size", "valueDecimal", 43.0)

    result = send(baseline)

    (written,) = store.sent[-1:]
    assert len(store.sent) == 7  # one more transaction, with every exam in it
    after = reports(store, RECIST)
    assert [r["status"] for r in after] == ["amended"] * 6
    assert [category(r) for r in after] == [None, "SD", "PR", "PR", "PR", "PR"]
    assert {r["identifier"][0]["value"] for r in after} == {
        e["resource"]["identifier"][0]["value"]
        for e in written["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    }
    assert any("Re-assessed" in i.message and "2026-04-13" in i.message for i in result.issues)
    assert not result.created


def test_an_amended_form_without_the_risk_group_retracts_its_risk_observations(
    send: Submit, store: RecordingStore
) -> None:
    submit_all(send, RECIST, 2)
    baseline = amended(form(RECIST, 1))
    baseline["item"] = [item for item in baseline["item"] if item["linkId"] != "risk"]

    result = send(baseline)

    risk = [
        Kind.WHO_GRADE,
        Kind.EMBRYOLOGIC_ORIGIN,
        Kind.PRRT_ELIGIBILITY,
        Kind.IMAGING_RECOMMENDATION,
    ]
    exam = f"{RECIST}-01"
    for kind in risk:
        assert observation(store, kind, RECIST, exam)["status"] == "entered-in-error"
    assert observation(store, Kind.SUM_OF_DIAMETERS, RECIST, exam)["status"] == "amended"
    results = {r["reference"] for r in result.report["result"]}
    assert len(results) == 4  # three lesion measurements and the sum: no risk any more


def test_an_amended_follow_up_without_a_target_retracts_its_measurement(
    send: Submit, store: RecordingStore
) -> None:
    submit_all(send, RECIST)
    last = amended(form(RECIST, 6))
    last["item"].remove(target(last, "T3"))

    result = send(last)

    exam = f"{RECIST}-06"
    gone = observation(store, Kind.LESION_MEASUREMENT, RECIST, exam, "T3")
    kept = observation(store, Kind.LESION_MEASUREMENT, RECIST, exam, "T2")
    assert (gone["status"], kept["status"]) == ("entered-in-error", "amended")
    assert category(result.report) == "NE"  # a baseline target not evaluable


# -- refusals: 422, nothing written ------------------------------------------------------------


def test_a_follow_up_target_that_is_not_a_baseline_target_is_refused_at_its_item(
    send: Submit, store: RecordingStore
) -> None:
    send(form(RECIST, 1))
    follow_up = form(RECIST, 2)
    set_answer(target(follow_up, "T2"), "lesion-id", "valueString", "T9")

    with pytest.raises(UnprocessableResourceError) as refused:
        send(follow_up)

    (issue,) = errors(refused.value)
    assert (issue.code, issue.expression) == (
        "business-rule",
        "QuestionnaireResponse.item[9].item[0]",
    )
    assert "'T9' is not a target lesion of the baseline" in issue.message
    assert len(store.sent) == 1


def test_a_baseline_breaking_target_selection_is_refused_at_the_lesion_size(
    send: Submit, store: RecordingStore
) -> None:
    baseline = form(RECIST, 1)
    set_answer(target(baseline, "T2"), "lesion-size", "valueDecimal", 9.0)

    with pytest.raises(UnprocessableResourceError) as refused:
        send(baseline)

    (issue,) = errors(refused.value)
    assert issue.expression == "QuestionnaireResponse.item[7].item[3]"  # T2's lesion-size
    assert "at least 10 mm" in issue.message
    assert store.sent == []


def test_a_follow_up_without_its_baseline_form_is_refused(
    send: Submit, store: RecordingStore
) -> None:
    with pytest.raises(UnprocessableResourceError) as refused:
        send(form(RECIST, 3))

    (issue,) = errors(refused.value)
    assert issue.expression == "QuestionnaireResponse.item[3]"  # baseline-date
    assert "No baseline form of 2025-01-13" in issue.message
    assert store.sent == []


def test_a_follow_up_naming_another_baseline_date_is_refused(send: Submit) -> None:
    send(form(RECIST, 1))
    follow_up = form(RECIST, 2)
    set_top(follow_up, "baseline-date", "valueDate", "2025-01-12")

    with pytest.raises(UnprocessableResourceError) as refused:
        send(follow_up)

    (issue,) = errors(refused.value)
    assert "baseline forms on file: 2025-01-13" in issue.message


def test_a_second_baseline_form_of_the_same_date_is_refused(send: Submit) -> None:
    send(form(RECIST, 1))
    other = form(RECIST, 1)
    other["identifier"]["value"] = "another-submission"

    with pytest.raises(UnprocessableResourceError) as refused:
        send(other)

    (issue,) = errors(refused.value)
    assert issue.expression == "QuestionnaireResponse.item[0]"  # imaging-date
    assert f"{RECIST}-01" in issue.message


def test_an_amendment_that_breaks_stored_later_forms_is_refused_naming_them(
    send: Submit, store: RecordingStore
) -> None:
    submit_all(send, RECIST, 3)
    baseline = amended(form(RECIST, 1))
    baseline["item"].remove(target(baseline, "T3"))

    with pytest.raises(UnprocessableResourceError) as refused:
        send(baseline)

    messages = [issue.message for issue in errors(refused.value)]
    assert len(messages) == 2
    assert all("'T3' is not a target lesion of the baseline" in m for m in messages)
    assert f"the form {RECIST}-02 of 2025-04-14 on file" in messages[0]
    assert len(store.sent) == 3


@pytest.mark.parametrize("status", ["in-progress", "stopped", "entered-in-error"])
def test_a_form_that_is_not_completed_or_amended_is_refused(
    send: Submit, store: RecordingStore, status: str
) -> None:
    baseline = form(RECIST, 1)
    baseline["status"] = status

    with pytest.raises(UnprocessableResourceError) as refused:
        send(baseline)

    assert [(i.code, i.expression) for i in errors(refused.value)] == [
        ("business-rule", "QuestionnaireResponse.status")
    ]
    assert store.sent == []


@pytest.mark.parametrize(
    ("subject", "expression"),
    [
        ({"reference": "urn:uuid:1b4b19a2-0000-4000-8000-000000000000"}, "subject.reference"),
        ({"type": "Patient", "identifier": {"system": "urn:mrn", "value": "1"}}, "subject"),
    ],
    ids=["urn:uuid", "identifier only"],
)
def test_a_subject_that_is_not_a_patient_id_is_refused(
    send: Submit, subject: Json, expression: str
) -> None:
    baseline = form(RECIST, 1)
    baseline["subject"] = subject

    with pytest.raises(UnprocessableResourceError) as refused:
        send(baseline)

    assert [i.expression for i in errors(refused.value)] == [f"QuestionnaireResponse.{expression}"]


def test_a_form_without_identifier_or_id_is_refused(send: Submit) -> None:
    baseline = form(RECIST, 1)
    del baseline["identifier"], baseline["id"]

    with pytest.raises(UnprocessableResourceError) as refused:
        send(baseline)

    assert [(i.code, i.expression) for i in errors(refused.value)] == [
        ("required", "QuestionnaireResponse")
    ]


def test_an_invalid_form_is_refused_with_every_validator_issue_and_nothing_written(
    send: Submit, embedded: EmbeddedStore
) -> None:
    send(form(RECIST, 1))
    before = counts(embedded)
    follow_up = form(RECIST, 2)
    del follow_up["subject"]
    set_answer(target(follow_up, "T1"), "lesion-size", "valueDecimal", 2000)

    with pytest.raises(UnprocessableResourceError) as refused:
        send(follow_up)

    assert [(i.code, i.expression) for i in errors(refused.value)] == [
        ("required", "QuestionnaireResponse"),
        ("value", "QuestionnaireResponse.item[8].item[3].answer[0].valueDecimal"),
    ]
    assert counts(embedded) == before


def test_an_identifier_of_another_patients_form_is_refused(send: Submit) -> None:
    send(form(RECIST, 1))
    other = form(CHOI, 1)
    other["identifier"] = form(RECIST, 1)["identifier"]

    with pytest.raises(UnprocessableResourceError) as refused:
        send(other)

    (issue,) = errors(refused.value)
    assert issue.expression == "QuestionnaireResponse.identifier"
    assert "another patient" in issue.message


# -- the FHIR server fails: nothing half-written ---------------------------------------------


def test_a_transaction_the_server_refuses_leaves_nothing_written(
    send: Submit, embedded: EmbeddedStore
) -> None:
    send(form(RECIST, 1))
    # Two reports already carry the follow-up's report identifier: its conditional update
    # matches both and the store refuses the whole transaction (412).
    report = ExamKey(patient=RECIST, exam=f"{RECIST}-02").identifier(Kind.IMAGING_RESPONSE_REPORT)
    planted = {
        "resourceType": "DiagnosticReport",
        "identifier": [report.json()],
        "status": "final",
        "code": {"text": "planted"},
    }
    twice = [{"resource": planted, "request": {"method": "POST", "url": "DiagnosticReport"}}] * 2
    embedded.transaction({"resourceType": "Bundle", "type": "transaction", "entry": twice})
    before = counts(embedded)

    with pytest.raises(FhirServerRejectedError) as refused:
        send(form(RECIST, 2))

    assert refused.value.status == 412
    assert counts(embedded) == before


def test_a_refused_transaction_is_raised_with_the_servers_outcome(
    embedded: EmbeddedStore, send: Submit
) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid"}],
    }
    failing = FailingStore(embedded, FhirServerRejectedError("no", status=400, outcome=outcome))

    with pytest.raises(FhirServerRejectedError) as refused:
        send(form(RECIST, 1), store=failing)

    assert refused.value.outcome == outcome
    assert len(failing.sent) == 1
    assert counts(embedded)["QuestionnaireResponse"] == 0


def test_an_unavailable_server_is_raised_before_anything_is_sent(
    embedded: EmbeddedStore, send: Submit
) -> None:
    down = FhirServerUnavailableError("timeout", retry_after=30)
    failing = FailingStore(embedded, down, on_search=True)

    with pytest.raises(FhirServerUnavailableError) as unavailable:
        send(form(RECIST, 1), store=failing)

    assert unavailable.value.retry_after == 30
    assert failing.sent == []


def test_search_results_are_checked_when_the_server_ignores_search_parameters(
    send: Submit, embedded: EmbeddedStore
) -> None:
    careless = ParameterIgnoringStore(embedded)
    # Other patients' forms, a retracted form and another Questionnaire's form of the patient
    # come back from every search; none of them may count.
    for patient in (CHOI, IRECIST):
        submit_all(send, patient, 2)
    retracted = form(RECIST, 2)
    retracted.update(status="entered-in-error", identifier={"system": "urn:x", "value": "r"})
    foreign = form(RECIST, 2)
    foreign.update(questionnaire="https://example.org/Questionnaire/other", id="other")
    foreign["identifier"] = {"system": "urn:x", "value": "q"}
    for resource in (retracted, foreign):
        embedded.transaction(bundle_of(resource))

    results = [send(form(RECIST, n), store=careless) for n in range(1, 4)]

    assert [category(r.report) for r in results] == [None, "SD", "SD"]


def test_an_exam_whose_form_is_stored_without_results_gets_them(
    send: Submit, embedded: EmbeddedStore
) -> None:
    embedded.transaction(bundle_of(form(RECIST, 1)))  # an EHR wrote the form itself

    result = send(form(RECIST, 1))

    assert result.created
    assert counts(embedded)["DiagnosticReport"] == 1


# -- warnings and the reader's conclusion ------------------------------------------------------


def test_a_discordant_reader_conclusion_is_accepted_and_flagged(
    send: Submit, store: RecordingStore
) -> None:
    result = submit_all(send, RECIST, 3)[-1]

    warnings = [i for i in result.issues if i.severity is Severity.WARNING]
    assert [(i.code, i.expression) for i in warnings] == [
        ("business-rule", "QuestionnaireResponse.item[13]")  # response-vs-baseline: PR
    ]
    assert "the reader's response-vs-baseline is PR, RECIST 1.1 computes SD" in warnings[0].message
    assert category(result.report) == "SD"
    assert result.report["conclusion"].endswith(
        "The reader's conclusion (PR versus baseline, SD versus nadir) differs from the computed "
        "SD: discordant."
    )
    assessment = observation(store, Kind.RESPONSE_ASSESSMENT, RECIST, f"{RECIST}-03")
    flags = [c["valueBoolean"] for c in assessment["component"] if "valueBoolean" in c]
    assert flags[-1] is True  # reader-discordant


def test_the_assessments_warnings_are_reported_at_their_item(send: Submit) -> None:
    result = submit_all(send, RECIST, 2)[-1]

    (warning,) = [i for i in result.issues if i.severity is Severity.WARNING]
    assert warning.expression == "QuestionnaireResponse.item[2]"  # imaging-procedure
    assert warning.message.startswith("missing-modality: the exam of 2025-04-14 lacks SSTR-PET")


# -- Bundles -----------------------------------------------------------------------------------


def test_a_transaction_bundle_of_several_patients_is_one_transaction(
    store: RecordingStore, context: Context
) -> None:
    # Out of date order on purpose: forms of one patient are taken in date order.
    resources = [form(CHOI, 3), form(RECIST, 1), form(CHOI, 1), form(RECIST, 2), form(CHOI, 2)]

    outcome = submit_bundle(bundle_of(*resources), context)

    assert outcome.type == "transaction"
    assert len(store.sent) == 1
    assert all(isinstance(r, Submission) and r.created for r in outcome.results)
    assert [category(r.report) for r in outcome.results if isinstance(r, Submission)] == [
        "PR", None, None, "SD", "PR"
    ]  # fmt: skip


def test_a_transaction_bundle_with_an_invalid_form_writes_nothing(
    store: RecordingStore, context: Context
) -> None:
    broken = form(RECIST, 2)
    broken["status"] = "in-progress"

    with pytest.raises(UnprocessableResourceError) as refused:
        submit_bundle(bundle_of(form(RECIST, 1), broken), context)

    assert [i.expression for i in errors(refused.value)] == ["Bundle.entry[1].resource.status"]
    assert store.sent == []


def test_a_transaction_bundle_breaking_a_rule_names_the_entry(
    store: RecordingStore, context: Context
) -> None:
    follow_up = form(RECIST, 2)
    set_answer(target(follow_up, "T1"), "lesion-id", "valueString", "T7")

    with pytest.raises(UnprocessableResourceError) as refused:
        submit_bundle(bundle_of(form(RECIST, 1), follow_up), context)

    assert [i.expression for i in errors(refused.value)] == [
        "Bundle.entry[1].resource.item[8].item[0]"
    ]
    assert store.sent == []


def test_a_batch_answers_each_entry_on_its_own(store: RecordingStore, context: Context) -> None:
    broken = form(CHOI, 1)
    broken["status"] = "stopped"

    outcome = submit_bundle(
        bundle_of(form(RECIST, 2), broken, form(RECIST, 1), kind="batch"), context
    )

    follow_up, refused, baseline = outcome.results
    assert isinstance(refused, UnprocessableResourceError)
    assert [i.expression for i in errors(refused)] == ["Bundle.entry[1].resource.status"]
    assert isinstance(baseline, Submission)
    assert isinstance(follow_up, Submission)
    assert (category(baseline.report), category(follow_up.report)) == (None, "SD")
    assert len(store.sent) == 2  # one transaction per entry, in date order


@pytest.mark.parametrize(
    "bundle",
    [
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Bundle", "type": "transaction", "entry": {}},
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {"resourceType": "Patient"},
                    "request": {"method": "POST", "url": "Patient"},
                }
            ],
        },
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {"resourceType": "Patient"},
                    "request": {"method": "POST", "url": "QuestionnaireResponse"},
                }
            ],
        },
    ],
    ids=["collection", "entry not a list", "a Patient POST", "a Patient as form"],
)
def test_a_bundle_that_is_not_forms_to_submit_is_malformed(
    store: RecordingStore, context: Context, bundle: Json
) -> None:
    with pytest.raises(MalformedRequestError):
        submit_bundle(bundle, context)
    assert store.sent == []


def test_the_same_form_twice_in_a_bundle_is_refused(
    store: RecordingStore, context: Context
) -> None:
    with pytest.raises(UnprocessableResourceError) as refused:
        submit_bundle(bundle_of(form(RECIST, 1), form(RECIST, 1)), context)

    assert [i.expression for i in errors(refused.value)] == ["Bundle.entry[1].resource.identifier"]


def test_a_timeline_of_mixed_criteria_is_assessed_with_the_latest_forms_and_says_so(
    send: Submit,
) -> None:
    send(form(RECIST, 1))
    follow_up = form(RECIST, 2)
    (criteria,) = items(follow_up, "response-criteria")
    criteria["answer"] = form(IRECIST, 2)["item"][7]["answer"]

    result = send(follow_up)

    assert result.report["conclusion"].startswith("iRECIST: ")
    assert any("earlier forms name RECIST 1.1" in i.message for i in result.issues)


# -- locks -------------------------------------------------------------------------------------


def test_a_patient_lock_held_too_long_makes_the_next_submission_busy(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path, timeout=0.05)
    with locks.hold({"a"}), pytest.raises(PatientBusyError) as busy, locks.hold({"b", "a"}):
        pass  # pragma: no cover - never entered

    assert busy.value.retry_after >= 1


def test_the_locks_of_one_patient_exclude_each_other_across_threads(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path)
    inside: list[int] = []
    overlaps: list[int] = []

    def hold() -> None:
        with locks.hold({"patient"}):
            inside.append(1)
            overlaps.append(len(inside))
            time.sleep(0.01)
            inside.pop()

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert overlaps == [1] * 8


# -- criteria v2 scenarios through the FHIR path ----------------------------------------------

_NON_TARGET_STATUS = "https://fhirnet.dev/fhir/CodeSystem/non-target-status"
_STATUS_DISPLAYS = {
    "present": "Present",
    "progression": "Unequivocal progression",
    "increased": "Increased",
}


def _sizes(resource: Json, sizes: dict[str, float]) -> Json:
    for lesion_id, size in sizes.items():
        set_answer(target(resource, lesion_id), "lesion-size", "valueDecimal", size)
    return resource


def _non_target_status(resource: Json, lesion_id: str, status: str) -> Json:
    coding = {"system": _NON_TARGET_STATUS, "code": status, "display": _STATUS_DISPLAYS[status]}
    for group in items(resource, "non-target-lesion"):
        if group["item"][0]["answer"][0]["valueString"] == lesion_id:
            set_answer(group, "lesion-status", "valueCoding", coding)
            return resource
    raise KeyError(lesion_id)


def _new_node(resource: Json, lesion_id: str, short_axis_mm: float) -> Json:
    """Add a new lymph node seen on CT, after the non-target groups (the form's item order)."""
    group = {
        "linkId": "new-lesion",
        "item": [
            {"linkId": "new-lesion.lesion-id", "answer": [{"valueString": lesion_id}]},
            {
                "linkId": "new-lesion.lesion-location",
                "answer": [
                    {
                        "valueCoding": {
                            "system": "http://snomed.info/sct",
                            "code": "59441001",
                            "display": "Lymph node",
                        }
                    }
                ],
            },
            {"linkId": "new-lesion.lesion-nodal", "answer": [{"valueBoolean": True}]},
            {"linkId": "new-lesion.lesion-size", "answer": [{"valueDecimal": short_axis_mm}]},
            {
                "linkId": "lesion-modality",
                "answer": [
                    {
                        "valueCoding": {
                            "system": "https://fhirnet.dev/fhir/CodeSystem/imaging-procedure",
                            "code": "CT",
                            "display": "Contrast-enhanced CT",
                        }
                    }
                ],
            },
        ],
    }
    link_ids = [item["linkId"] for item in resource["item"]]
    last = max(i for i, link_id in enumerate(link_ids) if link_id == "non-target-lesion")
    resource["item"].insert(last + 1, group)
    return resource


def _components(resource: Json) -> dict[str, Any]:
    """The components of an Observation by code: a coded value as its code, else the value."""
    found: dict[str, Any] = {}
    for part in resource.get("component", []):
        key = part["code"]["coding"][0]["code"]
        if "valueCodeableConcept" in part:
            found[key] = part["valueCodeableConcept"]["coding"][0]["code"]
        elif "valueQuantity" in part:
            found[key] = part["valueQuantity"]["value"]
        else:
            found[key] = part.get("valueBoolean", part.get("valueDateTime"))
    return found


_UNCHANGED = {"T1": 45.0, "T2": 30.0, "T3": 25.0}  # the iRECIST baseline: target iSD


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("increased", ["iUPD", "iCPD"]),
        ("progression", ["iUPD", "iUPD"]),
        ("present", ["iUPD", "iSD"]),
    ],
    ids=["increased confirms iCPD", "unchanged progression stays iUPD", "present resets"],
)
def test_a_non_target_driven_iupd_is_confirmed_only_by_a_further_increase(
    send: Submit, store: RecordingStore, status: str, expected: list[str]
) -> None:
    # criteria v2 §3.2 b, D18: after an iUPD driven by non-targets, "increased" confirms iCPD;
    # a non-target still reported in unequivocal progression does not.
    first = _non_target_status(_sizes(form(IRECIST, 2), _UNCHANGED), "NT1", "progression")
    second = _non_target_status(_sizes(form(IRECIST, 3), _UNCHANGED), "NT1", status)

    results = [send(resource) for resource in (form(IRECIST, 1), first, second)]

    assert [category(r.report) for r in results] == [None, *expected]
    assert [category(r) for r in reports(store, IRECIST)] == [None, *expected]
    written = _components(observation(store, Kind.RESPONSE_ASSESSMENT, IRECIST, f"{IRECIST}-03"))
    confirmed = expected[-1] == "iCPD"
    assert written.get("confirmation-of") == ("2025-04-28" if confirmed else None)
    assert written["C94535"] == ("C142361" if status == "present" else "C142360")  # non-target


def test_a_new_lymph_node_under_10_mm_is_a_normal_node(send: Submit, store: RecordingStore) -> None:
    follow_up = _new_node(form(RECIST, 2), "N1", 9.0)

    results = [send(form(RECIST, 1)), send(follow_up)]

    assert [category(r.report) for r in results] == [None, "SD"]
    assessment = observation(store, Kind.RESPONSE_ASSESSMENT, RECIST, f"{RECIST}-02")
    assert _components(assessment)["C142362"] is False  # no counted new lesion
    assert "small-new-node" in results[1].report["conclusion"]
    assert any(i.message.startswith("small-new-node") for i in results[1].issues)


def test_a_new_12_mm_node_alone_is_equivocal_until_a_later_exam_confirms_it(
    send: Submit, store: RecordingStore
) -> None:
    # criteria v2 §2.3, D28: 10-15 mm as the only evidence of progression waits for the next exam;
    # listed again at >= 10 mm it counts there, with progression backdated to its first sighting.
    results = [
        send(form(RECIST, 1)),
        send(_new_node(form(RECIST, 2), "N1", 12.0)),
        send(_new_node(form(RECIST, 3), "N1", 13.0)),
    ]

    assert [category(r.report) for r in results] == [None, "SD", "PD"]
    assert "equivocal-new-node" in results[1].report["conclusion"]
    first = _components(observation(store, Kind.RESPONSE_ASSESSMENT, RECIST, f"{RECIST}-02"))
    later = _components(observation(store, Kind.RESPONSE_ASSESSMENT, RECIST, f"{RECIST}-03"))
    assert (first["C142362"], later["C142362"]) == (False, True)
    # The earlier exam keeps its category (D12): it is not re-issued by the confirmation.
    assert [r["status"] for r in reports(store, RECIST)] == ["final"] * 3


def _pre_baseline_close_to_baseline() -> Json:
    """The iRECIST pre-baseline form with a 99 mm sum, 6 weeks before the 100 mm baseline: a
    pre-treatment growth rate near 2 %/month, against 40 %/month on treatment (to 123 mm)."""
    return _sizes(form(IRECIST, 0), {"T1": 44.0, "T2": 30.0, "T3": 25.0})


def test_a_pre_baseline_form_shows_hyperprogression_on_the_first_follow_up(
    send: Submit, store: RecordingStore, embedded: EmbeddedStore
) -> None:
    results = [
        send(_pre_baseline_close_to_baseline()),
        send(form(IRECIST, 1)),
        send(form(IRECIST, 2)),
    ]

    # The pre-baseline form is stored and answered like any form, never assessed.
    assert [r.created for r in results] == [True] * 3
    assert [category(r.report) for r in results] == [None, None, "iUPD"]
    assert "pre-baseline scan" in results[0].issues[0].message
    assert results[0].report["conclusion"].startswith("iRECIST: pre-baseline scan")
    pre = ExamKey(patient=IRECIST, exam=f"{IRECIST}-00")
    for kind in (Kind.RESPONSE_ASSESSMENT, Kind.CANCER_DISEASE_STATUS):
        identifier = pre.identifier(kind)
        assert list(embedded.search("Observation", {"identifier": identifier.search()})) == []
    written = _components(observation(store, Kind.RESPONSE_ASSESSMENT, IRECIST, f"{IRECIST}-02"))
    assert written["hyperprogression"] is True
    assert written["tumor-growth-rate-ratio"] >= 2
    assert written["tumor-growth-rate-on-treatment"] == 40.2
    assert "hyperprogression (progression at the first follow-up" in results[2].report["conclusion"]


def test_a_pre_baseline_form_sent_last_reassesses_the_follow_ups(
    send: Submit, store: RecordingStore
) -> None:
    submit_all(send, IRECIST, 3)  # the example's own pre-baseline form, ratio 1.39
    before = _components(observation(store, Kind.RESPONSE_ASSESSMENT, IRECIST, f"{IRECIST}-02"))

    result = send(amended(_pre_baseline_close_to_baseline()))

    after = _components(observation(store, Kind.RESPONSE_ASSESSMENT, IRECIST, f"{IRECIST}-02"))
    assert (before["hyperprogression"], after["hyperprogression"]) == (False, True)
    assert [r["status"] for r in reports(store, IRECIST)] == [
        "amended",  # the pre-baseline exam itself
        "final",  # the baseline: nothing it writes depends on the pre-baseline scan
        "amended",
        "amended",
    ]
    assert any("Re-assessed" in i.message and "2025-06-23" in i.message for i in result.issues)


def test_a_pre_baseline_form_before_its_baseline_is_stored_and_waits(
    send: Submit, store: RecordingStore
) -> None:
    result = send(form(IRECIST, 0))

    assert result.created
    assert category(result.report) is None
    (written,) = store.sent
    kinds = [entry["resource"]["resourceType"] for entry in written["entry"]]
    assert kinds == ["QuestionnaireResponse", "Observation", "DiagnosticReport", "Provenance"]


@pytest.mark.parametrize("day", ["2025-03-03", "2025-03-10"], ids=["on", "after"])
def test_a_pre_baseline_form_dated_on_or_after_the_baseline_is_refused(
    send: Submit, store: RecordingStore, embedded: EmbeddedStore, day: str
) -> None:
    send(form(IRECIST, 1))
    late = form(IRECIST, 0)
    set_top(late, "imaging-date", "valueDate", day)
    late["authored"] = f"{day}T16:10:00+01:00"
    before = counts(embedded)

    with pytest.raises(UnprocessableResourceError) as refused:
        send(late)

    found = errors(refused.value)
    assert found
    assert any("before the baseline 2025-03-03" in issue.message for issue in found), found
    assert counts(embedded) == before
    assert len(store.sent) == 1
