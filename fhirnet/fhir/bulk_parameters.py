"""The kick-off parameters of a FHIR Bulk Data export (Bulk Data Access 2.0, export.md "Query
Parameters"), read from a ``GET`` query or a ``POST`` ``Parameters`` body into one frozen
:class:`ExportRequest`, every problem as an :class:`~fhirnet.fhir.outcome.Issue`.

Pure: the current time comes in (``_since`` in the future is refused). What is refused (400):
an ``_outputFormat`` other than NDJSON, an invalid or future ``_since``, an unknown ``_type``,
a ``_typeFilter`` that is not one query on one exported type or uses ``_include``, ``_sort``,
``_elements`` and the like (export.md forbids them there), ``patient`` at system level or in a
``GET`` query, an unknown parameter. With ``Prefer: handling=lenient`` an unknown type or
parameter is left out instead, and said in the manifest's ``error`` (:attr:`ExportRequest.notes`);
so is a ``_typeFilter`` on a type the export does not hold (an unknown type, or one ``_type``
leaves out): leaving it out cannot widen the export. A malformed ``_typeFilter`` on an exported
type stays refused even then: ignoring it would export more than the client asked for.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final
from urllib.parse import parse_qsl

from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.fhir.identifiers import patient_id
from fhirnet.fhir.outcome import Issue, IssueType, MalformedRequestError
from fhirnet.fhir.subsetting import Subsetting, subsetting

#: The types an export can hold: everything fhirnet stores but its own audit trail.
EXPORTABLE_TYPES: Final = tuple(t for t in STORED_TYPES if t != "AuditEvent")
#: ``_outputFormat`` values meaning NDJSON (export.md: the three SHALL be accepted).
OUTPUT_FORMATS: Final = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
NDJSON: Final = "application/fhir+ndjson"
#: ``includeAssociatedData`` values fhirnet honours: Provenance is an exported type already.
ASSOCIATED_DATA: Final = frozenset({"LatestProvenanceResources", "RelevantProvenanceResources"})
#: Search parameters a ``_typeFilter`` may not use (export.md: no includes, sorts, subsetting;
#: paging and the cursor are the exporter's).
FORBIDDEN_IN_FILTER: Final = frozenset(
    {"_include", "_revinclude", "_sort", "_elements", "_summary", "_count", "_cursor", "_total"}
)

TYPE = "_type"
SINCE = "_since"
TYPE_FILTER = "_typeFilter"
ELEMENTS = "_elements"
OUTPUT_FORMAT = "_outputFormat"
PATIENT = "patient"
INCLUDE_ASSOCIATED = "includeAssociatedData"
KNOWN = (TYPE, SINCE, TYPE_FILTER, ELEMENTS, OUTPUT_FORMAT, PATIENT, INCLUDE_ASSOCIATED)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?")


class Level(StrEnum):
    """Where the export was asked: the whole server, all patients, or one Group."""

    SYSTEM = "system"
    PATIENT = "patient"
    GROUP = "group"


@dataclass(frozen=True, kw_only=True)
class TypeFilter:
    """One ``_typeFilter``: a search of one type (its parameters as name/value pairs)."""

    resource_type: str
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """What a kick-off asked for, checked.

    :ivar types: the requested types in order, without duplicates; empty: every type.
    :ivar since: only resources updated after this instant (``meta.lastUpdated``).
    :ivar type_filters: per type, searches OR-ed together (none: the whole type).
    :ivar elements: ``_elements`` as ``(type or None, element)``; ``None``: whole resources.
    :ivar patients: ``Patient`` ids of the ``patient`` parameter (empty: not restricted).
    :ivar notes: what lenient handling left out, for the manifest's ``error`` file.
    :ivar lenient: ``Prefer: handling=lenient``: a type the level does not export is noted,
        not refused (:func:`~fhirnet.services.bulk_export.plan_export`).
    """

    level: Level
    group_id: str | None = None
    types: tuple[str, ...] = ()
    since: dt.datetime | None = None
    type_filters: tuple[TypeFilter, ...] = ()
    elements: tuple[tuple[str | None, str], ...] | None = None
    patients: tuple[str, ...] = ()
    output_format: str = NDJSON
    notes: tuple[Issue, ...] = ()
    lenient: bool = False

    def filters_of(self, resource_type: str) -> tuple[TypeFilter, ...]:
        """The ``_typeFilter`` searches of ``resource_type`` (empty: the whole type)."""
        return tuple(f for f in self.type_filters if f.resource_type == resource_type)

    def subsetting_of(self, resource_type: str) -> Subsetting:
        """What ``_elements`` keeps of ``resource_type``: the untyped names and its own."""
        if self.elements is None:
            return Subsetting()
        names = tuple(name for kind, name in self.elements if kind in (None, resource_type))
        return Subsetting(elements=names) if names else Subsetting()


def query_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A ``GET`` kick-off's query pairs, ``patient`` refused: it is a ``POST`` parameter."""
    found = list(pairs)
    if any(name == PATIENT for name, _ in found):
        raise _refused(
            IssueType.NOT_SUPPORTED,
            "patient is accepted in a POST Parameters body only (Bulk Data export.md).",
            PATIENT,
        )
    return found


def parameter_pairs(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A ``POST`` kick-off's ``Parameters`` body as name/value pairs (``patient`` as
    ``Patient/<id>``, from ``valueReference``).

    :raises MalformedRequestError: not a Parameters resource, or a parameter without a value of
        a type fhirnet reads (400).
    """
    if body.get("resourceType") != "Parameters":
        raise _refused(IssueType.INVALID, "A POST kick-off's body must be a Parameters resource.")
    entries = body.get("parameter", [])
    if not isinstance(entries, list):
        raise _refused(IssueType.STRUCTURE, "Parameters.parameter must be a list.")
    found: list[tuple[str, str]] = []
    for index, entry in enumerate(entries):
        where = f"Parameters.parameter[{index}]"
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str):
            raise _refused(IssueType.STRUCTURE, "A parameter needs a name.", where)
        value = _value_of(entry)
        if value is None:
            raise _refused(
                IssueType.STRUCTURE,
                f"Parameter {name!r} needs a value (valueString, valueInstant, valueCode, "
                "valueReference...).",
                where,
            )
        found.append((name, value))
    return found


def _value_of(entry: Mapping[str, Any]) -> str | None:
    for key, value in entry.items():
        if not key.startswith("value"):
            continue
        if isinstance(value, str):
            return value
        if key == "valueReference" and isinstance(value, Mapping):
            reference = value.get("reference")
            return reference if isinstance(reference, str) else None
    return None


def export_request(
    level: Level,
    pairs: Sequence[tuple[str, str]],
    *,
    now: dt.datetime,
    lenient: bool = False,
    group_id: str | None = None,
) -> ExportRequest:
    """Read a kick-off's parameters.

    :param pairs: name/value pairs (:func:`query_pairs` or :func:`parameter_pairs`), repeated
        names as given.
    :param now: the current time, timezone-aware (``_since`` may not be later).
    :param lenient: ``Prefer: handling=lenient``: unknown types and parameters are noted, not
        refused.
    :raises MalformedRequestError: every problem found (400).
    """
    problems: list[Issue] = []
    notes: list[Issue] = []

    def unsupported(message: str, expression: str) -> None:
        if lenient:
            notes.append(Issue.warning(IssueType.NOT_SUPPORTED, message, expression=expression))
        else:
            problems.append(Issue.error(IssueType.NOT_SUPPORTED, message, expression=expression))

    values: dict[str, list[str]] = {}
    for name, value in pairs:
        if name not in KNOWN:
            unsupported(f"Parameter {name!r} is not supported by this export.", name)
            continue
        values.setdefault(name, []).append(value)

    output_format = _output_format(values.get(OUTPUT_FORMAT, []), problems)
    since = _since(values.get(SINCE, []), now, problems)
    types: list[str] = []
    for value in values.get(TYPE, []):
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if name not in EXPORTABLE_TYPES:
                unsupported(
                    f"_type {name!r} is not exported here; exported types: "
                    f"{', '.join(EXPORTABLE_TYPES)}.",
                    TYPE,
                )
            elif name not in types:
                types.append(name)
    if values.get(TYPE) and not types and not problems:
        problems.append(
            Issue.error(
                IssueType.NOT_SUPPORTED, "No exported type is left in _type.", expression=TYPE
            )
        )
    filters = [
        _type_filter(value, types, problems, notes if lenient else None)
        for value in values.get(TYPE_FILTER, [])
    ]
    elements = _elements(values.get(ELEMENTS, []), problems)
    patients = _patients(level, values.get(PATIENT, []), problems)
    for value in values.get(INCLUDE_ASSOCIATED, []):
        for part in (p.strip() for p in value.split(",")):
            if part and part not in ASSOCIATED_DATA:
                unsupported(
                    f"includeAssociatedData {part!r} is not supported; supported: "
                    f"{', '.join(sorted(ASSOCIATED_DATA))} (Provenance is an exported type).",
                    INCLUDE_ASSOCIATED,
                )
    if problems:
        raise MalformedRequestError(problems)
    return ExportRequest(
        level=level,
        group_id=group_id,
        types=tuple(types),
        since=since,
        type_filters=tuple(f for f in filters if f is not None),
        elements=elements,
        patients=patients,
        output_format=output_format,
        notes=tuple(notes),
        lenient=lenient,
    )


def _output_format(values: list[str], problems: list[Issue]) -> str:
    if not values:
        return NDJSON
    if len(values) > 1 or values[0].strip() not in OUTPUT_FORMATS:
        problems.append(
            Issue.error(
                IssueType.NOT_SUPPORTED,
                f"_outputFormat must be one of {', '.join(sorted(OUTPUT_FORMATS))}.",
                expression=OUTPUT_FORMAT,
            )
        )
    return NDJSON


def parse_instant(text: str) -> dt.datetime | None:
    """A FHIR ``instant`` (or a date, as its UTC midnight), timezone-aware; ``None`` if it is
    neither or names a time without a zone (which instant forbids)."""
    text = text.strip()
    if not _INSTANT.fullmatch(text):
        return None
    try:
        if len(text) == 10:
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _since(values: list[str], now: dt.datetime, problems: list[Issue]) -> dt.datetime | None:
    if not values:
        return None
    found = parse_instant(values[0]) if len(values) == 1 else None
    if found is None:
        problems.append(
            Issue.error(
                IssueType.INVALID,
                "_since must be one FHIR instant, e.g. 2025-01-01T00:00:00Z.",
                expression=SINCE,
            )
        )
    elif found > now:
        problems.append(
            Issue.error(IssueType.INVALID, "_since lies in the future.", expression=SINCE)
        )
    return found


def _type_filter(
    value: str, types: list[str], problems: list[Issue], notes: list[Issue] | None
) -> TypeFilter | None:
    """One ``_typeFilter``; ``notes`` (lenient handling): where a filter on a type the export
    does not hold is noted instead of refused."""
    resource_type, mark, query = value.partition("?")
    outside = resource_type not in EXPORTABLE_TYPES or bool(types and resource_type not in types)
    if mark and _TYPE_NAME.fullmatch(resource_type) and outside and notes is not None:
        notes.append(
            Issue.warning(
                IssueType.NOT_SUPPORTED,
                f"_typeFilter {value!r} is left out: {resource_type} is not in this export.",
                expression=TYPE_FILTER,
            )
        )
        return None
    if not mark or resource_type not in EXPORTABLE_TYPES:
        problems.append(
            Issue.error(
                IssueType.INVALID,
                f"_typeFilter {value!r} must be <exported type>?<search parameters>.",
                expression=TYPE_FILTER,
            )
        )
        return None
    if types and resource_type not in types:
        problems.append(
            Issue.error(
                IssueType.INVALID,
                f"_typeFilter names {resource_type}, which _type does not ask for.",
                expression=TYPE_FILTER,
            )
        )
        return None
    params = tuple(parse_qsl(query, keep_blank_values=False))
    bad = sorted({name.partition(":")[0] for name, _ in params} & FORBIDDEN_IN_FILTER)
    if bad or not params:
        problems.append(
            Issue.error(
                IssueType.NOT_SUPPORTED,
                f"_typeFilter {value!r} needs search parameters and may not use "
                f"{', '.join(sorted(FORBIDDEN_IN_FILTER))}.",
                expression=TYPE_FILTER,
            )
        )
        return None
    return TypeFilter(resource_type=resource_type, params=params)


def _elements(
    values: list[str], problems: list[Issue]
) -> tuple[tuple[str | None, str], ...] | None:
    if not values:
        return None
    found: list[tuple[str | None, str]] = []
    for value in values:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            kind, dot, name = part.rpartition(".")
            if dot and not (_TYPE_NAME.fullmatch(kind) and kind in EXPORTABLE_TYPES):
                problems.append(
                    Issue.error(
                        IssueType.INVALID,
                        f"_elements {part!r}: {kind!r} is no exported type.",
                        expression=ELEMENTS,
                    )
                )
                continue
            if not _NAME.fullmatch(name):
                problems.append(
                    Issue.error(
                        IssueType.INVALID,
                        f"_elements {part!r} is no element name.",
                        expression=ELEMENTS,
                    )
                )
                continue
            if dot:
                try:
                    subsetting(kind, [], [name])
                except MalformedRequestError as error:
                    problems.extend(replace(i, expression=ELEMENTS) for i in error.issues)
                    continue
            found.append((kind or None, name))
    return tuple(found) if found else None


def _patients(level: Level, values: list[str], problems: list[Issue]) -> tuple[str, ...]:
    if not values:
        return ()
    if level is Level.SYSTEM:
        problems.append(
            Issue.error(
                IssueType.NOT_SUPPORTED,
                "patient is not accepted at system level: use Patient/$export or "
                "Group/[id]/$export.",
                expression=PATIENT,
            )
        )
        return ()
    found: list[str] = []
    for value in values:
        identity = patient_id(value)
        if identity is None:
            problems.append(
                Issue.error(
                    IssueType.INVALID,
                    f"patient {value!r} must be a reference Patient/<id>.",
                    expression=PATIENT,
                )
            )
        elif identity not in found:
            found.append(identity)
    return tuple(found)


def _refused(code: IssueType, message: str, expression: str | None = None) -> MalformedRequestError:
    return MalformedRequestError([Issue.error(code, message, expression=expression)])
