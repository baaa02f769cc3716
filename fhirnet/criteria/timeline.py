"""The patient's exams in order: baseline, follow-ups, lesion values, sums of diameters and nadir.

Everything here is shared by the four criteria (``criteria.md`` §0): the baseline is the earliest
timepoint that is not pre-baseline, a lesion's value is its diameter (too small → 5 mm, missing or
``None`` → not evaluable), and the nadir of a follow-up is the smallest earlier sum.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from fhirnet.criteria.models import (
    NonTargetLesion,
    TargetLesion,
    TimePoint,
    TimePointRole,
)
from fhirnet.criteria.thresholds import TOO_SMALL_TO_MEASURE_MM


@dataclass(frozen=True, kw_only=True)
class Timeline:
    """Timepoints split by role and sorted by date."""

    baseline: TimePoint
    follow_ups: tuple[TimePoint, ...]
    pre_baseline: tuple[TimePoint, ...]

    @property
    def targets(self) -> tuple[TargetLesion, ...]:
        """The baseline target lesions, which define every later sum."""
        return self.baseline.targets

    @property
    def non_targets(self) -> tuple[NonTargetLesion, ...]:
        """The baseline non-target lesions."""
        return self.baseline.non_targets


def build_timeline(timepoints: Sequence[TimePoint]) -> Timeline:
    """Sort timepoints by date and split off pre-baseline scans (``criteria.md`` §0 "Order").

    The caller has validated that at least one timepoint is not pre-baseline.
    """
    ordered = sorted(timepoints, key=lambda tp: tp.date)
    assessed = [tp for tp in ordered if tp.role is TimePointRole.ASSESSMENT]
    return Timeline(
        baseline=assessed[0],
        follow_ups=tuple(assessed[1:]),
        pre_baseline=tuple(tp for tp in ordered if tp.role is TimePointRole.PRE_BASELINE),
    )


@dataclass(frozen=True, kw_only=True)
class LesionValue:
    """A target's value at one timepoint: ``mm`` is ``None`` when not evaluable (NE)."""

    lesion: TargetLesion  # the baseline lesion (identity, site, nodal)
    measured: TargetLesion | None  # the lesion as listed at this timepoint, if listed
    mm: Decimal | None
    too_small: bool = False

    @property
    def evaluable(self) -> bool:
        return self.mm is not None


def lesion_values(targets: Sequence[TargetLesion], timepoint: TimePoint) -> tuple[LesionValue, ...]:
    """Value of each baseline target at ``timepoint``, in baseline order (``criteria.md`` §0)."""
    listed = {lesion.id: lesion for lesion in timepoint.targets}
    values = []
    for target in targets:
        seen = listed.get(target.id)
        if seen is None:
            values.append(LesionValue(lesion=target, measured=None, mm=None))
        elif seen.too_small_to_measure:
            values.append(
                LesionValue(
                    lesion=target, measured=seen, mm=TOO_SMALL_TO_MEASURE_MM, too_small=True
                )
            )
        else:
            values.append(LesionValue(lesion=target, measured=seen, mm=seen.diameter_mm))
    return tuple(values)


def sum_of(values: Sequence[LesionValue]) -> Decimal | None:
    """Sum of diameters; ``None`` when any target is not evaluable (D13)."""
    if any(not v.evaluable for v in values):
        return None
    return evaluable_sum(values)


def evaluable_sum(values: Sequence[LesionValue]) -> Decimal:
    """Sum of the evaluable targets only: missing lesions can only add to it (RECIST §4.4.2)."""
    return sum((v.mm for v in values if v.mm is not None), Decimal(0))


@dataclass(frozen=True, kw_only=True)
class Measured:
    """One follow-up with its lesion values, its sum, and the nadir it is judged against."""

    timepoint: TimePoint
    values: tuple[LesionValue, ...]
    sum_mm: Decimal | None
    evaluable_sum_mm: Decimal
    baseline_sum_mm: Decimal
    nadir_sum_mm: Decimal
    nadir_date: dt.date


def measure(timeline: Timeline) -> Iterator[Measured]:
    """Yield each follow-up with its sum and nadir, in date order.

    The nadir is the smallest non-null sum among the baseline and all *earlier* follow-ups, ties
    going to the earliest date; the current timepoint never counts in its own nadir
    (RECIST 1.1 §4.3.1; EORTC RECIST Q&A "definition of SD").
    """
    baseline_sum = evaluable_sum(lesion_values(timeline.targets, timeline.baseline))
    nadir_sum, nadir_date = baseline_sum, timeline.baseline.date
    for timepoint in timeline.follow_ups:
        values = lesion_values(timeline.targets, timepoint)
        current = sum_of(values)
        yield Measured(
            timepoint=timepoint,
            values=values,
            sum_mm=current,
            evaluable_sum_mm=evaluable_sum(values),
            baseline_sum_mm=baseline_sum,
            nadir_sum_mm=nadir_sum,
            nadir_date=nadir_date,
        )
        if current is not None and current < nadir_sum:
            nadir_sum, nadir_date = current, timepoint.date


def organ_key(site: str, nodal: bool) -> str:
    """Organ for the per-organ limits: all nodes are one organ, "lymph nodes" (D21)."""
    return "lymph nodes" if nodal else site.strip().casefold()


def days_after(baseline: TimePoint, timepoint: TimePoint) -> int:
    """Calendar days from the baseline ("day n", ``criteria.md`` §0)."""
    return (timepoint.date - baseline.date).days
