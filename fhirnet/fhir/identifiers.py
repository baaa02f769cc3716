"""Business identifiers of what fhirnet writes, and how a transaction entry addresses a resource.

**Scheme.** Every resource fhirnet derives from a form has one identifier, stable across
resubmissions, under ``https://fhirnet.dev/fhir/sid/<kind>``, where ``<kind>`` is the id of the
resource's profile (``lesion-measurement``, ``response-assessment``, ...). Its value is built from
the patient (the id of ``QuestionnaireResponse.subject``), the exam (the value of the form's own
``QuestionnaireResponse.identifier``, which an amendment keeps) and, for lesion resources, the CRF
``lesion-id``, joined by ``/``::

    https://fhirnet.dev/fhir/sid/lesion                 <patient>/<lesion-id>
    https://fhirnet.dev/fhir/sid/lesion                 <patient>/<reader>/<lesion-id>  (central)
    https://fhirnet.dev/fhir/sid/lesion-measurement     <patient>/<exam>/<lesion-id>
    https://fhirnet.dev/fhir/sid/<kind>                 <patient>/<exam>       (every other kind)

``<exam>`` is the form identifier's value alone when its system is
``https://fhirnet.dev/fhir/sid/crf-submission`` (:data:`CRF_SUBMISSION`, the examples' and every
stored result's convention), and ``<system>/<value>`` for any other system: two forms of one
patient with the same value under different systems are different exams, and their results must
not overwrite each other (finding 4 of the security review). Each part is encoded on its own, so
an exam of another system has one part more than any exam of the default system and the two
never give the same value; results of default-system forms keep the identifiers they always had.

Each part is percent-encoded except the URI-unreserved characters (RFC 3986 §2.3), so ``/`` only
separates parts, the value never needs FHIR search escaping (``\\|``, ``\\,``, ``\\$``) and two
different keys never give the same value. The lesion BodyStructure is per patient, not per exam:
one per lesion and patient, reused across exams (``fsh/README.md`` decision 7, after mCODE). The
QuestionnaireResponse keeps the identifier the EHR gave it (R4 allows only one).

**Central reads.** A study's central reader defines lesions of their own: their T1 of a patient is
not the site's T1 nor another reader's (``services.streams``). Their lesion BodyStructures are
therefore keyed per reader, ``<patient>/<reader>/<lesion-id>`` with ``<reader>`` the reader's
reference (``Practitioner/<id>``, encoded as one part): three parts, so never equal to a site
lesion's two. Site lesions keep the identifiers they always had. Every other kind is keyed on
the exam (the form's identifier), which is each reader's own already.

**fullUrl.** ``urn:uuid:<uuid5>`` of ``system|value`` in fhirnet's namespace: the same key gives
the same fullUrl in every Bundle, so a transaction is a pure function of its input (P13).

**Addressing.** An entry is a conditional update ``PUT <Type>?identifier=<system>|<value>``
(FHIR R4 http.html "Conditional update": creates when nothing matches, replaces the one match),
which makes a resubmission create nothing and an amendment replace what it supersedes.
Two cases cannot use it, and are written ``PUT <Type>/<id>`` with ``id`` = that same uuid5
(update as create, R4 http.html "update"; ``CapabilityStatement.rest.resource.updateCreate``):

- **Provenance** has no ``identifier`` element in R4 (and no such search parameter); its key is
  ``https://fhirnet.dev/fhir/sid/assessment-provenance|<patient>/<exam>`` all the same;
- the types a server cannot search by ``identifier``: sekmet-fhir 0.1.1, the test server, defines
  no search parameter at all for QuestionnaireResponse and BodyStructure
  (``sekmet/fhir/search_params.py`` ``_DEFS`` has no entry for them, and a conditional update
  searches with ``strict=True``, ``service.py`` ``_single_match``), so the whole transaction fails
  with 400 "Unknown search parameter 'identifier'". :func:`client_id_types` reads this from a
  server's CapabilityStatement.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote

from fhirnet.fhir.datatypes import Json
from fhirnet.fhir.profiles import CANONICAL_BASE

#: Base of every identifier system of the project.
SID_BASE: Final = f"{CANONICAL_BASE}/sid"
#: The CRF's own lesion label (``lesion`` profile slice ``crfLesionId``, ``focus.identifier``).
CRF_LESION_ID: Final = f"{SID_BASE}/crf-lesion-id"
#: The EHR's identifier of a submitted form (``examples/questionnaire-responses/README.md``).
CRF_SUBMISSION: Final = f"{SID_BASE}/crf-submission"

#: Namespace of the uuid5 fullUrls and ids: uuid5(URL namespace, the identifier base).
NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, SID_BASE + "/")

#: Resource types fhirnet writes.
WRITTEN_TYPES: Final = (
    "QuestionnaireResponse",
    "BodyStructure",
    "Observation",
    "DiagnosticReport",
    "Provenance",
)
#: Types written as ``PUT <Type>/<id>`` on a server that supports conditional update by
#: ``identifier`` for every type that has one (FHIR R4 search parameters: QuestionnaireResponse,
#: BodyStructure, Observation and DiagnosticReport all define ``identifier``).
DEFAULT_CLIENT_ID_TYPES: Final = frozenset({"Provenance"})

_PATIENT: Final = re.compile(
    r"(?:https?://\S+/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)
_SEARCH_SPECIALS: Final = str.maketrans({"\\": "\\\\", "|": "\\|", ",": "\\,", "$": "\\$"})


class Kind(StrEnum):
    """What a derived resource is; the value is its profile id and its identifier system's tail."""

    LESION = "lesion"
    LESION_MEASUREMENT = "lesion-measurement"
    SUM_OF_DIAMETERS = "sum-of-diameters"
    RESPONSE_ASSESSMENT = "response-assessment"
    CANCER_DISEASE_STATUS = "cancer-disease-status"
    WHO_GRADE = "who-grade"
    EMBRYOLOGIC_ORIGIN = "embryologic-origin"
    PRRT_ELIGIBILITY = "prrt-eligibility"
    IMAGING_RECOMMENDATION = "imaging-recommendation"
    IMAGING_RESPONSE_REPORT = "imaging-response-report"
    ASSESSMENT_PROVENANCE = "assessment-provenance"

    @property
    def system(self) -> str:
        return f"{SID_BASE}/{self.value}"


@dataclass(frozen=True, kw_only=True)
class Identifier:
    """A FHIR Identifier reduced to what identifies: system and value."""

    system: str
    value: str

    def json(self) -> Json:
        return {"system": self.system, "value": self.value}

    @property
    def uuid(self) -> uuid.UUID:
        """uuid5 of ``system|value`` in fhirnet's namespace: the fullUrl and the client id."""
        return _uuid5(f"{self.system}|{self.value}")

    @property
    def full_url(self) -> str:
        return _urn(f"{self.system}|{self.value}")

    def search(self) -> str:
        """The ``identifier`` search value: FHIR search escaping (R4 search.html "Escaping
        Search Parameters") of system and value, then percent-encoding for the URL;
        the ``|`` between them stays literal."""

        def escaped(text: str) -> str:
            return quote(text.translate(_SEARCH_SPECIALS), safe=":/")

        return f"{escaped(self.system)}|{escaped(self.value)}"


@dataclass(frozen=True, kw_only=True)
class ExamKey:
    """The patient and exam that every identifier of one form's resources is built from.

    :ivar exam: the value of the form's identifier.
    :ivar exam_system: the system of the form's identifier (module docstring: part of the exam
        unless it is :data:`CRF_SUBMISSION`).
    :ivar reader: the central reader whose read the exam is (module docstring "Central reads"),
        ``None`` for the site's: scopes the lesion BodyStructures.
    """

    patient: str
    exam: str
    exam_system: str = CRF_SUBMISSION
    reader: str | None = None

    @classmethod
    def of(cls, patient: str, form_identifier: Identifier, *, reader: str | None = None) -> ExamKey:
        """The key of the exam of the form identified by ``form_identifier`` (of the central
        reader ``reader``, if any)."""
        return cls(
            patient=patient,
            exam=form_identifier.value,
            exam_system=form_identifier.system,
            reader=reader,
        )

    @property
    def _exam_parts(self) -> tuple[str, ...]:
        if self.exam_system == CRF_SUBMISSION:
            return (self.exam,)
        return (self.exam_system, self.exam)

    def identifier(self, kind: Kind, lesion_id: str | None = None) -> Identifier:
        """The business identifier of the resource of ``kind`` (see the module docstring).

        :param lesion_id: the CRF lesion-id, for ``lesion`` and ``lesion-measurement``.
        :raises ValueError: a lesion kind without ``lesion_id``, or another kind with one.
        """
        lesion_kinds = (Kind.LESION, Kind.LESION_MEASUREMENT)
        if (kind in lesion_kinds) != (lesion_id is not None):
            raise ValueError(f"{kind} {'needs' if kind in lesion_kinds else 'takes no'} lesion id")
        if kind is Kind.LESION and self.reader is not None:
            parts: tuple[str, ...] = (self.patient, self.reader, str(lesion_id))
        elif kind is Kind.LESION:
            parts = (self.patient, str(lesion_id))
        elif lesion_id is not None:
            parts = (self.patient, *self._exam_parts, lesion_id)
        else:
            parts = (self.patient, *self._exam_parts)
        return Identifier(system=kind.system, value="/".join(_part(p) for p in parts))


def _part(text: str) -> str:
    return quote(text, safe="-._~")


def patient_id(reference: str) -> str | None:
    """The Patient id of a literal reference ``Patient/<id>`` (relative, absolute or versioned);
    ``None`` for anything else (``urn:uuid:``, another type)."""
    match = _PATIENT.fullmatch(reference)
    return match[1] if match else None


def entry(
    resource: Json,
    identifier: Identifier,
    *,
    client_id_types: Collection[str] = DEFAULT_CLIENT_ID_TYPES,
) -> Json:
    """One transaction entry writing ``resource`` idempotently (see the module docstring).

    :param resource: the resource; its ``id`` is removed, or set to the uuid5 for a client-id
        type (the resource is modified).
    :param identifier: the business identifier that addresses it.
    :param client_id_types: types written ``PUT <Type>/<id>`` instead of a conditional update.
    :returns: ``{"fullUrl", "resource", "request"}``.
    """
    resource_type = str(resource["resourceType"])
    if resource_type in client_id_types:
        resource_id = str(identifier.uuid)
        _with_id(resource, resource_id)
        url = f"{resource_type}/{resource_id}"
    else:
        resource.pop("id", None)
        url = f"{resource_type}?identifier={identifier.search()}"
    return {
        "fullUrl": identifier.full_url,
        "resource": resource,
        "request": {"method": "PUT", "url": url},
    }


def _with_id(resource: Json, resource_id: str) -> None:
    """Put ``id`` right after ``resourceType``, where a reader of the Bundle looks for it."""
    resource_type = resource["resourceType"]
    rest = [(key, value) for key, value in resource.items() if key not in ("resourceType", "id")]
    resource.clear()
    resource["resourceType"] = resource_type
    resource["id"] = resource_id
    resource.update(rest)


def client_id_types(capability: Mapping[str, Any]) -> frozenset[str]:
    """The written types a server cannot update conditionally by ``identifier``, from its
    CapabilityStatement: those whose ``rest.resource`` entry lacks ``conditionalUpdate: true`` or
    an ``identifier`` search parameter, and Provenance always.

    For sekmet-fhir 0.1.1 this is ``{"Provenance", "QuestionnaireResponse", "BodyStructure"}``:
    it declares ``conditionalUpdate`` for every type it lists but lists neither of the two.

    :param capability: the server's ``/metadata`` as JSON.
    :returns: the argument for ``client_id_types`` of :func:`entry` and the Bundle builder.
    """
    usable: set[str] = set()
    for rest in _objects(capability.get("rest")):
        if rest.get("mode", "server") != "server":
            continue
        for resource in _objects(rest.get("resource")):
            names = {p.get("name") for p in _objects(resource.get("searchParam"))}
            if resource.get("conditionalUpdate") is True and "identifier" in names:
                usable.add(str(resource.get("type")))
    return frozenset(t for t in WRITTEN_TYPES if t not in usable) | DEFAULT_CLIENT_ID_TYPES


def _objects(value: object) -> Iterable[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


# A submission's Bundle asks for the same few uuid5s about 80 times (each entry's fullUrl, its
# references to the others); uuid5 is a pure function of the text, so each is computed once.
@functools.lru_cache(maxsize=4096)
def _uuid5(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, name)


@functools.lru_cache(maxsize=4096)
def _urn(name: str) -> str:
    return _uuid5(name).urn
