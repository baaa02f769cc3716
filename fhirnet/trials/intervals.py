"""Exact (Clopper-Pearson) binomial confidence intervals; the one module that uses scipy.

Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case of the
binomial. Biometrika 1934;26:404-413. The limits are quantiles of beta distributions:
lower = B(alpha/2; x, n - x + 1) (0 when x = 0), upper = B(1 - alpha/2; x + 1, n - x) (1 when
x = n), as R's ``binom.test`` and SAS ``PROC FREQ`` (``BINOMIAL(EXACT)``) compute them.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from scipy.stats import beta  # type: ignore[import-untyped]  # scipy ships no type stubs

from fhirnet.trials.models import Proportion

#: Four decimals (0.1871 = 18.71 %): finer than any published ORR table prints.
_PLACES = Decimal("0.0001")
DEFAULT_CONFIDENCE = Decimal("0.95")


def clopper_pearson(count: int, n: int, confidence: Decimal = DEFAULT_CONFIDENCE) -> Proportion:
    """``count`` of ``n`` with its exact two-sided confidence interval.

    The rate is rounded half-even to 4 decimals; the limits are rounded outward (lower down,
    upper up), so the printed interval contains the exact one.

    :param count: subjects with the event, ``0 ≤ count ≤ n``.
    :param n: subjects in the denominator; 0 gives ``None`` for the rate and both limits.
    :param confidence: the two-sided level, strictly between 0 and 1.
    :raises ValueError: counts or level out of range (a programming error: callers count).
    """
    if not 0 <= count <= n:
        raise ValueError(f"count {count} is not between 0 and n = {n}")
    if not Decimal(0) < confidence < Decimal(1):
        raise ValueError(f"confidence {confidence} is not strictly between 0 and 1")
    if n == 0:
        return Proportion(count=0, n=0, rate=None, lower=None, upper=None, confidence=confidence)
    alpha = 1 - float(confidence)
    lower = 0.0 if count == 0 else float(beta.ppf(alpha / 2, count, n - count + 1))
    upper = 1.0 if count == n else float(beta.ppf(1 - alpha / 2, count + 1, n - count))
    return Proportion(
        count=count,
        n=n,
        rate=(Decimal(count) / Decimal(n)).quantize(_PLACES),
        lower=Decimal(repr(lower)).quantize(_PLACES, rounding=ROUND_FLOOR),
        upper=Decimal(repr(upper)).quantize(_PLACES, rounding=ROUND_CEILING),
        confidence=confidence,
    )
