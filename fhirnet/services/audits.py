"""The audit trail of the use cases: who asked, and the AuditEvents a submission writes with its
results or a failed request writes on its own (:mod:`fhirnet.fhir.audit` builds them).

**Policy** (docs: the module docstring of :mod:`fhirnet.services.submission`, whose use cases
call :func:`submission_events`, :func:`audit_failure` and :func:`audit_bundle_failure`):

* a submission's AuditEvent goes in the **same transaction** as its results: no results without
  their audit record, and no record of results that were not written. An identical resubmission
  writes a transaction holding its AuditEvent only: the audit is a log, the one resource that
  grows on resubmission;
* a request that fails (refused 422/400, the FHIR server refusing 502 or away 503, the patient
  busy) gets an AuditEvent with the failure outcome, written on its own, **best effort**: a
  failure to write it is logged (without patient data) and the request's own error is answered,
  never a 500. After a failed transaction nobody may know whether the server committed, so a
  success and a failure event may both exist for one request;
* a read (``$extract``, reads and searches of the embedded store) writes its AuditEvent on its
  own *before* the answer goes out; if it cannot be written, the read fails: no disclosure of
  patient data without its record.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fhirnet.errors import FhirnetError, InvalidInputError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import (
    Action,
    Entity,
    Interaction,
    Outcome,
    audit_entry,
    audit_event,
    audit_transaction,
)
from fhirnet.fhir.outcome import OutcomeError
from fhirnet.ports import FhirStore, Json

if TYPE_CHECKING:  # the context holds an AuditTrail: a type-only import, not a cycle
    from fhirnet.services.context import Context
    from fhirnet.services.forms import ReceivedForm

__all__ = [
    "AuditTrail",
    "audit_bundle_failure",
    "audit_failure",
    "extract_event",
    "failure_outcome",
    "submission_events",
]

#: The resource type of an exam's report, named in the AuditEvent of an unchanged form.
_REPORT = "DiagnosticReport"

_log = logging.getLogger(__name__)


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass(frozen=True, kw_only=True)
class AuditTrail:
    """Who is asking, and where each AuditEvent's fullUrl comes from.

    :ivar requester: the authenticated client's identity (:data:`fhirnet.fhir.audit.ANONYMOUS`
        with open access).
    :ivar new_full_url: a fresh ``urn:uuid:`` per AuditEvent entry.
    """

    requester: str
    new_full_url: Callable[[], str] = field(default=_urn)

    def event(
        self,
        *,
        interaction: Interaction,
        action: Action,
        now: dt.datetime,
        entities: Iterable[Entity],
        error: Exception | None = None,
    ) -> Json:
        """The AuditEvent of one request; a failure when ``error`` is given."""
        outcome, description = (Outcome.SUCCESS, None) if error is None else failure_outcome(error)
        return audit_event(
            interaction=interaction,
            action=action,
            recorded=now,
            requester=self.requester,
            entities=entities,
            outcome=outcome,
            outcome_description=description,
        )

    def entry(self, event: Json) -> Json:
        """A ``POST AuditEvent`` entry for a transaction that writes other things too."""
        return audit_entry(event, full_url=self.new_full_url())

    def write(self, store: FhirStore, events: Sequence[Json]) -> None:
        """Write ``events`` in a transaction of their own.

        :raises fhirnet.errors.FhirServerError: the store refused or is unavailable.
        """
        store.transaction(audit_transaction((event, self.new_full_url()) for event in events))

    def write_failure(self, store: FhirStore, events: Sequence[Json]) -> None:
        """Write failure ``events``, best effort: a failure to do so is logged, not raised (the
        request's own error is what the client must see)."""
        try:
            self.write(store, events)
        except Exception as error:  # best effort: the caller re-raises its own error
            _log.warning(
                "the AuditEvent of a failed request could not be written: %s", type(error).__name__
            )


def failure_outcome(error: Exception) -> tuple[Outcome, str]:
    """The outcome code and description of a failed request: the error's kind, never its
    message (which may quote the request's content). Refused (the request's fault): minor;
    the FHIR server or the patient's lock failing: serious; anything else (a bug): major."""
    name = type(error).__name__
    if isinstance(error, OutcomeError | InvalidInputError):
        return Outcome.MINOR_FAILURE, f"refused: {name}"
    if isinstance(error, FhirnetError):
        return Outcome.SERIOUS_FAILURE, f"failed: {name}"
    return Outcome.MAJOR_FAILURE, f"failed: {name}"


def submission_events(
    audit: AuditTrail,
    *,
    now: dt.datetime,
    interaction: Interaction,
    forms: Sequence[ReceivedForm],
    entries: Sequence[Json],
    reports: Mapping[str, Json],
) -> list[Json]:
    """One AuditEvent per submitted form: its patient, every resource the transaction's
    ``entries`` write about that patient (by fullUrl, which the server turns into the written
    resource's reference), and the stored DiagnosticReport an unchanged form is answered with.

    :param reports: per form key, the stored DiagnosticReport of a form not rewritten.
    """
    written = _written_by_patient(entries)
    found = []
    for form in forms:
        patient = f"Patient/{form.patient}"
        entities = [events.patient(patient), *written.get(patient, [])]
        report = reports.get(form.key)
        if report is not None:
            entities.append(events.resource(f"{_REPORT}/{report.get('id')}", _REPORT))
        found.append(
            audit.event(interaction=interaction, action=Action.CREATE, now=now, entities=entities)
        )
    return found


def extract_event(
    audit: AuditTrail, *, now: dt.datetime, patient: str, entries: Sequence[Json]
) -> Json:
    """The AuditEvent of an ``$extract``: the patient, and each resource of the returned Bundle
    (finding 2 of the security review: every disclosed resource is recorded). They are not
    written, so no reference can name them: each is an entity whose ``detail`` ``disclosed``
    is ``<type>|<identifier system>|<value>`` (``<type>/<id>`` for a Provenance, which has no
    identifier): the business identifier under which a submission would write it, and under
    which the stored version, if any, is found.

    :param patient: ``Patient/<id>``.
    """
    entities = [events.patient(patient)]
    for entry in entries:
        resource = entry["resource"]
        kind = str(resource["resourceType"])
        identifiers = [i for i in _list(resource.get("identifier")) if isinstance(i, Mapping)]
        if isinstance(resource.get("identifier"), Mapping):
            identifiers = [resource["identifier"]]
        labels = [f"{kind}|{i.get('system')}|{i.get('value')}" for i in identifiers]
        if not labels:
            labels = [f"{kind}/{resource.get('id')}"]
        role = events.resource(kind, kind).role
        entities.append(Entity(role=role, details=tuple(("disclosed", label) for label in labels)))
    return audit.event(
        interaction=Interaction.OPERATION, action=Action.EXECUTE, now=now, entities=entities
    )


def _written_by_patient(entries: Sequence[Json]) -> dict[str, list[Entity]]:
    """The entities of a transaction's entries per ``Patient/<id>``; an entry that names no
    patient (a Provenance targets the others by fullUrl) goes with its targets' patients."""
    patients = {entry["fullUrl"]: events.patients_of(entry["resource"]) for entry in entries}
    found: dict[str, list[Entity]] = {}
    for entry in entries:
        resource = entry["resource"]
        own = patients[entry["fullUrl"]]
        if not own:
            targets = [t.get("reference") for t in _list(resource.get("target"))]
            own = list(
                dict.fromkeys(p for t in targets if isinstance(t, str) for p in patients.get(t, []))
            )
        entity = events.resource(entry["fullUrl"], str(resource["resourceType"]))
        for patient in own:
            found.setdefault(patient, []).append(entity)
    return found


def audit_failure(
    context: Context,
    interaction: Interaction,
    action: Action,
    forms: Sequence[Mapping[str, Any]],
    error: Exception,
) -> None:
    """Write, best effort, the failure AuditEvent of a request about ``forms`` (as sent: only
    the patients they name, when they name one, are recorded); nothing without an audit trail
    or with a naive clock (the request fails on that itself)."""
    audit, now = context.audit, context.now
    if audit is None or now.utcoffset() is None:
        return
    patients = dict.fromkeys(p for form in forms for p in events.patients_of(form))
    entities = [events.patient(patient) for patient in patients]
    event = audit.event(
        interaction=interaction, action=action, now=now, entities=entities, error=error
    )
    audit.write_failure(context.store, [event])


def audit_bundle_failure(context: Context, bundle: Mapping[str, Any], error: Exception) -> None:
    """:func:`audit_failure` of a submitted Bundle, about the forms it holds."""
    forms = [e.get("resource") for e in _list(bundle.get("entry")) if isinstance(e, dict)]
    seen = [form for form in forms if isinstance(form, Mapping)]
    kind = Interaction.BATCH if bundle.get("type") == "batch" else Interaction.TRANSACTION
    audit_failure(context, kind, Action.CREATE, seen, error)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
