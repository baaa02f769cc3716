"""Trials as FHIR R4 resources: a study's definition as a ResearchStudy with its enrolment Group,
and each enrolled subject as a ResearchSubject (``docs/trials.md`` "Studies and enrolment").

Pure: plain values in, JSON resources out, and back (``style.md`` P13). R4 names throughout
(R5 renames ``individual`` → ``subject``, ``assignedArm`` → ``assignedComparisonGroup``,
``status`` → ``progress`` and drops ``ResearchStudy.enrollment``;
``/work/shared/reference/trials.md`` §4.2).

**Mapping** (profiles ``fhirnet-research-study``, ``fhirnet-research-subject``,
``enrolment-group`` in ``fsh/input/fsh/studies.fsh``):

=================== ============================================================================
study ``studyId``   ``ResearchStudy.identifier`` under :data:`STUDY_SYSTEM`
``title``           ``title``; ``status`` is always ``active``
``arms``            ``arm``: ``name`` = the arm code (what ``ResearchSubject.assignedArm`` holds,
                    SDTM ARMCD), ``description`` = its name (SDTM ARM)
``sites``           ``site``: logical references (``identifier`` under :func:`site_system`,
                    ``display`` = the name); no Location resource is written
``criteria``        extension ``study-criteria`` (``valueCode``)
``options``         extension ``study-options``: one sub-extension per option given
``readers``         extension ``study-reader`` (0..*): ``reader`` (Reference to a
                    Practitioner or PractitionerRole), ``role`` (code), ``label`` (string)
``schedule``        extension ``study-visit`` (0..*): ``visit``, ``day``, ``windowDays``
enrolment           ``enrollment`` → the study's Group (``type`` person, ``actual`` true,
                    identifier :data:`GROUP_SYSTEM` | studyId): one ``member`` per enrolled
                    patient, ``period.start`` = reference date; withdrawn members are kept,
                    ``inactive`` with ``period.end``
subject             ``ResearchSubject``: ``identifier`` = the trial's subject number under the
                    per-study :func:`subject_system` (never a hospital identifier),
                    ``individual`` = the Patient, ``study``, ``assignedArm``, ``period.start`` =
                    reference date, ``period.end`` = withdrawal date, extension
                    ``research-subject-site`` (``valueIdentifier``)
adjudication        extension ``research-subject-adjudication`` on the ResearchSubject:
                    ``accepted`` (the central reader's label), ``reader``, ``by``, ``recorded``
=================== ============================================================================

Why extensions and not a PlanDefinition (``ResearchStudy.protocol``, the Vulcan Schedule of
Activities) for the schedule: the schedule here is three numbers per visit that the endpoint
derivation reads; one resource keeps the study one conditional update, read back whole, and a
Vulcan PlanDefinition (visit actions with timing) can be derived from these extensions later.

Why the adjudication is an extension of the ResearchSubject and not a Provenance or an
Observation: it is a fact about the subject's place in the trial (which central read counts),
read with the subject by every endpoint computation and changed by the same ``u`` on the same
resource; the ResearchSubject's version history keeps earlier decisions and the AuditEvent of
the write records the request. A Provenance would need a target that is the decision itself,
and an Observation would be patient data read through a second search.

One module, both directions (about 520 lines): every element above is written by one function and
read back by its twin next to it, so a change of the mapping is made and reviewed in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from fhirnet.criteria.models import Criteria
from fhirnet.errors import FhirnetError
from fhirnet.fhir.datatypes import Json
from fhirnet.fhir.identifiers import SID_BASE, Identifier, patient_id
from fhirnet.fhir.profiles import CANONICAL_BASE

RESEARCH_STUDY: Final = "ResearchStudy"
RESEARCH_SUBJECT: Final = "ResearchSubject"
GROUP: Final = "Group"
#: What the study use cases write; the embedded store holds and serves them.
STUDY_TYPES: Final = (RESEARCH_STUDY, RESEARCH_SUBJECT, GROUP)

#: The system of a study's identifier (its ``studyId``).
STUDY_SYSTEM: Final = f"{SID_BASE}/research-study"
#: The system of a study's enrolment Group's identifier (value: the ``studyId``).
GROUP_SYSTEM: Final = f"{SID_BASE}/enrolment-group"

_SD: Final = f"{CANONICAL_BASE}/StructureDefinition"
STUDY_PROFILE: Final = f"{_SD}/fhirnet-research-study"
SUBJECT_PROFILE: Final = f"{_SD}/fhirnet-research-subject"
GROUP_PROFILE: Final = f"{_SD}/enrolment-group"
CRITERIA_EXTENSION: Final = f"{_SD}/study-criteria"
OPTIONS_EXTENSION: Final = f"{_SD}/study-options"
READER_EXTENSION: Final = f"{_SD}/study-reader"
VISIT_EXTENSION: Final = f"{_SD}/study-visit"
SITE_EXTENSION: Final = f"{_SD}/research-subject-site"
ADJUDICATION_EXTENSION: Final = f"{_SD}/research-subject-adjudication"

#: A study or subject id: FHIR ``id`` characters, so it is safe in a URL and an identifier system.
ID_PATTERN: Final = r"[A-Za-z0-9\-.]{1,64}"


def subject_system(study_id: str) -> str:
    """The system of the subject numbers of one study: numbers are unique per study only."""
    return f"{SID_BASE}/research-study/{study_id}/subject"


def site_system(study_id: str) -> str:
    """The system of the site ids of one study."""
    return f"{SID_BASE}/research-study/{study_id}/site"


def study_identifier(study_id: str) -> Identifier:
    return Identifier(system=STUDY_SYSTEM, value=study_id)


def group_identifier(study_id: str) -> Identifier:
    return Identifier(system=GROUP_SYSTEM, value=study_id)


def subject_identifier(study_id: str, subject_id: str) -> Identifier:
    return Identifier(system=subject_system(study_id), value=subject_id)


class SubjectStatus(StrEnum):
    """R4 ``research-subject-status`` (required binding of ``ResearchSubject.status``)."""

    CANDIDATE = "candidate"
    ELIGIBLE = "eligible"
    FOLLOW_UP = "follow-up"
    INELIGIBLE = "ineligible"
    NOT_REGISTERED = "not-registered"
    OFF_STUDY = "off-study"
    ON_STUDY = "on-study"
    ON_STUDY_INTERVENTION = "on-study-intervention"
    ON_STUDY_OBSERVATION = "on-study-observation"
    PENDING_ON_STUDY = "pending-on-study"
    POTENTIAL_CANDIDATE = "potential-candidate"
    SCREENING = "screening"
    WITHDRAWN = "withdrawn"


class ReaderRole(StrEnum):
    """How a reader reads the study's images: blinded central review, the site's own reading,
    or the adjudicator between two central readers."""

    CENTRAL = "central"
    LOCAL = "local"
    ADJUDICATOR = "adjudicator"


#: The endpoint options a study may fix (``docs/trials.md`` "Request"), by JSON name, with the
#: type of their value: ``valueBoolean`` or ``valueInteger``.
OPTION_TYPES: Final[Mapping[str, type]] = {
    "confirmationRequired": bool,
    "confirmationMinDays": int,
    "sdMinDays": int,
    "maxNeBetween": int,
    "acceptSdBetween": bool,
}


@dataclass(frozen=True, kw_only=True)
class Arm:
    code: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Site:
    id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class Reader:
    """A reader of the study: ``reference`` is ``Practitioner/<id>`` or
    ``PractitionerRole/<id>``."""

    reference: str
    role: ReaderRole
    label: str


@dataclass(frozen=True, kw_only=True)
class Visit:
    visit: str
    day: int
    window_days: int


@dataclass(frozen=True, kw_only=True)
class Study:
    """A study's definition, as ``PUT /api/v1/studies/{studyId}`` takes it."""

    study_id: str
    title: str
    criteria: Criteria
    options: Mapping[str, bool | int] = field(default_factory=dict)
    arms: tuple[Arm, ...] = ()
    sites: tuple[Site, ...] = ()
    readers: tuple[Reader, ...] = ()
    schedule: tuple[Visit, ...] = ()

    def arm_codes(self) -> set[str]:
        return {arm.code for arm in self.arms}

    def site_ids(self) -> set[str]:
        return {site.id for site in self.sites}


@dataclass(frozen=True, kw_only=True)
class Adjudication:
    """The central read an adjudicator accepted for a subject whose two central readers
    disagreed (``docs/trials.md`` "Adjudication"): the accepted reader's ``label`` and
    ``reader`` reference, who decided (``by``) and when (``recorded``, with its timezone)."""

    label: str
    reader: str
    by: str
    recorded: dt.datetime


@dataclass(frozen=True, kw_only=True)
class Enrolment:
    """One subject of one study, as ``PUT /api/v1/studies/{studyId}/subjects/{subjectId}`` takes
    it (``withdrawal_date`` is set by a withdrawal only). ``patient`` is the Patient id."""

    study_id: str
    subject_id: str
    patient: str
    site: str
    arm: str
    reference_date: dt.date
    status: SubjectStatus = SubjectStatus.ON_STUDY
    withdrawal_date: dt.date | None = None
    adjudication: Adjudication | None = None


def study_client_id_types(capability: Mapping[str, Any]) -> frozenset[str]:
    """The study types a server cannot update conditionally by ``identifier``, from its
    CapabilityStatement (as :func:`fhirnet.fhir.identifiers.client_id_types` for the form's
    types): they are written ``PUT Type/<uuid5 of the identifier>`` and read back by that id.
    sekmet-fhir 0.1.1 defines no search parameter for ResearchStudy and ResearchSubject."""
    usable: set[str] = set()
    rests = capability.get("rest")
    for rest in rests if isinstance(rests, list) else []:
        if not isinstance(rest, Mapping) or rest.get("mode", "server") != "server":
            continue
        resources = rest.get("resource")
        for resource in resources if isinstance(resources, list) else []:
            if not isinstance(resource, Mapping):
                continue
            params = resource.get("searchParam")
            names = (
                {p.get("name") for p in params if isinstance(p, Mapping)}
                if isinstance(params, list)
                else set()
            )
            if resource.get("conditionalUpdate") is True and "identifier" in names:
                usable.add(str(resource.get("type")))
    return frozenset(t for t in STUDY_TYPES if t not in usable)


# --- to FHIR ---


def research_study(study: Study, *, enrolment_group: str) -> Json:
    """The ResearchStudy of ``study``, without ``id``.

    :param enrolment_group: the reference of its Group (a ``urn:uuid:`` fullUrl in a
        transaction, or ``Group/<id>``).
    """
    extensions: list[Json] = [{"url": CRITERIA_EXTENSION, "valueCode": study.criteria.value}]
    if study.options:
        extensions.append(
            {
                "url": OPTIONS_EXTENSION,
                "extension": [
                    {"url": name, _option_key(name): value} for name, value in study.options.items()
                ],
            }
        )
    extensions += [
        {
            "url": READER_EXTENSION,
            "extension": [
                {"url": "reader", "valueReference": {"reference": reader.reference}},
                {"url": "role", "valueCode": reader.role.value},
                {"url": "label", "valueString": reader.label},
            ],
        }
        for reader in study.readers
    ]
    extensions += [
        {
            "url": VISIT_EXTENSION,
            "extension": [
                {"url": "visit", "valueString": visit.visit},
                {"url": "day", "valueInteger": visit.day},
                {"url": "windowDays", "valueInteger": visit.window_days},
            ],
        }
        for visit in study.schedule
    ]
    resource: Json = {
        "resourceType": RESEARCH_STUDY,
        "meta": {"profile": [STUDY_PROFILE]},
        "extension": extensions,
        "identifier": [study_identifier(study.study_id).json()],
        "title": study.title,
        "status": "active",
        "enrollment": [{"reference": enrolment_group}],
    }
    if study.sites:
        system = site_system(study.study_id)
        resource["site"] = [
            {"identifier": {"system": system, "value": site.id}, "display": site.name}
            for site in study.sites
        ]
    if study.arms:
        resource["arm"] = [{"name": arm.code, "description": arm.name} for arm in study.arms]
    return resource


def _option_key(name: str) -> str:
    return "valueBoolean" if OPTION_TYPES[name] is bool else "valueInteger"


def enrolment_group(study_id: str, members: Sequence[Json]) -> Json:
    """The enrolment Group of a study, without ``id``, with ``members`` as given."""
    group: Json = {
        "resourceType": GROUP,
        "meta": {"profile": [GROUP_PROFILE]},
        "identifier": [group_identifier(study_id).json()],
        "type": "person",
        "actual": True,
        "name": f"Enrolment of study {study_id}",
        "quantity": len(members),
    }
    if members:
        group["member"] = list(members)
    return group


def group_member(enrolment: Enrolment) -> Json:
    """The Group ``member`` of a subject: inactive, with the end of its period, once withdrawn."""
    period: Json = {"start": enrolment.reference_date.isoformat()}
    if enrolment.withdrawal_date is not None:
        period["end"] = enrolment.withdrawal_date.isoformat()
    member: Json = {"entity": {"reference": f"Patient/{enrolment.patient}"}, "period": period}
    if enrolment.status is SubjectStatus.WITHDRAWN:
        member["inactive"] = True
    return member


def research_subject(enrolment: Enrolment, *, study_reference: str) -> Json:
    """The ResearchSubject of ``enrolment``, without ``id``.

    :param study_reference: ``ResearchStudy/<id>`` of the stored study.
    """
    period: Json = {"start": enrolment.reference_date.isoformat()}
    if enrolment.withdrawal_date is not None:
        period["end"] = enrolment.withdrawal_date.isoformat()
    site = {"system": site_system(enrolment.study_id), "value": enrolment.site}
    extensions: list[Json] = [{"url": SITE_EXTENSION, "valueIdentifier": site}]
    if enrolment.adjudication is not None:
        extensions.append(adjudication_extension(enrolment.adjudication))
    return {
        "resourceType": RESEARCH_SUBJECT,
        "meta": {"profile": [SUBJECT_PROFILE]},
        "extension": extensions,
        "identifier": [subject_identifier(enrolment.study_id, enrolment.subject_id).json()],
        "status": enrolment.status.value,
        "period": period,
        "study": {"reference": study_reference},
        "individual": {"reference": f"Patient/{enrolment.patient}"},
        "assignedArm": enrolment.arm,
    }


def adjudication_extension(adjudication: Adjudication) -> Json:
    """The ``research-subject-adjudication`` extension of a ResearchSubject: ``accepted``
    (the reader's label), ``reader`` and ``by`` (References), ``recorded`` (dateTime)."""
    return {
        "url": ADJUDICATION_EXTENSION,
        "extension": [
            {"url": "accepted", "valueString": adjudication.label},
            {"url": "reader", "valueReference": {"reference": adjudication.reader}},
            {"url": "by", "valueReference": {"reference": adjudication.by}},
            {"url": "recorded", "valueDateTime": adjudication.recorded.isoformat()},
        ],
    }


# --- from FHIR ---


class UnreadableStudyError(FhirnetError, ValueError):
    """A stored resource that is not what fhirnet writes (edited by hand on the server)."""


def study_of(resource: Mapping[str, Any], study_id: str) -> Study:
    """Read back the :class:`Study` a stored ResearchStudy holds.

    :raises UnreadableStudyError: it lacks what :func:`research_study` writes.
    """
    try:
        options: dict[str, bool | int] = {}
        readers: list[Reader] = []
        schedule: list[Visit] = []
        criteria: Criteria | None = None
        for extension in resource.get("extension", []):
            url = extension["url"]
            if url == CRITERIA_EXTENSION:
                criteria = Criteria(extension["valueCode"])
            elif url == OPTIONS_EXTENSION:
                for option in extension["extension"]:
                    name = option["url"]
                    options[name] = option[_option_key(name)]
            elif url == READER_EXTENSION:
                parts = _parts(extension)
                readers.append(
                    Reader(
                        reference=parts["reader"]["reference"],
                        role=ReaderRole(parts["role"]),
                        label=parts["label"],
                    )
                )
            elif url == VISIT_EXTENSION:
                parts = _parts(extension)
                schedule.append(
                    Visit(visit=parts["visit"], day=parts["day"], window_days=parts["windowDays"])
                )
        if criteria is None:
            raise UnreadableStudyError("ResearchStudy without study-criteria")
        return Study(
            study_id=study_id,
            title=str(resource["title"]),
            criteria=criteria,
            options=options,
            arms=tuple(
                Arm(code=arm["name"], name=arm.get("description", arm["name"]))
                for arm in resource.get("arm", [])
            ),
            sites=tuple(
                Site(id=site["identifier"]["value"], name=site.get("display", ""))
                for site in resource.get("site", [])
            ),
            readers=tuple(readers),
            schedule=tuple(schedule),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise UnreadableStudyError(f"unreadable ResearchStudy: {error!r}") from None


def _parts(extension: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in extension["extension"]:
        value = next(v for k, v in part.items() if k.startswith("value"))
        found[part["url"]] = value
    return found


def enrolment_of(resource: Mapping[str, Any], study_id: str, subject_id: str) -> Enrolment:
    """Read back the :class:`Enrolment` a stored ResearchSubject holds.

    :raises UnreadableStudyError: it lacks what :func:`research_subject` writes.
    """
    try:
        patient = patient_id(resource["individual"]["reference"])
        if patient is None:
            raise UnreadableStudyError("ResearchSubject.individual is not a Patient")
        site = next(
            e["valueIdentifier"]["value"]
            for e in resource.get("extension", [])
            if e.get("url") == SITE_EXTENSION
        )
        period = resource.get("period", {})
        end = period.get("end")
        adjudication = None
        for extension in resource.get("extension", []):
            if extension.get("url") == ADJUDICATION_EXTENSION:
                parts = _parts(extension)
                adjudication = Adjudication(
                    label=parts["accepted"],
                    reader=parts["reader"]["reference"],
                    by=parts["by"]["reference"],
                    recorded=dt.datetime.fromisoformat(parts["recorded"]),
                )
        return Enrolment(
            study_id=study_id,
            subject_id=subject_id,
            patient=patient,
            site=site,
            arm=resource["assignedArm"],
            reference_date=dt.date.fromisoformat(period["start"]),
            status=SubjectStatus(resource["status"]),
            withdrawal_date=dt.date.fromisoformat(end) if end else None,
            adjudication=adjudication,
        )
    except (KeyError, TypeError, ValueError, StopIteration) as error:
        raise UnreadableStudyError(f"unreadable ResearchSubject: {error!r}") from None


def subject_patient(resource: Mapping[str, Any]) -> str | None:
    """The Patient id of a ResearchSubject's ``individual``, if it is one."""
    individual = resource.get("individual")
    reference = individual.get("reference") if isinstance(individual, Mapping) else None
    return patient_id(reference) if isinstance(reference, str) else None


def subject_number(resource: Mapping[str, Any], study_id: str) -> str | None:
    """The subject number of a ResearchSubject in ``study_id``, if it has one."""
    system = subject_system(study_id)
    for identifier in resource.get("identifier", []):
        if isinstance(identifier, Mapping) and identifier.get("system") == system:
            value = identifier.get("value")
            return value if isinstance(value, str) else None
    return None


def same_content(stored: Mapping[str, Any] | None, built: Mapping[str, Any]) -> bool:
    """Whether a stored resource already holds ``built``: equal but for ``id`` and the server's
    ``meta`` (versionId, lastUpdated; the profile is compared)."""
    if stored is None:
        return False

    def content(resource: Mapping[str, Any]) -> dict[str, Any]:
        found = {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}
        meta = resource.get("meta")
        profiles = meta.get("profile") if isinstance(meta, Mapping) else None
        found["meta.profile"] = profiles
        return found

    return content(stored) == content(built)
