"""iRECIST new lesions: new-lesion targets (NLT) and non-targets (NLNT), and their sums.

Which new lesions count is RECIST 1.1's (``new_lesions.py``, no backdating); iRECIST then
classifies each counted lesion once, as NLT or NLNT, and measures them at every follow-up
(``criteria.md`` §3.1; Seymour 2017, "new lesions"; EORTC iRECIST FAQ). The episode state machine
in ``irecist.py`` reads the resulting :class:`NewLesionTally`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from fhirnet.criteria.figures import mm
from fhirnet.criteria.models import NewLesion
from fhirnet.criteria.new_lesions import IRECIST_RULES, NewLesionFindings, sort_new_lesions
from fhirnet.criteria.recist import new_lesion_reasons
from fhirnet.criteria.thresholds import (
    IRECIST_MAX_NEW_LESION_TARGETS,
    IRECIST_MAX_NEW_LESION_TARGETS_PER_ORGAN,
    MEASURABLE_NODAL_MM,
    MEASURABLE_NON_NODAL_MM,
    at_least,
)
from fhirnet.criteria.timeline import Timeline, organ_key


@dataclass(frozen=True, kw_only=True)
class NewLesionTally:
    """The iRECIST view of one follow-up's new lesions (``criteria.md`` §3.1).

    Sums are unrounded; ``new_target_sum_mm`` is the contract's ``newLesionSumMm``.
    """

    findings: NewLesionFindings  # which lesions count now (RECIST 1.1 rules, no backdating)
    listed: tuple[str, ...]  # every id in this follow-up's newLesions list, in list order
    present: tuple[str, ...]  # listed, except new nodes below 10 mm: normal nodes (D28)
    brand_new: tuple[str, ...]  # counted now and never counted at an earlier follow-up
    still_listed: tuple[str, ...]  # counted at an earlier follow-up and present again
    new_target_sum_mm: Decimal | None  # None while no NLT exists, or when one is listed w/o size
    unmeasured_new_targets: tuple[str, ...]  # NLTs listed without a diameter (D27)
    new_target_nadir_mm: Decimal | None  # smallest NLT sum of the earlier follow-ups
    new_non_target_mm: Mapping[str, Decimal]  # NLNTs listed with a diameter
    reasons: tuple[str, ...]


def tally_new_lesions(timeline: Timeline) -> Iterator[NewLesionTally]:
    """Yield the new-lesion tally of each follow-up, in date order (``criteria.md`` §3.1).

    A lesion is classified once, when first counted, in order of first appearance and then list
    order: it becomes an NLT if measurable (>= 10 mm, nodes >= 15 mm short axis) while fewer than
    5 NLTs, and fewer than 2 in its organ, exist; otherwise an NLNT. Membership never changes
    (iRECIST, Seymour 2017, "new lesions"; EORTC iRECIST FAQ).
    """
    first_listed: dict[str, dt.date] = {}
    counted: set[str] = set()
    new_targets: list[NewLesion] = []
    new_non_targets: list[NewLesion] = []
    earlier_sums: list[Decimal] = []
    follow_ups = zip(timeline.follow_ups, sort_new_lesions(timeline, IRECIST_RULES), strict=True)
    for timepoint, findings in follow_ups:
        listed = {lesion.id: lesion for lesion in timepoint.new_lesions}
        small = {lesion.id for lesion in findings.small_nodes}
        present = tuple(i for i in listed if i not in small)
        for lesion_id in listed:
            first_listed.setdefault(lesion_id, timepoint.date)
        brand_new = sorted(
            (lesion for lesion in findings.counted if lesion.id not in counted),
            key=lambda lesion: first_listed[lesion.id],  # stable: then list order
        )
        reasons = []
        for lesion in brand_new:
            is_target, why = _classify(lesion, new_targets)
            (new_targets if is_target else new_non_targets).append(lesion)
            reasons += [_counted_reason(lesion, first_listed[lesion.id], timepoint.date), why]
        still = tuple(i for i in present if i in counted)
        reasons += [
            f"new lesion {i}, counted at an earlier assessment, is still listed" for i in still
        ]
        reasons += new_lesion_reasons(replace(findings, counted=(), confirmed=()))
        total = _new_target_sum(new_targets, listed)
        if new_targets:
            reasons.append(_new_target_sum_reason(new_targets, listed, total))
        yield NewLesionTally(
            findings=findings,
            listed=tuple(listed),
            present=present,
            brand_new=tuple(lesion.id for lesion in brand_new),
            still_listed=still,
            new_target_sum_mm=total,
            unmeasured_new_targets=tuple(
                lesion.id
                for lesion in new_targets
                if lesion.id in listed and listed[lesion.id].diameter_mm is None
            ),
            new_target_nadir_mm=min(earlier_sums, default=None),
            new_non_target_mm=_listed_sizes(new_non_targets, listed),
            reasons=tuple(reasons),
        )
        counted.update(lesion.id for lesion in findings.counted)
        if total is not None:
            earlier_sums.append(total)


def _counted_reason(lesion: NewLesion, first_listed: dt.date, today: dt.date) -> str:
    where = lesion.site + (f", {lesion.modality}" if lesion.modality else "")
    reason = f"new lesion {lesion.id} ({where}) is counted for the first time: a brand-new lesion"
    if first_listed < today:
        reason += (
            f"; listed since {first_listed} without counting, it counts from this assessment on "
            "(iRECIST does not backdate, criteria.md D12)"
        )
    return reason


def _classify(lesion: NewLesion, chosen: Sequence[NewLesion]) -> tuple[bool, str]:
    """Whether a newly counted lesion becomes an NLT (given the NLTs so far), and why (§3.1)."""
    size = lesion.diameter_mm
    limit = MEASURABLE_NODAL_MM if lesion.nodal else MEASURABLE_NON_NODAL_MM
    organ = organ_key(lesion.site, lesion.nodal)
    not_target = f"new lesion {lesion.id} is a new-lesion non-target"
    if size is None:
        return False, f"{not_target}: it has no diameter, so it is not measurable"
    if not at_least(size, limit):
        axis = "short axis of a node" if lesion.nodal else "longest diameter"
        return False, (
            f"{not_target}: {mm(size)} is not measurable (the {axis} must be >= {limit} mm, "
            "RECIST 1.1 §3.1.1)"
        )
    if len(chosen) >= IRECIST_MAX_NEW_LESION_TARGETS:
        return False, (
            f"{not_target}: {IRECIST_MAX_NEW_LESION_TARGETS} new-lesion targets already exist "
            "(iRECIST maximum)"
        )
    if sum(organ_key(t.site, t.nodal) == organ for t in chosen) >= (
        IRECIST_MAX_NEW_LESION_TARGETS_PER_ORGAN
    ):
        return False, (
            f"{not_target}: {IRECIST_MAX_NEW_LESION_TARGETS_PER_ORGAN} new-lesion targets "
            f"already exist in {organ} (iRECIST maximum per organ)"
        )
    return True, (
        f"new lesion {lesion.id} ({mm(size)}) is new-lesion target {len(chosen) + 1}: "
        f"measurable, and at most {IRECIST_MAX_NEW_LESION_TARGETS} in all and "
        f"{IRECIST_MAX_NEW_LESION_TARGETS_PER_ORGAN} per organ (iRECIST, new lesions)"
    )


def _new_target_sum(
    new_targets: Sequence[NewLesion], listed: Mapping[str, NewLesion]
) -> Decimal | None:
    """Sum of the NLTs' current diameters: not listed counts 0, listed without size -> ``None``."""
    if not new_targets:
        return None
    total = Decimal(0)
    for lesion in new_targets:
        seen = listed.get(lesion.id)
        if seen is None:
            continue
        if seen.diameter_mm is None:
            return None
        total += seen.diameter_mm
    return total


def _new_target_sum_reason(
    new_targets: Sequence[NewLesion], listed: Mapping[str, NewLesion], total: Decimal | None
) -> str:
    parts = []
    for lesion in new_targets:
        seen = listed.get(lesion.id)
        if seen is None:
            parts.append(f"{lesion.id} not listed, 0 mm")
        elif seen.diameter_mm is None:
            parts.append(f"{lesion.id} without a diameter")
        else:
            parts.append(f"{lesion.id} {mm(seen.diameter_mm)}")
    value = "unknown" if total is None else mm(total)
    return (
        f"new-lesion target sum {value} ({'; '.join(parts)}), kept apart from the target sum "
        "(iRECIST, new lesions)"
    )


def _listed_sizes(
    lesions: Sequence[NewLesion], listed: Mapping[str, NewLesion]
) -> dict[str, Decimal]:
    """Current diameters of the given lesions that are listed with one."""
    sizes = {}
    for lesion in lesions:
        seen = listed.get(lesion.id)
        if seen is not None and seen.diameter_mm is not None:
            sizes[lesion.id] = seen.diameter_mm
    return sizes
