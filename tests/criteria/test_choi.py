"""Choi criteria as specified in ``criteria.md`` §4 (Choi 2007, modified CT response criteria)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhirnet.criteria import Criteria, Response, TargetLesion
from fhirnet.errors import InvalidInputError
from tests.criteria.builders import day, exam, new, node, non_target, run, target

R = Response
CHOI = Criteria.CHOI


def two_lesions(
    size_a: float | None, size_b: float | None, hu_a: float | None, hu_b: float | None
) -> list[TargetLesion]:
    return [
        target("T1", size_a, site="liver", hu=hu_a),
        target("T2", size_b, site="pancreas", hu=hu_b),
    ]


@pytest.mark.parametrize(
    ("sizes", "densities", "expected"),
    [
        # baseline: 60 + 40 = 100 mm, mean 100 HU
        ((54, 36), (100, 100), R.PR),  # exactly 10 % smaller: PR by size (D4 inclusive)
        ((54.1, 36), (100, 100), R.SD),  # 9.9 % smaller, density unchanged
        ((60, 40), (85, 85), R.PR),  # exactly 15 % less dense: PR by density
        ((60, 40), (85.1, 85), R.SD),  # 14.95 % less dense
        ((66, 44), (100, 100), R.PD),  # exactly 10 % larger than the nadir, density unchanged
        ((65.9, 44), (100, 100), R.SD),  # 9.9 % larger
        ((66, 44), (85, 85), R.PR),  # 10 % larger but 15 % less dense: PR, not PD (Choi PD rule)
        ((66, 44), (86, 86), R.PD),  # 10 % larger and only 14 % less dense
        ((60, 40), (120, 120), R.SD),  # denser but not larger
    ],
    ids=[
        "size-minus-10pct-is-PR",
        "size-minus-9.9pct-is-SD",
        "density-minus-15pct-is-PR",
        "density-minus-14.95pct-is-SD",
        "size-plus-10pct-is-PD",
        "size-plus-9.9pct-is-SD",
        "larger-but-15pct-less-dense-is-PR",
        "larger-and-14pct-less-dense-is-PD",
        "denser-only-is-SD",
    ],
)
def test_choi_size_or_density_thresholds_are_exact(
    sizes: tuple[float, float], densities: tuple[float, float], expected: Response
) -> None:
    """Choi 2007 table: PR >= 10 % size or >= 15 % HU decrease; PD >= 10 % size increase
    without the density decrease that makes PR."""
    result = run(
        CHOI, exam(0, *two_lesions(60, 40, 100, 100)), exam(56, *two_lesions(*sizes, *densities))
    )
    assert result.timepoints[0].target_response is expected


def test_choi_pd_is_measured_from_the_nadir() -> None:
    """D3: growth is judged from the smallest sum, shrinkage from baseline."""
    result = run(
        CHOI,
        exam(0, *two_lesions(60, 40, 100, 100)),  # 100 mm
        exam(56, *two_lesions(48, 32, 100, 100)),  # 80 mm: PR, new nadir
        exam(112, *two_lesions(52.8, 35.2, 100, 100)),  # 88 mm: +10 % over the nadir
    )
    assert [t.target_response for t in result.timepoints] == [R.PR, R.PD]
    assert result.timepoints[1].change_from_baseline_pct == Decimal("-12.0")


def test_density_figures_are_reported_with_their_change() -> None:
    result = run(
        CHOI, exam(0, *two_lesions(60, 40, 110, 90)), exam(56, *two_lesions(60, 40, 80, 70))
    )
    figures = result.timepoints[0].choi
    assert figures is not None
    assert figures.mean_density_hu == Decimal("75.0")
    assert figures.density_change_from_baseline_pct == Decimal("-25.0")


def test_mean_density_leaves_out_disappeared_and_too_small_lesions() -> None:
    """D6: only targets with a measured diameter above 0 have a measurable density."""
    result = run(
        CHOI,
        exam(0, *two_lesions(60, 40, 100, 100), target("T3", 20, site="lung", hu=100)),
        exam(
            56,
            target("T1", 60, site="liver", hu=70),
            target("T2", 0, site="pancreas", hu=10),
            target("T3", None, site="lung", too_small=True, hu=5),
        ),
    )
    figures = result.timepoints[0].choi
    assert figures is not None
    assert figures.mean_density_hu == Decimal("70.0")


def test_without_any_density_only_a_size_decrease_can_be_judged() -> None:
    """§4 rule 3: density null → PR by size, else NE."""
    shrunk = run(
        CHOI,
        exam(0, *two_lesions(60, 40, 100, 100)),
        exam(56, target("T1", 54, site="liver"), target("T2", 36, site="pancreas")),
    )
    same = run(
        CHOI,
        exam(0, *two_lesions(60, 40, 100, 100)),
        exam(56, target("T1", 60, site="liver"), target("T2", 40, site="pancreas")),
    )
    assert shrunk.timepoints[0].target_response is R.PR
    assert same.timepoints[0].target_response is R.NE
    assert same.timepoints[0].choi is not None
    assert same.timepoints[0].choi.mean_density_hu is None


def test_a_target_not_evaluable_is_ne_without_a_partial_sum_rule() -> None:
    """§4 rule 2: unlike RECIST, a partial sum does not prove PD."""
    result = run(
        CHOI,
        exam(0, *two_lesions(60, 40, 100, 100)),
        exam(
            56, target("T1", 200, site="liver", hu=100), target("T2", None, site="pancreas", hu=100)
        ),
    )
    assert result.timepoints[0].target_response is R.NE


@pytest.mark.parametrize(
    ("nodules", "expected"),
    [("none", R.SD), ("new", R.PD), ("enlarging", R.PD), (None, R.SD)],
)
def test_new_or_enlarging_intratumoral_nodules_are_progression(
    nodules: str | None, expected: Response
) -> None:
    """Choi 2007: "new intratumoral nodules or increase in the size of the existing ones"."""
    result = run(
        CHOI,
        exam(0, *two_lesions(60, 40, 100, 100)),
        exam(56, *two_lesions(60, 40, 100, 100), nodules=nodules),
    )
    assert result.timepoints[0].overall_response is expected


def test_complete_response_and_reappearance_follow_recist() -> None:
    """§4 with §2.1 rule 1 and §2.4 (D15)."""
    result = run(
        CHOI,
        exam(0, target("T1", 30, hu=90), node("N1", 20, hu=60)),
        exam(56, target("T1", 0, hu=None), node("N1", 8, hu=40)),
        exam(112, target("T1", 4, hu=50), node("N1", 8, hu=40)),
    )
    assert [t.overall_response for t in result.timepoints] == [R.CR, R.PD]


def test_new_lesions_and_non_targets_are_judged_as_in_recist() -> None:
    result = run(
        CHOI,
        exam(0, *two_lesions(60, 40, 100, 100), non_target("NT1")),
        exam(56, *two_lesions(50, 30, 80, 80), non_target("NT1")),
        exam(112, *two_lesions(50, 30, 80, 80), non_target("NT1"), new("N1", site="bone")),
    )
    assert [t.overall_response for t in result.timepoints] == [R.PR, R.PD]
    assert result.best_overall_response.response is R.PR
    assert result.best_overall_response.date == day(56)
    assert result.progression_date == day(112)


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        (exam(0, non_target("NT1")), "Choi: at least 1 target lesion"),
        (exam(0, target("T1", 30)), "Choi: every baseline target lesion needs densityHu"),
        (exam(0, target("T1", 30, hu=0)), "Choi: the mean baseline density must be above 0 HU"),
        (exam(0, target("T1", 9.9, hu=50)), "Choi: a non-nodal target lesion must be at least 10"),
    ],
    ids=["no-target", "no-density", "zero-density", "too-small"],
)
def test_choi_baseline_rules(baseline: object, message: str) -> None:
    """``criteria.md`` §1 rule 5."""
    with pytest.raises(InvalidInputError) as raised:
        run(CHOI, baseline, exam(56, non_target("NT1")))  # type: ignore[arg-type]
    assert any(e.message.startswith(message) for e in raised.value.errors)


def test_choi_has_no_continuing_pr() -> None:
    """§4 (v2): "§2.1 rule 6 (continuing PR) does not apply to Choi: no source defines it"."""
    result = run(
        CHOI,
        exam(0, *two_lesions(60, 40, 100, 100)),
        exam(56, *two_lesions(60, 40, 80, 80)),  # 20 % less dense: PR
        exam(112, *two_lesions(60, 40, 90, 90)),  # 10 % less dense, same size: SD
    )
    assert [t.target_response for t in result.timepoints] == [R.PR, R.SD]


def test_reappearance_after_an_unconfirmed_cr_follows_the_ordinary_choi_rules() -> None:
    """§4 with §2.4 (v2, D15): one CR with confirmation required is not definitive. T1 back at
    4 mm: 12 mm is +50 % over the nadir 8 mm, but the mean density 45 HU is 40 % below the
    baseline 75 HU, so PR, not PD; ``unconfirmed-cr`` is warned."""
    result = run(
        CHOI,
        exam(0, target("T1", 30, hu=90), node("N1", 20, hu=60)),
        exam(56, target("T1", 0, hu=None), node("N1", 8, hu=40)),
        exam(112, target("T1", 4, hu=50), node("N1", 8, hu=40)),
        confirmation=True,
    )
    assert [t.overall_response for t in result.timepoints] == [R.CR, R.PR]
    assert [w.split(": ")[0] for w in result.warnings] == ["unconfirmed-cr"]


def choi_targets(count: int, *, site: str | None = None, name: str = "T") -> list[TargetLesion]:
    """``count`` 20 mm targets of 100 HU, in one organ (``site``) or in distinct organs."""
    return [target(f"{name}{i}", 20, site=site or f"organ{i}", hu=100) for i in range(1, count + 1)]


@pytest.mark.parametrize(
    ("targets", "accepted"),
    [
        (choi_targets(3, site="liver"), True),  # RECIST 1.1 would refuse 3 in one organ
        (choi_targets(5, site="liver"), True),
        (choi_targets(10), True),
        ([*choi_targets(5, site="liver"), *choi_targets(1, name="S")], True),
        (choi_targets(6, site="liver"), False),
        (choi_targets(11), False),
    ],
    ids=["3-in-one-organ", "5-in-one-organ", "10-targets", "6-targets", "6-in-one-organ", "11"],
)
def test_choi_selects_up_to_10_targets_and_5_per_organ(
    targets: list[TargetLesion], accepted: bool
) -> None:
    """§1.5 (v2), D5: Choi 2007 measured "similarly to RECIST" (1.0): 10 targets, 5 per organ."""
    timepoints = (exam(0, *targets), exam(56, *targets))
    if accepted:
        assert run(CHOI, *timepoints).timepoints[0].target_response is R.SD
        return
    with pytest.raises(InvalidInputError) as raised:
        run(CHOI, *timepoints)
    messages = [e.message for e in raised.value.errors]
    assert messages in (
        ["Choi: at most 10 target lesions (Choi 2007 with RECIST 1.0 limits, D5)"],
        [
            "Choi: at most 5 target lesions per organ (liver; all lymph nodes are one organ; "
            "Choi 2007 with RECIST 1.0 limits, D5)"
        ],
    )


def test_negative_densities_are_accepted_when_the_baseline_mean_is_above_0() -> None:
    """§1.5 (v2): densityHu may be negative (fat-containing lesions); the mean must be > 0."""
    result = run(
        CHOI,
        exam(0, *two_lesions(60, 40, -20, 120)),  # mean 50 HU
        exam(56, *two_lesions(60, 40, -40, 90)),  # mean 25 HU: 50 % less dense
    )
    figures = result.timepoints[0].choi
    assert figures is not None
    assert (figures.mean_density_hu, figures.density_change_from_baseline_pct) == (
        Decimal("25.0"),
        Decimal("-50.0"),
    )
    assert result.timepoints[0].target_response is R.PR
