"""Hypothesis strategies of QuestionnaireResponses built from the CRF Questionnaire itself.

The generator reads ``profiles/`` as a form filler would, without fhirnet's own code: the item
tree of ``Questionnaire-gep-net-imaging-crf.json`` (types, ``required``, ``repeats``,
``questionnaire-maxOccurs``, ``minValue``/``maxValue``, ``enableWhen``/``enableBehavior``), and
the answer codes of each ``answerValueSet``, expanded from the package's ValueSets and
CodeSystems. So it is an independent oracle of what the Questionnaire allows, and follows the
Questionnaire when it changes (a construct it does not know fails loudly instead of generating
nonsense).

* :func:`valid_responses`: forms that keep every rule of the Questionnaire (and of FHIR R4): each
  enabled required item answered, no disabled item answered, answers of the item's type, codes
  from the value set, numbers within bounds, dates not in the future, repeating questions and
  groups within their bounds.
* :func:`perturbed_responses`: a valid form with exactly one rule of :data:`PERTURBATIONS` broken;
  each is an error that ``$validate`` must report.
* :func:`assessable_baselines`: valid baseline forms that also keep the baseline rules of the
  assessment (RECIST 1.1, iRECIST), so that a submission is accepted.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from fhirnet.config import DEFAULT_PROFILES_DIR

Json = dict[str, Any]

QUESTIONNAIRE_FILE = "Questionnaire-gep-net-imaging-crf.json"
_EXTENSION = "http://hl7.org/fhir/StructureDefinition/"
#: A repeating item without ``questionnaire-maxOccurs`` gets at most this many repetitions.
MAX_REPEATS = 3
#: The largest number generated for a decimal item without a ``maxValue``.
MAX_DECIMAL = 100_000
#: FHIR R4 ``integer`` is a signed 32-bit number.
MAX_INTEGER = 2**31 - 1
EARLIEST = dt.date(1990, 1, 1)
#: The value[x] of an answer to each item type.
VALUE_KEYS = {
    "boolean": "valueBoolean",
    "decimal": "valueDecimal",
    "integer": "valueInteger",
    "date": "valueDate",
    "dateTime": "valueDateTime",
    "string": "valueString",
    "text": "valueString",
    "choice": "valueCoding",
}
STATUSES = ("completed", "amended", "in-progress")
SUBMISSION_SYSTEM = "https://fhirnet.dev/fhir/sid/crf-submission"
#: NCI Thesaurus codes of the response criteria (ValueSet response-criteria).
RECIST_1_1 = "C124415"
IRECIST = "C136711"
#: The baseline rules: measurable lesions (RECIST 1.1 §3.1.1: 10 mm, a node 15 mm short axis;
#: 15 suits both), at most 2 targets per organ (§4.2).
MEASURABLE_MM = 15.0
MAX_TARGETS_PER_ORGAN = 2


@dataclass(frozen=True, kw_only=True)
class Condition:
    """One ``enableWhen``: ``question`` ``operator`` ``answer`` (a JSON value)."""

    question: str
    operator: str
    answer: Any


@dataclass(frozen=True, kw_only=True, repr=False)
class Item:
    """One item of the Questionnaire, as far as generating answers needs."""

    link_id: str
    type: str
    required: bool
    repeats: bool
    #: ``questionnaire-maxOccurs``; ``None``: unbounded (or not repeating).
    max_occurs: int | None
    #: The Codings a choice item may be answered with (from its answerValueSet).
    codings: tuple[Json, ...]
    min_value: Decimal | None
    max_value: Decimal | None
    enable_when: tuple[Condition, ...]
    #: ``"all"`` or ``"any"``.
    enable_behavior: str
    children: tuple[Item, ...]

    def __repr__(self) -> str:  # short: Hypothesis shows it in strategies' reprs
        return f"Item({self.link_id})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis's pretty printer
        printer.text(repr(self))

    @property
    def value_key(self) -> str:
        return VALUE_KEYS[self.type]

    @property
    def most(self) -> int:
        """The most occurrences (groups) or answers (questions) generated."""
        if not self.repeats:
            return 1
        return self.max_occurs if self.max_occurs is not None else MAX_REPEATS


@dataclass(frozen=True, kw_only=True, repr=False)
class Crf:
    """The Questionnaire: its canonical URL, version and item tree."""

    url: str
    version: str
    items: tuple[Item, ...]

    def __repr__(self) -> str:  # short: Hypothesis shows it in every strategy's repr
        return f"Crf({self.url}|{self.version})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # Hypothesis's pretty printer
        printer.text(repr(self))

    def walk(self) -> Iterator[Item]:
        """Every item, depth first, in Questionnaire order."""
        stack = list(reversed(self.items))
        while stack:
            item = stack.pop()
            yield item
            stack.extend(reversed(item.children))


def load_crf(profiles_dir: Path = DEFAULT_PROFILES_DIR) -> Crf:
    """Read the CRF Questionnaire and expand its answer value sets from ``profiles_dir``."""
    resources = [
        json.loads(path.read_text(encoding="utf-8")) for path in profiles_dir.glob("*.json")
    ]
    by_url = {r["url"]: r for r in resources if "url" in r}
    questionnaire = json.loads((profiles_dir / QUESTIONNAIRE_FILE).read_text(encoding="utf-8"))
    return Crf(
        url=questionnaire["url"],
        version=questionnaire["version"],
        items=tuple(_item(raw, by_url) for raw in questionnaire["item"]),
    )


def _item(raw: Mapping[str, Any], by_url: Mapping[str, Json]) -> Item:
    extensions = {e["url"].removeprefix(_EXTENSION): e for e in raw.get("extension", [])}
    if raw["type"] not in (*VALUE_KEYS, "group"):
        raise NotImplementedError(f"item type {raw['type']!r} of {raw['linkId']}")
    if "answerOption" in raw or "initial" in raw:
        raise NotImplementedError(f"answerOption/initial of {raw['linkId']}")
    codings: tuple[Json, ...] = ()
    if "answerValueSet" in raw:
        codings = tuple(_expand(by_url[raw["answerValueSet"]], by_url))
    return Item(
        link_id=raw["linkId"],
        type=raw["type"],
        required=raw.get("required", False),
        repeats=raw.get("repeats", False),
        max_occurs=extensions.get("questionnaire-maxOccurs", {}).get("valueInteger"),
        codings=codings,
        min_value=_bound(extensions.get("minValue")),
        max_value=_bound(extensions.get("maxValue")),
        enable_when=tuple(_condition(c) for c in raw.get("enableWhen", [])),
        enable_behavior=raw.get("enableBehavior", "all"),
        children=tuple(_item(child, by_url) for child in raw.get("item", [])),
    )


def _bound(extension: Mapping[str, Any] | None) -> Decimal | None:
    if extension is None:
        return None
    (value,) = (v for k, v in extension.items() if k.startswith("value"))
    return Decimal(str(value))


def _condition(raw: Mapping[str, Any]) -> Condition:
    (answer,) = (v for k, v in raw.items() if k.startswith("answer"))
    if raw["operator"] not in ("=", "!=", "exists"):
        raise NotImplementedError(f"enableWhen operator {raw['operator']!r}")
    return Condition(question=raw["question"], operator=raw["operator"], answer=answer)


def _expand(value_set: Mapping[str, Any], by_url: Mapping[str, Json]) -> Iterator[Json]:
    """The Codings of a ValueSet: listed concepts, or every concept of an included system."""
    compose = value_set["compose"]
    if "exclude" in compose:
        raise NotImplementedError(f"exclude in {value_set['url']}")
    for include in compose["include"]:
        if "filter" in include or "valueSet" in include:
            raise NotImplementedError(f"filter/valueSet include in {value_set['url']}")
        system = include["system"]
        concepts = include.get("concept") or _concepts(by_url[system]["concept"])
        for concept in concepts:
            coding = {"system": system, "code": concept["code"]}
            if "display" in concept:
                coding["display"] = concept["display"]
            yield coding


def _concepts(concepts: list[Json]) -> Iterator[Json]:
    for concept in concepts:
        yield concept
        yield from _concepts(concept.get("concept", []))


# -- valid forms ---------------------------------------------------------------------------------

_letters = st.characters(categories=["L", "N"])
#: Strings FHIR accepts: not empty, no leading or trailing whitespace.
fhir_strings = st.builds(
    lambda first, middle, last: first + middle + last,
    st.text(_letters, min_size=1, max_size=1),
    # No whitespace but the space: FHIR strings match [ \r\n\t\S]+, and NBSP is not in \S.
    st.text(st.characters(categories=["L", "N", "P"], include_characters=" "), max_size=12),
    st.text(_letters, max_size=1),
)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9\-.]{0,30}", fullmatch=True)


def _number(item: Item, *, integer: bool) -> st.SearchStrategy[int | float]:
    low = item.min_value if item.min_value is not None else Decimal(-MAX_DECIMAL)
    high = item.max_value if item.max_value is not None else Decimal(MAX_DECIMAL)
    if integer:
        low_int = int(low) if item.min_value is not None else -MAX_INTEGER - 1
        high_int = int(high) if item.max_value is not None else MAX_INTEGER
        return st.integers(low_int, high_int)
    bounds = st.sampled_from(sorted({float(low), float(high)}))
    return (
        bounds
        | st.integers(int(low), int(high))
        | st.floats(float(low), float(high), allow_nan=False, allow_infinity=False)
        | st.decimals(low, high, places=1, allow_nan=False).map(float)
    )


def answer_values(item: Item, today: dt.date) -> st.SearchStrategy[Any]:
    """Values of ``item``'s type within its bounds: the JSON of ``answer.value[x]``."""
    if item.type == "boolean":
        return st.booleans()
    if item.type in ("decimal", "integer"):
        return _number(item, integer=item.type == "integer")
    if item.type == "date":
        return st.dates(EARLIEST, today).map(dt.date.isoformat)
    if item.type == "dateTime":
        return st.dates(EARLIEST, today - dt.timedelta(days=1)).map(
            lambda d: f"{d.isoformat()}T12:00:00+00:00"
        )
    if item.type in ("string", "text"):
        return fhir_strings
    if item.type == "choice":
        # A Coding with or without its display (a missing display is no problem).
        return st.sampled_from(item.codings).flatmap(
            lambda c: st.sampled_from([c, {k: v for k, v in c.items() if k != "display"}])
        )
    raise NotImplementedError(item.type)


class Answers:
    """The answers given so far, by linkId, for enableWhen (every question this Questionnaire's
    conditions name occurs once, so the nearest occurrence is the only one)."""

    def __init__(self) -> None:
        self.by_link_id: dict[str, list[Any]] = {}

    def enabled(self, item: Item) -> bool:
        if not item.enable_when:
            return True
        results = [self._holds(condition) for condition in item.enable_when]
        return all(results) if item.enable_behavior == "all" else any(results)

    def _holds(self, condition: Condition) -> bool:
        answers = self.by_link_id.get(condition.question, [])
        if condition.operator == "exists":
            return bool(answers) is bool(condition.answer)
        equal = any(_same(answer, condition.answer) for answer in answers)
        return equal if condition.operator == "=" else not equal


def _same(answer: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):  # a Coding: system and code
        return isinstance(answer, Mapping) and all(
            answer.get(key) == expected.get(key) for key in ("system", "code")
        )
    return bool(answer == expected)


@dataclass(frozen=True, kw_only=True)
class Choices:
    """What a generated form must hold beyond the Questionnaire's rules."""

    in_progress: bool = False
    #: linkId → the answers of that question (wherever it is enabled).
    fixed: Mapping[str, list[Any]] = field(default_factory=dict)
    #: linkId → the fewest occurrences of that group.
    at_least: Mapping[str, int] = field(default_factory=dict)


@st.composite
def _items(
    draw: st.DrawFn,
    items: tuple[Item, ...],
    answers: Answers,
    today: dt.date,
    choices: Choices,
) -> list[Json]:
    """The response items of one level, in Questionnaire order."""
    generated: list[Json] = []
    for item in items:
        if not answers.enabled(item):
            continue
        fewest = 1 if item.required and not choices.in_progress else 0
        if item.type == "group":
            fewest = max(fewest, choices.at_least.get(item.link_id, 0))
            count = draw(st.integers(fewest, max(fewest, item.most)))
            for _ in range(count):
                children = draw(_items(item.children, answers, today, choices))
                if children:  # an empty group is left out (R4: a group has items)
                    generated.append({"linkId": item.link_id, "item": children})
            continue
        if item.link_id in choices.fixed:
            values = list(choices.fixed[item.link_id])
        elif fewest == 0 and not draw(st.booleans()):
            continue
        else:
            values = draw(
                st.lists(
                    answer_values(item, today),
                    min_size=1,
                    max_size=item.most,
                    unique_by=lambda v: v.get("code") if isinstance(v, dict) else v,
                )
            )
        answers.by_link_id.setdefault(item.link_id, []).extend(values)
        generated.append(
            {"linkId": item.link_id, "answer": [{item.value_key: value} for value in values]}
        )
    return generated


@st.composite
def valid_responses(
    draw: st.DrawFn,
    crf: Crf,
    today: dt.date,
    *,
    statuses: tuple[str, ...] = STATUSES,
    fixed: Mapping[str, list[Any]] | None = None,
    at_least: Mapping[str, int] | None = None,
) -> Json:
    """A QuestionnaireResponse that keeps every rule of ``crf``; nothing after ``today`` (UTC).

    :param statuses: the statuses to choose from.
    :param fixed: linkId → the answers that question gets (when enabled).
    :param at_least: linkId → the fewest occurrences of that group.
    """
    status = draw(st.sampled_from(statuses))
    response: Json = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": draw(st.sampled_from([crf.url, f"{crf.url}|{crf.version}"])),
        "status": status,
        "subject": {"reference": f"Patient/{draw(ids)}"},
    }
    if draw(st.booleans()):
        response["id"] = draw(ids)
    if draw(st.integers(0, 3)):  # what a submission keys its results on
        response["identifier"] = {"system": SUBMISSION_SYSTEM, "value": draw(ids)}
    if draw(st.booleans()):
        authored = draw(st.dates(EARLIEST, today - dt.timedelta(days=1)))
        response["authored"] = f"{authored.isoformat()}T09:30:00+01:00"
    choices = Choices(
        in_progress=status == "in-progress", fixed=fixed or {}, at_least=at_least or {}
    )
    items = draw(_items(crf.items, Answers(), today, choices))
    if items:  # R4 has no empty arrays
        response["item"] = items
    return response


def _coding(crf: Crf, link_id: str, code: str) -> Json:
    (item,) = (i for i in crf.walk() if i.link_id == link_id)
    (coding,) = (c for c in item.codings if c["code"] == code)
    return coding


def _answer(group: Json, link_id: str) -> list[Json]:
    """The ``answer`` list of the child ``link_id`` of a group occurrence, added if missing."""
    for child in group["item"]:
        if child["linkId"] == link_id:
            answers: list[Json] = child["answer"]
            return answers
    group["item"].append({"linkId": link_id, "answer": []})
    answers = group["item"][-1]["answer"]
    return answers


@st.composite
def assessable_baselines(draw: st.DrawFn, crf: Crf, today: dt.date) -> Json:
    """A valid baseline form that also keeps the baseline rules of RECIST 1.1 and iRECIST
    (``fhirnet/criteria/validation.py``), so a submission of it is accepted: 1-5 measurable
    targets (non-nodal >= 10 mm, nodal >= 15 mm), at most 2 per organ (all nodes one organ),
    unique lesion ids, non-targets present, and an identifier."""
    criteria = draw(st.sampled_from([RECIST_1_1, IRECIST]))
    response = draw(
        valid_responses(
            crf,
            today,
            statuses=("completed",),
            fixed={
                "assessment-type": [_coding(crf, "assessment-type", "baseline")],
                "response-criteria": [_coding(crf, "response-criteria", criteria)],
            },
            at_least={"target-lesion": 1},
        )
    )
    response["identifier"] = {"system": SUBMISSION_SYSTEM, "value": draw(ids)}
    per_organ: Counter[str] = Counter()
    kept = []
    for raw in response["item"]:
        if raw["linkId"] == "target-lesion":
            (site,) = _answer(raw, "lesion-location")
            (nodal,) = _answer(raw, "lesion-nodal")
            organ = "lymph nodes" if nodal["valueBoolean"] else site["valueCoding"]["code"]
            per_organ[organ] += 1
            if per_organ[organ] > MAX_TARGETS_PER_ORGAN:
                continue
            raw["item"] = [c for c in raw["item"] if c["linkId"] != "lesion-too-small"]
            size = _answer(raw, "lesion-size")
            measured = draw(st.floats(MEASURABLE_MM, 1000) | st.just(MEASURABLE_MM))
            size[:] = [{"valueDecimal": max([measured, *(a["valueDecimal"] for a in size)])}]
        kept.append(raw)
    response["item"] = kept
    present = _coding(crf, "lesion-status", "present")
    numbers: Counter[str] = Counter()
    for raw in response["item"]:
        if raw["linkId"] in ("target-lesion", "non-target-lesion"):
            prefix = "T" if raw["linkId"] == "target-lesion" else "N"
            numbers[prefix] += 1
            for child in raw["item"]:
                if child["linkId"].endswith("lesion-id"):
                    child["answer"] = [{"valueString": f"{prefix}{numbers[prefix]}"}]
                if child["linkId"] == "lesion-status":
                    child["answer"] = [{"valueCoding": present}]
    return response


# -- one rule broken -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Found:
    """An item of a response, with the Questionnaire item it answers."""

    item: Item
    raw: Json
    #: The list that holds ``raw`` (the response's or a group's ``item``).
    siblings: list[Json]


def found_items(crf: Crf, response: Json) -> list[Found]:
    """Every item of ``response`` with its definition (a generated response: all known)."""
    found: list[Found] = []

    def walk(raw_items: list[Json], definitions: tuple[Item, ...]) -> None:
        by_id = {d.link_id: d for d in definitions}
        for raw in raw_items:
            definition = by_id[raw["linkId"]]
            found.append(Found(item=definition, raw=raw, siblings=raw_items))
            walk(raw.get("item", []), definition.children)

    walk(response.get("item", []), crf.items)
    return found


#: How a perturbation breaks a valid response in place; ``False`` when it does not apply to it.
Perturbation = Callable[[st.DrawFn, Crf, Json, dt.date], bool]


def _drop_required(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    # Required top-level questions no condition disables: missing, they are always an error.
    candidates = [
        f
        for f in found_items(crf, response)
        if f.siblings is response.get("item") and f.item.required and not f.item.enable_when
    ]
    if response["status"] == "in-progress" or not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    chosen.siblings.remove(chosen.raw)
    return True


def _answers(crf: Crf, response: Json, types: tuple[str, ...]) -> list[Found]:
    return [f for f in found_items(crf, response) if f.item.type in types and "answer" in f.raw]


def _code_outside_value_set(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    candidates = _answers(crf, response, ("choice",))
    if not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    coding = chosen.raw["answer"][0]["valueCoding"]
    coding["code"] = draw(st.sampled_from(["not-a-code", "PD", coding["code"] + "x"]))
    coding.pop("display", None)
    return True


def _out_of_range(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    candidates = [
        f
        for f in _answers(crf, response, ("decimal", "integer"))
        if f.item.min_value is not None or f.item.max_value is not None
    ]
    if not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    item = chosen.item
    beyond = []
    if item.min_value is not None:
        beyond.append(item.min_value - (1 if item.type == "integer" else Decimal("0.1")))
    if item.max_value is not None:
        beyond.append(item.max_value + (1 if item.type == "integer" else Decimal("0.1")))
    value = draw(st.sampled_from(beyond))
    chosen.raw["answer"][0] = {
        item.value_key: int(value) if item.type == "integer" else float(value)
    }
    return True


#: A value of another type than the item's, as the answer's value[x].
_WRONG_TYPE = {
    "valueBoolean": ("valueString", "yes"),
    "valueDecimal": ("valueString", "12.5"),
    "valueInteger": ("valueDecimal", 2.5),
    "valueDate": ("valueInteger", 2025),
    "valueString": ("valueBoolean", True),
    "valueCoding": ("valueString", "CT"),
}


def _wrong_type(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    candidates = _answers(crf, response, tuple(VALUE_KEYS))
    if not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    key, value = _WRONG_TYPE[chosen.item.value_key]
    chosen.raw["answer"][0] = {key: value}
    return True


def _second_answer(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    candidates = [f for f in _answers(crf, response, tuple(VALUE_KEYS)) if not f.item.repeats]
    if not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    chosen.raw["answer"].append(copy.deepcopy(chosen.raw["answer"][0]))
    return True


def _unknown_link_id(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    known = {item.link_id for item in crf.walk()}
    link_id = draw(fhir_strings.filter(lambda text: text not in known))
    items = response.setdefault("item", [])
    items.insert(
        draw(st.integers(0, len(items))), {"linkId": link_id, "answer": [{"valueString": "x"}]}
    )
    return True


def _future_date(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    candidates = _answers(crf, response, ("date",))
    if not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    # More than a day ahead: a date one day ahead may be today east of Greenwich.
    later = today + dt.timedelta(days=draw(st.integers(2, 3650)))
    chosen.raw["answer"][0] = {"valueDate": later.isoformat()}
    return True


def _bad_status(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    response["status"] = draw(st.sampled_from(["final", "preliminary", "Completed", "done"]))
    return True


def _no_subject(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    del response["subject"]
    return True


def _disabled_answered(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    """Answer a top-level question that the form's own answers disable."""
    answers = Answers()
    for found in found_items(crf, response):
        for answer in found.raw.get("answer", []):
            answers.by_link_id.setdefault(found.item.link_id, []).extend(answer.values())
    items = response.setdefault("item", [])
    present = {raw["linkId"] for raw in items}
    candidates = [
        item
        for item in crf.items
        if item.type != "group" and item.link_id not in present and not answers.enabled(item)
    ]
    if not candidates:
        return False
    item = draw(st.sampled_from(candidates))
    value = draw(answer_values(item, today))
    position = [d.link_id for d in crf.items].index(item.link_id)
    items.insert(
        min(position, len(items)), {"linkId": item.link_id, "answer": [{item.value_key: value}]}
    )
    return True


def _too_many_groups(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    """One occurrence more of a group than ``maxOccurs`` (or a second of a non-repeating one)."""
    groups = [f for f in found_items(crf, response) if f.item.type == "group"]
    candidates = [f for f in groups if not f.item.repeats or f.item.max_occurs is not None]
    if not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    occurrences = [raw for raw in chosen.siblings if raw["linkId"] == chosen.item.link_id]
    position = chosen.siblings.index(occurrences[-1]) + 1
    for _ in range(chosen.item.most + 1 - len(occurrences)):
        chosen.siblings.insert(position, copy.deepcopy(chosen.raw))
    return True


def _empty_answer(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    candidates = _answers(crf, response, tuple(VALUE_KEYS))
    if not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    chosen.raw["answer"][0] = {}
    return True


def _question_twice(draw: st.DrawFn, crf: Crf, response: Json, today: dt.date) -> bool:
    """The same question twice under one parent (R4 qrs-2)."""
    candidates = _answers(crf, response, tuple(VALUE_KEYS))
    if not candidates:
        return False
    chosen = draw(st.sampled_from(candidates))
    position = chosen.siblings.index(chosen.raw) + 1
    chosen.siblings.insert(position, copy.deepcopy(chosen.raw))
    return True


PERTURBATIONS: dict[str, Perturbation] = {
    "required item missing": _drop_required,
    "code outside the answer value set": _code_outside_value_set,
    "number out of range": _out_of_range,
    "answer of the wrong type": _wrong_type,
    "second answer to a non-repeating question": _second_answer,
    "unknown linkId": _unknown_link_id,
    "date in the future": _future_date,
    "status outside the value set": _bad_status,
    "no subject": _no_subject,
    "disabled item answered": _disabled_answered,
    "group beyond maxOccurs": _too_many_groups,
    "answer without a value": _empty_answer,
    "question twice under one parent": _question_twice,
}


@st.composite
def perturbed_responses(draw: st.DrawFn, crf: Crf, today: dt.date, rule: str) -> Json:
    """A valid response with the rule ``rule`` of :data:`PERTURBATIONS` broken.

    A form that has nothing the rule can break (no number answered, ...) is rejected
    (``assume``), so Hypothesis draws another.
    """
    response = draw(valid_responses(crf, today))
    assume(PERTURBATIONS[rule](draw, crf, response, today))
    return response
