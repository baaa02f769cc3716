"""Terse builders for domain inputs, so that test tables read like the published examples."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fhirnet.criteria import (
    Assessment,
    AssessmentRequest,
    Criteria,
    IntratumoralNodules,
    Modality,
    NewLesion,
    NonTargetLesion,
    NonTargetStatus,
    Options,
    PetReference,
    TargetLesion,
    TimePoint,
    TimePointRole,
    assess,
)

BASELINE = dt.date(2025, 1, 6)

Number = int | float | str | Decimal | None


def num(value: Number) -> Decimal | None:
    """A Decimal from the literal as written: ``9.8`` becomes exactly ``Decimal('9.8')``."""
    return None if value is None else Decimal(str(value))


def day(n: int) -> dt.date:
    """The date ``n`` days after the tests' baseline."""
    return BASELINE + dt.timedelta(days=n)


def target(
    lesion_id: str,
    mm: Number,
    *,
    site: str = "liver",
    nodal: bool = False,
    too_small: bool = False,
    hu: Number = None,
    sul: Number = None,
) -> TargetLesion:
    return TargetLesion(
        id=lesion_id,
        site=site,
        nodal=nodal,
        diameter_mm=num(mm),
        too_small_to_measure=too_small,
        density_hu=num(hu),
        sul_peak=num(sul),
    )


def node(
    lesion_id: str,
    mm: Number,
    *,
    site: str = "lymph node",
    too_small: bool = False,
    hu: Number = None,
    sul: Number = None,
) -> TargetLesion:
    """A nodal target: ``mm`` is its short axis."""
    return target(lesion_id, mm, site=site, nodal=True, too_small=too_small, hu=hu, sul=sul)


def non_target(lesion_id: str, status: str = "present", *, site: str = "bone") -> NonTargetLesion:
    return NonTargetLesion(id=lesion_id, site=site, status=NonTargetStatus(status))


def new(
    lesion_id: str,
    *,
    site: str = "liver",
    modality: str | None = None,
    equivocal: bool = False,
    mm: Number = None,
    nodal: bool = False,
) -> NewLesion:
    return NewLesion(
        id=lesion_id,
        site=site,
        modality=None if modality is None else Modality(modality),
        equivocal=equivocal,
        diameter_mm=num(mm),
        nodal=nodal,
    )


def exam(
    when: int | dt.date,
    *lesions: TargetLesion | NonTargetLesion | NewLesion,
    modalities: tuple[str, ...] = ("CT",),
    pre_baseline: bool = False,
    pet: PetReference | None = None,
    nodules: str | None = None,
) -> TimePoint:
    """A timepoint ``when`` days after baseline, its lesions sorted into the three lists."""
    return TimePoint(
        date=day(when) if isinstance(when, int) else when,
        role=TimePointRole.PRE_BASELINE if pre_baseline else TimePointRole.ASSESSMENT,
        modalities=tuple(Modality(m) for m in modalities),
        targets=tuple(x for x in lesions if isinstance(x, TargetLesion)),
        non_targets=tuple(x for x in lesions if isinstance(x, NonTargetLesion)),
        new_lesions=tuple(x for x in lesions if isinstance(x, NewLesion)),
        pet=pet,
        intratumoral_nodules=None if nodules is None else IntratumoralNodules(nodules),
    )


def run(
    criteria: Criteria,
    *timepoints: TimePoint,
    confirmation: bool = False,
    confirmation_days: int = 28,
    sd_min_days: int = 42,
) -> Assessment:
    """Assess the timepoints with the given criteria and options."""
    return assess(
        AssessmentRequest(
            criteria=criteria,
            timepoints=timepoints,
            options=Options(
                confirmation_required=confirmation,
                confirmation_min_days=confirmation_days,
                sd_min_days=sd_min_days,
            ),
        )
    )


def sums(*values: Number, name: str = "T") -> list[TargetLesion]:
    """One non-nodal liver/lung/... target per value, ids T1, T2, ... in distinct organs."""
    organs = ("liver", "lung", "pancreas", "bone", "peritoneum")
    return [target(f"{name}{i + 1}", v, site=organs[i % len(organs)]) for i, v in enumerate(values)]
