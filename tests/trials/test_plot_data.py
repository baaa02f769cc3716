"""The data behind the waterfall, spider and swimmer plots (fhirnet/trials/plot_data.py): subject
series built by hand (sums and responses per exam), the endpoints derived by fhirnet.trials."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fhirnet.criteria.models import Criteria, Response
from fhirnet.trials import EndpointOptions, SubjectRequest, VisitResponse, derive_endpoints
from fhirnet.trials.plot_data import (
    Measurement,
    PlotKind,
    SubjectSeries,
    plot_data,
    spider_line,
    swimmer_lane,
    waterfall_bar,
)

REFERENCE = dt.date(2025, 1, 14)
BASELINE = dt.date(2025, 1, 13)
WEEK = {8: dt.date(2025, 3, 11), 16: dt.date(2025, 5, 6), 24: dt.date(2025, 7, 1)}
OPTIONS = EndpointOptions(confirmation_required=True, confirmation_min_days=28, sd_min_days=42)

# One exam: (week, overall response, sum in mm or None, new lesion, non-target progression).
Exam = tuple[int, str, float | None, bool, bool]


def series(
    subject: str,
    *exams: Exam,
    arm: str = "A",
    withdrawal: dt.date | None = None,
) -> SubjectSeries:
    """A subject with a 100 mm baseline and ``exams`` (percent change = sum - 100)."""
    visits = [VisitResponse(date=BASELINE, overall_response=None)]
    measurements = [Measurement(date=BASELINE, sum_mm=Decimal(100), change_from_baseline_pct=None)]
    for week, response, total, new, non_target in exams:
        date = WEEK[week]
        visits.append(VisitResponse(date=date, overall_response=Response(response)))
        measurements.append(
            Measurement(
                date=date,
                sum_mm=None if total is None else Decimal(str(total)),
                change_from_baseline_pct=None if total is None else Decimal(str(total)) - 100,
                new_lesion=new,
                non_target_progression=non_target,
            )
        )
    endpoints = derive_endpoints(
        SubjectRequest(
            criteria=Criteria.RECIST_1_1,
            reference_date=REFERENCE,
            visits=tuple(visits),
            options=OPTIONS,
            withdrawal_date=withdrawal,
        )
    )
    return SubjectSeries(
        subject=subject,
        arm=arm,
        endpoints=endpoints,
        measurements=tuple(measurements),
        confirmation_required=True,
        withdrawal_date=withdrawal,
    )


#: 65 (PR) -> 80 (PD over the nadir): the lowest is the first follow-up, not the last.
REBOUND = series("001-02", (8, "PR", 65, False, False), (16, "PD", 80, False, False))
#: 92 (SD) -> 90 + a new lesion (PD): a PD bar below zero.
NEW_LESION = series("001-03", (8, "SD", 92, False, False), (16, "PD", 90, True, False))
#: 85 (SD) -> 95 with unequivocal non-target progression (PD).
NON_TARGET = series("002-05", (8, "SD", 85, False, False), (16, "PD", 95, False, True), arm="B")
#: Its only follow-up has a target not measured (NE): no evaluable sum.
NO_SUM = series("002-02", (8, "NE", None, False, False))
#: 65 (PR) -> T2 not measured (NE) -> 60 (PR): the NE sum is not a bar or spider point.
THROUGH_NE = series(
    "002-01",
    (8, "PR", 65, False, False),
    (16, "NE", None, False, False),
    (24, "PR", 60, False, False),
)
#: 230 mm at week 8: +130 %, PD; drawn capped at +100 %.
HUGE = series("002-09", (8, "PD", 230, False, False), arm="B")


def test_the_bar_is_the_lowest_change_not_the_last() -> None:
    bar = waterfall_bar(REBOUND)

    assert bar is not None
    assert (bar.change_pct, bar.date) == (Decimal(-35), WEEK[8])
    assert bar.best_response is Response.SD  # the PR was never confirmed
    assert bar.progression_by == ()  # progression by the sum alone


def test_progression_by_a_new_lesion_is_marked_on_a_bar_below_zero() -> None:
    bar = waterfall_bar(NEW_LESION)

    assert bar is not None
    assert bar.change_pct == Decimal(-10)
    assert bar.best_response is Response.SD
    assert bar.progression_by == ("new lesion",)


def test_progression_by_non_target_lesions_is_marked() -> None:
    bar = waterfall_bar(NON_TARGET)

    assert bar is not None
    assert (bar.change_pct, bar.progression_by) == (Decimal(-15), ("non-target",))


def test_a_subject_without_an_evaluable_follow_up_is_counted_not_drawn() -> None:
    data = plot_data(
        PlotKind.WATERFALL,
        [REBOUND, NO_SUM, NEW_LESION],
        study_id="S",
        criteria="RECIST 1.1",
        evaluator="INVESTIGATOR",
        arm=None,
        confirmation="confirmed",
    )

    assert [b.subject for b in data.bars] == ["001-03", "001-02"]
    assert data.not_evaluable == ("002-02",)
    assert "Not drawn: 1 subject(s) without an evaluable follow-up (002-02)." in data.caption
    assert "RECIST 1.1, evaluator INVESTIGATOR; confirmed." in data.caption
    assert waterfall_bar(NO_SUM) is None
    assert spider_line(NO_SUM) is None
    lane = swimmer_lane(NO_SUM)  # it was on study, and assessed (NE)
    assert lane is not None
    assert lane.study_week == Decimal("8.00")


def test_a_sum_with_a_missing_target_is_left_out() -> None:
    bar = waterfall_bar(THROUGH_NE)
    line = spider_line(THROUGH_NE)

    assert bar is not None
    assert (bar.change_pct, bar.date) == (Decimal(-40), WEEK[24])
    assert line is not None
    assert [(p.study_week, p.change_pct) for p in line.points] == [
        (Decimal("0.00"), Decimal(0)),
        (Decimal("8.00"), Decimal(-35)),
        (Decimal("24.00"), Decimal(-40)),
    ]


def test_bars_are_sorted_by_change_descending_ties_by_subject() -> None:
    tie = series("001-01", (8, "SD", 90, False, True), (16, "PD", 95, True, False))
    data = plot_data(
        PlotKind.WATERFALL,
        [REBOUND, NEW_LESION, NON_TARGET, THROUGH_NE, HUGE, tie],
        study_id="S",
        criteria="RECIST 1.1",
        evaluator="CENTRAL",
        arm=None,
        confirmation="confirmed",
    )

    assert [(b.subject, b.change_pct) for b in data.bars] == [
        ("002-09", Decimal(130)),
        ("001-01", Decimal(-10)),
        ("001-03", Decimal(-10)),
        ("002-05", Decimal(-15)),
        ("001-02", Decimal(-35)),
        ("002-01", Decimal(-40)),
    ]
    assert data.bars[0].capped  # drawn at +100 % with a marker; the data keeps +130 %
    assert not any(b.capped for b in data.bars[1:])
    # Progression by the new lesion of week 16, not the non-target PD-free week 8.
    assert data.bars[1].progression_by == ("new lesion",)


def test_the_spider_line_starts_at_zero_and_ends_at_progression() -> None:
    # A scan after the progression is not drawn.
    after = series(
        "001-07",
        (8, "SD", 95, False, False),
        (16, "PD", 125, False, False),
        (24, "SD", 90, False, False),
    )
    line = spider_line(after)

    assert line is not None
    assert line.ended_by_progression
    assert [(p.study_week, p.change_pct, p.progression) for p in line.points] == [
        (Decimal("0.00"), Decimal(0), False),
        (Decimal("8.00"), Decimal(-5), False),
        (Decimal("16.00"), Decimal(25), True),
    ]
    new = spider_line(NEW_LESION)
    assert new is not None
    assert [p.new_lesion for p in new.points] == [False, False, True]


def test_the_swimmer_lane_runs_to_the_last_assessment_or_the_withdrawal() -> None:
    withdrawn = series(
        "002-03",
        (8, "PR", 65, False, False),
        (16, "PR", 60, False, False),
        withdrawal=dt.date(2025, 6, 1),
    )
    lane = swimmer_lane(withdrawn)
    rebound = swimmer_lane(REBOUND)

    assert lane is not None
    assert (lane.end_date, lane.study_week, lane.ongoing) == (
        dt.date(2025, 6, 1),
        Decimal("19.71"),  # 138 days / 7
        False,
    )
    assert lane.response is not None
    assert (lane.response.date, lane.response.label) == (WEEK[8], "PR")
    assert lane.withdrawal is not None
    assert lane.progression is None
    assert rebound is not None
    assert rebound.response is not None  # the first PR, confirmed or not
    assert rebound.progression is not None
    assert rebound.progression.date == WEEK[16]
    assert not rebound.ongoing


def test_lanes_are_sorted_by_time_on_study_descending() -> None:
    data = plot_data(
        PlotKind.SWIMMER,
        [REBOUND, THROUGH_NE, HUGE, NO_SUM],
        study_id="S",
        criteria="RECIST 1.1",
        evaluator="INVESTIGATOR",
        arm=None,
        confirmation="confirmed",
    )

    assert [lane.subject for lane in data.lanes] == ["002-01", "001-02", "002-02", "002-09"]
    assert data.not_evaluable == ()
