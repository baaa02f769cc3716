"""Which new lesions count at a follow-up (``criteria.md`` §2.3).

A new lesion counts unless it is equivocal, or it is seen only with a modality not used before
(the seed review's "new baseline lesion" for a newly used, more sensitive modality, D11). An
equivocal lesion later confirmed backdates the progression to its first appearance (D12).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from fhirnet.criteria.models import Modality, NewLesion, TimePoint
from fhirnet.criteria.timeline import Timeline


@dataclass(frozen=True, kw_only=True)
class NewLesionFindings:
    """The new lesions of one follow-up, sorted into those that count and those that do not."""

    counted: tuple[NewLesion, ...]
    equivocal: tuple[NewLesion, ...]
    new_baseline: tuple[NewLesion, ...]  # first seen on a modality not used before (D11)
    backdated_to: dt.date | None  # first appearance of an equivocal lesion now confirmed (D12)
    warnings: tuple[str, ...]

    @property
    def any_counted(self) -> bool:
        return bool(self.counted)


def sort_new_lesions(timeline: Timeline) -> Iterator[NewLesionFindings]:
    """Yield the new-lesion findings of each follow-up, in date order."""
    used: set[Modality] = set(timeline.baseline.modalities)
    rule_applies = bool(used)
    new_baseline_modality: dict[str, Modality] = {}  # lesion id -> the modality it re-baselines
    first_seen: dict[str, dt.date] = {}
    seen_equivocal: set[str] = set()
    for timepoint in timeline.follow_ups:
        counted: list[NewLesion] = []
        equivocal: list[NewLesion] = []
        new_baseline: list[NewLesion] = []
        warnings: list[str] = []
        backdated: dt.date | None = None
        for lesion in timepoint.new_lesions:
            first_seen.setdefault(lesion.id, timepoint.date)
            rebaselined = _rebaselined_modality(lesion, used, new_baseline_modality)
            if rule_applies and rebaselined is not None:
                new_baseline_modality.setdefault(lesion.id, rebaselined)
                new_baseline.append(lesion)
                warnings.append(_new_modality_warning(lesion, timepoint))
            elif lesion.equivocal:
                seen_equivocal.add(lesion.id)
                equivocal.append(lesion)
            else:
                counted.append(lesion)
                if lesion.id in seen_equivocal and first_seen[lesion.id] < timepoint.date:
                    start = first_seen[lesion.id]
                    backdated = start if backdated is None else min(backdated, start)
        yield NewLesionFindings(
            counted=tuple(counted),
            equivocal=tuple(equivocal),
            new_baseline=tuple(new_baseline),
            backdated_to=backdated,
            warnings=tuple(warnings),
        )
        used.update(timepoint.modalities)


def _rebaselined_modality(
    lesion: NewLesion, used: set[Modality], new_baseline_modality: dict[str, Modality]
) -> Modality | None:
    """The modality a lesion is a new baseline lesion for: one never used before, or the one it
    re-baselined when first seen; ``None`` when the lesion is a real new finding."""
    modality = lesion.modality
    if modality is None:
        return None
    if modality not in used or new_baseline_modality.get(lesion.id) == modality:
        return modality
    return None


def _new_modality_warning(lesion: NewLesion, timepoint: TimePoint) -> str:
    return (
        f"new-modality-lesion: new lesion {lesion.id} on {timepoint.date.isoformat()} is seen only "
        f"on {lesion.modality}, not used at earlier exams; it is a new baseline lesion for that "
        "modality, not progression"
    )
