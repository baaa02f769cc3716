"""FHIR date values as the ranges their precision implies (R4 search.html#date)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fhirnet.adapters.store.dates import (
    DAY,
    OPEN_HIGH,
    OPEN_LOW,
    SECOND,
    Range,
    format_instant,
    instant_us,
    parse_range,
    period_range,
)


def us(year: int, month: int, day: int, *time: int) -> int:
    """Microseconds since the epoch of a UTC date and time."""
    hour, minute, second, microsecond = (*time, 0, 0, 0, 0)[:4]
    return instant_us(datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025", Range(us(2025, 1, 1), us(2026, 1, 1))),
        ("2024-02", Range(us(2024, 2, 1), us(2024, 3, 1))),  # leap February
        ("2025-12", Range(us(2025, 12, 1), us(2026, 1, 1))),
        ("2025-01-13", Range(us(2025, 1, 13), us(2025, 1, 14))),
        ("2025-01-13T10:20Z", Range(us(2025, 1, 13, 10, 20), us(2025, 1, 13, 10, 21))),
        ("2025-01-13T10:20:30Z", Range(us(2025, 1, 13, 10, 20, 30), us(2025, 1, 13, 10, 20, 31))),
        (
            "2025-01-13T10:20:30.5Z",
            Range(us(2025, 1, 13, 10, 20, 30, 500000), us(2025, 1, 13, 10, 20, 30, 600000)),
        ),
        (
            "2025-01-13T10:20:30.123456789Z",  # beyond microseconds: cut to them
            Range(us(2025, 1, 13, 10, 20, 30, 123456), us(2025, 1, 13, 10, 20, 30, 123457)),
        ),
        (
            "2025-01-13T10:20:30-05:30",
            Range(us(2025, 1, 13, 15, 50, 30), us(2025, 1, 13, 15, 50, 31)),
        ),
        ("2025-01-13T10:20:30", Range(us(2025, 1, 13, 10, 20, 30), us(2025, 1, 13, 10, 20, 31))),
        ("0001", Range(us(1, 1, 1), us(2, 1, 1))),
        ("9999", Range(us(9999, 1, 1), us(9999, 12, 31) + DAY)),  # past datetime's range
        ("2025-01-01T00:00:00+14:00", Range(us(2024, 12, 31, 10), us(2024, 12, 31, 10, 0, 1))),
    ],
)
def test_precision_decides_the_range(text: str, expected: Range) -> None:
    assert parse_range(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "25",
        "2025-1-13",
        "2025-00",
        "2025-13",
        "2023-02-29",
        "2025-04-31",
        "0000",
        "2025-01-13T",
        "2025-01-13T10",
        "2025-01-13T24:00Z",
        "2025-01-13T10:60Z",
        "2025-01-13T10:00:60Z",
        "2025-01-13T10:00:00+14:01",
        "2025-01-13T10:00:00+02:60",
        "2025-01-13T10:00:00.Z",
        "2025-01-13 10:00:00Z",
        "٢٠٢٥",
        "2025-01-13Z",
    ],
)
def test_what_is_not_a_fhir_date_is_none(text: str) -> None:
    assert parse_range(text) is None


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ({"start": "2025-01-10", "end": "2025-01-12"}, Range(us(2025, 1, 10), us(2025, 1, 13))),
        ({"start": "2025-01-10"}, Range(us(2025, 1, 10), OPEN_HIGH)),
        ({"end": "2025-01-12"}, Range(OPEN_LOW, us(2025, 1, 13))),
        ({"start": "garbage", "end": "2025-01-12"}, Range(OPEN_LOW, us(2025, 1, 13))),
        ({}, None),
        ({"start": 2025}, None),
        ("2025-01-10", None),
    ],
    ids=["closed", "no-end", "no-start", "unreadable-start", "empty", "not-text", "not-a-period"],
)
def test_a_period_spans_from_its_starts_low_to_its_ends_high(
    period: object, expected: Range | None
) -> None:
    assert period_range(period) == expected


def test_instants_are_converted_to_utc() -> None:
    cest = timezone(timedelta(hours=2))
    moment = datetime(2025, 1, 13, 1, 30, 0, 250, tzinfo=cest)
    assert instant_us(moment) == us(2025, 1, 12, 23, 30, 0, 250)
    assert format_instant(moment) == "2025-01-12T23:30:00.000250Z"
    assert instant_us(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == SECOND


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        instant_us(datetime(2025, 1, 13))
