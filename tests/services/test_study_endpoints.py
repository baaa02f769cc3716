"""A study's endpoints from its subjects' stored DiagnosticReports, and adjudication between its
central readers (fhirnet.services.study_endpoints, fhirnet.services.adjudication), on the
embedded store, against values worked out by hand below.

The study: RECIST 1.1, confirmation required (>= 28 days, at most one NE between), SD at least 42
days after the reference date; arms A and B, sites 001 and 002; central readers RADIOLOGIST 1
(Practitioner/central-1) and RADIOLOGIST 2 (Practitioner/central-2), adjudicator
Practitioner/adj-1, local reader Practitioner/local-001 (a site read: INVESTIGATOR). Every
subject's reference date is 2025-01-15 (study day 1); the schedule WEEK 8 (day 57 = 2025-03-12),
WEEK 16 (day 113 = 2025-05-07), WEEK 24 (day 169 = 2025-07-02), +-7 days. Every evaluator reads
a baseline on 2025-01-10 (day -5, no response).

The reports are written as fhirnet writes them (profile imaging-response-report, conclusionCode
the NCIt response category, resultsInterpreter the reader): what the service reads, whichever
timeline the forms were on.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from fhirnet.criteria.models import Criteria, Response
from fhirnet.errors import InvalidInputError
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.datatypes import profile_url
from fhirnet.fhir.studies import Arm, Enrolment, Reader, ReaderRole, Site, Study, Visit
from fhirnet.ports import Json
from fhirnet.services import Context
from fhirnet.services.adjudication import adjudicate
from fhirnet.services.studies import enrol, get_subject, put_study, withdraw
from fhirnet.services.study_endpoints import (
    CENTRAL,
    INVESTIGATOR,
    StudyEndpoints,
    SubjectResult,
    study_endpoints,
)
from fhirnet.trials import CensoringReason, Proportion
from tests.submissions import RecordingStore

R1, R2 = "RADIOLOGIST 1", "RADIOLOGIST 2"
CENTRAL_1, CENTRAL_2 = "Practitioner/central-1", "Practitioner/central-2"
LOCAL = "Practitioner/local-001"
ADJUDICATOR = "Practitioner/adj-1"
STUDY = Study(
    study_id="NET-02",
    title="Two arms, two sites, blinded central review",
    criteria=Criteria.RECIST_1_1,
    options={"confirmationRequired": True, "confirmationMinDays": 28, "sdMinDays": 42},
    arms=(Arm(code="A", name="177Lu-DOTATATE"), Arm(code="B", name="Octreotide LAR")),
    sites=(Site(id="001", name="Uppsala"), Site(id="002", name="Berlin")),
    readers=(
        Reader(reference=CENTRAL_1, role=ReaderRole.CENTRAL, label=R1),
        Reader(reference=CENTRAL_2, role=ReaderRole.CENTRAL, label=R2),
        Reader(reference=ADJUDICATOR, role=ReaderRole.ADJUDICATOR, label="ADJUDICATOR"),
        Reader(reference=LOCAL, role=ReaderRole.LOCAL, label="SITE 001"),
    ),
    schedule=(
        Visit(visit="WEEK 8", day=57, window_days=7),
        Visit(visit="WEEK 16", day=113, window_days=7),
        Visit(visit="WEEK 24", day=169, window_days=7),
    ),
)
DAY_1 = dt.date(2025, 1, 15)
BASE, D29, W8, W16, W24 = "2025-01-10", "2025-02-12", "2025-03-12", "2025-05-07", "2025-07-02"

#: subject → (arm, site, patient, {reader reference or None: [(date, response)]}).
READS: dict[str, tuple[str, str, str, dict[str | None, list[tuple[str, str | None]]]]] = {
    # Confirmed PR: PR at week 8 confirmed by the PR 56 days later; SD at week 24. All agree.
    "001-0001": (
        "A",
        "001",
        "p1",
        {
            reader: [(BASE, None), (W8, "PR"), (W16, "PR"), (W24, "SD")]
            for reader in (LOCAL, CENTRAL_1, CENTRAL_2)
        },
    ),
    # Unconfirmed PR (investigator, RADIOLOGIST 1): PR then PD -> confirmed BOR SD (the PR at
    # day 57 counts as SD >= 42 days), PD on day 113. RADIOLOGIST 2 reads PR, PR: a confirmed
    # PR and no progression -> the central readers disagree: adjudication.
    "001-0002": (
        "A",
        "001",
        "p2",
        {
            None: [(BASE, None), (W8, "PR"), (W16, "PD")],
            CENTRAL_1: [(BASE, None), (W8, "PR"), (W16, "PD")],
            CENTRAL_2: [(BASE, None), (W8, "PR"), (W16, "PR")],
        },
    ),
    # PR confirmed across one NE (PR, NE, PR 112 days later); only RADIOLOGIST 1 has read it.
    "002-0001": (
        "A",
        "002",
        "p3",
        {
            reader: [(BASE, None), (W8, "PR"), (W16, "NE"), (W24, "PR")]
            for reader in (None, CENTRAL_1)
        },
    ),
    # SD too early: SD on day 29 (< 42 days, unscheduled), then NE -> BOR NE; PFS censored at
    # the SD, the last adequate assessment (day 29).
    "001-0003": (
        "B",
        "001",
        "p4",
        {
            reader: [(BASE, None), (D29, "SD"), (W8, "NE")]
            for reader in (LOCAL, CENTRAL_1, CENTRAL_2)
        },
    ),
    # SD at week 8, PD by a new lesion at week 16 (the report's category is PD): BOR SD,
    # progression day 113, a PFS event.
    "002-0002": (
        "B",
        "002",
        "p5",
        {
            reader: [(BASE, None), (W8, "SD"), (W16, "PD")]
            for reader in (None, CENTRAL_1, CENTRAL_2)
        },
    ),
    # Withdrawn on 2025-04-01 (day 77) after a PR at week 8: the confirming PR of week 16 comes
    # after the withdrawal and is not used -> BOR PR, confirmed BOR SD, PFS censored WITHDRAWAL
    # at week 8 (57 days). No central read yet.
    "002-0003": ("B", "002", "p6", {None: [(BASE, None), (W8, "PR"), (W16, "PR")]}),
}


def report(
    patient: str, date: str, response: str | None, reader: str | None, **overrides: Any
) -> Json:
    resource: Json = {
        "resourceType": "DiagnosticReport",
        "meta": {"profile": [profile_url("imaging-response-report")]},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": date,
        "issued": "2026-01-02T10:00:00+01:00",
        "conclusion": "New lesion in the liver." if response == "PD" else "",
    }
    if reader is not None:
        resource["resultsInterpreter"] = [{"reference": reader}]
    if response is not None:
        resource["conclusionCode"] = [{"coding": [RESPONSE_CATEGORIES[Response(response)].json()]}]
    return resource | overrides


def write(store: RecordingStore, *resources: Json) -> None:
    store.inner.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
                for r in resources
            ],
        }
    )


@pytest.fixture
def study(context: Context, store: RecordingStore) -> Context:
    put_study(STUDY, context)
    for subject_id, (arm, site, patient, reads) in READS.items():
        enrol(
            Enrolment(
                study_id="NET-02",
                subject_id=subject_id,
                patient=patient,
                site=site,
                arm=arm,
                reference_date=DAY_1,
            ),
            context,
        )
        write(
            store,
            *(
                report(patient, date, response, reader)
                for reader, visits in reads.items()
                for date, response in visits
            ),
        )
    withdraw("NET-02", "002-0003", context, on=dt.date(2025, 4, 1))
    # Not counted: a preliminary report, and one entered in error.
    write(
        store,
        report("p1", "2025-08-01", "PD", CENTRAL_1, status="preliminary"),
        report("p1", "2025-08-01", "PD", LOCAL, status="entered-in-error"),
    )
    return context


def subject(found: StudyEndpoints, subject_id: str) -> SubjectResult:
    return next(s for s in found.subjects if s.enrolment.subject_id == subject_id)


def evaluators(result: SubjectResult) -> list[str]:
    return [e.evaluator for e in result.evaluations]


def endpoints_of(result: SubjectResult, evaluator: str) -> Any:
    return next(e.endpoints for e in result.evaluations if e.evaluator == evaluator)


def summary(found: StudyEndpoints) -> dict[tuple[str, str], tuple[int, Proportion, Proportion]]:
    return {
        (s.arm, s.evaluator): (s.n, s.objective_response, s.disease_control)
        for s in found.summaries
    }


def proportion(count: int, n: int, rate: str, lower: str, upper: str) -> Proportion:
    return Proportion(
        count=count,
        n=n,
        rate=Decimal(rate),
        lower=Decimal(lower),
        upper=Decimal(upper),
        confidence=Decimal("0.95"),
    )


# Clopper-Pearson 95 %, worked by hand (limits rounded outward to 4 decimals):
#   x = n:      lower = 0.025^(1/n), upper 1   -> 3/3: 0.2924..; 2/2: sqrt(0.025) = 0.1581..
#   x = 0:      upper = 1 - 0.025^(1/n)        -> 0/3: 0.7075.. -> 0.7076; 0/2: 0.8418.. -> 0.8419
#   1 of 2:     lower = 1 - sqrt(0.975) = 0.01257.. -> 0.0125;
#               upper = sqrt(0.975) = 0.98742.. -> 0.9875
#   2 of 3:     upper = 0.975^(1/3) = 0.99159.. -> 0.9916; lower solves 3p^2 - 2p^3 = 0.025
#               (Beta(2, 2) CDF), p = 0.09429.. -> 0.0942
TWO_OF_THREE = proportion(2, 3, "0.6667", "0.0942", "0.9916")
THREE_OF_THREE = proportion(3, 3, "1.0000", "0.2924", "1.0000")
NONE_OF_THREE = proportion(0, 3, "0.0000", "0.0000", "0.7076")
TWO_OF_TWO = proportion(2, 2, "1.0000", "0.1581", "1.0000")
ONE_OF_TWO = proportion(1, 2, "0.5000", "0.0125", "0.9875")
NONE_OF_TWO = proportion(0, 2, "0.0000", "0.0000", "0.8419")


def test_each_subject_is_evaluated_by_the_investigator_each_central_reader_and_centrally(
    study: Context,
) -> None:
    found = study_endpoints("NET-02", study)

    assert [s.enrolment.subject_id for s in found.subjects] == sorted(READS)
    assert evaluators(subject(found, "001-0001")) == [INVESTIGATOR, R1, R2, CENTRAL]
    assert evaluators(subject(found, "001-0002")) == [INVESTIGATOR, R1, R2]  # pending
    assert evaluators(subject(found, "002-0001")) == [INVESTIGATOR, R1, CENTRAL]
    assert evaluators(subject(found, "002-0003")) == [INVESTIGATOR]
    central = {
        s.enrolment.subject_id: (e.basis, e.read_by)
        for s in found.subjects
        for e in s.evaluations
        if e.evaluator == CENTRAL
    }
    assert central == {
        "001-0001": ("AGREEMENT", R1),
        "002-0001": ("SINGLE READER", R1),
        "001-0003": ("AGREEMENT", R1),
        "002-0002": ("AGREEMENT", R1),
    }
    assert [s.enrolment.subject_id for s in found.subjects if s.adjudication_needed] == ["001-0002"]


def test_a_confirmed_pr_with_its_visits_duration_of_response_and_censored_pfs(
    study: Context,
) -> None:
    found = endpoints_of(subject(study_endpoints("NET-02", study), "001-0001"), INVESTIGATOR)

    assert [(str(v.date), v.study_day, v.visit, v.overall_response) for v in found.visits] == [
        ("2025-01-10", -5, "UNSCHEDULED", None),  # the baseline: day -5, before day 1
        ("2025-03-12", 57, "WEEK 8", Response.PR),
        ("2025-05-07", 113, "WEEK 16", Response.PR),
        ("2025-07-02", 169, "WEEK 24", Response.SD),
    ]
    assert (found.best_overall_response.response, str(found.best_overall_response.date)) == (
        Response.PR,
        "2025-03-12",
    )
    assert found.confirmed_best_overall_response.response is Response.PR
    assert str(found.first_response_date) == "2025-03-12"
    # DoR: 2025-03-12 to the last adequate assessment 2025-07-02, censored: 112 + 1 days.
    dor = found.duration_of_response
    assert (str(dor.date), dor.days, dor.event) == ("2025-07-02", 113, False)
    # The preliminary and entered-in-error PDs of 2025-08-01 are not read.
    assert found.progression_date is None
    pfs = found.progression_free_survival
    assert (str(pfs.date), pfs.days, pfs.event, pfs.censoring_reason) == (
        "2025-07-02",
        169,
        False,
        CensoringReason.LAST_ADEQUATE_ASSESSMENT,
    )
    assert (found.objective_response, found.clinical_benefit) == (True, True)


def test_unconfirmed_pr_pr_across_one_ne_sd_too_early_pd_and_withdrawal(study: Context) -> None:
    found = study_endpoints("NET-02", study)

    unconfirmed = endpoints_of(subject(found, "001-0002"), INVESTIGATOR)
    assert unconfirmed.best_overall_response.response is Response.PR
    assert unconfirmed.confirmed_best_overall_response.response is Response.SD
    assert unconfirmed.first_response_date is None  # confirmation is required
    assert unconfirmed.duration_of_response is None
    assert (str(unconfirmed.progression_date), unconfirmed.progression_study_day) == (
        "2025-05-07",
        113,
    )
    pfs = unconfirmed.progression_free_survival
    assert (pfs.days, pfs.event) == (113, True)

    across_ne = endpoints_of(subject(found, "002-0001"), INVESTIGATOR)
    assert across_ne.confirmed_best_overall_response.response is Response.PR
    assert str(across_ne.confirmed_best_overall_response.date) == "2025-03-12"

    too_early = endpoints_of(subject(found, "001-0003"), INVESTIGATOR)
    assert too_early.visits[1].visit == "UNSCHEDULED"  # day 29: no window holds it
    assert too_early.confirmed_best_overall_response.response is Response.NE
    assert too_early.clinical_benefit is False
    pfs = too_early.progression_free_survival
    assert (str(pfs.date), pfs.days, pfs.censoring_reason) == (
        "2025-02-12",
        29,
        CensoringReason.LAST_ADEQUATE_ASSESSMENT,
    )

    new_lesion = endpoints_of(subject(found, "002-0002"), CENTRAL)
    assert new_lesion.confirmed_best_overall_response.response is Response.SD
    assert (str(new_lesion.progression_date), new_lesion.progression_free_survival.event) == (
        "2025-05-07",
        True,
    )

    withdrawn = endpoints_of(subject(found, "002-0003"), INVESTIGATOR)
    assert withdrawn.visits[-1].role.value == "after-withdrawal"
    assert withdrawn.best_overall_response.response is Response.PR
    assert withdrawn.confirmed_best_overall_response.response is Response.SD
    pfs = withdrawn.progression_free_survival
    assert (str(pfs.date), pfs.days, pfs.censoring_reason) == (
        "2025-03-12",
        57,
        CensoringReason.WITHDRAWAL,
    )


def test_per_arm_orr_and_dcr_by_evaluator_before_and_after_adjudication(
    study: Context,
) -> None:
    before = summary(study_endpoints("NET-02", study))
    # Arm A: investigator 001-0001 PR, 001-0002 SD, 002-0001 PR -> ORR 2/3, DCR 3/3; the same
    # for RADIOLOGIST 1; RADIOLOGIST 2 read 001-0001 PR and 001-0002 PR -> 2/2, 2/2; central:
    # 001-0001 (agreed PR) and 002-0001 (single reader, PR), 001-0002 awaits adjudication.
    # Arm B: investigator 001-0003 NE, 002-0002 SD, 002-0003 SD (PR unconfirmed) -> ORR 0/3,
    # DCR 2/3; each central reader and central: NE, SD -> 0/2, 1/2.
    assert before == {
        ("A", INVESTIGATOR): (3, TWO_OF_THREE, THREE_OF_THREE),
        ("A", R1): (3, TWO_OF_THREE, THREE_OF_THREE),
        ("A", R2): (2, TWO_OF_TWO, TWO_OF_TWO),
        ("A", CENTRAL): (2, TWO_OF_TWO, TWO_OF_TWO),
        ("B", INVESTIGATOR): (3, NONE_OF_THREE, TWO_OF_THREE),
        ("B", R1): (2, NONE_OF_TWO, ONE_OF_TWO),
        ("B", R2): (2, NONE_OF_TWO, ONE_OF_TWO),
        ("B", CENTRAL): (2, NONE_OF_TWO, ONE_OF_TWO),
    }
    assert list(before) == [
        ("A", INVESTIGATOR),
        ("A", R1),
        ("A", R2),
        ("A", CENTRAL),
        ("B", INVESTIGATOR),
        ("B", R1),
        ("B", R2),
        ("B", CENTRAL),
    ]

    adjudicate("NET-02", "001-0002", accept=R2, by=ADJUDICATOR, context=study)
    found = study_endpoints("NET-02", study)
    after = summary(found)

    # RADIOLOGIST 2's confirmed PR is now 001-0002's central read: arm A central 3/3, 3/3.
    assert after[("A", CENTRAL)] == (3, THREE_OF_THREE, THREE_OF_THREE)
    assert {k: v for k, v in after.items() if k != ("A", CENTRAL)} == {
        k: v for k, v in before.items() if k != ("A", CENTRAL)
    }
    adjudicated = subject(found, "001-0002")
    assert adjudicated.adjudication_needed
    assert adjudicated.adjudication is not None
    assert (adjudicated.adjudication.label, adjudicated.adjudication.by) == (R2, ADJUDICATOR)
    central = next(e for e in adjudicated.evaluations if e.evaluator == CENTRAL)
    assert (central.basis, central.read_by) == ("ADJUDICATION", R2)
    assert central.endpoints.progression_date is None


def test_the_adjudication_is_an_extension_of_the_research_subject_kept_by_later_updates(
    study: Context, store: RecordingStore
) -> None:
    stored = adjudicate("NET-02", "001-0002", accept=R2, by=ADJUDICATOR, context=study)
    again = adjudicate("NET-02", "001-0002", accept=R2, by=ADJUDICATOR, context=study)

    assert stored.written
    assert not again.written  # the same decision: only its AuditEvent
    kind, subject_id = stored.reference.split("/")
    resource = store.inner.read(kind, subject_id)
    assert resource is not None
    (extension,) = [
        e for e in resource["extension"] if e["url"].endswith("/research-subject-adjudication")
    ]
    parts = {p["url"]: next(v for k, v in p.items() if k != "url") for p in extension["extension"]}
    assert parts["accepted"] == R2
    assert parts["reader"] == {"reference": CENTRAL_2}
    assert parts["by"] == {"reference": ADJUDICATOR}
    audit = store.sent[-1]["entry"][-1]["resource"]
    assert audit["resourceType"] == "AuditEvent"
    assert {"reference": "Patient/p2"} in [e.get("what") for e in audit["entity"]]

    enrolment = get_subject("NET-02", "001-0002", study).enrolment
    enrol(enrolment.__class__(**{**enrolment.__dict__, "adjudication": None}), study)
    withdraw("NET-02", "001-0002", study, on=dt.date(2025, 6, 1))
    kept = get_subject("NET-02", "001-0002", study).enrolment.adjudication
    assert kept is not None
    assert kept.label == R2


@pytest.mark.parametrize(
    ("subject_id", "accept", "by", "field", "message"),
    [
        ("001-0002", "RADIOLOGIST 3", ADJUDICATOR, "accept", "Not a central reader"),
        ("001-0002", "SITE 001", ADJUDICATOR, "accept", "Not a central reader"),
        ("001-0002", R2, "Practitioner/somebody", "by", "Not an adjudicator"),
        ("001-0001", R1, ADJUDICATOR, "accept", "needs no adjudication"),  # they agree
        ("002-0001", R1, ADJUDICATOR, "accept", "needs no adjudication"),  # one reader only
    ],
    ids=["unknown-label", "local-reader", "not-an-adjudicator", "agreement", "single-reader"],
)
def test_an_adjudication_that_cannot_be_is_refused_and_writes_nothing_but_its_failure_audit(
    study: Context,
    store: RecordingStore,
    subject_id: str,
    accept: str,
    by: str,
    field: str,
    message: str,
) -> None:
    sent = len(store.sent)
    with pytest.raises(InvalidInputError) as refused:
        adjudicate("NET-02", subject_id, accept=accept, by=by, context=study)

    assert [(p.path, message in p.message) for p in refused.value.errors] == [((field,), True)]
    written = [e["resource"]["resourceType"] for b in store.sent[sent:] for e in b["entry"]]
    assert written == ["AuditEvent"]


def test_reading_the_endpoints_audits_one_read_per_subject_naming_its_patient(
    study: Context, store: RecordingStore
) -> None:
    sent = len(store.sent)
    study_endpoints("NET-02", study)

    (bundle,) = store.sent[sent:]
    patients = [
        e["what"]["reference"]
        for entry in bundle["entry"]
        for e in entry["resource"]["entity"]
        if e["what"]["reference"].startswith("Patient/")
    ]
    assert sorted(patients) == [f"Patient/p{i}" for i in range(1, 7)]
    assert {entry["resource"]["action"] for entry in bundle["entry"]} == {"R"}


def test_a_report_with_a_code_the_criteria_does_not_use_is_a_conflict_naming_the_subject(
    study: Context, store: RecordingStore
) -> None:
    irecist = {"coding": [RESPONSE_CATEGORIES[Response.IPR].json()]}
    write(store, report("p1", "2025-09-01", None, CENTRAL_2, conclusionCode=[irecist]))

    with pytest.raises(InvalidInputError) as refused:
        study_endpoints("NET-02", study)

    assert "Subject 001-0001, RADIOLOGIST 2" in refused.value.errors[0].message
