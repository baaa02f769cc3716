"""The data of a study's waterfall, spider and swimmer plots (``docs/trials.md`` "Plots"), per
evaluator and optionally per arm, from the subjects' stored reports.

**What is read.** As :mod:`fhirnet.services.study_endpoints`: the study, its subjects, each
subject's counted imaging-response DiagnosticReports (the evaluator of a report is the central
reader who interpreted it, else ``INVESTIGATOR``; of two reports of one evaluator and date, the
one issued last), and the subject's endpoints per evaluator. For the evaluator plotted (for
``CENTRAL``: the read the central evaluation is, ``readBy``), each report's ``result``
Observations through the :class:`~fhirnet.ports.FhirStore` port: the ``sum-of-diameters``
(its value; ``dataAbsentReason`` when a target was not measured) and the ``response-assessment``
(percent change from baseline, new lesions, non-target response). The derivation itself is
:mod:`fhirnet.trials.plot_data`.

**Audit.** As the endpoints: one READ AuditEvent per subject read (those of the arm asked for),
naming the patient and the ResearchSubject, written before the answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from fhirnet.criteria.models import Response
from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.datatypes import NCIT, profile_url
from fhirnet.fhir.report import CRITERIA_LABELS
from fhirnet.fhir.studies import Enrolment, ReaderRole, Study
from fhirnet.services.context import Context
from fhirnet.services.history import PAGE_SIZE
from fhirnet.services.studies import study_subjects
from fhirnet.services.study_endpoints import (
    CENTRAL,
    INVESTIGATOR,
    endpoint_options,
    evaluate_subject,
    evaluator_of,
    exam_date,
    is_counted_report,
)
from fhirnet.services.study_records import audit_subject_reads
from fhirnet.trials.plot_data import (
    Measurement,
    PlotData,
    PlotKind,
    SubjectSeries,
    confirmation_rule,
    plot_data,
)

__all__ = ["evaluators", "study_plot"]

_SUM_PROFILE: Final = profile_url("sum-of-diameters")
_RESPONSE_PROFILE: Final = profile_url("response-assessment")
_CHANGE_FROM_BASELINE: Final = "C112370"
_NEW_LESIONS: Final = "C142362"
_NON_TARGET_RESPONSE: Final = "C94535"
_RESPONSES: Final[Mapping[str, Response]] = {
    coding.code: response for response, coding in RESPONSE_CATEGORIES.items()
}
_PROGRESSION: Final = frozenset({Response.PD, Response.IUPD, Response.ICPD, Response.PMD})


def evaluators(study: Study) -> tuple[str, ...]:
    """The evaluators a plot may show: the investigator, each central reader, central."""
    labels = [r.label for r in study.readers if r.role is ReaderRole.CENTRAL]
    return (INVESTIGATOR, *dict.fromkeys(labels), CENTRAL)


def study_plot(
    study_id: str,
    kind: PlotKind,
    context: Context,
    *,
    evaluator: str = INVESTIGATOR,
    arm: str | None = None,
) -> PlotData:
    """The data of one plot of a study, audited.

    :raises fhirnet.services.studies.StudyNotFoundError: no such study.
    :raises fhirnet.errors.InvalidInputError: an arm or evaluator the study does not have
        (fields ``arm``, ``evaluator``).
    :raises fhirnet.services.studies.StudyConflictError: a stored report contradicts the study.
    :raises fhirnet.errors.FhirServerError: the store refused or is unavailable.
    """
    stored, subjects = study_subjects(study_id, context)
    study = stored.study
    problems = []
    arms = [a.code for a in study.arms]
    if arm is not None and arm not in arms:
        problems.append(
            FieldError(path=("arm",), message=f"Not an arm of the study; one of {arms}.")
        )
    known = evaluators(study)
    if evaluator not in known:
        problems.append(
            FieldError(
                path=("evaluator",),
                message=f"Not an evaluator of the study; one of {list(known)}.",
            )
        )
    if problems:
        raise InvalidInputError(problems)
    chosen = [s for s in subjects if arm is None or s.enrolment.arm == arm]
    options = endpoint_options(study)
    series: list[SubjectSeries] = []
    not_read: list[str] = []
    central = {r.reference: r.label for r in study.readers if r.role is ReaderRole.CENTRAL}
    for subject in chosen:
        enrolment = subject.enrolment
        result = evaluate_subject(context, study, enrolment)
        evaluation = next((e for e in result.evaluations if e.evaluator == evaluator), None)
        if evaluation is None:
            not_read.append(enrolment.subject_id)
            continue
        reader = evaluation.read_by or evaluation.evaluator
        series.append(
            SubjectSeries(
                subject=enrolment.subject_id,
                arm=enrolment.arm,
                endpoints=evaluation.endpoints,
                measurements=_measurements(context, enrolment, central, reader),
                confirmation_required=options.confirmation_required,
                withdrawal_date=enrolment.withdrawal_date,
            )
        )
    audit_subject_reads(
        context, [(subject.enrolment.patient, subject.reference) for subject in chosen]
    )
    return plot_data(
        kind,
        series,
        study_id=study_id,
        criteria=CRITERIA_LABELS[study.criteria],
        evaluator=evaluator,
        arm=arm,
        confirmation=confirmation_rule(
            options.confirmation_required,
            options.confirmation_min_days,
            options.max_ne_between,
        ),
        not_read=not_read,
    )


def _measurements(
    context: Context, enrolment: Enrolment, central: Mapping[str, str], reader: str
) -> tuple[Measurement, ...]:
    """The reader's sums of the subject, one per exam date (the report issued last)."""
    patient = f"Patient/{enrolment.patient}"
    latest: dict[dt.date, tuple[str, Mapping[str, Any]]] = {}
    for report in context.store.search(
        "DiagnosticReport", {"subject": patient, "_count": PAGE_SIZE}
    ):
        if not is_counted_report(report, patient) or evaluator_of(report, central) != reader:
            continue
        date = exam_date(report.get("effectiveDateTime"))
        if date is None:
            continue
        issued = str(report.get("issued", ""))
        if date in latest and latest[date][0] > issued:
            continue
        latest[date] = (issued, report)
    return tuple(
        _measurement(context, date, report) for date, (_, report) in sorted(latest.items())
    )


def _measurement(context: Context, date: dt.date, report: Mapping[str, Any]) -> Measurement:
    sum_mm: Decimal | None = None
    change: Decimal | None = None
    new_lesion = non_target = False
    found_sum = found_response = False
    for entry in _list(report.get("result")):
        reference = entry.get("reference") if isinstance(entry, Mapping) else None
        if not isinstance(reference, str) or not reference.startswith("Observation/"):
            continue
        observation = context.store.read("Observation", reference.removeprefix("Observation/"))
        if observation is None:
            continue
        profiles = _list((observation.get("meta") or {}).get("profile"))
        if _SUM_PROFILE in profiles:
            found_sum = True
            sum_mm = _quantity(observation.get("valueQuantity"))
        elif _RESPONSE_PROFILE in profiles:
            found_response = True
            for component in _list(observation.get("component")):
                code = _code(component.get("code"))
                if code == _CHANGE_FROM_BASELINE:
                    change = _quantity(component.get("valueQuantity"))
                elif code == _NEW_LESIONS:
                    new_lesion = component.get("valueBoolean") is True
                elif code == _NON_TARGET_RESPONSE:
                    value = _code(component.get("valueCodeableConcept"))
                    non_target = _RESPONSES.get(value or "") in _PROGRESSION
        if found_sum and found_response:
            break
    return Measurement(
        date=date,
        sum_mm=sum_mm,
        change_from_baseline_pct=change if sum_mm is not None else None,
        new_lesion=new_lesion,
        non_target_progression=non_target,
    )


def _quantity(value: object) -> Decimal | None:
    if not isinstance(value, Mapping):
        return None
    number = value.get("value")
    if isinstance(number, bool) or not isinstance(number, int | float | str | Decimal):
        return None
    return Decimal(str(number))


def _code(concept: object) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    for coding in _list(concept.get("coding")):
        if isinstance(coding, Mapping) and coding.get("system") == NCIT:
            code = coding.get("code")
            if isinstance(code, str):
                return code
    return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
