"""enableWhen evaluated on the nodes of a response walk (:mod:`fhirnet.fhir.questionnaire`): the
:class:`Node`\\ s and :class:`Container`\\ s the walk builds, and :class:`EnableWhen`, which
decides whether each node is enabled.

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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhirnet.fhir.outcome import Issue
from fhirnet.fhir.questionnaire_index import Condition, ItemDefinition, Value

#: Whether an item is enabled; ``None`` when it cannot be known because a question it depends
#: on has an invalid answer (then neither "required" nor "disabled" is reported about it).
Enabled = bool | None


@dataclass(eq=False, kw_only=True)
class Node:
    """One item of the response that sits where the Questionnaire puts its linkId."""

    definition: ItemDefinition
    raw: Mapping[str, Any]
    expression: str
    parent: Node | None
    #: Position in document order (pre-order), for "nearest preceding" in enableWhen.
    order: int
    #: Well-formed answer values, for enableWhen.
    values: list[Value] = field(default_factory=list)
    #: Problems of its answers, reported unless the item turns out to be disabled.
    answer_issues: list[Issue] = field(default_factory=list)
    #: Some answer is invalid: items depending on this question have an unknown enabled state.
    uncertain: bool = False
    #: The item lists inside it: a group's ``item``, or each answer's ``item``.
    containers: list[Container] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class Container:
    """One list of items: the response's, a group occurrence's or an answer's."""

    expression: str
    owner: Node | None
    nodes: list[Node] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class EnableWhen:
    """Whether the nodes of one response are enabled, each decided once (and cached)."""

    _by_link_id: dict[str, list[Node]] = field(default_factory=dict)
    _enabled: dict[Node, Enabled] = field(default_factory=dict)

    def add(self, node: Node) -> None:
        """Make ``node`` an occurrence its linkId's conditions can find."""
        self._by_link_id.setdefault(node.definition.link_id, []).append(node)

    def node_enabled(self, node: Node) -> Enabled:
        if node in self._enabled:
            return self._enabled[node]
        self._enabled[node] = False  # a cycle of enableWhen disables its members
        parent = True if node.parent is None else self.node_enabled(node.parent)
        enabled = _and([parent, self.conditions(node.definition, node.parent, node.order)])
        self._enabled[node] = enabled
        return enabled

    def conditions(self, definition: ItemDefinition, scope: Node | None, order: int) -> Enabled:
        if not definition.enable_when:
            return True
        results = [self._condition(c, scope, order) for c in definition.enable_when]
        return _or(results) if definition.enable_any else _and(results)

    def _condition(self, condition: Condition, scope: Node | None, order: int) -> Enabled:
        """One enableWhen, on the occurrence of its question nearest to an item at ``order``
        inside ``scope``: an absent or disabled question counts as unanswered."""
        question = self._nearest(condition.question, scope, order)
        enabled = False if question is None else self.node_enabled(question)
        if question is None or enabled is False:
            return condition.holds(())
        if enabled is None or question.uncertain:
            return None
        return condition.holds(question.values)

    def _nearest(self, link_id: str, scope: Node | None, order: int) -> Node | None:
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


def _within(node: Node, ancestor: Node | None) -> bool:
    if ancestor is None:
        return True
    parent = node.parent
    while parent is not None:
        if parent is ancestor:
            return True
        parent = parent.parent
    return False
