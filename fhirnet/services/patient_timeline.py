"""A patient's exams over time, for the reader's timeline page: each exam's figures and
categories, the reader's conclusion and its discordances, per-lesion sizes, and the references of
its stored QuestionnaireResponse and DiagnosticReport; the baseline, the current nadir and the
response thresholds of the sum of diameters.

The exams are assessed as a submission assesses them (:func:`fhirnet.services.timelines.
assess_streams` on the stored forms, :mod:`fhirnet.services.streams` for the read streams), so the
page shows what the stored reports say; the report of each exam is found by the business
identifier the submission wrote it under, and its concluded category is given beside the computed
one (a warning when they differ: a report not re-assessed, ``fhirnet reassess``).

**Thresholds** of the chart, for the latest timeline (the current baseline and nadir):

* RECIST 1.1 and iRECIST (whose iUPD uses the same cut-offs, iRECIST §2): the PR line is
  ``baseline * (1 - 30 %)`` (§4.3.1), the PD line ``nadir + max(20 % * nadir, 5 mm)``;
* Choi: size only — the PR line ``baseline * (1 - 10 %)``, the PD line ``nadir * (1 + 10 %)``; a
  15 % density decrease also makes a PR, which a chart of diameters cannot show;
* PERCIST 1.0 judges SULpeak, not diameters: no line (``None``).

**Audit**: one READ AuditEvent naming the patient and each QuestionnaireResponse and
DiagnosticReport the answer refers to, written before the answer leaves (as a FHIR read is).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from fhirnet.criteria import thresholds
from fhirnet.criteria.models import Criteria, Response
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.build import ExamResult
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.identifiers import ExamKey, Kind
from fhirnet.fhir.populate import next_nadir_date
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.ports import Json
from fhirnet.services import history
from fhirnet.services.context import Context
from fhirnet.services.live_assessment import (
    Discordance,
    ReaderConclusion,
    discordances,
    new_lesion_response,
)
from fhirnet.services.streams import reader_key, readers_for
from fhirnet.services.timelines import assess_streams

__all__ = [
    "SITE",
    "ExamEntry",
    "LesionSize",
    "PatientTimeline",
    "Thresholds",
    "patient_timeline",
    "thresholds_of",
]

#: The ``stream`` of the site's (investigator's) reads: every form not a study's central read.
SITE: Final = "site"
_QUESTIONNAIRE_RESPONSE: Final = "QuestionnaireResponse"
_REPORT: Final = "DiagnosticReport"
#: A report's ``conclusionCode`` (system, code) → the category it codes.
_CATEGORY_CODES: Final = {(c.system, c.code): r for r, c in RESPONSE_CATEGORIES.items()}


@dataclass(frozen=True, kw_only=True)
class LesionSize:
    """One lesion at one exam: a target's or new lesion's size (``None``: not measured), a
    non-target's status."""

    id: str
    role: str
    size_mm: Decimal | None = None
    too_small_to_measure: bool = False
    status: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExamEntry:
    """One exam of the timeline; figures ``None`` where the domain core gives none (a baseline
    has its own sum only)."""

    date: dt.date
    assessment_type: str
    criteria: Criteria
    baseline_date: dt.date
    sum_mm: Decimal | None
    baseline_sum_mm: Decimal | None
    nadir_sum_mm: Decimal | None
    nadir_date: dt.date | None
    change_from_baseline_pct: Decimal | None
    change_from_nadir_pct: Decimal | None
    target_response: Response | None
    non_target_response: Response | None
    new_lesion_response: str | None
    overall: Response | None
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    reader: ReaderConclusion
    discordances: tuple[Discordance, ...]
    lesions: tuple[LesionSize, ...]
    #: ``QuestionnaireResponse/<id>`` and ``DiagnosticReport/<id>`` as stored (``None``: not
    #: found, e.g. results not written yet).
    questionnaire_response: str | None
    diagnostic_report: str | None
    #: The category the stored report concludes (``None``: no report, or none concluded, as
    #: for a baseline); it differs from ``overall`` only when the report predates a change of
    #: the rules or of an earlier form and was not re-assessed (a warning then says so).
    report_overall: Response | None = None


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """The sums of diameters a follow-up of the latest timeline must reach for a partial
    response (at most ``partial_response_mm``) or progression (at least
    ``progression_mm``); ``basis`` says how they are derived (module docstring)."""

    partial_response_mm: Decimal | None
    progression_mm: Decimal | None
    basis: str


@dataclass(frozen=True, kw_only=True)
class PatientTimeline:
    """The patient's exams of one read stream, in date order, and the chart's reference lines."""

    patient: str
    stream: str
    streams: tuple[str, ...]
    criteria: Criteria | None
    baseline_date: dt.date | None
    baseline_sum_mm: Decimal | None
    nadir_date: dt.date | None
    nadir_sum_mm: Decimal | None
    thresholds: Thresholds | None
    exams: tuple[ExamEntry, ...]
    warnings: tuple[str, ...]


def patient_timeline(
    patient: str, context: Context, *, stream: str | None = None
) -> PatientTimeline:
    """The timeline of ``patient``'s stored forms in one read stream (module docstring).

    :param stream: :data:`SITE` (also ``None`` or empty), or a central reader as
        ``Practitioner/<id>`` (or ``PractitionerRole/<id>``) or by the study's label for them.
    :returns: the exams (none for an unknown patient or stream) and the chart's lines.
    :raises fhirnet.errors.FhirServerError: reading failed, or the AuditEvent was not written.
    """
    store = context.store
    stored, unread = history.stored_forms(store, patient=patient, questionnaire=QUESTIONNAIRE_URL)
    readers, unread_studies = readers_for(store, patient, stored)
    results, issues = assess_streams(stored, {}, readers)
    names = {SITE: None} | {
        _stream_name(result): result.reader for result in results if result.reader is not None
    }
    wanted = _chosen(stream, readers_labels={r.reader.label: r.key for r in readers})
    chosen = sorted(
        (r for r in results if _stream_name(r) == wanted), key=lambda r: r.form.imaging_date
    )
    exams = tuple(_entry(context, patient, result) for result in chosen)
    _audit(context, patient, exams)
    latest = [r for r in chosen if r.baseline_date == chosen[-1].baseline_date] if chosen else []
    nadir = _nadir(latest)
    baseline = next((r for r in latest if r.form.imaging_date == r.baseline_date), None)
    criteria = latest[-1].criteria if latest else None
    baseline_sum = None if baseline is None else baseline.sum_mm
    return PatientTimeline(
        patient=patient,
        stream=wanted,
        streams=tuple(names),
        criteria=criteria,
        baseline_date=latest[0].baseline_date if latest else None,
        baseline_sum_mm=baseline_sum,
        nadir_date=None if nadir is None else nadir.form.imaging_date,
        nadir_sum_mm=None if nadir is None else nadir.sum_mm,
        thresholds=(
            None
            if criteria is None
            else thresholds_of(criteria, baseline_sum, None if nadir is None else nadir.sum_mm)
        ),
        exams=exams,
        warnings=tuple(issue.message for issue in (*unread, *unread_studies, *issues)),
    )


def thresholds_of(
    criteria: Criteria, baseline_sum_mm: Decimal | None, nadir_sum_mm: Decimal | None
) -> Thresholds:
    """The PR and PD lines of the sum of diameters under ``criteria`` (module docstring),
    rounded to 0.1 mm as the figures are (``criteria.md`` §0)."""

    def rounded(value: Decimal | None) -> Decimal | None:
        return None if value is None else value.quantize(thresholds.ONE_DECIMAL)

    if criteria in (Criteria.RECIST_1_1, Criteria.IRECIST):
        pd = None
        if nadir_sum_mm is not None:
            pd = nadir_sum_mm + max(
                nadir_sum_mm * thresholds.RECIST_PD_INCREASE, thresholds.RECIST_PD_ABSOLUTE_MM
            )
        pr = (
            None
            if baseline_sum_mm is None
            else baseline_sum_mm * (1 - thresholds.RECIST_PR_DECREASE)
        )
        return Thresholds(
            partial_response_mm=rounded(pr),
            progression_mm=rounded(pd),
            basis="PR: 30 % below the baseline sum; PD: 20 % and 5 mm above the nadir "
            "(RECIST 1.1 §4.3.1; iRECIST's iUPD alike).",
        )
    if criteria is Criteria.CHOI:
        change = thresholds.CHOI_SIZE_CHANGE
        return Thresholds(
            partial_response_mm=rounded(
                None if baseline_sum_mm is None else baseline_sum_mm * (1 - change)
            ),
            progression_mm=rounded(None if nadir_sum_mm is None else nadir_sum_mm * (1 + change)),
            basis="Choi, size only: PR 10 % below the baseline sum (or a 15 % density fall, not "
            "on this chart); PD 10 % above the nadir.",
        )
    return Thresholds(
        partial_response_mm=None,
        progression_mm=None,
        basis="PERCIST 1.0 judges SULpeak, not the sum of diameters: no line.",
    )


def _stream_name(result: ExamResult) -> str:
    if result.reader is None:
        return SITE
    return reader_key(result.reader.reference) or result.reader.reference


def _chosen(stream: str | None, *, readers_labels: dict[str, str]) -> str:
    if not stream:
        return SITE
    return readers_labels.get(stream) or reader_key(stream) or stream


def _nadir(timeline: Sequence[ExamResult]) -> ExamResult | None:
    """The exam the next one's nadir is: as the domain core's nadir rule gives it
    (:func:`fhirnet.fhir.populate.next_nadir_date`, the date ``$populate`` pre-fills)."""
    exams = [r for r in timeline if not r.pre_baseline]
    if not exams:
        return None
    date = next_nadir_date([r.form for r in exams])
    return next((r for r in exams if r.form.imaging_date == date), None)


def _entry(context: Context, patient: str, result: ExamResult) -> ExamEntry:
    form = result.form
    reader = ReaderConclusion(
        response_vs_baseline=form.response_vs_baseline, response_vs_nadir=form.response_vs_nadir
    )
    assessment = result.assessment
    lesions = (
        *(
            LesionSize(
                id=t.id,
                role="target",
                size_mm=t.diameter_mm,
                too_small_to_measure=t.too_small_to_measure,
            )
            for t in form.targets
        ),
        *(LesionSize(id=n.id, role="non-target", status=n.status.value) for n in form.non_targets),
        *(LesionSize(id=n.id, role="new", size_mm=n.diameter_mm) for n in form.new_lesions),
    )
    form_found = _stored(context, _QUESTIONNAIRE_RESPONSE, result)
    report = _stored(context, _REPORT, result, patient=patient)
    stored_category = _concluded(report)
    overall = None if assessment is None else assessment.overall_response
    warnings = result.warnings
    if report is not None and stored_category != overall:
        warnings += (
            f"stored-report: DiagnosticReport/{report['id']} concludes "
            f"{stored_category or 'nothing'}, the rules now give {overall or 'nothing'} "
            "(not re-assessed: fhirnet reassess)",
        )
    return ExamEntry(
        date=form.imaging_date,
        assessment_type=form.assessment_type.value,
        criteria=result.criteria,
        baseline_date=result.baseline_date,
        sum_mm=result.sum_mm,
        baseline_sum_mm=result.sum_mm if assessment is None else assessment.baseline_sum_mm,
        nadir_sum_mm=None if assessment is None else assessment.nadir_sum_mm,
        nadir_date=None if assessment is None else assessment.nadir_date,
        change_from_baseline_pct=None
        if assessment is None
        else assessment.change_from_baseline_pct,
        change_from_nadir_pct=None if assessment is None else assessment.change_from_nadir_pct,
        target_response=None if assessment is None else assessment.target_response,
        non_target_response=None if assessment is None else assessment.non_target_response,
        new_lesion_response=(
            None if assessment is None else new_lesion_response(assessment.new_lesions)
        ),
        overall=overall,
        reasons=() if assessment is None else assessment.reasons,
        warnings=warnings,
        reader=reader,
        discordances=(
            () if assessment is None else discordances(reader, assessment.overall_response)
        ),
        lesions=lesions,
        questionnaire_response=_reference(form_found),
        diagnostic_report=_reference(report),
        report_overall=stored_category,
    )


def _reference(resource: Json | None) -> str | None:
    return None if resource is None else f"{resource['resourceType']}/{resource['id']}"


def _concluded(report: Json | None) -> Response | None:
    """The category a stored report concludes, if any."""
    if report is None:
        return None
    for concept in report.get("conclusionCode") or []:
        for coding in (concept or {}).get("coding") or []:
            found = _CATEGORY_CODES.get((coding.get("system"), coding.get("code")))
            if found is not None:
                return found
    return None


def _stored(
    context: Context, resource_type: str, result: ExamResult, *, patient: str | None = None
) -> Json | None:
    """The exam's stored form, or (with ``patient``) its report."""
    identifier = result.form.identifier
    if identifier is None:
        return None
    if patient is not None:
        reader = None if result.reader is None else result.reader.reference
        key = ExamKey.of(patient, identifier, reader=reader)
        identifier = key.identifier(Kind.IMAGING_RESPONSE_REPORT)
    return history.find(context.store, resource_type, identifier)


def _audit(context: Context, patient: str, exams: Sequence[ExamEntry]) -> None:
    audit = context.audit
    if audit is None:
        return
    entities = [events.patient(f"Patient/{patient}")]
    for exam in exams:
        for reference in (exam.questionnaire_response, exam.diagnostic_report):
            if reference is not None:
                entities.append(events.resource(reference, reference.split("/", 1)[0]))
    event = audit.event(
        interaction=Interaction.READ, action=Action.READ, now=context.now, entities=entities
    )
    audit.write(context.store, [event])
