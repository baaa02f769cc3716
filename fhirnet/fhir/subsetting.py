"""``_summary`` and ``_elements``: the parts of a resource a client asked for (FHIR R4
search.html §3.1.1.5.8 and §3.1.1.5.9, http.html#read), marked ``SUBSETTED``.

* ``_summary=true``: the elements R4 marks ``isSummary``, at every level (a summary element's
  own elements are summarised in turn: ``Observation.component`` keeps ``code`` and ``value[x]``),
  plus ``id``, ``meta`` and the mandatory elements; the flags are those of the R4B models
  (``summary_element_property``), which R4B took unchanged from R4 for the types fhirnet serves.
* ``_summary=text``: ``text``, ``id``, ``meta`` and the mandatory top-level elements.
* ``_summary=data``: everything but ``text``.
* ``_summary=count``: a search's total only, no entries (the search does that; a read refuses it).
* ``_summary=false``: everything (the default).
* ``_elements=a,b``: those top-level elements (a choice element by its name without type:
  ``value``), plus ``resourceType``, ``id``, ``meta`` and the mandatory elements.

A subsetted resource carries ``meta.tag`` SUBSETTED (system
``http://terminology.hl7.org/CodeSystem/v3-ObservationValue``), so nobody takes it for the whole
resource and writes it back. ``_summary`` and ``_elements`` together are refused: R4 does not
define what the pair means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from fhirnet.fhir.outcome import Issue, IssueType, MalformedRequestError
from fhirnet.fhir.resources import model_class

SUBSETTED_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
#: The tag of a resource with elements left out (R4 search.html#summary).
SUBSETTED = {"system": SUBSETTED_SYSTEM, "code": "SUBSETTED", "display": "subsetted"}
#: What every subset keeps.
_ALWAYS = ("resourceType", "id", "meta")
#: The query parameters this module reads.
SUMMARY = "_summary"
ELEMENTS = "_elements"
_TYPE_NAME = re.compile(r"\b([A-Z][A-Za-z0-9]*)Type\b")


class Summary(StrEnum):
    """The values of ``_summary`` (R4 valueset-search-summary)."""

    TRUE = "true"
    TEXT = "text"
    DATA = "data"
    COUNT = "count"
    FALSE = "false"


@dataclass(frozen=True, kw_only=True)
class Subsetting:
    """What ``_summary``/``_elements`` ask for; the default asks for everything."""

    summary: Summary = Summary.FALSE
    elements: tuple[str, ...] | None = None

    @property
    def whole(self) -> bool:
        """Whether resources are answered whole."""
        return self.summary in (Summary.FALSE, Summary.COUNT) and self.elements is None

    def apply(self, resource: Mapping[str, Any], *, elements: bool = True) -> dict[str, Any]:
        """``resource`` as asked for (a new dict; ``resource`` is left alone).

        :param elements: apply ``_elements`` (a search applies it to its matches, not to the
            resources ``_include`` adds, which are of other types).
        """
        if self.summary is Summary.TRUE:
            subset = _summary(resource, str(resource.get("resourceType")), top=True)
        elif self.summary is Summary.TEXT:
            subset = _keeping(resource, {"text"})
        elif self.summary is Summary.DATA:
            subset = {k: v for k, v in resource.items() if k not in ("text", "_text")}
        elif self.elements is not None and elements:
            subset = _keeping(resource, set(self.elements))
        else:
            return dict(resource)
        return _tagged(subset)


def subsetting(
    resource_type: str | None, summary: Sequence[str], elements: Sequence[str]
) -> Subsetting:
    """Read ``_summary`` and ``_elements`` (each given at most once).

    :param resource_type: the type whose elements ``_elements`` names (``None``: not checked).
    :raises MalformedRequestError: an unknown ``_summary`` value or element, a parameter given
        twice, or both given (400).
    """
    summary = [value for value in summary if value]  # R4 §3.1.1.1: empty is ignored
    elements = [value for value in elements if value]
    if len(summary) > 1 or len(elements) > 1:
        raise _invalid(IssueType.INVALID, "_summary and _elements may be given once each.")
    if summary and elements:
        raise _invalid(IssueType.NOT_SUPPORTED, "_summary and _elements cannot be combined.")
    if summary:
        if summary[0] not in Summary.__members__.values():
            raise _invalid(
                IssueType.INVALID,
                f"_summary must be one of {', '.join(Summary)}; got {summary[0]!r}.",
            )
        return Subsetting(summary=Summary(summary[0]))
    if not elements:
        return Subsetting()
    names = tuple(name.strip() for name in elements[0].split(",") if name.strip())
    if resource_type is not None:
        known = _element_names(resource_type)
        unknown = sorted(set(names) - known)
        if unknown:
            raise _invalid(
                IssueType.INVALID,
                f"_elements names no element of {resource_type}: {', '.join(unknown)}.",
            )
    return Subsetting(elements=names)


def _invalid(code: IssueType, message: str) -> MalformedRequestError:
    return MalformedRequestError([Issue.error(code, message)])


def _keeping(resource: Mapping[str, Any], names: set[str]) -> dict[str, Any]:
    """The top-level elements ``names`` (choice elements by their base name), the ones always
    kept and the mandatory ones, with their ``_name`` primitive extensions."""
    wanted = names | set(_ALWAYS) | _mandatory(str(resource.get("resourceType")))
    choices = _choices(str(resource.get("resourceType")))
    return {
        key: value
        for key, value in resource.items()
        if key.removeprefix("_") in wanted or choices.get(key.removeprefix("_")) in wanted
    }


def _summary(value: Mapping[str, Any], type_name: str, *, top: bool) -> dict[str, Any]:
    fields = _summary_fields(type_name)
    if fields is None:  # not a model type (e.g. a contained resource's untyped JSON): whole
        return dict(value)
    kept: dict[str, Any] = {}
    for key, item in value.items():
        name = key.removeprefix("_")
        if top and name in _ALWAYS:
            kept[key] = item
        elif name in fields and not key.startswith("_") and fields[name] is not None:
            kept[key] = _nested(item, fields[name])
        elif name in fields:
            kept[key] = item
    return kept


def _nested(item: Any, type_name: str | None) -> Any:
    if type_name is None:
        return item
    if isinstance(item, list):
        return [_nested(entry, type_name) for entry in item]
    if isinstance(item, Mapping):
        return _summary(item, type_name, top=False)
    return item


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    meta = resource.get("meta")
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    tags = [tag for tag in meta.get("tag") or [] if tag != SUBSETTED]
    meta["tag"] = [*tags, SUBSETTED]
    first: dict[str, Any] = {k: resource[k] for k in ("resourceType", "id") if k in resource}
    rest = {key: value for key, value in resource.items() if key not in (*first, "meta")}
    return {**first, "meta": meta, **rest}


@cache
def _summary_fields(type_name: str) -> dict[str, str | None] | None:
    """The summary elements of a type by JSON name, each with its complex type's name (to
    summarise it in turn) or ``None`` (a primitive, kept as it is); ``None`` for no such type."""
    try:
        model = model_class(type_name)
    except (ValueError, KeyError, AttributeError):
        return None
    fields: dict[str, str | None] = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if not (
            extra.get("summary_element_property")
            or extra.get("element_required")
            or field.is_required()
        ):
            continue
        found = _TYPE_NAME.search(str(field.annotation))
        nested = found.group(1) if found and _is_complex(found.group(1)) else None
        fields[field.alias or name] = nested
    return fields


@cache
def _is_complex(type_name: str) -> bool:
    try:
        model = model_class(type_name)
    except (ValueError, KeyError, AttributeError):
        return False
    # Resources (Bundle.entry.resource, contained) stay whole: their summary is their own.
    return "resource_type" not in model.model_fields and type_name not in ("Resource",)


@cache
def _element_names(resource_type: str) -> frozenset[str]:
    """The top-level element names of a resource type, choice elements also by base name."""
    model = model_class(resource_type)
    names = set()
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        names.add(field.alias or name)
        if isinstance(extra.get("one_of_many"), str):
            names.add(str(extra["one_of_many"]))
    return frozenset(names)


@cache
def _mandatory(resource_type: str) -> frozenset[str]:
    """Top-level elements with a minimum cardinality of 1 (choice groups by base name)."""
    try:
        model = model_class(resource_type)
    except (ValueError, KeyError, AttributeError):
        return frozenset()
    names = set()
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("element_property") and (extra.get("element_required") or field.is_required()):
            names.add(field.alias or name)
        if extra.get("one_of_many_required") and isinstance(extra.get("one_of_many"), str):
            names.add(str(extra["one_of_many"]))
    return frozenset(names)


@cache
def _choices(resource_type: str) -> dict[str, str]:
    """Choice elements of a resource type by JSON name → their base name."""
    try:
        model = model_class(resource_type)
    except (ValueError, KeyError, AttributeError):
        return {}
    found = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if isinstance(extra.get("one_of_many"), str):
            found[field.alias or name] = str(extra["one_of_many"])
    return found
