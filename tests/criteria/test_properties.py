"""Invariants of every criteria, checked on generated patients (hypothesis).

- the order of lesions (and of timepoints) in the input does not change any category or figure;
- adding a later timepoint never changes the assessment of earlier ones;
- the nadir never exceeds the baseline sum;
- a complete response implies every non-nodal target measures exactly 0 mm.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fhirnet.criteria import (
    Assessment,
    AssessmentRequest,
    Criteria,
    Modality,
    NewLesion,
    NonTargetLesion,
    NonTargetStatus,
    PetReference,
    Response,
    TargetLesion,
    TimePoint,
    assess,
)

ORGANS = ("liver", "lung", "pancreas", "bone", "peritoneum")
COMPLETE = {Response.CR, Response.ICR, Response.CMR}
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tenths(low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Millimetre values on a 0.1 mm grid, as radiologists report them."""
    return st.integers(low * 10, high * 10).map(lambda n: Decimal(n) / 10)


@st.composite
def baseline_targets(draw: st.DrawFn) -> list[TargetLesion]:
    count = draw(st.integers(1, 5))
    targets = []
    for i in range(count):
        nodal = draw(st.booleans())
        site = "lymph node" if nodal else ORGANS[i % len(ORGANS)]
        targets.append(
            TargetLesion(
                id=f"T{i + 1}",
                site=site,
                nodal=nodal,
                diameter_mm=draw(tenths(15 if nodal else 10, 120)),
                density_hu=draw(tenths(20, 150)),
                sul_peak=draw(tenths(5, 20)),
            )
        )
    # at most 2 per organ: all nodes are one organ (D21)
    nodes = [t for t in targets if t.nodal]
    for extra in nodes[2:]:
        targets[targets.index(extra)] = dataclasses.replace(
            extra, nodal=False, site=ORGANS[targets.index(extra)]
        )
    return targets


@st.composite
def follow_up_target(draw: st.DrawFn, base: TargetLesion) -> TargetLesion | None:
    kind = draw(st.sampled_from(["size", "size", "size", "zero", "null", "small", "missing"]))
    if kind == "missing":
        return None
    size: Decimal | None = {"zero": Decimal(0), "null": None, "small": None}.get(
        kind, draw(tenths(0, 200))
    )
    sul = draw(st.one_of(st.none(), tenths(0, 25)))
    return dataclasses.replace(
        base,
        diameter_mm=size,
        too_small_to_measure=kind == "small",
        density_hu=draw(st.one_of(st.none(), tenths(0, 200))),
        sul_peak=sul if kind != "null" else None,
    )


@st.composite
def patients(draw: st.DrawFn, criteria: Criteria) -> AssessmentRequest:
    targets = draw(baseline_targets())
    non_targets = [
        NonTargetLesion(id=f"NT{i + 1}", site="bone") for i in range(draw(st.integers(0, 3)))
    ]
    pet = PetReference(
        liver_sul_mean=draw(tenths(1, 2)),
        liver_sul_sd=Decimal("0.2"),
        uptake_time_min=Decimal(60),
    )
    start = dt.date(2025, 1, 6)
    timepoints = [
        TimePoint(
            date=start,
            modalities=(Modality.CT,),
            targets=tuple(targets),
            non_targets=tuple(non_targets),
            pet=pet,
        )
    ]
    gap = 0
    for n in range(draw(st.integers(1, 5))):
        gap += draw(st.integers(14, 120))
        listed: list[TargetLesion | None]
        if draw(st.integers(0, 3)) == 0:  # a response in which every target has vanished
            listed = [
                dataclasses.replace(t, diameter_mm=draw(tenths(0, 9)) if t.nodal else Decimal(0))
                for t in targets
            ]
        else:
            listed = [draw(follow_up_target(t)) for t in targets]
        new_lesions = [
            NewLesion(
                id=f"N{draw(st.integers(1, 4))}-{n}" if draw(st.booleans()) else "N1",
                site=draw(st.sampled_from(ORGANS)),
                modality=draw(st.sampled_from([None, Modality.CT, Modality.SSTR_PET])),
                equivocal=draw(st.booleans()),
                diameter_mm=draw(st.one_of(st.none(), tenths(3, 40))),
                nodal=draw(st.booleans()),  # the new lymph node rules (criteria.md §2.3, D28)
            )
            for _ in range(draw(st.integers(0, 2)))
        ]
        unique_new = list({lesion.id: lesion for lesion in new_lesions}.values())
        timepoints.append(
            TimePoint(
                date=start + dt.timedelta(days=gap),
                modalities=tuple(
                    draw(st.sampled_from([(Modality.CT,), (Modality.CT, Modality.SSTR_PET), ()]))
                ),
                targets=tuple(t for t in listed if t is not None),
                non_targets=tuple(
                    dataclasses.replace(nt, status=draw(st.sampled_from(list(NonTargetStatus))))
                    for nt in non_targets
                    if draw(st.integers(0, 9)) > 0
                ),
                new_lesions=tuple(unique_new),
                pet=draw(
                    st.sampled_from(
                        [pet, None, dataclasses.replace(pet, liver_sul_mean=Decimal("2.5"))]
                    )
                ),
            )
        )
    return AssessmentRequest(criteria=criteria, timepoints=tuple(timepoints))


criteria_and_patients = st.sampled_from(list(Criteria)).flatmap(patients)


def without_reasons(result: Assessment) -> Assessment:
    """The assessment without its sentences, warnings as a multiset: they name lesions in input
    order."""
    return dataclasses.replace(
        result,
        timepoints=tuple(dataclasses.replace(t, reasons=()) for t in result.timepoints),
        warnings=tuple(sorted(result.warnings)),
    )


def shuffled(request: AssessmentRequest, rnd: st.DataObject) -> AssessmentRequest:
    timepoints = []
    for tp in request.timepoints:
        keep_new_order = request.criteria is Criteria.IRECIST  # §3.1: list order picks NLTs
        timepoints.append(
            dataclasses.replace(
                tp,
                targets=tuple(rnd.draw(st.permutations(tp.targets))),
                non_targets=tuple(rnd.draw(st.permutations(tp.non_targets))),
                new_lesions=tp.new_lesions
                if keep_new_order
                else tuple(rnd.draw(st.permutations(tp.new_lesions))),
            )
        )
    return dataclasses.replace(request, timepoints=tuple(rnd.draw(st.permutations(timepoints))))


@PROFILE
@given(request=criteria_and_patients, rnd=st.data())
def test_lesion_and_timepoint_order_do_not_matter(
    request: AssessmentRequest, rnd: st.DataObject
) -> None:
    reordered = shuffled(request, rnd)
    assert without_reasons(assess(reordered)) == without_reasons(assess(request))


@PROFILE
@given(request=criteria_and_patients)
def test_adding_a_timepoint_never_changes_earlier_ones(request: AssessmentRequest) -> None:
    shorter = dataclasses.replace(request, timepoints=request.timepoints[:-1])
    if len(shorter.timepoints) < 2:
        return
    earlier = assess(shorter).timepoints
    assert assess(request).timepoints[: len(earlier)] == earlier


@PROFILE
@given(request=criteria_and_patients)
def test_the_nadir_never_exceeds_the_baseline(request: AssessmentRequest) -> None:
    for tp in assess(request).timepoints:
        assert tp.nadir_sum_mm is not None
        assert tp.baseline_sum_mm is not None
        assert tp.nadir_sum_mm <= tp.baseline_sum_mm


@PROFILE
@given(
    request=st.sampled_from([Criteria.RECIST_1_1, Criteria.IRECIST, Criteria.CHOI]).flatmap(
        patients
    )
)
def test_a_complete_response_means_every_non_nodal_target_is_0_mm(
    request: AssessmentRequest,
) -> None:
    result = assess(request)
    by_date = {tp.date: tp for tp in request.timepoints}
    for assessed in result.timepoints:
        if assessed.target_response in COMPLETE or assessed.overall_response in COMPLETE:
            event("a complete response was generated")
            listed = {t.id: t for t in by_date[assessed.date].targets}
            for base in request.timepoints[0].targets:
                if not base.nodal:
                    lesion = listed[base.id]
                    assert lesion.diameter_mm == 0
                    assert not lesion.too_small_to_measure
