"""A study's trial endpoints from its subjects' stored DiagnosticReports (``docs/trials.md``
"Study endpoints"): per subject and evaluator, the endpoints of :mod:`fhirnet.trials`, the
central evaluation with its adjudication, and per arm and evaluator ORR and DCR.

**What is read.** The study and its subjects (:func:`fhirnet.services.studies.study_subjects`),
then each subject's imaging-response DiagnosticReports (profile ``imaging-response-report``,
status ``final`` or ``amended``) through the :class:`~fhirnet.ports.FhirStore` port: the exam
date is ``effectiveDateTime``, the overall response ``conclusionCode`` (none at a baseline). The
**evaluator** of a report is the label of the study's central reader whose reference is one of
its ``resultsInterpreter``; any other report (the site's own read, with or without a local
reader) is the ``INVESTIGATOR``'s. When one evaluator has two reports of one date (an exam read
twice), the one issued last counts.

**Central evaluation** (:data:`CENTRAL`): the central readers who read the subject agree on the
best overall response (the confirmed one when the study requires confirmation) and the
progression date → the first of them in the study's order (basis ``AGREEMENT``; ``SINGLE
READER`` when only one has read the subject); they disagree → the subject needs adjudication,
and the read the adjudicator accepted (:mod:`fhirnet.services.adjudication`) is the central
one (basis ``ADJUDICATION``); until then there is no central evaluation of the subject.

**Audit.** The answer discloses each subject's results: one READ AuditEvent per subject, naming
the patient and the ResearchSubject, is written before the answer is returned. The answer holds
no resource and no patient id: subject numbers, dates and derived numbers only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fhirnet.criteria.models import Response
from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.datatypes import profile_url
from fhirnet.fhir.studies import (
    OPTION_TYPES,
    Adjudication,
    Enrolment,
    ReaderRole,
    Study,
)
from fhirnet.services.context import Context
from fhirnet.services.history import PAGE_SIZE
from fhirnet.services.studies import StudyConflictError, study_subjects
from fhirnet.services.study_records import audit_subject_reads
from fhirnet.trials import (
    ArmSubject,
    ArmSummary,
    EndpointOptions,
    ScheduledVisit,
    SubjectEndpoints,
    SubjectRequest,
    VisitResponse,
    derive_endpoints,
    summarize_arms,
)

__all__ = [
    "CENTRAL",
    "INVESTIGATOR",
    "CentralBasis",
    "Evaluation",
    "StudyEndpoints",
    "SubjectResult",
    "endpoint_options",
    "evaluate_subject",
    "study_endpoints",
]

#: The evaluator of the reports no central reader interpreted: the site's own reading.
INVESTIGATOR: Final = "INVESTIGATOR"
#: The evaluator row of the central evaluation: the readers' agreed or the adjudicated read.
CENTRAL: Final = "CENTRAL"
#: Report statuses whose results count (R4 ``diagnostic-report-status``).
_COUNTED: Final = frozenset({"final", "amended", "corrected", "appended"})
_REPORT_PROFILE: Final = profile_url("imaging-response-report")
#: NCIt code of a response category → the domain's code.
_RESPONSES: Final[Mapping[str, Response]] = {
    coding.code: response for response, coding in RESPONSE_CATEGORIES.items()
}
#: The study's option names → :class:`EndpointOptions` fields.
_OPTION_FIELDS: Final[Mapping[str, str]] = {
    "confirmationRequired": "confirmation_required",
    "confirmationMinDays": "confirmation_min_days",
    "sdMinDays": "sd_min_days",
    "maxNeBetween": "max_ne_between",
    "acceptSdBetween": "accept_sd_between",
}
assert set(_OPTION_FIELDS) == set(OPTION_TYPES)  # noqa: S101 -- a new option must be mapped


class CentralBasis:
    """Why the central evaluation is the read it is."""

    AGREEMENT: Final = "AGREEMENT"
    SINGLE_READER: Final = "SINGLE READER"
    ADJUDICATION: Final = "ADJUDICATION"


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """One evaluator's endpoints of one subject; ``basis`` and ``read_by`` for :data:`CENTRAL`
    only (the central reader whose read it is)."""

    evaluator: str
    endpoints: SubjectEndpoints
    basis: str | None = None
    read_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class SubjectResult:
    """A subject's evaluations (investigator, each central reader who read it, central), whether
    its central readers disagree, and the stored adjudication."""

    enrolment: Enrolment
    evaluations: tuple[Evaluation, ...]
    adjudication_needed: bool
    adjudication: Adjudication | None
    notes: tuple[str, ...] = ()

    @property
    def adjudication_pending(self) -> bool:
        return self.adjudication_needed and not any(
            e.evaluator == CENTRAL for e in self.evaluations
        )

    def central_labels(self) -> tuple[str, ...]:
        """The central readers who read the subject."""
        return tuple(
            e.evaluator for e in self.evaluations if e.evaluator not in (INVESTIGATOR, CENTRAL)
        )


@dataclass(frozen=True, kw_only=True)
class StudyEndpoints:
    """Every subject's evaluations and the per-arm, per-evaluator summaries."""

    study: Study
    subjects: tuple[SubjectResult, ...]
    summaries: tuple[ArmSummary, ...]


def endpoint_options(study: Study) -> EndpointOptions:
    """The endpoint options the study fixes (the defaults for those it does not)."""
    given: dict[str, Any] = {_OPTION_FIELDS[k]: v for k, v in study.options.items()}
    return EndpointOptions(**given)


def study_endpoints(study_id: str, context: Context) -> StudyEndpoints:
    """Derive the endpoints of every subject of a study from its stored reports, audited.

    :raises fhirnet.services.studies.StudyNotFoundError: no such study.
    :raises fhirnet.services.studies.StudyConflictError: a stored report contradicts the study
        (a response code its criteria does not use, a follow-up report without a response
        where the derivation needs one), named by subject and evaluator.
    :raises fhirnet.errors.FhirServerError: the store refused or is unavailable.
    """
    stored, subjects = study_subjects(study_id, context)
    study = stored.study
    results = [evaluate_subject(context, study, subject.enrolment) for subject in subjects]
    audit_subject_reads(
        context, [(subject.enrolment.patient, subject.reference) for subject in subjects]
    )
    return StudyEndpoints(
        study=study, subjects=tuple(results), summaries=_summaries(study, results)
    )


def evaluate_subject(context: Context, study: Study, enrolment: Enrolment) -> SubjectResult:
    """One subject's evaluations from its stored reports (not audited: the caller does).

    :raises StudyConflictError: see :func:`study_endpoints`.
    """
    central = {r.reference: r.label for r in study.readers if r.role is ReaderRole.CENTRAL}
    reads, notes = _reads(context, enrolment, central)
    options = endpoint_options(study)
    schedule = tuple(
        ScheduledVisit(visit=v.visit, day=v.day, window_days=v.window_days) for v in study.schedule
    )
    order = [INVESTIGATOR, *dict.fromkeys(central.values())]
    evaluations: list[Evaluation] = []
    for evaluator in order:
        visits = reads.get(evaluator)
        if not visits:
            continue
        request = SubjectRequest(
            criteria=study.criteria,
            reference_date=enrolment.reference_date,
            visits=tuple(visits),
            options=options,
            schedule=schedule,
            withdrawal_date=enrolment.withdrawal_date,
        )
        try:
            endpoints = derive_endpoints(request)
        except InvalidInputError as error:
            messages = "; ".join(problem.message for problem in error.errors)
            raise StudyConflictError(
                [
                    FieldError(
                        path=(),
                        message=f"Subject {enrolment.subject_id}, {evaluator}: the stored "
                        f"reports cannot be evaluated: {messages}",
                    )
                ]
            ) from None
        evaluations.append(Evaluation(evaluator=evaluator, endpoints=endpoints))
    central_reads = [e for e in evaluations if e.evaluator != INVESTIGATOR]
    needed = len({_agreement_key(e.endpoints, options) for e in central_reads}) > 1
    adjudication = enrolment.adjudication
    chosen: Evaluation | None = None
    basis: str | None = None
    if len(central_reads) == 1:
        chosen, basis = central_reads[0], CentralBasis.SINGLE_READER
    elif central_reads and not needed:
        chosen, basis = central_reads[0], CentralBasis.AGREEMENT
    elif needed and adjudication is not None:
        chosen = next((e for e in central_reads if e.evaluator == adjudication.label), None)
        basis = CentralBasis.ADJUDICATION
    if chosen is not None:
        evaluations.append(
            Evaluation(
                evaluator=CENTRAL,
                endpoints=chosen.endpoints,
                basis=basis,
                read_by=chosen.evaluator,
            )
        )
    return SubjectResult(
        enrolment=enrolment,
        evaluations=tuple(evaluations),
        adjudication_needed=needed,
        adjudication=adjudication,
        notes=tuple(notes),
    )


def _agreement_key(endpoints: SubjectEndpoints, options: EndpointOptions) -> tuple[Any, ...]:
    """What two central reads must share to agree: the best overall response that drives the
    endpoints (confirmed when required) and the progression date."""
    chosen = (
        endpoints.confirmed_best_overall_response
        if options.confirmation_required
        else endpoints.best_overall_response
    )
    return (chosen.response, endpoints.progression_date)


def _reads(
    context: Context, enrolment: Enrolment, central: Mapping[str, str]
) -> tuple[dict[str, list[VisitResponse]], list[str]]:
    """Each evaluator's visits of the subject, from its counted reports, and notes on the
    reports left out."""
    patient = f"Patient/{enrolment.patient}"
    params = {"subject": patient, "_count": PAGE_SIZE}
    latest: dict[tuple[str, dt.date], tuple[str, Response | None]] = {}
    notes: list[str] = []
    for report in context.store.search("DiagnosticReport", params):
        if not is_counted_report(report, patient):
            continue
        date = exam_date(report.get("effectiveDateTime"))
        if date is None:
            notes.append(f"A report without an exam date is left out ({_id(report)}).")
            continue
        evaluator = evaluator_of(report, central)
        response = _response(report, enrolment, evaluator)
        issued = str(report.get("issued", ""))
        key = (evaluator, date)
        if key in latest and latest[key][0] > issued:
            continue
        latest[key] = (issued, response)
    reads: dict[str, list[VisitResponse]] = {}
    for (evaluator, date), (_issued, response) in sorted(latest.items(), key=_by_date):
        if response is None and date > enrolment.reference_date:
            # A baseline read after study day 1 (a late baseline scan): no response to count.
            notes.append(
                f"{evaluator}: the report of {date.isoformat()} has no overall response "
                "and is after the reference date; it is left out."
            )
            continue
        reads.setdefault(evaluator, []).append(VisitResponse(date=date, overall_response=response))
    return reads, notes


def _by_date(item: tuple[tuple[str, dt.date], Any]) -> tuple[dt.date, str]:
    (evaluator, date), _ = item
    return date, evaluator


def is_counted_report(report: Mapping[str, Any], patient: str) -> bool:
    """A final or amended imaging-response report of the patient (filtered here again: a server
    may ignore a search parameter)."""
    subject = report.get("subject")
    meta = report.get("meta")
    profiles = meta.get("profile") if isinstance(meta, Mapping) else None
    return (
        report.get("resourceType") == "DiagnosticReport"
        and isinstance(subject, Mapping)
        and subject.get("reference") == patient
        and report.get("status") in _COUNTED
        and isinstance(profiles, list)
        and _REPORT_PROFILE in profiles
    )


def exam_date(value: object) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def evaluator_of(report: Mapping[str, Any], central: Mapping[str, str]) -> str:
    interpreters = report.get("resultsInterpreter")
    for interpreter in interpreters if isinstance(interpreters, list) else []:
        reference = interpreter.get("reference") if isinstance(interpreter, Mapping) else None
        if isinstance(reference, str) and reference in central:
            return central[reference]
    return INVESTIGATOR


def _response(report: Mapping[str, Any], enrolment: Enrolment, evaluator: str) -> Response | None:
    """The overall response of ``conclusionCode`` (``None``: a baseline, which has none).

    :raises StudyConflictError: a code that is no response category.
    """
    codes = [
        coding.get("code")
        for concept in _list(report.get("conclusionCode"))
        for coding in _list(concept.get("coding") if isinstance(concept, Mapping) else None)
        if isinstance(coding, Mapping)
    ]
    if not codes:
        return None
    found = next((_RESPONSES[c] for c in codes if isinstance(c, str) and c in _RESPONSES), None)
    if found is None:
        raise StudyConflictError(
            [
                FieldError(
                    path=(),
                    message=f"Subject {enrolment.subject_id}, {evaluator}: report "
                    f"{_id(report)} has no response category in its conclusionCode.",
                )
            ]
        )
    return found


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _id(report: Mapping[str, Any]) -> str:
    return f"DiagnosticReport/{report.get('id')}"


def _summaries(study: Study, results: Sequence[SubjectResult]) -> tuple[ArmSummary, ...]:
    """Per arm (the study's order) and evaluator (investigator, readers, central)."""
    labels = [r.label for r in study.readers if r.role is ReaderRole.CENTRAL]
    evaluators = [INVESTIGATOR, *dict.fromkeys(labels), CENTRAL]
    arms = [arm.code for arm in study.arms]
    rows: list[ArmSubject] = [
        ArmSubject(
            arm=result.enrolment.arm,
            evaluator=evaluation.evaluator,
            subject=result.enrolment.subject_id,
            endpoints=evaluation.endpoints,
        )
        for result in results
        for evaluation in result.evaluations
    ]
    rows.sort(key=lambda row: (_index(arms, row.arm), _index(evaluators, row.evaluator)))
    return summarize_arms(rows)


def _index(values: Iterable[str], value: str) -> int:
    found = list(values)
    return found.index(value) if value in found else len(found)
