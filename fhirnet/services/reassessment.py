"""Re-assessment of stored exams under the rules of the running version (``docs/criteria-v2.md``).

The pipeline recomputes an exam only when a form of its timeline is submitted, and compares the
old and new forms under the *same* rules; results written by an earlier version of the rules
therefore stay as they were until something touches them. :func:`reassess` is the operator's
step after an upgrade: it assesses each of a patient's stored timelines again and rewrites, in
one transaction and marked ``amended``, every exam whose stored DiagnosticReport no longer says
what the running rules conclude — its ``conclusion`` (the category, the figures, the reasons, the
warnings and the reader's discordance), its ``conclusionCode`` or the results it lists. An exam
whose report still matches is left alone, so running it twice writes nothing the second time.
Each read stream (the site's, each central reader's: :mod:`fhirnet.services.streams`) is
assessed on its own, as a submission assesses it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.build import ExamResult, build_transaction
from fhirnet.fhir.identifiers import Identifier
from fhirnet.fhir.outcome import UnprocessableResourceError
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.ports import Json
from fhirnet.services import history
from fhirnet.services.context import Context
from fhirnet.services.planning import REPORT, Builder
from fhirnet.services.streams import readers_for
from fhirnet.services.timelines import assess_streams

__all__ = ["Reassessment", "patients_with_forms", "reassess"]


@dataclass(frozen=True, kw_only=True)
class Reassessment:
    """What re-assessing one patient found, and (unless a dry run) rewrote.

    :ivar exams: how many stored exams were assessed.
    :ivar stale: the dates of the exams whose stored results differ from the running rules'.
    :ivar written: whether ``stale`` was written (``False`` on a dry run or when nothing is).
    """

    patient: str
    exams: int
    stale: tuple[dt.date, ...]
    written: bool


def reassess(patient: str, context: Context, *, dry_run: bool = False) -> Reassessment:
    """Re-assess the stored exams of ``patient`` and rewrite the stale ones (module docstring),
    under the patient's lock, with an AuditEvent in the same transaction when ``context`` has an
    audit trail.

    :raises UnprocessableResourceError: a stored timeline breaks a rule of the running version
        (nothing is written for the patient).
    :raises fhirnet.errors.FhirServerError: reading or writing failed.
    """
    with context.locks.hold({patient}):
        stored, _unreadable = history.stored_forms(
            context.store, patient=patient, questionnaire=QUESTIONNAIRE_URL
        )
        readers, _unread_studies = readers_for(context.store, patient, stored)
        exams, issues = assess_streams(stored, {}, readers)
        errors = [issue for issue in issues if issue.is_error]
        if errors:
            raise UnprocessableResourceError(errors)
        build = partial(
            build_transaction, issued=context.now, client_id_types=context.client_id_types
        )
        stale = [exam for exam in (_stale(exam, context, build) for exam in exams) if exam]
        written = bool(stale) and not dry_run
        if written:
            bundle = build(stale)
            entries = list(bundle["entry"])
            if context.audit is not None:
                event = context.audit.event(
                    interaction=Interaction.UPDATE,
                    action=Action.UPDATE,
                    now=context.now,
                    entities=[events.patient(f"Patient/{patient}")],
                )
                entries.append(context.audit.entry(event))
            context.store.transaction({**bundle, "entry": entries})
    return Reassessment(
        patient=patient,
        exams=len(exams),
        stale=tuple(exam.form.imaging_date for exam in stale),
        written=written,
    )


def patients_with_forms(context: Context) -> list[str]:
    """The ids of every patient with a stored form of the CRF, sorted: what ``--all`` covers."""
    found = {
        patient
        for form in context.store.search(
            "QuestionnaireResponse", {"questionnaire": QUESTIONNAIRE_URL}
        )
        if (patient := history.subject_patient(form)) is not None
    }
    return sorted(found)


def _stale(exam: ExamResult, context: Context, build: Builder) -> ExamResult | None:
    """The exam marked for rewriting when its stored report differs from a fresh one, else
    ``None``; an exam without a stored report is written as new."""
    fresh = _report_in(build([exam]))
    identifier = Identifier(**fresh["identifier"][0])
    stored = history.find(context.store, REPORT, identifier)
    if stored is None:
        return exam
    if _says(stored) == _says(fresh):
        return None
    return replace(exam, amended=True)


def _report_in(bundle: Json) -> Json:
    (report,) = (
        entry["resource"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == REPORT
    )
    result: Json = report
    return result


def _says(report: Json) -> tuple[Any, Any, int]:
    """What a report concludes: its text, its coded category and how many results it lists."""
    results: Sequence[Any] = report.get("result") or ()
    return report.get("conclusion"), report.get("conclusionCode"), len(results)
