"""Use cases of trial studies and enrolment (``docs/trials.md`` "Studies and enrolment"): define a
study (:func:`put_study`), read it (:func:`get_study`), delete an empty one
(:func:`delete_study`), enrol a subject (:func:`enrol`), read one (:func:`get_subject`) and
withdraw one (:func:`withdraw`). The FHIR mapping is :mod:`fhirnet.fhir.studies`.

**Writes.** Each change is one transaction on the store: the ResearchStudy or ResearchSubject,
the enrolment Group when its members change, and the request's AuditEvent, all or nothing. Every
resource is addressed by its business identifier (:func:`fhirnet.fhir.identifiers.entry`): a
conditional update, or ``PUT Type/<uuid5>`` on a server that cannot search the type by
``identifier`` (:attr:`Context.client_id_types`). A PUT whose content is already stored writes
no new version: a study writes nothing at all, a subject (patient data) only the AuditEvent of
the request, as an identical form resubmission does (``services.audits``).

**Serialised per study.** Enrolments change the study's Group, so every write about a study
holds the study's lock (:class:`~fhirnet.ports.PatientLocks` keyed ``study:<id>``, which no
Patient id can equal: ids have no ``:``), then, for a subject, the patient's: two enrolments
at once cannot lose one another's Group member.

**Audit.** Subject writes and reads name the patient (the ResearchSubject is patient data): a
write's AuditEvent is in its transaction, a read's is written before the answer (no disclosure
without its record), a refused or failed subject write gets a failure AuditEvent, best effort.
Study definitions hold no patient data; their writes are audited all the same.

**Errors.** :class:`StudyNotFoundError` (404), :class:`StudyConflictError` (409: the request
contradicts what is stored), :class:`~fhirnet.errors.InvalidInputError` (422: an arm or site not
in the study, a reference date after a stored follow-up form, a withdrawal before the reference
date); the store's own errors propagate. Nothing is written before every check has passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from fhirnet.errors import FhirnetError, FieldError, InvalidInputError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.crf_codes import AssessmentType
from fhirnet.fhir.identifiers import entry
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.fhir.studies import (
    GROUP,
    RESEARCH_STUDY,
    RESEARCH_SUBJECT,
    Enrolment,
    Study,
    SubjectStatus,
    enrolment_group,
    group_identifier,
    group_member,
    research_study,
    research_subject,
    same_content,
    study_identifier,
    subject_identifier,
    subject_number,
    subject_patient,
)
from fhirnet.ports import Json
from fhirnet.services import history
from fhirnet.services import study_records as records
from fhirnet.services.context import Context
from fhirnet.services.study_records import StudyConflictError, StudyNotFoundError

__all__ = [
    "StoredStudy",
    "StoredSubject",
    "StudyConflictError",
    "StudyNotFoundError",
    "delete_study",
    "enrol",
    "get_study",
    "get_subject",
    "put_study",
    "study_subjects",
    "update_subject",
    "withdraw",
    "write_subject",
]


@dataclass(frozen=True, kw_only=True)
class StoredStudy:
    """A study as stored, and what the request did: ``created`` (201), ``written`` (a new
    version; false for an identical PUT)."""

    study: Study
    reference: str
    group: str
    created: bool = False
    written: bool = False


@dataclass(frozen=True, kw_only=True)
class StoredSubject:
    """A subject as stored, and what the request did (see :class:`StoredStudy`)."""

    enrolment: Enrolment
    reference: str
    created: bool = False
    written: bool = False


# --- studies ---


def put_study(study: Study, context: Context) -> StoredStudy:
    """Create or update a study's ResearchStudy, and create its enrolment Group with it.

    :raises StudyConflictError: an arm or site that enrolled subjects use is left out.
    :raises fhirnet.errors.FhirServerError: the store refused or is unavailable.
    """
    with context.locks.hold([records.study_lock(study.study_id)]):
        stored = records.find(context, RESEARCH_STUDY, study_identifier(study.study_id))
        group = records.find(context, GROUP, group_identifier(study.study_id))
        if stored is not None:
            records.check_in_use(context, study, stored)
        entries: list[Json] = []
        if group is None:
            group_entry = entry(
                enrolment_group(study.study_id, []),
                group_identifier(study.study_id),
                client_id_types=context.client_id_types,
            )
            entries.append(group_entry)
            group_ref = str(group_entry["fullUrl"])
        else:
            group_ref = f"{GROUP}/{group['id']}"
        built = research_study(study, enrolment_group=group_ref)
        if stored is not None and group is not None and same_content(stored, built):
            return StoredStudy(
                study=study, reference=f"{RESEARCH_STUDY}/{stored['id']}", group=group_ref
            )
        study_entry = entry(
            built, study_identifier(study.study_id), client_id_types=context.client_id_types
        )
        entries.append(study_entry)
        action = Action.CREATE if stored is None else Action.UPDATE
        written = records.transaction(
            context,
            entries,
            records.audit(context, Interaction.UPDATE, action, [], [study_entry, *entries[:-1]]),
        )
        return StoredStudy(
            study=study,
            reference=records.reference(written, study_entry),
            group=written.get(group_ref, group_ref),
            created=stored is None,
            written=True,
        )


def get_study(study_id: str, context: Context) -> StoredStudy:
    """The stored study ``study_id``.

    :raises StudyNotFoundError: no such study.
    """
    resource, group = records.study(context, study_id)
    return StoredStudy(
        study=records.read_study(resource, study_id),
        reference=f"{RESEARCH_STUDY}/{resource['id']}",
        group=f"{GROUP}/{group['id']}",
    )


def delete_study(study_id: str, context: Context) -> None:
    """Delete a study that has no subjects (withdrawn ones count: their data is kept), with its
    Group.

    :raises StudyNotFoundError: no such study.
    :raises StudyConflictError: the study has subjects.
    """
    with context.locks.hold([records.study_lock(study_id)]):
        resource, group = records.study(context, study_id)
        subjects = list(records.subjects(context, study_id, resource))
        if subjects:
            raise StudyConflictError(
                [
                    FieldError(
                        path=(),
                        message=f"The study has {len(subjects)} subject(s); withdraw them "
                        "instead: a study with subjects is never deleted.",
                    )
                ]
            )
        entries = [
            {"request": {"method": "DELETE", "url": f"{RESEARCH_STUDY}/{resource['id']}"}},
            {"request": {"method": "DELETE", "url": f"{GROUP}/{group['id']}"}},
        ]
        entities = [
            events.resource(f"{RESEARCH_STUDY}/{resource['id']}", RESEARCH_STUDY),
            events.resource(f"{GROUP}/{group['id']}", GROUP),
        ]
        event = None
        if context.audit is not None:
            event = context.audit.event(
                interaction=Interaction.DELETE,
                action=Action.DELETE,
                now=context.now,
                entities=entities,
            )
        records.transaction(context, entries, event)


# --- subjects ---


def enrol(enrolment: Enrolment, context: Context) -> StoredSubject:
    """Enrol (or update the enrolment of) one subject: its ResearchSubject and its patient's
    member of the study's Group, in one transaction with the AuditEvent.

    A withdrawn subject PUT again with another status is enrolled again (its withdrawal date
    dropped): a withdrawal recorded in error is undone this way.

    :raises StudyNotFoundError: no such study.
    :raises InvalidInputError: the arm or site is not the study's; a stored follow-up form of
        the patient is dated on or before the reference date.
    :raises StudyConflictError: the subject number is another patient's, or the patient is
        enrolled in the study under another number.
    """
    try:
        return _enrol(enrolment, context)
    except FhirnetError as error:
        records.audit_failure(context, Interaction.UPDATE, enrolment.patient, error)
        raise


def _enrol(enrolment: Enrolment, context: Context) -> StoredSubject:
    study_id = enrolment.study_id
    with (
        context.locks.hold([records.study_lock(study_id)]),
        context.locks.hold([enrolment.patient]),
    ):
        resource, group = records.study(context, study_id)
        study = records.read_study(resource, study_id)
        problems = []
        if enrolment.arm not in study.arm_codes():
            known = ", ".join(sorted(study.arm_codes())) or "none"
            problems.append(
                FieldError(path=("arm",), message=f"Not an arm of the study (arms: {known}).")
            )
        if enrolment.site not in study.site_ids():
            known = ", ".join(sorted(study.site_ids())) or "none"
            problems.append(
                FieldError(path=("site",), message=f"Not a site of the study (sites: {known}).")
            )
        problems += _forms_before(context, enrolment)
        if problems:
            raise InvalidInputError(problems)
        stored = None
        for subject in records.subjects(context, study_id, resource):
            number = subject_number(subject, study_id)
            patient = subject_patient(subject)
            if number == enrolment.subject_id:
                stored = subject
                if patient != enrolment.patient:
                    raise StudyConflictError(
                        [
                            FieldError(
                                path=("patient",),
                                message="This subject number is another patient's in the study.",
                            )
                        ]
                    )
            elif patient == enrolment.patient:
                raise StudyConflictError(
                    [
                        FieldError(
                            path=("patient",),
                            message=f"The patient is enrolled in the study as subject {number}.",
                        )
                    ]
                )
        if stored is not None:
            # An enrolment update keeps the subject's adjudication (it is no field of the body).
            kept = records.read_subject(stored, study_id, enrolment.subject_id).adjudication
            enrolment = replace(enrolment, adjudication=kept)
        return write_subject(context, enrolment, resource, group, stored)


def get_subject(study_id: str, subject_id: str, context: Context) -> StoredSubject:
    """The stored subject; its read is audited (naming the patient) before it is returned.

    :raises StudyNotFoundError: no such study or subject.
    """
    subject = records.subject(context, study_id, subject_id)
    enrolment = records.read_subject(subject, study_id, subject_id)
    reference = f"{RESEARCH_SUBJECT}/{subject['id']}"
    if context.audit is not None:
        event = context.audit.event(
            interaction=Interaction.READ,
            action=Action.READ,
            now=context.now,
            entities=[
                events.patient(f"Patient/{enrolment.patient}"),
                events.resource(reference, RESEARCH_SUBJECT),
            ],
        )
        context.audit.write(context.store, [event])
    return StoredSubject(enrolment=enrolment, reference=reference)


def withdraw(
    study_id: str, subject_id: str, context: Context, *, on: dt.date | None = None
) -> StoredSubject:
    """Withdraw a subject: status ``withdrawn``, ``period.end`` = ``on`` (default: today), its
    Group member inactive; everything recorded is kept. Withdrawing again on the same date
    writes only the AuditEvent; on another date, moves the date.

    :raises StudyNotFoundError: no such study or subject.
    :raises InvalidInputError: ``on`` is before the subject's reference date.
    """
    patient: str | None = None
    try:
        with context.locks.hold([records.study_lock(study_id)]):
            resource, group = records.study(context, study_id)
            subject = records.subject(context, study_id, subject_id)
            current = records.read_subject(subject, study_id, subject_id)
            patient = current.patient
            date = context.today if on is None else on
            if date < current.reference_date:
                raise InvalidInputError(
                    [
                        FieldError(
                            path=("date",),
                            message=f"Before the subject's reference date "
                            f"{current.reference_date.isoformat()}.",
                        )
                    ]
                )
            withdrawn = replace(current, status=SubjectStatus.WITHDRAWN, withdrawal_date=date)
            with context.locks.hold([current.patient]):
                return write_subject(context, withdrawn, resource, group, subject)
    except FhirnetError as error:
        if patient is not None:
            records.audit_failure(context, Interaction.UPDATE, patient, error)
        raise


def study_subjects(study_id: str, context: Context) -> tuple[StoredStudy, list[StoredSubject]]:
    """The stored study and its subjects (withdrawn ones included), by subject number. Not
    audited here: the caller audits what it discloses of them.

    :raises StudyNotFoundError: no such study.
    :raises StudyConflictError: the study or one of its subjects cannot be read.
    """
    resource, group = records.study(context, study_id)
    stored = StoredStudy(
        study=records.read_study(resource, study_id),
        reference=f"{RESEARCH_STUDY}/{resource['id']}",
        group=f"{GROUP}/{group['id']}",
    )
    subjects = []
    for subject in records.subjects(context, study_id, resource):
        number = subject_number(subject, study_id) or ""
        subjects.append(
            StoredSubject(
                enrolment=records.read_subject(subject, study_id, number),
                reference=f"{RESEARCH_SUBJECT}/{subject['id']}",
            )
        )
    return stored, sorted(subjects, key=lambda found: found.enrolment.subject_id)


def update_subject(
    study_id: str,
    subject_id: str,
    context: Context,
    change: Callable[[Study, Enrolment], Enrolment],
) -> StoredSubject:
    """Change a stored subject under the study's and the patient's locks: ``change`` gets the
    study and the stored enrolment and returns the new one (or raises, before anything is
    written); written with its AuditEvent, a refusal audited as a failure.

    :raises StudyNotFoundError: no such study or subject.
    """
    patient: str | None = None
    try:
        with context.locks.hold([records.study_lock(study_id)]):
            resource, group = records.study(context, study_id)
            study = records.read_study(resource, study_id)
            subject = records.subject(context, study_id, subject_id)
            current = records.read_subject(subject, study_id, subject_id)
            patient = current.patient
            with context.locks.hold([current.patient]):
                changed = change(study, current)
                return write_subject(context, changed, resource, group, subject)
    except FhirnetError as error:
        if patient is not None:
            records.audit_failure(context, Interaction.UPDATE, patient, error)
        raise


def write_subject(
    context: Context, enrolment: Enrolment, study: Json, group: Json, stored: Json | None
) -> StoredSubject:
    """Write ``enrolment`` (and its Group member) unless already stored; audit either way.
    The caller holds the study's and the patient's locks."""
    study_ref = f"{RESEARCH_STUDY}/{study['id']}"
    built = research_subject(enrolment, study_reference=study_ref)
    identifier = subject_identifier(enrolment.study_id, enrolment.subject_id)
    patient = f"Patient/{enrolment.patient}"
    if stored is not None and same_content(stored, built):
        reference = f"{RESEARCH_SUBJECT}/{stored['id']}"
        if context.audit is not None:
            event = context.audit.event(
                interaction=Interaction.UPDATE,
                action=Action.UPDATE,
                now=context.now,
                entities=[events.patient(patient), events.resource(reference, RESEARCH_SUBJECT)],
            )
            context.audit.write(context.store, [event])
        return StoredSubject(enrolment=enrolment, reference=reference)
    subject_entry = entry(built, identifier, client_id_types=context.client_id_types)
    members = [m for m in group.get("member", []) if _member_patient(m) != patient]
    members.append(group_member(enrolment))
    group_entry = entry(
        enrolment_group(enrolment.study_id, members),
        group_identifier(enrolment.study_id),
        client_id_types=context.client_id_types,
    )
    action = Action.CREATE if stored is None else Action.UPDATE
    entries = [subject_entry, group_entry]
    written = records.transaction(
        context, entries, records.audit(context, Interaction.UPDATE, action, [patient], entries)
    )
    return StoredSubject(
        enrolment=enrolment,
        reference=records.reference(written, subject_entry),
        created=stored is None,
        written=True,
    )


def _member_patient(member: Any) -> str | None:
    entity = member.get("entity") if isinstance(member, dict) else None
    reference = entity.get("reference") if isinstance(entity, dict) else None
    return reference if isinstance(reference, str) else None


def _forms_before(context: Context, enrolment: Enrolment) -> list[FieldError]:
    """A follow-up form of the patient dated on or before the reference date contradicts it:
    follow-ups measure the response to the treatment that starts on the reference date (study
    day 1); baseline and pre-baseline forms before it are expected (``docs/trials.md``)."""
    forms, _unreadable = history.stored_forms(
        context.store, patient=enrolment.patient, questionnaire=QUESTIONNAIRE_URL
    )
    dates = sorted(
        form.imaging_date
        for form in forms
        if form.assessment_type is AssessmentType.FOLLOW_UP
        and form.imaging_date <= enrolment.reference_date
    )
    if not dates:
        return []
    return [
        FieldError(
            path=("referenceDate",),
            message=f"After the patient's stored follow-up form of {dates[0].isoformat()}: "
            "follow-ups are assessments after the reference date (study day 1).",
        )
    ]
