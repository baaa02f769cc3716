"""The data behind a study's waterfall, spider and swimmer plots (``docs/trials.md`` "Plots"):
subject series in, bars, lines and lanes out. Plain data, no drawing (the drawing is
``fhirnet/web/plots.py``, the only module that imports matplotlib).

Sources: admiralonco ``inst/templates/ad_adtr.R`` (ANL01FL: a sum with a missing target lesion is
not analysed; ANL02FL: the first lowest post-baseline percent change from baseline is the
waterfall value) and trialfigs' ``plot_waterfall``/``plot_spider``/``plot_swimmer`` conventions
(reference lines at +20 % and -30 %, subjects without a post-baseline value left out of the
bars and counted, colour = best overall response).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Final

from fhirnet.criteria.models import Response
from fhirnet.trials.models import SubjectEndpoints, VisitRole

#: The waterfall's and spider's reference lines (RECIST 1.1 §4.3.1: PD +20 %, PR -30 %).
PD_LINE_PCT: Final = Decimal(20)
PR_LINE_PCT: Final = Decimal(-30)
#: A bar above this is drawn at it with a marker (trialfigs caps large growth); the data keeps
#: the true value.
CAP_PCT: Final = Decimal(100)
_WEEK: Final = Decimal(7)
_HUNDREDTH: Final = Decimal("0.01")
#: Responses that are a response (the swimmer's response marker; PERCIST's CMR/PMR too).
_RESPONSES: Final = frozenset(
    {Response.CR, Response.PR, Response.ICR, Response.IPR, Response.CMR, Response.PMR}
)


class PlotKind(StrEnum):
    """The three plots."""

    WATERFALL = "waterfall"
    SPIDER = "spider"
    SWIMMER = "swimmer"


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One exam's sum of diameters as one evaluator read it: ``sum_mm`` ``None`` when a target
    lesion was not measured (the sum is not analysed), the percent change from the baseline sum,
    and whether the exam has a new lesion or unequivocal non-target progression."""

    date: dt.date
    sum_mm: Decimal | None
    change_from_baseline_pct: Decimal | None
    new_lesion: bool = False
    non_target_progression: bool = False


@dataclass(frozen=True, kw_only=True)
class SubjectSeries:
    """One subject as one evaluator read it: its endpoints and its exams' sums."""

    subject: str
    arm: str
    endpoints: SubjectEndpoints
    measurements: tuple[Measurement, ...]
    confirmation_required: bool
    withdrawal_date: dt.date | None = None


@dataclass(frozen=True, kw_only=True)
class WaterfallBar:
    """One evaluable subject: its lowest post-baseline percent change and the exam giving it."""

    subject: str
    arm: str
    change_pct: Decimal
    date: dt.date
    study_week: Decimal
    best_response: Response
    #: What progressed besides the sum: ``new lesion``, ``non-target`` (either may be true while
    #: the bar is below zero).
    progression_by: tuple[str, ...]
    capped: bool


@dataclass(frozen=True, kw_only=True)
class SpiderPoint:
    study_week: Decimal
    date: dt.date | None  # None: the baseline point (0 %)
    change_pct: Decimal
    new_lesion: bool = False
    progression: bool = False


@dataclass(frozen=True, kw_only=True)
class SpiderLine:
    """One subject's percent change over study weeks, from 0 at baseline to progression."""

    subject: str
    arm: str
    best_response: Response
    points: tuple[SpiderPoint, ...]
    ended_by_progression: bool


@dataclass(frozen=True, kw_only=True)
class Event:
    """A dated marker on a swimmer lane."""

    date: dt.date
    study_week: Decimal
    label: str


@dataclass(frozen=True, kw_only=True)
class SwimmerLane:
    """One subject's time on study with its first response, progression and withdrawal."""

    subject: str
    arm: str
    best_response: Response
    end_date: dt.date
    study_week: Decimal
    ongoing: bool
    response: Event | None
    progression: Event | None
    withdrawal: Event | None


@dataclass(frozen=True, kw_only=True)
class PlotData:
    """What one plot shows; ``not_evaluable`` are the subjects read but not drawn (no
    follow-up with an analysable sum), ``not_read`` those the evaluator has no read of."""

    kind: PlotKind
    study_id: str
    criteria: str
    evaluator: str
    arm: str | None
    confirmation: str
    bars: tuple[WaterfallBar, ...] = ()
    lines: tuple[SpiderLine, ...] = ()
    lanes: tuple[SwimmerLane, ...] = ()
    not_evaluable: tuple[str, ...] = ()
    not_read: tuple[str, ...] = ()

    @property
    def caption(self) -> str:
        """Names the criterion, the evaluator, the confirmation rule and who is not drawn."""
        arm = f", arm {self.arm}" if self.arm else ""
        text = {
            PlotKind.WATERFALL: "Best (lowest) percent change of the sum of diameters from "
            "baseline per subject; sums with a missing target lesion excluded; dashed lines "
            "+20 % and -30 %; colour: best overall response; marker: progression by new lesion "
            "or non-target lesions.",
            PlotKind.SPIDER: "Percent change of the sum of diameters from baseline over study "
            "weeks, from 0 at baseline to progression; dashed lines +20 % and -30 %.",
            PlotKind.SWIMMER: "Weeks on study from the reference date to the last assessment "
            "or withdrawal; markers: first response (CR/PR), progression, withdrawal; arrow: "
            "on study without progression.",
        }[self.kind]
        parts = [
            f"{self.study_id}{arm}. {self.criteria}, evaluator {self.evaluator}; "
            f"{self.confirmation}.",
            text,
        ]
        drawn = len(self.bars or self.lines or self.lanes)
        if self.not_evaluable:
            parts.append(
                f"Not drawn: {len(self.not_evaluable)} subject(s) without an evaluable "
                f"follow-up ({', '.join(self.not_evaluable)})."
            )
        if self.not_read:
            parts.append(
                f"{len(self.not_read)} subject(s) without a {self.evaluator} read "
                f"({', '.join(self.not_read)})."
            )
        parts.append(f"n = {drawn}.")
        return " ".join(parts)


def confirmation_rule(required: bool, min_days: int, max_ne_between: int) -> str:
    """The confirmation rule as the caption says it."""
    if not required:
        return "best overall response unconfirmed (the study does not require confirmation)"
    return (
        f"confirmed best overall response (CR/PR confirmed >= {min_days} days later, "
        f"at most {max_ne_between} NE between)"
    )


def study_week(date: dt.date, reference_date: dt.date) -> Decimal:
    """Weeks from the reference date (day 1 is week 0), to two decimals."""
    return (Decimal((date - reference_date).days) / _WEEK).quantize(_HUNDREDTH)


def best_response(series: SubjectSeries) -> Response:
    """The best overall response that drives the endpoints: the confirmed one when the study
    requires confirmation, else the unconfirmed one."""
    endpoints = series.endpoints
    if series.confirmation_required:
        return endpoints.confirmed_best_overall_response.response
    return endpoints.best_overall_response.response


def follow_ups(series: SubjectSeries) -> list[Measurement]:
    """The subject's follow-up exams with an analysable sum (ADTR ANL01FL), in date order: after
    the reference date, on or before a withdrawal."""
    dates = {v.date for v in series.endpoints.visits if v.role is VisitRole.FOLLOW_UP}
    return sorted(
        (
            m
            for m in series.measurements
            if m.date in dates and m.sum_mm is not None and m.change_from_baseline_pct is not None
        ),
        key=lambda m: m.date,
    )


def waterfall_bar(series: SubjectSeries) -> WaterfallBar | None:
    """The subject's bar: the first lowest post-baseline change (ANL02FL); ``None`` without an
    evaluable follow-up."""
    found = follow_ups(series)
    if not found:
        return None
    lowest = min(found, key=lambda m: (m.change_from_baseline_pct, m.date))
    change = lowest.change_from_baseline_pct
    assert change is not None  # noqa: S101 -- follow_ups keeps only measured changes
    return WaterfallBar(
        subject=series.subject,
        arm=series.arm,
        change_pct=change,
        date=lowest.date,
        study_week=study_week(lowest.date, series.endpoints.reference_date),
        best_response=best_response(series),
        progression_by=_progression_by(series),
        capped=change > CAP_PCT,
    )


def _progression_by(series: SubjectSeries) -> tuple[str, ...]:
    """What besides the sum made the progression: a new lesion, non-target progression."""
    date = series.endpoints.progression_date
    if date is None:
        return ()
    at = [m for m in series.measurements if m.date == date]
    found: list[str] = []
    if any(m.new_lesion for m in at):
        found.append("new lesion")
    if any(m.non_target_progression for m in at):
        found.append("non-target")
    return tuple(found)


def spider_line(series: SubjectSeries) -> SpiderLine | None:
    """The subject's line: 0 % at baseline, then each follow-up up to progression; ``None``
    without an evaluable follow-up."""
    progression = series.endpoints.progression_date
    reference = series.endpoints.reference_date
    found = [m for m in follow_ups(series) if progression is None or m.date <= progression]
    if not found:
        return None
    points = [SpiderPoint(study_week=Decimal("0.00"), date=None, change_pct=Decimal(0))]
    for m in found:
        assert m.change_from_baseline_pct is not None  # noqa: S101 -- see follow_ups
        points.append(
            SpiderPoint(
                study_week=study_week(m.date, reference),
                date=m.date,
                change_pct=m.change_from_baseline_pct,
                new_lesion=m.new_lesion,
                progression=m.date == progression,
            )
        )
    return SpiderLine(
        subject=series.subject,
        arm=series.arm,
        best_response=best_response(series),
        points=tuple(points),
        ended_by_progression=progression is not None,
    )


def swimmer_lane(series: SubjectSeries) -> SwimmerLane | None:
    """The subject's lane, from the reference date to its last assessment (or its withdrawal);
    ``None`` without a follow-up assessment and without a withdrawal."""
    endpoints = series.endpoints
    reference = endpoints.reference_date
    assessed = [v for v in endpoints.visits if v.role is VisitRole.FOLLOW_UP]
    withdrawal = series.withdrawal_date
    if withdrawal is not None:
        end = withdrawal
    elif assessed:
        end = max(v.date for v in assessed)
    else:
        return None
    progression = endpoints.progression_date
    responded = next(
        (
            v
            for v in assessed
            if v.overall_response in _RESPONSES and (progression is None or v.date < progression)
        ),
        None,
    )

    def event(date: dt.date | None, label: str) -> Event | None:
        if date is None:
            return None
        return Event(date=date, study_week=study_week(date, reference), label=label)

    return SwimmerLane(
        subject=series.subject,
        arm=series.arm,
        best_response=best_response(series),
        end_date=end,
        study_week=study_week(end, reference),
        ongoing=withdrawal is None and progression is None,
        response=event(
            responded.date if responded else None,
            str(responded.overall_response) if responded else "",
        ),
        progression=event(progression, "PD"),
        withdrawal=event(withdrawal, "WITHDRAWAL"),
    )


def plot_data(
    kind: PlotKind,
    series: Sequence[SubjectSeries],
    *,
    study_id: str,
    criteria: str,
    evaluator: str,
    arm: str | None,
    confirmation: str,
    not_read: Sequence[str] = (),
) -> PlotData:
    """The plot of ``kind`` from the subjects' series (one evaluator's reads).

    Waterfall bars are sorted by change, descending (ties by subject number); spider lines by
    subject number; swimmer lanes by time on study, descending (ties by subject number).
    """
    base = PlotData(
        kind=kind,
        study_id=study_id,
        criteria=criteria,
        evaluator=evaluator,
        arm=arm,
        confirmation=confirmation,
        not_read=tuple(not_read),
    )
    ordered = sorted(series, key=lambda s: s.subject)
    if kind is PlotKind.WATERFALL:
        bars = [(s.subject, waterfall_bar(s)) for s in ordered]
        drawn = [b for _, b in bars if b is not None]
        drawn.sort(key=lambda b: b.change_pct, reverse=True)  # stable: ties by subject
        missing = tuple(subject for subject, b in bars if b is None)
        return replace(base, bars=tuple(drawn), not_evaluable=missing)
    if kind is PlotKind.SPIDER:
        lines = [(s.subject, spider_line(s)) for s in ordered]
        found = tuple(line for _, line in lines if line is not None)
        missing = tuple(subject for subject, line in lines if line is None)
        return replace(base, lines=found, not_evaluable=missing)
    lanes = [(s.subject, swimmer_lane(s)) for s in ordered]
    drawn_lanes = [lane for _, lane in lanes if lane is not None]
    drawn_lanes.sort(key=lambda lane: lane.study_week, reverse=True)  # stable: ties by subject
    missing = tuple(subject for subject, lane in lanes if lane is None)
    return replace(base, lanes=tuple(drawn_lanes), not_evaluable=missing)
