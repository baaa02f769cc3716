"""A patient's timeline from the stored forms and reports, against the real embedded store: each
exam's figures and categories as the stored reports say, the references of its stored resources,
the chart's baseline, nadir and thresholds, read streams, and the audit of the read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from fhirnet.criteria.models import Criteria, Response
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.identifiers import ExamKey, Kind
from fhirnet.fhir.studies import Arm, Enrolment, Reader, ReaderRole, Site, Study
from fhirnet.services import Context, submit
from fhirnet.services.patient_timeline import SITE, patient_timeline, thresholds_of
from fhirnet.services.studies import enrol, put_study
from tests.submissions import (
    CHOI,
    IRECIST,
    RECIST,
    RecordingStore,
    form,
    form_paths,
    set_answer,
    target,
)

CODES = {coding.code: response for response, coding in RESPONSE_CATEGORIES.items()}


def submit_all(context: Context, patient: str, first: int = 1) -> None:
    for number in range(first, first + len(form_paths(patient))):
        submit(form(patient, number), context)


@pytest.fixture
def recist(context: Context) -> Context:
    submit_all(context, RECIST)
    return context


def test_each_exam_has_the_category_and_sum_its_stored_report_has(
    recist: Context, store: RecordingStore
) -> None:
    timeline = patient_timeline(RECIST, recist)

    assert [exam.date.isoformat() for exam in timeline.exams] == [
        "2025-01-13",
        "2025-04-14",
        "2025-07-14",
        "2025-10-13",
        "2026-01-12",
        "2026-04-13",
    ]
    for exam in timeline.exams:
        assert exam.diagnostic_report is not None
        report = store.read(*exam.diagnostic_report.split("/"))
        assert report is not None
        assert report["effectiveDateTime"][:10] == exam.date.isoformat()
        codes = [
            c["code"] for concept in report.get("conclusionCode", []) for c in concept["coding"]
        ]
        assert [CODES[code] for code in codes][:1] == ([exam.overall] if exam.overall else [])
        key = ExamKey(patient=RECIST, exam=f"{RECIST}-0{timeline.exams.index(exam) + 1}")
        sums = list(
            store.search(
                "Observation", {"identifier": key.identifier(Kind.SUM_OF_DIAMETERS).search()}
            )
        )
        assert [Decimal(str(o["valueQuantity"]["value"])) for o in sums] == [exam.sum_mm]


def test_the_figures_are_those_of_the_recist_example_patient(recist: Context) -> None:
    timeline = patient_timeline(RECIST, recist)
    exams = timeline.exams

    assert [e.overall for e in exams] == [
        None,
        Response.SD,
        Response.SD,
        Response.PR,
        Response.PR,
        Response.PR,
    ]
    assert [e.sum_mm for e in exams] == [Decimal(v) for v in (92, 82, 65, 60, 62, 67)]
    assert [e.change_from_baseline_pct for e in exams[1:]] == [
        Decimal(v) for v in ("-10.9", "-29.3", "-34.8", "-32.6", "-27.2")
    ]
    assert exams[-1].change_from_nadir_pct == Decimal("11.7")
    assert exams[0].assessment_type == "baseline"
    assert exams[1].warnings
    assert exams[1].warnings[0].startswith("missing-modality")
    assert exams[3].reasons


def test_the_reader_s_discordant_conclusion_is_on_its_exam(recist: Context) -> None:
    exams = patient_timeline(RECIST, recist).exams

    assert [len(e.discordances) for e in exams] == [0, 0, 1, 0, 0, 0]
    (discordance,) = exams[2].discordances
    assert (discordance.item, discordance.reader, discordance.computed) == (
        "response-vs-baseline",
        Response.PR,
        Response.SD,
    )


def test_the_chart_has_the_baseline_the_nadir_and_the_recist_thresholds(recist: Context) -> None:
    timeline = patient_timeline(RECIST, recist)

    assert timeline.criteria is Criteria.RECIST_1_1
    assert (timeline.baseline_date.isoformat(), timeline.baseline_sum_mm) == (  # type: ignore[union-attr]
        "2025-01-13",
        Decimal(92),
    )
    assert (timeline.nadir_date.isoformat(), timeline.nadir_sum_mm) == (  # type: ignore[union-attr]
        "2025-10-13",
        Decimal(60),
    )
    assert timeline.thresholds is not None
    # PR: 92 * 0.7; PD: the 60 mm nadir + 20 % (12 mm, more than 5 mm).
    assert timeline.thresholds.partial_response_mm == Decimal("64.4")
    assert timeline.thresholds.progression_mm == Decimal("72.0")


def test_per_lesion_sizes_are_given_for_every_exam(recist: Context) -> None:
    exams = patient_timeline(RECIST, recist).exams

    sizes = {lesion.id: lesion.size_mm for lesion in exams[2].lesions if lesion.role == "target"}
    assert sizes == {"T1": Decimal(30), "T2": Decimal(20), "T3": Decimal(15)}
    assert {
        (lesion.id, lesion.status) for lesion in exams[0].lesions if lesion.role == "non-target"
    } == {
        ("NT1", "present"),
        ("NT2", "present"),
    }
    assert [lesion.id for lesion in exams[-1].lesions if lesion.role == "new"] == ["N1"]


def test_the_links_name_the_stored_form_and_report(recist: Context, store: RecordingStore) -> None:
    for exam in patient_timeline(RECIST, recist).exams:
        assert exam.questionnaire_response is not None
        stored = store.read(*exam.questionnaire_response.split("/"))
        assert stored is not None
        assert stored["identifier"]["value"].startswith(RECIST)


@pytest.mark.parametrize(
    ("criteria", "baseline", "nadir", "pr", "pd"),
    [
        (Criteria.RECIST_1_1, "92", "60", "64.4", "72.0"),
        (Criteria.RECIST_1_1, "20", "20", "14.0", "25.0"),  # 20 % is 4 mm: the 5 mm rule wins
        (Criteria.IRECIST, "100", "100", "70.0", "120.0"),
        (Criteria.CHOI, "86", "86", "77.4", "94.6"),
        (Criteria.PERCIST_1_0, "50", "40", None, None),
    ],
)
def test_thresholds_follow_the_criteria(
    criteria: Criteria, baseline: str, nadir: str, pr: str | None, pd: str | None
) -> None:
    found = thresholds_of(criteria, Decimal(baseline), Decimal(nadir))

    assert found.partial_response_mm == (None if pr is None else Decimal(pr))
    assert found.progression_mm == (None if pd is None else Decimal(pd))
    assert found.basis


def test_the_other_criteria_example_patients_have_their_timelines(context: Context) -> None:
    submit_all(context, CHOI)
    submit(form(IRECIST, 0), context)
    submit_all(context, IRECIST)

    choi = patient_timeline(CHOI, context)
    irecist = patient_timeline(IRECIST, context)

    assert [e.overall for e in choi.exams] == [None, "PR", "PR", "SD", "PD"]
    assert choi.criteria is Criteria.CHOI
    assert [e.assessment_type for e in irecist.exams][:2] == ["pre-baseline", "baseline"]
    assert [e.overall for e in irecist.exams] == [None, None, "iUPD", "iSD", "iSD", "iPR"]
    assert irecist.baseline_date is not None
    assert irecist.baseline_date.isoformat() == "2025-03-03"


def test_an_unknown_patient_or_stream_has_no_exams(recist: Context) -> None:
    assert patient_timeline("nobody", recist).exams == ()
    other = patient_timeline(RECIST, recist, stream="Practitioner/central-1")
    assert other.exams == ()
    assert other.stream == "Practitioner/central-1"
    assert patient_timeline(RECIST, recist, stream="").stream == SITE


def test_the_read_is_audited_with_every_resource_it_refers_to(
    recist: Context, store: RecordingStore
) -> None:
    sent = len(store.sent)
    timeline = patient_timeline(RECIST, recist)

    (bundle,) = store.sent[sent:]
    (entry,) = bundle["entry"]
    event = entry["resource"]
    assert (event["resourceType"], event["action"]) == ("AuditEvent", "R")
    named = {e["what"]["reference"] for e in event["entity"]}
    assert f"Patient/{RECIST}" in named
    for exam in timeline.exams:
        assert {exam.questionnaire_response, exam.diagnostic_report} <= named


def test_stream_selects_a_central_reader_s_own_reads(context: Context) -> None:
    """A patient enrolled in a study whose central reader reads the baseline and a follow-up:
    the site's timeline keeps the site's forms, the reader's (by reference or label) its own."""
    central = Reader(reference="Practitioner/central-1", role=ReaderRole.CENTRAL, label="CR 1")
    put_study(
        Study(
            study_id="NET-01",
            title="Study NET-01",
            criteria=Criteria.RECIST_1_1,
            arms=(Arm(code="A", name="177Lu-DOTATATE"),),
            sites=(Site(id="001", name="Uppsala"),),
            readers=(central,),
        ),
        context,
    )
    enrol(
        Enrolment(
            study_id="NET-01",
            subject_id="001-0001",
            patient=RECIST,
            site="001",
            arm="A",
            reference_date=dt.date(2025, 1, 14),
        ),
        context,
    )
    submit(form(RECIST, 1), context)
    submit(form(RECIST, 2), context)
    for number, sizes in ((1, (42.0, 28.0, 22.0)), (2, (28.0, 20.0, 16.0))):  # 92 -> 64: PR
        read = form(RECIST, number)
        read["identifier"]["value"] = f"cr1-{number}"
        read["author"] = {"reference": central.reference}
        for lesion, size in zip(("T1", "T2", "T3"), sizes, strict=True):
            set_answer(target(read, lesion), "lesion-size", "valueDecimal", size)
        submit(read, context)

    site = patient_timeline(RECIST, context)
    by_reference = patient_timeline(RECIST, context, stream=central.reference)
    by_label = patient_timeline(RECIST, context, stream="CR 1")

    assert site.streams == (SITE, central.reference)
    assert [e.overall for e in site.exams] == [None, Response.SD]
    assert [e.overall for e in by_reference.exams] == [None, Response.PR]
    assert [e.sum_mm for e in by_reference.exams] == [Decimal(92), Decimal(64)]
    assert by_label.stream == central.reference
    assert by_label.exams == by_reference.exams
    reports = {e.diagnostic_report for e in (*site.exams, *by_reference.exams)}
    assert len(reports) == 4  # each stream's own reports


def test_each_exam_gives_its_stored_report_s_category_and_warns_when_it_differs(
    recist: Context, store: RecordingStore
) -> None:
    exams = patient_timeline(RECIST, recist).exams
    assert [e.report_overall for e in exams] == [e.overall for e in exams]
    assert not any(w.startswith("stored-report") for e in exams for w in e.warnings)
    # A report written under other rules, never re-assessed: it concludes PD.
    assert exams[1].diagnostic_report is not None
    report = store.read(*exams[1].diagnostic_report.split("/"))
    assert report is not None
    pd = RESPONSE_CATEGORIES[Response.PD]
    report["conclusionCode"] = [{"coding": [{"system": pd.system, "code": pd.code}]}]
    entry = {"resource": report, "request": {"method": "PUT", "url": exams[1].diagnostic_report}}
    store.inner.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [entry]})

    again = patient_timeline(RECIST, recist).exams[1]

    assert (again.overall, again.report_overall) == (Response.SD, Response.PD)
    assert again.warnings[-1].startswith(
        f"stored-report: {exams[1].diagnostic_report} concludes PD"
    )
