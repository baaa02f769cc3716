"""The search parameters the embedded store supports, per resource type, and the index rows each
extracts from a resource when it is written.

Names, types and paths follow the R4 SearchParameter definitions
(http://hl7.org/fhir/R4/searchparameter-registry.html). ``_id`` and ``_lastUpdated`` work on every
type and are read from the ``resources`` table, not from the index. Everything else here is
indexed at write time as :class:`IndexRow` values:

=========== ============================ ============================ =========================
kind        ``system`` column            ``code`` column              ``low``/``high`` columns
=========== ============================ ============================ =========================
token       coding/identifier system     code / identifier value      --
reference   target resource type         target logical id            --
canonical   version (after ``|``)        URL (before ``|``)           --
date        --                           --                           range (µs, half-open)
=========== ============================ ============================ =========================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from fhirnet.adapters.store.dates import Range, parse_range, period_range
from fhirnet.adapters.store.resources import parse_reference
from fhirnet.ports import Json


class Kind(StrEnum):
    """The R4 search parameter types the store implements."""

    TOKEN = "token"  # noqa: S105 -- the FHIR search parameter type, not a secret
    REFERENCE = "reference"
    DATE = "date"
    #: R4 types ``questionnaire`` as a reference to a canonical; searched as ``url[|version]``.
    CANONICAL = "canonical"


@dataclass(frozen=True, kw_only=True)
class Parameter:
    """One search parameter of one resource type.

    :ivar paths: element names from the resource root, dot-separated; lists are flattened.
    :ivar targets: reference types the parameter accepts; empty means any type.
    :ivar implied_system: the code system of a ``code``-typed element (``status``), indexed as the
        token's system so that ``status=<system>|final`` works too.
    """

    name: str
    kind: Kind
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()
    implied_system: str | None = None


@dataclass(frozen=True, order=True)
class IndexRow:
    """One value of one search parameter of a stored resource (see the module table)."""

    param: str
    system: str | None = None
    code: str | None = None
    low: int | None = None
    high: int | None = None


#: Parameters with special handling, valid on every type (R4 search.html#all).
ID = "_id"
LAST_UPDATED = "_lastUpdated"
COMMON = (ID, LAST_UPDATED)

_EFFECTIVE = ("effectiveDateTime", "effectivePeriod", "effectiveInstant")


def _identifier() -> Parameter:
    return Parameter(name="identifier", kind=Kind.TOKEN, paths=("identifier",))


def _status(code_system: str) -> Parameter:
    return Parameter(
        name="status",
        kind=Kind.TOKEN,
        paths=("status",),
        implied_system=f"http://hl7.org/fhir/{code_system}",
    )


def _subject_and_patient(path: str = "subject") -> tuple[Parameter, ...]:
    # R4: `patient` is `<path>.where(resolve() is Patient)`.
    patient = Parameter(name="patient", kind=Kind.REFERENCE, paths=(path,), targets=("Patient",))
    if path != "subject":
        return (patient,)
    return (Parameter(name="subject", kind=Kind.REFERENCE, paths=(path,)), patient)


def _table(*parameters: Parameter) -> Mapping[str, Parameter]:
    return {parameter.name: parameter for parameter in parameters}


#: The indexed search parameters of each type; other types have ``_id`` and ``_lastUpdated`` only.
PARAMETERS: Mapping[str, Mapping[str, Parameter]] = {
    "Observation": _table(
        _identifier(),
        *_subject_and_patient(),
        Parameter(name="code", kind=Kind.TOKEN, paths=("code",)),
        Parameter(name="date", kind=Kind.DATE, paths=_EFFECTIVE),
        _status("observation-status"),
    ),
    "DiagnosticReport": _table(
        _identifier(),
        *_subject_and_patient(),
        Parameter(name="code", kind=Kind.TOKEN, paths=("code",)),
        Parameter(name="date", kind=Kind.DATE, paths=_EFFECTIVE),
        _status("diagnostic-report-status"),
        Parameter(name="result", kind=Kind.REFERENCE, paths=("result",), targets=("Observation",)),
    ),
    "QuestionnaireResponse": _table(
        _identifier(),
        *_subject_and_patient(),
        # R4 names this one `authored`; QuestionnaireResponse has no `date` parameter.
        Parameter(name="authored", kind=Kind.DATE, paths=("authored",)),
        _status("questionnaire-answers-status"),
        Parameter(name="questionnaire", kind=Kind.CANONICAL, paths=("questionnaire",)),
    ),
    "Provenance": _table(
        Parameter(name="target", kind=Kind.REFERENCE, paths=("target",)),
        # The form a Provenance names as its source: how a client finds the results of a form
        # (`Provenance?entity=QuestionnaireResponse/<id>&_include=Provenance:target`).
        Parameter(name="entity", kind=Kind.REFERENCE, paths=("entity.what",)),
        Parameter(name="patient", kind=Kind.REFERENCE, paths=("target",), targets=("Patient",)),
    ),
    "BodyStructure": _table(_identifier(), *_subject_and_patient("patient")),
    # fhirnet's audit trail (fhirnet.fhir.audit); R4 AuditEvent parameters, `agent` left out:
    # fhirnet's requester is an identifier, which no R4 AuditEvent parameter searches.
    "AuditEvent": _table(
        Parameter(name="date", kind=Kind.DATE, paths=("recorded",)),
        Parameter(name="entity", kind=Kind.REFERENCE, paths=("entity.what",)),
        Parameter(
            name="patient", kind=Kind.REFERENCE, paths=("entity.what",), targets=("Patient",)
        ),
        Parameter(name="type", kind=Kind.TOKEN, paths=("type",)),
        Parameter(name="subtype", kind=Kind.TOKEN, paths=("subtype",)),
        Parameter(
            name="action",
            kind=Kind.TOKEN,
            paths=("action",),
            implied_system="http://hl7.org/fhir/audit-event-action",
        ),
        Parameter(
            name="outcome",
            kind=Kind.TOKEN,
            paths=("outcome",),
            implied_system="http://hl7.org/fhir/audit-event-outcome",
        ),
    ),
    # Trials (fhirnet.fhir.studies), R4 parameters: a study by its identifier, a subject by its
    # subject number, study or patient (`individual` and its alias `patient`), the enrolment
    # Group by identifier or member.
    "ResearchStudy": _table(
        _identifier(),
        _status("research-study-status"),
    ),
    "ResearchSubject": _table(
        _identifier(),
        _status("research-subject-status"),
        Parameter(name="study", kind=Kind.REFERENCE, paths=("study",), targets=("ResearchStudy",)),
        Parameter(
            name="individual", kind=Kind.REFERENCE, paths=("individual",), targets=("Patient",)
        ),
        *_subject_and_patient("individual"),
    ),
    "Group": _table(
        _identifier(),
        Parameter(name="member", kind=Kind.REFERENCE, paths=("member.entity",)),
        Parameter(
            name="type",
            kind=Kind.TOKEN,
            paths=("type",),
            implied_system="http://hl7.org/fhir/group-type",
        ),
    ),
    "Patient": _table(_identifier()),
}


def parameters_of(resource_type: str) -> Mapping[str, Parameter]:
    """The indexed search parameters of ``resource_type`` (empty for types without any)."""
    return PARAMETERS.get(resource_type, {})


def index_rows(resource: Json, *, draft: DraftRows | None = None) -> list[IndexRow]:
    """The search index rows of ``resource``, sorted and without duplicates.

    Values that do not parse (a malformed date, a reference that is not ``Type/id``) are left out
    rather than refused: validating content is the service's job, the index only reflects it.

    :param draft: the rows :func:`draft_rows` computed on this content (the same objects) before
        its references were rewritten and its ``id`` and ``meta`` set; only what those could
        change is computed now.
    """
    if draft is None:
        return _sorted(
            _collect(resource, parameters_of(str(resource.get("resourceType"))).values())
        )
    rows = _collect(resource, draft.later)
    rows.update(draft.rows)
    for parameter, path, holder in draft.references:
        rows.update(_rows(parameter, path, holder))
    return _sorted(rows)


@dataclass(kw_only=True)
class DraftRows:
    """A resource's index rows computed before the store's write lock (:func:`draft_rows`).

    :ivar rows: the rows no rewriting, id or meta changes.
    :ivar later: parameters read from what the store assigns (``id``, ``meta``): computed under
        the lock.
    :ivar references: the Reference objects whose ``reference`` may still be rewritten, with
        their parameter: their rows are computed under the lock, from the rewritten string.
    """

    rows: set[IndexRow]
    later: list[Parameter]
    references: list[tuple[Parameter, str, dict[str, Any]]]


def draft_rows(resource: Json, needs: Callable[[str], bool]) -> DraftRows:
    """The rows of ``resource`` that are final before a write, and what is left for
    :func:`index_rows`: ``needs(reference)`` is true for every ``reference`` string the store may
    rewrite before storing; those, and parameters read from ``id`` or ``meta``, wait."""
    later, walks = _draft_plan(str(resource.get("resourceType")))
    draft = DraftRows(rows=set(), later=list(later), references=[])
    for parameter, path, steps in walks:
        is_reference = parameter.kind is Kind.REFERENCE
        for value in _walk(resource, steps):
            if is_reference and isinstance(value, dict):
                reference = value.get("reference")
                if isinstance(reference, str) and needs(reference):
                    draft.references.append((parameter, path, value))
                    continue
            draft.rows.update(_rows(parameter, path, value))
    return draft


@lru_cache(maxsize=256)
def _draft_plan(
    resource_type: str,
) -> tuple[tuple[Parameter, ...], tuple[tuple[Parameter, str, tuple[str, ...]], ...]]:
    """For :func:`draft_rows`, once per type: the parameters read from ``id`` or ``meta``, and
    every other parameter's paths with their steps."""
    later: list[Parameter] = []
    walks: list[tuple[Parameter, str, tuple[str, ...]]] = []
    for parameter in parameters_of(resource_type).values():
        if any(path.split(".", 1)[0] in ("id", "meta") for path in parameter.paths):
            later.append(parameter)
        else:
            walks.extend((parameter, path, tuple(path.split("."))) for path in parameter.paths)
    return tuple(later), tuple(walks)


def _collect(resource: Json, parameters: Iterable[Parameter]) -> set[IndexRow]:
    rows: set[IndexRow] = set()
    for parameter in parameters:
        for path in parameter.paths:
            for value in _walk(resource, path.split(".")):
                rows.update(_rows(parameter, path, value))
    return rows


def _sorted(rows: set[IndexRow]) -> list[IndexRow]:
    return sorted(rows, key=_sort_key)


def _sort_key(row: IndexRow) -> tuple[str, str, str, int, int]:
    return (row.param, row.system or "", row.code or "", row.low or 0, row.high or 0)


def _walk(value: Any, steps: Sequence[str]) -> Iterator[Any]:
    """The values at a dot-separated path, lists flattened at every step."""
    if isinstance(value, list):
        for item in value:
            yield from _walk(item, steps)
        return
    if not steps:
        yield value
        return
    if isinstance(value, dict) and steps[0] in value:
        yield from _walk(value[steps[0]], steps[1:])


def _rows(parameter: Parameter, path: str, value: Any) -> Iterator[IndexRow]:
    name = parameter.name
    if parameter.kind is Kind.TOKEN:
        for system, code in _tokens(value, parameter.implied_system):
            yield IndexRow(name, system=system, code=code)
    elif parameter.kind is Kind.REFERENCE:
        reference = value.get("reference") if isinstance(value, dict) else None
        target = parse_reference(reference) if isinstance(reference, str) else None
        if target is not None and (not parameter.targets or target.type in parameter.targets):
            yield IndexRow(name, system=target.type, code=target.id)
    elif parameter.kind is Kind.CANONICAL:
        if isinstance(value, str) and value:
            url, bar, version = value.partition("|")
            yield IndexRow(name, system=version if bar else None, code=url)
    else:
        found: Range | None
        if path.endswith("Period"):
            found = period_range(value)
        else:
            found = parse_range(value) if isinstance(value, str) else None
        if found is not None:
            yield IndexRow(name, low=found.low, high=found.high)


def _tokens(value: Any, implied_system: str | None) -> Iterator[tuple[str | None, str]]:
    """``(system, code)`` pairs of a code, Coding, CodeableConcept or Identifier."""
    if isinstance(value, str):
        yield implied_system, value
    elif isinstance(value, dict):
        if isinstance(value.get("coding"), list):  # CodeableConcept
            for coding in value["coding"]:
                yield from _tokens(coding, None)
            return
        code = value.get("code", value.get("value"))  # Coding, or Identifier
        system = value.get("system")
        if isinstance(code, str) and (system is None or isinstance(system, str)):
            yield system, code
