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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fhirnet.errors import FhirnetError, FieldError, InvalidInputError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.crf_codes import AssessmentType
from fhirnet.fhir.identifiers import Identifier, entry
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.fhir.studies import (
    GROUP,
    RESEARCH_STUDY,
    RESEARCH_SUBJECT,
    Enrolment,
    Study,
    SubjectStatus,
    UnreadableStudyError,
    enrolment_group,
    enrolment_of,
    group_identifier,
    group_member,
    research_study,
    research_subject,
    same_content,
    study_identifier,
    study_of,
    subject_identifier,
    subject_number,
    subject_patient,
)
from fhirnet.ports import Json
from fhirnet.services import history
from fhirnet.services.context import Context

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


class StudyNotFoundError(InvalidInputError):
    """No such study, or no such subject in it (404). An input error (the request names what
    does not exist): its failure AuditEvent says "refused", not "failed"."""

    def __init__(self, message: str) -> None:
        super().__init__([FieldError(path=(), message=message)])


class StudyConflictError(InvalidInputError):
    """The request contradicts what is stored (409): a subject number of another patient, a
    patient enrolled under another number, a study with subjects deleted, an arm or site in use
    removed. ``errors`` locate the offending fields."""


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
    with context.locks.hold([_study_lock(study.study_id)]):
        stored = _find(context, RESEARCH_STUDY, study_identifier(study.study_id))
        group = _find(context, GROUP, group_identifier(study.study_id))
        if stored is not None:
            _check_in_use(context, study, stored)
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
        written = _transaction(
            context,
            entries,
            _audit(context, Interaction.UPDATE, action, [], [study_entry, *entries[:-1]]),
        )
        return StoredStudy(
            study=study,
            reference=_reference(written, study_entry),
            group=written.get(group_ref, group_ref),
            created=stored is None,
            written=True,
        )


def get_study(study_id: str, context: Context) -> StoredStudy:
    """The stored study ``study_id``.

    :raises StudyNotFoundError: no such study.
    """
    resource, group = _study(context, study_id)
    return StoredStudy(
        study=_read_study(resource, study_id),
        reference=f"{RESEARCH_STUDY}/{resource['id']}",
        group=f"{GROUP}/{group['id']}",
    )


def delete_study(study_id: str, context: Context) -> None:
    """Delete a study that has no subjects (withdrawn ones count: their data is kept), with its
    Group.

    :raises StudyNotFoundError: no such study.
    :raises StudyConflictError: the study has subjects.
    """
    with context.locks.hold([_study_lock(study_id)]):
        resource, group = _study(context, study_id)
        subjects = list(_subjects(context, study_id, resource))
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
        _transaction(context, entries, event)


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
        _audit_failure(context, Interaction.UPDATE, enrolment.patient, error)
        raise


def _enrol(enrolment: Enrolment, context: Context) -> StoredSubject:
    study_id = enrolment.study_id
    with context.locks.hold([_study_lock(study_id)]), context.locks.hold([enrolment.patient]):
        resource, group = _study(context, study_id)
        study = _read_study(resource, study_id)
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
        for subject in _subjects(context, study_id, resource):
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
            kept = _read_subject(stored, study_id, enrolment.subject_id).adjudication
            enrolment = replace(enrolment, adjudication=kept)
        return write_subject(context, enrolment, resource, group, stored)


def get_subject(study_id: str, subject_id: str, context: Context) -> StoredSubject:
    """The stored subject; its read is audited (naming the patient) before it is returned.

    :raises StudyNotFoundError: no such study or subject.
    """
    subject = _subject(context, study_id, subject_id)
    enrolment = _read_subject(subject, study_id, subject_id)
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
        with context.locks.hold([_study_lock(study_id)]):
            resource, group = _study(context, study_id)
            subject = _subject(context, study_id, subject_id)
            current = _read_subject(subject, study_id, subject_id)
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
            _audit_failure(context, Interaction.UPDATE, patient, error)
        raise


def study_subjects(study_id: str, context: Context) -> tuple[StoredStudy, list[StoredSubject]]:
    """The stored study and its subjects (withdrawn ones included), by subject number. Not
    audited here: the caller audits what it discloses of them.

    :raises StudyNotFoundError: no such study.
    :raises StudyConflictError: the study or one of its subjects cannot be read.
    """
    resource, group = _study(context, study_id)
    stored = StoredStudy(
        study=_read_study(resource, study_id),
        reference=f"{RESEARCH_STUDY}/{resource['id']}",
        group=f"{GROUP}/{group['id']}",
    )
    subjects = []
    for subject in _subjects(context, study_id, resource):
        number = subject_number(subject, study_id) or ""
        subjects.append(
            StoredSubject(
                enrolment=_read_subject(subject, study_id, number),
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
        with context.locks.hold([_study_lock(study_id)]):
            resource, group = _study(context, study_id)
            study = _read_study(resource, study_id)
            subject = _subject(context, study_id, subject_id)
            current = _read_subject(subject, study_id, subject_id)
            patient = current.patient
            with context.locks.hold([current.patient]):
                changed = change(study, current)
                return write_subject(context, changed, resource, group, subject)
    except FhirnetError as error:
        if patient is not None:
            _audit_failure(context, Interaction.UPDATE, patient, error)
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
    written = _transaction(
        context, entries, _audit(context, Interaction.UPDATE, action, [patient], entries)
    )
    return StoredSubject(
        enrolment=enrolment,
        reference=_reference(written, subject_entry),
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


# --- reading the store ---


def _study_lock(study_id: str) -> str:
    return f"study:{study_id}"


def _find(context: Context, resource_type: str, identifier: Identifier) -> Json | None:
    """The stored resource with ``identifier``: read by its uuid5 id where the server cannot
    search the type by identifier (it was written ``PUT Type/<uuid5>``), else searched."""
    if resource_type in context.client_id_types:
        return context.store.read(resource_type, str(identifier.uuid))
    return history.find(context.store, resource_type, identifier)


def _study(context: Context, study_id: str) -> tuple[Json, Json]:
    resource = _find(context, RESEARCH_STUDY, study_identifier(study_id))
    group = _find(context, GROUP, group_identifier(study_id))
    if resource is None or group is None:
        raise StudyNotFoundError(f"No study {study_id}.")
    return resource, group


def _read_study(resource: Json, study_id: str) -> Study:
    try:
        return study_of(resource, study_id)
    except UnreadableStudyError as error:
        raise StudyConflictError(
            [FieldError(path=(), message=f"The stored study cannot be read: {error}")]
        ) from None


def _subject(context: Context, study_id: str, subject_id: str) -> Json:
    subject = _find(context, RESEARCH_SUBJECT, subject_identifier(study_id, subject_id))
    if subject is None:
        raise StudyNotFoundError(f"No subject {subject_id} in study {study_id}.")
    return subject


def _read_subject(subject: Json, study_id: str, subject_id: str) -> Enrolment:
    try:
        return enrolment_of(subject, study_id, subject_id)
    except UnreadableStudyError as error:
        raise StudyConflictError(
            [FieldError(path=(), message=f"The stored subject cannot be read: {error}")]
        ) from None


def _subjects(context: Context, study_id: str, study: Json) -> Iterator[Json]:
    """The study's ResearchSubjects (filtered here again: a server may ignore ``study``)."""
    reference = f"{RESEARCH_STUDY}/{study['id']}"
    params = {"study": reference, "_count": history.PAGE_SIZE}
    for subject in context.store.search(RESEARCH_SUBJECT, params):
        found = subject.get("study")
        if (
            subject.get("resourceType") == RESEARCH_SUBJECT
            and isinstance(found, dict)
            and found.get("reference") == reference
            and subject_number(subject, study_id) is not None
        ):
            yield subject


def _check_in_use(context: Context, study: Study, stored: Json) -> None:
    """An update may not drop an arm or a site that an enrolled subject has."""
    problems = []
    for subject in _subjects(context, study.study_id, stored):
        arm = subject.get("assignedArm")
        if isinstance(arm, str) and arm not in study.arm_codes():
            problems.append(FieldError(path=("arms",), message=f"Arm {arm} has subjects."))
        try:
            site = enrolment_of(subject, study.study_id, "").site
        except UnreadableStudyError:
            continue
        if site not in study.site_ids():
            problems.append(FieldError(path=("sites",), message=f"Site {site} has subjects."))
    if problems:
        raise StudyConflictError(list({p.message: p for p in problems}.values()))


# --- writing ---


def _audit(
    context: Context,
    interaction: Interaction,
    action: Action,
    patients: Sequence[str],
    entries: Sequence[Json],
) -> Json | None:
    """The AuditEvent of a write: the patients, and each written entry by fullUrl (the store
    turns it into the written resource's reference)."""
    if context.audit is None:
        return None
    entities = [events.patient(patient) for patient in patients]
    entities += [
        events.resource(str(e["fullUrl"]), str(e["resource"]["resourceType"])) for e in entries
    ]
    return context.audit.event(
        interaction=interaction, action=action, now=context.now, entities=entities
    )


def _transaction(context: Context, entries: Sequence[Json], event: Json | None) -> dict[str, str]:
    """Write ``entries`` and the AuditEvent in one transaction.

    :returns: each entry's fullUrl → the ``Type/id`` written.
    """
    bundle_entries = list(entries)
    if event is not None and context.audit is not None:
        bundle_entries.append(context.audit.entry(event))
    answer = context.store.transaction(
        {"resourceType": "Bundle", "type": "transaction", "entry": bundle_entries}
    )
    written: dict[str, str] = {}
    for sent, got in zip(bundle_entries, answer.get("entry", []), strict=False):
        location = str((got.get("response") or {}).get("location", ""))
        parts = location.split("/_history/", 1)[0].rstrip("/").split("/")
        if "fullUrl" in sent and len(parts) >= 2:
            written[str(sent["fullUrl"])] = f"{parts[-2]}/{parts[-1]}"
    return written


def _reference(written: dict[str, str], sent: Json) -> str:
    """``Type/id`` of a written entry: from the server's answer, else from the entry's own
    ``PUT Type/<id>`` (a server answering without ``location``)."""
    found = written.get(str(sent["fullUrl"]))
    if found is not None:
        return found
    url = str(sent["request"]["url"])
    return url if "?" not in url else str(sent["resource"]["resourceType"])


def _audit_failure(
    context: Context, interaction: Interaction, patient: str, error: Exception
) -> None:
    """Best effort: the failure AuditEvent of a refused or failed subject write."""
    audit = context.audit
    if audit is None or context.now.utcoffset() is None:
        return
    event = audit.event(
        interaction=interaction,
        action=Action.UPDATE,
        now=context.now,
        entities=[events.patient(f"Patient/{patient}")],
        error=error,
    )
    audit.write_failure(context.store, [event])
