"""PERCIST 1.0 (Wahl 2009; Practical PERCIST, O 2016): one row per clinically meaningful case.

Sources cited per row: [P] Wahl RL et al., J Nucl Med 2009;50 Suppl 1:122S-150S; [PP] O JH et al.,
Radiology 2016;280:576-584; [spec] ``criteria.md`` section or decision; [api] ``assessment-api.md``.
Unless a row says otherwise every scan uses the liver reference 2.0 +/- 0.25 SUL (threshold 3.50).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from fhirnet.criteria import (
    Assessment,
    Criteria,
    NewLesion,
    NonTargetLesion,
    PetReference,
    Response,
    TargetLesion,
    TimePoint,
    TimePointAssessment,
)
from fhirnet.errors import InvalidInputError
from tests.criteria.builders import Number, day, exam, new, non_target, num, run, target

CMR, PMR, SMD, PMD, NE = Response.CMR, Response.PMR, Response.SMD, Response.PMD, Response.NE
CR, NON_CR_NON_PD, PD = Response.CR, Response.NON_CR_NON_PD, Response.PD

Lesion = TargetLesion | NonTargetLesion | NewLesion

ORGANS = {"T1": "liver", "T2": "lung", "T3": "pancreas", "T4": "bone", "T5": "peritoneum"}


def pet(
    liver: Number = "2.0",
    sd: Number = "0.25",
    *,
    blood: Number = None,
    blood_sd: Number = None,
    uptake: Number = None,
) -> PetReference:
    """A PET reference region; ``pet(None, None)`` has no liver reference."""
    return PetReference(
        liver_sul_mean=num(liver),
        liver_sul_sd=num(sd),
        blood_pool_sul_mean=num(blood),
        blood_pool_sul_sd=num(blood_sd),
        uptake_time_min=num(uptake),
    )


LIVER = pet()  # threshold 1.5 x 2.0 + 2 x 0.25 = 3.50
LOW_LIVER = pet("1.0", "0.2")  # threshold 1.90: lets small baseline values be measurable
NO_REFERENCE = pet(None, None)


def hot(lesion_id: str, sul: Number, mm: Number = 20, **kwargs: bool) -> TargetLesion:
    """A target lesion in its own organ with a SULpeak (``None``: not measured)."""
    return target(lesion_id, mm, site=ORGANS[lesion_id], sul=sul, **kwargs)


def scan(when: int, *lesions: Lesion, reference: PetReference | None = LIVER) -> TimePoint:
    """An FDG-PET exam ``when`` days after baseline."""
    return exam(when, *lesions, modalities=("FDG-PET",), pet=reference)


def percist(*scans: TimePoint, confirmation: bool = False) -> Assessment:
    return run(Criteria.PERCIST_1_0, *scans, confirmation=confirmation)


def only_follow_up(*scans: TimePoint) -> tuple[TimePointAssessment, Assessment]:
    result = percist(*scans)
    return result.timepoints[-1], result


def dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


# Target response: thresholds, CMR, hottest lesion (§5.2, §5.3).


@dataclass(frozen=True, kw_only=True)
class TargetCase:
    name: str
    source: str
    baseline: tuple[TargetLesion, ...]
    follow_up: tuple[TargetLesion, ...]
    response: Response
    sul_peak: str | None  # targetSulPeak
    change_pct: str | None
    change_abs: str | None
    baseline_reference: PetReference = LIVER
    follow_up_reference: PetReference = LIVER


TARGET_CASES = [
    TargetCase(
        name="pmr_at_exactly_30_percent_with_more_than_0_8_sul",
        source="[P] PMR 'a minimum of 30 %'; D7 inclusive; 6.10 x 0.7 = 4.27 exactly",
        baseline=(hot("T1", "6.10"),),
        follow_up=(hot("T1", "4.27"),),
        response=PMR,
        sul_peak="4.27",
        change_pct="-30.0",
        change_abs="-1.83",
    ),
    TargetCase(
        name="smd_at_35_percent_decrease_but_only_0_7_sul",
        source="[P] PMR also needs 'at least 0.8 SULpeak units'",
        baseline=(hot("T1", "2.0"),),
        follow_up=(hot("T1", "1.3"),),
        baseline_reference=LOW_LIVER,
        follow_up_reference=LOW_LIVER,
        response=SMD,
        sul_peak="1.30",
        change_pct="-35.0",
        change_abs="-0.70",
    ),
    TargetCase(
        name="smd_at_exactly_30_percent_decrease_but_only_0_6_sul",
        source="[P] both PMR conditions; D7",
        baseline=(hot("T1", "2.0"),),
        follow_up=(hot("T1", "1.4"),),
        baseline_reference=LOW_LIVER,
        follow_up_reference=LOW_LIVER,
        response=SMD,
        sul_peak="1.40",
        change_pct="-30.0",
        change_abs="-0.60",
    ),
    TargetCase(
        name="pmr_at_exactly_0_8_sul_with_40_percent_decrease",
        source="[P] 'at least 0.8 SULpeak units'; D7 inclusive",
        baseline=(hot("T1", "2.0"),),
        follow_up=(hot("T1", "1.2"),),
        baseline_reference=LOW_LIVER,
        follow_up_reference=LOW_LIVER,
        response=PMR,
        sul_peak="1.20",
        change_pct="-40.0",
        change_abs="-0.80",
    ),
    TargetCase(
        name="smd_at_0_8_sul_decrease_but_only_13_percent",
        source="[P] PMR needs 30 % as well",
        baseline=(hot("T1", "6.1"),),
        follow_up=(hot("T1", "5.3"),),
        response=SMD,
        sul_peak="5.30",
        change_pct="-13.1",
        change_abs="-0.80",
    ),
    TargetCase(
        name="smd_at_exactly_plus_30_percent_because_pmd_is_strict",
        source="[P] PMD '> 30 %'; D7; 4.0 x 1.3 = 5.2 exactly",
        baseline=(hot("T1", "4.0"),),
        follow_up=(hot("T1", "5.2"),),
        response=SMD,
        sul_peak="5.20",
        change_pct="30.0",
        change_abs="1.20",
    ),
    TargetCase(
        name="pmd_at_plus_30_1_percent_and_0_9_sul",
        source="[P] PMD '> 30 % and > 0.8 SULpeak units'; D7",
        baseline=(hot("T1", "2.99"),),
        follow_up=(hot("T1", "3.89"),),
        baseline_reference=LOW_LIVER,
        follow_up_reference=LOW_LIVER,
        response=PMD,
        sul_peak="3.89",
        change_pct="30.1",
        change_abs="0.90",
    ),
    TargetCase(
        name="smd_at_exactly_plus_0_8_sul_because_pmd_is_strict",
        source="[P] PMD '> 0.8 SULpeak units'; D7",
        baseline=(hot("T1", "2.0"),),
        follow_up=(hot("T1", "2.8"),),
        baseline_reference=LOW_LIVER,
        follow_up_reference=LOW_LIVER,
        response=SMD,
        sul_peak="2.80",
        change_pct="40.0",
        change_abs="0.80",
    ),
    TargetCase(
        name="pmd_at_plus_0_81_sul_and_40_5_percent",
        source="[P] PMD; just above the absolute threshold",
        baseline=(hot("T1", "2.0"),),
        follow_up=(hot("T1", "2.81"),),
        baseline_reference=LOW_LIVER,
        follow_up_reference=LOW_LIVER,
        response=PMD,
        sul_peak="2.81",
        change_pct="40.5",
        change_abs="0.81",
    ),
    TargetCase(
        name="cmr_when_hottest_is_below_the_liver_mean",
        source="[P] CMR 'less than mean liver activity'; D9",
        baseline=(hot("T1", "6.1"),),
        follow_up=(hot("T1", "1.99"),),
        response=CMR,
        sul_peak="1.99",
        change_pct="-67.4",
        change_abs="-4.11",
    ),
    TargetCase(
        name="pmr_not_cmr_when_hottest_equals_the_liver_mean",
        source="[spec] D9: strictly below the reference mean",
        baseline=(hot("T1", "6.1"),),
        follow_up=(hot("T1", "2.0"),),
        response=PMR,
        sul_peak="2.00",
        change_pct="-67.2",
        change_abs="-4.10",
    ),
    TargetCase(
        name="cmr_uses_this_scans_liver_mean_not_the_baselines",
        source="[spec] §5.1 each scan's own reference; D9",
        baseline=(hot("T1", "6.1"),),
        follow_up=(hot("T1", "2.2"),),
        follow_up_reference=pet("2.3", "0.25"),
        response=CMR,
        sul_peak="2.20",
        change_pct="-63.9",
        change_abs="-3.90",
    ),
    TargetCase(
        name="cmr_below_the_blood_pool_mean_on_fallback",
        source="[spec] §5.1 blood-pool fallback [PP step 3]; D9",
        baseline=(hot("T1", "6.1"),),
        follow_up=(hot("T1", "1.5"),),
        follow_up_reference=pet(None, None, blood="1.6", blood_sd="0.2"),
        response=CMR,
        sul_peak="1.50",
        change_pct="-75.4",
        change_abs="-4.60",
    ),
    TargetCase(
        name="pmr_when_the_hottest_lesion_changes_between_scans",
        source="[P] hottest lesion may differ; [PP] Fig. 3; brief example sentence",
        baseline=(hot("T1", "6.10"), hot("T2", "4.0")),
        follow_up=(hot("T1", "3.0"), hot("T2", "4.20")),
        response=PMR,
        sul_peak="4.20",
        change_pct="-31.1",
        change_abs="-1.90",
    ),
    TargetCase(
        name="smd_when_another_lesion_becomes_hottest_below_the_pmd_threshold",
        # T2 rose 87.5 %, but PERCIST compares hottest with hottest: 7.5 vs 6.1 is +23 %.
        source="[P] hottest vs baseline hottest; D8",
        baseline=(hot("T1", "6.1"), hot("T2", "4.0")),
        follow_up=(hot("T1", "2.5"), hot("T2", "7.5")),
        response=SMD,
        sul_peak="7.50",
        change_pct="23.0",
        change_abs="1.40",
    ),
    TargetCase(
        name="pmd_when_another_lesion_becomes_hottest_above_the_pmd_threshold",
        source="[P] hottest vs baseline hottest; [PP] Fig. 3",
        baseline=(hot("T1", "6.1"), hot("T2", "4.0")),
        follow_up=(hot("T1", "2.5"), hot("T2", "8.0")),
        response=PMD,
        sul_peak="8.00",
        change_pct="31.1",
        change_abs="1.90",
    ),
    TargetCase(
        name="resolved_target_is_excluded_from_the_hottest_value",
        source="[spec] §5.2 resolved lesions excluded",
        baseline=(hot("T1", "6.1"), hot("T2", "4.0")),
        follow_up=(hot("T1", None, mm=0), hot("T2", "3.0")),
        response=PMR,
        sul_peak="3.00",
        change_pct="-50.8",
        change_abs="-3.10",
    ),
    TargetCase(
        name="target_at_0_mm_with_a_sulpeak_is_evaluable_with_it",
        source="[brief] a given sulPeak makes a target evaluable even at 0 mm",
        baseline=(hot("T1", "6.1"), hot("T2", "4.0")),
        follow_up=(hot("T1", "5.5", mm=0), hot("T2", "3.0")),
        response=SMD,
        sul_peak="5.50",
        change_pct="-9.8",
        change_abs="-0.60",
    ),
]


@pytest.mark.parametrize("case", TARGET_CASES, ids=[c.name for c in TARGET_CASES])
def test_target_response_compares_the_hottest_sulpeak_with_the_baseline_hottest(
    case: TargetCase,
) -> None:
    result, _ = only_follow_up(
        scan(0, *case.baseline, reference=case.baseline_reference),
        scan(56, *case.follow_up, reference=case.follow_up_reference),
    )
    assert result.target_response is case.response
    assert result.overall_response is case.response  # no non-target or new lesion
    assert result.percist is not None
    assert result.percist.target_sul_peak == dec(case.sul_peak)
    assert result.percist.sul_peak_change_pct == dec(case.change_pct)
    assert result.percist.sul_peak_change_abs == dec(case.change_abs)


# Not evaluable and resolved targets (§5.2).


@dataclass(frozen=True, kw_only=True)
class EvaluabilityCase:
    name: str
    source: str
    follow_up: tuple[TargetLesion, ...]
    response: Response
    sul_peak: str | None = None
    reason: str = ""


BASELINE_PAIR = (hot("T1", "6.1"), hot("T2", "4.0"))

EVALUABILITY_CASES = [
    EvaluabilityCase(
        name="pmd_when_the_evaluable_targets_already_prove_it",
        # T1 missing could only be hotter: 8.0 is already +31.1 % and +1.9 SUL.
        source="[spec] §5.2 partial PMD, D13 (figures null)",
        follow_up=(hot("T2", "8.0"),),
        response=PMD,
        reason="missing lesions can only raise the hottest value",
    ),
    EvaluabilityCase(
        name="ne_when_the_evaluable_targets_do_not_prove_pmd",
        source="[spec] §5.2",
        follow_up=(hot("T2", "6.5"),),
        response=NE,
        reason="does not prove PMD",
    ),
    EvaluabilityCase(
        name="ne_when_a_measured_target_has_no_sulpeak",
        source="[api] sulPeak missing where required → NE at follow-up",
        follow_up=(hot("T1", None, mm=25), hot("T2", "1.0")),
        response=NE,
        reason="T1 not evaluable",
    ),
    EvaluabilityCase(
        name="ne_when_a_too_small_target_has_no_sulpeak",
        # too small counts 5 mm (§0), so it is not a resolved lesion.
        source="[spec] §0 too small = 5 mm; §5.2 only 0 mm is resolved",
        follow_up=(hot("T1", None, mm=None, too_small=True), hot("T2", "1.0")),
        response=NE,
    ),
    EvaluabilityCase(
        name="ne_when_no_target_is_listed",
        source="[api] a baseline target absent from a follow-up is not evaluated",
        follow_up=(),
        response=NE,
        reason="no target has a SULpeak",
    ),
    EvaluabilityCase(
        name="cmr_when_every_target_resolved",
        source="[spec] §5.2 every target resolved → CMR, changes null",
        follow_up=(hot("T1", None, mm=0), hot("T2", None, mm=0)),
        response=CMR,
        reason="every target lesion resolved",
    ),
]


@pytest.mark.parametrize("case", EVALUABILITY_CASES, ids=[c.name for c in EVALUABILITY_CASES])
def test_targets_without_sulpeak_are_ne_unless_resolved(case: EvaluabilityCase) -> None:
    result, _ = only_follow_up(scan(0, *BASELINE_PAIR), scan(56, *case.follow_up))
    assert result.target_response is case.response
    assert result.overall_response is case.response
    assert result.percist is not None
    assert result.percist.target_sul_peak is None
    assert result.percist.sul_peak_change_pct is None
    assert result.percist.sul_peak_change_abs is None
    assert result.percist.baseline_target_sul_peak == Decimal("6.10")
    assert any(case.reason in reason for reason in result.reasons)


def test_every_target_resolved_is_cmr_even_without_a_reference_region() -> None:
    # Brief decision: full resolution needs no reference mean to compare with.
    result, assessment = only_follow_up(
        scan(0, *BASELINE_PAIR),
        scan(56, hot("T1", None, mm=0), hot("T2", None, mm=0), reference=None),
    )
    assert result.overall_response is CMR
    assert result.percist is not None
    assert result.percist.measurability_threshold is None
    assert any(w.startswith("pet-reference-missing: ") for w in assessment.warnings)


# Overall response: non-targets and new lesions (§5.4, §2.2, §2.3).


HOT_BASELINE = (hot("T1", "6.1"), non_target("NT1"))
SMALL_BASELINE = (hot("T1", "1.7"), non_target("NT1"))  # liver 1.0 +/- 0.1: threshold 1.70
TINY_BASELINE = (hot("T1", "0.7"), non_target("NT1"))  # liver 0.3 +/- 0.05: threshold 0.55


@dataclass(frozen=True, kw_only=True)
class OverallCase:
    name: str
    source: str
    follow_up: tuple[Lesion, ...]
    target: Response
    non_target: Response | None
    overall: Response
    new_lesions: bool = False
    baseline: tuple[Lesion, ...] = HOT_BASELINE
    baseline_reference: PetReference = LIVER
    follow_up_reference: PetReference = LIVER
    reason: str = ""


OVERALL_CASES = [
    OverallCase(
        name="cmr_when_target_cmr_and_non_targets_absent",
        source="[P] CMR; [spec] §5.4, D9",
        follow_up=(hot("T1", "1.5"), non_target("NT1", "absent")),
        target=CMR,
        non_target=CR,
        overall=CMR,
    ),
    OverallCase(
        name="pmr_when_target_cmr_but_a_non_target_persists_and_the_decline_meets_pmr",
        source="[spec] §5.4; 6.1 → 1.5 is -75.4 % and -4.6 SUL",
        follow_up=(hot("T1", "1.5"), non_target("NT1")),
        target=CMR,
        non_target=NON_CR_NON_PD,
        overall=PMR,
        reason="the SULpeak decline from the baseline hottest meets the PMR test",
    ),
    OverallCase(
        name="smd_when_target_cmr_but_a_non_target_persists_and_the_decline_is_below_0_8_sul",
        source="[spec] §5.4; 1.70 → 0.95 is -44.1 % but only -0.75 SUL",
        baseline=SMALL_BASELINE,
        baseline_reference=pet("1.0", "0.1"),
        follow_up=(hot("T1", "0.95"), non_target("NT1")),
        follow_up_reference=pet("1.0", "0.1"),
        target=CMR,
        non_target=NON_CR_NON_PD,
        overall=SMD,
        reason="does not meet the PMR test",
    ),
    OverallCase(
        name="pmr_when_target_cmr_but_a_non_target_is_not_evaluated",
        source="[spec] §5.4 'non-targets not all absent'; RECIST T1 CR + NE → PR",
        follow_up=(hot("T1", "1.5"), non_target("NT1", "not-evaluated")),
        target=CMR,
        non_target=NE,
        overall=PMR,
    ),
    OverallCase(
        name="pmr_when_every_target_resolved_but_a_non_target_persists",
        source="[brief] full resolution = -100 % and -baseline SUL, meets the PMR test",
        follow_up=(hot("T1", None, mm=0), non_target("NT1")),
        target=CMR,
        non_target=NON_CR_NON_PD,
        overall=PMR,
        reason="every target resolved, read as a decline of the whole baseline hottest value",
    ),
    OverallCase(
        name="smd_when_every_target_resolved_from_below_0_8_sul_but_a_non_target_persists",
        source="[brief] full resolution of a 0.70 SUL hottest is only -0.70 SUL",
        baseline=TINY_BASELINE,
        baseline_reference=pet("0.3", "0.05"),
        follow_up=(hot("T1", None, mm=0), non_target("NT1")),
        target=CMR,
        non_target=NON_CR_NON_PD,
        overall=SMD,
        reason="does not meet the PMR test",
    ),
    OverallCase(
        name="pmd_when_a_non_target_progresses_despite_target_cmr",
        source="[P] unequivocal progression of non-target lesions; [spec] §5.4",
        follow_up=(hot("T1", "1.5"), non_target("NT1", "progression")),
        target=CMR,
        non_target=PD,
        overall=PMD,
    ),
    OverallCase(
        name="pmd_when_a_counted_new_lesion_appears",
        source="[P] new FDG-avid lesion; [spec] §2.3, §5.4",
        follow_up=(hot("T1", "3.0"), non_target("NT1"), new("N1", site="lung")),
        target=PMR,
        non_target=NON_CR_NON_PD,
        overall=PMD,
        new_lesions=True,
        reason="new lesion N1 (lung) counts as progression",
    ),
    OverallCase(
        name="an_equivocal_new_lesion_does_not_count",
        source="[spec] §2.3 equivocal",
        follow_up=(hot("T1", "3.0"), non_target("NT1"), new("N1", equivocal=True)),
        target=PMR,
        non_target=NON_CR_NON_PD,
        overall=PMR,
    ),
    OverallCase(
        name="pmd_when_a_non_target_progresses_while_targets_are_ne",
        source="[spec] §5.4 PMD before NE",
        follow_up=(non_target("NT1", "progression"),),
        target=NE,
        non_target=PD,
        overall=PMD,
    ),
    OverallCase(
        name="ne_when_targets_are_ne_and_non_targets_absent",
        source="[spec] §5.4",
        follow_up=(non_target("NT1", "absent"),),
        target=NE,
        non_target=CR,
        overall=NE,
    ),
    OverallCase(
        name="target_smd_stays_smd_with_a_persisting_non_target",
        source="[spec] §5.4 otherwise the target response",
        follow_up=(hot("T1", "5.0"), non_target("NT1")),
        target=SMD,
        non_target=NON_CR_NON_PD,
        overall=SMD,
    ),
]


@pytest.mark.parametrize("case", OVERALL_CASES, ids=[c.name for c in OVERALL_CASES])
def test_overall_response_combines_target_non_target_and_new_lesions(case: OverallCase) -> None:
    result, _ = only_follow_up(
        scan(0, *case.baseline, reference=case.baseline_reference),
        scan(56, *case.follow_up, reference=case.follow_up_reference),
    )
    assert (result.target_response, result.non_target_response, result.overall_response) == (
        case.target,
        case.non_target,
        case.overall,
    )
    assert result.new_lesions is case.new_lesions
    assert any(case.reason in reason for reason in result.reasons)


def test_a_rise_from_the_best_response_is_judged_against_the_baseline_not_the_nadir() -> None:
    # criteria.md D8 ([P] "from the baseline scan"): 3.0 → 4.5 is +50 % over the nadir, but
    # 4.5 is 26.2 % below the baseline hottest 6.1: SMD, not PMD.
    result = percist(
        scan(0, hot("T1", "6.1")), scan(56, hot("T1", "3.0")), scan(112, hot("T1", "4.5"))
    )
    assert [t.overall_response for t in result.timepoints] == [PMR, SMD]
    assert result.progression_date is None


def test_reappearance_after_cmr_is_judged_on_the_numbers_not_as_progression() -> None:
    # criteria.md §5.4: the RECIST §2.4 reappearance-after-CR rule does not apply to PERCIST.
    result = percist(
        scan(0, hot("T1", "6.1"), non_target("NT1")),
        scan(56, hot("T1", None, mm=0), non_target("NT1", "absent")),
        scan(112, hot("T1", "3.0", mm=12), non_target("NT1")),
    )
    assert [t.overall_response for t in result.timepoints] == [CMR, PMR]
    assert result.timepoints[1].non_target_response is NON_CR_NON_PD


def test_a_confirmed_equivocal_new_lesion_backdates_progression_to_its_first_appearance() -> None:
    # criteria.md §2.3, §6.1, D12; RECIST 1.1 §4.3.5.
    result = percist(
        scan(0, hot("T1", "6.1")),
        scan(56, hot("T1", "3.0")),
        scan(112, hot("T1", "3.0"), new("N1", equivocal=True)),
        scan(168, hot("T1", "3.1"), new("N1")),
    )
    assert [t.overall_response for t in result.timepoints] == [PMR, PMR, PMD]
    assert result.progression_date == day(112)
    assert (result.best_overall_response.response, result.best_overall_response.date) == (
        PMR,
        day(56),
    )
    assert any("progression dates from" in r for r in result.timepoints[-1].reasons)


# Reasons and figures ([api]).


def test_reasons_give_the_numbers_behind_the_category() -> None:
    result, _ = only_follow_up(
        scan(0, hot("T1", "6.10"), hot("T2", "4.0")),
        scan(56, hot("T1", "3.0"), hot("T2", "4.20")),
    )
    assert (
        "hottest target SULpeak 4.20 (T2) is 31.1% and 1.90 SUL below the baseline hottest "
        "6.10 (T1): PMR (>= 30% and >= 0.8 SUL decrease, PERCIST 1.0, Wahl 2009)"
    ) in result.reasons
    assert result.reasons[-1] == "target PMR, non-target none, no counted new lesion: overall PMR"


def test_a_baseline_of_0_sul_gives_null_percentages_and_absolute_wording() -> None:
    # criteria.md §0: a percent change against a reference of 0 is null. A liver of 0 +/- 0 makes
    # the threshold 0, so a 0 SUL hottest is measurable; +0.9 SUL is then PMD (> 0.8 SUL, > 0 %).
    zero = pet("0", "0")
    result, assessment = only_follow_up(
        scan(0, hot("T1", "0"), reference=zero), scan(56, hot("T1", "0.9"), reference=pet("0.1"))
    )
    assert result.overall_response is PMD
    assert result.percist is not None
    assert (result.percist.sul_peak_change_pct, result.percist.sul_peak_change_abs) == (
        None,
        Decimal("0.90"),
    )
    assert any("is 0.90 SUL above the baseline hottest 0.00 (T1)" in r for r in result.reasons)
    assert assessment.warnings[0].startswith(
        "liver-drift: liver SULmean 0.1 differs from baseline 0 by 0.1 SUL"
    )


def test_an_extreme_sulpeak_is_assessed_not_crashed_on() -> None:
    # [api] SULpeak is only "finite and non-negative": a 1e30 baseline must not break rounding
    # (found by tests/web/test_fuzz.py; "never a 500 for bad input").
    result, _ = only_follow_up(scan(0, hot("T1", "1e30")), scan(56, hot("T1", "1")))
    assert result.overall_response is CMR
    assert result.percist is not None
    assert result.percist.baseline_target_sul_peak == Decimal("1e30")
    assert result.percist.sul_peak_change_pct == Decimal("-100.0")


def test_every_follow_up_also_reports_the_sum_of_diameters() -> None:
    result, _ = only_follow_up(
        scan(0, hot("T1", "6.1", mm=30), hot("T2", "4.0", mm=20)),
        scan(56, hot("T1", "3.0", mm=20), hot("T2", "3.0", mm=15)),
    )
    assert (result.sum_mm, result.baseline_sum_mm, result.change_from_baseline_pct) == (
        Decimal("35.0"),
        Decimal("50.0"),
        Decimal("-30.0"),
    )


# Reference region and measurability threshold (§5.1).


@dataclass(frozen=True, kw_only=True)
class ReferenceCase:
    name: str
    source: str
    reference: PetReference | None
    threshold: str | None
    warning: str | None


REFERENCE_CASES = [
    ReferenceCase(
        name="liver_threshold_is_1_5_mean_plus_2_sd",
        source="[P] measurability; [PP] step 2: 1.5 x 2.1 + 2 x 0.25",
        reference=pet("2.1", "0.25"),
        threshold="3.65",
        warning=None,
    ),
    ReferenceCase(
        name="blood_pool_threshold_is_2_mean_plus_2_sd_with_a_warning",
        source="[P]; [PP] step 3: 2.0 x 1.6 + 2 x 0.2; [spec] §5.1",
        reference=pet(None, None, blood="1.6", blood_sd="0.2"),
        threshold="3.60",
        warning="blood-pool-reference: ",
    ),
    ReferenceCase(
        name="liver_wins_when_both_regions_are_given",
        source="[spec] §5.1 liver first",
        reference=pet("2.1", "0.25", blood="1.6", blood_sd="0.2"),
        threshold="3.65",
        warning=None,
    ),
    ReferenceCase(
        name="blood_pool_is_used_when_the_liver_sd_is_missing",
        source="[spec] §5.1 the liver needs mean and SD",
        reference=pet("2.1", None, blood="1.6", blood_sd="0.2"),
        threshold="3.60",
        warning="blood-pool-reference: ",
    ),
    ReferenceCase(
        name="no_pet_values_give_no_threshold_and_a_warning",
        source="[spec] §5.1 follow-up without reference",
        reference=None,
        threshold=None,
        warning="pet-reference-missing: ",
    ),
    ReferenceCase(
        name="a_blood_pool_mean_without_sd_is_no_reference",
        source="[spec] §5.1",
        reference=pet(None, None, blood="1.6"),
        threshold=None,
        warning="pet-reference-missing: ",
    ),
]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[c.name for c in REFERENCE_CASES])
def test_measurability_threshold_comes_from_this_scans_reference_region(
    case: ReferenceCase,
) -> None:
    result, assessment = only_follow_up(
        scan(0, hot("T1", "6.1")), scan(56, hot("T1", "5.0"), reference=case.reference)
    )
    assert result.percist is not None
    assert result.percist.measurability_threshold == dec(case.threshold)
    expected = [] if case.warning is None else [case.warning]
    assert [w[: w.index(": ") + 2] for w in assessment.warnings] == expected


def test_cmr_on_the_blood_pool_fallback_is_warned() -> None:
    # [PP] step 3: blood pool when the liver is unusable; D9: CMR below the blood-pool mean.
    result, assessment = only_follow_up(
        scan(0, hot("T1", "6.1")),
        scan(56, hot("T1", "1.5"), reference=pet(None, None, blood="1.6", blood_sd="0.2")),
    )
    assert result.overall_response is CMR
    assert "blood-pool reference SULmean 1.60" in result.reasons[1]
    assert assessment.warnings == (
        "blood-pool-reference: the exam of 2025-03-03 has no liver SULmean and SD; the blood-pool "
        "SULmean 1.60 is the reference (threshold 2.0 x mean + 2 x SD = 3.60, Practical PERCIST)",
    )


def test_without_a_reference_region_cmr_cannot_be_assigned_but_pmr_can() -> None:
    # 1.5 is below the baseline liver mean 2.0, but this scan has no reference (§5.1).
    result, assessment = only_follow_up(
        scan(0, hot("T1", "6.1")), scan(56, hot("T1", "1.5"), reference=NO_REFERENCE)
    )
    assert result.target_response is PMR
    assert result.percist is not None
    assert result.percist.measurability_threshold is None
    assert any("CMR (hottest SULpeak below the reference mean)" in r for r in result.reasons)
    assert assessment.warnings == (
        "pet-reference-missing: the exam of 2025-03-03 has no reference region (liver or "
        "blood-pool SULmean and SD): no measurability threshold, and no CMR by the "
        "hottest-below-reference-mean rule",
    )


def test_a_blood_pool_baseline_is_warned_too() -> None:
    # §5.1 applies to every scan; baseline threshold 2.0 x 1.6 + 2 x 0.2 = 3.60.
    _, assessment = only_follow_up(
        scan(0, hot("T1", "6.1"), reference=pet(None, None, blood="1.6", blood_sd="0.2")),
        scan(56, hot("T1", "5.0")),
    )
    assert len(assessment.warnings) == 1
    assert assessment.warnings[0].startswith(
        "blood-pool-reference: the baseline exam of 2025-01-06"
    )


# Quality warnings (§5.5, D10).


@dataclass(frozen=True, kw_only=True)
class QualityCase:
    name: str
    source: str
    baseline: PetReference
    follow_up: PetReference
    warnings: list[str] = field(default_factory=list)


QUALITY_CASES = [
    QualityCase(
        name="uptake_time_16_min_later_warns",
        source="[P] acquisition; [PP] Table 1; [api] more than 15 minutes apart",
        baseline=pet(uptake=60),
        follow_up=pet(uptake=76),
        warnings=[
            "uptake-time: uptake time 76 min differs from baseline 60 min by 16 min "
            "(exam of 2025-03-03; PERCIST 1.0 allows 15 min)"
        ],
    ),
    QualityCase(
        name="uptake_time_16_min_earlier_warns",
        source="[spec] §5.5 'differs by more than 15 min'",
        baseline=pet(uptake=60),
        follow_up=pet(uptake=44),
        warnings=["uptake-time: "],
    ),
    QualityCase(
        name="uptake_time_exactly_15_min_apart_does_not_warn",
        source="[spec] §5.5 more than 15 min",
        baseline=pet(uptake=60),
        follow_up=pet(uptake=75),
    ),
    QualityCase(
        name="uptake_time_missing_on_one_scan_does_not_warn",
        source="[spec] §5.5 needs both times",
        baseline=pet(uptake=60),
        follow_up=pet(),
    ),
    QualityCase(
        name="liver_drift_of_30_percent_warns_in_the_contract_wording",
        source="[api] warning example 'liver SULmean 2.6 differs from baseline 2.0 by 30%'",
        baseline=pet("2.0"),
        follow_up=pet("2.6"),
        warnings=[
            "liver-drift: liver SULmean 2.6 differs from baseline 2.0 by 30% "
            "(exam of 2025-03-03; PERCIST 1.0 allows 20%)"
        ],
    ),
    QualityCase(
        name="liver_drift_of_20_5_percent_warns",
        source="[spec] §5.5 more than 20 %",
        baseline=pet("2.0"),
        follow_up=pet("2.41"),
        warnings=["liver-drift: liver SULmean 2.41 differs from baseline 2.0 by 20.5% "],
    ),
    QualityCase(
        name="liver_drift_of_exactly_20_percent_up_does_not_warn",
        source="[spec] §5.5 more than 20 %",
        baseline=pet("2.0"),
        follow_up=pet("2.4"),
    ),
    QualityCase(
        name="liver_drift_of_exactly_20_percent_down_does_not_warn",
        source="[spec] §5.5 more than 20 %",
        baseline=pet("2.0"),
        follow_up=pet("1.6"),
    ),
    QualityCase(
        name="liver_drift_of_20_5_percent_down_warns",
        source="[spec] §5.5",
        baseline=pet("2.0"),
        follow_up=pet("1.59"),
        warnings=["liver-drift: "],
    ),
]


@pytest.mark.parametrize("case", QUALITY_CASES, ids=[c.name for c in QUALITY_CASES])
def test_quality_warnings_never_block_the_assessment(case: QualityCase) -> None:
    result, assessment = only_follow_up(
        scan(0, hot("T1", "6.1"), reference=case.baseline),
        scan(56, hot("T1", "5.0"), reference=case.follow_up),
    )
    assert result.overall_response is SMD
    assert len(assessment.warnings) == len(case.warnings)
    for warning, expected in zip(assessment.warnings, case.warnings, strict=True):
        assert warning.startswith(expected)


# Baseline validation (§1 rule 5).


@dataclass(frozen=True, kw_only=True)
class BaselineCase:
    name: str
    source: str
    baseline: TimePoint
    message: str


BASELINE_CASES = [
    BaselineCase(
        name="no_reference_region",
        source="[spec] §1 rule 5, §5.1 baseline without reference → 422",
        baseline=scan(0, hot("T1", "6.1"), reference=None),
        message="PERCIST 1.0: the baseline needs a reference region",
    ),
    BaselineCase(
        name="liver_mean_without_sd_and_no_blood_pool",
        source="[spec] §5.1",
        baseline=scan(0, hot("T1", "6.1"), reference=pet("2.0", None)),
        message="PERCIST 1.0: the baseline needs a reference region",
    ),
    BaselineCase(
        name="hottest_target_below_the_measurability_threshold",
        source="[P] measurable: >= 1.5 x liver mean + 2 SD; [spec] §5.2 (3.49 < 3.50)",
        baseline=scan(0, hot("T1", "3.49"), hot("T2", "2.0")),
        message="is below the measurability threshold",
    ),
    BaselineCase(
        name="target_without_sulpeak",
        source="[spec] §1 rule 5; [api] missing where required → 422 at baseline",
        baseline=scan(0, hot("T1", "6.1"), hot("T2", None)),
        message="PERCIST 1.0: every baseline target lesion needs sulPeak",
    ),
    BaselineCase(
        name="more_than_five_targets",
        source="[P] up to 5 target lesions; [spec] §1 rule 5",
        baseline=scan(
            0,
            *(hot(f"T{i}", "6.1") for i in range(1, 6)),
            target("T6", 20, site="kidney", sul="5.0"),
        ),
        message="PERCIST 1.0: at most 5 target lesions",
    ),
    BaselineCase(
        name="more_than_two_targets_per_organ",
        source="[P] up to 2 per organ; [spec] §1 rule 5",
        baseline=scan(0, *(target(f"T{i}", 20, site="liver", sul="6.1") for i in (1, 2, 3))),
        message="PERCIST 1.0: at most 2 target lesions per organ",
    ),
    BaselineCase(
        name="no_target_lesion",
        source="[spec] §1 rule 5: 1-5 targets",
        baseline=scan(0, non_target("NT1")),
        message="PERCIST 1.0: at least 1 target lesion",
    ),
]


@pytest.mark.parametrize("case", BASELINE_CASES, ids=[c.name for c in BASELINE_CASES])
def test_a_baseline_that_violates_percist_is_rejected(case: BaselineCase) -> None:
    with pytest.raises(InvalidInputError) as raised:
        percist(case.baseline, scan(56, hot("T1", "5.0")))
    assert any(case.message in error.message for error in raised.value.errors)


def test_a_hottest_target_exactly_at_the_threshold_is_measurable() -> None:
    # [P] "1.5 x mean liver SUL + 2 SD" is a minimum: 3.50 itself qualifies (§0 "≥").
    result, _ = only_follow_up(scan(0, hot("T1", "3.50")), scan(56, hot("T1", "3.4")))
    assert result.overall_response is SMD


# Best overall response (§6 with CMR/PMR/SMD/PMD).

# Follow-up SULpeaks for a baseline of 6.1: each value gives the named response.
VALUE = {CMR: "1.5", PMR: "3.0", SMD: "5.0", PMD: "8.5"}


@dataclass(frozen=True, kw_only=True)
class BestCase:
    name: str
    source: str
    responses: list[tuple[int, Response]]  # (day, response of the hottest value)
    best: Response
    best_day: int | None
    confirmation: bool = False
    confirmed: bool | None = None


BEST_CASES = [
    BestCase(
        name="cmr_without_confirmation",
        source="[spec] §6.3 rule 1",
        responses=[(56, SMD), (112, CMR)],
        best=CMR,
        best_day=112,
    ),
    BestCase(
        name="cmr_confirmed_28_days_later",
        source="[spec] §6.3 confirmation, D17",
        responses=[(56, CMR), (84, CMR)],
        confirmation=True,
        best=CMR,
        best_day=56,
        confirmed=True,
    ),
    BestCase(
        name="unconfirmed_cmr_falls_back_to_smd",
        source="[spec] §6.3 rule 3: CR/PR/SD after day 42 counts as SD",
        responses=[(56, CMR)],
        confirmation=True,
        best=SMD,
        best_day=56,
        confirmed=False,
    ),
    BestCase(
        name="cmr_then_pmr_is_not_a_confirmed_response",
        source="[spec] §6.3 'CR then PR is not a confirmed response', D17",
        responses=[(56, CMR), (84, PMR)],
        confirmation=True,
        best=SMD,
        best_day=56,
        confirmed=False,
    ),
    BestCase(
        name="pmr_confirmed_by_a_later_pmr",
        source="[spec] §6.3 confirmation",
        responses=[(56, PMR), (84, PMR)],
        confirmation=True,
        best=PMR,
        best_day=56,
        confirmed=True,
    ),
    BestCase(
        name="pmr_before_progression",
        source="[spec] §6.2 timepoints before the progression date",
        responses=[(56, PMR), (112, PMD), (168, CMR)],
        best=PMR,
        best_day=56,
    ),
    BestCase(
        name="smd_on_day_42_counts",
        source="[spec] §6.3 rule 3, day 42 itself qualifies",
        responses=[(42, SMD)],
        best=SMD,
        best_day=42,
    ),
    BestCase(
        name="smd_too_early_then_pmd_is_pmd",
        source="[spec] §6.3 rule 5",
        responses=[(28, SMD), (84, PMD)],
        best=PMD,
        best_day=84,
    ),
    BestCase(
        name="smd_too_early_and_nothing_else_is_ne",
        source="[spec] §6.3 rule 7",
        responses=[(28, SMD)],
        best=NE,
        best_day=None,
    ),
]


@pytest.mark.parametrize("case", BEST_CASES, ids=[c.name for c in BEST_CASES])
def test_best_overall_response_ranks_cmr_pmr_smd_pmd(case: BestCase) -> None:
    result = percist(
        scan(0, hot("T1", "6.1")),
        *(scan(when, hot("T1", VALUE[response])) for when, response in case.responses),
        confirmation=case.confirmation,
    )
    assert [t.overall_response for t in result.timepoints] == [r for _, r in case.responses]
    best = result.best_overall_response
    assert best.response is case.best
    assert best.date == (None if case.best_day is None else day(case.best_day))
    assert best.confirmed is case.confirmed


def test_the_progression_date_is_the_first_pmd() -> None:
    result = percist(
        scan(0, hot("T1", "6.1")), scan(56, hot("T1", "8.5")), scan(112, hot("T1", "9.0"))
    )
    assert result.progression_date == day(56)
    assert result.criteria is Criteria.PERCIST_1_0
    assert result.baseline_date == dt.date(2025, 1, 6)
