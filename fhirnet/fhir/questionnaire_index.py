"""The CRF Questionnaire as the validator reads it: a :class:`QuestionnaireIndex` of its items.

Each item becomes an :class:`ItemDefinition`: its type and the ``answer.value[x]`` it takes, its
answerValueSet expanded offline or its answerOptions, the R4 extensions the validator honours
(``questionnaire-maxOccurs``, ``minValue``, ``maxValue``, ``questionnaire-unit``) and its
enableWhen parsed into :class:`Condition`\\ s. :func:`questionnaire_index` builds the index once
per :class:`~fhirnet.fhir.profiles.Catalog` and keeps it with the catalog.

Answers are compared as :data:`Value`\\ s, hashable pairs of a kind and a value
(:func:`comparable_value`), so an enableWhen answer, an answerOption and a response's answer
compare alike; the walk over a response (:mod:`fhirnet.fhir.questionnaire`) shares these helpers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fhirnet.fhir.profiles import Catalog

__all__ = [
    "UCUM",
    "Condition",
    "ItemDefinition",
    "QuestionnaireIndex",
    "Value",
    "comparable_value",
    "is_choice",
    "json_number",
    "json_string",
    "questionnaire_index",
    "shape_ok",
]

UCUM = "http://unitsofmeasure.org"
_EXTENSION = "http://hl7.org/fhir/StructureDefinition/"
MAX_OCCURS = _EXTENSION + "questionnaire-maxOccurs"
MIN_VALUE = _EXTENSION + "minValue"
MAX_VALUE = _EXTENSION + "maxValue"
UNIT = _EXTENSION + "questionnaire-unit"

#: R4 Questionnaire.item.type (item-type code system) → the ``answer.value[x]`` it takes.
ANSWER_TYPES: Mapping[str, tuple[str, ...]] = {
    "boolean": ("valueBoolean",),
    "decimal": ("valueDecimal",),
    "integer": ("valueInteger",),
    "date": ("valueDate",),
    "dateTime": ("valueDateTime",),
    "time": ("valueTime",),
    "string": ("valueString",),
    "text": ("valueString",),
    "url": ("valueUri",),
    "choice": ("valueCoding",),
    "open-choice": ("valueCoding", "valueString"),
    "attachment": ("valueAttachment",),
    "reference": ("valueReference",),
    "quantity": ("valueQuantity",),
}
#: Items that hold no answers.
_CONTAINERS = frozenset({"group", "display"})

#: A comparable answer: its kind ("number", "date", "Coding", ...) and a hashable value.
Value = tuple[str, Any]


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One ``Questionnaire.item.enableWhen``; ``expected`` is ``None`` if its answer is unusable."""

    question: str
    operator: str
    expected: Value | None

    def holds(self, answers: Sequence[Value]) -> bool:
        """Whether the condition holds for the question's (enabled) answers, per R4 operators."""
        expected = self.expected
        if expected is None:
            return False
        if self.operator == "exists":
            return expected[0] == "boolean" and bool(answers) == expected[1]
        if self.operator == "=":
            return any(_equal(answer, expected) for answer in answers)
        if self.operator == "!=":
            return not any(_equal(answer, expected) for answer in answers)
        wanted = {">": (1,), "<": (-1,), ">=": (0, 1), "<=": (-1, 0)}.get(self.operator, ())
        return any(_compare(answer, expected) in wanted for answer in answers)

    def describe(self) -> str:
        if self.expected is None:
            return f"{self.question} {self.operator} ?"
        kind, value = self.expected
        shown = value[1] if kind == "Coding" else value
        if kind == "boolean":
            shown = str(value).lower()
        return f"{self.question} {self.operator} {shown}"


@dataclass(frozen=True, kw_only=True)
class ItemDefinition:
    """What the validator needs of one ``Questionnaire.item``."""

    link_id: str
    type: str
    #: linkId of the enclosing item; ``None`` at the top level.
    parent: str | None
    #: Index among its siblings, for the order check.
    position: int
    required: bool
    repeats: bool
    #: ``questionnaire-maxOccurs``; ``None`` is unbounded (when ``repeats``).
    max_occurs: int | None
    answer_types: tuple[str, ...]
    min_value: Decimal | None
    max_value: Decimal | None
    #: UCUM code of ``questionnaire-unit``.
    unit: str | None
    #: The ``answerValueSet`` URL, for messages.
    value_set: str | None
    #: Allowed Codings (system, code) → display; ``None`` when any Coding is allowed.
    codings: Mapping[tuple[str | None, str | None], str | None] | None
    #: Allowed non-Coding ``answerOption`` values; ``None`` when unrestricted.
    options: frozenset[Value] | None
    enable_when: tuple[Condition, ...]
    enable_any: bool
    children: Mapping[str, ItemDefinition] = field(repr=False)

    @property
    def is_question(self) -> bool:
        return self.type not in _CONTAINERS

    def where(self) -> str:
        return f"under {self.parent!r}" if self.parent else "at the top level"

    def condition(self) -> str:
        joiner = " or " if self.enable_any else " and "
        return joiner.join(condition.describe() for condition in self.enable_when)


@dataclass(frozen=True, kw_only=True)
class QuestionnaireIndex:
    """The Questionnaire as the validator reads it: items by linkId, at each level and overall."""

    url: str
    version: str | None
    #: Top-level items in Questionnaire order.
    items: Mapping[str, ItemDefinition]
    #: Every item, whatever its depth (linkIds are unique, que-2).
    by_link_id: Mapping[str, ItemDefinition]

    @classmethod
    def build(cls, catalog: Catalog) -> QuestionnaireIndex:
        """Index ``catalog``'s CRF Questionnaire, expanding its answerValueSets with ``catalog``.

        :raises fhirnet.errors.ProfileNotFoundError: the Questionnaire is missing, or an
            answerValueSet cannot be expanded.
        """
        questionnaire = catalog.questionnaire()
        by_link_id: dict[str, ItemDefinition] = {}
        items = _definitions(questionnaire.get("item", []), None, catalog, by_link_id)
        return cls(
            url=questionnaire["url"],
            version=questionnaire.get("version"),
            items=items,
            by_link_id=by_link_id,
        )


def _definitions(
    raw_items: Iterable[Mapping[str, Any]],
    parent: str | None,
    catalog: Catalog,
    by_link_id: dict[str, ItemDefinition],
) -> dict[str, ItemDefinition]:
    definitions: dict[str, ItemDefinition] = {}
    for position, raw in enumerate(raw_items):
        link_id = raw["linkId"]
        extensions = {e.get("url"): e for e in raw.get("extension", [])}
        value_set = raw.get("answerValueSet")
        codings: dict[tuple[str | None, str | None], str | None] | None = None
        if value_set:
            codings = {(c.system, c.code): c.display for c in catalog.expand(value_set)}
        options: frozenset[Value] | None = None
        answer_types = ANSWER_TYPES.get(raw["type"], ())
        if raw.get("answerOption"):
            codings, option_values, types = {}, set(), []
            for option in raw["answerOption"]:
                key, value = _value_of(option, "value")
                if key == "valueCoding":
                    codings[(value.get("system"), value.get("code"))] = value.get("display")
                elif (comparable := comparable_value(key, value)) is not None:
                    option_values.add(comparable)
                types.append(key)
            options = frozenset(option_values)
            extra = ("valueString",) if raw["type"] == "open-choice" else ()
            answer_types = tuple(dict.fromkeys([*types, *extra]))
        unit = extensions.get(UNIT, {}).get("valueCoding", {})
        definition = ItemDefinition(
            link_id=link_id,
            type=raw["type"],
            parent=parent,
            position=position,
            required=bool(raw.get("required")),
            repeats=bool(raw.get("repeats")),
            max_occurs=extensions.get(MAX_OCCURS, {}).get("valueInteger"),
            answer_types=answer_types,
            min_value=_limit(extensions.get(MIN_VALUE)),
            max_value=_limit(extensions.get(MAX_VALUE)),
            unit=unit.get("code") if unit.get("system") == UCUM else None,
            value_set=value_set,
            codings=codings,
            options=options,
            enable_when=tuple(
                Condition(
                    question=when["question"],
                    operator=when["operator"],
                    expected=comparable_value(*_value_of(when, "answer")),
                )
                for when in raw.get("enableWhen", [])
            ),
            enable_any=raw.get("enableBehavior") == "any",
            children=_definitions(raw.get("item", []), link_id, catalog, by_link_id),
        )
        definitions[link_id] = by_link_id[link_id] = definition
    return definitions


def _limit(extension: Mapping[str, Any] | None) -> Decimal | None:
    if extension is None:
        return None
    _, value = _value_of(extension, "value")
    return json_number(value)


def questionnaire_index(catalog: Catalog) -> QuestionnaireIndex:
    """The index of ``catalog``'s CRF Questionnaire, built on first use and kept by the catalog.

    :raises fhirnet.errors.ProfileNotFoundError: the catalog lacks the Questionnaire or one of
        its answerValueSets.
    """
    return catalog.derived(QuestionnaireIndex.build)


def _value_of(element: Mapping[str, Any], prefix: str) -> tuple[str, Any]:
    for key, value in element.items():
        if is_choice(key, prefix):
            return "value" + key.removeprefix(prefix), value
    return "", None


def is_choice(key: str, prefix: str) -> bool:
    """Whether ``key`` is a choice element ``prefix[x]`` such as ``valueCoding``."""
    return key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isupper()


def json_number(value: object) -> Decimal | None:
    """A JSON number as an exact Decimal (``24.5`` → ``Decimal('24.5')``); ``None`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(str(value))


def shape_ok(key: str, value: object) -> bool:
    """Whether the JSON value has the JSON type FHIR prescribes for that ``value[x]``."""
    if key == "valueBoolean":
        return isinstance(value, bool)
    if key == "valueInteger":
        return isinstance(value, int) and not isinstance(value, bool)
    if key == "valueDecimal":
        return json_number(value) is not None
    if key in {"valueCoding", "valueQuantity", "valueReference", "valueAttachment"}:
        return isinstance(value, Mapping)
    return isinstance(value, str)


def comparable_value(key: str, value: object) -> Value | None:
    """A hashable, comparable form of a ``value[x]``/``answer[x]``; ``None`` if malformed."""
    if not shape_ok(key, value):
        return None
    kind = key.removeprefix("value")
    if kind in {"Decimal", "Integer"}:
        return "number", json_number(value)
    if kind == "Boolean":
        return "boolean", value
    if kind == "Coding" and isinstance(value, Mapping):
        return "Coding", (json_string(value.get("system")), json_string(value.get("code")))
    if kind == "Quantity" and isinstance(value, Mapping):
        number = json_number(value.get("value"))
        unit = (json_string(value.get("system")), json_string(value.get("code")))
        return None if number is None else ("Quantity", (number, *unit))
    if kind == "Reference" and isinstance(value, Mapping):
        return "Reference", json_string(value.get("reference"))
    return (kind[0].lower() + kind[1:], value) if isinstance(value, str) else None


def _equal(answer: Value, expected: Value) -> bool:
    if answer[0] != expected[0]:
        return False
    if answer[0] == "Coding" and expected[1][0] is None:  # a code without system matches any
        return bool(answer[1][1] == expected[1][1])
    return bool(answer[1] == expected[1])


def _compare(answer: Value, expected: Value) -> int | None:
    """-1, 0 or 1, or ``None`` when the two cannot be ordered (other kind, unit, or codes)."""
    kind = answer[0]
    if kind != expected[0] or kind in {"boolean", "Coding", "Reference"}:
        return None
    left, right = answer[1], expected[1]
    if kind == "Quantity":
        if left[1:] != right[1:]:
            return None
        left, right = left[0], right[0]
    return int(left > right) - int(left < right)


def json_string(value: object) -> str | None:
    """A JSON string, or ``None`` for anything else (the models report the wrong type)."""
    return value if isinstance(value, str) else None
