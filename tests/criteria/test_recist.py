"""RECIST 1.1 as specified in ``criteria.md`` §2 (Eisenhauer 2009; EORTC RECIST Q&A)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest

from fhirnet.criteria import Criteria, Response
from fhirnet.criteria.recist import overall_response
from tests.criteria.builders import day, exam, new, node, non_target, run, sums, target

R = Response
RECIST = Criteria.RECIST_1_1


def single(baseline: object, follow_up: object) -> Response | None:
    """Target response of one follow-up of a single-lesion patient."""
    result = run(RECIST, exam(0, target("T1", baseline)), exam(56, target("T1", follow_up)))  # type: ignore[arg-type]
    return result.timepoints[0].target_response


# --- §2.1 target response: the boundaries


@pytest.mark.parametrize(
    ("baseline", "follow_up", "expected"),
    [
        (50, 35, R.PR),  # §4.3.1: exactly 30 % decrease is PR ("at least 30 %", D1)
        (14.0, 9.8, R.PR),  # exactly 30 %; a float ratio says 0.29999999999999993
        (50, 35.1, R.SD),  # 29.8 %: just short of PR
        (100, 70, R.PR),
        (100, 70.1, R.SD),
        (25, 30, R.PD),  # exactly +20 % and exactly +5 mm over the nadir (baseline): PD
        (20, 24, R.SD),  # +20 % but only +4 mm: the 5 mm absolute increase is also needed
        (50, 59.9, R.SD),  # +9.9 mm but +19.8 %: the 20 % is also needed
        (50, 60, R.PD),  # +20 % and +10 mm
        (10, 15, R.PD),  # +50 % and exactly +5 mm
        (10, 14.9, R.SD),  # +49 % but 4.9 mm
    ],
    ids=[
        "50-to-35-is-exactly-30pct-PR",
        "14.0-to-9.8-is-exactly-30pct-PR",
        "50-to-35.1-is-SD",
        "100-to-70-is-PR",
        "100-to-70.1-is-SD",
        "25-to-30-is-20pct-and-5mm-PD",
        "20-to-24-is-20pct-but-4mm-SD",
        "50-to-59.9-is-9.9mm-but-19.8pct-SD",
        "50-to-60-is-PD",
        "10-to-15-is-5mm-PD",
        "10-to-14.9-is-SD",
    ],
)
def test_target_thresholds_are_exact_at_the_boundaries(
    baseline: float, follow_up: float, expected: Response
) -> None:
    assert single(baseline, follow_up) is expected


def test_every_30_percent_boundary_on_a_tenth_of_a_millimetre_grid_is_pr() -> None:
    """§0: sums from 10 to 200 mm in 0.1 mm steps whose 70 % lies on the grid are all PR.

    Naive float ratios get a couple of dozen of these wrong (``style.md`` P6); the engine none.
    """
    naive_wrong = 0
    checked = 0
    for tenths in range(100, 2001):
        baseline = Decimal(tenths) / 10
        follow_up = baseline * Decimal("0.7")
        if follow_up != follow_up.quantize(Decimal("0.1")):
            continue
        checked += 1
        b, f = float(baseline), float(follow_up)
        naive_wrong += (b - f) / b < 0.3
        result = run(RECIST, exam(0, target("T1", baseline)), exam(56, target("T1", follow_up)))
        assert result.timepoints[0].target_response is R.PR, (baseline, follow_up)
        assert result.timepoints[0].change_from_baseline_pct == Decimal("-30.0")
    assert checked == 191
    assert naive_wrong == 25  # the trap the exact comparison avoids (issue: "about 25")


def test_pd_is_judged_against_the_nadir_and_pr_against_the_baseline() -> None:
    """EORTC Q&A "definition of SD": a sum still below baseline can be PD from a lower nadir."""
    result = run(
        RECIST,
        exam(0, *sums(30, 20)),  # 50
        exam(56, *sums(18, 12)),  # 30: PR, the new nadir
        exam(112, *sums(22, 14)),  # 36: +20 % and +6 mm over 30, yet 28 % below baseline
    )
    first, second = result.timepoints
    assert (first.target_response, second.target_response) == (R.PR, R.PD)
    assert second.nadir_sum_mm == Decimal("30.0")
    assert second.nadir_date == day(56)
    assert second.change_from_baseline_pct == Decimal("-28.0")
    assert second.change_from_nadir_pct == Decimal("20.0")


def test_the_current_timepoint_never_counts_in_its_own_nadir() -> None:
    result = run(RECIST, exam(0, *sums(50)), exam(56, *sums(40)), exam(112, *sums(20)))
    assert [t.nadir_sum_mm for t in result.timepoints] == [Decimal("50.0"), Decimal("40.0")]


def test_nadir_ties_go_to_the_earliest_date() -> None:
    result = run(
        RECIST, exam(0, *sums(50)), exam(56, *sums(40)), exam(112, *sums(40)), exam(168, *sums(45))
    )
    assert result.timepoints[-1].nadir_date == day(56)


def test_with_a_nadir_of_0_any_sum_of_5_mm_is_pd() -> None:
    """§2.1 rule 2: a nadir of 0 (all gone, but a non-target kept the overall at PR)."""
    follow = (
        exam(0, target("T1", 20), non_target("NT1")),
        exam(56, target("T1", 0), non_target("NT1")),
    )
    five = run(RECIST, *follow, exam(112, target("T1", 5), non_target("NT1")))
    almost = run(RECIST, *follow, exam(112, target("T1", 4.9), non_target("NT1")))
    assert five.timepoints[0].overall_response is R.PR  # target CR + non-target present
    assert five.timepoints[1].target_response is R.PD
    assert almost.timepoints[1].target_response is R.PR


# --- §2.1 rule 1: complete response and nodes


@pytest.mark.parametrize(
    ("liver_mm", "node_mm", "expected"),
    [
        (0, 9.9, R.CR),  # §4.3.1: nodes < 10 mm short axis are normal; the sum may stay > 0
        (0, 10, R.PR),  # a node of exactly 10 mm is not normal: not CR
        (0, 0, R.CR),
        (5, 0, R.PR),  # a non-nodal lesion of 5 mm is not gone
    ],
    ids=["node-9.9mm-is-CR", "node-10mm-is-not-CR", "all-zero-is-CR", "liver-5mm-is-not-CR"],
)
def test_complete_response_needs_non_nodal_zero_and_nodes_below_10_mm(
    liver_mm: float, node_mm: float, expected: Response
) -> None:
    result = run(
        RECIST,
        exam(0, target("T1", 30), node("N1", 20)),
        exam(56, target("T1", liver_mm), node("N1", node_mm)),
    )
    assert result.timepoints[0].target_response is expected


def test_nodal_cr_keeps_a_positive_sum_and_wins_over_the_sum_test() -> None:
    """D14: nodes below 10 mm are normal, so the sum stays above 0 at CR."""
    result = run(
        RECIST,
        exam(0, target("T1", 12), node("N1", 16)),
        exam(56, target("T1", 0), node("N1", 9)),
    )
    tp = result.timepoints[0]
    assert tp.target_response is R.CR
    assert tp.sum_mm == Decimal("9.0")


def test_a_too_small_lesion_counts_5_mm_and_is_not_a_complete_response() -> None:
    """§4.3.2: "too small to measure" counts as 5 mm; 5 mm is not 0 for a non-nodal lesion."""
    result = run(
        RECIST,
        exam(0, target("T1", 20), target("T2", 15, site="lung")),
        exam(56, target("T1", 0), target("T2", None, site="lung", too_small=True)),
    )
    tp = result.timepoints[0]
    assert tp.sum_mm == Decimal("5.0")
    assert tp.target_response is R.PR


# --- §2.1 rules 2-3: not evaluable


def test_a_partial_sum_that_already_proves_pd_is_pd() -> None:
    """RECIST 1.1 §4.4.2 worked example: baseline 50 mm; two of three lesions sum 80 mm."""
    result = run(
        RECIST,
        exam(0, *sums(20, 20, 10)),
        exam(56, *sums(40, 40), target("T3", None, site="pancreas")),
    )
    tp = result.timepoints[0]
    assert tp.target_response is R.PD
    assert tp.sum_mm is None  # D13: no sum while a target is NE
    assert tp.change_from_baseline_pct is None
    assert "missing lesions can only add" in tp.reasons[0]


def test_a_partial_sum_that_does_not_prove_pd_is_ne() -> None:
    result = run(RECIST, exam(0, *sums(20, 20, 10)), exam(56, *sums(20, 20)))  # T3 not listed
    tp = result.timepoints[0]
    assert tp.target_response is R.NE
    assert tp.overall_response is R.NE
    assert "T3" in tp.reasons[0]


# --- §2.2 non-target response


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("present", "absent"), R.NON_CR_NON_PD),
        (("absent", "absent"), R.CR),
        (("present", "progression"), R.PD),
        (("not-evaluated", "absent"), R.NE),
        (("present",), R.NE),  # NT2 missing from the follow-up list: not evaluated
        (("not-evaluated", "progression"), R.PD),  # progression wins over NE
    ],
    ids=["persisting", "all-absent", "progression", "not-evaluated", "missing", "pd-beats-ne"],
)
def test_non_target_response(statuses: tuple[str, ...], expected: Response) -> None:
    """RECIST 1.1 §4.3.3."""
    ids = ("NT1", "NT2")
    result = run(
        RECIST,
        exam(0, target("T1", 20), non_target("NT1"), non_target("NT2")),
        exam(
            56, target("T1", 20), *(non_target(i, s) for i, s in zip(ids, statuses, strict=False))
        ),
    )
    assert result.timepoints[0].non_target_response is expected


def test_without_baseline_non_targets_the_non_target_response_is_null() -> None:
    result = run(RECIST, exam(0, target("T1", 20)), exam(56, target("T1", 20)))
    assert result.timepoints[0].non_target_response is None


def test_non_targets_only_give_non_cr_non_pd_cr_or_ne_overall() -> None:
    """RECIST 1.1 Table 2: no target lesions."""
    result = run(
        RECIST,
        exam(0, non_target("NT1")),
        exam(56, non_target("NT1")),
        exam(112, non_target("NT1", "absent")),
        exam(168, non_target("NT1", "not-evaluated")),
    )
    assert [t.overall_response for t in result.timepoints] == [R.NON_CR_NON_PD, R.CR, R.NE]
    assert all(t.target_response is None and t.sum_mm is None for t in result.timepoints)
    assert result.timepoints[0].baseline_sum_mm is None


# --- §2.3 new lesions


def test_an_unequivocal_new_lesion_is_progression() -> None:
    """RECIST 1.1 §4.3.5."""
    result = run(RECIST, exam(0, *sums(40)), exam(56, *sums(20), new("N1")))
    tp = result.timepoints[0]
    assert (tp.target_response, tp.new_lesions, tp.overall_response) == (R.PR, True, R.PD)


def test_an_equivocal_new_lesion_confirmed_later_backdates_progression() -> None:
    """§2.3 and D12: PD at the confirming exam, dated from the first sighting; earlier kept."""
    result = run(
        RECIST,
        exam(0, *sums(40)),
        exam(56, *sums(38), new("N1", equivocal=True)),
        exam(112, *sums(38), new("N1")),
    )
    first, second = result.timepoints
    assert (first.overall_response, first.new_lesions) == (R.SD, False)
    assert second.overall_response is R.PD
    assert result.progression_date == day(56)
    # BOR only uses timepoints strictly before the progression date: nothing left, so PD.
    assert result.best_overall_response.response is R.PD
    assert result.best_overall_response.date == day(56)


def test_an_equivocal_lesion_that_never_confirms_never_counts() -> None:
    result = run(RECIST, exam(0, *sums(40)), exam(56, *sums(38), new("N1", equivocal=True)))
    assert result.timepoints[0].overall_response is R.SD
    assert result.progression_date is None


def test_a_new_lesion_on_a_modality_never_used_before_is_a_new_baseline_lesion() -> None:
    """Seed review "Selection of target lesions"; D11; warning ``new-modality-lesion``."""
    result = run(
        RECIST,
        exam(0, *sums(40), modalities=("CT",)),
        exam(56, *sums(40), new("N1", modality="SSTR-PET"), modalities=("CT", "SSTR-PET")),
        exam(112, *sums(40), new("N1", modality="SSTR-PET"), modalities=("CT", "SSTR-PET")),
        exam(168, *sums(40), new("N1", modality="SSTR-PET"), new("N2", modality="SSTR-PET")),
    )
    first, second, third = result.timepoints
    assert (first.overall_response, second.overall_response) == (R.SD, R.SD)
    assert third.overall_response is R.PD  # N2 is a new finding on an established modality
    assert third.new_lesions
    modality_warnings = [w for w in result.warnings if w.startswith("new-modality-lesion: ")]
    assert len(modality_warnings) == 3  # one per exclusion of N1


def test_a_new_baseline_lesion_seen_on_an_established_modality_counts() -> None:
    """D11: the same id reported with an already used modality counts."""
    result = run(
        RECIST,
        exam(0, *sums(40), modalities=("CT",)),
        exam(56, *sums(40), new("N1", modality="FDG-PET"), modalities=("CT", "FDG-PET")),
        exam(112, *sums(40), new("N1", modality="CT"), modalities=("CT",)),
    )
    assert [t.overall_response for t in result.timepoints] == [R.SD, R.PD]


def test_the_new_modality_rule_does_not_apply_without_baseline_modalities() -> None:
    result = run(
        RECIST,
        exam(0, *sums(40), modalities=()),
        exam(56, *sums(40), new("N1", modality="DOPA-PET"), modalities=("DOPA-PET",)),
    )
    assert result.timepoints[0].overall_response is R.PD
    assert not any(w.startswith("new-modality-lesion") for w in result.warnings)


def test_a_follow_up_without_a_baseline_modality_is_warned() -> None:
    """§8 ``missing-modality``."""
    result = run(
        RECIST,
        exam(0, *sums(40), modalities=("CT", "SSTR-PET")),
        exam(56, *sums(40), modalities=("CT",)),
        exam(112, *sums(40), modalities=()),  # no list: nothing to compare
    )
    assert [w.split(": ")[0] for w in result.warnings] == ["missing-modality"]
    assert "SSTR-PET" in result.warnings[0]


# --- §2.4 reappearance after CR


@pytest.mark.parametrize(
    ("liver", "node_mm", "expected"),
    [
        (target("T1", 3), 0, R.PD),  # any size of a non-nodal lesion
        (target("T1", None, too_small=True), 0, R.PD),  # too small included
        (target("T1", 0), 10, R.PD),  # a node from 10 mm
        (target("T1", 0), 9.9, R.CR),  # a node below 10 mm is normal
        (target("T1", None), 12, R.PD),  # checked before NE
    ],
    ids=["liver-3mm", "liver-too-small", "node-10mm", "node-9.9mm", "even-with-a-target-ne"],
)
def test_a_target_reappearing_after_an_overall_cr_is_pd(
    liver: object, node_mm: float, expected: Response
) -> None:
    """RECIST 1.1 Table 3 note a; EORTC Q&A; D15."""
    result = run(
        RECIST,
        exam(0, target("T1", 20), node("N1", 18)),
        exam(56, target("T1", 0), node("N1", 5)),
        exam(112, liver, node("N1", node_mm)),  # type: ignore[arg-type]
    )
    assert result.timepoints[0].overall_response is R.CR
    assert result.timepoints[1].target_response is expected


def test_reappearance_is_judged_against_the_last_evaluable_overall_response() -> None:
    """§2.4: an NE exam in between does not hide the earlier CR."""
    result = run(
        RECIST,
        exam(0, target("T1", 20), non_target("NT1")),
        exam(56, target("T1", 0), non_target("NT1", "absent")),  # CR
        exam(112, target("T1", None), non_target("NT1", "absent")),  # NE
        exam(168, target("T1", 0), non_target("NT1", "present")),  # reappeared
    )
    assert [t.overall_response for t in result.timepoints] == [R.CR, R.NE, R.PD]
    assert result.timepoints[2].non_target_response is R.PD


# --- §2.5 overall response table


@pytest.mark.parametrize(
    ("target_r", "non_target_r", "new_lesion", "expected"),
    [
        (R.PD, R.CR, False, R.PD),
        (R.CR, R.PD, False, R.PD),
        (R.CR, R.CR, True, R.PD),
        (R.NE, R.NON_CR_NON_PD, False, R.NE),
        (R.CR, R.CR, False, R.CR),
        (R.CR, None, False, R.CR),
        (R.CR, R.NON_CR_NON_PD, False, R.PR),
        (R.CR, R.NE, False, R.PR),
        (R.PR, R.NE, False, R.PR),
        (R.PR, None, False, R.PR),
        (R.SD, R.CR, False, R.SD),
        (R.SD, R.NE, False, R.SD),
        (None, R.CR, False, R.CR),
        (None, R.NON_CR_NON_PD, False, R.NON_CR_NON_PD),
        (None, R.NE, False, R.NE),
        (None, R.NON_CR_NON_PD, True, R.PD),
    ],
)
def test_overall_response_follows_recist_tables_1_and_2(
    target_r: Response | None, non_target_r: Response | None, new_lesion: bool, expected: Response
) -> None:
    assert overall_response(target_r, non_target_r, new_lesion) is expected


# --- §6 best overall response


@pytest.mark.parametrize(
    ("series", "confirmation", "expected", "expected_day", "confirmed"),
    [
        # no confirmation: the best timepoint response wins
        ([(56, 30), (112, 40)], False, R.PR, 56, None),
        ([(56, 0), (112, 30)], False, R.CR, 56, None),
        # §6.3 rule 3: SD needs day >= 42; day 42 itself qualifies
        ([(42, 40)], False, R.SD, 42, None),
        ([(41, 40)], False, R.NE, None, None),  # SD too early, then nothing
        ([(41, 40), (90, 60)], False, R.PD, 90, None),  # SD too early, then PD
        # confirmation (§6.3; RECIST 1.1 §4.6.1; D17)
        ([(56, 30), (84, 30)], True, R.PR, 56, True),  # exactly 28 days later
        ([(56, 30), (83, 30)], True, R.SD, 56, False),  # 27 days: not confirmed
        ([(56, 30), (84, 40)], True, R.SD, 56, False),  # PR then SD
        ([(56, 0), (84, 30)], True, R.SD, 56, False),  # CR then PR is not a confirmed response
        ([(56, 0), (84, 0)], True, R.CR, 56, True),
        ([(56, 30), (70, 0), (98, 0)], True, R.CR, 70, True),
        ([(56, 30), (84, None), (112, 30)], True, R.PR, 56, True),  # one NE in between
        ([(56, 30), (70, None), (84, None), (112, 30)], True, R.SD, 56, False),  # two NE
        ([(56, 30), (84, 0)], True, R.PR, 56, True),  # PR confirmed by a later CR
        ([(56, 70)], True, R.PD, 56, False),
    ],
    ids=[
        "pr-then-sd-is-pr",
        "cr-then-pr-is-cr-unconfirmed",
        "sd-on-day-42",
        "sd-on-day-41-alone-is-ne",
        "sd-too-early-then-pd-is-pd",
        "pr-confirmed-28-days-later",
        "pr-27-days-later-not-confirmed",
        "pr-then-sd-not-confirmed",
        "cr-then-pr-not-confirmed",
        "cr-confirmed",
        "pr-then-confirmed-cr",
        "one-ne-in-between-is-allowed",
        "two-ne-in-between-are-not",
        "pr-confirmed-by-cr",
        "pd-only",
    ],
)
def test_best_overall_response(
    series: list[tuple[int, float | None]],
    confirmation: bool,
    expected: Response,
    expected_day: int | None,
    confirmed: bool | None,
) -> None:
    result = run(
        RECIST,
        exam(0, target("T1", 50)),
        *(exam(d, target("T1", mm)) for d, mm in series),
        confirmation=confirmation,
    )
    bor = result.best_overall_response
    assert bor.response is expected
    assert bor.date == (None if expected_day is None else day(expected_day))
    assert bor.confirmed is confirmed


def test_non_cr_non_pd_best_response_needs_the_sd_minimum_time() -> None:
    """D25."""
    early = run(RECIST, exam(0, non_target("NT1")), exam(30, non_target("NT1")))
    late = run(RECIST, exam(0, non_target("NT1")), exam(42, non_target("NT1")))
    assert early.best_overall_response.response is R.NE
    assert late.best_overall_response.response is R.NON_CR_NON_PD


def test_later_timepoints_never_change_the_best_response_after_progression() -> None:
    """§6.2: only follow-ups before the progression date count."""
    result = run(
        RECIST,
        exam(0, target("T1", 50)),
        exam(20, target("T1", 50)),  # SD too early
        exam(60, target("T1", 70)),  # PD
        exam(120, target("T1", 10)),  # "PR" after progression: ignored
    )
    assert result.progression_date == day(60)
    assert result.best_overall_response.response is R.PD


# --- §7 tumour growth rate


def test_growth_rates_follow_the_exponential_formula_and_flag_hyperprogression() -> None:
    """Ferté 2014 formula; Champiat 2017: PD at first evaluation and a >= 2-fold TGR ratio."""
    pre, base, first = dt.date(2024, 11, 1), dt.date(2025, 1, 1), dt.date(2025, 3, 1)
    result = run(
        RECIST,
        exam(pre, *sums(36), pre_baseline=True),
        exam(base, *sums(40)),
        exam(first, *sums(60)),
    )
    tgr = result.tumor_growth_rate
    assert tgr is not None

    def rate(d_a: float, d_b: float, days: int) -> float:
        return 100 * (math.exp(3 * math.log(d_b / d_a) / (days / 30.4375)) - 1)

    pre_rate, on_rate = rate(36, 40, (base - pre).days), rate(40, 60, (first - base).days)
    assert float(tgr.pre_treatment_pct_per_month or 0) == pytest.approx(pre_rate, abs=0.051)
    assert float(tgr.on_treatment_pct_per_month or 0) == pytest.approx(on_rate, abs=0.051)
    assert float(tgr.ratio or 0) == pytest.approx(on_rate / pre_rate, abs=0.0051)
    assert result.timepoints[0].overall_response is R.PD
    assert tgr.hyperprogression is True


def test_without_progression_a_high_tgr_ratio_is_not_hyperprogression() -> None:
    """D20: the ratio alone is not enough."""
    result = run(
        RECIST,
        exam(-60, *sums(39.5), pre_baseline=True),
        exam(0, *sums(40)),
        exam(56, *sums(45)),
    )
    tgr = result.tumor_growth_rate
    assert tgr is not None
    assert tgr.ratio is not None
    assert tgr.ratio > 2
    assert tgr.hyperprogression is False


def test_undefined_growth_rates_are_null_with_a_warning() -> None:
    result = run(
        RECIST,
        exam(-60, target("T1", None), pre_baseline=True),
        exam(0, *sums(40)),
        exam(56, *sums(0)),
    )
    tgr = result.tumor_growth_rate
    assert tgr is not None
    assert tgr.pre_treatment_pct_per_month is None
    assert tgr.on_treatment_pct_per_month == Decimal("-100.0")  # Db = 0
    assert tgr.ratio is None
    assert tgr.hyperprogression is False
    assert [w.split(":")[0] for w in result.warnings] == ["tgr-undefined", "tgr-undefined"]


def test_without_a_pre_baseline_scan_there_is_no_growth_rate() -> None:
    assert run(RECIST, exam(0, *sums(40)), exam(56, *sums(40))).tumor_growth_rate is None


# --- reasons


def test_reasons_state_the_numbers_behind_the_category() -> None:
    """``assessment-api.md``: a reader can check the decision without rerunning it."""
    result = run(RECIST, exam(0, *sums(30, 20)), exam(65, *sums(25, 16)))
    tp = result.timepoints[0]
    assert tp.reasons[0].startswith(
        "sum of diameters 41.0 mm is 18.0% below baseline 50.0 mm: neither PR (>= 30% decrease) "
        "nor PD"
    )
    assert tp.reasons[-1] == "target SD, non-target none, no counted new lesion: overall SD"


# --- §2.1 rule 6 (v2): continuing PR (EORTC RECIST Q&A "definition of SD"; D16)

CONTINUING_PR = [
    # (id, follow-ups as (day, sum or None, extra lesions), expected target, expected overall)
    # EORTC worked example 165 -> 63 -> 65 mm: "continued PR" (65 is still 60.6 % below baseline).
    ("eortc-165-63-65-is-continued-pr", [(56, 63, ()), (112, 65, ())], "PR PR", "PR PR"),
    # +18.3 % over the nadir 60, only 29 % below baseline: SD by the numbers, still PR.
    ("sd-by-numbers-after-pr-stays-pr", [(56, 60, ()), (112, 71, ())], "PR PR", "PR PR"),
    # Only target PD ends it: 73 is +21.7 % and +13 mm over the nadir 60; 71 after it is SD.
    (
        "target-pd-ends-the-continuing-pr",
        [(56, 60, ()), (112, 71, ()), (168, 73, ()), (224, 71, ())],
        "PR PR PD SD",
        "PR PR PD SD",
    ),
    # Target NE in between is skipped.
    (
        "target-ne-in-between-is-skipped",
        [(56, 60, ()), (112, None, ()), (168, 71, ())],
        "PR NE PR",
        "PR NE PR",
    ),
    # Overall PD by a new lesion or by non-targets does not end it (D16).
    (
        "overall-pd-by-a-new-lesion-does-not-end-it",
        [(56, 60, ()), (112, 71, (new("N1"), non_target("NT1"))), (168, 71, ())],
        "PR PR PR",
        "PR PD PR",
    ),
    (
        "overall-pd-by-non-targets-does-not-end-it",
        [(56, 60, ()), (112, 71, (non_target("NT1", "progression"),)), (168, 71, ())],
        "PR PR PR",
        "PR PD PR",
    ),
    # Without an earlier target PR there is nothing to continue.
    ("sd-without-an-earlier-pr-is-sd", [(56, 80, ()), (112, 71, ())], "SD SD", "SD SD"),
]


@pytest.mark.parametrize(
    ("follow_ups", "targets", "overalls"),
    [row[1:] for row in CONTINUING_PR],
    ids=[row[0] for row in CONTINUING_PR],
)
def test_a_target_pr_continues_until_target_pd(
    follow_ups: list[tuple[int, float | None, tuple[object, ...]]], targets: str, overalls: str
) -> None:
    """§2.1 rule 6 (v2, D16); baseline: one liver target (165 mm in the EORTC row, else 100)
    and one bone non-target, listed present unless a row says otherwise."""
    base = 165 if follow_ups[0][1] == 63 else 100
    result = run(
        RECIST,
        exam(0, target("T1", base), non_target("NT1")),
        *(
            exam(d, target("T1", mm), *(extra or (non_target("NT1"),)))  # type: ignore[arg-type]
            for d, mm, extra in follow_ups
        ),
    )
    assert " ".join(str(t.target_response) for t in result.timepoints) == targets
    assert " ".join(str(t.overall_response) for t in result.timepoints) == overalls


def test_a_continuing_pr_explains_itself_with_both_changes() -> None:
    """§2.1 rule 6: reasons give the change from baseline and from the nadir."""
    result = run(
        RECIST, exam(0, target("T1", 100)), exam(56, target("T1", 60)), exam(112, target("T1", 71))
    )
    assert result.timepoints[1].reasons[0] == (
        "sum of diameters 71.0 mm is 29.0% below baseline 100.0 mm and 18.3% above the nadir of "
        f"{day(56)} 60.0 mm: SD by the numbers, but the target response has been PR or better "
        f"since {day(56)} and only PD ends it: target PR, a continuing PR (EORTC RECIST Q&A "
        '"definition of SD"; criteria.md §2.1 rule 6, D16)'
    )


def test_a_pr_is_confirmed_by_a_continuing_pr() -> None:
    """D16: "a continuing PR counts as PR for confirmation" (§6.3); v1 gave SD, unconfirmed."""
    result = run(
        RECIST,
        exam(0, target("T1", 100)),
        exam(56, target("T1", 60)),  # PR
        exam(84, target("T1", 71)),  # SD by the numbers, 28 days later: continuing PR
        confirmation=True,
    )
    assert [t.overall_response for t in result.timepoints] == [R.PR, R.PR]
    bor = result.best_overall_response
    assert (bor.response, bor.date, bor.confirmed) == (R.PR, day(56), True)


# --- §2.4 (v2): reappearance after CR only when the CR was definitive (D15)

REAPPEARANCE = [
    # (id, confirmationRequired, earlier follow-ups as (day, T1 mm, NT1 status),
    #  the follow-up where something is listed again, expected target / non-target / overall,
    #  whether unconfirmed-cr is warned)
    # Without confirmation every CR is definitive: T1 back at 3 mm is PD.
    (
        "no-confirmation-cr-is-definitive",
        False,
        [(56, 0, "absent")],
        (112, 3, "absent"),
        "PD CR PD",
        False,
    ),
    # With confirmation a single CR is not definitive: ordinary rules; 3 mm over a 0 nadir is
    # not PD (< 5 mm), 3 <= 70 % of 20: PR.
    (
        "single-cr-is-not-definitive",
        True,
        [(56, 0, "absent")],
        (112, 3, "absent"),
        "PR CR PR",
        True,
    ),
    # An earlier CR exactly 28 days before makes the CR definitive.
    (
        "cr-confirmed-28-days-earlier-is-definitive",
        True,
        [(56, 0, "absent"), (84, 0, "absent")],
        (112, 3, "absent"),
        "PD CR PD",
        False,
    ),
    (
        "cr-27-days-after-the-first-is-not-definitive",
        True,
        [(56, 0, "absent"), (83, 0, "absent")],
        (112, 3, "absent"),
        "PR CR PR",
        True,
    ),
    # At most one NE between the two CRs.
    (
        "one-ne-between-the-crs-is-allowed",
        True,
        [(56, 0, "absent"), (70, None, "absent"), (84, 0, "absent")],
        (112, 3, "absent"),
        "PD CR PD",
        False,
    ),
    (
        "two-ne-between-the-crs-are-not",
        True,
        [(56, 0, "absent"), (63, None, "absent"), (70, None, "absent"), (90, 0, "absent")],
        (112, 3, "absent"),
        "PR CR PR",
        True,
    ),
    # A non-target reported "increased" after a definitive CR is PD like "present" (§2.2, §2.4).
    (
        "increased-non-target-after-definitive-cr",
        False,
        [(56, 0, "absent")],
        (112, 0, "increased"),
        "CR PD PD",
        False,
    ),
    # After an unconfirmed CR a present non-target is NON-CR/NON-PD: target CR + it = PR.
    (
        "present-non-target-after-unconfirmed-cr",
        True,
        [(56, 0, "absent")],
        (112, 0, "present"),
        "CR NON-CR/NON-PD PR",
        True,
    ),
    # Nothing reappears: no warning, even after an unconfirmed CR.
    (
        "nothing-reappears-no-warning",
        True,
        [(56, 0, "absent")],
        (112, 0, "absent"),
        "CR CR CR",
        False,
    ),
]


@pytest.mark.parametrize(
    ("confirmation", "earlier", "again", "expected", "warned"),
    [row[1:] for row in REAPPEARANCE],
    ids=[row[0] for row in REAPPEARANCE],
)
def test_reappearance_after_cr_is_pd_only_after_a_definitive_cr(
    confirmation: bool,
    earlier: list[tuple[int, float | None, str]],
    again: tuple[int, float, str],
    expected: str,
    warned: bool,
) -> None:
    """§2.4 (v2), D15: "CR (overall) was definitively assigned at the previous assessment"."""
    result = run(
        RECIST,
        exam(0, target("T1", 20), non_target("NT1")),
        *(exam(d, target("T1", mm), non_target("NT1", s)) for d, mm, s in [*earlier, again]),
        confirmation=confirmation,
    )
    last = result.timepoints[-1]
    got = f"{last.target_response} {last.non_target_response} {last.overall_response}"
    assert got == expected
    unconfirmed = [w for w in result.warnings if w.startswith("unconfirmed-cr: ")]
    assert len(unconfirmed) == (1 if warned else 0)
    if warned:
        assert f"on {day(again[0])}" in unconfirmed[0]
        assert f"overall CR of {day(earlier[-1][0])}, which is not definitive" in unconfirmed[0]
        assert any("judged by the ordinary rules" in r for r in last.reasons)


def test_a_node_back_at_10_mm_after_an_unconfirmed_cr_is_judged_by_the_nadir() -> None:
    """§2.4 (v2): "the nadir sum decides PD"; 20 + 18 -> 0 + 5 (CR) -> 0 + 10: +5 mm, +100 %."""
    result = run(
        RECIST,
        exam(0, target("T1", 20), node("N1", 18)),
        exam(56, target("T1", 0), node("N1", 5)),
        exam(112, target("T1", 0), node("N1", 10)),
        exam(168, target("T1", 0), node("N1", 9.9)),
        confirmation=True,
    )
    assert [t.target_response for t in result.timepoints] == [R.CR, R.PD, R.CR]
    assert [w.split(": ")[0] for w in result.warnings] == ["unconfirmed-cr"]
