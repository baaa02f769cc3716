"""FHIR Bulk Data export (Bulk Data Access 2.0): which patients and types a kick-off covers
(:func:`plan_export`), and the export itself (:func:`run_export`), which streams every resource
through :meth:`fhirnet.ports.FhirStore.search` page by page into one NDJSON file per type.

**Streaming.** Neither a type nor the study is ever held in memory: each resource is written as
one line as the store hands it over (the embedded store and the external server's client both
page). What is held is bounded by the number of patients: their ids (a Group's members), the
QuestionnaireResponse ids of one batch of :data:`PATIENT_BATCH` patients (to find their
Provenance), and the distinct patients seen, for the audit. Only a type with several
``_typeFilter`` searches keeps the ids exported so far (a resource matching two searches is
written once).

**What is exported, per level.** System: every type fhirnet stores but AuditEvent, whole.
Patient: the patient compartment types (:data:`PATIENT_SEARCH`, and Provenance), of every
patient or of the ``patient`` parameter's. Group: the same for the Group's members (for a
study's enrolment Group exactly its subjects, withdrawn ones included: their data is kept), and
the Group itself. QuestionnaireResponse, Observation and DiagnosticReport belong to a patient by
``subject``, BodyStructure by ``patient``, ResearchSubject by ``individual``; a Provenance by
its source, the patient's QuestionnaireResponse (``entity``): its targets are the results of that
form.

**Audit.** One AuditEvent per export, written before the files can be downloaded: the
requester, the kick-off URL, the number of resources per type and the patients (at most
:data:`~fhirnet.fhir.audit.MAX_PATIENTS_PER_EVENT` named, the others counted), as for a search.
No audit record, no files: if it cannot be written the export fails.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol

from fhirnet.errors import FhirnetError, FhirServerError, FhirServerRejectedError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import MAX_PATIENTS_PER_EVENT, Action, Interaction, Role
from fhirnet.fhir.bulk_parameters import EXPORTABLE_TYPES, ExportRequest, Level, parse_instant
from fhirnet.fhir.identifiers import patient_id
from fhirnet.fhir.outcome import Issue, IssueType, MalformedRequestError, operation_outcome
from fhirnet.fhir.studies import (
    GROUP,
    GROUP_SYSTEM,
    RESEARCH_STUDY,
    RESEARCH_SUBJECT,
    STUDY_SYSTEM,
)
from fhirnet.ports import FhirStore, Json, SearchParams
from fhirnet.services.context import Context

__all__ = [
    "ERRORS_FILE",
    "PATIENT_BATCH",
    "ExportFiles",
    "ExportPlan",
    "StudyGroup",
    "Transform",
    "group_members",
    "plan_export",
    "run_export",
    "study_group",
    "study_reference",
]

#: The search parameter naming a resource's patient, per patient compartment type (the store
#: and R4 both define ``patient``; for ResearchSubject it is ``individual``'s alias).
PATIENT_SEARCH: Final = {
    "QuestionnaireResponse": "patient",
    "BodyStructure": "patient",
    "Observation": "patient",
    "DiagnosticReport": "patient",
    "ResearchSubject": "patient",
}
PROVENANCE: Final = "Provenance"
QUESTIONNAIRE_RESPONSE: Final = "QuestionnaireResponse"
#: The types of a Patient-level export, in the order they are written.
PATIENT_TYPES: Final = tuple(t for t in EXPORTABLE_TYPES if t in PATIENT_SEARCH or t == PROVENANCE)
#: Patients (or forms) per search: short enough for a GET URL on any server.
PATIENT_BATCH: Final = 50
#: Resources between two looks at whether the job was cancelled.
CHECK_EVERY: Final = 200
#: The NDJSON file of OperationOutcomes (the manifest's ``error``).
ERRORS_FILE: Final = "OperationOutcome.ndjson"

_log = logging.getLogger(__name__)


class ExportFiles(Protocol):
    """Where a running export writes its files and state (:mod:`fhirnet.adapters.export_jobs`)."""

    def cancelled(self, job_id: str) -> bool:
        """Whether the job was cancelled (the export stops)."""
        ...

    def set_progress(self, job_id: str, progress: str) -> None:
        """Note how far the job is (``X-Progress``)."""
        ...

    def writing(self, job_id: str, name: str) -> AbstractContextManager[IO[bytes]]:
        """A new file of the job, open for writing."""
        ...

    def remove(self, job_id: str, name: str) -> None:
        """Delete one file of the job."""
        ...

    def finish(
        self,
        job_id: str,
        *,
        outputs: Sequence[tuple[str, str, int]],
        errors: Sequence[tuple[str, str, int]],
        extension: dict[str, Any] | None,
        expires: float,
    ) -> bool:
        """Mark the job done with its ``(type, file name, count)`` files; ``False`` if it was
        cancelled meanwhile."""
        ...

    def fail(self, job_id: str, *, failure: str, expires: float) -> None:
        """Mark the job failed (no patient data in ``failure``)."""
        ...


@dataclass(frozen=True, kw_only=True)
class ExportPlan:
    """What one export writes.

    :ivar types: the types, in the order their files are written.
    :ivar patients: the ``Patient`` ids it is restricted to; ``None``: every patient.
    :ivar notes: what the manifest's ``error`` file says (lenient handling, types left out).
    """

    request: ExportRequest
    types: tuple[str, ...]
    patients: tuple[str, ...] | None
    notes: tuple[Issue, ...]
    #: A study's export (a pseudonymized client's): its ResearchStudy's reference. Its subjects'
    #: enrolments in other studies are left out: they are not this study's data, and their
    #: subject numbers would link the study's pseudonymous subjects to another study's.
    study: str | None = None
    #: Patients (or forms) named in one search: :data:`PATIENT_BATCH` for a server over HTTP
    #: (fewer round trips), 1 for the embedded store (it answers one reference through its index
    #: but scans the type's index rows for several, which made an export quadratic).
    batch: int = PATIENT_BATCH


def group_members(store: FhirStore, group_id: str) -> tuple[str, ...] | None:
    """The ``Patient`` ids a Group's members are, in order; ``None`` when there is no Group
    ``group_id``."""
    group = store.read(GROUP, group_id)
    if group is None:
        return None
    found: dict[str, None] = {}
    for member in group.get("member") or []:
        entity = member.get("entity") if isinstance(member, Mapping) else None
        reference = entity.get("reference") if isinstance(entity, Mapping) else None
        identity = patient_id(reference) if isinstance(reference, str) else None
        if identity is not None:
            found.setdefault(identity)
    return tuple(found)


@dataclass(frozen=True, kw_only=True)
class StudyGroup:
    """A study's enrolment Group: its id, its subjects' ``Patient`` ids and each subject's
    reference date (study day 1, the member's ``period.start``)."""

    group_id: str
    members: tuple[str, ...]
    reference_dates: Mapping[str, dt.date]


def study_reference(store: FhirStore, study_id: str) -> str | None:
    """``ResearchStudy/<id>`` of study ``study_id`` (by its identifier), or ``None``."""
    wanted = {"system": STUDY_SYSTEM, "value": study_id}
    for study in store.search(RESEARCH_STUDY, {"identifier": f"{STUDY_SYSTEM}|{study_id}"}):
        identifiers = study.get("identifier") or []
        if any(
            isinstance(i, Mapping) and {k: i.get(k) for k in wanted} == wanted for i in identifiers
        ):
            return f"{RESEARCH_STUDY}/{study.get('id')}"
    return None


def study_group(store: FhirStore, study_id: str) -> StudyGroup | None:
    """The enrolment Group of study ``study_id`` (:mod:`fhirnet.fhir.studies`), or ``None``."""
    wanted = {"system": GROUP_SYSTEM, "value": study_id}
    for group in store.search(GROUP, {"identifier": f"{GROUP_SYSTEM}|{study_id}"}):
        identifiers = group.get("identifier") or []
        if not any(
            isinstance(i, Mapping) and {k: i.get(k) for k in wanted} == wanted for i in identifiers
        ):
            continue  # a server that ignored the identifier
        members: dict[str, None] = {}
        dates: dict[str, dt.date] = {}
        for member in group.get("member") or []:
            entity = member.get("entity") if isinstance(member, Mapping) else None
            reference = entity.get("reference") if isinstance(entity, Mapping) else None
            identity = patient_id(reference) if isinstance(reference, str) else None
            if identity is None:
                continue
            members.setdefault(identity)
            period = member.get("period")
            start = period.get("start") if isinstance(period, Mapping) else None
            if isinstance(start, str):
                # Unreadable: no reference date (the study-day regime then refuses the dates).
                with suppress(ValueError):
                    dates[identity] = dt.date.fromisoformat(start[:10])
        return StudyGroup(group_id=str(group["id"]), members=tuple(members), reference_dates=dates)
    return None


def plan_export(
    store: FhirStore,
    request: ExportRequest,
    *,
    readable: Callable[[str], bool],
    members: Sequence[str] | None = None,
    batch: int = PATIENT_BATCH,
) -> ExportPlan:
    """Which types and patients an export covers; checks its ``_typeFilter`` searches.

    :param readable: whether the requester may read a type (its token's scopes): the export
        holds the requested (or level's) types it may read, never others.
    :param members: the Group's patients (Group level).
    :param batch: patients (or forms) per search (:attr:`ExportPlan.batch`).
    :raises MalformedRequestError: a ``_typeFilter`` the store cannot run, or a ``_type`` the
        level does not export (400: export.md, a server SHOULD answer a request for types
        outside the Patient compartment with an error); with lenient handling such a type is
        noted instead, unless no requested type is left.
    """
    level_types = {
        Level.SYSTEM: EXPORTABLE_TYPES,
        Level.PATIENT: PATIENT_TYPES,
        Level.GROUP: (*PATIENT_TYPES, GROUP),
    }[request.level]
    notes = list(request.notes)
    asked = request.types or level_types
    outside = [t for t in asked if t not in level_types]
    if outside and (not request.lenient or len(outside) == len(asked)):
        raise MalformedRequestError(
            [
                Issue.error(
                    IssueType.NOT_SUPPORTED,
                    f"{resource_type} is not exported at {request.level.value} level "
                    f"(that exports {', '.join(level_types)}).",
                    expression="_type",
                )
                for resource_type in outside
            ]
        )
    types = []
    for resource_type in asked:
        if resource_type not in level_types:
            notes.append(
                Issue.warning(
                    IssueType.NOT_SUPPORTED,
                    f"{resource_type} is not exported at {request.level.value} level.",
                    expression="_type",
                )
            )
        elif readable(resource_type):
            types.append(resource_type)
        elif request.types:
            notes.append(
                Issue.warning(
                    IssueType.FORBIDDEN,
                    f"{resource_type} is left out: the access token may not read it.",
                    expression="_type",
                )
            )
    patients: tuple[str, ...] | None = None
    if members is not None:
        patients = tuple(members)
    if request.patients:
        patients = tuple(p for p in request.patients if patients is None or p in set(patients))
    for type_filter in request.type_filters:
        if type_filter.resource_type in types:
            _probe(store, type_filter.resource_type, dict(_grouped(type_filter.params)))
    return ExportPlan(
        request=request, types=tuple(types), patients=patients, notes=tuple(notes), batch=batch
    )


def _probe(store: FhirStore, resource_type: str, params: SearchParams) -> None:
    """Run a ``_typeFilter`` search for one resource, so that one the store refuses is refused
    at kick-off (400), not halfway through the export."""
    try:
        next(iter(store.search(resource_type, {**params, "_count": "1"})), None)
    except FhirServerRejectedError as error:
        raise MalformedRequestError(
            [
                Issue.error(
                    IssueType.NOT_SUPPORTED,
                    f"_typeFilter on {resource_type} cannot be run: {error}",
                    expression="_typeFilter",
                )
            ]
        ) from None


def _grouped(pairs: Sequence[tuple[str, str]]) -> Iterator[tuple[str, str | Sequence[str]]]:
    """Name/value pairs as search parameters: a name given twice is AND (a list)."""
    by_name: dict[str, list[str]] = {}
    for name, value in pairs:
        by_name.setdefault(name, []).append(value)
    for name, values in by_name.items():
        yield name, values[0] if len(values) == 1 else values


#: What each resource goes through before it is written (pseudonymization): the resource and
#: the real id of the patient whose data it is (``None``: study-level, e.g. the Group).
Transform = Callable[[Json, str | None], Json]


@dataclass(kw_only=True)
class _Tally:
    """What the audit and the manifest count as the export goes."""

    counts: dict[str, int]
    patients: dict[str, None]


def run_export(
    context: Context,
    plan: ExportPlan,
    *,
    job_id: str,
    files: ExportFiles,
    request_url: str,
    expires_at: Callable[[], float],
    transform: Transform | None = None,
    extension: dict[str, Any] | None = None,
) -> bool:
    """Write the export's files, audit it and mark the job done (or failed); never raises.

    :param context: the store, the time of the kick-off (``now``) and the audit trail.
    :param request_url: the kick-off URL, for the AuditEvent.
    :param expires_at: when the finished job's files expire (called at the end).
    :param transform: applied to each resource before it is written (pseudonymization), after
        ``_elements``.
    :param extension: manifest content stored with the job (e.g. the pseudonymization regime).
    :returns: whether the job finished (``False``: cancelled or failed).
    """
    tally = _Tally(counts={}, patients={})
    try:
        outputs = []
        for number, resource_type in enumerate(plan.types, start=1):
            name = f"{resource_type}.ndjson"
            files.set_progress(job_id, f"{resource_type}: type {number} of {len(plan.types)}")
            count = _write_type(context.store, plan, resource_type, job_id, files, transform, tally)
            if count is None:
                return False
            if count:
                outputs.append((resource_type, name, count))
            else:
                files.remove(job_id, name)
        errors = []
        if plan.notes:
            with files.writing(job_id, ERRORS_FILE) as out:
                out.write(_line(operation_outcome(plan.notes)))
            errors.append(("OperationOutcome", ERRORS_FILE, 1))
        if files.cancelled(job_id):
            return False
        _audit(context, request_url, tally)
        return files.finish(
            job_id, outputs=outputs, errors=errors, extension=extension, expires=expires_at()
        )
    except Exception as error:  # the thread's end: the job says it failed, the log why
        _log.warning("bulk export %s failed: %s", job_id[:6], type(error).__name__)
        if not isinstance(error, FhirnetError):
            _log.exception("bulk export failed unexpectedly")
        _audit(context, request_url, tally, error)
        transient = isinstance(error, FhirServerError) and not isinstance(
            error, FhirServerRejectedError
        )
        files.fail(
            job_id,
            failure=("transient: " if transient else "") + type(error).__name__,
            expires=expires_at(),
        )
        return False


def _write_type(
    store: FhirStore,
    plan: ExportPlan,
    resource_type: str,
    job_id: str,
    files: ExportFiles,
    transform: Transform | None,
    tally: _Tally,
) -> int | None:
    """Write one type's file; its number of resources, ``None`` when the job was cancelled."""
    subset = plan.request.subsetting_of(resource_type)
    count = 0
    with files.writing(job_id, f"{resource_type}.ndjson") as out:
        for resource, patient in owned_resources(store, plan, resource_type):
            for reference in events.patients_of(resource):
                tally.patients.setdefault(reference)
            if not subset.whole:
                resource = subset.apply(resource)
            if transform is not None:
                resource = transform(resource, patient)
            out.write(_line(resource))
            count += 1
            if count % CHECK_EVERY == 0:
                if files.cancelled(job_id):
                    return None
                files.set_progress(job_id, f"{resource_type}: {count} written")
    tally.counts[resource_type] = count
    return count


def resources_of(store: FhirStore, plan: ExportPlan, resource_type: str) -> Iterator[Json]:
    """Every resource of ``resource_type`` the export holds, page by page, each once."""
    for resource, _ in owned_resources(store, plan, resource_type):
        yield resource


def owned_resources(
    store: FhirStore, plan: ExportPlan, resource_type: str
) -> Iterator[tuple[Json, str | None]]:
    """Every resource of ``resource_type`` the export holds, page by page, each once, with the
    id of the patient it belongs to (``None``: none, e.g. a Group).

    What a search answers is checked again here (its patient, its source form, ``_id``,
    ``lastUpdated``): a server that ignores a search parameter (sekmet-fhir does for some)
    must not put another patient's data into the export.
    """
    request = plan.request
    base: dict[str, str | Sequence[str]] = {}
    if request.since is not None:
        base["_lastUpdated"] = "gt" + request.since.isoformat()
    filters = [dict(_grouped(f.params)) for f in request.filters_of(resource_type)] or [{}]
    seen: set[str] | None = set() if len(filters) > 1 else None
    for scope, belongs, owner in _scopes(store, plan, resource_type):
        for type_filter in filters:
            params = _merged(base, scope, type_filter)
            for resource in store.search(resource_type, params):
                if resource.get("resourceType") != resource_type or not belongs(resource):
                    continue
                if plan.study is not None and not _of_study(resource, plan.study):
                    continue
                if request.since is not None and not _updated_since(resource, request.since):
                    continue
                if seen is not None:
                    key = str(resource.get("id"))
                    if key in seen:
                        continue
                    seen.add(key)
                yield resource, owner(resource)


def _of_study(resource: Json, study: str) -> bool:
    """Whether a resource may be in ``study``'s export: a ResearchSubject only if it is an
    enrolment in that study; everything else is its subjects' data."""
    if resource.get("resourceType") != RESEARCH_SUBJECT:
        return True
    reference = resource.get("study")
    return isinstance(reference, Mapping) and reference.get("reference") == study


def _updated_since(resource: Json, since: dt.datetime) -> bool:
    meta = resource.get("meta")
    updated = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    found = parse_instant(updated) if isinstance(updated, str) else None
    return found is None or found > since


def _merged(*parts: Mapping[str, str | Sequence[str]]) -> dict[str, str | Sequence[str]]:
    """Search parameters of all ``parts``: a name in several is AND (a list of its values)."""
    merged: dict[str, list[str]] = {}
    for part in parts:
        for name, value in part.items():
            merged.setdefault(name, []).extend([value] if isinstance(value, str) else value)
    return {name: values[0] if len(values) == 1 else values for name, values in merged.items()}


Belongs = Callable[[Json], bool]
Owner = Callable[[Json], str | None]


def _anything(_: Json) -> bool:
    return True


def _own_patient(resource: Json) -> str | None:
    """The patient a resource names (``subject``, ``patient``, ``individual``), if one."""
    found = events.patients_of(resource) if resource.get("resourceType") != GROUP else []
    return found[0].removeprefix("Patient/") if len(found) == 1 else None


def _scopes(
    store: FhirStore, plan: ExportPlan, resource_type: str
) -> Iterator[tuple[Mapping[str, str], Belongs, Owner]]:
    """The searches (as parameters, with the check of what each may answer and whose each
    answer is) that together cover ``resource_type``'s part of the export."""
    level = plan.request.level
    if resource_type == GROUP:
        if level is Level.SYSTEM:
            yield {}, _anything, _own_patient
        else:
            group_id = str(plan.request.group_id)
            yield {"_id": group_id}, lambda found: found.get("id") == group_id, _own_patient
        return
    if resource_type == RESEARCH_STUDY or plan.patients is None:
        yield {}, _anything, _own_patient
        return
    for start in range(0, len(plan.patients), plan.batch):
        batch = [f"Patient/{p}" for p in plan.patients[start : start + plan.batch]]
        members = frozenset(batch)

        def of_batch(found: Json, members: frozenset[str] = members) -> bool:
            return not members.isdisjoint(events.patients_of(found))

        if resource_type != PROVENANCE:
            yield {PATIENT_SEARCH[resource_type]: ",".join(batch)}, of_batch, _own_patient
            continue
        # A Provenance names no patient: it is the patient's whose form is its source.
        forms = {
            f"{QUESTIONNAIRE_RESPONSE}/{form.get('id')}": _own_patient(form)
            for form in store.search(QUESTIONNAIRE_RESPONSE, {"patient": ",".join(batch)})
            if form.get("resourceType") == QUESTIONNAIRE_RESPONSE and of_batch(form)
        }
        names = sorted(forms)
        for first in range(0, len(names), plan.batch):
            chunk = frozenset(names[first : first + plan.batch])

            def of_forms(found: Json, chunk: frozenset[str] = chunk) -> bool:
                return not chunk.isdisjoint(_sources(found))

            def source_patient(
                found: Json, chunk: frozenset[str] = chunk, forms: Mapping[str, str | None] = forms
            ) -> str | None:
                return next((forms[s] for s in _sources(found) if s in chunk), None)

            yield {"entity": ",".join(sorted(chunk))}, of_forms, source_patient


def _sources(provenance: Json) -> list[str]:
    """The relative references of a Provenance's ``entity.what`` (``Type/id``)."""
    found = []
    for entity in provenance.get("entity") or []:
        what = entity.get("what") if isinstance(entity, Mapping) else None
        reference = what.get("reference") if isinstance(what, Mapping) else None
        if isinstance(reference, str):
            parts = reference.split("/_history/")[0].rstrip("/").split("/")
            found.append("/".join(parts[-2:]))
    return found


def _line(resource: Mapping[str, Any]) -> bytes:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _entities(request_url: str, tally: _Tally) -> list[events.Entity]:
    details = [("exported", str(sum(tally.counts.values())))]
    details += [(f"exported {kind}", str(count)) for kind, count in sorted(tally.counts.items())]
    details.append(("patients", str(len(tally.patients))))
    named = list(tally.patients)[:MAX_PATIENTS_PER_EVENT]
    if len(tally.patients) > len(named):
        details.append(("patients not named", str(len(tally.patients) - len(named))))
    query = events.Entity(role=Role.QUERY, query=request_url, details=tuple(details))
    return [query, *(events.patient(reference) for reference in named)]


def _audit(
    context: Context, request_url: str, tally: _Tally, error: Exception | None = None
) -> None:
    """Write the export's AuditEvent, a failure one when ``error`` ended it (raises: no files
    without their audit record)."""
    if context.audit is None:
        return
    event = context.audit.event(
        interaction=Interaction.OPERATION,
        action=Action.EXECUTE,
        now=context.now,
        entities=_entities(request_url, tally),
        error=error,
    )
    if error is None:
        context.audit.write(context.store, [event])
    else:
        context.audit.write_failure(context.store, [event])
