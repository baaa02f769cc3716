"""FHIR R4 AuditEvents of fhirnet's interactions with patient data: who (the requesting client and
fhirnet), what (the patient, the resources written or read, the query), when and with what outcome.

Pure: the time (``recorded``) and the entry's fullUrl come in as arguments (``style.md`` P13).
An AuditEvent names resources by reference only: no answers, no names, no free text from the
request. A search's ``entity.query`` holds the query string as sent (base64, R4 requires it): it
may hold patient ids, which is fine inside the AuditEvent, kept in the same protected store as
the data it is about, and is why an AuditEvent is never written to a log.

Codes: R4 AuditEvent (http://hl7.org/fhir/R4/auditevent.html); ``type`` ``rest`` of
http://terminology.hl7.org/CodeSystem/audit-event-type, ``subtype`` from
http://hl7.org/fhir/restful-interaction, entity roles from
http://terminology.hl7.org/CodeSystem/object-role and entity types from
http://terminology.hl7.org/CodeSystem/audit-entity-type.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from fhirnet import __version__
from fhirnet.fhir.datatypes import Json
from fhirnet.fhir.identifiers import SID_BASE, WRITTEN_TYPES, patient_id
from fhirnet.fhir.studies import STUDY_TYPES

AUDIT_EVENT: Final = "AuditEvent"
#: What the embedded store holds and serves: what fhirnet writes from forms, the studies and
#: their enrolment (:mod:`fhirnet.fhir.studies`), and its audit trail.
STORED_TYPES: Final = (*WRITTEN_TYPES, *STUDY_TYPES, AUDIT_EVENT)
EVENT_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION_SYSTEM: Final = "http://hl7.org/fhir/restful-interaction"
ROLE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/object-role"
ENTITY_TYPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
#: System of the requesting client's identity (an API key label, a JWT ``client_id``/``sub``).
CLIENT_SYSTEM: Final = f"{SID_BASE}/client"
#: The requester when access is open (``FHIRNET_AUTH=none``): nobody is authenticated.
ANONYMOUS: Final = "anonymous"
#: fhirnet itself, the second agent and the observer.
SOFTWARE: Final = f"fhirnet {__version__}"

#: Resource types whose role is "Report" (3) rather than "Domain Resource" (4).
_REPORTS: Final = frozenset({"DiagnosticReport"})


class Interaction(StrEnum):
    """The client's FHIR interaction (``subtype``, restful-interaction)."""

    CREATE = "create"
    UPDATE = "update"
    READ = "read"
    DELETE = "delete"
    SEARCH_TYPE = "search-type"
    TRANSACTION = "transaction"
    BATCH = "batch"
    OPERATION = "operation"


class Action(StrEnum):
    """AuditEvent.action: what the client's request does (not each resource's fate)."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class Outcome(StrEnum):
    """AuditEvent.outcome (R4 audit-event-outcome)."""

    SUCCESS = "0"
    MINOR_FAILURE = "4"  # the request was refused: invalid input, a broken rule
    SERIOUS_FAILURE = "8"  # the request failed half way: the FHIR server refused or is away
    MAJOR_FAILURE = "12"  # fhirnet itself failed


class Role(StrEnum):
    """object-role codes fhirnet uses."""

    PATIENT = "1"
    REPORT = "3"
    DOMAIN_RESOURCE = "4"
    QUERY = "24"


#: Most patients the AuditEvent of one search names; beyond, it counts the others. A page of a
#: search holds up to 1000 matches and their includes, and an AuditEvent naming each of them
#: grew to hundreds of KB (and an AuditEvent search to tens of MB): docs/security.md.
MAX_PATIENTS_PER_EVENT: Final = 100


@dataclass(frozen=True, kw_only=True)
class Entity:
    """One thing the event is about: a resource (``reference``) or a search (``query``), with
    ``details`` as ``(type, value)`` strings (R4 ``entity.detail``)."""

    role: Role
    reference: str | None = None
    query: str | None = None
    details: tuple[tuple[str, str], ...] = ()

    def json(self) -> Json:
        found: Json = {}
        if self.reference is not None:
            found["what"] = {"reference": self.reference}
        person = self.role is Role.PATIENT
        found["type"] = {
            "system": ENTITY_TYPE_SYSTEM,
            "code": "1" if person else "2",
            "display": "Person" if person else "System Object",
        }
        found["role"] = {"system": ROLE_SYSTEM, "code": self.role.value}
        if self.query is not None:
            found["query"] = base64.b64encode(self.query.encode("utf-8")).decode("ascii")
        if self.details:
            found["detail"] = [{"type": name, "valueString": value} for name, value in self.details]
        return found


def patient(patient_ref: str) -> Entity:
    """The patient an event is about, as ``Patient/<id>``."""
    return Entity(role=Role.PATIENT, reference=patient_ref)


def resource(reference: str, resource_type: str) -> Entity:
    """A resource written or read: a Report (DiagnosticReport) or a Domain Resource."""
    role = Role.REPORT if resource_type in _REPORTS else Role.DOMAIN_RESOURCE
    return Entity(role=role, reference=reference)


def query(resource_type: str, query_string: str) -> Entity:
    """A search of ``resource_type`` with its query string as sent (values included), recorded as
    ``<type>?<query>`` (R4 sev-1 forbids ``name`` beside ``query``, so the type goes in it)."""
    return Entity(role=Role.QUERY, query=f"{resource_type}?{query_string}")


def search_disclosure(
    resource_type: str, query_string: str, disclosed: Iterable[Mapping[str, Any]]
) -> list[Entity]:
    """What the AuditEvent of one page of a search names: the query, with the number of
    resources disclosed (in all and per type) as details, and the patients they are about, at
    most :data:`MAX_PATIENTS_PER_EVENT` (a detail counts the patients not named). Not every
    resource: they are found again by the query, and naming each made one event hundreds of KB.

    :param disclosed: every resource of the answer (matches and includes).
    """
    patients: dict[str, None] = {}
    by_type: dict[str, int] = {}
    for found in disclosed:
        kind = str(found.get("resourceType"))
        by_type[kind] = by_type.get(kind, 0) + 1
        for reference in patients_of(found):
            patients.setdefault(reference)
    details = [("disclosed", str(sum(by_type.values())))]
    details += [(f"disclosed {kind}", str(count)) for kind, count in sorted(by_type.items())]
    details.append(("patients", str(len(patients))))
    named = list(patients)[:MAX_PATIENTS_PER_EVENT]
    if len(patients) > len(named):
        details.append(("patients not named", str(len(patients) - len(named))))
    searched = Entity(
        role=Role.QUERY, query=f"{resource_type}?{query_string}", details=tuple(details)
    )
    return [searched, *(patient(reference) for reference in named)]


def patients_of(resource: Mapping[str, Any]) -> list[str]:
    """``Patient/<id>`` of a resource's ``subject``, ``patient`` or ``individual`` (a
    ResearchSubject) reference, of a Provenance's patient targets, or of a Group's members;
    empty when it names no patient."""
    references = [resource.get("subject"), resource.get("patient"), resource.get("individual")]
    targets = resource.get("target")
    if isinstance(targets, list):
        references += targets
    members = resource.get("member")
    if isinstance(members, list):
        references += [m.get("entity") for m in members if isinstance(m, Mapping)]
    found = []
    for reference in references:
        value = reference.get("reference") if isinstance(reference, Mapping) else None
        identity = patient_id(value) if isinstance(value, str) else None
        if identity is not None and f"Patient/{identity}" not in found:
            found.append(f"Patient/{identity}")
    return found


def audit_event(
    *,
    interaction: Interaction,
    action: Action,
    recorded: dt.datetime,
    requester: str,
    entities: Iterable[Entity],
    outcome: Outcome = Outcome.SUCCESS,
    outcome_description: str | None = None,
) -> Json:
    """An R4 AuditEvent of one client request.

    :param interaction: the client's interaction (``subtype``).
    :param action: what the request does.
    :param recorded: when it happened, timezone-aware.
    :param requester: the authenticated client's identity, or :data:`ANONYMOUS`.
    :param entities: the patient(s), the resources written or read, the query; duplicates are
        dropped.
    :param outcome: success or the kind of failure.
    :param outcome_description: what went wrong, for a failure: no patient data (the error's
        kind, never the request's content).
    :returns: the AuditEvent as JSON, without ``id``.
    :raises ValueError: ``recorded`` is naive.
    """
    if recorded.utcoffset() is None:
        raise ValueError("recorded must be timezone-aware")
    event: Json = {
        "resourceType": AUDIT_EVENT,
        "type": {"system": EVENT_TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": INTERACTION_SYSTEM, "code": interaction.value}],
        "action": action.value,
        "recorded": recorded.isoformat(),
        "outcome": outcome.value,
    }
    if outcome_description:
        event["outcomeDesc"] = outcome_description
    event["agent"] = [
        {
            "who": {"identifier": {"system": CLIENT_SYSTEM, "value": requester}},
            "requestor": True,
        },
        {"who": {"display": SOFTWARE}, "requestor": False},
    ]
    event["source"] = {"observer": {"display": SOFTWARE}}
    unique: dict[str, Json] = {}
    for entity in entities:
        unique.setdefault(repr(entity), entity.json())
    if unique:
        event["entity"] = list(unique.values())
    return event


def audit_entry(event: Json, *, full_url: str) -> Json:
    """A transaction entry creating ``event`` (``POST AuditEvent``)."""
    return {
        "fullUrl": full_url,
        "resource": event,
        "request": {"method": "POST", "url": AUDIT_EVENT},
    }


def audit_transaction(events: Iterable[tuple[Json, str]]) -> Json:
    """A transaction Bundle creating each ``(event, fullUrl)``: for events written on their own."""
    entries = [audit_entry(event, full_url=url) for event, url in events]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
