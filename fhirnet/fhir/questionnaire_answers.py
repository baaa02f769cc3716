"""The answers of a QuestionnaireResponse: their values read (:func:`answer_value`,
:func:`answers_by_link_id`), and one answer checked against its item (:func:`answer_issues`, for
the walk of :mod:`fhirnet.fhir.questionnaire`): the answer type and its JSON shape, the
answerValueSet or answerOptions, the ``minValue``/``maxValue`` limits, the UCUM unit of a
Quantity, and dates not in the future.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fhirnet.fhir.outcome import Issue, IssueType
from fhirnet.fhir.questionnaire_index import (
    UCUM,
    ItemDefinition,
    comparable_value,
    is_choice,
    json_number,
    shape_ok,
)

_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def answer_value(answer: object) -> tuple[str, Any] | None:
    """The one ``value[x]`` of an answer as (JSON name, JSON value), e.g. ``("valueDecimal",
    24.5)``; ``None`` if it has none, several, or is not an object."""
    if not isinstance(answer, Mapping):
        return None
    values = [(key, value) for key, value in answer.items() if is_choice(key, "value")]
    return values[0] if len(values) == 1 else None


def answers_by_link_id(items: object) -> dict[str, list[Any]]:
    """The answer values of one level of items (top level, or one group occurrence) by linkId,
    in order: ``answers_by_link_id(group["item"])["lesion-size"] == [24.5]``. Codings, Quantities
    etc. are their JSON objects; groups and malformed items are left out."""
    found: dict[str, list[Any]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping) or not isinstance(item.get("linkId"), str):
            continue
        answers = item.get("answer")
        for answer in answers if isinstance(answers, list) else []:
            value = answer_value(answer)
            if value is not None:
                found.setdefault(item["linkId"], []).append(value[1])
    return found


def answer_issues(
    definition: ItemDefinition, answer: object, path: str, *, today: dt.date
) -> list[Issue]:
    """The problems of one answer against its item's type, value set, limits and unit."""
    if not isinstance(answer, Mapping):
        return []  # the models report it
    keys = [key for key in answer if is_choice(key, "value")]
    if not keys:
        return [Issue.error(IssueType.STRUCTURE, "the answer has no value", expression=path)]
    if len(keys) > 1:
        return []  # the models report the second value[x]
    key = keys[0]
    value, path = answer[key], f"{path}.{key}"
    link_id = definition.link_id
    if key not in definition.answer_types:
        if key == "valueQuantity" and definition.type == "decimal" and definition.unit:
            return _quantity(definition, value, path)
        expected = " or ".join(definition.answer_types) or "no value"
        message = f"{link_id!r} is a {definition.type} item: answer with {expected}, not {key}"
        return [Issue.error(IssueType.STRUCTURE, message, expression=path)]
    if not shape_ok(key, value):
        message = f"{key} must be {_JSON_TYPES.get(key, 'a JSON string')}"
        return [Issue.error(IssueType.STRUCTURE, message, expression=path)]
    if key == "valueCoding":
        return _coding(definition, value, path)
    if definition.options is not None and (definition.type, key) != (
        "open-choice",
        "valueString",
    ):
        if comparable_value(key, value) in definition.options:
            return []
        return [
            Issue.error(
                IssueType.CODE_INVALID, f"{value!r} is not an answer option", expression=path
            )
        ]
    if key in {"valueDecimal", "valueInteger"}:
        return _range(definition, json_number(value), path)
    if key in {"valueDate", "valueDateTime"} and in_future(value, today):
        message = f"{value} is in the future (today is {today} UTC)"
        return [Issue.error(IssueType.BUSINESS_RULE, message, expression=path)]
    return []


def in_future(text: object, today: dt.date) -> bool:
    """Whether a date or dateTime lies after ``today`` (a UTC date).

    A dateTime with a time has an offset (R4 dateTime) and is compared as a UTC date. A date, or a
    partial one (``2026-03`` counts from its first day), is a calendar date of an unknown time
    zone: it is in the future only when it is after ``today`` everywhere, i.e. after today + 1 day
    (UTC+14 is at most one calendar day ahead of UTC), so a report dated by a reader east of
    Greenwich shortly after midnight is not rejected.
    """
    if not isinstance(text, str):
        return False
    if "T" in text:
        try:
            instant = dt.datetime.fromisoformat(text)
        except ValueError:
            instant = None
        if instant is not None and instant.tzinfo is not None:
            return instant.astimezone(dt.UTC).date() > today
    match = _DATE.match(text)
    if match is None:
        return False
    year, month, day = match.groups()
    try:
        first = dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return False
    return first > today + dt.timedelta(days=1)


def _quantity(definition: ItemDefinition, value: object, path: str) -> list[Issue]:
    """A Quantity answer to a decimal item with a unit: that UCUM unit, then its limits."""
    if not isinstance(value, Mapping):
        return []  # the models report it
    system, code = value.get("system"), value.get("code")
    if system != UCUM or code != definition.unit:
        given = f"{code!r}" + ("" if system == UCUM else f" of system {system!r}")
        message = f"wrong unit: {definition.link_id!r} is in {definition.unit} (UCUM), not {given}"
        return [Issue.error(IssueType.VALUE, message, expression=path)]
    number = json_number(value.get("value"))
    if number is None:
        return [
            Issue.error(
                IssueType.STRUCTURE, "the quantity has no number", expression=f"{path}.value"
            )
        ]
    return _range(definition, number, f"{path}.value")


def _coding(definition: ItemDefinition, coding: Mapping[str, Any], path: str) -> list[Issue]:
    """A Coding answer must be a concept of the value set (or an answerOption), by system and
    code; a different display is only a warning (the code carries the meaning)."""
    if definition.codings is None:
        return []
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(code, str) or not isinstance(system, str | None):
        return []  # the models report it
    if (system, code) not in definition.codings:
        source = definition.value_set or "the answer options"
        message = f"{system}#{code} is not in {source} ({definition.link_id!r})"
        return [Issue.error(IssueType.CODE_INVALID, message, expression=path)]
    display, expected = coding.get("display"), definition.codings[(system, code)]
    if isinstance(display, str) and expected and _words(display) != _words(expected):
        message = f"display {display!r} of {system}#{code} is not {expected!r}"
        return [Issue.warning(IssueType.CODE_INVALID, message, expression=f"{path}.display")]
    return []


def _range(definition: ItemDefinition, number: Decimal | None, path: str) -> list[Issue]:
    """``minValue`` / ``maxValue`` (R4 core extensions), inclusive."""
    unit = f" {definition.unit}" if definition.unit else ""
    issues = []
    if number is not None and definition.min_value is not None and number < definition.min_value:
        message = f"{number}{unit} is below the minimum {definition.min_value}{unit}"
        issues.append(Issue.error(IssueType.VALUE, message, expression=path))
    if number is not None and definition.max_value is not None and number > definition.max_value:
        message = f"{number}{unit} is above the maximum {definition.max_value}{unit}"
        issues.append(Issue.error(IssueType.VALUE, message, expression=path))
    return issues


_JSON_TYPES = {
    "valueBoolean": "a JSON boolean (true or false)",
    "valueDecimal": "a finite JSON number",
    "valueInteger": "a JSON integer",
    "valueCoding": "a Coding object",
    "valueQuantity": "a Quantity object",
    "valueReference": "a Reference object",
    "valueAttachment": "an Attachment object",
}


def _words(text: str) -> str:
    return " ".join(text.casefold().split())
