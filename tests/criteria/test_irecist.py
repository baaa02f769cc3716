"""iRECIST timepoint responses, new-lesion targets, progression date and best response.

Sources cited per row: iRECIST (Seymour 2017, Lancet Oncol 18:e143) Table 2; the EORTC iRECIST FAQ
(recist.eortc.org/irecist: "how do new lesions define progression", "iUPD driven by non-target
disease", the PR-after-new-lesion scenarios B, D and F); ``criteria.md`` §3 rule letters a-e and
decisions D12, D15, D18, D19; the admiralonco iRECIST vignette for the progression date.

Unless a row says otherwise the baseline is one liver target T1 of 50 mm and one bone non-target
NT1, and follow-ups are 42 days apart (2025-02-12, 2025-03-26, 2025-05-07, ...).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from fhirnet.criteria import (
    Assessment,
    AssessmentRequest,
    Criteria,
    Modality,
    NewLesion,
    NonTargetLesion,
    NonTargetStatus,
    Options,
    Response,
    TargetLesion,
    TimePoint,
    TimePointRole,
    assess,
)

BASELINE = dt.date(2025, 1, 1)
INTERVAL_DAYS = 42

PRESENT = NonTargetStatus.PRESENT
ABSENT = NonTargetStatus.ABSENT
PROGRESSION = NonTargetStatus.PROGRESSION
INCREASED = NonTargetStatus.INCREASED
NOT_EVALUATED = NonTargetStatus.NOT_EVALUATED

ICR, IPR, ISD = Response.ICR, Response.IPR, Response.ISD
IUPD, ICPD, NE = Response.IUPD, Response.ICPD, Response.NE
NON_ICR = Response.NON_ICR_NON_IUPD


def follow_up_date(n: int) -> dt.date:
    """The date of the ``n``-th follow-up (1-based)."""
    return BASELINE + dt.timedelta(days=INTERVAL_DAYS * n)


def baseline(t1: str | None = "50", *, date: dt.date = BASELINE) -> TimePoint:
    """T1 (liver) and NT1 (bone) on CT; ``t1=None`` gives a non-target-only baseline."""
    targets = () if t1 is None else (TargetLesion(id="T1", site="liver", diameter_mm=Decimal(t1)),)
    return TimePoint(
        date=date,
        modalities=(Modality.CT,),
        targets=targets,
        non_targets=(NonTargetLesion(id="NT1", site="bone", status=PRESENT),),
    )


def new(
    lesion_id: str,
    size: str | None = None,
    *,
    site: str = "lung",
    nodal: bool = False,
    equivocal: bool = False,
    modality: Modality = Modality.CT,
) -> NewLesion:
    """A new lesion; ``size`` is its diameter in mm (short axis for a node)."""
    return NewLesion(
        id=lesion_id,
        site=site,
        nodal=nodal,
        equivocal=equivocal,
        modality=modality,
        diameter_mm=None if size is None else Decimal(size),
    )


def exam(t1: str | None, *new_lesions: NewLesion, nt: NonTargetStatus = PRESENT) -> TimePoint:
    """A follow-up on CT: T1 measures ``t1`` mm (``None``: not evaluable); dated by :func:`run`."""
    return TimePoint(
        date=BASELINE,
        modalities=(Modality.CT,),
        targets=(
            TargetLesion(id="T1", site="liver", diameter_mm=None if t1 is None else Decimal(t1)),
        ),
        non_targets=(NonTargetLesion(id="NT1", site="bone", status=nt),),
        new_lesions=new_lesions,
    )


def run(
    *exams: TimePoint,
    start: TimePoint | None = None,
    extra: tuple[TimePoint, ...] = (),
    options: Options | None = None,
) -> Assessment:
    """Assess ``exams`` as follow-ups 42 days apart after ``start`` (default :func:`baseline`)."""
    start = start or baseline()
    follow_ups = tuple(
        replace(tp, date=follow_up_date(n), targets=tp.targets if start.targets else ())
        for n, tp in enumerate(exams, start=1)
    )
    return assess(
        AssessmentRequest(
            criteria=Criteria.IRECIST,
            timepoints=(start, *follow_ups, *extra),
            options=options or Options(),
        )
    )


def responses(assessment: Assessment) -> list[Response]:
    return [tp.overall_response for tp in assessment.timepoints]


def new_lesion_sums(assessment: Assessment) -> list[Decimal | None]:
    return [tp.irecist.new_lesion_sum_mm if tp.irecist else None for tp in assessment.timepoints]


STATE_MACHINE = [
    # (id, follow-ups, expected overall responses)
    # target-driven iUPD: criteria.md §3.2 rule c; iRECIST Table 2 row "target iUPD"
    ("target_iupd_confirmed_by_6mm_further_increase", [exam("60"), exam("66")], [IUPD, ICPD]),
    ("target_iupd_confirmed_by_exactly_5_0mm_more", [exam("60"), exam("65.0")], [IUPD, ICPD]),
    ("target_iupd_not_confirmed_by_4_9mm_more", [exam("60"), exam("64.9")], [IUPD, IUPD]),
    # EORTC FAQ "how do new lesions define progression": increases are additive, +4 then +2.
    ("increases_add_up_4mm_then_2mm", [exam("60"), exam("64"), exam("66")], [IUPD, IUPD, ICPD]),
    # iRECIST Table 2 rows 1-4 after iUPD; criteria.md §3.2 reset.
    ("target_iupd_then_shrinkage_resets_to_isd", [exam("60"), exam("45")], [IUPD, ISD]),
    # EORTC FAQ scenario D: target iUPD, then shrinkage meets iPR.
    ("scenario_d_target_iupd_then_ipr", [exam("35"), exam("45"), exam("30")], [IPR, IUPD, IPR]),
    # non-target-driven iUPD: rule b (D18); EORTC FAQ "iUPD driven by non-target disease"
    # v2 (D18): an unchanged unequivocal progression does not confirm; v1 expected iCPD here.
    (
        "non_target_iupd_unchanged_progression_stays_iupd",
        [exam("50", nt=PROGRESSION), exam("50", nt=PROGRESSION)],
        [IUPD, IUPD],
    ),
    # v2 (D18): "increased" (the FAQ's INCLA) is the further increase that confirms.
    (
        "non_target_iupd_confirmed_by_increased",
        [exam("50", nt=PROGRESSION), exam("50", nt=INCREASED)],
        [IUPD, ICPD],
    ),
    (
        "unchanged_progression_then_increased_confirms",
        [exam("50", nt=PROGRESSION), exam("50", nt=PROGRESSION), exam("50", nt=INCREASED)],
        [IUPD, IUPD, ICPD],
    ),
    # After a target-driven iUPD, "increased" counts like "present" (§2.2): no new category.
    (
        "increased_after_target_iupd_does_not_confirm",
        [exam("60"), exam("60", nt=INCREASED)],
        [IUPD, IUPD],
    ),
    (
        "increased_after_target_iupd_lets_it_reset",
        [exam("60"), exam("45", nt=INCREASED)],
        [IUPD, ISD],
    ),
    ("increased_without_an_episode_is_like_present", [exam("50", nt=INCREASED)], [ISD]),
    # v2 (D27): a trigger that cannot be assessed is NE, not a reset (v1 gave iSD in both).
    (
        "nlt_listed_without_diameter_is_ne",
        [exam("50", new("N1", "12")), exam("40", new("N1"))],
        [IUPD, NE],
    ),
    (
        "non_target_trigger_not_evaluated_is_ne",
        [exam("50", nt=PROGRESSION), exam("50", nt=NOT_EVALUATED)],
        [IUPD, NE],
    ),
    (
        "non_target_trigger_missing_is_ne",
        [exam("50", nt=PROGRESSION), replace(exam("50"), non_targets=())],
        [IUPD, NE],
    ),
    (
        "unassessed_non_target_trigger_then_increased_confirms",
        [exam("50", nt=PROGRESSION), exam("50", nt=NOT_EVALUATED), exam("50", nt=INCREASED)],
        [IUPD, NE, ICPD],
    ),
    # v2 (§2.1 rule 6 with i codes, D16): 35.5 mm is +18.3 % over the nadir 30 and 29 % below
    # baseline: iSD by the numbers, a continuing iPR.
    ("continuing_ipr", [exam("30"), exam("35.5")], [IPR, IPR]),
    (
        "continuing_ipr_survives_a_non_target_iupd",
        [exam("30"), exam("35.5", nt=PROGRESSION), exam("35.5")],
        [IPR, IUPD, IPR],
    ),
    (
        "continuing_ipr_survives_a_new_lesion_iupd",
        [exam("30"), exam("35.5", new("N1")), exam("35.5")],
        [IPR, IUPD, IPR],
    ),
    # 36 mm is +20 % and +6 mm over the nadir 30: target iUPD ends the run; 35.5 is then iSD.
    (
        "target_iupd_ends_the_continuing_ipr",
        [exam("30"), exam("36"), exam("35.5")],
        [IPR, IUPD, ISD],
    ),
    (
        "non_target_iupd_resets_when_the_non_target_is_only_present",
        [exam("50", nt=PROGRESSION), exam("50")],
        [IUPD, ISD],
    ),
    (
        "target_iupd_confirmed_by_non_target_progression",
        [exam("60"), exam("60", nt=PROGRESSION)],
        [IUPD, ICPD],
    ),
    # Rule d: progression in a category that did not trigger the iUPD (iRECIST Table 2).
    (
        "non_target_iupd_confirmed_by_targets_now_progressing",
        [exam("50", nt=PROGRESSION), exam("60")],
        [IUPD, ICPD],
    ),
    # new-lesion iUPD: rules a and e; EORTC FAQ "how do new lesions define progression"
    (
        "new_lesion_iupd_confirmed_by_a_brand_new_lesion",
        [exam("50", new("N1")), exam("50", new("N1"), new("N2"))],
        [IUPD, ICPD],
    ),
    (
        "new_lesion_iupd_confirmed_by_nlt_sum_5mm_more",
        [exam("50", new("N1", "12")), exam("50", new("N1", "17"))],
        [IUPD, ICPD],
    ),
    (
        "new_lesion_iupd_not_confirmed_by_nlt_sum_4_9mm_more",
        [exam("50", new("N1", "12")), exam("50", new("N1", "16.9"))],
        [IUPD, IUPD],
    ),
    (
        "growing_new_lesion_non_target_confirms",
        [exam("50", new("N1", "8")), exam("50", new("N1", "8.1"))],
        [IUPD, ICPD],
    ),
    (
        "unchanged_new_lesion_non_target_stays_iupd",
        [exam("50", new("N1", "8")), exam("50", new("N1", "8"))],
        [IUPD, IUPD],
    ),
    (
        "new_lesion_iupd_confirmed_by_targets_progressing",
        [exam("50", new("N1")), exam("60", new("N1"))],
        [IUPD, ICPD],
    ),
    # EORTC FAQ scenario B: targets shrink below their iUPD sum -> iPR although N1 is listed.
    (
        "scenario_b_new_lesion_iupd_then_ipr",
        [exam("40", new("N1")), exam("30", new("N1"))],
        [IUPD, IPR],
    ),
    # EORTC FAQ scenario F: iPR, then a new lesion, then no change -> still iUPD.
    (
        "scenario_f_ipr_new_lesion_then_no_change",
        [exam("30"), exam("30", new("N1")), exam("30", new("N1"))],
        [IPR, IUPD, IUPD],
    ),
    (
        "new_lesion_iupd_resets_when_the_lesion_is_gone",
        [exam("50", new("N1")), exam("50")],
        [IUPD, ISD],
    ),
    # After a reset, NLT sum >= 1.2 x NLT nadir and >= nadir + 5 mm is a new iUPD (EORTC FAQ).
    (
        "nlt_regrowth_after_reset_is_a_new_iupd",
        [exam("40", new("N1", "12")), exam("30", new("N1", "12")), exam("30", new("N1", "18"))],
        [IUPD, IPR, IUPD],
    ),
    (
        "nlt_growth_under_5mm_after_reset_is_no_iupd",
        [exam("40", new("N1", "12")), exam("30", new("N1", "12")), exam("30", new("N1", "16"))],
        [IUPD, IPR, IPR],
    ),
    # NE, finality, iCR, reappearance
    (
        "ne_while_the_episode_is_open_then_icpd",
        [exam("60"), exam(None), exam("66")],
        [IUPD, NE, ICPD],
    ),
    (
        "brand_new_lesion_confirms_even_with_targets_ne",
        [exam("60"), exam(None, new("N1"))],
        [IUPD, ICPD],
    ),
    (
        "icpd_is_final_even_after_shrinkage",
        [exam("60"), exam("66"), exam("20")],
        [IUPD, ICPD, ICPD],
    ),
    # criteria.md §3.2: already-counted new lesions still listed turn iCR into iPR.
    (
        "icr_becomes_ipr_while_a_counted_new_lesion_is_listed",
        [exam("40", new("N1")), exam("0", new("N1"), nt=ABSENT)],
        [IUPD, IPR],
    ),
    (
        "icr_once_the_counted_new_lesion_is_gone",
        [exam("40", new("N1")), exam("0", nt=ABSENT)],
        [IUPD, ICR],
    ),
    # criteria.md §2.4 and D15: reappearance after an overall iCR is progression.
    (
        "target_reappearing_after_icr_is_iupd",
        [exam("0", nt=ABSENT), exam("3", nt=ABSENT)],
        [ICR, IUPD],
    ),
    (
        "non_target_reappearing_after_icr_is_iupd",
        [exam("0", nt=ABSENT), exam("0", nt=PRESENT)],
        [ICR, IUPD],
    ),
    # criteria.md D12: an equivocal lesion counts from when it is unequivocal.
    (
        "equivocal_new_lesion_counts_only_once_unequivocal",
        [exam("50", new("N1", equivocal=True)), exam("50", new("N1"))],
        [ISD, IUPD],
    ),
]


@pytest.mark.parametrize(
    ("follow_ups", "expected"),
    [row[1:] for row in STATE_MACHINE],
    ids=[row[0] for row in STATE_MACHINE],
)
def test_overall_response_follows_the_irecist_state_machine(
    follow_ups: list[TimePoint], expected: list[Response]
) -> None:
    assert responses(run(*follow_ups)) == expected


NON_TARGET_ONLY = [
    # criteria.md §3.2: without targets, counted new lesions still listed make NON-iCR/NON-iUPD.
    (
        "counted_new_lesion_listed_again_turns_icr_into_non_icr_non_iupd",
        [
            exam(None, new("N1"), nt=PRESENT),
            exam(None, nt=ABSENT),
            exam(None, new("N1"), nt=ABSENT),
        ],
        [IUPD, ICR, NON_ICR],
    ),
    # No targets to shrink: the new lesion holds the iUPD while it is listed (scenario F).
    (
        "new_lesion_holds_the_iupd_without_targets",
        [exam(None, new("N1")), exam(None, new("N1"))],
        [IUPD, IUPD],
    ),
    # Non-targets not evaluated and no targets: NE, and the episode stays open for the iCPD.
    (
        "non_target_ne_keeps_the_episode_open",
        [
            exam(None, new("N1")),
            exam(None, nt=NonTargetStatus.NOT_EVALUATED),
            exam(None, nt=PROGRESSION),
        ],
        [IUPD, NE, ICPD],
    ),
]


@pytest.mark.parametrize(
    ("follow_ups", "expected"),
    [row[1:] for row in NON_TARGET_ONLY],
    ids=[row[0] for row in NON_TARGET_ONLY],
)
def test_non_target_only_disease_uses_non_icr_non_iupd(
    follow_ups: list[TimePoint], expected: list[Response]
) -> None:
    assert responses(run(*follow_ups, start=baseline(None))) == expected


def test_target_and_non_target_categories_use_i_codes() -> None:
    # iRECIST Table 1: RECIST 1.1 categories with the i prefix.
    result = run(exam("60"), exam("30", nt=ABSENT), exam("0", nt=ABSENT))
    categories = [(tp.target_response, tp.non_target_response) for tp in result.timepoints]
    assert categories == [
        (IUPD, NON_ICR),
        (IPR, ICR),
        (ICR, ICR),
    ]


def two_targets(date: dt.date, t1: str, t2: str | None) -> TimePoint:
    """T1 (liver) and T2 (lung) only; ``t2=None``: T2 not evaluable."""
    return TimePoint(
        date=date,
        targets=(
            TargetLesion(id="T1", site="liver", diameter_mm=Decimal(t1)),
            TargetLesion(id="T2", site="lung", diameter_mm=None if t2 is None else Decimal(t2)),
        ),
    )


def test_target_ne_at_the_iupd_leaves_no_reference_for_the_5mm_rule() -> None:
    # criteria.md §3.2 rule c: "skipped when the reference sum is null because a target was NE at
    # the iUPD". Baseline 30 + 20 mm; T2 NE, but T1 alone (70 mm) proves iUPD (RECIST §4.4.2).
    timepoints = (
        two_targets(BASELINE, "30", "20"),
        two_targets(follow_up_date(1), "70", None),
        two_targets(follow_up_date(2), "80", "20"),
    )
    result = assess(AssessmentRequest(criteria=Criteria.IRECIST, timepoints=timepoints))
    assert responses(result) == [IUPD, IUPD]
    assert [tp.sum_mm for tp in result.timepoints] == [None, Decimal("100.0")]


def test_confirmation_of_names_the_iupd_on_every_icpd_and_only_there() -> None:
    # criteria.md §3.2: confirmationOf = the episode's iUPD date; iCPD is final (D18).
    result = run(exam("60"), exam(None), exam("66"), exam("20"))
    assert [tp.irecist.confirmation_of if tp.irecist else None for tp in result.timepoints] == [
        None,
        None,
        follow_up_date(1),
        follow_up_date(1),
    ]


def test_icpd_reason_gives_the_numbers_a_reader_can_check() -> None:
    icpd = run(exam("60"), exam("66")).timepoints[1]
    assert (
        "target sum 66.0 mm is 6.0 mm above the 60.0 mm at iUPD on 2025-02-12: iCPD "
        "(>= 5 mm further increase, iRECIST Table 2)"
    ) in icpd.reasons


@pytest.mark.parametrize(
    ("follow_ups", "expected"),
    [
        ([exam("50")], [None]),  # no new lesion: no NLT
        ([exam("50", new("N1", "8"))], [None]),  # an NLNT only: still no NLT
        # NLT listed, then not listed (0), then listed without a diameter (unknown)
        (
            [exam("50", new("N1", "12")), exam("50"), exam("50", new("N1"))],
            [Decimal("12.0"), Decimal("0.0"), None],
        ),
        # membership never changes: an 8 mm NLNT that grows to 20 mm does not become an NLT
        ([exam("50", new("N1", "8")), exam("50", new("N1", "20"))], [None, None]),
        # NLT sums are never added to the target sum
        ([exam("50", new("N1", "12"), new("N2", "13", site="bone"))], [Decimal("25.0")]),
    ],
    ids=[
        "null_without_new_lesions",
        "null_with_only_new_lesion_non_targets",
        "zero_when_not_listed_null_when_listed_without_diameter",
        "an_nlnt_never_becomes_an_nlt",
        "sum_of_two_nlts",
    ],
)
def test_new_lesion_sum_is_null_until_an_nlt_exists_and_zero_when_unlisted(
    follow_ups: list[TimePoint], expected: list[Decimal | None]
) -> None:
    # criteria.md §3.1: "an NLT not listed counts 0; one listed with null -> the sum is null".
    result = run(*follow_ups)
    assert new_lesion_sums(result) == expected
    assert all(tp.sum_mm == Decimal("50.0") for tp in result.timepoints)


SIX_ORGANS = ("lung", "bone", "brain", "spleen", "adrenal", "skin")


@pytest.mark.parametrize(
    ("new_lesions", "expected_sum"),
    [
        ([new(f"N{i}", "10", site=site) for i, site in enumerate(SIX_ORGANS, 1)], Decimal("50.0")),
        (
            [
                new("N1", "11", site="liver"),
                new("N2", "12", site="Liver"),
                new("N3", "13", site="liver"),
            ],
            Decimal("23.0"),
        ),
        (
            [
                new("N1", "15", site="mediastinum", nodal=True),
                new("N2", "20", site="axilla", nodal=True),
                new("N3", "16", site="neck", nodal=True),
            ],
            Decimal("35.0"),
        ),
        ([new("N1", "9.9")], None),
        ([new("N1", "10.0")], Decimal("10.0")),
        ([new("N1", "14.9", nodal=True)], None),
        ([new("N1", "15.0", nodal=True)], Decimal("15.0")),
    ],
    ids=[
        "at_most_5_nlts",
        "at_most_2_nlts_per_organ_sites_compared_case_insensitively",
        "all_nodes_are_one_organ",
        "non_nodal_9_9mm_is_not_measurable",
        "non_nodal_10mm_is_measurable",
        "node_14_9mm_short_axis_is_not_measurable",
        "node_15mm_short_axis_is_measurable",
    ],
)
def test_new_lesion_targets_are_measurable_at_most_5_and_2_per_organ(
    new_lesions: list[NewLesion], expected_sum: Decimal | None
) -> None:
    # criteria.md §3.1 (iRECIST "new lesions"; RECIST 1.1 §3.1.1 measurability; D21 nodes).
    assert new_lesion_sums(run(exam("50", *new_lesions))) == [expected_sum]


def test_new_lesion_targets_are_chosen_in_order_of_first_appearance() -> None:
    # criteria.md §3.1: E (liver) was listed first, equivocal; when it counts with L1 and L2 in
    # the same organ it is chosen before them, although listed last: NLTs E + L1 = 30 + 20.
    result = run(
        exam("50", new("E", "30", site="liver", equivocal=True)),
        exam(
            "50",
            new("L1", "20", site="liver"),
            new("L2", "20", site="liver"),
            new("E", "30", site="liver"),
        ),
    )
    assert new_lesion_sums(result) == [None, Decimal("50.0")]


PROGRESSION_AND_BOR = [
    # (id, follow-ups, progression date (follow-up number), BOR, BOR date (follow-up number))
    # admiralonco iRECIST vignette: iUPD, iUPD, iCPD -> the first iUPD (criteria.md §6.1, D19).
    ("iupd_iupd_icpd_dates_from_the_first_iupd", [exam("60"), exam("62"), exam("66")], 1, ICPD, 1),
    # admiralonco: ..., iUPD, iPR, iUPD, iCPD -> the second iUPD; BOR iPR (§6.3 rank 2).
    (
        "iupd_ipr_iupd_icpd_dates_from_the_second_iupd",
        [exam("60"), exam("30"), exam("40"), exam("45")],
        3,
        IPR,
        2,
    ),
    # §6.3 rank 6: an iUPD never confirmed is the BOR, and no progression date (D19).
    (
        "unconfirmed_iupd_only_is_bor_iupd_without_progression",
        [exam("60"), exam("62")],
        None,
        IUPD,
        1,
    ),
    # §6.3 rank 3: iSD at day 42 (sdMinDays) beats the later iCPD.
    ("isd_at_day_42_then_icpd_is_bor_isd", [exam("50"), exam("60"), exam("66")], 2, ISD, 1),
    # §6.3: a reset iUPD followed by iSD
    ("reset_iupd_then_isd_is_bor_isd", [exam("60"), exam("45")], None, ISD, 2),
]


@pytest.mark.parametrize(
    ("follow_ups", "progression", "bor", "bor_date"),
    [row[1:] for row in PROGRESSION_AND_BOR],
    ids=[row[0] for row in PROGRESSION_AND_BOR],
)
def test_progression_date_is_the_iupd_confirmed_by_the_first_icpd(
    follow_ups: list[TimePoint], progression: int | None, bor: Response, bor_date: int
) -> None:
    result = run(*follow_ups)
    assert result.progression_date == (None if progression is None else follow_up_date(progression))
    assert result.best_overall_response.response is bor
    assert result.best_overall_response.date == follow_up_date(bor_date)


@pytest.mark.parametrize(
    ("follow_ups", "bor", "confirmed"),
    [
        ([exam("30"), exam("33")], IPR, True),  # iPR confirmed 42 days later (>= 28)
        ([exam("30"), exam(None)], ISD, False),  # never confirmed: iSD, as iPR is at day 42
    ],
    ids=["ipr_confirmed_by_a_later_ipr", "unconfirmed_ipr_counts_as_isd"],
)
def test_confirmation_required_applies_to_irecist_responses(
    follow_ups: list[TimePoint], bor: Response, confirmed: bool
) -> None:
    # criteria.md §6.3 confirmation (D17, D23) with iRECIST codes (iRECIST Table 3).
    result = run(*follow_ups, options=Options(confirmation_required=True))
    assert result.best_overall_response.response is bor
    assert result.best_overall_response.confirmed is confirmed


def test_best_overall_response_is_ne_without_follow_up() -> None:
    result = run()
    assert result.timepoints == ()
    assert result.best_overall_response.response is NE
    assert result.progression_date is None


def test_equivocal_new_lesion_is_not_backdated() -> None:
    # criteria.md §3 and D12: iRECIST counts N1 from follow-up 2 and never backdates to 1.
    result = run(
        exam("50", new("N1", equivocal=True)),
        exam("50", new("N1")),
        exam("50", new("N1"), new("N2")),
    )
    assert responses(result) == [ISD, IUPD, ICPD]
    assert result.progression_date == follow_up_date(2)
    assert [tp.new_lesions for tp in result.timepoints] == [False, True, True]


def test_new_lesion_on_a_new_modality_is_a_new_baseline_with_a_warning() -> None:
    # criteria.md §2.3 (D11), shared by iRECIST: MRI was never used before, so N1 does not count.
    result = run(exam("50", new("N1", "20", modality=Modality.MRI)))
    assert responses(result) == [ISD]
    assert new_lesion_sums(result) == [None]
    assert [w.split(":")[0] for w in result.warnings] == ["new-modality-lesion"]


@pytest.mark.parametrize(
    ("pre_baseline_mm", "first_follow_up", "hyperprogression"),
    [
        ("40", exam("80"), True),  # iUPD at the first follow-up; TGR 40.3 -> 177.7 %/month
        ("49", exam("59"), False),  # iSD: ratio about 14, but no progression
    ],
    ids=[
        "first_follow_up_iupd_with_tgr_ratio_over_2",
        "first_follow_up_isd_is_never_hyperprogression",
    ],
)
def test_hyperprogression_needs_iupd_at_the_first_follow_up_and_a_doubled_tgr(
    pre_baseline_mm: str, first_follow_up: TimePoint, hyperprogression: bool
) -> None:
    # criteria.md §7 (Champiat 2017; D20): growth counts iUPD as progression; baseline 50 mm.
    pre = replace(
        baseline(pre_baseline_mm, date=BASELINE - dt.timedelta(days=61)),
        role=TimePointRole.PRE_BASELINE,
    )
    result = run(first_follow_up, extra=(pre,))
    growth = result.tumor_growth_rate
    assert growth is not None
    assert growth.ratio is not None
    assert growth.ratio >= 2
    assert growth.hyperprogression is hyperprogression


@pytest.mark.parametrize(
    ("follow_ups", "expected"),
    [
        (
            [exam("60"), exam("64")],
            "target lesions still meet iUPD; their sum 64.0 mm is 4.0 mm above the 60.0 mm at "
            "iUPD on 2025-02-12, short of the 5 mm further increase that confirms",
        ),
        (
            [exam("40", new("N1")), exam("30", new("N1"))],
            "new lesion(s) N1 are still listed, but the target sum 30.0 mm is below the 40.0 mm "
            "at iUPD (EORTC iRECIST FAQ scenario B)",
        ),
        (
            [exam("50", new("N1", "12")), exam("50", new("N1", "17"))],
            "new-lesion target sum 17.0 mm is 5.0 mm above the 12.0 mm at iUPD on 2025-02-12: "
            "iCPD (>= 5 mm increase of new-lesion targets, iRECIST Table 2)",
        ),
    ],
    ids=["still_iupd_short_of_5mm", "reset_by_shrinking_targets", "icpd_by_nlt_sum"],
)
def test_reasons_state_the_rule_and_its_numbers(follow_ups: list[TimePoint], expected: str) -> None:
    assert any(expected in reason for reason in run(*follow_ups).timepoints[-1].reasons)


def test_every_timepoint_has_reasons_and_irecist_figures() -> None:
    result = run(exam("60"), exam(None), exam("66"), exam("66", new("N1", "12")))
    assert all(tp.reasons and tp.irecist is not None for tp in result.timepoints)
    assert result.criteria is Criteria.IRECIST


def test_increased_non_targets_are_iupd_only_inside_a_non_target_episode() -> None:
    # criteria.md §2.2 (v2): "increased" counts like "present", except inside an iRECIST episode
    # whose non-target category was iUPD at its iUPD, where it is non-target iUPD (D18).
    non_target_led = run(exam("50", nt=PROGRESSION), exam("50", nt=INCREASED))
    target_led = run(exam("60"), exam("60", nt=INCREASED))
    assert [tp.non_target_response for tp in non_target_led.timepoints] == [IUPD, IUPD]
    assert [tp.non_target_response for tp in target_led.timepoints] == [NON_ICR, NON_ICR]
    assert (
        "non-target lesion(s) NT1 increased further after the non-target iUPD on 2025-02-12: iCPD"
    ) in " ".join(non_target_led.timepoints[1].reasons)


def test_continuing_ipr_keeps_the_target_category_through_other_iupds() -> None:
    # criteria.md §3.2 (v2): "an iUPD triggered only by non-targets or new lesions does not" end
    # a continuing iPR; the target category stays iPR.
    result = run(exam("30"), exam("35.5", nt=PROGRESSION), exam("35.5"))
    assert [tp.target_response for tp in result.timepoints] == [IPR, IPR, IPR]
    assert any("a continuing PR" in reason for reason in result.timepoints[1].reasons)


def run_on(*dated: tuple[int, TimePoint], options: Options | None = None) -> Assessment:
    """Assess follow-ups dated ``n`` days after the baseline (:func:`baseline`)."""
    follow_ups = tuple(replace(tp, date=BASELINE + dt.timedelta(days=n)) for n, tp in dated)
    return assess(
        AssessmentRequest(
            criteria=Criteria.IRECIST,
            timepoints=(baseline(), *follow_ups),
            options=options or Options(),
        )
    )


def window_warnings(assessment: Assessment) -> list[str]:
    return [w for w in assessment.warnings if w.startswith("icpd-window: ")]


ICPD_WINDOW = [
    # (id, the iUPD exam on day 42, the next exam, its days after the iUPD, response, warned)
    # EORTC iRECIST FAQ "less than four weeks" (D26): fewer than 26 days cannot confirm ...
    ("25_days_6mm_more_cannot_confirm", exam("60"), exam("66"), 25, IUPD, True),
    ("26_days_6mm_more_confirms", exam("60"), exam("66"), 26, ICPD, False),
    # ... nor reset, even with targets NE ...
    ("25_days_shrinkage_cannot_reset", exam("60"), exam("45"), 25, IUPD, True),
    ("25_days_targets_ne_is_iupd_not_ne", exam("60"), exam(None), 25, IUPD, True),
    (
        "25_days_increased_cannot_confirm_a_non_target_iupd",
        exam("50", nt=PROGRESSION),
        exam("50", nt=INCREASED),
        25,
        IUPD,
        True,
    ),
    # ... except a brand-new lesion, without warning.
    ("25_days_brand_new_lesion_confirms", exam("60"), exam("60", new("N1")), 25, ICPD, False),
    # 8 weeks + 2 days: later confirmations stand, with a warning.
    ("58_days_confirmation_without_warning", exam("60"), exam("66"), 58, ICPD, False),
    ("59_days_confirmation_stands_with_warning", exam("60"), exam("66"), 59, ICPD, True),
]


@pytest.mark.parametrize(
    ("iupd", "next_exam", "days", "expected", "warned"),
    [row[1:] for row in ICPD_WINDOW],
    ids=[row[0] for row in ICPD_WINDOW],
)
def test_the_icpd_window_is_26_to_58_days_after_the_iupd(
    iupd: TimePoint, next_exam: TimePoint, days: int, expected: Response, warned: bool
) -> None:
    # criteria.md §3.2 (v2) "Window", D26.
    result = run_on((42, iupd), (42 + days, next_exam))
    assert responses(result) == [IUPD, expected]
    warnings = window_warnings(result)
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert f"{days} days after the iUPD on {follow_up_date(1)}" in warnings[0]


def test_an_early_scan_counts_in_the_nadir_and_a_later_one_confirms() -> None:
    # criteria.md §3.2 (v2): "An early scan still counts in the nadir like any follow-up (§0)".
    result = run_on((42, exam("60")), (62, exam("40")), (100, exam("66")))
    assert responses(result) == [IUPD, IUPD, ICPD]
    assert result.timepoints[2].nadir_sum_mm == Decimal("40.0")
    assert result.timepoints[2].irecist is not None
    assert result.timepoints[2].irecist.confirmation_of == follow_up_date(1)
    assert len(window_warnings(result)) == 1  # the early scan; day 100 is 58 days after the iUPD


@pytest.mark.parametrize(
    ("confirmation", "expected", "warned"),
    [(False, IUPD, False), (True, IPR, True)],
    ids=["definitive_icr_then_reappearance_is_iupd", "unconfirmed_icr_then_ordinary_rules"],
)
def test_reappearance_after_icr_needs_a_definitive_icr(
    confirmation: bool, expected: Response, warned: bool
) -> None:
    # criteria.md §2.4 (v2) applies to iRECIST (D15): after a single iCR with confirmation
    # required, T1 back at 3 mm is judged by the ordinary rules (3 mm over a nadir of 0: iPR).
    result = run(
        exam("0", nt=ABSENT),
        exam("3", nt=ABSENT),
        options=Options(confirmation_required=confirmation),
    )
    assert responses(result) == [ICR, expected]
    assert [w.split(":")[0] for w in result.warnings] == (["unconfirmed-cr"] if warned else [])
