"""New lesions in ``criteria.md`` v2 §2.3: new lymph nodes (D28) and backdating (D11, D12).

Sources: EORTC RECIST Q&A "new lymph node lesions" (below 10 mm normal; 10-15 mm as the only
evidence re-evaluated at the next assessment); RECIST 1.1 §4.3.5 ("the date of PD will be the date
of the initial abnormal PET scan"). Unless a row says otherwise the baseline is one 50 mm liver
target T1 and one bone non-target NT1 on CT, and every follow-up lists T1 at 50 mm (SD) and NT1
present.
"""

from __future__ import annotations

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
)
from tests.criteria.builders import day, exam, new, non_target, num, run, target

R = Response
RECIST = Criteria.RECIST_1_1
LIVER = PetReference(liver_sul_mean=num(2.0), liver_sul_sd=num(0.3))  # PERCIST threshold 3.6

Lesion = TargetLesion | NonTargetLesion | NewLesion


def lymph_node(
    lesion_id: str, mm: float | None, *, site: str = "lymph node", modality: str | None = None
) -> NewLesion:
    """A new lymph node; ``mm`` is its short axis (``None``: no diameter given)."""
    return new(lesion_id, site=site, nodal=True, mm=mm, modality=modality)


def follow_up(when: int, *lesions: Lesion, t1: float = 50, nt: str = "present") -> TimePoint:
    return exam(when, target("T1", t1), non_target("NT1", nt), *lesions)


def recist(*follow_ups: TimePoint, criteria: Criteria = RECIST) -> Assessment:
    return run(criteria, exam(0, target("T1", 50), non_target("NT1")), *follow_ups)


def codes(result: Assessment) -> list[str]:
    return [w.split(": ")[0] for w in result.warnings]


# --- D28: a new node at one follow-up (RECIST 1.1)

ONE_SCAN = [
    # (id, lesions at day 56, T1 mm, NT1 status, overall, newLesions, warning codes)
    (
        "node-9.9mm-is-a-normal-node",
        [lymph_node("N1", 9.9)],
        50,
        "present",
        R.SD,
        False,
        ["small-new-node"],
    ),
    (
        "node-10mm-alone-is-equivocal",
        [lymph_node("N1", 10)],
        50,
        "present",
        R.SD,
        False,
        ["equivocal-new-node"],
    ),
    (
        "node-14.9mm-alone-is-equivocal",
        [lymph_node("N1", 14.9)],
        50,
        "present",
        R.SD,
        False,
        ["equivocal-new-node"],
    ),
    ("node-15mm-counts", [lymph_node("N1", 15)], 50, "present", R.PD, True, []),
    ("node-without-diameter-counts", [lymph_node("N1", None)], 50, "present", R.PD, True, []),
    # Other evidence of progression: the 10-15 mm node counts with it.
    ("node-12mm-with-target-pd-counts", [lymph_node("N1", 12)], 60, "present", R.PD, True, []),
    (
        "node-12mm-with-non-target-pd-counts",
        [lymph_node("N1", 12)],
        50,
        "progression",
        R.PD,
        True,
        [],
    ),
    (
        "node-12mm-with-another-new-lesion-counts",
        [lymph_node("N1", 12), new("N2")],
        50,
        "present",
        R.PD,
        True,
        [],
    ),
    # "Several such nodes on one scan are each equivocal."
    (
        "two-12mm-nodes-are-each-equivocal",
        [lymph_node("N1", 12), lymph_node("N2", 12, site="axilla")],
        50,
        "present",
        R.SD,
        False,
        ["equivocal-new-node", "equivocal-new-node"],
    ),
    # An equivocal lesion does not count, so it is no other evidence.
    (
        "node-12mm-beside-an-equivocal-lesion-is-equivocal",
        [lymph_node("N1", 12), new("N2", equivocal=True)],
        50,
        "present",
        R.SD,
        False,
        ["equivocal-new-node"],
    ),
    # "The small-node rule is applied before the new-modality rule": MRI was never used before.
    (
        "small-node-rule-before-new-modality-rule",
        [lymph_node("N1", 8, modality="MRI")],
        50,
        "present",
        R.SD,
        False,
        ["small-new-node"],
    ),
    # The node rules are for nodes only.
    ("non-nodal-9mm-new-lesion-counts", [new("N1", mm=9)], 50, "present", R.PD, True, []),
]


@pytest.mark.parametrize(
    ("lesions", "t1", "nt", "overall", "counted", "warnings"),
    [row[1:] for row in ONE_SCAN],
    ids=[row[0] for row in ONE_SCAN],
)
def test_new_lymph_nodes_count_from_10_mm_and_alone_from_15_mm(
    lesions: list[Lesion], t1: float, nt: str, overall: Response, counted: bool, warnings: list[str]
) -> None:
    """§2.3 (v2), D28, EORTC RECIST Q&A "new lymph node lesions"."""
    result = recist(follow_up(56, *lesions, t1=t1, nt=nt))
    tp = result.timepoints[0]
    assert (tp.overall_response, tp.new_lesions) == (overall, counted)
    assert codes(result) == warnings


def test_new_node_warnings_and_reasons_give_the_short_axis() -> None:
    """§8: "code: sentence" with the numbers, one per occurrence; reasons explain the rule."""
    result = recist(follow_up(56, lymph_node("N1", 9.9)), follow_up(112, lymph_node("N2", 12)))
    small, equivocal = result.warnings
    assert small.startswith(f"small-new-node: new lymph node N1 on {day(56)} measures 9.9 mm")
    assert equivocal.startswith(
        f"equivocal-new-node: new lymph node N2 on {day(112)} measures 12.0 mm in short axis "
        "(10 to below 15 mm) and is the only evidence of progression"
    )
    assert any("9.9 mm in short axis, below 10 mm" in r for r in result.timepoints[0].reasons)
    assert any("12.0 mm in short axis" in r for r in result.timepoints[1].reasons)


# --- D28 with D12: an equivocal node confirmed later backdates progression (RECIST 1.1)

CONFIRMATION = [
    # (id, node N1 per follow-up (day, mm or "gone"), overall responses, progression day)
    (
        "confirmed-at-10mm-dates-from-the-equivocal-scan",
        [(42, "gone"), (84, 12), (140, 10)],
        "SD SD PD",
        84,
    ),
    ("confirmed-without-a-diameter", [(42, "gone"), (84, 12), (140, None)], "SD SD PD", 84),
    # The first timepoint where it measured >= 10 mm: a 9.9 mm sighting is a normal node.
    ("dated-from-the-first-scan-at-10mm", [(42, 9.9), (84, 12), (140, 12)], "SD SD PD", 84),
    # Shrunk below 10 mm in between: not counted there, confirmed later, dated from the first.
    ("small-in-between-then-confirmed", [(42, 12), (84, 8), (140, 11)], "SD SD PD", 42),
    ("never-confirmed-never-counts", [(42, 12), (84, 9.9)], "SD SD", None),
]


@pytest.mark.parametrize(
    ("sightings", "overalls", "progression_day"),
    [row[1:] for row in CONFIRMATION],
    ids=[row[0] for row in CONFIRMATION],
)
def test_an_equivocal_new_node_listed_again_at_10_mm_counts_and_backdates(
    sightings: list[tuple[int, float | str | None]], overalls: str, progression_day: int | None
) -> None:
    """§2.3 (v2): "listed again ... with diameterMm >= 10 mm (or without a diameter), it counts
    there and the progression date is backdated to the first timepoint where it measured
    >= 10 mm" (D12, D28). Earlier timepoint responses are kept (D12)."""
    result = recist(
        *(
            follow_up(d, *(() if mm == "gone" else (lymph_node("N1", mm),)))  # type: ignore[arg-type]
            for d, mm in sightings
        )
    )
    assert " ".join(str(t.overall_response) for t in result.timepoints) == overalls
    if progression_day is None:
        assert result.progression_date is None
        return
    assert result.progression_date == day(progression_day)
    # §6.2: only follow-ups before the progression date count; SD at day 42 qualifies.
    bor = result.best_overall_response
    assert (bor.response, bor.date) == (
        (R.SD, day(42)) if progression_day > 42 else (R.PD, day(42))
    )
    assert any(
        f"is now confirmed: progression dates from {day(progression_day)}" in r
        for r in result.timepoints[-1].reasons
    )


# --- D28 in the other criteria

CHOI_TARGET = target("T1", 50, hu=100)


def test_irecist_applies_only_the_small_node_rule() -> None:
    """§2.3 and §3 (D28, D12): the 10-15 mm equivocal rule is for RECIST 1.1 and Choi; iRECIST
    has its own confirmation step (iUPD, then iCPD), so a 12 mm node alone counts (iUPD) and a
    9.9 mm node is normal."""
    small = recist(follow_up(56, lymph_node("N1", 9.9)), criteria=Criteria.IRECIST)
    borderline = recist(follow_up(56, lymph_node("N1", 12)), criteria=Criteria.IRECIST)
    assert [t.overall_response for t in small.timepoints] == [R.ISD]
    assert codes(small) == ["small-new-node"]
    assert [t.overall_response for t in borderline.timepoints] == [R.IUPD]
    assert codes(borderline) == []


def test_a_small_new_node_no_longer_holds_an_irecist_episode() -> None:
    """§3.2 with D28: a new node back below 10 mm is a normal node, not "still listed"."""
    result = recist(
        follow_up(56, lymph_node("N1", 12)),
        follow_up(112, lymph_node("N1", 12)),
        follow_up(168, lymph_node("N1", 8)),
        criteria=Criteria.IRECIST,
    )
    assert [t.overall_response for t in result.timepoints] == [R.IUPD, R.IUPD, R.ISD]


def test_choi_intratumoral_nodules_are_not_other_evidence_for_a_new_node() -> None:
    """§2.3 (v2): "Choi's intratumoral nodules are not 'other evidence' here"."""
    result = run(
        Criteria.CHOI,
        exam(0, CHOI_TARGET),
        exam(56, CHOI_TARGET, lymph_node("N1", 12), nodules="new"),
    )
    tp = result.timepoints[0]
    assert (tp.overall_response, tp.new_lesions) == (R.PD, False)  # PD by the nodules only
    assert codes(result) == ["equivocal-new-node"]


def test_percist_has_no_new_node_rule() -> None:
    """§2.3 (v2): the node rules apply to "all criteria but PERCIST"."""
    hot = target("T1", 50, sul=8)
    result = run(
        Criteria.PERCIST_1_0,
        exam(0, hot, pet=LIVER),
        exam(56, hot, lymph_node("N1", 8), pet=LIVER),
    )
    tp = result.timepoints[0]
    assert (tp.overall_response, tp.new_lesions) == (R.PMD, True)
    assert codes(result) == []


# --- D11 (v2): a new-modality lesion later confirmed on an established modality


def responding(when: int, *lesions: Lesion, modalities: tuple[str, ...] = ("CT",)) -> TimePoint:
    """A follow-up whose target shrank from 50 to 30 mm at unchanged density and from SULpeak 8
    to 4: PR (RECIST 1.1, iRECIST, Choi) and PMR (PERCIST)."""
    t1 = target("T1", 30, hu=100, sul=4)
    return exam(when, t1, *lesions, modalities=modalities, pet=LIVER)


BACKDATING = [
    # (criteria, responses of the 3 follow-ups, progression day, BOR, BOR day, confirmed)
    # PR at 42 and 84; the lesion first seen on FDG-PET at 84 is confirmed on CT at 126.
    # Backdated to day 84, only day 42 counts for the BOR: its PR is unconfirmed, so SD (v1:
    # progression on day 126 and a PR confirmed by day 84).
    (RECIST, "PR PR PD", 84, R.SD, 42, False),
    (Criteria.CHOI, "PR PR PD", 84, R.SD, 42, False),
    (Criteria.PERCIST_1_0, "PMR PMR PMD", 84, R.SMD, 42, False),
    # iRECIST does not backdate (D12): iUPD on day 126, no progression date without iCPD.
    (Criteria.IRECIST, "iPR iPR iUPD", None, R.IPR, 42, True),
]


@pytest.mark.parametrize(
    ("criteria", "responses", "progression_day", "bor", "bor_day", "confirmed"),
    BACKDATING,
    ids=[str(row[0]) for row in BACKDATING],
)
def test_a_new_modality_lesion_confirmed_on_ct_backdates_progression(
    criteria: Criteria,
    responses: str,
    progression_day: int | None,
    bor: Response,
    bor_day: int,
    confirmed: bool,
) -> None:
    """§2.3 (v2), D11: "the progression date is backdated to the first timepoint where the id
    appeared" for RECIST 1.1, Choi and PERCIST; RECIST 1.1 §4.3.5."""
    result = run(
        criteria,
        exam(0, target("T1", 50, hu=100, sul=8), modalities=("CT",), pet=LIVER),
        responding(42),
        responding(84, new("N1", modality="FDG-PET"), modalities=("CT", "FDG-PET")),
        responding(126, new("N1", modality="CT")),
        confirmation=True,
    )
    assert " ".join(str(t.overall_response) for t in result.timepoints) == responses
    assert result.progression_date == (None if progression_day is None else day(progression_day))
    best = result.best_overall_response
    assert (best.response, best.date, best.confirmed) == (bor, day(bor_day), confirmed)
    assert codes(result).count("new-modality-lesion") == 1
    if progression_day is not None:
        assert (
            f"new lesion N1, first seen on {day(84)} only on a modality not used before, is now "
            f"confirmed: progression dates from {day(84)}"
        ) in " ".join(result.timepoints[-1].reasons)
