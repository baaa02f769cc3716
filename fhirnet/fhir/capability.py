"""What fhirnet's FHIR endpoint serves, and the CapabilityStatement that says so.

The tables here (:data:`READABLE_TYPES`, :data:`SEARCH_PARAMETERS`) are what the web layer
implements and what :func:`capability_statement` publishes, so the statement cannot list an
interaction or search parameter the server does not have. The search support of the types the
embedded store serves is the store's own description (:class:`StoredSearch`, which
:class:`fhirnet.adapters.store.SearchSupport` is), passed in by the web layer (the ``stored``
argument),
for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fhirnet.fhir.profiles import Catalog
from fhirnet.fhir.resources import FHIR_VERSION
from fhirnet.fhir.served import package_timestamp

#: Conformance resource types served by ``read`` and ``search-type``.
READABLE_TYPES = ("Questionnaire", "StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap")

#: ``POST [base]/QuestionnaireResponse/$validate``.
VALIDATE_OPERATION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
#: ``POST [base]/QuestionnaireResponse/$extract`` (SDC): the transaction a form gives, unwritten.
EXTRACT_OPERATION = "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract"
#: ``GET|POST [base]/Questionnaire/[id]/$populate`` (SDC): a patient's next form, pre-filled.
POPULATE_OPERATION = "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate"

#: ``POST [base]/QuestionnaireResponse/$submit``: fhirnet's own operation, the submission answered
#: with the DiagnosticReport.
SUBMIT_OPERATION = "https://fhirnet.dev/fhir/OperationDefinition/QuestionnaireResponse-submit"

#: Bulk Data Access (v2): the CapabilityStatement fhirnet instantiates, and its three ``export``
#: operations (``bulk-data.fsh`` of HL7/bulk-data: all named ``export``).
BULK_DATA_CAPABILITY = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
EXPORT_OPERATION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
PATIENT_EXPORT_OPERATION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
GROUP_EXPORT_OPERATION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"

#: Search result parameters the server honours besides the search parameters (FHIR R4 §3.1.1.5.6
#: ``_count``; ``_offset`` is what the ``next`` links of a searchset use; ``_summary`` and
#: ``_elements``, §3.1.1.5.8-9, :mod:`fhirnet.fhir.subsetting`).
RESULT_PARAMETERS = ("_count", "_offset", "_summary", "_elements")


@dataclass(frozen=True, kw_only=True)
class SearchParameter:
    """One supported search parameter of a resource type, as the CapabilityStatement lists it."""

    name: str
    type: str
    documentation: str
    #: The R4 SearchParameter's canonical URL, when the parameter is exactly that one.
    definition: str | None = None


class StoredSearch(Protocol):
    """How a type the embedded store holds can be searched, as the statement lists it: its
    parameters and ``_include`` values. A protocol, because the store publishes it and this
    layer may not import the store."""

    @property
    def parameters(self) -> Sequence[SearchParameter]:
        """The search parameters, in the order the statement lists them."""

    @property
    def includes(self) -> Sequence[str]:
        """The ``_include`` values honoured (``Type:parameter``)."""


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


def supported_profiles(catalog: Catalog) -> dict[str, list[str]]:
    """The profiles of the conformance package by the resource type they constrain: what
    fhirnet writes claims them (``meta.profile``), so the statement lists them as
    ``supportedProfile``."""
    found: dict[str, list[str]] = {}
    for definition in catalog.of_type("StructureDefinition"):
        if definition.get("kind") == "resource" and definition.get("derivation") == "constraint":
            found.setdefault(str(definition["type"]), []).append(str(definition["url"]))
    return {resource_type: sorted(urls) for resource_type, urls in sorted(found.items())}


def capability_statement(
    catalog: Catalog,
    *,
    software_version: str,
    stored: Mapping[str, StoredSearch] | None = None,
    security: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The CapabilityStatement of a fhirnet instance serving ``catalog``.

    ``implementation.url`` is left to the caller: it is the base URL requests arrive at, which
    only the web layer knows.

    :param catalog: the served conformance package; its date is the statement's date.
    :param software_version: ``fhirnet.__version__``.
    :param stored: with the embedded store, the types it serves by ``read`` and ``search-type``
        and how each is searched; ``None`` when the results go to an external FHIR server.
    :param security: ``rest.security`` (CORS, the SMART service, the scopes honoured), built
        by the web layer from its access settings.
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
                _search_parameter(parameter) for parameter in SEARCH_PARAMETERS[resource_type]
            ],
        }
        for resource_type in READABLE_TYPES
    ]
    resources.append(_questionnaire_response(stored))
    for resource_type, support in (stored or {}).items():
        if resource_type != "QuestionnaireResponse":
            resources.append(
                {
                    "type": resource_type,
                    "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
                    "documentation": _STORED_DOCUMENTATION,
                    **_stored(support),
                }
            )
    profiles = supported_profiles(catalog)
    listed = {resource["type"] for resource in resources}
    for resource_type in profiles.keys() - listed:  # written to an external FHIR server
        resources.append(
            {
                "type": resource_type,
                "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
                "documentation": "Written by fhirnet to the configured FHIR server; read it there.",
            }
        )
    for resource in resources:
        if resource["type"] in profiles:
            resource["supportedProfile"] = profiles[resource["type"]]
    _add_export_operations(resources)
    _add_populate_operation(resources)
    rest: dict[str, Any] = {"mode": "server"}
    if security is not None:
        rest["security"] = dict(security)
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
            "its profiles and terminology, validates QuestionnaireResponses to it, and assesses "
            "submitted ones: the results are written to "
            + ("its embedded store, served here." if stored else "the configured FHIR server.")
        ),
        "kind": "instance",
        "software": {"name": "fhirnet", "version": software_version},
        "implementation": {"description": "fhirnet GEP-NET imaging case-report form service"},
        "instantiates": [BULK_DATA_CAPABILITY],
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            rest
            | {
                "documentation": (
                    "JSON only (application/fhir+json; _format=json accepted). Searches are "
                    "strict: an unknown search parameter or a modifier is answered with 400 "
                    "unless the request sends 'Prefer: handling=lenient'. Results are paged "
                    "with _count and next links (conformance resources: all by default; stored "
                    "resources: 50, at most 1000, _sort by date or _lastUpdated). Searches "
                    "and reads take _summary (true: the R4 summary elements; text; data; "
                    "false; count: a search's total only) and _elements (top-level elements; "
                    "with id, meta and the mandatory ones); such resources are tagged "
                    "SUBSETTED (http://terminology.hl7.org/CodeSystem/v3-ObservationValue)."
                ),
                "resource": resources,
                "interaction": [
                    {"code": code, "documentation": documentation}
                    for code, documentation in _SYSTEM_INTERACTIONS
                ],
                "operation": [
                    {
                        "name": "export",
                        "definition": EXPORT_OPERATION,
                        "documentation": _EXPORT_DOCUMENTATION.format(level="system-level"),
                    }
                ],
            }
        ],
    }


_SUBMISSION = (
    "POST [base]/QuestionnaireResponse (create) assesses a completed or amended form with the "
    "patient's earlier forms and writes, in one transaction, the form, its Observations, the "
    "DiagnosticReport and a Provenance naming the form as its entity. Answered as a FHIR "
    "create: 201 when the form is new, 200 when it was there already (an identical "
    "resubmission writes nothing; an amendment updates it), Location = "
    "[base]/QuestionnaireResponse/{id}/_history/{vid}, ETag and Last-Modified of the form; the "
    "body is the stored form, or with 'Prefer: return=OperationOutcome' the issues (the "
    "computed category, the warnings, the DiagnosticReport's URL), or none with "
    "'return=minimal'. The results of a form: GET [base]/Provenance?entity="
    "QuestionnaireResponse/{id}&_include=Provenance:target:DiagnosticReport, or submit with "
    "$submit to get the DiagnosticReport as the answer. An amended form re-assesses the later "
    "exams."
)
_STORED_DOCUMENTATION = (
    "Written by fhirnet from the submitted forms (profiles in the conformance package); read "
    "and searched here, never written by clients."
)
_SYSTEM_INTERACTIONS = (
    (
        "transaction",
        "POST [base] with a transaction Bundle of QuestionnaireResponse POSTs: every form is "
        "validated first, then all results are written in one transaction.",
    ),
    (
        "batch",
        "POST [base] with a batch Bundle of QuestionnaireResponse POSTs: each form on its own.",
    ),
)


_EXPORT_DOCUMENTATION = (
    "Bulk Data Access {level} export (GET, Prefer: respond-async): 202 Accepted with a "
    "Content-Location to poll; the files are NDJSON, one resource type each. Needs a token "
    "with read scopes on the types exported. A bulk client registered as pseudonymized gets "
    "its study's data pseudonymized."
)
#: The ``export`` operations on resource types: where each is, and its definition.
_TYPE_EXPORTS = (
    ("Patient", PATIENT_EXPORT_OPERATION, "patient-level"),
    ("Group", GROUP_EXPORT_OPERATION, "group-level"),
)


_POPULATE_DOCUMENTATION = (
    "SDC $populate of the CRF (GET or POST, type or instance level): Parameters with subject "
    "(Patient) and optionally a context 'stream' (site, or a central reader) or 'author' in, "
    "Parameters with 'response' out: an in-progress QuestionnaireResponse, the patient's next "
    "follow-up pre-filled from the forms on file (baseline targets with label, location and "
    "nodal flag, non-targets, baseline and nadir dates, criteria, therapy type, modalities, new "
    "lesions already counted; sizes and statuses left to the reader), or a blank baseline for "
    "a patient with none; 'issues' (OperationOutcome) when something could not be filled. "
    "Needs read scopes on QuestionnaireResponse, DiagnosticReport and Observation."
)


def _add_populate_operation(resources: list[dict[str, Any]]) -> None:
    """SDC ``populate`` on the Questionnaire entry (always listed: a readable type)."""
    entry = next(r for r in resources if r["type"] == "Questionnaire")
    entry.setdefault("operation", []).append(
        {
            "name": "populate",
            "definition": POPULATE_OPERATION,
            "documentation": _POPULATE_DOCUMENTATION,
        }
    )


def _add_export_operations(resources: list[dict[str, Any]]) -> None:
    """The Patient- and Group-level ``export`` operations, on those types' entries (added when
    the statement lists no such type otherwise)."""
    for resource_type, definition, level in _TYPE_EXPORTS:
        entry = next((r for r in resources if r["type"] == resource_type), None)
        if entry is None:
            entry = {
                "type": resource_type,
                "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
            }
            resources.append(entry)
        entry.setdefault("operation", []).append(
            {
                "name": "export",
                "definition": definition,
                "documentation": _EXPORT_DOCUMENTATION.format(level=level),
            }
        )


def _search_parameter(parameter: SearchParameter) -> dict[str, Any]:
    rendered = {"name": parameter.name}
    if parameter.definition is not None:
        rendered["definition"] = parameter.definition
    return rendered | {"type": parameter.type, "documentation": parameter.documentation}


def _stored(support: StoredSearch) -> dict[str, Any]:
    """read and search-type of a stored type."""
    rendered: dict[str, Any] = {
        "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}],
        "versioning": "versioned",
        "readHistory": False,
        "updateCreate": False,
    }
    if support.includes:
        rendered["searchInclude"] = list(support.includes)
    rendered["searchParam"] = [_search_parameter(p) for p in support.parameters]
    return rendered


def _questionnaire_response(stored: Mapping[str, StoredSearch] | None) -> dict[str, Any]:
    served = stored is not None and "QuestionnaireResponse" in stored
    resource: dict[str, Any] = {
        "type": "QuestionnaireResponse",
        "profile": "http://hl7.org/fhir/StructureDefinition/QuestionnaireResponse",
        "documentation": _SUBMISSION
        + (" Stored forms are read and searched here." if served else ""),
    }
    interactions: dict[str, Any] = {"interaction": [{"code": "create"}]}
    if stored is not None and served:
        interactions = _stored(stored["QuestionnaireResponse"])
        interactions["interaction"].insert(0, {"code": "create"})
    resource |= interactions
    resource["operation"] = [
        {
            "name": "submit",
            "definition": SUBMIT_OPERATION,
            "documentation": (
                "The same submission as create, answered with the DiagnosticReport of the "
                "form's exam: 201/200, Location = the report, ETag and Last-Modified of the "
                "report; 'Prefer: return=OperationOutcome' or 'return=minimal' as for create. "
                "For EHRs that want the results in the answer."
            ),
        },
        {
            "name": "validate",
            "definition": VALIDATE_OPERATION,
            "documentation": (
                "Checks a QuestionnaireResponse against the case-report form. Answers 200 "
                "with an OperationOutcome without errors when it is valid, 422 with every "
                "problem found when it is not."
            ),
        },
        {
            "name": "extract",
            "definition": EXTRACT_OPERATION,
            "documentation": (
                "The transaction Bundle a submission of the form would write (the form, its "
                "Observations, DiagnosticReport and Provenance, and the re-assessed later "
                "exams), without writing it. The body is the QuestionnaireResponse or a "
                "Parameters resource with a 'questionnaire-response' parameter."
            ),
        },
    ]
    return resource
