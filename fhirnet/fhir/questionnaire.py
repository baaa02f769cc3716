"""Validation of a QuestionnaireResponse against FHIR R4 and the CRF Questionnaire: every problem
at once, as :class:`~fhirnet.fhir.outcome.Issue`\\ s (``style.md`` P8).

**Expressions** are FHIRPath into the response as received, with JSON property names: indices
count the arrays as sent, and a choice element keeps its type suffix (``answer[0].valueDecimal``,
not ``answer[0].value``), so the expression names what the client sent even when the type is
the problem. A missing item or element is reported at its parent (``QuestionnaireResponse`` or
``QuestionnaireResponse.item[8]``) with its linkId in the message; a present item that lacks an
answer is reported at the item.

**Rules** (R4 = FHIR 4.0.1; "HL7" = the HL7 Java validator's choice, ``QuestionnaireValidator``):

=====================================================  =============  ===========================
rule                                                   code           expression
=====================================================  =============  ===========================
FHIR structure (fhir.resources R4B, see resources.py)  structure /    the element (missing: its
                                                       required /     parent)
                                                       value
``status`` outside questionnaire-answers-status        code-invalid   ``QuestionnaireResponse.
(required binding; the models do not check codes)                     status``
``subject`` missing (crf.md: the Patient is required)  required       ``QuestionnaireResponse``
``subject`` not a Patient reference                    value          ``...subject.reference``
``authored`` after ``today``                           business-rule  ``...authored``
``questionnaire`` missing                              required       ``QuestionnaireResponse``
``questionnaire`` not ours, or an unknown version      not-found      ``...questionnaire``
linkId unknown to the Questionnaire (as HL7: the       not-found      ``...item[i]``
  item refers to something that does not exist)
linkId of the Questionnaire, wrong parent              structure      ``...item[i]``
items out of the Questionnaire's order (warning)       structure      ``...item[i]``
group with answers / question with ``item`` (R4 puts   structure      ``...answer[0]`` /
  a question's children in ``answer.item``; qrs-1)                    ``...item[i].item[0]``
answer without a value                                 structure      ``...answer[j]``
wrong answer type; decimal/boolean/integer not a       structure      ``...answer[j].valueX``
  JSON number/boolean/integer (the models coerce)
required item missing or unanswered (a warning while   required       parent / the item
  ``in-progress`` or ``stopped``, R4 item.required)
answered while disabled by enableWhen                  business-rule  ``...item[i]``
group beyond ``questionnaire-maxOccurs`` (or a 2nd     structure      the extra ``item[i]``
  occurrence of a non-repeating group)
2nd answer to a non-repeating question                 structure      ``...answer[1]``
same question twice under one parent (qrs-2)           structure      the 2nd ``item[i]``
Coding not in the answerValueSet / not an answerOption code-invalid   ``...valueCoding``
Coding display differs from the concept's (warning)    code-invalid   ``...valueCoding.display``
number below ``minValue`` / above ``maxValue``         value          ``...valueDecimal``
``valueQuantity`` whose unit is not the item's UCUM    value          ``...valueQuantity``
  ``questionnaire-unit``
``valueDate``/``valueDateTime`` after ``today`` (UTC;  business-rule  ``...valueDate``
  a date-only value may be one day ahead, UTC+14)
=====================================================  =============  ===========================

A disabled item is not required; items inside a disabled, unknown or misplaced item are not
checked (the item itself is the problem). When the ``questionnaire`` is missing or not ours the
item checks are skipped; the structure, status, subject and authored checks still run. Problems
the FHIR models already reported (an element in :attr:`Parsed.rejected`) are not repeated.

**enableWhen** follows R4 (Questionnaire.item.enableWhen, its comments, and the
questionnaire-enable-operator code system): ``exists`` compares "has an answer" with the boolean;
``=`` holds when some answer equals the value; ``!=`` when no answer does (so also when
unanswered); ``>``, ``<``, ``>=``, ``<=`` when some answer compares so (numbers, dates, times,
strings, quantities of one unit); ``enableBehavior`` all (the default) or any. The question's
answers are those of its nearest occurrence in scope: inside the same group repetition first,
then each enclosing item, then the whole response; among several at one level the nearest
preceding, else the first following. A question that is itself disabled counts as unanswered, a
cycle of enableWhen as disabled.

The conditions are evaluated in Python on the walk's own nodes rather than with fhirpathpy: the
nearest-occurrence scoping and "disabled counts as unanswered" are not one FHIRPath expression,
and fhirpathpy needs ~3 ms per ``repeat(item)`` query on a 40-item response (tooling.md §3):
the form's 11 conditions alone would exceed the 10 ms budget of a submission. The tests check
the results on the form against the conditions written as FHIRPath and run by fhirpathpy.

An invalid answer to a question (wrong type, code outside the value set, rejected by the models)
leaves the items depending on it *unknown*: neither "required" nor "disabled" is reported about
them (Kleene logic through enableBehavior), so one typo in ``assessment-type`` is one issue, not
six.

**Performance**: the Questionnaire is indexed once per :class:`Catalog` (value sets expanded,
extensions read, conditions compiled: :mod:`fhirnet.fhir.questionnaire_index`, kept by the
catalog), then a response is one pass to build nodes and check
answers and one pass over the Questionnaire for enableWhen, required items and occurrences. A
follow-up with 5 fully answered targets, a non-target and a new lesion (75 answers) validates in
2.7 ms, of which the R4B models take 1.9 ms (median of ``timeit``, 2 cores, Python 3.11).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fhirnet.fhir.outcome import Issue, IssueType
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL, Catalog
from fhirnet.fhir.questionnaire_index import (
    UCUM,
    Condition,
    ItemDefinition,
    QuestionnaireIndex,
    Value,
    comparable_value,
    is_choice,
    json_number,
    json_string,
    questionnaire_index,
    shape_ok,
)
from fhirnet.fhir.resources import QuestionnaireResponse, parse

__all__ = [
    "Condition",
    "ItemDefinition",
    "QuestionnaireIndex",
    "answer_value",
    "answers_by_link_id",
    "questionnaire_index",
    "validate_response",
]

ROOT = "QuestionnaireResponse"

#: QuestionnaireResponse.status, required binding to questionnaire-answers-status (R4).
STATUSES = frozenset({"in-progress", "completed", "amended", "entered-in-error", "stopped"})
#: Statuses of a response still being filled in: a missing required answer is only a warning
#: (R4 Questionnaire.item.required: "must be present in a 'completed' QuestionnaireResponse").
_PARTIAL = frozenset({"in-progress", "stopped"})

#: ``Patient/<id>`` (optionally absolute and versioned) or a ``urn:uuid:`` of a transaction.
_PATIENT = re.compile(
    r"(?:https?://\S+/)?Patient/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
    r"|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
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


def _in_future(text: object, today: dt.date) -> bool:
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


def validate_response(
    response: Mapping[str, Any], catalog: Catalog, *, today: dt.date
) -> list[Issue]:
    """Every problem of ``response`` as a FHIR R4 QuestionnaireResponse to the CRF Questionnaire.

    Pure: ``today`` is a parameter (``style.md`` P13), never the clock.

    :param response: the request body as parsed JSON (anything; a non-object is one issue).
    :param catalog: the conformance resources; the Questionnaire's index is kept by the catalog.
    :param today: the current date in UTC; answers and ``authored`` must not lie after it.
    :returns: the issues in document order (resource-level first), errors and warnings; empty
        when the response is valid.
    :raises fhirnet.errors.ProfileNotFoundError: the catalog lacks the Questionnaire or one of
        its value sets (a deployment error, not a problem of the response).
    """
    parsed = parse(response, QuestionnaireResponse)
    issues = list(parsed.issues)
    if parsed.resource is None and ROOT in parsed.rejected:
        return issues  # not an object, or another resource type
    checker = _Checker(
        index=questionnaire_index(catalog),
        today=today,
        partial=json_string(response.get("status")) in _PARTIAL,
        rejected=parsed.rejected,
    )
    checker.resource(response, catalog)
    return issues + checker.issues


#: Whether an item is enabled; ``None`` when it cannot be known because a question it depends
#: on has an invalid answer (then neither "required" nor "disabled" is reported about it).
Enabled = bool | None


@dataclass(eq=False, kw_only=True)
class _Node:
    """One item of the response that sits where the Questionnaire puts its linkId."""

    definition: ItemDefinition
    raw: Mapping[str, Any]
    expression: str
    parent: _Node | None
    #: Position in document order (pre-order), for "nearest preceding" in enableWhen.
    order: int
    #: Well-formed answer values, for enableWhen.
    values: list[Value] = field(default_factory=list)
    #: Problems of its answers, reported unless the item turns out to be disabled.
    answer_issues: list[Issue] = field(default_factory=list)
    #: Some answer is invalid: items depending on this question have an unknown enabled state.
    uncertain: bool = False
    #: The item lists inside it: a group's ``item``, or each answer's ``item``.
    containers: list[_Container] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class _Container:
    """One list of items: the response's, a group occurrence's or an answer's."""

    expression: str
    owner: _Node | None
    nodes: list[_Node] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class _Checker:
    """One validation: :meth:`_collect` builds the nodes, reporting items that are not in their
    place and checking answers; :meth:`_check` then walks the Questionnaire level by level for
    enableWhen, required items and occurrences."""

    index: QuestionnaireIndex
    today: dt.date
    partial: bool
    rejected: frozenset[str]
    issues: list[Issue] = field(default_factory=list)
    _by_link_id: dict[str, list[_Node]] = field(default_factory=dict)
    _enabled: dict[_Node, Enabled] = field(default_factory=dict)
    _count: int = 0

    def add(self, code: IssueType, expression: str, message: str, *, warning: bool = False) -> None:
        make = Issue.warning if warning else Issue.error
        self.emit([make(code, message, expression=expression)])

    def emit(self, issues: Iterable[Issue]) -> None:
        """Report ``issues``, except inside elements the FHIR models already rejected."""
        self.issues += [i for i in issues if not self._inside_rejected(i.expression or ROOT)]

    def _inside_rejected(self, expression: str) -> bool:
        return any(
            expression == element or expression.startswith((element + ".", element + "["))
            for element in self.rejected
        )

    def _touches_rejected(self, expression: str) -> bool:
        return any(
            element == expression or element.startswith((expression + ".", expression + "["))
            for element in self.rejected
        )

    # -- resource-level elements

    def resource(self, response: Mapping[str, Any], catalog: Catalog) -> None:
        status = response.get("status")
        if isinstance(status, str) and status not in STATUSES:
            self.add(
                IssueType.CODE_INVALID,
                f"{ROOT}.status",
                f"status {status!r} is not one of {', '.join(sorted(STATUSES))}",
            )
        self._subject(response.get("subject"))
        authored = response.get("authored")
        if _in_future(authored, self.today):
            self.add(
                IssueType.BUSINESS_RULE,
                f"{ROOT}.authored",
                f"authored {authored} is in the future (today is {self.today} UTC)",
            )
        if self._questionnaire(response.get("questionnaire"), catalog):
            root = self._collect(response.get("item"), self.index.items, None, ROOT)
            self._check(root, self.index.items)

    def _subject(self, subject: object) -> None:
        if subject is None:
            self.add(
                IssueType.REQUIRED,
                ROOT,
                "subject is missing: the response must name the Patient it is about",
            )
            return
        if not isinstance(subject, Mapping):
            return
        reference, kind = subject.get("reference"), subject.get("type")
        if isinstance(kind, str) and kind != "Patient":
            self.add(IssueType.VALUE, f"{ROOT}.subject.type", f"subject is a {kind}, not a Patient")
        elif isinstance(reference, str):
            if not _PATIENT.fullmatch(reference):
                self.add(
                    IssueType.VALUE,
                    f"{ROOT}.subject.reference",
                    f"subject {reference!r} is not a Patient reference "
                    "(Patient/<id>, an absolute URL ending so, or urn:uuid:<uuid>)",
                )
        elif not (kind == "Patient" and subject.get("identifier")):
            self.add(
                IssueType.VALUE,
                f"{ROOT}.subject",
                "subject names no Patient: give a reference Patient/<id>, "
                "or type Patient with an identifier",
            )

    def _questionnaire(self, canonical: object, catalog: Catalog) -> bool:
        """Whether ``canonical`` is our Questionnaire, optionally ``|version`` of a known one."""
        ours = f"{self.index.url}|{self.index.version}"
        if canonical is None:
            self.add(IssueType.REQUIRED, ROOT, f"questionnaire is missing: expected {ours}")
            return False
        if not isinstance(canonical, str) or self._inside_rejected(f"{ROOT}.questionnaire"):
            return False
        url, _, version = canonical.partition("|")
        if url != QUESTIONNAIRE_URL:
            self.add(
                IssueType.NOT_FOUND,
                f"{ROOT}.questionnaire",
                f"questionnaire {canonical} is not one this service knows; expected {ours}",
            )
            return False
        if version and catalog.by_url(canonical) is None:
            self.add(
                IssueType.NOT_FOUND,
                f"{ROOT}.questionnaire",
                f"version {version!r} of {url} is unknown; this service has {self.index.version}",
            )
            return False
        return True

    # -- pass 1: nodes and their answers

    def _collect(
        self,
        raw_items: object,
        definitions: Mapping[str, ItemDefinition],
        owner: _Node | None,
        expression: str,
    ) -> _Container:
        container = _Container(expression=expression, owner=owner)
        previous: ItemDefinition | None = None
        for i, raw in enumerate(_list(raw_items)):
            link_id = raw.get("linkId") if isinstance(raw, Mapping) else None
            if not isinstance(link_id, str):
                continue  # the models report the missing or malformed linkId
            item_expression = f"{expression}.item[{i}]"
            definition = definitions.get(link_id)
            if definition is None:
                self._misplaced(link_id, item_expression, owner)
                continue
            if previous is not None and definition.position < previous.position:
                self.add(
                    IssueType.STRUCTURE,
                    item_expression,
                    f"{link_id!r} comes before {previous.link_id!r} in the Questionnaire",
                    warning=True,
                )
            previous = definition
            container.nodes.append(self._node(definition, raw, item_expression, owner))
        return container

    def _misplaced(self, link_id: str, expression: str, owner: _Node | None) -> None:
        known = self.index.by_link_id.get(link_id)
        if known is None:
            self.add(
                IssueType.NOT_FOUND, expression, f"linkId {link_id!r} is not in the Questionnaire"
            )
            return
        here = f"under {owner.definition.link_id!r}" if owner else "at the top level"
        self.add(
            IssueType.STRUCTURE, expression, f"{link_id!r} belongs {known.where()}, not {here}"
        )

    def _node(
        self,
        definition: ItemDefinition,
        raw: Mapping[str, Any],
        expression: str,
        parent: _Node | None,
    ) -> _Node:
        node = _Node(
            definition=definition, raw=raw, expression=expression, parent=parent, order=self._count
        )
        self._count += 1
        self._by_link_id.setdefault(definition.link_id, []).append(node)
        link_id = definition.link_id
        answers, nested = _list(raw.get("answer")), _list(raw.get("item"))
        if not definition.is_question:
            if answers:
                message = f"{link_id!r} is a {definition.type}: it has no answers"
                self.add(IssueType.STRUCTURE, f"{expression}.answer[0]", message)
            if definition.type == "group":
                node.containers.append(self._collect(nested, definition.children, node, expression))
            elif nested:
                message = f"{link_id!r} is a display item: it has no nested items"
                self.add(IssueType.STRUCTURE, f"{expression}.item[0]", message)
            return node
        if nested:
            message = f"{link_id!r} is a question: items nested in it belong in answer.item (qrs-1)"
            self.add(IssueType.STRUCTURE, f"{expression}.item[0]", message)
        for j, answer in enumerate(answers):
            path = f"{expression}.answer[{j}]"
            issues = self._answer(definition, answer, path)
            node.answer_issues += issues
            node.uncertain |= self._touches_rejected(path) or any(i.is_error for i in issues)
            value = answer_value(answer)
            comparable = comparable_value(*value) if value else None
            if comparable is not None:
                node.values.append(comparable)
            if isinstance(answer, Mapping) and (definition.children or "item" in answer):
                inner = self._collect(answer.get("item"), definition.children, node, path)
                node.containers.append(inner)
        return node

    def _answer(self, definition: ItemDefinition, answer: object, path: str) -> list[Issue]:
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
                return self._quantity(definition, value, path)
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
        if key in {"valueDate", "valueDateTime"} and _in_future(value, self.today):
            message = f"{value} is in the future (today is {self.today} UTC)"
            return [Issue.error(IssueType.BUSINESS_RULE, message, expression=path)]
        return []

    def _quantity(self, definition: ItemDefinition, value: object, path: str) -> list[Issue]:
        """A Quantity answer to a decimal item with a unit: that UCUM unit, then its limits."""
        if not isinstance(value, Mapping):
            return []  # the models report it
        system, code = value.get("system"), value.get("code")
        if system != UCUM or code != definition.unit:
            given = f"{code!r}" + ("" if system == UCUM else f" of system {system!r}")
            message = (
                f"wrong unit: {definition.link_id!r} is in {definition.unit} (UCUM), not {given}"
            )
            return [Issue.error(IssueType.VALUE, message, expression=path)]
        number = json_number(value.get("value"))
        if number is None:
            return [
                Issue.error(
                    IssueType.STRUCTURE, "the quantity has no number", expression=f"{path}.value"
                )
            ]
        return _range(definition, number, f"{path}.value")

    # -- enableWhen

    def _node_enabled(self, node: _Node) -> Enabled:
        if node in self._enabled:
            return self._enabled[node]
        self._enabled[node] = False  # a cycle of enableWhen disables its members
        parent = True if node.parent is None else self._node_enabled(node.parent)
        enabled = _and([parent, self._conditions(node.definition, node.parent, node.order)])
        self._enabled[node] = enabled
        return enabled

    def _conditions(self, definition: ItemDefinition, scope: _Node | None, order: int) -> Enabled:
        if not definition.enable_when:
            return True
        results = [self._condition(c, scope, order) for c in definition.enable_when]
        return _or(results) if definition.enable_any else _and(results)

    def _condition(self, condition: Condition, scope: _Node | None, order: int) -> Enabled:
        """One enableWhen, on the occurrence of its question nearest to an item at ``order``
        inside ``scope``: an absent or disabled question counts as unanswered."""
        question = self._nearest(condition.question, scope, order)
        enabled = False if question is None else self._node_enabled(question)
        if question is None or enabled is False:
            return condition.holds(())
        if enabled is None or question.uncertain:
            return None
        return condition.holds(question.values)

    def _nearest(self, link_id: str, scope: _Node | None, order: int) -> _Node | None:
        candidates = self._by_link_id.get(link_id, [])
        level = scope
        while candidates:
            inside = [node for node in candidates if _within(node, level)]
            if inside:
                preceding = [node for node in inside if node.order < order]
                return preceding[-1] if preceding else inside[0]
            if level is None:
                break
            level = level.parent
        return None

    # -- pass 2: the Questionnaire, level by level

    def _check(self, container: _Container, definitions: Mapping[str, ItemDefinition]) -> None:
        by_link_id: dict[str, list[_Node]] = {}
        for node in container.nodes:
            by_link_id.setdefault(node.definition.link_id, []).append(node)
        owner = container.owner
        for link_id, definition in definitions.items():
            nodes = by_link_id.get(link_id, [])
            if nodes:
                enabled = self._node_enabled(nodes[0])
            else:
                enabled = self._conditions(definition, owner, owner.order if owner else -1)
            if enabled is False:
                for node in filter(_has_content, nodes):
                    self.add(
                        IssueType.BUSINESS_RULE,
                        node.expression,
                        f"{link_id!r} is disabled (enabled when {definition.condition()}) "
                        "and must not be answered",
                    )
                continue
            if enabled:
                self._required(definition, nodes, container)
            self._occurrences(definition, nodes)
            for node in nodes:
                self.emit(node.answer_issues)
                for inner in node.containers:
                    self._check(inner, definition.children)

    def _required(
        self, definition: ItemDefinition, nodes: list[_Node], container: _Container
    ) -> None:
        if not definition.required or any(_answered(node) for node in nodes):
            return
        when = f" when {definition.condition()}" if definition.enable_when else ""
        if nodes:
            expression, message = nodes[0].expression, f"{definition.link_id!r} has no answer"
        else:
            expression, message = container.expression, f"{definition.link_id!r} is missing"
        self.add(
            IssueType.REQUIRED,
            expression,
            f"{message}; it is required{when}",
            warning=self.partial,
        )

    def _occurrences(self, definition: ItemDefinition, nodes: list[_Node]) -> None:
        link_id = definition.link_id
        limit = definition.max_occurs if definition.repeats else 1
        if not definition.is_question:
            for node in nodes[limit:] if limit is not None else []:
                self.add(
                    IssueType.STRUCTURE,
                    node.expression,
                    f"at most {limit} {link_id!r} allowed (questionnaire-maxOccurs)"
                    if definition.repeats
                    else f"{link_id!r} does not repeat: only one allowed",
                )
            return
        for node in nodes[1:]:
            self.add(
                IssueType.STRUCTURE,
                node.expression,
                f"{link_id!r} occurs again: all its answers belong in one item (qrs-2)",
            )
        for node in nodes:
            answers = _list(node.raw.get("answer"))
            for j in range(limit or len(answers), len(answers)):
                self.add(
                    IssueType.STRUCTURE,
                    f"{node.expression}.answer[{j}]",
                    f"at most {limit} answers to {link_id!r} allowed (questionnaire-maxOccurs)"
                    if definition.repeats
                    else f"{link_id!r} does not repeat: it takes one answer",
                )


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


def _and(values: Sequence[Enabled]) -> Enabled:
    """Kleene conjunction: false wins, then unknown."""
    if False in values:
        return False
    return None if None in values else True


def _or(values: Sequence[Enabled]) -> Enabled:
    """Kleene disjunction: true wins, then unknown."""
    if True in values:
        return True
    return None if None in values else False


_JSON_TYPES = {
    "valueBoolean": "a JSON boolean (true or false)",
    "valueDecimal": "a finite JSON number",
    "valueInteger": "a JSON integer",
    "valueCoding": "a Coding object",
    "valueQuantity": "a Quantity object",
    "valueReference": "a Reference object",
    "valueAttachment": "an Attachment object",
}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _within(node: _Node, ancestor: _Node | None) -> bool:
    if ancestor is None:
        return True
    parent = node.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False


def _answered(node: _Node) -> bool:
    """A group counts as answered when present, a question when it has an answer (one without
    a value is its own issue, not also a missing answer)."""
    return not node.definition.is_question or bool(_list(node.raw.get("answer")))


def _has_content(node: _Node) -> bool:
    """Whether an item says anything: one with neither answers nor items is ignored when
    disabled, as the HL7 validator does."""
    return bool(_list(node.raw.get("answer")) or _list(node.raw.get("item")))


def _words(text: str) -> str:
    return " ".join(text.casefold().split())
