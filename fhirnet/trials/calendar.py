"""Study days and protocol visit windows (CDISC SDTMIG ``--DY``; ``docs/trials.md`` "Study day").

Study day 1 is the reference date (treatment start or randomization); the day before is day -1;
there is no day 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fhirnet.trials.models import UNSCHEDULED, ScheduledVisit


def study_day(date: dt.date, reference_date: dt.date) -> int:
    """The study day of ``date``: ``date - reference + 1`` on or after the reference date, else
    ``date - reference`` (SDTMIG 3.4 §4.4.4, ``--DY``): the reference date is day 1, the day
    before it day -1."""
    days = (date - reference_date).days
    return days + 1 if days >= 0 else days


def date_of_study_day(day: int, reference_date: dt.date) -> dt.date:
    """The date of study day ``day`` (the inverse of :func:`study_day`; day 0 does not exist).

    :raises ValueError: ``day`` is 0.
    """
    if day == 0:
        raise ValueError("there is no study day 0")
    return reference_date + dt.timedelta(days=day - 1 if day > 0 else day)


def scheduled_visit(day: int, schedule: Sequence[ScheduledVisit]) -> str:
    """The schedule entry whose ``day ± windowDays`` holds study day ``day``, nearest target day
    first (ties: the earlier target day, then schedule order); :data:`UNSCHEDULED` when none.

    The distance is counted in calendar days, so it skips the missing day 0: day -1 is one day
    from day 1.
    """
    candidates = [
        (abs(_calendar_distance(day, entry.day)), entry.day, index, entry.visit)
        for index, entry in enumerate(schedule)
        if abs(_calendar_distance(day, entry.day)) <= entry.window_days
    ]
    return min(candidates)[3] if candidates else UNSCHEDULED


def _calendar_distance(day: int, target: int) -> int:
    """Days between two study days, skipping the day 0 that does not exist."""
    return _ordinal(day) - _ordinal(target)


def _ordinal(day: int) -> int:
    return day - 1 if day > 0 else day
