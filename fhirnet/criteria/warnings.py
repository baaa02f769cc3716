"""Warnings shared by every criteria: problems that do not stop the assessment (§8)."""

from __future__ import annotations

from collections.abc import Iterator

from fhirnet.criteria.timeline import Timeline


def modality_warnings(timeline: Timeline) -> Iterator[str]:
    """``missing-modality``: a follow-up without a modality used at baseline (both non-empty)."""
    at_baseline = timeline.baseline.modalities
    for timepoint in timeline.follow_ups:
        if not at_baseline or not timepoint.modalities:
            continue
        missing = [m for m in at_baseline if m not in timepoint.modalities]
        if missing:
            yield (
                f"missing-modality: the exam of {timepoint.date} lacks {', '.join(missing)}, "
                "used at baseline"
            )
