"""Tumour growth rate before and on treatment, and hyperprogression (``criteria.md`` §7).

Ferté 2014: TGR = 100 x (exp(3 x ln(Db / Da) / months) - 1) %/month, since a sphere's volume grows
with D³. Champiat 2017: hyperprogression is progression at the first evaluation with an on-treatment
TGR at least twice the pre-treatment one (D20).
"""

from __future__ import annotations

from decimal import Decimal

from fhirnet.criteria.models import Response, TimePoint, TimePointAssessment, TumorGrowthRate
from fhirnet.criteria.thresholds import (
    DAYS_PER_MONTH,
    HYPERPROGRESSION_TGR_RATIO,
    TWO_DECIMALS,
    at_least,
    rounded,
)
from fhirnet.criteria.timeline import Timeline, lesion_values, sum_of

PROGRESSION = frozenset({Response.PD, Response.IUPD, Response.ICPD, Response.PMD})

# exp(690) ~ 1e299 %/month: anything larger is no growth rate but an input error (a diameter of
# 1e-300 mm, say), and it would not fit a JSON number.
MAX_TGR_EXPONENT = Decimal(690)


def tumor_growth_rate(
    timeline: Timeline, first_follow_up: TimePointAssessment | None
) -> tuple[TumorGrowthRate | None, tuple[str, ...]]:
    """The growth rates, their ratio and hyperprogression, with ``tgr-undefined`` warnings.

    :returns: ``(None, ())`` when there is no pre-baseline scan; the latest one is used.
    """
    if not timeline.pre_baseline:
        return None, ()
    warnings: list[str] = []
    pre_scan = timeline.pre_baseline[-1]
    pre = _rate(timeline, pre_scan, timeline.baseline, "pre-treatment", warnings)
    if timeline.follow_ups:
        on = _rate(timeline, timeline.baseline, timeline.follow_ups[0], "on-treatment", warnings)
    else:
        on = None
        warnings.append("tgr-undefined: no follow-up exam, so no on-treatment growth rate")
    ratio = None
    if pre is not None and on is not None and pre > 0:
        ratio = on / pre
    else:
        warnings.append(
            "tgr-undefined: the TGR ratio needs both rates and a pre-treatment rate above 0"
        )
    progressed = first_follow_up is not None and first_follow_up.overall_response in PROGRESSION
    hyper = progressed and ratio is not None and at_least(ratio, HYPERPROGRESSION_TGR_RATIO)
    return (
        TumorGrowthRate(
            pre_treatment_pct_per_month=rounded(pre),
            on_treatment_pct_per_month=rounded(on),
            ratio=rounded(ratio, TWO_DECIMALS),
            hyperprogression=hyper,
        ),
        tuple(warnings),
    )


def _rate(
    timeline: Timeline, start: TimePoint, end: TimePoint, label: str, warnings: list[str]
) -> Decimal | None:
    """TGR in %/month between two scans, or ``None`` with a warning saying why."""
    if not timeline.targets:
        warnings.append(f"tgr-undefined: no target lesions, so no {label} growth rate")
        return None
    d_start = sum_of(lesion_values(timeline.targets, start))
    d_end = sum_of(lesion_values(timeline.targets, end))
    if d_start is None or d_end is None or d_start == 0:
        warnings.append(
            f"tgr-undefined: the {label} growth rate needs every baseline target measured on "
            f"{start.date} and {end.date}, with a sum above 0 on {start.date}"
        )
        return None
    if d_end == 0:
        return Decimal(-100)
    months = Decimal((end.date - start.date).days) / DAYS_PER_MONTH
    exponent = (d_end / d_start).ln() * 3 / months
    if exponent > MAX_TGR_EXPONENT:
        warnings.append(
            f"tgr-undefined: the {label} growth rate between {start.date} and {end.date} is "
            "too large to report (implausible diameters or interval)"
        )
        return None
    return 100 * (exponent.exp() - 1)
