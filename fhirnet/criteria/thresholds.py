"""Named cut-offs of the four criteria, each citing its source, and the exact ways to compare them.

Values are ``Decimal`` and comparisons go through :func:`at_least` and friends, which allow the
1e-9 tolerance of ``criteria.md`` §0: 50 → 35 mm is exactly a 30 % decrease, as is 14.0 → 9.8 mm,
where a float ratio says 0.29999999999999993.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, getcontext, localcontext

TOLERANCE = Decimal("1e-9")  # criteria.md §0: equal up to floating-point error counts as equal

# RECIST 1.1 (Eisenhauer 2009) — iRECIST uses the same numbers (criteria.md D1, D2).
RECIST_PR_DECREASE = Decimal("0.30")  # §4.3.1: at least 30 % decrease of the sum vs baseline
RECIST_PD_INCREASE = Decimal("0.20")  # §4.3.1: at least 20 % increase of the sum vs nadir ...
RECIST_PD_ABSOLUTE_MM = Decimal("5")  # §4.3.1: ... and at least 5 mm absolute increase
TOO_SMALL_TO_MEASURE_MM = Decimal("5")  # §4.3.2 / RECIST Appendix: faintly seen lesion counts 5 mm
NODE_NORMAL_SHORT_AXIS_MM = Decimal("10")  # §4.3.1: a node < 10 mm short axis is normal (CR)
MEASURABLE_NON_NODAL_MM = Decimal("10")  # §3.1.1: measurable lesion, longest diameter >= 10 mm
MEASURABLE_NODAL_MM = Decimal("15")  # §3.1.1: pathological node, short axis >= 15 mm
MAX_TARGETS = 5  # §4.2: at most five target lesions in total ...
MAX_TARGETS_PER_ORGAN = 2  # §4.2: ... and at most two per organ (all nodes are one organ, D21)
# EORTC RECIST Q&A "new lymph node lesions" (criteria.md §2.3, D28): a new node below 10 mm short
# axis is normal (NODE_NORMAL_SHORT_AXIS_MM); from 10 to below 15 mm (MEASURABLE_NODAL_MM) it is
# equivocal when it is the only evidence of progression (RECIST 1.1 and Choi).

# iRECIST (Seymour 2017) — Table 2 and the EORTC FAQ (criteria.md §3.1, D2).
IRECIST_CONFIRM_INCREASE_MM = Decimal("5")  # iCPD: a further increase of 5 mm or more
IRECIST_MAX_NEW_LESION_TARGETS = 5  # new-lesion targets: at most five ...
IRECIST_MAX_NEW_LESION_TARGETS_PER_ORGAN = 2  # ... and two per organ

# iCPD window (EORTC iRECIST FAQ "can imaging be used to confirm progression ... less than four
# weeks"; criteria.md §3.2, D26): 4 weeks less and 8 weeks plus the recommended 2-day variance.
ICPD_WINDOW_MIN_DAYS = 26  # an earlier scan can neither confirm (except a new lesion) nor reset
ICPD_WINDOW_MAX_DAYS = 58  # a later confirmation stands, with a warning

# Choi 2007, modified CT response criteria (criteria.md §4, D3, D4).
CHOI_MAX_TARGETS = 10  # D5: Choi measured "similarly to RECIST" (1.0): at most ten targets ...
CHOI_MAX_TARGETS_PER_ORGAN = 5  # ... and at most five per organ
CT_MIN_HU = Decimal("-1024")  # criteria.md §1 rule 5: densityHu within the CT attenuation range
CT_MAX_HU = Decimal("3071")
CHOI_SIZE_CHANGE = Decimal("0.10")  # PR: >= 10 % size decrease; PD: >= 10 % size increase (nadir)
CHOI_DENSITY_DECREASE = Decimal("0.15")  # PR: >= 15 % decrease in attenuation (HU)

# PERCIST 1.0 (Wahl 2009) and Practical PERCIST (O 2016) (criteria.md §5, D7, D10).
PERCIST_CHANGE = Decimal("0.30")  # PMR >= 30 % decrease; PMD > 30 % increase of SULpeak
PERCIST_ABSOLUTE_SUL = Decimal("0.8")  # PMR >= 0.8; PMD > 0.8 SUL units
PERCIST_LIVER_MEAN_FACTOR = Decimal("1.5")  # measurability: 1.5 x liver SULmean + 2 x SD
PERCIST_BLOOD_POOL_MEAN_FACTOR = Decimal("2.0")  # fallback: 2.0 x blood-pool SULmean + 2 x SD
PERCIST_SD_FACTOR = Decimal("2")
PERCIST_UPTAKE_TIME_MIN = Decimal("15")  # quality: uptake times within 15 minutes of baseline
PERCIST_LIVER_DRIFT = Decimal("0.20")  # quality: liver SULmean within 20 % of baseline

# Tumour growth rate (Ferté 2014; Champiat 2017; criteria.md §7, D20).
DAYS_PER_MONTH = Decimal("30.4375")  # 365.25 / 12
HYPERPROGRESSION_TGR_RATIO = Decimal("2")  # >= 2-fold TGR increase on treatment

ONE_DECIMAL = Decimal("0.1")
TWO_DECIMALS = Decimal("0.01")


def at_least(value: Decimal, threshold: Decimal) -> bool:
    """``value >= threshold``, met at equality up to :data:`TOLERANCE`."""
    return value >= threshold - TOLERANCE


def at_most(value: Decimal, threshold: Decimal) -> bool:
    """``value <= threshold``, met at equality up to :data:`TOLERANCE`."""
    return value <= threshold + TOLERANCE


def greater_than(value: Decimal, threshold: Decimal) -> bool:
    """``value > threshold``, not met at equality up to :data:`TOLERANCE`."""
    return value > threshold + TOLERANCE


def less_than(value: Decimal, threshold: Decimal) -> bool:
    """``value < threshold``, not met at equality up to :data:`TOLERANCE`."""
    return value < threshold - TOLERANCE


def relative_change(value: Decimal, reference: Decimal) -> Decimal | None:
    """``(value - reference) / reference``, unrounded; ``None`` when the reference is 0 (§0)."""
    if reference == 0:
        return None
    return (value - reference) / reference


def rounded(value: Decimal | None, places: Decimal = ONE_DECIMAL) -> Decimal | None:
    """Round half away from zero for output (§0); ``None`` stays ``None``."""
    if value is None:
        return None
    # quantize() fails when the result needs more digits than the context precision (28):
    # SULpeak has no upper bound and a ratio to a tiny nadir can be huge, so make room then.
    # Only then: a local context costs more than the rounding (55 roundings per assessment).
    digits = value.adjusted() - places.adjusted() + 2
    if digits <= getcontext().prec:
        return value.quantize(places, rounding=ROUND_HALF_UP) + 0  # + 0 turns -0.0 into 0.0
    with localcontext() as context:
        context.prec = digits
        return value.quantize(places, rounding=ROUND_HALF_UP) + 0


def percent(fraction: Decimal | None) -> Decimal | None:
    """A relative change as a percentage rounded to one decimal, as the contract reports it."""
    return None if fraction is None else rounded(fraction * 100)
