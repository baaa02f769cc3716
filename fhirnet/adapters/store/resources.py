"""Resource identity for the embedded store: R4 resource types, id syntax, and the references a
resource holds (found and rewritten wherever they are nested).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhirnet.ports import Json

#: Every concrete resource type of FHIR R4 4.0.1 (http://hl7.org/fhir/R4/resourcelist.html);
#: the abstract ``Resource`` and ``DomainResource`` are not storable.
_R4_RESOURCE_TYPES = """
    Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
    AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement
    CarePlan CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse
    ClinicalImpression CodeSystem Communication CommunicationRequest CompartmentDefinition
    Composition ConceptMap Condition Consent Contract Coverage CoverageEligibilityRequest
    CoverageEligibilityResponse DetectedIssue Device DeviceDefinition DeviceMetric DeviceRequest
    DeviceUseStatement DiagnosticReport DocumentManifest DocumentReference EffectEvidenceSynthesis
    Encounter Endpoint EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition Evidence
    EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag Goal
    GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy Immunization
    ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan Invoice
    Library Linkage List Location Measure MeasureReport Media Medication MedicationAdministration
    MedicationDispense MedicationKnowledge MedicationRequest MedicationStatement MedicinalProduct
    MedicinalProductAuthorization MedicinalProductContraindication MedicinalProductIndication
    MedicinalProductIngredient MedicinalProductInteraction MedicinalProductManufactured
    MedicinalProductPackaged MedicinalProductPharmaceutical MedicinalProductUndesirableEffect
    MessageDefinition MessageHeader MolecularSequence NamingSystem NutritionOrder Observation
    ObservationDefinition OperationDefinition OperationOutcome Organization OrganizationAffiliation
    Parameters Patient PaymentNotice PaymentReconciliation Person PlanDefinition Practitioner
    PractitionerRole Procedure Provenance Questionnaire QuestionnaireResponse RelatedPerson
    RequestGroup ResearchDefinition ResearchElementDefinition ResearchStudy ResearchSubject
    RiskAssessment RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot Specimen
    SpecimenDefinition StructureDefinition StructureMap Subscription Substance
    SubstanceNucleicAcid SubstancePolymer SubstanceProtein SubstanceReferenceInformation
    SubstanceSourceMaterial SubstanceSpecification SupplyDelivery SupplyRequest Task
    TerminologyCapabilities TestReport TestScript ValueSet VerificationResult VisionPrescription
"""
RESOURCE_TYPES = frozenset(_R4_RESOURCE_TYPES.split())

#: R4 ``id`` (http://hl7.org/fhir/R4/datatypes.html#id); ``re.ASCII`` is implied by the class.
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: A literal reference: relative ``Type/id``, or absolute ``<base>/Type/id``, either optionally
#: version-specific (``/_history/<version>``) (R4 references.html#literal).
_LITERAL = re.compile(
    r"(?:.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)


@dataclass(frozen=True, kw_only=True)
class Target:
    """The resource a literal reference points to, by type and logical id."""

    type: str
    id: str

    def __str__(self) -> str:
        return f"{self.type}/{self.id}"


def is_resource_type(name: object) -> bool:
    """Whether ``name`` is a concrete FHIR R4 resource type."""
    return isinstance(name, str) and name in RESOURCE_TYPES


def is_id(value: object) -> bool:
    """Whether ``value`` is a syntactically valid FHIR ``id``."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def parse_reference(reference: str) -> Target | None:
    """The target of a literal reference, or ``None`` for what names no stored resource here.

    A version-specific reference targets the resource, not the version. An absolute reference is
    taken by its last ``Type/id`` whatever its base: the store does not know its own base URL, so
    it cannot tell its resources from another server's (a documented deviation). Contained
    (``#id``), ``urn:`` and logical references return ``None``.
    """
    match = _LITERAL.fullmatch(reference)
    if match is None or match["type"] not in RESOURCE_TYPES:
        return None
    return Target(type=match["type"], id=match["id"])


def rewrite_references(value: Any, rewrite: Callable[[str], str]) -> Any:
    """A copy of ``value`` with every ``Reference.reference`` string replaced by ``rewrite(it)``.

    Only ``reference`` elements are rewritten, at any depth (``Provenance.target``,
    ``Provenance.entity.what``, ``DiagnosticReport.result``, extensions, contained resources...).
    R4 also asks servers to rewrite ``uri``-typed elements and narrative links that equal a
    ``fullUrl``; this store does not, because an ``Identifier.value`` holding a ``urn:uuid``
    (a common idempotency key) must stay as it is (a documented deviation).
    """
    draft = ReferenceDraft(value, lambda reference: True)
    draft.resolve(rewrite)
    return draft.value


#: ``isinstance`` with a tuple: ``dict | list`` would build a union on every evaluation and check
#: more slowly (it runs for every element of every resource a transaction writes).
_CONTAINERS = (dict, list)


class ReferenceDraft:
    """A private copy of a value whose ``Reference.reference`` strings are rewritten later.

    :func:`rewrite_references` in two steps, so that the costly one runs before the store takes
    its write lock: the constructor copies every container and remembers the objects holding a
    ``reference`` string for which ``needs`` is true; :meth:`resolve`, under the lock once the
    Bundle's ids are known, only replaces those strings, in the order the copy met them. With
    ``needs`` true for every string ``rewrite`` would change, the result is the same, errors
    included: a value nested too deeply to copy raises :class:`RecursionError` from
    :meth:`resolve`, after the references met before the depth ran out were rewritten.
    """

    def __init__(self, value: Any, needs: Callable[[str], bool]) -> None:
        self._needs = needs
        self._holders: list[dict[str, Any]] = []
        self._too_deep = False
        #: The copy: the value itself after :meth:`resolve`.
        self.value: Any = None
        try:
            self.value = self._copy(value)
        except RecursionError:
            self._too_deep = True

    @property
    def too_deep(self) -> bool:
        """Whether the value was nested too deeply to copy (:meth:`resolve` will raise)."""
        return self._too_deep

    @property
    def pending(self) -> int:
        """How many ``reference`` strings :meth:`resolve` will pass to ``rewrite``."""
        return len(self._holders)

    def resolve(self, rewrite: Callable[[str], str]) -> None:
        """Replace each remembered reference by ``rewrite(it)``; once only.

        :raises RecursionError: the value was nested too deeply to copy.
        """
        holders, self._holders = self._holders, []
        for holder in holders:
            holder["reference"] = rewrite(holder["reference"])
        if self._too_deep:
            raise RecursionError("the value is nested too deeply to copy")

    def _copy(self, value: Any) -> Any:
        # Leaves (most of a resource) are copied here, not passed to a call of their own.
        if isinstance(value, dict):
            copy: dict[str, Any] = {}
            for key, item in value.items():
                if isinstance(item, _CONTAINERS):
                    copy[key] = self._copy(item)
                else:
                    copy[key] = item
                    if key == "reference" and isinstance(item, str) and self._needs(item):
                        self._holders.append(copy)
            return copy
        if isinstance(value, list):
            return [self._copy(item) if isinstance(item, _CONTAINERS) else item for item in value]
        return value


#: ``json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))`` without
#: building an encoder on each call (``dumps`` does, for any argument but the defaults); the
#: encoder keeps no state between calls, so threads share it.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
#: ``json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))``, shared.
_SORTED_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def to_json(resource: Json) -> str:
    """The stored form of ``resource``: compact JSON text.

    :raises ValueError: ``resource`` holds something JSON cannot represent (NaN, a ``Decimal``,
        a lone surrogate...).
    """
    try:
        text = _ENCODER.encode(resource)
        text.encode("utf-8")  # lone surrogates (from "\\ud800" escapes) are not Unicode text
    except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
        raise ValueError(f"not representable as FHIR JSON: {error}") from None
    return text


def content_key(resource: Json) -> str:
    """A canonical text of ``resource`` without the server-managed ``meta.versionId`` and
    ``meta.lastUpdated``: equal keys mean an update would change nothing."""
    meta = resource.get("meta")
    if isinstance(meta, dict):
        rest = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
        resource = {**resource, "meta": rest} if rest else _without(resource, "meta")
    return _SORTED_ENCODER.encode(resource)


def _without(resource: Json, key: str) -> Json:
    return {k: v for k, v in resource.items() if k != key}
