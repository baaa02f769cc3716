"""FHIR dates as ranges: every ``date``, ``dateTime``, ``instant`` and ``Period`` value stands for
the interval its precision implies (R4 search.html#date), held as half-open ``[low, high)``
integer microseconds since 1970-01-01T00:00:00Z.

``2025`` is the whole of 2025, ``2025-01-13`` that whole day, ``2025-01-13T10:00:00Z`` that
second and ``...T10:00:00.25Z`` that hundredth of a second. Values without a timezone (dates,
and times in search values) are taken as UTC, the store's timezone. Integer arithmetic on day
ordinals keeps year 9999 representable, where :class:`datetime.datetime` would overflow.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

MICROSECOND = 1
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
#: Stand-ins for a Period's missing start or end: earlier/later than any FHIR date.
OPEN_LOW = -(2**62)
OPEN_HIGH = 2**62
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

#: date, dateTime or instant at any precision down to the second and its fractions; minutes
#: without seconds are accepted because R4 search examples use them. ASCII digits only: ``\d``
#: would admit other scripts' digits, which ``int()`` then reads.
_DATE = re.compile(
    r"(?P<year>[0-9]{4})"
    r"(?:-(?P<month>[0-9]{2})"
    r"(?:-(?P<day>[0-9]{2})"
    r"(?:T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,12}))?)?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?"
    r")?)?)?"
)


@dataclass(frozen=True)
class Range:
    """The half-open interval ``[low, high)`` of microseconds a date value stands for."""

    low: int
    high: int


def parse_range(text: str) -> Range | None:
    """The range of a FHIR date, dateTime or instant string; ``None`` if it is not one.

    ``"2025-02"`` is ``[2025-02-01T00:00Z, 2025-03-01T00:00Z)``; ``"2025-02-03T10:00:00+01:00"``
    is the second from 09:00:00Z.
    """
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year = int(match["year"])
    month = int(match["month"] or 1)
    day = int(match["day"] or 1)
    if year < 1 or not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    start_day = date(year, month, day).toordinal() - _EPOCH_ORDINAL
    if match["day"] is None:
        # Whole month or whole year: up to the day after its last day.
        last_month = month if match["month"] else 12
        last_day = calendar.monthrange(year, last_month)[1]
        end_day = date(year, last_month, last_day).toordinal() - _EPOCH_ORDINAL + 1
        return Range(start_day * DAY, end_day * DAY)
    if match["hour"] is None:
        return Range(start_day * DAY, (start_day + 1) * DAY)
    hour, minute = int(match["hour"]), int(match["minute"])
    second = int(match["second"] or 0)
    if hour > 23 or minute > 59 or second > 59:  # leap seconds (":60") are not supported
        return None
    offset = _offset(match["zone"])
    if offset is None:
        return None
    low = start_day * DAY + hour * HOUR + minute * MINUTE + second * SECOND - offset
    fraction = match["fraction"]
    if match["second"] is None:
        width = MINUTE
    elif fraction is None:
        width = SECOND
    else:
        digits = fraction[:6]  # microseconds are the finest precision kept
        low += int(digits.ljust(6, "0"))
        width = 10 ** (6 - len(digits))
    return Range(low, low + width)


def period_range(period: Any) -> Range | None:
    """The range of a FHIR ``Period``: from its start's low to its end's high, open where
    missing; ``None`` if it is not a Period with at least one readable bound."""
    if not isinstance(period, dict):
        return None
    start, end = period.get("start"), period.get("end")
    low = parse_range(start) if isinstance(start, str) else None
    high = parse_range(end) if isinstance(end, str) else None
    if low is None and high is None:
        return None
    return Range(low.low if low else OPEN_LOW, high.high if high else OPEN_HIGH)


def instant_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime.

    :raises ValueError: ``moment`` has no timezone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the store's clock must return timezone-aware datetimes")
    utc = moment.astimezone(UTC)
    days = utc.date().toordinal() - _EPOCH_ORDINAL
    return (
        days * DAY
        + utc.hour * HOUR
        + utc.minute * MINUTE
        + utc.second * SECOND
        + utc.microsecond * MICROSECOND
    )


def format_instant(moment: datetime) -> str:
    """A FHIR ``instant`` in UTC with microseconds, e.g. ``2025-01-13T09:30:00.000000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _offset(zone: str | None) -> int | None:
    """Microseconds east of UTC; ``None`` for an impossible offset (beyond ±14:00)."""
    if zone is None or zone == "Z":
        return 0
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if minutes > 59 or hours * 60 + minutes > 14 * 60:
        return None
    sign = -1 if zone[0] == "-" else 1
    return sign * (hours * HOUR + minutes * MINUTE)
