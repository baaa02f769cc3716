"""Risk stratification of ``crf.md`` "What the service derives": WHO grade, embryologic origin,
Table 2 imaging and the PRRT screen.

"review" is ``shared/seeds/000_3abf9d9c5b9d5913.txt``: section I (risk stratification), Table 2
(imaging modalities per origin, syndrome and differentiation), section V (PRRT selection) and the
worked cases of its figure legends. "WHO 2019" is the grading as ``crf.md`` states it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhirnet.criteria import (
    Differentiation,
    EmbryologicOrigin,
    Modality,
    PrimarySite,
    PrrtEligibility,
    RiskFactors,
    Syndrome,
    WhoGrade,
    derive_embryologic_origin,
    derive_risk,
    derive_who_grade,
    recommend_imaging,
    screen_prrt,
)
from fhirnet.errors import InvalidInputError

WELL = Differentiation.WELL
POORLY = Differentiation.POORLY
G1, G2, G3_NET, G3_NEC = WhoGrade.G1, WhoGrade.G2, WhoGrade.G3_NET, WhoGrade.G3_NEC
CT, MRI = Modality.CT, Modality.MRI
SSTR_PET, SSTR_SPECT = Modality.SSTR_PET, Modality.SSTR_SPECT
FDG, DOPA = Modality.FDG_PET, Modality.DOPA_PET
ELIGIBLE = PrrtEligibility.ELIGIBLE
NOT_ELIGIBLE = PrrtEligibility.NOT_ELIGIBLE
UNDETERMINED = PrrtEligibility.UNDETERMINED

Number = int | str | None


def risk(
    *,
    site: PrimarySite | None = None,
    diff: Differentiation | None = WELL,
    ki67: Number = None,
    mitoses: Number = None,
    krenning: int | None = None,
    syndromes: tuple[Syndrome, ...] = (),
    fdg_avid: bool | None = None,
) -> RiskFactors:
    """A risk group; figures are written as strings so that ``"20.1"`` is exactly 20.1."""
    return RiskFactors(
        primary_site=site,
        differentiation=diff,
        ki67_pct=None if ki67 is None else Decimal(str(ki67)),
        mitoses_per_2mm2=None if mitoses is None else Decimal(str(mitoses)),
        krenning_score=krenning,
        syndromes=syndromes,
        fdg_avid=fdg_avid,
    )


# --- WHO grade ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ki67", "expected"),
    [
        (0, G1),  # WHO 2019: G1 Ki-67 < 3 %
        ("2.9", G1),  # WHO 2019: just below the G2 boundary
        (3, G2),  # WHO 2019: G2 3-20 %, 3 % included
        (8, G2),  # WHO 2019: G2; review Fig. 9 is a G2 pNET with Ki-67 5 %
        ("19.9", G2),  # WHO 2019: G2
        (20, G2),  # WHO 2019: G2 up to 20 % included
        ("20.1", G3_NET),  # WHO 2019: G3 > 20 %; well differentiated: G3 NET (section I)
        (25, G3_NET),  # review Fig. 7: "Grade 3 pNET (Ki-67 of 25%)"
        (100, G3_NET),  # WHO 2019: G3, the form's maximum
    ],
    ids=["0", "2.9", "3", "8", "19.9", "20", "20.1", "25", "100"],
)
def test_ki67_alone_grades_a_well_differentiated_net_with_exact_boundaries(
    ki67: Number, expected: WhoGrade
) -> None:
    assert derive_who_grade(risk(ki67=ki67)).grade is expected


@pytest.mark.parametrize(
    ("mitoses", "expected"),
    [
        (0, G1),  # WHO 2019: G1 < 2 mitoses per 2 mm²
        ("1.9", G1),  # WHO 2019: just below the G2 boundary (the form's count is a decimal)
        (2, G2),  # WHO 2019: G2 2-20, 2 included
        (20, G2),  # WHO 2019: G2 up to 20 included
        ("20.5", G3_NET),  # WHO 2019: G3 > 20
        (21, G3_NET),  # WHO 2019: G3 > 20
    ],
    ids=["0", "1.9", "2", "20", "20.5", "21"],
)
def test_mitotic_count_alone_grades_a_well_differentiated_net_with_exact_boundaries(
    mitoses: Number, expected: WhoGrade
) -> None:
    assert derive_who_grade(risk(mitoses=mitoses)).grade is expected


@pytest.mark.parametrize(
    ("ki67", "mitoses", "expected"),
    [
        ("2.9", "1.9", G1),  # WHO 2019: G1 needs Ki-67 < 3 % AND < 2 mitoses
        (1, 2, G2),  # mitoses raise a G1 Ki-67 to G2 (WHO 2019: the higher category)
        (3, 1, G2),  # Ki-67 raises a G1 count to G2
        (20, 20, G2),  # both at the upper G2 boundary
        (8, 25, G3_NET),  # mitoses raise a G2 Ki-67 to G3
        ("20.1", 1, G3_NET),  # Ki-67 raises a G1 count to G3
        (1, 21, G3_NET),  # G1 Ki-67, G3 count: G3
    ],
    ids=[
        "both-G1-is-G1",
        "G1-ki67-G2-mitoses-is-G2",
        "G2-ki67-G1-mitoses-is-G2",
        "both-at-20-is-G2",
        "G2-ki67-G3-mitoses-is-G3",
        "G3-ki67-G1-mitoses-is-G3",
        "G1-ki67-G3-mitoses-is-G3",
    ],
)
def test_the_higher_of_ki67_and_mitotic_category_sets_the_grade(
    ki67: Number, mitoses: Number, expected: WhoGrade
) -> None:
    """WHO 2019 (CodeSystem who-net-grade): the grade follows the higher of the two categories."""
    assert derive_who_grade(risk(ki67=ki67, mitoses=mitoses)).grade is expected


@pytest.mark.parametrize(
    ("ki67", "mitoses"),
    [(None, None), (5, None), (None, 1), (25, None), (80, 30)],
    ids=["no-figures", "ki67-5", "mitoses-1", "ki67-25", "ki67-80-mitoses-30"],
)
def test_poorly_differentiated_is_g3_nec_whatever_the_figures(
    ki67: Number, mitoses: Number
) -> None:
    """WHO 2019 / review section I: a NEC is poorly differentiated and high grade by definition."""
    assert derive_who_grade(risk(diff=POORLY, ki67=ki67, mitoses=mitoses)).grade is G3_NEC


def test_a_poorly_differentiated_tumour_with_low_ki67_asks_to_check_the_pathology() -> None:
    reasons = derive_who_grade(risk(diff=POORLY, ki67=5)).reasons
    assert "Ki-67 5 % is within 3-20 %: G2 (WHO 2019)" in reasons
    assert any("unusual" in r and "check the pathology" in r for r in reasons)


@pytest.mark.parametrize(
    ("diff", "ki67", "mitoses", "expected"),
    [
        (None, 1, None, G1),  # decision: G1/G2 neoplasms are well-differentiated NETs (WHO 2019)
        (None, 10, 3, G2),  # same decision for G2
        (None, 25, None, None),  # decision: G3 NET or G3 NEC? only differentiation tells
        (None, 5, 21, None),  # grade 3 by mitoses, differentiation unknown
        (None, None, None, None),  # nothing to grade
        (WELL, None, None, None),  # well differentiated, but G1, G2 or G3 NET?
    ],
    ids=[
        "no-differentiation-ki67-1-is-G1",
        "no-differentiation-ki67-10-is-G2",
        "no-differentiation-ki67-25-is-undetermined",
        "no-differentiation-mitoses-21-is-undetermined",
        "empty-form-is-undetermined",
        "well-differentiated-without-figures-is-undetermined",
    ],
)
def test_missing_data_grades_only_what_the_data_decides(
    diff: Differentiation | None, ki67: Number, mitoses: Number, expected: WhoGrade | None
) -> None:
    assert derive_who_grade(risk(diff=diff, ki67=ki67, mitoses=mitoses)).grade is expected


def test_grade_reasons_give_the_figures_and_the_rule() -> None:
    reasons = derive_who_grade(risk(ki67=8, mitoses=25)).reasons
    assert reasons == (
        "Ki-67 8 % is within 3-20 %: G2 (WHO 2019)",
        "mitotic count 25 per 2 mm² is above 20: G3 (WHO 2019)",
        "the higher of the two categories sets the grade: G3 (WHO 2019)",
        "well differentiated with grade-3 proliferation: G3 NET (WHO 2019)",
    )


def test_a_grade_from_ki67_alone_says_the_mitotic_count_is_missing() -> None:
    """Decision: grade from one figure (section I: "based on their Ki67 or mitotic index")."""
    reasons = derive_who_grade(risk(ki67=1)).reasons
    assert (
        "mitotic count not recorded: graded on the Ki-67 alone; the mitotic count could raise it, "
        "never lower it" in reasons
    )


def test_an_undetermined_g3_says_differentiation_is_needed() -> None:
    reasons = derive_who_grade(risk(diff=None, ki67=25)).reasons
    assert "Ki-67 25 % is above 20 %: G3 (WHO 2019)" in reasons
    assert any("differentiation not recorded" in r and "G3 NEC" in r for r in reasons)


def test_figures_appear_as_written_not_in_exponent_notation() -> None:
    factors = RiskFactors(differentiation=WELL, ki67_pct=Decimal("2E+1"))
    assert derive_who_grade(factors).reasons[0] == "Ki-67 20 % is within 3-20 %: G2 (WHO 2019)"


GRADE_ORDER = {G1: 1, G2: 2, G3_NET: 3, G3_NEC: 3, None: 3}  # None: grade 3 of unknown type
ki67_values = st.integers(0, 1000).map(lambda n: Decimal(n) / 10)
mitosis_values = st.integers(0, 100).map(lambda n: Decimal(n) / 2)
differentiations = st.sampled_from([WELL, POORLY, None])


@given(
    low=ki67_values,
    high=ki67_values,
    mitoses=st.none() | mitosis_values,
    diff=differentiations,
)
def test_raising_ki67_never_lowers_the_grade(
    low: Decimal, high: Decimal, mitoses: Decimal | None, diff: Differentiation | None
) -> None:
    """WHO 2019 categories are ordered and the higher category wins, so grading is monotone."""
    low, high = min(low, high), max(low, high)
    grades = [
        derive_who_grade(RiskFactors(differentiation=diff, ki67_pct=k, mitoses_per_2mm2=mitoses))
        for k in (low, high)
    ]
    # With a figure present, None only means "grade 3, differentiation unknown".
    assert GRADE_ORDER[grades[0].grade] <= GRADE_ORDER[grades[1].grade]


@given(low=mitosis_values, high=mitosis_values, ki67=st.none() | ki67_values, diff=differentiations)
def test_raising_the_mitotic_count_never_lowers_the_grade(
    low: Decimal, high: Decimal, ki67: Decimal | None, diff: Differentiation | None
) -> None:
    low, high = min(low, high), max(low, high)
    grades = [
        derive_who_grade(RiskFactors(differentiation=diff, ki67_pct=ki67, mitoses_per_2mm2=m))
        for m in (low, high)
    ]
    assert GRADE_ORDER[grades[0].grade] <= GRADE_ORDER[grades[1].grade]


# --- Embryologic origin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        # section I names foregut/midgut/hindgut; "usual embryology" rows follow the ConceptMap
        # primary-site-to-embryologic-origin, which the review does not spell out
        (PrimarySite.STOMACH, EmbryologicOrigin.FOREGUT),  # usual embryology
        (PrimarySite.DUODENUM, EmbryologicOrigin.FOREGUT),  # usual embryology
        (PrimarySite.PANCREAS, EmbryologicOrigin.FOREGUT),  # section I: "Foregut NETs (pancreas)"
        (PrimarySite.JEJUNUM_ILEUM, EmbryologicOrigin.MIDGUT),  # usual embryology; Fig. 5 ileal
        (PrimarySite.APPENDIX, EmbryologicOrigin.MIDGUT),  # usual embryology
        (PrimarySite.COLON_RIGHT, EmbryologicOrigin.MIDGUT),  # decision: right colon is midgut
        (PrimarySite.COLON_LEFT, EmbryologicOrigin.HINDGUT),  # decision: left colon is hindgut
        (PrimarySite.RECTUM, EmbryologicOrigin.HINDGUT),  # usual embryology
        (PrimarySite.COLON, None),  # decision: segment unknown, midgut or hindgut
        (PrimarySite.UNKNOWN, None),  # unknown primary: no origin
        (None, None),  # not answered
    ],
    ids=[
        "stomach",
        "duodenum",
        "pancreas",
        "jejunum-ileum",
        "appendix",
        "colon-right",
        "colon-left",
        "rectum",
        "colon-unspecified",
        "unknown-primary",
        "not-recorded",
    ],
)
def test_each_primary_site_gives_its_embryologic_origin(
    site: PrimarySite | None, expected: EmbryologicOrigin | None
) -> None:
    result = derive_embryologic_origin(risk(site=site))
    assert result.origin is expected
    assert len(result.reasons) == 1


def test_an_unspecified_colon_asks_for_the_segment() -> None:
    (reason,) = derive_embryologic_origin(risk(site=PrimarySite.COLON)).reasons
    assert "right colon is midgut" in reason
    assert "record right or left colon" in reason


def test_every_primary_site_has_a_tested_origin_rule() -> None:
    """Guards the table above: a new primary-site code needs a row."""
    assert {site.value for site in PrimarySite} == {
        "stomach",
        "duodenum",
        "pancreas",
        "jejunum-ileum",
        "appendix",
        "colon",
        "colon-right",
        "colon-left",
        "rectum",
        "unknown",
    }


# --- Imaging recommendation (Table 2) -------------------------------------------------------

FOREGUT_SITE = PrimarySite.PANCREAS
MIDGUT_SITE = PrimarySite.JEJUNUM_ILEUM
HINDGUT_SITE = PrimarySite.RECTUM
INSULINOMA = (Syndrome.INSULINOMA,)
GASTRINOMA = (Syndrome.GASTRINOMA,)
Row = tuple[RiskFactors, tuple[Modality, ...], tuple[Modality, ...], tuple[Modality, ...]]

IMAGING: dict[str, Row] = {
    # Table 2, foregut row: 1. 68Ga-DOTATOC PET or SSTR scintigraphy, 2. 18F-DOPA PET
    "foregut-G1": (risk(site=FOREGUT_SITE, ki67=1), (CT, MRI, SSTR_PET, SSTR_SPECT), (DOPA,), ()),
    # Table 2, midgut row: 1. 18F-DOPA PET, 2. SSTR; Fig. 5: G1 ileal NET staged with 18F-DOPA
    "midgut-G1": (risk(site=MIDGUT_SITE, ki67=1), (CT, MRI, DOPA), (SSTR_PET, SSTR_SPECT), ()),
    # Table 2, hindgut row: CT/MRI > NM, no tracer
    "hindgut-G1": (risk(site=HINDGUT_SITE, ki67=1), (CT, MRI), (), ()),
    # Fig. 4: G2 rectal NET, "Because of the Ki67 >10%, an 18F-FDG PET/CT was finally performed"
    "hindgut-G2-ki67-15": (risk(site=HINDGUT_SITE, ki67=15), (CT, MRI), (), (FDG,)),
    # section I (ref 31): FDG for Ki-67 >= 10 %; 9.9 % is below
    "foregut-ki67-9.9": (
        risk(site=FOREGUT_SITE, ki67="9.9"),
        (CT, MRI, SSTR_PET, SSTR_SPECT),
        (DOPA,),
        (),
    ),
    "foregut-ki67-10": (
        risk(site=FOREGUT_SITE, ki67=10),
        (CT, MRI, SSTR_PET, SSTR_SPECT),
        (DOPA,),
        (FDG,),
    ),
    "midgut-ki67-10": (
        risk(site=MIDGUT_SITE, ki67=10),
        (CT, MRI, DOPA),
        (SSTR_PET, SSTR_SPECT),
        (FDG,),
    ),
    # section I: FDG "highly informative for G3 NETs"; Fig. 7 G3 pNET with Ki-67 25 %
    "foregut-G3-NET-ki67-25": (
        risk(site=FOREGUT_SITE, ki67=25),
        (CT, MRI, SSTR_PET, SSTR_SPECT),
        (DOPA,),
        (FDG,),
    ),
    # G3 NET by mitoses, Ki-67 below 10 %: the G3 rule of section I still fires
    "midgut-G3-NET-by-mitoses": (
        risk(site=MIDGUT_SITE, ki67=5, mitoses=25),
        (CT, MRI, DOPA),
        (SSTR_PET, SSTR_SPECT),
        (FDG,),
    ),
    # Table 2, poorly differentiated row: 18F-FDG PET replaces the origin row
    "foregut-poorly": (risk(site=FOREGUT_SITE, diff=POORLY, ki67=60), (CT, MRI, FDG), (), ()),
    "midgut-poorly": (risk(site=MIDGUT_SITE, diff=POORLY), (CT, MRI, FDG), (), ()),
    # decision: the row says "(foregut and midgut)"; section I ties FDG to differentiation
    "hindgut-poorly": (risk(site=HINDGUT_SITE, diff=POORLY), (CT, MRI, FDG), (), ()),
    "unknown-primary-poorly": (risk(site=PrimarySite.UNKNOWN, diff=POORLY), (CT, MRI, FDG), (), ()),
    # Table 2, insulinoma row: 18F-DOPA PET; decision: ahead of the foregut row's SSTR imaging
    "foregut-insulinoma": (
        risk(site=FOREGUT_SITE, ki67=1, syndromes=INSULINOMA),
        (CT, MRI, DOPA),
        (SSTR_PET, SSTR_SPECT),
        (),
    ),
    # Table 2, gastrinoma row: 68Ga-DOTATOC PET; scintigraphy and DOPA follow
    "foregut-gastrinoma": (
        risk(site=PrimarySite.DUODENUM, ki67=1, syndromes=GASTRINOMA),
        (CT, MRI, SSTR_PET),
        (SSTR_SPECT, DOPA),
        (),
    ),
    # both syndrome rows (e.g. MEN1, section I): both tracers first
    "foregut-insulinoma-and-gastrinoma": (
        risk(site=FOREGUT_SITE, syndromes=(Syndrome.GASTRINOMA, Syndrome.INSULINOMA)),
        (CT, MRI, DOPA, SSTR_PET),
        (SSTR_SPECT,),
        (),
    ),
    # a syndrome row without an origin row
    "unknown-primary-insulinoma": (
        risk(site=PrimarySite.UNKNOWN, syndromes=INSULINOMA),
        (CT, MRI, DOPA),
        (),
        (),
    ),
    # decision: the poorly differentiated row replaces the syndrome rows too
    "foregut-insulinoma-poorly": (
        risk(site=FOREGUT_SITE, diff=POORLY, syndromes=INSULINOMA),
        (CT, MRI, FDG),
        (),
        (),
    ),
    # Table 2 has no row for the other syndromes: the origin row alone
    "foregut-vipoma": (
        risk(site=FOREGUT_SITE, syndromes=(Syndrome.VIPOMA,)),
        (CT, MRI, SSTR_PET, SSTR_SPECT),
        (DOPA,),
        (),
    ),
    # no origin: no origin row of Table 2, anatomic imaging only
    "unknown-primary": (risk(site=PrimarySite.UNKNOWN, ki67=1), (CT, MRI), (), ()),
    "unknown-primary-ki67-12": (risk(site=PrimarySite.UNKNOWN, ki67=12), (CT, MRI), (), (FDG,)),
    "colon-unspecified": (risk(site=PrimarySite.COLON), (CT, MRI), (), ()),
    "colon-right-is-midgut": (
        risk(site=PrimarySite.COLON_RIGHT),
        (CT, MRI, DOPA),
        (SSTR_PET, SSTR_SPECT),
        (),
    ),
    "colon-left-is-hindgut": (risk(site=PrimarySite.COLON_LEFT), (CT, MRI), (), ()),
    # decision: unknown differentiation applies the well-differentiated rows
    "foregut-differentiation-unknown": (
        risk(site=FOREGUT_SITE, diff=None, ki67=1),
        (CT, MRI, SSTR_PET, SSTR_SPECT),
        (DOPA,),
        (),
    ),
    # Fig. 4 / section I: FDG-avid disease, consider FDG PET
    "foregut-fdg-avid": (
        risk(site=FOREGUT_SITE, ki67=1, fdg_avid=True),
        (CT, MRI, SSTR_PET, SSTR_SPECT),
        (DOPA,),
        (FDG,),
    ),
    "foregut-not-fdg-avid": (
        risk(site=FOREGUT_SITE, ki67=1, fdg_avid=False),
        (CT, MRI, SSTR_PET, SSTR_SPECT),
        (DOPA,),
        (),
    ),
    # Table 2, every row: CT and/or MRI
    "empty-form": (RiskFactors(), (CT, MRI), (), ()),
}


@pytest.mark.parametrize(
    ("factors", "first", "second", "consider"), list(IMAGING.values()), ids=list(IMAGING)
)
def test_table_2_ranks_the_modalities_for_origin_syndrome_and_grade(
    factors: RiskFactors,
    first: tuple[Modality, ...],
    second: tuple[Modality, ...],
    consider: tuple[Modality, ...],
) -> None:
    result = recommend_imaging(factors)
    assert (result.first, result.second, result.consider) == (first, second, consider)


def test_a_modality_is_recommended_at_one_rank_only() -> None:
    # poorly differentiated with Ki-67 >= 10 %: FDG first, not also "consider"
    result = recommend_imaging(risk(site=FOREGUT_SITE, diff=POORLY, ki67=50, fdg_avid=True))
    assert result.first == (CT, MRI, FDG)
    assert result.consider == ()
    assert not any("consider 18F-FDG" in r for r in result.reasons)


@pytest.mark.parametrize(
    ("factors", "expected"),
    [
        (risk(site=FOREGUT_SITE), "Table 2, foregut row"),
        (risk(site=MIDGUT_SITE), "Table 2, midgut row"),
        (risk(site=HINDGUT_SITE), "Table 2, hindgut row: CT/MRI rather than nuclear medicine"),
        (risk(site=MIDGUT_SITE, diff=POORLY), "Table 2, poorly differentiated row"),
        (risk(site=HINDGUT_SITE, diff=POORLY), "applied to this hindgut tumour too"),
        (risk(site=FOREGUT_SITE, syndromes=INSULINOMA), "Table 2, insulinoma row: IACIG"),
        (risk(site=FOREGUT_SITE, syndromes=GASTRINOMA), "Table 2, gastrinoma row: IACIG"),
        (risk(site=FOREGUT_SITE, ki67=10), "Ki-67 10 % is at least 10 %: consider 18F-FDG PET"),
        (risk(site=FOREGUT_SITE, ki67=5, mitoses=21), "G3 NET: consider 18F-FDG PET"),
        (risk(site=PrimarySite.UNKNOWN), "no origin row of Table 2 ranks a tracer"),
        (risk(site=FOREGUT_SITE, diff=None), "differentiation not recorded"),
    ],
    ids=[
        "foregut",
        "midgut",
        "hindgut",
        "poorly",
        "hindgut-poorly",
        "insulinoma-iacig",
        "gastrinoma-iacig",
        "ki67-10",
        "g3-net",
        "no-origin",
        "no-differentiation",
    ],
)
def test_imaging_reasons_cite_the_table_2_row_that_fired(
    factors: RiskFactors, expected: str
) -> None:
    reasons = recommend_imaging(factors).reasons
    assert reasons[0] == "Table 2, every row: contrast-enhanced CT and/or MRI as anatomic imaging"
    assert any(expected in r for r in reasons), reasons


# --- PRRT eligibility screen (section V) ------------------------------------------------------

# section V: "PRRT is considered when the Krenning score is greater than 2"; Table 2: G1/G2 tumours
PRRT_MATRIX = [
    (grade, ki67, score, ELIGIBLE if score > 2 else NOT_ELIGIBLE)
    for (grade, ki67), score in product([("G1", 1), ("G2", 10)], range(5))
]


@pytest.mark.parametrize(
    ("ki67", "krenning", "expected"),
    [(ki67, score, expected) for _, ki67, score, expected in PRRT_MATRIX],
    ids=[f"{grade}-krenning-{score}" for grade, _, score, _ in PRRT_MATRIX],
)
def test_a_well_differentiated_g1_g2_net_is_eligible_only_above_krenning_2(
    ki67: int, krenning: int, expected: PrrtEligibility
) -> None:
    """Section V: Krenning > 2 is uptake above the liver; 2 (up to the liver) is not enough."""
    assert screen_prrt(risk(ki67=ki67, krenning=krenning)).eligibility is expected


@pytest.mark.parametrize(
    ("factors", "expected"),
    [
        # decision: G3 NET fails the G1/G2 criterion (Table 2; section V: G3 combos under study)
        (risk(ki67=25, krenning=4), NOT_ELIGIBLE),
        (risk(ki67=5, mitoses=21, krenning=4), NOT_ELIGIBLE),
        # G3 NEC: poorly differentiated, never a PRRT candidate on this screen (section V)
        (risk(diff=POORLY, ki67=60, krenning=4), NOT_ELIGIBLE),
        (risk(diff=POORLY, krenning=None), NOT_ELIGIBLE),
        # decision: grade 3 of unknown differentiation fails either way
        (risk(diff=None, ki67=30, krenning=None), NOT_ELIGIBLE),
        # grade unknown: undetermined unless the uptake criterion fails
        (risk(krenning=4), UNDETERMINED),
        (risk(krenning=2), NOT_ELIGIBLE),
        # Krenning unknown: SSTR imaging with Krenning scoring is required (section V)
        (risk(ki67=1), UNDETERMINED),
        (risk(ki67=1, mitoses=25), NOT_ELIGIBLE),
        # differentiation unknown with G1/G2 figures: a NET by definition (WHO 2019)
        (risk(diff=None, ki67=10, krenning=3), ELIGIBLE),
        (RiskFactors(), UNDETERMINED),
        # Fig. 9: G2 pancreatic NET (Ki-67 5 %), Krenning 4, "eligible for targeted radionuclide
        # therapy"; Fig. 14: ileal G1 NET, Krenning 3, "eligible for IRV with Lutathera"
        (risk(site=PrimarySite.PANCREAS, ki67=5, krenning=4), ELIGIBLE),
        (risk(site=PrimarySite.JEJUNUM_ILEUM, ki67=1, krenning=3), ELIGIBLE),
        # decision: FDG avidity is a note, not a criterion (section V: dual-tracer not validated)
        (risk(ki67=10, krenning=4, fdg_avid=True), ELIGIBLE),
    ],
    ids=[
        "G3-NET-by-ki67-krenning-4",
        "G3-NET-by-mitoses-krenning-4",
        "G3-NEC-krenning-4",
        "G3-NEC-krenning-missing",
        "grade-3-differentiation-unknown",
        "grade-missing-krenning-4",
        "grade-missing-krenning-2",
        "G1-krenning-missing",
        "G3-by-mitoses-krenning-missing",
        "differentiation-unknown-G2-krenning-3",
        "empty-form",
        "fig-9-pNET-G2-krenning-4",
        "fig-14-ileal-G1-krenning-3",
        "fdg-avid-G2-krenning-4",
    ],
)
def test_prrt_screen_is_eligible_not_eligible_or_undetermined(
    factors: RiskFactors, expected: PrrtEligibility
) -> None:
    assert screen_prrt(factors).eligibility is expected


def test_prrt_reasons_give_each_criterion_with_its_figure() -> None:
    reasons = screen_prrt(risk(ki67=10, krenning=2)).reasons
    assert reasons == (
        "G2 NET: grade criterion met (G1/G2, Table 2; section V)",
        "Krenning score 2 is not above 2, uptake not above the liver's: uptake criterion not met "
        "(review section V)",
    )


def test_an_eligible_screen_says_what_it_does_not_check() -> None:
    reasons = screen_prrt(risk(ki67=1, krenning=3)).reasons
    assert any("after failure of somatostatin analogue" in r for r in reasons)


def test_fdg_avid_disease_is_noted_as_predicting_prrt_resistance() -> None:
    reasons = screen_prrt(risk(ki67=1, krenning=3, fdg_avid=True)).reasons
    assert any("predicts resistance to PRRT" in r for r in reasons)


def test_a_g3_net_screen_mentions_the_g3_combinations_under_evaluation() -> None:
    reasons = screen_prrt(risk(ki67=25, krenning=4)).reasons
    assert any("under evaluation" in r for r in reasons)


# --- Bundle and input ranges ------------------------------------------------------------------


def test_derive_risk_bundles_the_four_derivations() -> None:
    """Review Fig. 9: G2 pancreatic NET, Ki-67 5 %, Krenning 4."""
    factors = risk(site=PrimarySite.PANCREAS, ki67=5, krenning=4)
    result = derive_risk(factors)
    assert result.grade == derive_who_grade(factors)
    assert result.origin == derive_embryologic_origin(factors)
    assert result.imaging == recommend_imaging(factors)
    assert result.prrt == screen_prrt(factors)
    assert (result.grade.grade, result.origin.origin, result.prrt.eligibility) == (
        G2,
        EmbryologicOrigin.FOREGUT,
        ELIGIBLE,
    )


@pytest.mark.parametrize(
    ("factors", "paths"),
    [
        (RiskFactors(ki67_pct=Decimal("-0.1")), ["ki67_pct"]),
        (RiskFactors(ki67_pct=Decimal("100.1")), ["ki67_pct"]),
        (RiskFactors(ki67_pct=Decimal("NaN")), ["ki67_pct"]),
        (RiskFactors(mitoses_per_2mm2=Decimal("-1")), ["mitoses_per_2mm2"]),
        (RiskFactors(mitoses_per_2mm2=Decimal("Infinity")), ["mitoses_per_2mm2"]),
        (RiskFactors(krenning_score=5), ["krenning_score"]),
        (RiskFactors(krenning_score=-1), ["krenning_score"]),
        (
            RiskFactors(ki67_pct=Decimal(101), mitoses_per_2mm2=Decimal(-1), krenning_score=7),
            ["ki67_pct", "mitoses_per_2mm2", "krenning_score"],
        ),
    ],
    ids=[
        "ki67-negative",
        "ki67-above-100",
        "ki67-nan",
        "mitoses-negative",
        "mitoses-infinite",
        "krenning-5",
        "krenning-negative",
        "every-problem-at-once",
    ],
)
@pytest.mark.parametrize(
    "derive",
    [derive_risk, derive_who_grade, derive_embryologic_origin, recommend_imaging, screen_prrt],
    ids=["risk", "grade", "origin", "imaging", "prrt"],
)
def test_out_of_range_figures_are_rejected_all_at_once(
    derive: Callable[[RiskFactors], object], factors: RiskFactors, paths: list[str]
) -> None:
    """crf.md / Questionnaire: Ki-67 0-100 %, mitotic count >= 0, Krenning score 0-4."""
    with pytest.raises(InvalidInputError) as raised:
        derive(factors)
    assert [error.path for error in raised.value.errors] == [(path,) for path in paths]


def test_the_form_limits_themselves_are_accepted() -> None:
    factors = RiskFactors(ki67_pct=Decimal(100), mitoses_per_2mm2=Decimal(0), krenning_score=0)
    assert derive_risk(factors).grade.grade is None  # no differentiation: G3 NET or NEC
    assert screen_prrt(RiskFactors(ki67_pct=Decimal(0), krenning_score=4)).eligibility is ELIGIBLE
