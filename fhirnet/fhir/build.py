"""Domain results → the transaction Bundle fhirnet writes for one or more exams of a patient.

Per exam (``crf.md`` "What the service derives and writes"), in this order:

1. the QuestionnaireResponse as received (without its ``id`` and server ``meta``);
2. per target lesion of the form, its ``lesion`` BodyStructure (one per patient and lesion-id;
   once per Bundle when several exams are rebuilt together);
3. per target lesion, its ``lesion-measurement`` Observation;
4. the ``sum-of-diameters`` Observation;
5. at follow-up, the ``response-assessment`` (with the tumour growth rate and hyperprogression
   when the patient has a pre-baseline scan, ``criteria.md`` §7) and ``cancer-disease-status``
   Observations;
6. with a ``risk`` group, ``who-grade``, ``embryologic-origin`` (when the primary site is
   answered), ``prrt-eligibility`` and ``imaging-recommendation`` Observations;
7. the ``imaging-response-report`` DiagnosticReport, whose ``result`` lists 3-6;
8. the ``assessment-provenance`` Provenance, whose ``target`` lists 2-7.

A **pre-baseline** exam (a scan before treatment start, ``crf.md`` v2) is stored and used, never
assessed: it writes its QuestionnaireResponse, its ``sum-of-diameters`` (the D of its growth rate),
the risk Observations when it has a risk group, a DiagnosticReport without ``conclusionCode`` and
the Provenance; no lesion BodyStructure or measurement (the lesions are defined at the baseline,
which may not be on file yet; their sizes stay in the form) and no response assessment.

Every entry is an idempotent ``PUT`` addressed by the resource's business identifier
(:mod:`fhirnet.fhir.identifiers`), so submitting a form again creates nothing and an amended form
replaces what it supersedes. Pure (``style.md`` P13): the time is the ``issued`` parameter and the
fullUrls are uuid5s of the identifiers, so the same input gives the same Bundle.

**Status** of what is written follows the form's (R4 ``questionnaire-answers-status``): completed
→ ``final``; amended → ``amended`` (DiagnosticReport and Observations); in-progress or stopped →
``preliminary``; entered-in-error → ``entered-in-error``. An exam whose issued results are
replaced (:func:`exams_to_rebuild`: its form was corrected, or an earlier form changed its
results) is passed with ``amended=True`` and is ``amended`` too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

from fhirnet import __version__
from fhirnet.criteria import (
    Assessment,
    Criteria,
    TimePointAssessment,
    TumorGrowthRate,
    derive_risk,
)
from fhirnet.criteria.thresholds import rounded
from fhirnet.criteria.timeline import evaluable_sum, lesion_values, sum_of
from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir.datatypes import Json, as_json, instant
from fhirnet.fhir.extract import ExamForm
from fhirnet.fhir.identifiers import (
    DEFAULT_CLIENT_ID_TYPES,
    ExamKey,
    Kind,
    entry,
    patient_id,
)
from fhirnet.fhir.narrative import with_narrative
from fhirnet.fhir.observations import (
    ExamContext,
    Written,
    disease_status,
    lesion,
    measurement,
    response_assessment,
    sum_of_diameters,
)
from fhirnet.fhir.report import diagnostic_report, provenance
from fhirnet.fhir.risk_observations import risk_observations
from fhirnet.fhir.studies import Reader

__all__ = [
    "STATUSES",
    "ExamResult",
    "build_transaction",
    "exam_results",
    "exams_to_rebuild",
    "pre_baseline_result",
]

#: QuestionnaireResponse.status → the status of the Observations and the DiagnosticReport.
STATUSES: Final[Mapping[str, str]] = {
    "completed": "final",
    "amended": "amended",
    "in-progress": "preliminary",
    "stopped": "preliminary",
    "entered-in-error": "entered-in-error",
}
#: Server-managed ``meta`` elements, not carried over from the received QuestionnaireResponse.
_SERVER_META: Final = ("versionId", "lastUpdated", "source")
#: Warnings about the tumour growth rate: they go with the growth rate, to the follow-ups.
_GROWTH_RATE_WARNING: Final = "tgr-undefined:"


@dataclass(frozen=True, kw_only=True)
class ExamResult:
    """One exam with what the assessment of its patient says about it.

    ``assessment`` is ``None`` for the baseline exam (the baseline is not assessed) and for a
    pre-baseline exam; ``sum_mm`` is the exam's sum of diameters (``sumMm``, or ``baselineSumMm``
    at baseline), ``None`` when not evaluable or without targets; ``warnings`` are the
    assessment's warnings about this exam; ``growth_rate`` is the patient's tumour growth rate
    (``criteria.md`` §7), given to every follow-up when there is a pre-baseline scan.

    A pre-baseline exam depends on its own form only (:func:`pre_baseline_result`): its
    ``baseline`` is the form itself and its criteria the form's, so that the baseline arriving
    later does not re-issue it.

    ``reader`` is the study's central reader whose own read the exam is
    (:mod:`fhirnet.services.streams`), ``None`` for the site's: it scopes the lesion
    BodyStructures and names the evaluator in the DiagnosticReport.
    """

    form: ExamForm
    baseline: ExamForm
    criteria: Criteria
    baseline_date: dt.date
    assessment: TimePointAssessment | None
    sum_mm: Decimal | None
    warnings: tuple[str, ...] = ()
    amended: bool = False
    growth_rate: TumorGrowthRate | None = None
    reader: Reader | None = None

    @property
    def pre_baseline(self) -> bool:
        return self.form.pre_baseline


def pre_baseline_result(form: ExamForm, warnings: Sequence[str] = ()) -> ExamResult:
    """The exam of a pre-baseline form: not assessed, its sum of diameters only (the sum of its
    targets, ``None`` when one is not evaluable: §7's D at the pre-baseline scan)."""
    values = lesion_values(form.targets, form.timepoint())
    total = sum_of(values) if form.targets else None
    return ExamResult(
        form=form,
        baseline=form,
        criteria=form.criteria,
        baseline_date=form.imaging_date,
        assessment=None,
        sum_mm=None if total is None else rounded(total),
        warnings=tuple(warnings),
    )


def exam_results(forms: Sequence[ExamForm], assessment: Assessment) -> tuple[ExamResult, ...]:
    """Pair each form with its timepoint of ``assessment`` (by imaging date), in date order.

    Warnings go to every exam whose imaging date they mention ("exam of 2025-04-14"), the others
    to the latest exam. The reader's ``nadir-date`` is compared with the computed nadir (``crf.md``
    "the service computes its own and warns on a mismatch"): warning code ``reader-nadir-date``.

    :param forms: the forms ``assessment`` was computed from.
    :param assessment: :func:`fhirnet.criteria.assess` of
        :func:`~fhirnet.fhir.extract.assessment_request` of ``forms``.
    :raises ValueError: a form is neither the baseline nor one of the assessed timepoints.
    """
    ordered = sorted(forms, key=lambda form: form.imaging_date)
    baseline = next((f for f in ordered if f.imaging_date == assessment.baseline_date), None)
    if baseline is None:
        raise ValueError(f"no form of the baseline date {assessment.baseline_date}")
    assessed = {timepoint.date: timepoint for timepoint in assessment.timepoints}
    baseline_sum = _baseline_sum(baseline)
    dates = {form.imaging_date.isoformat() for form in ordered}
    growth_warnings = [w for w in assessment.warnings if w.startswith(_GROWTH_RATE_WARNING)]
    others = [w for w in assessment.warnings if not w.startswith(_GROWTH_RATE_WARNING)]
    undated = [w for w in others if not any(d in w for d in dates)]
    latest = next(f for f in reversed(ordered) if not f.pre_baseline)
    results = []
    for form in ordered:
        day = form.imaging_date.isoformat()
        warnings = [w for w in others if day in w]
        if form is latest:
            warnings += undated
        if form.pre_baseline:
            results.append(pre_baseline_result(form, warnings))
            continue
        growth_rate = None
        if form is baseline:
            timepoint, sum_mm = None, baseline_sum
        elif form.imaging_date in assessed:
            timepoint = assessed[form.imaging_date]
            sum_mm = timepoint.sum_mm
            warnings += _nadir_warning(form, timepoint)
            # The growth rate and its warnings belong to the assessment as a whole (§7); every
            # follow-up reports them, like its baseline date.
            growth_rate = assessment.tumor_growth_rate
            warnings += [w for w in growth_warnings if w not in warnings]
        else:
            raise ValueError(f"the form of {day} is not a timepoint of the assessment")
        results.append(
            ExamResult(
                form=form,
                baseline=baseline,
                criteria=assessment.criteria,
                baseline_date=assessment.baseline_date,
                assessment=timepoint,
                sum_mm=sum_mm,
                warnings=tuple(warnings),
                growth_rate=growth_rate,
            )
        )
    return tuple(results)


def exams_to_rebuild(
    before: Sequence[ExamResult], after: Sequence[ExamResult]
) -> tuple[ExamResult, ...]:
    """The exams whose written results an accepted form makes stale, for one transaction.

    ``before`` and ``after`` are :func:`exam_results` of the patient's forms without and with the
    new or amended form. An exam is rebuilt when it is new or its result differs in anything
    written (its QuestionnaireResponse, its form, the baseline form, the timepoint assessment,
    the sum, the warnings): the
    amended form itself, and every later exam whose figures, categories, nadir, warnings or
    baseline lesions change with it. A rebuilt exam that had results before is marked ``amended``
    (its results replace issued ones, whatever the status of its form). Exams are matched by
    the form's identifier, else by imaging date.

    :returns: the exams to pass to :func:`build_transaction`, in date order.
    """
    old = {_match_key(result.form): result for result in before}
    rebuilt = []
    for result in after:
        previous = old.get(_match_key(result.form))
        if previous is None:
            rebuilt.append(result)
        elif previous != result or previous.form.response != result.form.response:
            rebuilt.append(replace(result, amended=True))
    return tuple(sorted(rebuilt, key=lambda r: r.form.imaging_date))


def _match_key(form: ExamForm) -> str:
    if form.identifier is not None:
        return f"{form.identifier.system}|{form.identifier.value}"
    return form.imaging_date.isoformat()


def _baseline_sum(baseline: ExamForm) -> Decimal | None:
    """The baseline sum as every follow-up reports it (``baselineSumMm``), with the domain's own
    rules (too small → 5 mm) and rounding; ``None`` without target lesions."""
    if not baseline.targets:
        return None
    return rounded(evaluable_sum(lesion_values(baseline.targets, baseline.timepoint())))


def _nadir_warning(form: ExamForm, timepoint: TimePointAssessment) -> list[str]:
    if form.nadir_date is None or timepoint.nadir_date in (None, form.nadir_date):
        return []
    return [
        f"reader-nadir-date: the reader's nadir date {form.nadir_date} differs from the computed "
        f"nadir of {timepoint.nadir_date} (exam of {form.imaging_date})"
    ]


def build_transaction(
    exams: Sequence[ExamResult],
    *,
    issued: dt.datetime,
    client_id_types: Collection[str] = DEFAULT_CLIENT_ID_TYPES,
    version: str = __version__,
) -> Json:
    """The ``transaction`` Bundle that writes the results of ``exams`` (module docstring).

    :param exams: the exams to (re)write, e.g. the new form alone, or an amended form and the later
        exams whose results changed; written in imaging-date order.
    :param issued: when the results are issued (``issued``, ``Provenance.recorded``,
        ``Bundle.timestamp``); must have a timezone.
    :param client_id_types: resource types written ``PUT <Type>/<id>`` rather than by conditional
        update (:func:`fhirnet.fhir.identifiers.client_id_types` of the server's
        CapabilityStatement).
    :param version: the service version the Provenance names.
    :returns: the Bundle as JSON (plain ``dict``/``list``/numbers, ready for ``json.dumps``).
    :raises InvalidInputError: a form has no ``identifier`` or no ``subject`` ``Patient/<id>``,
        which the stable identifiers are built from.
    :raises ValueError: the same exam twice, or ``issued`` without a timezone.
    """
    issued_text = instant(issued)
    entries: dict[str, Json] = {}
    for exam in sorted(exams, key=lambda e: e.form.imaging_date):
        for written in _exam(exam, issued_text, version):
            if written.full_url in entries and written.identifier.system == Kind.LESION.system:
                continue  # the same lesion BodyStructure of an earlier exam of this Bundle
            if written.full_url in entries:
                raise ValueError(f"{written.identifier} is written twice: an exam given twice?")
            resource = with_narrative(written.resource)
            entries[written.full_url] = entry(
                resource, written.identifier, client_id_types=client_id_types
            )
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": issued_text,
        "entry": list(entries.values()),
    }


def _exam(exam: ExamResult, issued: str, version: str) -> Iterator[Written]:
    """The resources of one exam, in Bundle order."""
    form, baseline = exam.form, exam.baseline
    ctx = _context(exam, issued)
    yield _response(ctx)
    if exam.pre_baseline:
        yield from _pre_baseline_exam(exam, ctx, issued, version)
        return
    defined = {target.id: target for target in baseline.targets}
    bodies: list[Written] = []
    measurements: list[Written] = []
    for target in form.targets:
        # The lesion is defined where it was chosen, at baseline; this exam's answer is where
        # it was measured now. Validation makes the location required, so both exist.
        measured_at = form.location(target.id) or baseline.location(target.id)
        defined_at = baseline.location(target.id) or measured_at
        if measured_at is None or defined_at is None:
            continue
        body = lesion(ctx.key, defined.get(target.id, target), defined_at, ctx.subject)
        bodies.append(body)
        measurements.append(measurement(ctx, target, measured_at, body))
    yield from bodies
    yield from measurements
    total = sum_of_diameters(ctx, exam.sum_mm, measurements)
    yield total
    results = [*measurements, total]
    if exam.assessment is not None:
        assessed = response_assessment(
            ctx, exam.criteria, exam.baseline_date, exam.assessment, total, exam.growth_rate
        )
        status = disease_status(ctx, exam.assessment.overall_response, assessed)
        results += [assessed, status]
        yield assessed
        yield status
    risk = None
    if form.risk is not None:
        risk = derive_risk(form.risk)
        derived = risk_observations(ctx, form.risk, risk)
        results += derived
        yield from derived
    report = diagnostic_report(
        ctx,
        criteria=exam.criteria,
        result=exam.assessment,
        sum_mm=exam.sum_mm,
        risk=risk,
        warnings=exam.warnings,
        results=results,
        growth_rate=exam.growth_rate,
        reader=exam.reader,
    )
    yield report
    yield provenance(ctx, recorded=issued, version=version, targets=[*bodies, *results, report])


def _pre_baseline_exam(
    exam: ExamResult, ctx: ExamContext, issued: str, version: str
) -> Iterator[Written]:
    """The resources of a pre-baseline exam after its QuestionnaireResponse (module docstring)."""
    total = sum_of_diameters(ctx, exam.sum_mm, ())
    yield total
    results = [total]
    risk = None
    if exam.form.risk is not None:
        risk = derive_risk(exam.form.risk)
        derived = risk_observations(ctx, exam.form.risk, risk)
        results += derived
        yield from derived
    report = diagnostic_report(
        ctx,
        criteria=exam.criteria,
        result=None,
        sum_mm=exam.sum_mm,
        risk=risk,
        warnings=exam.warnings,
        results=results,
        reader=exam.reader,
    )
    yield report
    yield provenance(ctx, recorded=issued, version=version, targets=[*results, report])


def _context(exam: ExamResult, issued: str) -> ExamContext:
    form = exam.form
    problems = []
    subject = form.subject
    patient = None if subject is None else patient_id(subject)
    if subject is None or patient is None:
        problems.append(
            FieldError(
                path=("subject", "reference"),
                message="fhirnet writes results about a Patient of the server: subject must be "
                f"a reference Patient/<id>, not {subject!r}",
            )
        )
    if form.identifier is None:
        problems.append(
            FieldError(
                path=("identifier",),
                message="fhirnet keys what it writes on the form's identifier (system and "
                "value), so that a resubmission or an amendment replaces it: none given",
            )
        )
    if problems or subject is None or patient is None or form.identifier is None:
        raise InvalidInputError(problems)
    status = STATUSES.get(form.status, "final")
    if exam.amended and status == "final":
        status = "amended"
    return ExamContext(
        key=ExamKey.of(
            patient, form.identifier, reader=None if exam.reader is None else exam.reader.reference
        ),
        form=form,
        subject=subject,
        response=form.identifier,
        status=status,
        issued=issued,
    )


def _response(ctx: ExamContext) -> Written:
    """The QuestionnaireResponse as received: the server assigns ``id`` and ``meta`` versions."""
    resource: dict[str, Any] = as_json(ctx.form.response)
    resource.pop("id", None)
    meta = resource.get("meta")
    if isinstance(meta, dict):
        for key in _SERVER_META:
            meta.pop(key, None)
        if not meta:
            del resource["meta"]
    return Written(resource=resource, identifier=ctx.response)
