"""Adjudication between a study's central readers (``docs/trials.md`` "Adjudication"): when the
central readers who read a subject disagree on its best overall response (confirmed, when the
study requires confirmation) or its progression date, an adjudicator accepts one of their reads,
kept as the ``research-subject-adjudication`` extension of the subject's ResearchSubject
(:mod:`fhirnet.fhir.studies` says why there) and used as the subject's central evaluation.

Refusals (422, before anything is written, audited as failures): ``accept`` is not the label of
a central reader of the study, or of one who read the subject; the subject's central readers
agree (or fewer than two read it), so there is nothing to adjudicate; ``by`` is not one of the
study's adjudicators when the study names any. Accepting the same read by the same adjudicator
again writes no new version (only the AuditEvent); another read replaces the decision, and the
ResearchSubject's history keeps the earlier one.
"""

from __future__ import annotations

from dataclasses import replace

from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir.studies import Adjudication, Enrolment, ReaderRole, Study
from fhirnet.services.context import Context
from fhirnet.services.studies import StoredSubject, update_subject
from fhirnet.services.study_endpoints import evaluate_subject

__all__ = ["adjudicate"]


def adjudicate(
    study_id: str, subject_id: str, *, accept: str, by: str, context: Context
) -> StoredSubject:
    """Record that ``by`` accepted the read of the central reader labelled ``accept``.

    :raises fhirnet.services.studies.StudyNotFoundError: no such study or subject.
    :raises InvalidInputError: see the module's refusals, at ``accept`` or ``by``.
    """

    def change(study: Study, current: Enrolment) -> Enrolment:
        central = {r.label: r for r in study.readers if r.role is ReaderRole.CENTRAL}
        adjudicators = [r.reference for r in study.readers if r.role is ReaderRole.ADJUDICATOR]
        problems: list[FieldError] = []
        if accept not in central:
            known = ", ".join(central) or "none"
            problems.append(
                FieldError(
                    path=("accept",),
                    message=f"Not a central reader of the study (central readers: {known}).",
                )
            )
        if adjudicators and by not in adjudicators:
            problems.append(
                FieldError(
                    path=("by",),
                    message=f"Not an adjudicator of the study (adjudicators: "
                    f"{', '.join(adjudicators)}).",
                )
            )
        if problems:
            raise InvalidInputError(problems)
        result = evaluate_subject(context, study, current)
        if not result.adjudication_needed:
            raise InvalidInputError(
                [
                    FieldError(
                        path=("accept",),
                        message="The subject needs no adjudication: its central readers agree "
                        "on the best overall response and the progression date, or fewer than "
                        "two have read it.",
                    )
                ]
            )
        if accept not in result.central_labels():
            raise InvalidInputError(
                [
                    FieldError(
                        path=("accept",),
                        message=f"{accept} has not read the subject "
                        f"(read by: {', '.join(result.central_labels())}).",
                    )
                ]
            )
        stored = current.adjudication
        if stored is not None and (stored.label, stored.by) == (accept, by):
            return current  # the same decision again: nothing new to write
        decision = Adjudication(
            label=accept, reader=central[accept].reference, by=by, recorded=context.now
        )
        return replace(current, adjudication=decision)

    return update_subject(study_id, subject_id, context, change)
