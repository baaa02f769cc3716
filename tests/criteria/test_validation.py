"""Input rules of ``criteria.md`` §1 (rules 1-5): every problem reported, with its path."""

from __future__ import annotations

import pytest

from fhirnet.criteria import Criteria, PetReference, TimePoint
from fhirnet.errors import InvalidInputError, json_path
from tests.criteria.builders import exam, new, node, non_target, num, run, target

RECIST = Criteria.RECIST_1_1
LIVER = PetReference(liver_sul_mean=num(2.0), liver_sul_sd=num(0.3))  # threshold 3.6


def errors_of(criteria: Criteria, *timepoints: TimePoint) -> dict[str, str]:
    with pytest.raises(InvalidInputError) as raised:
        run(criteria, *timepoints)
    return {json_path(e.path): e.message for e in raised.value.errors}


CASES = [
    # rule 1: ids unique per timepoint, follow-up ids known at baseline
    (
        RECIST,
        [exam(0, target("T1", 20), non_target("T1"))],
        "$.timepoints[0].nonTargets[0].id",
        "lesion id 'T1' appears more than once",
    ),
    (
        RECIST,
        [exam(0, target("T1", 20)), exam(56, target("T9", 20))],
        "$.timepoints[1].targets[0].id",
        "target lesion 'T9' is not a target lesion of the baseline",
    ),
    (
        RECIST,
        [exam(0, target("T1", 20)), exam(56, target("T1", 20), non_target("NT7"))],
        "$.timepoints[1].nonTargets[0].id",
        "non-target lesion 'NT7' is not a non-target lesion of the baseline",
    ),
    # rule 2: a diameter and too small are exclusive
    (
        RECIST,
        [exam(0, target("T1", 20)), exam(56, target("T1", 4, too_small=True))],
        "$.timepoints[1].targets[0].tooSmallToMeasure",
        "a target cannot have both a diameter and tooSmallToMeasure",
    ),
    # rule 3: the baseline
    (
        RECIST,
        [exam(0, target("T1", 20), non_target("NT1", "absent"))],
        "$.timepoints[0].nonTargets[0].status",
        "a baseline non-target lesion must have status 'present'",
    ),
    (
        RECIST,
        [exam(0, target("T1", 20), new("N1"))],
        "$.timepoints[0].newLesions",
        "the baseline cannot have new lesions",
    ),
    (RECIST, [exam(0)], "$.timepoints[0].targets", "the baseline needs at least one target"),
    (
        RECIST,
        [exam(0, target("T1", None, too_small=True))],
        "$.timepoints[0].targets[0].diameterMm",
        "a baseline target lesion needs a measured diameter",
    ),
    # rule 4: pre-baseline before baseline
    (
        RECIST,
        [exam(0, target("T1", 20)), exam(10, target("T1", 20), pre_baseline=True)],
        "$.timepoints[1].date",
        "a pre-baseline timepoint must be dated before the baseline",
    ),
    (
        RECIST,
        [exam(0, target("T1", 20), pre_baseline=True)],
        "$.timepoints",
        "at least one timepoint must not be pre-baseline",
    ),
    # rule 5: RECIST 1.1 target selection (§3.1.1, §4.2; D21)
    (
        RECIST,
        [exam(0, *(target(f"T{i}", 20, site=f"organ{i}") for i in range(6)))],
        "$.timepoints[0].targets",
        "RECIST 1.1: at most 5 target lesions",
    ),
    (
        RECIST,
        [exam(0, target("T1", 20), target("T2", 20), target("T3", 20, site="Liver "))],
        "$.timepoints[0].targets[2].site",
        "RECIST 1.1: at most 2 target lesions per organ",
    ),
    (
        RECIST,
        [exam(0, node("N1", 20), node("N2", 20, site="pelvic node"), node("N3", 20, site="x"))],
        "$.timepoints[0].targets[2].site",
        "RECIST 1.1: at most 2 target lesions per organ (lymph nodes",
    ),
    (
        RECIST,
        [exam(0, target("T1", 9.9))],
        "$.timepoints[0].targets[0].diameterMm",
        "RECIST 1.1: a non-nodal target lesion must be at least 10 mm",
    ),
    (
        Criteria.IRECIST,
        [exam(0, node("N1", 14.9))],
        "$.timepoints[0].targets[0].diameterMm",
        "iRECIST: a nodal target lesion must be at least 15 mm in short axis",
    ),
    # rule 5: PERCIST
    (
        Criteria.PERCIST_1_0,
        [exam(0, target("T1", 20, sul=5))],
        "$.timepoints[0].pet",
        "PERCIST 1.0: the baseline needs a reference region",
    ),
    (
        Criteria.PERCIST_1_0,
        [exam(0, target("T1", 20, sul=3.5), pet=LIVER)],
        "$.timepoints[0].targets",
        "PERCIST 1.0: the hottest baseline target SULpeak 3.5 is below the measurability",
    ),
    (
        Criteria.PERCIST_1_0,
        [exam(0, target("T1", 20), pet=LIVER)],
        "$.timepoints[0].targets[0].sulPeak",
        "PERCIST 1.0: every baseline target lesion needs sulPeak",
    ),
]


@pytest.mark.parametrize(
    ("criteria", "timepoints", "path", "message"),
    CASES,
    ids=[
        "rule1-duplicate-id",
        "rule1-unknown-follow-up-target",
        "rule1-unknown-follow-up-non-target",
        "rule2-diameter-and-too-small",
        "rule3-baseline-non-target-not-present",
        "rule3-baseline-new-lesion",
        "rule3-empty-baseline",
        "rule3-baseline-target-without-diameter",
        "rule4-pre-baseline-after-baseline",
        "rule4-only-pre-baseline",
        "rule5-six-targets",
        "rule5-three-in-one-organ",
        "rule5-three-nodes-are-one-organ",
        "rule5-non-nodal-under-10mm",
        "rule5-node-under-15mm",
        "rule5-percist-no-reference",
        "rule5-percist-hottest-below-threshold",
        "rule5-percist-missing-sulpeak",
    ],
)
def test_each_input_rule_is_reported_at_its_field(
    criteria: Criteria, timepoints: list[TimePoint], path: str, message: str
) -> None:
    errors = errors_of(criteria, *timepoints)
    assert path in errors, errors
    assert errors[path].startswith(message), errors[path]


def test_the_measurability_threshold_is_met_at_equality() -> None:
    """PERCIST: SULpeak >= 1.5 x liver mean + 2 x SD; 3.6 exactly is measurable."""
    run(Criteria.PERCIST_1_0, exam(0, target("T1", 20, sul=3.6), pet=LIVER))


def test_a_non_nodal_target_of_exactly_10_mm_is_measurable() -> None:
    run(RECIST, exam(0, target("T1", 10), node("N1", 15)))


def test_all_problems_are_reported_at_once() -> None:
    errors = errors_of(
        RECIST,
        exam(0, target("T1", 9), new("N1")),
        exam(56, target("T2", 20)),
    )
    assert set(errors) == {
        "$.timepoints[0].targets[0].diameterMm",
        "$.timepoints[0].newLesions",
        "$.timepoints[1].targets[0].id",
    }


def test_paths_use_the_request_order_not_the_date_order() -> None:
    errors = errors_of(RECIST, exam(56, target("T2", 20)), exam(0, target("T1", 20)))
    assert "$.timepoints[0].targets[0].id" in errors


@pytest.mark.parametrize(
    ("criteria", "density", "accepted"),
    [
        (Criteria.CHOI, -1024, True),  # air: the lowest CT value
        (Criteria.CHOI, -1025, False),
        (Criteria.CHOI, 3071, True),  # the highest 12-bit CT value
        (Criteria.CHOI, 3072, False),
        (RECIST, -1025, False),  # a structural rule: whatever the criteria
    ],
    ids=["minus-1024-accepted", "minus-1025-refused", "3071-accepted", "3072-refused", "recist"],
)
def test_density_may_be_negative_within_the_ct_range(
    criteria: Criteria, density: int, accepted: bool
) -> None:
    """§1.5 (v2): densityHu from -1024 to 3071 HU inclusive, at baseline and at follow-ups."""
    baseline = exam(0, target("T1", 30, hu=3071), target("T2", 20, site="lung", hu=100))
    follow_up = exam(56, target("T1", 30, hu=density), target("T2", 20, site="lung", hu=100))
    if accepted:
        assert run(criteria, baseline, follow_up).timepoints[0].choi is not None
        return
    errors = errors_of(criteria, baseline, follow_up)
    assert errors == {
        "$.timepoints[1].targets[0].densityHu": (
            f"densityHu {density} is outside the CT attenuation range: it must be from -1024 to "
            "3071 HU inclusive"
        )
    }
