"""How the study use cases read and write the store: a study, its subjects and its enrolment Group
found by identifier and read back into values, and writes in one transaction with their AuditEvent
(:mod:`fhirnet.services.studies` holds the use cases). The errors both raise live here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.identifiers import Identifier
from fhirnet.fhir.studies import (
    GROUP,
    RESEARCH_STUDY,
    RESEARCH_SUBJECT,
    Enrolment,
    Study,
    UnreadableStudyError,
    enrolment_of,
    group_identifier,
    study_identifier,
    study_of,
    subject_identifier,
    subject_number,
)
from fhirnet.ports import Json
from fhirnet.services import history
from fhirnet.services.context import Context


class StudyNotFoundError(InvalidInputError):
    """No such study, or no such subject in it (404). An input error (the request names what
    does not exist): its failure AuditEvent says "refused", not "failed"."""

    def __init__(self, message: str) -> None:
        super().__init__([FieldError(path=(), message=message)])


class StudyConflictError(InvalidInputError):
    """The request contradicts what is stored (409): a subject number of another patient, a
    patient enrolled under another number, a study with subjects deleted, an arm or site in use
    removed. ``errors`` locate the offending fields."""


def study_lock(study_id: str) -> str:
    return f"study:{study_id}"


def find(context: Context, resource_type: str, identifier: Identifier) -> Json | None:
    """The stored resource with ``identifier``: read by its uuid5 id where the server cannot
    search the type by identifier (it was written ``PUT Type/<uuid5>``), else searched."""
    if resource_type in context.client_id_types:
        return context.store.read(resource_type, str(identifier.uuid))
    return history.find(context.store, resource_type, identifier)


def study(context: Context, study_id: str) -> tuple[Json, Json]:
    resource = find(context, RESEARCH_STUDY, study_identifier(study_id))
    group = find(context, GROUP, group_identifier(study_id))
    if resource is None or group is None:
        raise StudyNotFoundError(f"No study {study_id}.")
    return resource, group


def read_study(resource: Json, study_id: str) -> Study:
    try:
        return study_of(resource, study_id)
    except UnreadableStudyError as error:
        raise StudyConflictError(
            [FieldError(path=(), message=f"The stored study cannot be read: {error}")]
        ) from None


def subject(context: Context, study_id: str, subject_id: str) -> Json:
    subject = find(context, RESEARCH_SUBJECT, subject_identifier(study_id, subject_id))
    if subject is None:
        raise StudyNotFoundError(f"No subject {subject_id} in study {study_id}.")
    return subject


def read_subject(subject: Json, study_id: str, subject_id: str) -> Enrolment:
    try:
        return enrolment_of(subject, study_id, subject_id)
    except UnreadableStudyError as error:
        raise StudyConflictError(
            [FieldError(path=(), message=f"The stored subject cannot be read: {error}")]
        ) from None


def subjects(context: Context, study_id: str, study: Json) -> Iterator[Json]:
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


def check_in_use(context: Context, study: Study, stored: Json) -> None:
    """An update may not drop an arm or a site that an enrolled subject has."""
    problems = []
    for subject in subjects(context, study.study_id, stored):
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


def audit(
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


def transaction(context: Context, entries: Sequence[Json], event: Json | None) -> dict[str, str]:
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


def reference(written: dict[str, str], sent: Json) -> str:
    """``Type/id`` of a written entry: from the server's answer, else from the entry's own
    ``PUT Type/<id>`` (a server answering without ``location``)."""
    found = written.get(str(sent["fullUrl"]))
    if found is not None:
        return found
    url = str(sent["request"]["url"])
    return url if "?" not in url else str(sent["resource"]["resourceType"])


def audit_failure(
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


def audit_subject_reads(context: Context, subjects: Sequence[tuple[str, str]]) -> None:
    """One READ AuditEvent per subject whose data a derivation read (endpoints, plots, SDTM):
    the patient and the ResearchSubject, written before anything derived from them leaves.

    :param subjects: ``(patient id, ResearchSubject reference)`` pairs.
    """
    if context.audit is None or not subjects:
        return
    read_events = [
        context.audit.event(
            interaction=Interaction.READ,
            action=Action.READ,
            now=context.now,
            entities=[
                events.patient(f"Patient/{patient}"),
                events.resource(reference, RESEARCH_SUBJECT),
            ],
        )
        for patient, reference in subjects
    ]
    context.audit.write(context.store, read_events)
