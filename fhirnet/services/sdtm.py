"""A study's CDISC SDTM tumour domains from the store (``docs/trials.md`` "SDTM export"): each
subject in turn is read through the :class:`~fhirnet.ports.FhirStore` port, turned into
:class:`fhirnet.trials.sdtm.SubjectData` and handed on, so one subject's data is held at a time.

**What is read, per subject.** The patient's forms (QuestionnaireResponses of the CRF,
:func:`fhirnet.services.history.stored_forms`): the lesions and what the reader entered (sizes,
too small to measure, non-target states, new lesions, modalities). The patient's
imaging-response DiagnosticReports and the Observations they list in ``result``: the sum of
diameters and the responses fhirnet computed. A form and a report belong together when they
have the same evaluator and exam date. The **evaluator** is as for the study endpoints
(:mod:`fhirnet.services.study_endpoints`): the study's central reader who authored the form
(``resultsInterpreter`` of the report), else the ``INVESTIGATOR``; the **accepted** central
read is the central evaluation's (agreement, single reader or adjudication).

**Audit.** One READ AuditEvent per subject, naming the patient and the ResearchSubject, is
written before that subject's rows are handed on. The rows hold no hospital identifier:
``USUBJID`` = STUDYID-SITEID-SUBJID from the trial's subject numbers.

**Pseudonymization.** Given the study's :class:`~fhirnet.fhir.pseudonymize.Regime`, each
subject's dates move by :meth:`Regime.date_offset` of its patient and reference date — the
offset the FHIR export of the same study uses, so the sponsor's SDTM and NDJSON agree — and
study days, visits and intervals stay as they are (:func:`fhirnet.trials.sdtm.shifted`). Under
the study-day regime the entry point also empties the dates (``StudyExport.dates_kept``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from fhirnet.criteria.models import Modality, Response
from fhirnet.fhir.crf_codes import LESION_SITES, RESPONSE_CATEGORIES
from fhirnet.fhir.datatypes import NCIT, profile_url
from fhirnet.fhir.extract import ExamForm
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.fhir.pseudonymize import DateRegime, Regime
from fhirnet.fhir.studies import ReaderRole, Study
from fhirnet.services.context import Context
from fhirnet.services.history import PAGE_SIZE, stored_forms
from fhirnet.services.studies import StoredSubject, study_subjects
from fhirnet.services.study_endpoints import CENTRAL, INVESTIGATOR, evaluate_subject
from fhirnet.services.study_records import audit_subject_reads
from fhirnet.trials.models import ScheduledVisit
from fhirnet.trials.sdtm import (
    INDEPENDENT_ASSESSOR,
    EvaluatorReads,
    Exam,
    NewLesionRead,
    NonTargetRead,
    SubjectData,
    TargetRead,
    shifted,
)

__all__ = ["METHODS", "StudyExport", "study_export"]

#: TUMETHOD/TRMETHOD of a modality (CDISC METHOD codelist C85492 terms).
METHODS: Final[Mapping[Modality, str]] = {
    Modality.CT: "CT SCAN",
    Modality.MRI: "MRI",
    Modality.SSTR_PET: "PET/CT SCAN",
    Modality.FDG_PET: "PET/CT SCAN",
    Modality.DOPA_PET: "PET/CT SCAN",
    Modality.SSTR_SPECT: "SPECT/CT SCAN",
    Modality.US: "ULTRASOUND",
}
_ANATOMIC: Final = (Modality.CT, Modality.MRI)
_COUNTED: Final = frozenset({"final", "amended", "corrected", "appended"})
_REPORT: Final = profile_url("imaging-response-report")
_ASSESSMENT: Final = profile_url("response-assessment")
_SUM: Final = profile_url("sum-of-diameters")
_RESPONSES: Final[Mapping[str, Response]] = {
    coding.code: response for response, coding in RESPONSE_CATEGORIES.items()
}
_TARGET_RESPONSE: Final = "C94534"
_NON_TARGET_RESPONSE: Final = "C94535"


@dataclass(frozen=True)
class StudyExport:
    """The study and its subjects' SDTM data, read (and audited) one subject at a time while
    :attr:`subjects` is iterated. Iterate it once."""

    study: Study
    subjects: Iterator[SubjectData]
    count: int
    #: The pseudonymization the subjects went through; None: identified (trial numbers only).
    regime: Regime | None = None

    @property
    def dates_kept(self) -> bool:
        """False under the study-day regime: the rows' ``--DTC``/``RFSTDTC`` must be emptied."""
        return self.regime is None or self.regime.dates is DateRegime.SHIFT


def study_export(study_id: str, context: Context, regime: Regime | None = None) -> StudyExport:
    """The study's SDTM input, subject by subject.

    :param regime: the study's pseudonymization; each subject's dates are then shifted by
        its patient's offset (study days unchanged)
    :raises fhirnet.services.studies.StudyNotFoundError: no such study (raised at once).
    :raises fhirnet.services.studies.StudyConflictError: a stored report contradicts the study
        (while iterating).
    """
    stored, subjects = study_subjects(study_id, context)
    study = stored.study
    return StudyExport(
        study=study,
        subjects=_subjects(study, subjects, context, regime),
        count=len(subjects),
        regime=regime,
    )


def _subjects(
    study: Study, subjects: list[StoredSubject], context: Context, regime: Regime | None
) -> Iterator[SubjectData]:
    for subject in subjects:
        data = subject_data(study, subject, context)
        enrolment = subject.enrolment
        if regime is not None:
            data = shifted(data, regime.date_offset(enrolment.patient, enrolment.reference_date))
        audit_subject_reads(context, [(enrolment.patient, subject.reference)])
        yield data


def subject_data(study: Study, subject: StoredSubject, context: Context) -> SubjectData:
    """One subject's lesions, sums and responses per evaluator (not audited)."""
    enrolment = subject.enrolment
    central = {r.reference: r.label for r in study.readers if r.role is ReaderRole.CENTRAL}
    computed = _computed(context, enrolment.patient, central)
    forms, _problems = stored_forms(
        context.store, patient=enrolment.patient, questionnaire=QUESTIONNAIRE_URL
    )
    by_evaluator: dict[str, list[Exam]] = {}
    for form in sorted(forms, key=lambda f: f.imaging_date):
        if form.pre_baseline:
            continue
        evaluator = central.get(form.author or "", INVESTIGATOR)
        found = computed.get((evaluator, form.imaging_date), {})
        by_evaluator.setdefault(evaluator, []).append(_exam(form, found))
    evaluation = evaluate_subject(context, study, enrolment)
    accepted = next((e.read_by for e in evaluation.evaluations if e.evaluator == CENTRAL), None)
    order = [INVESTIGATOR, *dict.fromkeys(central.values())]
    reads = []
    for evaluator in order:
        exams = by_evaluator.get(evaluator)
        if not exams:
            continue
        if evaluator == INVESTIGATOR:
            reads.append(
                EvaluatorReads(
                    evaluator=INVESTIGATOR, evaluator_id="", accepted="", exams=tuple(exams)
                )
            )
        else:
            reads.append(
                EvaluatorReads(
                    evaluator=INDEPENDENT_ASSESSOR,
                    evaluator_id=evaluator,
                    accepted="Y" if evaluator == accepted else "N",
                    exams=tuple(exams),
                )
            )
    arms = {arm.code: arm.name for arm in study.arms}
    return SubjectData(
        study_id=study.study_id,
        subject_id=enrolment.subject_id,
        site_id=enrolment.site,
        arm_code=enrolment.arm,
        arm_name=arms.get(enrolment.arm, ""),
        reference_date=enrolment.reference_date,
        criteria=study.criteria,
        schedule=tuple(
            ScheduledVisit(visit=v.visit, day=v.day, window_days=v.window_days)
            for v in study.schedule
        ),
        reads=tuple(reads),
    )


def _location(site: str) -> str:
    return site.replace("-", " ").upper()


def _method(form: ExamForm) -> str:
    anatomic = [m for m in form.modalities if m in _ANATOMIC]
    chosen = [*anatomic, *form.modalities]
    return METHODS.get(chosen[0], "") if chosen else ""


def _exam(form: ExamForm, computed: Mapping[str, Any]) -> Exam:
    return Exam(
        date=form.imaging_date,
        baseline=form.assessment_type.value == "baseline",
        method=_method(form),
        targets=tuple(
            TargetRead(
                lesion_id=t.id,
                location=_location(_site_of(form, t.id, t.site)),
                nodal=t.nodal,
                diameter_mm=t.diameter_mm,
                too_small=t.too_small_to_measure,
            )
            for t in form.targets
        ),
        non_targets=tuple(
            NonTargetRead(lesion_id=n.id, location=_location(n.site), status=n.status)
            for n in form.non_targets
        ),
        new_lesions=tuple(
            NewLesionRead(
                lesion_id=n.id,
                location=_location(n.site),
                equivocal=n.equivocal,
                nodal=n.nodal,
                diameter_mm=n.diameter_mm,
            )
            for n in form.new_lesions
        ),
        sum_mm=computed.get("sum"),
        overall=computed.get("overall"),
        target_response=computed.get("target"),
        non_target_response=computed.get("non-target"),
    )


def _site_of(form: ExamForm, lesion_id: str, site: str) -> str:
    coding = form.location(lesion_id)
    if coding is not None and coding.code in LESION_SITES:
        return LESION_SITES[coding.code]
    return site


def _computed(
    context: Context, patient_id: str, central: Mapping[str, str]
) -> dict[tuple[str, dt.date], dict[str, Any]]:
    """Per (evaluator, exam date): the sum and the responses of the latest counted report."""
    patient = f"Patient/{patient_id}"
    params = {"subject": patient, "_count": PAGE_SIZE}
    observations: dict[str, Mapping[str, Any]] = {}
    for resource in context.store.search("Observation", params):
        profiles = _list((resource.get("meta") or {}).get("profile"))
        if _ASSESSMENT in profiles or _SUM in profiles:
            observations[f"Observation/{resource.get('id')}"] = resource
    latest: dict[tuple[str, dt.date], tuple[str, dict[str, Any]]] = {}
    for report in context.store.search("DiagnosticReport", params):
        profiles = _list((report.get("meta") or {}).get("profile"))
        subject = report.get("subject")
        if (
            _REPORT not in profiles
            or report.get("status") not in _COUNTED
            or not isinstance(subject, Mapping)
            or subject.get("reference") != patient
        ):
            continue
        effective = report.get("effectiveDateTime")
        if not isinstance(effective, str) or len(effective) < 10:
            continue
        date = dt.date.fromisoformat(effective[:10])
        evaluator = INVESTIGATOR
        for interpreter in _list(report.get("resultsInterpreter")):
            reference = interpreter.get("reference") if isinstance(interpreter, Mapping) else None
            if isinstance(reference, str) and reference in central:
                evaluator = central[reference]
                break
        found: dict[str, Any] = {}
        for result in _list(report.get("result")):
            reference = result.get("reference") if isinstance(result, Mapping) else None
            observation = observations.get(str(reference))
            if observation is not None:
                found.update(_figures(observation))
        issued = str(report.get("issued", ""))
        key = (evaluator, date)
        if key not in latest or latest[key][0] <= issued:
            latest[key] = (issued, found)
    return {key: found for key, (_issued, found) in latest.items()}


def _figures(observation: Mapping[str, Any]) -> dict[str, Any]:
    profiles = _list((observation.get("meta") or {}).get("profile"))
    if _SUM in profiles:
        quantity = observation.get("valueQuantity")
        if isinstance(quantity, Mapping) and quantity.get("value") is not None:
            return {"sum": Decimal(str(quantity["value"]))}
        return {}
    found: dict[str, Any] = {}
    overall = _category(observation.get("valueCodeableConcept"))
    if overall is not None:
        found["overall"] = overall
    for component in _list(observation.get("component")):
        codes = {c.get("code") for c in _list((component.get("code") or {}).get("coding"))}
        systems = {c.get("system") for c in _list((component.get("code") or {}).get("coding"))}
        if NCIT not in systems:
            continue
        value = _category(component.get("valueCodeableConcept"))
        if _TARGET_RESPONSE in codes and value is not None:
            found["target"] = value
        elif _NON_TARGET_RESPONSE in codes and value is not None:
            found["non-target"] = value
    return found


def _category(concept: object) -> Response | None:
    if not isinstance(concept, Mapping):
        return None
    for coding in _list(concept.get("coding")):
        code = coding.get("code") if isinstance(coding, Mapping) else None
        if isinstance(code, str) and code in _RESPONSES:
            return _RESPONSES[code]
    return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
