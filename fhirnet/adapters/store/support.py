"""What the embedded store's search supports, per resource type: the one public description that
the FHIR views (which parameters to pass on), the CapabilityStatement (``searchParam`` and
``searchInclude``) and the OpenAPI document read, so none of them can list a parameter the store
does not honour or miss one it does.

Built from the store's own tables: the indexed parameters of
:mod:`fhirnet.adapters.store.parameters`,
``_id``/``_lastUpdated``, and the result parameters of :mod:`fhirnet.adapters.store.search`. (A
module of
its own because ``search`` imports ``parameters``: the description needs both.)
"""

from __future__ import annotations

from dataclasses import dataclass

from fhirnet.adapters.store.parameters import ID, LAST_UPDATED, Kind, Parameter, parameters_of
from fhirnet.adapters.store.query import CURSOR, MAX_COUNT, RESULT_PARAMETERS
from fhirnet.fhir.capability import SearchParameter

#: ``_id`` and ``_lastUpdated``: read from the ``resources`` table, valid on every type.
COMMON_PARAMETERS = (
    SearchParameter(
        name=ID,
        type="token",
        definition="http://hl7.org/fhir/SearchParameter/Resource-id",
        documentation="Logical id.",
    ),
    SearchParameter(
        name=LAST_UPDATED,
        type="date",
        definition="http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
        documentation="When the current version was written; also a _sort key.",
    ),
)

_R4 = "http://hl7.org/fhir/SearchParameter/"
#: The R4 core SearchParameter each indexed parameter is (its ``definition`` in the
#: CapabilityStatement); a parameter without a row here fails the first description built.
DEFINITIONS = {
    ("Observation", "identifier"): _R4 + "clinical-identifier",
    ("Observation", "subject"): _R4 + "Observation-subject",
    ("Observation", "patient"): _R4 + "clinical-patient",
    ("Observation", "code"): _R4 + "clinical-code",
    ("Observation", "date"): _R4 + "clinical-date",
    ("Observation", "status"): _R4 + "Observation-status",
    ("DiagnosticReport", "identifier"): _R4 + "clinical-identifier",
    ("DiagnosticReport", "subject"): _R4 + "DiagnosticReport-subject",
    ("DiagnosticReport", "patient"): _R4 + "clinical-patient",
    ("DiagnosticReport", "code"): _R4 + "clinical-code",
    ("DiagnosticReport", "date"): _R4 + "clinical-date",
    ("DiagnosticReport", "status"): _R4 + "DiagnosticReport-status",
    ("DiagnosticReport", "result"): _R4 + "DiagnosticReport-result",
    ("QuestionnaireResponse", "identifier"): _R4 + "QuestionnaireResponse-identifier",
    ("QuestionnaireResponse", "subject"): _R4 + "QuestionnaireResponse-subject",
    ("QuestionnaireResponse", "patient"): _R4 + "QuestionnaireResponse-patient",
    ("QuestionnaireResponse", "authored"): _R4 + "QuestionnaireResponse-authored",
    ("QuestionnaireResponse", "status"): _R4 + "QuestionnaireResponse-status",
    ("QuestionnaireResponse", "questionnaire"): _R4 + "QuestionnaireResponse-questionnaire",
    ("Provenance", "target"): _R4 + "Provenance-target",
    ("Provenance", "entity"): _R4 + "Provenance-entity",
    ("Provenance", "patient"): _R4 + "Provenance-patient",
    ("BodyStructure", "identifier"): _R4 + "BodyStructure-identifier",
    ("BodyStructure", "patient"): _R4 + "BodyStructure-patient",
    ("AuditEvent", "date"): _R4 + "AuditEvent-date",
    ("AuditEvent", "entity"): _R4 + "AuditEvent-entity",
    ("AuditEvent", "patient"): _R4 + "AuditEvent-patient",
    ("AuditEvent", "type"): _R4 + "AuditEvent-type",
    ("AuditEvent", "subtype"): _R4 + "AuditEvent-subtype",
    ("AuditEvent", "action"): _R4 + "AuditEvent-action",
    ("AuditEvent", "outcome"): _R4 + "AuditEvent-outcome",
    ("Patient", "identifier"): _R4 + "Patient-identifier",
    ("ResearchStudy", "identifier"): _R4 + "ResearchStudy-identifier",
    ("ResearchStudy", "status"): _R4 + "ResearchStudy-status",
    ("ResearchSubject", "identifier"): _R4 + "ResearchSubject-identifier",
    ("ResearchSubject", "status"): _R4 + "ResearchSubject-status",
    ("ResearchSubject", "study"): _R4 + "ResearchSubject-study",
    ("ResearchSubject", "individual"): _R4 + "ResearchSubject-individual",
    ("ResearchSubject", "patient"): _R4 + "ResearchSubject-patient",
    ("Group", "identifier"): _R4 + "Group-identifier",
    ("Group", "member"): _R4 + "Group-member",
    ("Group", "type"): _R4 + "Group-type",
}

#: How a value of each kind of indexed parameter is written (store.search's module docstring).
_DOCUMENTATION = {
    Kind.TOKEN: "[system]|[code]; comma-separated values match any.",
    Kind.REFERENCE: "Type/id, id, or an absolute URL ending in Type/id.",
    Kind.DATE: "With prefixes eq ne gt lt ge le sa eb; also a _sort key (_sort=-date).",
    Kind.CANONICAL: "The canonical URL, or url|version.",
}

#: The result parameters of :data:`~fhirnet.adapters.store.search.RESULT_PARAMETERS`: FHIR type and
#: what
#: the store does with each (a new one without a row here fails the first description built).
_RESULTS = {
    "_count": ("number", f"Page size (larger values are lowered to {MAX_COUNT})."),
    "_sort": ("string", "date, _lastUpdated or _id; '-' for descending."),
    "_include": ("special", "e.g. DiagnosticReport:result."),
    "_total": ("token", "Accepted and ignored: the total is always given."),
    "_summary": (
        "token",
        "true (the R4 summary elements), text, data, count (the total only) or false; "
        "subsetted resources are tagged SUBSETTED.",
    ),
    "_elements": (
        "string",
        "Comma-separated top-level elements of the matches to return (with id, meta and the "
        "mandatory ones); tagged SUBSETTED.",
    ),
    CURSOR: ("string", "The page a next link points at."),
}


@dataclass(frozen=True, kw_only=True)
class SearchSupport:
    """How the embedded store searches one resource type.

    :ivar parameters: the search parameters, ``_id`` and ``_lastUpdated`` first, then the
        indexed ones in the order of the store's table.
    :ivar includes: the ``_include`` values the store honours (``Type:reference-parameter``).
    :ivar result_parameters: ``_count``, ``_sort``, ``_include``, ``_total``, ``_summary``,
        ``_elements``, ``_cursor``.
    """

    resource_type: str
    parameters: tuple[SearchParameter, ...]
    includes: tuple[str, ...]
    result_parameters: tuple[SearchParameter, ...]

    @property
    def accepted(self) -> frozenset[str]:
        """Every query parameter name the store's search of this type takes."""
        return frozenset(p.name for p in (*self.parameters, *self.result_parameters))


def search_support(resource_type: str) -> SearchSupport:
    """The description of how the store searches ``resource_type`` (a type without indexed
    parameters has ``_id`` and ``_lastUpdated`` only)."""
    indexed = parameters_of(resource_type).values()
    return SearchSupport(
        resource_type=resource_type,
        parameters=COMMON_PARAMETERS
        + tuple(_described(resource_type, parameter) for parameter in indexed),
        includes=tuple(
            f"{resource_type}:{parameter.name}"
            for parameter in indexed
            if parameter.kind is Kind.REFERENCE
        ),
        result_parameters=tuple(
            SearchParameter(name=name, type=_RESULTS[name][0], documentation=_RESULTS[name][1])
            for name in RESULT_PARAMETERS
        ),
    )


def _described(resource_type: str, parameter: Parameter) -> SearchParameter:
    # R4 types QuestionnaireResponse.questionnaire as a reference (to a canonical); the store
    # matches url or url|version.
    kind = Kind.REFERENCE if parameter.kind is Kind.CANONICAL else parameter.kind
    return SearchParameter(
        name=parameter.name,
        type=kind.value,
        definition=DEFINITIONS[(resource_type, parameter.name)],
        documentation=_DOCUMENTATION[parameter.kind],
    )
