"""Deciding what a submission writes: which exams change with the submitted forms, which stored
results they make stale, and what each form is answered (steps 2-6 of the pipeline in
:mod:`fhirnet.services.submission`).

It lives apart from the use cases because it is the part that *reasons*: given the patient's
stored forms and the submitted ones, it computes the transaction and the answers without writing
anything (it reads the patient's history). :func:`~fhirnet.services.submission.submit` writes
what it plans, :func:`~fhirnet.services.submission.extract` returns it unwritten, and both must
plan alike — so the plan is one function, testable and changeable on its own, and the use cases
keep to orchestration (locks, writing, auditing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from fhirnet.fhir.build import ExamResult, build_transaction, exams_to_rebuild
from fhirnet.fhir.identifiers import Identifier
from fhirnet.fhir.narrative import with_narrative
from fhirnet.fhir.observations import concordant
from fhirnet.fhir.outcome import Issue, IssueType, UnprocessableResourceError
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.fhir.report import CRITERIA_LABELS
from fhirnet.ports import FhirStore, Json
from fhirnet.services import history
from fhirnet.services.context import Context
from fhirnet.services.forms import ReceivedForm, content_of, form_key
from fhirnet.services.references import check_references
from fhirnet.services.streams import readers_for
from fhirnet.services.timelines import assess_streams

__all__ = ["REPORT", "WARNING_ITEMS", "Plan", "category", "plan"]

#: :func:`~fhirnet.fhir.build.build_transaction` with the time and the server's capability bound.
Builder = Callable[[Sequence[ExamResult]], Json]

REPORT: Final = "DiagnosticReport"
#: Assessment warning code (``criteria.md`` §8, and fhirnet's own ``reader-nadir-date``) → the
#: CRF item its OperationOutcome issue points at (a group's linkId: its first occurrence).
WARNING_ITEMS: Final = {
    "missing-modality": "imaging-procedure",
    "reader-nadir-date": "nadir-date",
    "new-modality-lesion": "new-lesion",
    "pet-reference-missing": "pet-reference",
    "blood-pool-reference": "pet-reference",
    "liver-drift": "pet-reference",
    "uptake-time": "pet-reference",
    "small-new-node": "new-lesion",
    "equivocal-new-node": "new-lesion",
    "icpd-window": "imaging-date",
    "unconfirmed-cr": "target-lesion",
}


@dataclass(kw_only=True)
class Plan:
    """What one submission writes, and what each submitted form is answered."""

    bundle: Json = field(default_factory=dict)
    #: The exams to (re)write, of every patient.
    rebuilt: list[ExamResult] = field(default_factory=list)
    #: Amended exams as they were and as they are: what they no longer write is retracted.
    stale: list[tuple[ExamResult, ExamResult]] = field(default_factory=list)
    #: Per submitted form (key): its exam as assessed now.
    exams: dict[str, ExamResult] = field(default_factory=dict)
    #: Per submitted form that is not rewritten: its stored DiagnosticReport.
    reports: dict[str, Json] = field(default_factory=dict)
    notes: dict[str, list[Issue]] = field(default_factory=dict)


def plan(forms: Sequence[ReceivedForm], context: Context, *, own_exams: bool) -> Plan:
    """The transaction for ``forms`` and the answer to each (the pipeline's steps 2-6).

    :param context: the store read from, the time and the server's client-id types.
    :param own_exams: ``$extract``: rebuild the submitted forms' exams, and only them (no
        later exam they re-assess, no retraction of stored results), instead of answering an
        unchanged one with its stored report.
    :raises UnprocessableResourceError: every problem with every patient's forms.
    """
    _check_unique(forms)
    refused = check_references(forms, context.store, bases=context.bases)
    if refused:
        raise UnprocessableResourceError(refused)
    by_patient: dict[str, list[ReceivedForm]] = {}
    for form in forms:
        by_patient.setdefault(form.patient, []).append(form)
    found = Plan()
    errors: list[Issue] = []
    for patient, own in by_patient.items():
        errors += _plan_patient(found, context.store, patient, own, own_exams=own_exams)
    if errors:
        raise UnprocessableResourceError(errors)
    build: Builder = partial(
        build_transaction, issued=context.now, client_id_types=context.client_id_types
    )
    found.bundle = build(found.rebuilt)
    for old, new in found.stale:
        found.bundle["entry"] += _retracted(context.store, old, new, build)
    return found


def category(exam: ExamResult) -> str:
    """The exam's result in words, for the submitter: the criteria and the overall response."""
    label = CRITERIA_LABELS[exam.criteria]
    if exam.pre_baseline:
        return f"{label} pre-baseline scan of {exam.form.imaging_date}, not assessed"
    if exam.assessment is None:
        return f"{label} baseline of {exam.form.imaging_date}"
    return f"{label} {exam.assessment.overall_response} at {exam.form.imaging_date}"


def _plan_patient(
    found: Plan, store: FhirStore, patient: str, own: Sequence[ReceivedForm], *, own_exams: bool
) -> list[Issue]:
    """Add one patient's exams to rebuild, amended exams and the answers' notes to ``found``;
    returns the errors (and adds nothing when there are any)."""
    received = {form.key: form for form in own}
    errors = _foreign(store, patient, own)
    stored, unread = history.stored_forms(store, patient=patient, questionnaire=QUESTIONNAIRE_URL)
    after_forms = [f for f in stored if form_key(f) not in received] + [f.form for f in own]
    # Each central reader's forms are a timeline of their own (services.streams).
    readers, unread_studies = readers_for(store, patient, [*stored, *after_forms])
    before, _ = assess_streams(stored, {}, readers)
    after, issues = assess_streams(after_forms, received, readers)
    errors += [issue for issue in issues if issue.is_error]
    if errors:
        return errors
    warnings = [*unread, *unread_studies, *(issue for issue in issues if not issue.is_error)]
    exams = {form_key(result.form): result for result in after}
    changed = list(exams_to_rebuild(before, after))
    changed_keys = {form_key(result.form) for result in changed}
    for key, form in received.items():
        found.exams[key] = exams[key]
        if key in changed_keys:
            continue
        report = None if own_exams else history.find(store, REPORT, form.report_identifier)
        if report is None:  # no results (yet): written by an EHR without fhirnet, say
            changed.append(exams[key])
        else:
            found.reports[key] = report
    if own_exams:  # $extract: what the submitted forms derive, nothing more (finding 2)
        changed = [result for result in changed if form_key(result.form) in received]
    previous = {form_key(result.form): result for result in before}
    found.stale += [
        (previous[form_key(exam.form)], exam)
        for exam in changed
        if exam.amended and form_key(exam.form) in previous and not own_exams
    ]
    found.rebuilt += changed
    later = sorted(r.form.imaging_date for r in changed if form_key(r.form) not in received)
    for key, form in received.items():
        found.notes[key] = [
            *form.notes,
            *_exam_notes(form, exams[key]),
            *_reassessed(later),
            *warnings,
        ]
    return errors


def _foreign(store: FhirStore, patient: str, forms: Sequence[ReceivedForm]) -> list[Issue]:
    """An error for each form whose identifier names another patient's form on the server: the
    form would replace it (conditional update by identifier)."""
    issues = []
    for form in forms:
        for other in history.with_identifier(store, "QuestionnaireResponse", form.identifier):
            if history.subject_patient(other) != patient:
                issues.append(
                    Issue.error(
                        IssueType.BUSINESS_RULE,
                        f"The identifier {form.key} already identifies a form of another "
                        "patient on the FHIR server; a form's identifier must be unique",
                        expression=f"{form.prefix}.identifier",
                    )
                )
                break
    return issues


def _retracted(store: FhirStore, old: ExamResult, new: ExamResult, build: Builder) -> list[Json]:
    """Entries marking ``entered-in-error`` the stored Observations of ``old`` that ``new`` no
    longer writes (the pipeline's step 5)."""
    kept = {entry["fullUrl"] for entry in build([new])["entry"]}
    entries = []
    for entry in build([old])["entry"]:
        resource = entry["resource"]
        if entry["fullUrl"] in kept or resource["resourceType"] != "Observation":
            continue
        (identifier,) = (Identifier(**i) for i in resource["identifier"])
        stored = history.find(store, "Observation", identifier)
        if stored is None or stored.get("status") == "entered-in-error":
            continue
        retracted = with_narrative(
            {**content_of(stored), "id": stored["id"], "status": "entered-in-error"}
        )
        entries.append(
            {
                "fullUrl": entry["fullUrl"],
                "resource": retracted,
                "request": {"method": "PUT", "url": f"Observation/{stored['id']}"},
            }
        )
    return entries


def _check_unique(forms: Sequence[ReceivedForm]) -> None:
    seen: dict[str, ReceivedForm] = {}
    issues = []
    for form in forms:
        first = seen.setdefault(form.key, form)
        if first is not form:
            issues.append(
                Issue.error(
                    IssueType.BUSINESS_RULE,
                    f"{first.prefix} has the same identifier {form.key}: send a form once",
                    expression=f"{form.prefix}.identifier",
                )
            )
    if issues:
        raise UnprocessableResourceError(issues)


# -- notes for the submitter -----------------------------------------------------------------


def _exam_notes(form: ReceivedForm, exam: ExamResult) -> list[Issue]:
    """The assessment's warnings about the exam, and the reader's discordant conclusion."""
    notes = []
    for warning in exam.warnings:
        item = WARNING_ITEMS.get(warning.split(":", 1)[0])
        notes.append(
            Issue.warning(
                IssueType.BUSINESS_RULE,
                f"{warning}.",
                expression=None if item is None else form.item(item),
            )
        )
    if exam.assessment is None:
        return notes
    computed = exam.assessment.overall_response
    label = CRITERIA_LABELS[exam.criteria]
    for link_id, answer in (
        ("response-vs-baseline", exam.form.response_vs_baseline),
        ("response-vs-nadir", exam.form.response_vs_nadir),
    ):
        if answer is not None and not concordant(answer, computed):
            notes.append(
                Issue.warning(
                    IssueType.BUSINESS_RULE,
                    f"Discordant: the reader's {link_id} is {answer}, {label} computes "
                    f"{computed}. Accepted; the report carries both and flags the discordance.",
                    expression=form.item(link_id),
                )
            )
    return notes


def _reassessed(days: Sequence[dt.date]) -> list[Issue]:
    if not days:
        return []
    exams = ", ".join(str(day) for day in days)
    return [
        Issue.information(
            f"Re-assessed with this form: the exam(s) of {exams}; their results are "
            "replaced (status amended)."
        )
    ]
