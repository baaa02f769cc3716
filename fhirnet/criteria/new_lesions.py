"""Which new lesions count at a follow-up (``criteria.md`` §2.3).

A new lesion counts unless it is a normal-sized lymph node (D28), it is seen only with a modality
not used before (the seed review's "new baseline lesion" for a newly used, more sensitive modality,
D11), it is equivocal, or — RECIST 1.1 and Choi — it is a 10 to 15 mm node that is the only
evidence of progression (D28). A lesion held back for one of the last three reasons and later
confirmed backdates the progression to its first sighting (D11, D12, D28); iRECIST ignores that
date (it does not backdate).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from fhirnet.criteria.models import Modality, NewLesion, TimePoint
from fhirnet.criteria.thresholds import (
    MEASURABLE_NODAL_MM,
    NODE_NORMAL_SHORT_AXIS_MM,
    less_than,
    rounded,
)
from fhirnet.criteria.timeline import Timeline

WHY_EQUIVOCAL = "as equivocal"
WHY_NEW_MODALITY = "only on a modality not used before"
WHY_EQUIVOCAL_NODE = "as a 10 to 15 mm node that was the only evidence of progression"


@dataclass(frozen=True, kw_only=True)
class NewLesionRules:
    """Which of the v2 lymph-node rules a criteria applies (``criteria.md`` §2.3, D28)."""

    small_nodes: bool  # nodes below 10 mm are normal: all criteria but PERCIST
    equivocal_nodes: bool  # 10-15 mm nodes as the only evidence are equivocal: RECIST 1.1, Choi


RECIST_RULES = NewLesionRules(small_nodes=True, equivocal_nodes=True)  # RECIST 1.1 and Choi
IRECIST_RULES = NewLesionRules(small_nodes=True, equivocal_nodes=False)
PERCIST_RULES = NewLesionRules(small_nodes=False, equivocal_nodes=False)


@dataclass(frozen=True, kw_only=True)
class Confirmation:
    """A lesion held back at earlier follow-ups that counts now, and since when (D11, D12, D28)."""

    lesion_id: str
    since: dt.date  # its first sighting (a node: the first at 10 mm or more)
    why: str  # how it was first seen, e.g. "as equivocal"


@dataclass(frozen=True, kw_only=True)
class NewLesionFindings:
    """The new lesions of one follow-up, sorted into those that count and those that do not."""

    counted: tuple[NewLesion, ...]
    equivocal: tuple[NewLesion, ...]  # flagged equivocal by the reader (D12)
    equivocal_nodes: tuple[NewLesion, ...] = ()  # 10-15 mm nodes, the only evidence (D28)
    small_nodes: tuple[NewLesion, ...] = ()  # nodes below 10 mm: normal (D28)
    new_baseline: tuple[NewLesion, ...]  # first seen on a modality not used before (D11)
    confirmed: tuple[Confirmation, ...] = ()  # held back before, counted now
    warnings: tuple[str, ...]

    @property
    def any_counted(self) -> bool:
        return bool(self.counted)

    @property
    def backdated_to(self) -> dt.date | None:
        """The earliest first sighting of a lesion confirmed now: a progression date (§6.1)."""
        return min((c.since for c in self.confirmed), default=None)


@dataclass(kw_only=True)
class NewLesionSorter:
    """Sorts the new lesions of each follow-up in date order, remembering earlier sightings.

    Call :meth:`sort` once per follow-up, in date order: whether a lesion counts depends on how
    it (and the modality that shows it) was seen before.
    """

    timeline: Timeline
    rules: NewLesionRules
    used: set[Modality] = field(init=False)  # M(t): modalities of the baseline and earlier exams
    rebaselined: dict[str, Modality] = field(init=False, default_factory=dict)
    held_back: dict[str, Confirmation] = field(init=False, default_factory=dict)
    counted_before: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.used = set(self.timeline.baseline.modalities)

    def sort(self, timepoint: TimePoint, *, other_progression: bool = False) -> NewLesionFindings:
        """The new-lesion findings of ``timepoint``, the next follow-up in date order.

        :param other_progression: targets or non-targets show progression at this timepoint, so
            a 10 to 15 mm new node is not the only evidence (RECIST 1.1 and Choi, D28).
        """
        out = _Sorting()
        for lesion in timepoint.new_lesions:
            self._sort_one(lesion, timepoint, out)
        if other_progression or out.counted:
            out.counted += out.node_candidates
        else:  # each borderline node is the only evidence: several on one scan are each equivocal
            for lesion in out.node_candidates:
                self._hold_back(lesion, timepoint, WHY_EQUIVOCAL_NODE)
                out.equivocal_nodes.append(lesion)
                out.warnings.append(_equivocal_node_warning(lesion, timepoint))
        order = [lesion.id for lesion in timepoint.new_lesions]
        counted = tuple(sorted(out.counted, key=lambda lesion: order.index(lesion.id)))
        self.counted_before.update(lesion.id for lesion in counted)
        self.used.update(timepoint.modalities)
        return NewLesionFindings(
            counted=counted,
            equivocal=tuple(out.equivocal),
            equivocal_nodes=tuple(out.equivocal_nodes),
            small_nodes=tuple(out.small_nodes),
            new_baseline=tuple(out.new_baseline),
            confirmed=tuple(out.confirmed),
            warnings=tuple(out.warnings),
        )

    def _sort_one(self, lesion: NewLesion, timepoint: TimePoint, out: _Sorting) -> None:
        """Apply the rules of §2.3 in their order: small node, new modality, equivocal, node."""
        if self.rules.small_nodes and _is_small_node(lesion):
            out.small_nodes.append(lesion)
            out.warnings.append(_small_node_warning(lesion, timepoint))
            return
        modality = self._rebaselined_modality(lesion)
        if modality is not None:
            self.rebaselined.setdefault(lesion.id, modality)
            self._hold_back(lesion, timepoint, WHY_NEW_MODALITY)
            out.new_baseline.append(lesion)
            out.warnings.append(_new_modality_warning(lesion, timepoint))
        elif lesion.equivocal:
            self._hold_back(lesion, timepoint, WHY_EQUIVOCAL)
            out.equivocal.append(lesion)
        elif lesion.id in self.held_back:
            out.counted.append(lesion)
            out.confirmed.append(self.held_back.pop(lesion.id))
        elif (
            self.rules.equivocal_nodes
            and _is_borderline_node(lesion)
            and lesion.id not in self.counted_before
        ):
            out.node_candidates.append(lesion)
        else:
            out.counted.append(lesion)

    def _hold_back(self, lesion: NewLesion, timepoint: TimePoint, why: str) -> None:
        """Remember the first sighting of a lesion that does not count (yet)."""
        if lesion.id not in self.counted_before:
            self.held_back.setdefault(
                lesion.id, Confirmation(lesion_id=lesion.id, since=timepoint.date, why=why)
            )

    def _rebaselined_modality(self, lesion: NewLesion) -> Modality | None:
        """The modality a lesion is a new baseline lesion for: one never used before, or the one
        it re-baselined when first seen; ``None`` when the rule does not apply (D11)."""
        modality = lesion.modality
        if modality is None or not self.timeline.baseline.modalities:
            return None
        if modality not in self.used or self.rebaselined.get(lesion.id) == modality:
            return modality
        return None


@dataclass(kw_only=True)
class _Sorting:
    """The lists one follow-up's new lesions are sorted into."""

    counted: list[NewLesion] = field(default_factory=list)
    equivocal: list[NewLesion] = field(default_factory=list)
    equivocal_nodes: list[NewLesion] = field(default_factory=list)
    node_candidates: list[NewLesion] = field(default_factory=list)
    small_nodes: list[NewLesion] = field(default_factory=list)
    new_baseline: list[NewLesion] = field(default_factory=list)
    confirmed: list[Confirmation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _mm(value: Decimal | None) -> str:
    return f"{rounded(value)} mm"


def _short_axis(lesion: NewLesion) -> Decimal | None:
    return lesion.diameter_mm if lesion.nodal else None


def _is_small_node(lesion: NewLesion) -> bool:
    """A new node below 10 mm short axis is a normal node (EORTC RECIST Q&A; D28)."""
    size = _short_axis(lesion)
    return size is not None and less_than(size, NODE_NORMAL_SHORT_AXIS_MM)


def _is_borderline_node(lesion: NewLesion) -> bool:
    """A new node of 10 mm to below 15 mm short axis (D28); the caller excludes smaller ones."""
    size = _short_axis(lesion)
    return size is not None and less_than(size, MEASURABLE_NODAL_MM)


def _small_node_warning(lesion: NewLesion, timepoint: TimePoint) -> str:
    return (
        f"small-new-node: new lymph node {lesion.id} on {timepoint.date.isoformat()} measures "
        f"{_mm(lesion.diameter_mm)} in short axis, below "
        f"{NODE_NORMAL_SHORT_AXIS_MM} mm: a normal node, not a new lesion (EORTC RECIST Q&A "
        '"new lymph node lesions"; criteria.md D28)'
    )


def _equivocal_node_warning(lesion: NewLesion, timepoint: TimePoint) -> str:
    return (
        f"equivocal-new-node: new lymph node {lesion.id} on {timepoint.date.isoformat()} measures "
        f"{_mm(lesion.diameter_mm)} in short axis ({NODE_NORMAL_SHORT_AXIS_MM} to "
        f"below {MEASURABLE_NODAL_MM} mm) and is the only evidence of progression: equivocal, it "
        f"counts if a later exam lists it again at {NODE_NORMAL_SHORT_AXIS_MM} mm or more "
        '(EORTC RECIST Q&A "new lymph node lesions"; criteria.md D28)'
    )


def _new_modality_warning(lesion: NewLesion, timepoint: TimePoint) -> str:
    return (
        f"new-modality-lesion: new lesion {lesion.id} on {timepoint.date.isoformat()} is seen only "
        f"on {lesion.modality}, not used at earlier exams; it is a new baseline lesion for that "
        "modality, not progression"
    )


def sort_new_lesions(timeline: Timeline, rules: NewLesionRules) -> Iterator[NewLesionFindings]:
    """The new-lesion findings of each follow-up, in date order, for criteria whose rules do not
    look at the other evidence of progression (iRECIST, PERCIST)."""
    if rules.equivocal_nodes:
        raise ValueError("the equivocal-node rule needs NewLesionSorter.sort(other_progression=)")
    sorter = NewLesionSorter(timeline=timeline, rules=rules)
    for timepoint in timeline.follow_ups:
        yield sorter.sort(timepoint)
