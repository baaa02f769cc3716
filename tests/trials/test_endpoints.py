"""Per-subject trial endpoints: study days, visit windows, BOR, progression, DoR, PFS, benefit."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from fhirnet.criteria.best_response import RECIST_CODES, best_overall_response
from fhirnet.criteria.models import Criteria, Options, Response, TimePointAssessment
from fhirnet.trials import (
    UNSCHEDULED,
    ArmSubject,
    CensoringReason,
    EndpointOptions,
    ScheduledVisit,
    SubjectRequest,
    VisitResponse,
    derive_endpoints,
    summarize_arms,
)
from fhirnet.trials.calendar import date_of_study_day, scheduled_visit, study_day
from fhirnet.trials.intervals import clopper_pearson
from fhirnet.trials.response import Assessed
from fhirnet.trials.response import best_overall_response as trial_bor

REFERENCE = dt.date(2025, 1, 1)


def on_day(day: int) -> dt.date:
    return date_of_study_day(day, REFERENCE)


def subject(
    *visits: tuple[int, str | None],
    criteria: Criteria = Criteria.RECIST_1_1,
    withdrawal_day: int | None = None,
    **options: int | bool,
) -> SubjectRequest:
    return SubjectRequest(
        criteria=criteria,
        reference_date=REFERENCE,
        visits=tuple(
            VisitResponse(
                date=on_day(day), overall_response=None if code is None else Response(code)
            )
            for day, code in visits
        ),
        options=EndpointOptions(**options),  # type: ignore[arg-type]
        withdrawal_date=None if withdrawal_day is None else on_day(withdrawal_day),
    )


@pytest.mark.parametrize(
    ("date", "day"),
    [(dt.date(2025, 1, 1), 1), (dt.date(2025, 1, 2), 2), (dt.date(2024, 12, 31), -1)],
    ids=["reference date is day 1", "next day is day 2", "day before is day -1 (no day 0)"],
)
def test_study_day_has_no_day_zero(date: dt.date, day: int) -> None:
    assert study_day(date, REFERENCE) == day
    assert date_of_study_day(day, REFERENCE) == date


SCHEDULE = (
    ScheduledVisit(visit="WEEK 8", day=57, window_days=7),
    ScheduledVisit(visit="WEEK 9", day=64, window_days=7),
    ScheduledVisit(visit="SCREENING", day=-7, window_days=7),
)


@pytest.mark.parametrize(
    ("day", "visit"),
    [
        (57, "WEEK 8"),
        (50, "WEEK 8"),  # window edge, inclusive
        (49, UNSCHEDULED),
        (60, "WEEK 8"),  # in both windows: the nearer target day
        (61, "WEEK 9"),
        (71, "WEEK 9"),
        (1, "SCREENING"),  # day 1 is 7 calendar days after day -7 (no day 0)
        (2, UNSCHEDULED),
    ],
)
def test_a_visit_is_the_nearest_schedule_entry_whose_window_holds_it(day: int, visit: str) -> None:
    assert scheduled_visit(day, SCHEDULE) == visit


def test_a_visit_halfway_between_two_targets_is_the_earlier_one() -> None:
    schedule = (
        ScheduledVisit(visit="B", day=70, window_days=7),
        ScheduledVisit(visit="A", day=60, window_days=7),
    )
    assert scheduled_visit(65, schedule) == "A"


def test_baseline_is_the_last_assessment_on_or_before_the_reference_date() -> None:
    result = derive_endpoints(subject((-20, "SD"), (1, None), (57, "PR"), (85, "PR")))
    assert result.baseline_date == REFERENCE
    assert [visit.role for visit in result.visits] == [
        "pre-baseline",
        "baseline",
        "follow-up",
        "follow-up",
    ]


def test_progression_is_a_pfs_event_counted_from_day_one() -> None:
    result = derive_endpoints(subject((-3, None), (57, "SD"), (113, "PD"), (169, "PR")))
    pfs = result.progression_free_survival
    assert (pfs.event, pfs.date, pfs.days, pfs.censoring_reason) == (True, on_day(113), 113, None)
    assert result.progression_study_day == 113
    # The PR after progression does not count (criteria.md §6.2).
    assert result.best_overall_response.response is Response.SD


@pytest.mark.parametrize(
    ("visits", "withdrawal_day", "date_day", "reason"),
    [
        ([(57, "SD"), (113, "NE")], None, 57, CensoringReason.LAST_ADEQUATE_ASSESSMENT),
        ([(57, "NE")], None, 1, CensoringReason.NO_POST_BASELINE_ASSESSMENT),
        ([], None, 1, CensoringReason.NO_POST_BASELINE_ASSESSMENT),
        # A PD after the withdrawal is ignored: censored at the last adequate one before it.
        ([(57, "SD"), (113, "SD"), (169, "PD")], 120, 113, CensoringReason.WITHDRAWAL),
        ([(57, "NE")], 60, 1, CensoringReason.WITHDRAWAL),
    ],
    ids=["last adequate (NE is not)", "only NE", "no follow-up", "withdrawal", "withdrawal, none"],
)
def test_pfs_is_censored_with_a_reason(
    visits: list[tuple[int, str]], withdrawal_day: int | None, date_day: int, reason: str
) -> None:
    result = derive_endpoints(subject((1, None), *visits, withdrawal_day=withdrawal_day))
    pfs = result.progression_free_survival
    assert (pfs.event, pfs.date, pfs.days, pfs.censoring_reason) == (
        False,
        on_day(date_day),
        date_day,
        reason,
    )


def test_duration_of_response_runs_from_the_first_confirmed_response() -> None:
    result = derive_endpoints(
        subject(
            (57, "SD"),
            (85, "PR"),
            (113, "PR"),
            (169, "CR"),
            (225, "PD"),
            confirmation_required=True,
        )
    )
    assert result.first_response_date == on_day(85)
    dor = result.duration_of_response
    assert dor is not None
    assert (dor.start_date, dor.date, dor.days, dor.event) == (on_day(85), on_day(225), 141, True)


def test_an_unconfirmed_response_is_no_first_response_when_confirmation_is_required() -> None:
    result = derive_endpoints(
        subject((57, "PR"), (71, "PR"), (113, "SD"), confirmation_required=True)
    )
    assert result.first_response_date is None
    assert result.duration_of_response is None
    assert result.confirmed_best_overall_response.response is Response.SD
    assert result.best_overall_response.response is Response.PR
    assert not result.objective_response
    assert result.clinical_benefit


def test_duration_of_response_is_censored_at_the_last_adequate_assessment() -> None:
    result = derive_endpoints(subject((57, "PR"), (113, "PR"), (169, "NE")))
    dor = result.duration_of_response
    assert dor is not None
    assert (dor.date, dor.days, dor.censoring_reason) == (
        on_day(113),
        57,
        CensoringReason.LAST_ADEQUATE_ASSESSMENT,
    )


@pytest.mark.parametrize(
    ("visits", "progression_day"),
    [
        ([(57, "iUPD"), (85, "iUPD"), (113, "iCPD")], 57),
        ([(57, "iUPD"), (85, "iPR"), (113, "iUPD"), (141, "iCPD")], 113),
        ([(57, "iUPD"), (85, "NE"), (113, "iCPD")], 57),
        ([(57, "iUPD"), (85, "iSD")], None),  # never confirmed: no progression (D19)
    ],
    ids=["iUPD iUPD iCPD", "reset then new episode", "NE inside the episode", "unconfirmed"],
)
def test_irecist_progression_is_the_iupd_that_opened_the_confirmed_episode(
    visits: list[tuple[int, str]], progression_day: int | None
) -> None:
    result = derive_endpoints(subject(*visits, criteria=Criteria.IRECIST))
    expected = None if progression_day is None else on_day(progression_day)
    assert result.progression_date == expected
    assert result.progression_free_survival.event is (progression_day is not None)


def test_sd_before_sd_min_days_then_nothing_is_ne() -> None:
    result = derive_endpoints(subject((29, "SD"), (42, "NE")))
    assert result.best_overall_response.response is Response.NE
    assert result.best_overall_response.date is None
    assert not result.clinical_benefit


@pytest.mark.parametrize(
    ("between", "max_ne", "accept_sd", "confirmed"),
    [
        (["NE"], 1, False, True),
        (["NE", "NE"], 1, False, False),
        (["NE", "NE"], 2, False, True),
        (["NE"], 0, False, False),
        (["SD"], 1, False, False),
        (["SD"], 1, True, True),
        (["SD", "SD"], 1, True, False),
    ],
)
def test_confirmation_allows_what_max_ne_between_and_accept_sd_between_allow(
    between: list[str], max_ne: int, accept_sd: bool, confirmed: bool
) -> None:
    visits = [(57, "PR"), *((60 + i, code) for i, code in enumerate(between)), (113, "PR")]
    result = derive_endpoints(
        subject(
            *visits, confirmation_required=True, max_ne_between=max_ne, accept_sd_between=accept_sd
        )
    )
    assert (result.confirmed_best_overall_response.response is Response.PR) is confirmed


CODES = ["CR", "PR", "SD", "NON-CR/NON-PD", "PD", "NE"]


@pytest.mark.parametrize("confirmation", [False, True], ids=["unconfirmed", "confirmed"])
def test_the_defaults_rank_exactly_as_the_criteria_core_does(confirmation: bool) -> None:
    # Every sequence of 4 follow-ups at days 30, 50, 80, 120 (6**4 = 1296 of them): with
    # maxNeBetween 1 and no SD accepted, the trial BOR is fhirnet.criteria's (criteria.md §6.3).
    days = (30, 50, 80, 120)
    options = EndpointOptions(confirmation_required=confirmation)
    for codes in itertools.product(CODES, repeat=len(days)):
        visits = [
            Assessed(date=on_day(d), response=Response(c)) for d, c in zip(days, codes, strict=True)
        ]
        progression = next((v.date for v in visits if v.response is Response.PD), None)
        considered = [
            _timepoint(v.date, v.response)
            for v in visits
            if progression is None or v.date < progression
        ]
        expected = best_overall_response(
            considered,
            baseline_date=REFERENCE,
            progression_date=progression,
            codes=RECIST_CODES,
            options=Options(confirmation_required=confirmation),
        )
        got = trial_bor(
            visits,
            reference_date=REFERENCE,
            codes=RECIST_CODES,
            options=options,
            confirmation=confirmation,
        )
        assert (got.response, got.date) == (expected.response, expected.date), codes


def _timepoint(date: dt.date, response: Response) -> TimePointAssessment:
    return TimePointAssessment(
        date=date,
        sum_mm=None,
        baseline_sum_mm=None,
        nadir_sum_mm=None,
        nadir_date=None,
        change_from_baseline_pct=None,
        change_from_nadir_pct=None,
        target_response=None,
        non_target_response=None,
        new_lesions=False,
        overall_response=response,
        reasons=(),
    )


@pytest.mark.parametrize(
    ("count", "n", "lower", "upper"),
    [
        # R: binom.test(x, n)$conf.int, rounded outward to 4 decimals.
        (5, 10, "0.1870", "0.8130"),  # 0.187086, 0.812914
        (0, 10, "0", "0.3085"),  # 0, 0.308497
        (10, 10, "0.6915", "1"),  # 0.691503, 1
        (1, 20, "0.0012", "0.2488"),  # 0.001265, 0.248733
    ],
)
def test_clopper_pearson_matches_the_exact_binomial_interval(
    count: int, n: int, lower: str, upper: str
) -> None:
    interval = clopper_pearson(count, n)
    assert (interval.lower, interval.upper) == (Decimal(lower), Decimal(upper))


def test_an_empty_arm_has_no_rate() -> None:
    interval = clopper_pearson(0, 0)
    assert (interval.rate, interval.lower, interval.upper) == (None, None, None)


def test_arms_are_summarized_per_arm_and_evaluator() -> None:
    responder = derive_endpoints(subject((57, "PR"), (113, "PR"), confirmation_required=True))
    stable = derive_endpoints(subject((57, "SD"), confirmation_required=True))
    early = derive_endpoints(subject((20, "SD"), confirmation_required=True))
    rows = [
        ArmSubject(arm="A", evaluator="INV", subject="1", endpoints=responder),
        ArmSubject(arm="A", evaluator="INV", subject="2", endpoints=stable),
        ArmSubject(arm="A", evaluator="INV", subject="3", endpoints=early),
        ArmSubject(arm="A", evaluator="BICR", subject="1", endpoints=stable),
        ArmSubject(arm="B", evaluator="INV", subject="4", endpoints=responder),
    ]
    summaries = {(s.arm, s.evaluator): s for s in summarize_arms(rows)}
    a = summaries["A", "INV"]
    assert (a.n, a.objective_response.count, a.disease_control.count) == (3, 1, 2)
    assert a.objective_response.rate == Decimal("0.3333")
    assert summaries["A", "BICR"].objective_response.count == 0
    assert summaries["B", "INV"].objective_response.count == 1
