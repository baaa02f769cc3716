"""Figures as every criteria reports them: the rounded sum fields, and lengths, SUL values and
changes in the words of the reasons (``criteria.md`` §0; ``assessment-api.md``).

RECIST 1.1, iRECIST, Choi and PERCIST all print the same way, so the wording lives here once.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TypedDict, cast

from fhirnet.criteria.thresholds import TWO_DECIMALS, percent, relative_change, rounded
from fhirnet.criteria.timeline import Measured


class SizeFields(TypedDict):
    """The sum-of-diameters fields every criteria reports (``assessment-api.md``)."""

    sum_mm: Decimal | None
    baseline_sum_mm: Decimal | None
    nadir_sum_mm: Decimal | None
    nadir_date: dt.date | None
    change_from_baseline_pct: Decimal | None
    change_from_nadir_pct: Decimal | None


def size_fields(m: Measured) -> SizeFields:
    """Rounded sum figures of a follow-up, all ``None`` when there are no target lesions (§0)."""
    if not m.values:
        return SizeFields(
            sum_mm=None,
            baseline_sum_mm=None,
            nadir_sum_mm=None,
            nadir_date=None,
            change_from_baseline_pct=None,
            change_from_nadir_pct=None,
        )
    return SizeFields(
        sum_mm=rounded(m.sum_mm),
        baseline_sum_mm=rounded(m.baseline_sum_mm),
        nadir_sum_mm=rounded(m.nadir_sum_mm),
        nadir_date=m.nadir_date,
        change_from_baseline_pct=None
        if m.sum_mm is None
        else percent(relative_change(m.sum_mm, m.baseline_sum_mm)),
        change_from_nadir_pct=None
        if m.sum_mm is None
        else percent(relative_change(m.sum_mm, m.nadir_sum_mm)),
    )


def mm(value: Decimal) -> str:
    """A length as the contract prints it: one decimal, e.g. ``41.0 mm``."""
    return f"{rounded(value)} mm"


def describe_change(value: Decimal, reference: Decimal, what: str) -> str:
    """``"18.0% below baseline 50.0 mm"``: a signed change in words, for reasons."""
    change = relative_change(value, reference)
    if change is None:
        diff = value - reference
        return f"{mm(abs(diff))} {'above' if diff >= 0 else 'below'} {what} {mm(reference)}"
    direction = "above" if change >= 0 else "below"
    return f"{percent(abs(change))}% {direction} {what} {mm(reference)}"


def sul_figure(value: Decimal) -> Decimal:
    """A SUL value rounded for output: two decimals, half away from zero (``criteria.md`` §0)."""
    return cast(Decimal, rounded(value, TWO_DECIMALS))


def sul(value: Decimal) -> str:
    """A SUL value as the contract prints it in reasons: two decimals, e.g. ``4.20``."""
    return str(sul_figure(value))
