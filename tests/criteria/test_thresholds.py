"""Rounding for output (criteria.md §0): half away from zero to the given places, any magnitude,
never a negative zero."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from fhirnet.criteria.thresholds import ONE_DECIMAL, rounded


def with_room(value: Decimal, places: Decimal) -> Decimal:
    """The rule itself, always in a context wide enough for the result."""
    with localcontext() as context:
        context.prec = max(context.prec, value.adjusted() - places.adjusted() + 2)
        return value.quantize(places, rounding=ROUND_HALF_UP) + 0


def test_halves_round_away_from_zero_and_zero_has_no_sign() -> None:
    assert rounded(Decimal("2.25")) == Decimal("2.3")
    assert rounded(Decimal("-2.25")) == Decimal("-2.3")
    assert str(rounded(Decimal("-0.04"))) == "0.0"
    assert rounded(None) is None


def test_a_value_wider_than_the_context_precision_is_rounded_not_refused() -> None:
    assert rounded(Decimal("1e30")) == Decimal("1e30")
    assert str(rounded(Decimal("123456789012345678901234567890.06"))) == (
        "123456789012345678901234567890.1"
    )


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**40), max_value=10**40),
    st.sampled_from([ONE_DECIMAL, Decimal("0.01"), Decimal("1")]),
)
def test_rounding_is_the_rule_at_every_magnitude(value: Decimal, places: Decimal) -> None:
    assert str(rounded(value, places)) == str(with_room(value, places))
