"""What fhirnet's FHIR endpoint serves, and the CapabilityStatement that says so.

The tables here (:data:`READABLE_TYPES`, :data:`SEARCH_PARAMETERS`) are what the web layer
implements and what :func:`capability_statement` publishes, so the statement cannot list an
interaction or search parameter the server does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhirnet.fhir.profiles import Catalog
from fhirnet.fhir.resources import FHIR_VERSION
from fhirnet.fhir.served import package_timestamp

#: Conformance resource types served by ``read`` and ``search-type``.
READABLE_TYPES = ("Questionnaire", "StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap")

#: The one operation: ``POST [base]/QuestionnaireResponse/$validate``.
VALIDATE_OPERATION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"

#: Search result parameters the server honours besides the search parameters (FHIR R4 §3.1.1.5.6
#: ``_count``; ``_offset`` is what the ``next`` links of a searchset use).
RESULT_PARAMETERS = ("_count", "_offset")


@dataclass(frozen=True, kw_only=True)
class SearchParameter:
    """One supported search parameter of a resource type, as the CapabilityStatement lists it."""

    name: str
    type: str
    definition: str
    documentation: str


def _parameters(prefix: str) -> tuple[SearchParameter, ...]:
    # R4 defines Questionnaire's url/version separately from the shared "conformance-*" ones.
    return (
        SearchParameter(
            name="_id",
            type="token",
            definition="http://hl7.org/fhir/SearchParameter/Resource-id",
            documentation="Logical id; comma-separated values match any.",
        ),
        SearchParameter(
            name="url",
            type="uri",
            definition=f"http://hl7.org/fhir/SearchParameter/{prefix}-url",
            documentation="Canonical URL, exact match; `url|version` also matches the version.",
        ),
        SearchParameter(
            name="version",
            type="token",
            definition=f"http://hl7.org/fhir/SearchParameter/{prefix}-version",
            documentation="Business version, exact match.",
        ),
    )


#: Supported search parameters per readable type. No modifiers, no chaining, no _include.
SEARCH_PARAMETERS: Mapping[str, tuple[SearchParameter, ...]] = {
    resource_type: _parameters(
        "Questionnaire" if resource_type == "Questionnaire" else "conformance"
    )
    for resource_type in READABLE_TYPES
}

_DOCUMENTATION = {
    "Questionnaire": (
        "The GEP-NET imaging case-report form. Served with every answer ValueSet contained and "
        "pre-expanded (answerValueSet = '#<id>'), so renderers need no terminology server."
    ),
    "StructureDefinition": "The profiles of what fhirnet writes, with differential and snapshot.",
    "ValueSet": "The form's and the profiles' ValueSets, as authored (compose, no expansion).",
    "CodeSystem": "fhirnet's own CodeSystems (complete).",
    "ConceptMap": "Maps between fhirnet's codes and standard terminologies.",
}


def capability_statement(catalog: Catalog, *, software_version: str) -> dict[str, Any]:
    """The CapabilityStatement of a fhirnet instance serving ``catalog``.

    ``implementation.url`` is left to the caller: it is the base URL requests arrive at, which
    only the web layer knows.

    :param catalog: the served conformance package; its date is the statement's date.
    :param software_version: ``fhirnet.__version__``.
    :returns: a JSON-ready R4 CapabilityStatement (kind ``instance``).
    """
    resources: list[dict[str, Any]] = [
        {
            "type": resource_type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
            "documentation": _DOCUMENTATION[resource_type],
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
            "searchParam": [
                {
                    "name": parameter.name,
                    "definition": parameter.definition,
                    "type": parameter.type,
                    "documentation": parameter.documentation,
                }
                for parameter in SEARCH_PARAMETERS[resource_type]
            ],
        }
        for resource_type in READABLE_TYPES
    ]
    resources.append(
        {
            "type": "QuestionnaireResponse",
            "profile": "http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse",
            "documentation": (
                "Answers to the case-report form. Only validated here, not stored: "
                "POST [base]/QuestionnaireResponse/$validate with the resource, or a Parameters "
                "resource with a 'resource' parameter, as body."
            ),
            "operation": [
                {
                    "name": "validate",
                    "definition": VALIDATE_OPERATION,
                    "documentation": (
                        "Checks a QuestionnaireResponse against the case-report form. Answers "
                        "200 with an OperationOutcome without errors when it is valid, 422 with "
                        "every problem found when it is not."
                    ),
                }
            ],
        }
    )
    return {
        "resourceType": "CapabilityStatement",
        "id": "fhirnet",
        "name": "FhirnetCapabilityStatement",
        "title": "fhirnet FHIR endpoint",
        "status": "active",
        "experimental": False,
        "date": package_timestamp(catalog.package),
        "publisher": "fhirnet",
        "description": (
            "Serves the GEP-NET imaging case-report form (Questionnaire "
            f"{catalog.questionnaire()['url']}|{catalog.questionnaire().get('version', '')}), "
            "its profiles and terminology, and validates QuestionnaireResponses to it."
        ),
        "kind": "instance",
        "software": {"name": "fhirnet", "version": software_version},
        "implementation": {"description": "fhirnet GEP-NET imaging case-report form service"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "JSON only (application/fhir+json; _format=json accepted). Searches are "
                    "strict: an unknown search parameter or a modifier is answered with 400 "
                    "unless the request sends 'Prefer: handling=lenient'. Results are paged "
                    "with _count (default: all) and next links."
                ),
                "resource": resources,
            }
        ],
    }
