"""PERCIST 1.0 scan by scan: each PET scan's reference region and what it warns about.

The reference region (liver, or blood pool as fallback) gives a scan its measurability threshold
and its CMR cut-off (``criteria.md`` §5.1); a missing or blood-pool reference and an uptake time or
liver SULmean far from the baseline's only warn (§5.1, §5.5; D10). Wahl 2009; Practical PERCIST,
O 2016. The response itself is in ``percist.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from fhirnet.criteria.figures import sul
from fhirnet.criteria.models import PetReference, TimePoint
from fhirnet.criteria.thresholds import (
    PERCIST_LIVER_DRIFT,
    PERCIST_UPTAKE_TIME_MIN,
    greater_than,
    percent,
    relative_change,
)
from fhirnet.criteria.validation import percist_threshold


@dataclass(frozen=True, kw_only=True)
class Reference:
    """A scan's reference region: its mean, the measurability threshold, which region it is."""

    mean: Decimal
    threshold: Decimal
    blood_pool: bool

    @property
    def region(self) -> str:
        """``liver`` or ``blood-pool``, as the reasons name it."""
        return "blood-pool" if self.blood_pool else "liver"


def reference_region(pet: PetReference | None) -> Reference | None:
    """The reference region of one scan, or ``None`` when it has neither (``criteria.md`` §5.1).

    Liver (1.5 x SULmean + 2 x SD), else blood pool (2.0 x SULmean + 2 x SD): PERCIST 1.0
    "measurability"; Practical PERCIST steps 2-3. The arithmetic lives in
    :func:`~fhirnet.criteria.validation.percist_threshold`, shared with the baseline check.
    """
    found = percist_threshold(pet)
    if found is None:
        return None
    threshold, mean, blood_pool = found
    return Reference(mean=mean, threshold=threshold, blood_pool=blood_pool)


def reference_warnings(
    timepoint: TimePoint, reference: Reference | None, *, baseline: bool
) -> Iterator[str]:
    """``blood-pool-reference`` and ``pet-reference-missing`` of one scan (``criteria.md`` §5.1)."""
    exam = f"the {'baseline ' if baseline else ''}exam of {timepoint.date.isoformat()}"
    if reference is None:
        yield (
            f"pet-reference-missing: {exam} has no reference region (liver or blood-pool SULmean "
            "and SD): no measurability threshold, and no CMR by the hottest-below-reference-mean "
            "rule"
        )
    elif reference.blood_pool:
        yield (
            f"blood-pool-reference: {exam} has no liver SULmean and SD; the blood-pool SULmean "
            f"{sul(reference.mean)} is the reference (threshold 2.0 x mean + 2 x SD = "
            f"{sul(reference.threshold)}, Practical PERCIST)"
        )


def quality_warnings(baseline: TimePoint, follow_up: TimePoint) -> Iterator[str]:
    """``uptake-time`` and ``liver-drift`` for one follow-up (``criteria.md`` §5.5; D10).

    PERCIST 1.0 "patient preparation and scan acquisition" and Practical PERCIST Table 1: uptake
    times within 15 min of the baseline's, liver SULmean within 20 % of the baseline's.
    """
    exam = f"exam of {follow_up.date.isoformat()}"
    before, now = baseline.pet, follow_up.pet
    if before is None or now is None:
        return
    if before.uptake_time_min is not None and now.uptake_time_min is not None:
        gap = abs(now.uptake_time_min - before.uptake_time_min)
        if greater_than(gap, PERCIST_UPTAKE_TIME_MIN):
            yield (
                f"uptake-time: uptake time {now.uptake_time_min} min differs from baseline "
                f"{before.uptake_time_min} min by {gap} min ({exam}; PERCIST 1.0 "
                f"allows {PERCIST_UPTAKE_TIME_MIN} min)"
            )
    if before.liver_sul_mean is not None and now.liver_sul_mean is not None:
        drift = abs(now.liver_sul_mean - before.liver_sul_mean)
        if greater_than(drift, before.liver_sul_mean * PERCIST_LIVER_DRIFT):
            fraction = relative_change(now.liver_sul_mean, before.liver_sul_mean)
            by = f"{drift} SUL" if fraction is None else f"{_whole(abs(fraction))}%"
            yield (
                f"liver-drift: liver SULmean {now.liver_sul_mean} differs from baseline "
                f"{before.liver_sul_mean} by {by} ({exam}; PERCIST 1.0 allows "
                f"{_whole(PERCIST_LIVER_DRIFT)}%)"
            )


def _whole(fraction: Decimal) -> str:
    """A fraction as a percentage with one decimal, dropping ``.0``: ``0.30`` → ``30``."""
    value = cast(Decimal, percent(fraction))
    return str(value.to_integral_value() if value == value.to_integral_value() else value)
