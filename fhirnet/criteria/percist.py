"""PERCIST 1.0: metabolic response from the SULpeak of the hottest target (``criteria.md`` §5).

Wahl RL et al., "From RECIST to PERCIST", J Nucl Med 2009;50 Suppl 1:122S-150S, and O JH, Lodge MA,
Wahl RL, "Practical PERCIST", Radiology 2016;280:576-584 (D24). Each scan is read against its own
reference region (liver, or blood pool as fallback); the hottest target of a follow-up, which may
be another lesion than at baseline, is compared with the hottest target of the **baseline** (D8):
CMR below the reference mean (D9), PMD above +30 % and +0.8 SUL, PMR at -30 % and -0.8 SUL or more
(D7), SMD otherwise. Non-target and new-lesion rules are RECIST 1.1's (§2.2, §2.3), without the
reappearance-after-CR rule (§2.4). Quality problems only warn (D10). Each scan's reference region
and its warnings are in ``percist_scans.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from fhirnet.criteria.assembly import finish
from fhirnet.criteria.best_response import PERCIST_CODES
from fhirnet.criteria.figures import size_fields, sul, sul_figure
from fhirnet.criteria.models import (
    Assessment,
    Criteria,
    Options,
    PercistFigures,
    Response,
    TargetLesion,
    TimePoint,
    TimePointAssessment,
)
from fhirnet.criteria.new_lesions import PERCIST_RULES, sort_new_lesions
from fhirnet.criteria.percist_scans import (
    Reference,
    quality_warnings,
    reference_region,
    reference_warnings,
)
from fhirnet.criteria.recist import (
    Category,
    new_lesion_reasons,
    non_target_response,
    overall_reason,
)
from fhirnet.criteria.thresholds import (
    PERCIST_ABSOLUTE_SUL,
    PERCIST_CHANGE,
    at_least,
    greater_than,
    less_than,
    percent,
    relative_change,
)
from fhirnet.criteria.timeline import Timeline, measure
from fhirnet.criteria.warnings import modality_warnings

PMR_RULE = ">= 30% and >= 0.8 SUL decrease"
PMD_RULE = "> 30% and > 0.8 SUL increase"
SOURCE = "PERCIST 1.0, Wahl 2009"


@dataclass(frozen=True, kw_only=True)
class Peak:
    """The SULpeak of one target lesion on one scan."""

    lesion_id: str
    sul: Decimal


@dataclass(frozen=True, kw_only=True)
class SulPeaks:
    """The baseline targets on one scan, sorted by what their SULpeak says (``criteria.md`` §5.2).

    A target with a ``sulPeak`` is evaluable with it, even at 0 mm; without one it is resolved when
    listed at 0 mm (it has no uptake left to measure) and not evaluable otherwise.
    """

    evaluable: tuple[Peak, ...]
    resolved: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def hottest(self) -> Peak | None:
        """The evaluable target with the highest SULpeak (first in baseline order on a tie)."""
        return max(self.evaluable, key=_by_sul, default=None)


def _by_sul(peak: Peak) -> Decimal:
    """Sort key: the SULpeak."""
    return peak.sul


def sul_peaks(targets: Sequence[TargetLesion], timepoint: TimePoint) -> SulPeaks:
    """SULpeaks of the baseline ``targets`` at ``timepoint``, in baseline order."""
    listed = {lesion.id: lesion for lesion in timepoint.targets}
    evaluable: list[Peak] = []
    resolved: list[str] = []
    missing: list[str] = []
    for target in targets:
        seen = listed.get(target.id)
        if seen is not None and seen.sul_peak is not None:
            evaluable.append(Peak(lesion_id=target.id, sul=seen.sul_peak))
        elif seen is not None and seen.diameter_mm == 0 and not seen.too_small_to_measure:
            resolved.append(target.id)
        else:
            missing.append(target.id)
    return SulPeaks(evaluable=tuple(evaluable), resolved=tuple(resolved), missing=tuple(missing))


def meets_pmr_test(decrease: Decimal, baseline: Decimal) -> bool:
    """A decline of at least 30 % **and** at least 0.8 SUL (PERCIST 1.0 "PMR"; D7).

    Compared as ``decrease >= 0.30 x baseline``, so no division by the baseline is needed.
    """
    return at_least(decrease, PERCIST_ABSOLUTE_SUL) and at_least(
        decrease, baseline * PERCIST_CHANGE
    )


def meets_pmd_test(increase: Decimal, baseline: Decimal) -> bool:
    """A rise of more than 30 % **and** more than 0.8 SUL (PERCIST 1.0 "PMD"; D7)."""
    return greater_than(increase, PERCIST_ABSOLUTE_SUL) and greater_than(
        increase, baseline * PERCIST_CHANGE
    )


@dataclass(frozen=True, kw_only=True)
class SulChange:
    """The hottest target of a follow-up against the hottest target of the baseline (D8)."""

    current: Peak
    baseline: Peak

    @property
    def absolute(self) -> Decimal:
        """Follow-up minus baseline, in SUL units (``sulPeakChangeAbs``)."""
        return self.current.sul - self.baseline.sul

    @property
    def fraction(self) -> Decimal | None:
        """Relative change, unrounded; ``None`` for a baseline of 0 (§0)."""
        return relative_change(self.current.sul, self.baseline.sul)

    @property
    def is_progression(self) -> bool:
        """The rise meets PMD: > 30 % and > 0.8 SUL over the baseline hottest (D7, D8)."""
        return meets_pmd_test(self.absolute, self.baseline.sul)

    @property
    def is_partial_response(self) -> bool:
        """The decline meets PMR: >= 30 % and >= 0.8 SUL below the baseline hottest (D7)."""
        return meets_pmr_test(-self.absolute, self.baseline.sul)

    def describe(self, what: str = "hottest target") -> str:
        """``"hottest target SULpeak 4.20 (T2) is 31.1% and 1.90 SUL below the baseline hottest
        6.10 (T1)"``."""
        direction = "above" if self.absolute >= 0 else "below"
        size = f"{sul(abs(self.absolute))} SUL"
        if self.fraction is not None:
            size = f"{percent(abs(self.fraction))}% and {size}"
        return (
            f"{what} SULpeak {sul(self.current.sul)} ({self.current.lesion_id}) is {size} "
            f"{direction} the baseline hottest {sul(self.baseline.sul)} ({self.baseline.lesion_id})"
        )


@dataclass(frozen=True, kw_only=True)
class TargetResult:
    """The target response with the figures it reports and what §5.4 needs from it.

    ``change`` is ``None`` when targets are NE or all resolved (their changes are ``null``);
    ``declined_enough`` says whether the SULpeak decline meets the PMR test, full resolution
    counting as a decline of the whole baseline hottest value.
    """

    category: Category
    change: SulChange | None
    declined_enough: bool


def target_response(peaks: SulPeaks, baseline: Peak, reference: Reference | None) -> TargetResult:
    """PERCIST 1.0 target response of one follow-up (``criteria.md`` §5.2, §5.3).

    Order: NE targets (PMD if the evaluable ones already prove it), all resolved (CMR), hottest
    below this scan's reference mean (CMR, D9), PMD, PMR, SMD, each change measured against the
    baseline hottest (D8) with the thresholds of D7. Wahl 2009 "response criteria".
    """
    reasons: list[str] = []
    if peaks.resolved and peaks.evaluable:
        reasons.append(
            f"target(s) {', '.join(peaks.resolved)} resolved (0 mm, no SULpeak): "
            "excluded from the hottest value"
        )
    hottest = peaks.hottest
    if peaks.missing:
        return TargetResult(
            category=_partial_targets(peaks, baseline, reasons), change=None, declined_enough=False
        )
    if hottest is None:
        return TargetResult(
            category=Category(
                response=Response.CMR,
                reasons=(
                    f"every target lesion resolved (0 mm, no SULpeak; baseline hottest "
                    f"{sul(baseline.sul)} ({baseline.lesion_id})): no uptake left, target CMR "
                    f"({SOURCE}; criteria.md §5.2)",
                ),
            ),
            change=None,
            declined_enough=meets_pmr_test(baseline.sul, baseline.sul),
        )
    change = SulChange(current=hottest, baseline=baseline)
    if reference is None:
        reasons.append(
            "no reference region on this scan: CMR (hottest SULpeak below the reference mean) "
            "cannot be assigned"
        )
    if reference is not None and less_than(hottest.sul, reference.mean):
        response = Response.CMR
        reasons.append(
            f"{change.describe()}, and below the {reference.region} reference SULmean "
            f"{sul(reference.mean)}: target CMR ({SOURCE}; criteria.md D9)"
        )
    elif change.is_progression:
        response = Response.PMD
        reasons.append(f"{change.describe()}: PMD ({PMD_RULE}, {SOURCE})")
    elif change.is_partial_response:
        response = Response.PMR
        reasons.append(f"{change.describe()}: PMR ({PMR_RULE}, {SOURCE})")
    else:
        response = Response.SMD
        reasons.append(
            f"{change.describe()}: SMD (neither PMR, {PMR_RULE}, nor PMD, {PMD_RULE}, {SOURCE})"
        )
    return TargetResult(
        category=Category(response=response, reasons=tuple(reasons)),
        change=change,
        declined_enough=change.is_partial_response,
    )


def _partial_targets(peaks: SulPeaks, baseline: Peak, resolved: Sequence[str]) -> Category:
    """Some targets NE: PMD if the hottest evaluable one already proves it, else NE (§5.2).

    A missing lesion can only raise the hottest value, never lower it, as for RECIST 1.1 §4.4.2.
    """
    missing = f"target(s) {', '.join(peaks.missing)} not evaluable (no SULpeak)"
    hottest = peaks.hottest
    if hottest is not None:
        change = SulChange(current=hottest, baseline=baseline)
        if change.is_progression:
            return Category(
                response=Response.PMD,
                reasons=(
                    *resolved,
                    f"{missing}, but the {change.describe('hottest evaluable target')}: PMD "
                    f"({PMD_RULE}; missing lesions can only raise the hottest value, {SOURCE})",
                ),
            )
        proof = (
            f"the {change.describe('hottest evaluable target')}, which does not prove PMD "
            f"({PMD_RULE})"
        )
    else:
        proof = "no target has a SULpeak to prove PMD"
    return Category(response=Response.NE, reasons=(*resolved, f"{missing} and {proof}: target NE"))


def overall_response(
    target: Response | None, non_target: Response | None, new_lesion: bool, declined_enough: bool
) -> Response:
    """PERCIST 1.0 overall response of one follow-up (``criteria.md`` §5.4).

    PMD if target PMD, non-target PD or a counted new lesion; NE if target NE; CMR needs every
    non-target absent (or none), otherwise a target CMR is PMR when the SULpeak decline meets the
    PMR test and SMD when it does not (Wahl 2009 "response criteria"; D9). Non-target codes are
    RECIST 1.1's (§2.2).
    """
    if target is Response.PMD or non_target is Response.PD or new_lesion:
        return Response.PMD
    if target is None or target is Response.NE:
        return Response.NE
    if target is not Response.CMR or non_target in (Response.CR, None):
        return target
    return Response.PMR if declined_enough else Response.SMD


def overall_reasons(
    target: TargetResult, non_target: Response | None, new_lesion: bool, overall: Response
) -> tuple[str, ...]:
    """The sentence tying the components to the overall response, and why a CMR was lowered."""
    response = target.category.response
    summary = overall_reason(response, non_target, new_lesion, overall)
    if response is not Response.CMR or overall not in (Response.PMR, Response.SMD):
        return (summary,)
    if target.change is None:
        decline = (
            "every target resolved, read as a decline of the whole baseline hottest value "
            "(-100%), which"
        )
    else:
        decline = "the SULpeak decline from the baseline hottest"
    verdict = "meets" if target.declined_enough else "does not meet"
    return (
        summary,
        f"target CMR but non-target lesion(s) not all absent: {decline} {verdict} the PMR "
        f"test ({PMR_RULE}), so overall {overall}, not CMR ({SOURCE}; criteria.md §5.4)",
    )


def reference_reasons(reference: Reference | None) -> tuple[str, ...]:
    """The scan's reference region and measurability threshold, for the reasons (§5.1)."""
    if reference is None:
        return ()
    formula = (
        "2.0 x blood-pool SULmean + 2 x SD"
        if reference.blood_pool
        else "1.5 x liver SULmean + 2 x SD"
    )
    return (
        f"{reference.region} reference SULmean {sul(reference.mean)}, measurability threshold "
        f"{sul(reference.threshold)} ({formula}, {SOURCE}; Practical PERCIST)",
    )


def percist_figures(
    target: TargetResult, baseline: Peak, reference: Reference | None
) -> PercistFigures:
    """The PERCIST fields of a follow-up (``assessment-api.md``), rounded as §0 says."""
    change = target.change
    return PercistFigures(
        target_sul_peak=None if change is None else sul_figure(change.current.sul),
        baseline_target_sul_peak=sul_figure(baseline.sul),
        sul_peak_change_pct=None if change is None else percent(change.fraction),
        sul_peak_change_abs=None if change is None else sul_figure(change.absolute),
        measurability_threshold=None if reference is None else sul_figure(reference.threshold),
    )


def assess_percist(timeline: Timeline, options: Options) -> Assessment:
    """Assess every follow-up under PERCIST 1.0, then the best overall response.

    ``criteria.md`` §5 (Wahl 2009; Practical PERCIST, O 2016), §6 with the CMR/PMR/SMD/PMD codes
    and §7. The request has been validated (§1 rule 5), so the baseline has 1-5 targets, each with
    a SULpeak, a reference region and a hottest SULpeak at or above its threshold.

    :param timeline: the validated, ordered timepoints.
    :param options: best-overall-response options.
    :returns: one :class:`~fhirnet.criteria.models.TimePointAssessment` per follow-up, with
        :class:`~fhirnet.criteria.models.PercistFigures` and the RECIST-style sum fields, then the
        best overall response, the progression date, the growth rate and the warnings.
    """
    # Validation guarantees a SULpeak on every baseline target, so max() has values.
    baseline_hottest = max(sul_peaks(timeline.targets, timeline.baseline).evaluable, key=_by_sul)
    warnings = list(modality_warnings(timeline))
    warnings += reference_warnings(
        timeline.baseline, reference_region(timeline.baseline.pet), baseline=True
    )
    results: list[TimePointAssessment] = []
    backdates: list[dt.date] = []
    for m, findings in zip(
        measure(timeline), sort_new_lesions(timeline, PERCIST_RULES), strict=True
    ):
        timepoint = m.timepoint
        reference = reference_region(timepoint.pet)
        warnings += reference_warnings(timepoint, reference, baseline=False)
        warnings += quality_warnings(timeline.baseline, timepoint)
        warnings += findings.warnings
        if findings.backdated_to is not None:
            backdates.append(findings.backdated_to)
        target = target_response(
            sul_peaks(timeline.targets, timepoint), baseline_hottest, reference
        )
        non_target = non_target_response(timeline.non_targets, timepoint, after_cr=False)
        overall = overall_response(
            target.category.response,
            non_target.response,
            findings.any_counted,
            target.declined_enough,
        )
        results.append(
            TimePointAssessment(
                date=timepoint.date,
                **size_fields(m),
                target_response=target.category.response,
                non_target_response=non_target.response,
                new_lesions=findings.any_counted,
                overall_response=overall,
                reasons=(
                    *reference_reasons(reference),
                    *target.category.reasons,
                    *non_target.reasons,
                    *new_lesion_reasons(findings),
                    *overall_reasons(target, non_target.response, findings.any_counted, overall),
                ),
                percist=percist_figures(target, baseline_hottest, reference),
            )
        )
    return finish(
        Criteria.PERCIST_1_0, timeline, options, results, backdates, warnings, codes=PERCIST_CODES
    )
