"""Helpers over resource instances: the items an element path reaches, pattern and fixed-value
comparison, references and codes found in a resource."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhirnet.fhir.outcome import Issue, IssueType, Severity
from fhirnet.fhir.resources import model_class, parse
from tests.conformance.snapshot import Element


@dataclass(frozen=True, slots=True)
class Item:
    """One occurrence of an element in an instance."""

    key: str  # the JSON name: "component", "valueQuantity"
    value: Any  # None when only the primitive's "_key" extension is there
    expr: str  # FHIRPath of this occurrence, e.g. "Observation.component[2]"


def items_at(
    element: Element, data: Mapping[str, Any], siblings: set[str], expr: str
) -> list[Item]:
    if element.is_choice:
        stem = element.fhirpath_name
        keys = [
            key
            for key in data
            if isinstance(key, str)
            and key.startswith(stem)
            and key[len(stem) : len(stem) + 1].isupper()
            and key not in siblings
        ]
    else:
        keys = [element.name] if element.name in data or f"_{element.name}" in data else []
    items: list[Item] = []
    for key in keys:
        raw = data.get(key)
        if raw is None:
            raw = data.get(f"_{key}")
            if isinstance(raw, list):
                raw = [None] * len(raw)
            elif raw is not None:
                raw = None
                items.append(Item(key, None, f"{expr}.{key}"))
                continue
        if isinstance(raw, list):
            items += [Item(key, value, f"{expr}.{key}[{i}]") for i, value in enumerate(raw)]
        elif raw is not None:
            items.append(Item(key, raw, f"{expr}.{key}"))
    return items


def contains_pattern(value: Any, pattern: Any) -> bool:
    """Whether ``value`` matches ``pattern`` in the sense of ``ElementDefinition.pattern[x]``."""
    if isinstance(pattern, Mapping):
        return isinstance(value, Mapping) and all(
            key in value and contains_pattern(value[key], sub) for key, sub in pattern.items()
        )
    if isinstance(pattern, list):
        values = value if isinstance(value, list) else [value]
        return all(any(contains_pattern(v, sub) for v in values) for sub in pattern)
    return same_value(value, pattern)


def same_value(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return bool(value == expected)


def _at(value: Any, path: str) -> list[Any]:
    """The values at a dotted ``path`` below ``value`` (arrays flattened, choice names matched)."""
    current = [value]
    for segment in path.split("."):
        following: list[Any] = []
        for item in current:
            if not isinstance(item, Mapping):
                continue
            if segment in item:
                found = [item[segment]]
            else:  # a choice element named without its type, e.g. "value" for valueQuantity
                found = [
                    v
                    for k, v in item.items()
                    if isinstance(k, str)
                    and k.startswith(segment)
                    and k[len(segment) : len(segment) + 1].isupper()
                ]
            for f in found:
                following += f if isinstance(f, list) else [f]
        current = following
    return current


def render(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def discriminates(slice_: Element, path: str, value: Any) -> bool:
    """Whether ``value`` has, at ``path``, the fixed or pattern value the slice defines there."""
    target = slice_ if path == "$this" else _descendant(slice_, path)
    expected: tuple[str, Any] | None = None
    exact = False
    if target is not None:
        if target.fixed is not None:
            expected, exact = target.fixed, True
        elif target.pattern is not None:
            expected = target.pattern
    if expected is None and path == "url":
        # An extension slice (`extension contains X named x`) names its definition as type profile.
        profiles = [p for t in slice_.types for p in t.profiles]
        if profiles:
            expected, exact = ("Uri", profiles[0].split("|", 1)[0]), True
    if expected is None:
        return False
    found = [value] if path == "$this" else _at(value, path)
    if exact:
        return any(same_value(v, expected[1]) for v in found)
    return any(contains_pattern(v, expected[1]) for v in found)


def _descendant(element: Element, path: str) -> Element | None:
    current: Element | None = element
    for segment in path.split("."):
        if current is None:
            return None
        current = next(
            (c for c in current.children if c.name in (segment, f"{segment}[x]")),
            None,
        )
    return current


def same_unit(value: Mapping[str, Any], limit: Mapping[str, Any]) -> bool:
    if limit.get("code") is not None:
        return bool(value.get("code") == limit.get("code"))
    return bool(value.get("unit") == limit.get("unit"))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def codes_of(concepts: list[Mapping[str, Any]]) -> Iterator[str]:
    for concept in concepts:
        if isinstance(concept.get("code"), str):
            yield concept["code"]
        yield from codes_of(as_list(concept.get("concept")))


def references_in(data: Any) -> Iterator[str]:
    """Every ``reference`` string anywhere below ``data``."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references_in(value)
    elif isinstance(data, list):
        for value in data:
            yield from references_in(value)


def bundle_types(resource: Any) -> dict[str, str]:
    """A Bundle's ``fullUrl`` → resource type, so ``urn:uuid:`` references can be checked."""
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Bundle":
        return {}
    types: dict[str, str] = {}
    for entry in as_list(resource.get("entry")):
        if not isinstance(entry, Mapping):
            continue
        full_url, inner = entry.get("fullUrl"), entry.get("resource")
        if isinstance(full_url, str) and isinstance(inner, Mapping):
            resource_type = inner.get("resourceType")
            if isinstance(resource_type, str):
                types[full_url] = resource_type
    return types


def base_structure_issues(resource: Mapping[str, Any]) -> list[Issue]:
    """Base-FHIR structure: :func:`fhirnet.fhir.resources.parse` with the resource's R4B model."""
    resource_type = str(resource["resourceType"])
    try:
        model = model_class(resource_type)
    except ValueError:
        return [
            Issue(
                severity=Severity.ERROR,
                code=IssueType.STRUCTURE,
                expression=resource_type,
                message=f"{resource_type} is not a FHIR resource type",
            )
        ]
    return list(parse(resource, model).issues)


def unique(issues: list[Issue]) -> list[Issue]:
    """The issues without repeats (the unsliced element and its slice may say the same)."""
    return list(dict.fromkeys(issues))
