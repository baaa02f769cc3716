"""Input rules the criteria need before they can assess (``criteria.md`` §1, rules 1-5).

Every problem is collected, with the path of the offending field in the request as given (its own
indices, before sorting), so that a caller can fix them all at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from decimal import Decimal

from fhirnet.criteria.models import (
    AssessmentRequest,
    Criteria,
    NonTargetStatus,
    PetReference,
    TimePoint,
    TimePointRole,
)
from fhirnet.criteria.thresholds import (
    CHOI_MAX_TARGETS,
    CHOI_MAX_TARGETS_PER_ORGAN,
    CT_MAX_HU,
    CT_MIN_HU,
    MAX_TARGETS,
    MAX_TARGETS_PER_ORGAN,
    MEASURABLE_NODAL_MM,
    MEASURABLE_NON_NODAL_MM,
    PERCIST_BLOOD_POOL_MEAN_FACTOR,
    PERCIST_LIVER_MEAN_FACTOR,
    PERCIST_SD_FACTOR,
    at_least,
    less_than,
)
from fhirnet.criteria.timeline import organ_key
from fhirnet.errors import FieldError, InvalidInputError

LABELS = {
    Criteria.RECIST_1_1: "RECIST 1.1",
    Criteria.IRECIST: "iRECIST",
    Criteria.CHOI: "Choi",
    Criteria.PERCIST_1_0: "PERCIST 1.0",
}


def validate(request: AssessmentRequest) -> None:
    """Raise :class:`InvalidInputError` with every violation of ``criteria.md`` §1 rules 1-5."""
    errors = list(_problems(request))
    if errors:
        raise InvalidInputError(errors)


def _problems(request: AssessmentRequest) -> Iterator[FieldError]:
    timepoints = request.timepoints
    assessed = [(i, tp) for i, tp in enumerate(timepoints) if tp.role is TimePointRole.ASSESSMENT]
    if not assessed:
        yield FieldError(
            path=("timepoints",),
            message="at least one timepoint must not be pre-baseline: the earliest is the baseline",
        )
        return
    dates = Counter(tp.date for tp in timepoints)
    for i, tp in enumerate(timepoints):
        if dates[tp.date] > 1:
            yield FieldError(
                path=("timepoints", i, "date"),
                message=f"two timepoints share the date {tp.date}: dates must be unique",
            )
    base_index, baseline = min(assessed, key=lambda pair: pair[1].date)
    target_ids = {lesion.id for lesion in baseline.targets}
    non_target_ids = {lesion.id for lesion in baseline.non_targets}
    for i, tp in enumerate(timepoints):
        yield from _lesion_identity(i, tp, i == base_index, target_ids, non_target_ids)
        yield from _densities(i, tp)
        if tp.role is TimePointRole.PRE_BASELINE and tp.date >= baseline.date:
            yield FieldError(
                path=("timepoints", i, "date"),
                message=(
                    f"a pre-baseline timepoint must be dated before the baseline {baseline.date}"
                ),
            )
    yield from _baseline(base_index, baseline)
    yield from _criteria_baseline(request.criteria, base_index, baseline)


def _lesion_identity(
    index: int,
    tp: TimePoint,
    is_baseline: bool,
    target_ids: set[str],
    non_target_ids: set[str],
) -> Iterator[FieldError]:
    """Rules 1 and 2: unique ids per timepoint, known follow-up ids, size or too-small."""
    seen: set[str] = set()
    lists: Sequence[tuple[str, Sequence[object]]] = (
        ("targets", tp.targets),
        ("nonTargets", tp.non_targets),
        ("newLesions", tp.new_lesions),
    )
    for name, lesions in lists:
        for j, lesion in enumerate(lesions):
            lesion_id = getattr(lesion, "id", "")
            if lesion_id in seen:
                yield FieldError(
                    path=("timepoints", index, name, j, "id"),
                    message=f"lesion id {lesion_id!r} appears more than once in this timepoint",
                )
            seen.add(lesion_id)
    for j, target in enumerate(tp.targets):
        if not is_baseline and target.id not in target_ids:
            yield FieldError(
                path=("timepoints", index, "targets", j, "id"),
                message=f"target lesion {target.id!r} is not a target lesion of the baseline",
            )
        if target.diameter_mm is not None and target.too_small_to_measure:
            yield FieldError(
                path=("timepoints", index, "targets", j, "tooSmallToMeasure"),
                message="a target cannot have both a diameter and tooSmallToMeasure",
            )
    if tp.role is TimePointRole.ASSESSMENT and not is_baseline:
        for j, non_target in enumerate(tp.non_targets):
            if non_target.id not in non_target_ids:
                yield FieldError(
                    path=("timepoints", index, "nonTargets", j, "id"),
                    message=(
                        f"non-target lesion {non_target.id!r} is not a non-target lesion of the "
                        "baseline"
                    ),
                )


def _densities(index: int, tp: TimePoint) -> Iterator[FieldError]:
    """Rule 5 (v2): ``densityHu`` may be negative, within the CT range of -1024 to 3071 HU."""
    for j, target in enumerate(tp.targets):
        density = target.density_hu
        if density is not None and not CT_MIN_HU <= density <= CT_MAX_HU:
            yield FieldError(
                path=("timepoints", index, "targets", j, "densityHu"),
                message=(
                    f"densityHu {density} is outside the CT attenuation range: it must be from "
                    f"{CT_MIN_HU} to {CT_MAX_HU} HU inclusive"
                ),
            )


def _selection_limits(criteria: Criteria) -> tuple[int, int, str]:
    """At most so many targets, and so many per organ, with the source of the limits (D5)."""
    if criteria is Criteria.CHOI:
        return CHOI_MAX_TARGETS, CHOI_MAX_TARGETS_PER_ORGAN, "Choi 2007 with RECIST 1.0 limits, D5"
    return MAX_TARGETS, MAX_TARGETS_PER_ORGAN, "RECIST 1.1 §4.2"


def _baseline(index: int, baseline: TimePoint) -> Iterator[FieldError]:
    """Rule 3: what every baseline needs, whatever the criteria."""
    where = ("timepoints", index)
    if not baseline.targets and not baseline.non_targets:
        yield FieldError(
            path=(*where, "targets"),
            message="the baseline needs at least one target or non-target lesion",
        )
    if baseline.new_lesions:
        yield FieldError(
            path=(*where, "newLesions"), message="the baseline cannot have new lesions"
        )
    for j, non_target in enumerate(baseline.non_targets):
        if non_target.status is not NonTargetStatus.PRESENT:
            yield FieldError(
                path=(*where, "nonTargets", j, "status"),
                message="a baseline non-target lesion must have status 'present'",
            )
    for j, target in enumerate(baseline.targets):
        if target.diameter_mm is None:
            yield FieldError(
                path=(*where, "targets", j, "diameterMm"),
                message="a baseline target lesion needs a measured diameter",
            )


def _criteria_baseline(criteria: Criteria, index: int, baseline: TimePoint) -> Iterator[FieldError]:
    """Rule 5: target selection and the figures each criteria needs at baseline."""
    label = LABELS[criteria]
    where = ("timepoints", index)
    targets = baseline.targets
    most, most_per_organ, source = _selection_limits(criteria)
    if len(targets) > most:
        yield FieldError(
            path=(*where, "targets"),
            message=f"{label}: at most {most} target lesions ({source})",
        )
    per_organ: Counter[str] = Counter()
    for j, target in enumerate(targets):
        organ = organ_key(target.site, target.nodal)
        per_organ[organ] += 1
        if per_organ[organ] == most_per_organ + 1:
            yield FieldError(
                path=(*where, "targets", j, "site"),
                message=(
                    f"{label}: at most {most_per_organ} target lesions per organ "
                    f"({organ}; all lymph nodes are one organ; {source})"
                ),
            )
    if criteria is Criteria.PERCIST_1_0:
        yield from _percist_baseline(label, where, baseline)
        return
    for j, target in enumerate(targets):
        size = target.diameter_mm
        if size is None:
            continue
        if target.nodal and less_than(size, MEASURABLE_NODAL_MM):
            yield FieldError(
                path=(*where, "targets", j, "diameterMm"),
                message=(
                    f"{label}: a nodal target lesion must be at least {MEASURABLE_NODAL_MM} mm "
                    "in short axis at baseline (RECIST 1.1 §3.1.1)"
                ),
            )
        elif not target.nodal and less_than(size, MEASURABLE_NON_NODAL_MM):
            yield FieldError(
                path=(*where, "targets", j, "diameterMm"),
                message=(
                    f"{label}: a non-nodal target lesion must be at least "
                    f"{MEASURABLE_NON_NODAL_MM} mm in longest diameter at baseline "
                    "(RECIST 1.1 §3.1.1)"
                ),
            )
    if criteria is Criteria.CHOI:
        yield from _choi_baseline(label, where, baseline)


def _choi_baseline(
    label: str, where: tuple[str | int, ...], baseline: TimePoint
) -> Iterator[FieldError]:
    """Choi needs targets with a density, and a positive mean density to compare against."""
    if not baseline.targets:
        yield FieldError(path=(*where, "targets"), message=f"{label}: at least 1 target lesion")
        return
    densities = [t.density_hu for t in baseline.targets]
    for j, density in enumerate(densities):
        if density is None:
            yield FieldError(
                path=(*where, "targets", j, "densityHu"),
                message=f"{label}: every baseline target lesion needs densityHu",
            )
    known = [d for d in densities if d is not None]
    if len(known) == len(densities) and sum(known, Decimal(0)) <= 0:
        yield FieldError(
            path=(*where, "targets"),
            message=f"{label}: the mean baseline density must be above 0 HU",
        )


def percist_threshold(pet: PetReference | None) -> tuple[Decimal, Decimal, bool] | None:
    """PERCIST measurability threshold, reference mean and whether blood pool was the fallback.

    Liver: 1.5 x SULmean + 2 x SD; else blood pool: 2.0 x SULmean + 2 x SD (PERCIST 1.0;
    Practical PERCIST steps 2-3); ``None`` without a reference region.
    """
    if pet is None:
        return None
    if pet.liver_sul_mean is not None and pet.liver_sul_sd is not None:
        return (
            PERCIST_LIVER_MEAN_FACTOR * pet.liver_sul_mean + PERCIST_SD_FACTOR * pet.liver_sul_sd,
            pet.liver_sul_mean,
            False,
        )
    if pet.blood_pool_sul_mean is not None and pet.blood_pool_sul_sd is not None:
        return (
            PERCIST_BLOOD_POOL_MEAN_FACTOR * pet.blood_pool_sul_mean
            + PERCIST_SD_FACTOR * pet.blood_pool_sul_sd,
            pet.blood_pool_sul_mean,
            True,
        )
    return None


def _percist_baseline(
    label: str, where: tuple[str | int, ...], baseline: TimePoint
) -> Iterator[FieldError]:
    """PERCIST: 1-5 targets with SULpeak, a reference region, hottest lesion measurable."""
    if not baseline.targets:
        yield FieldError(path=(*where, "targets"), message=f"{label}: at least 1 target lesion")
    peaks = [t.sul_peak for t in baseline.targets]
    for j, peak in enumerate(peaks):
        if peak is None:
            yield FieldError(
                path=(*where, "targets", j, "sulPeak"),
                message=f"{label}: every baseline target lesion needs sulPeak",
            )
    reference = percist_threshold(baseline.pet)
    if reference is None:
        yield FieldError(
            path=(*where, "pet"),
            message=(
                f"{label}: the baseline needs a reference region (liverSulMean and liverSulSd, "
                "or bloodPoolSulMean and bloodPoolSulSd)"
            ),
        )
        return
    known = [p for p in peaks if p is not None]
    threshold = reference[0]
    if known and not at_least(max(known), threshold):
        yield FieldError(
            path=(*where, "targets"),
            message=(
                f"{label}: the hottest baseline target SULpeak {max(known)} is below the "
                f"measurability threshold {threshold} (1.5 x liver SULmean + 2 x SD, or "
                "2.0 x blood-pool SULmean + 2 x SD)"
            ),
        )
