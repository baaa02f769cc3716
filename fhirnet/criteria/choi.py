"""Choi criteria (Choi 2007): size or CT density change, for cytostatic targeted agents.

Lesion values, nadir, non-targets, new lesions and reappearance after CR are those of RECIST 1.1,
target selection that of RECIST 1.0 (10 targets, 5 per organ) (``criteria.md`` §4, D5); the target
response combines a 10 % size change with a 15 % density change, and new or enlarging intratumoral
nodules are progression. RECIST's continuing PR (§2.1 rule 6) does not apply: no source defines it
for Choi.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from fhirnet.criteria.assembly import finish
from fhirnet.criteria.figures import describe_change, mm, size_fields
from fhirnet.criteria.models import (
    Assessment,
    ChoiFigures,
    Criteria,
    IntratumoralNodules,
    Options,
    Response,
    TimePointAssessment,
)
from fhirnet.criteria.new_lesions import RECIST_RULES, NewLesionSorter
from fhirnet.criteria.recist import (
    Category,
    after_complete_response,
    is_complete_response,
    new_lesion_reasons,
    non_target_response,
    overall_reason,
    overall_response,
    reappearance_after_cr,
)
from fhirnet.criteria.response_history import prior_complete_response
from fhirnet.criteria.thresholds import (
    CHOI_DENSITY_DECREASE,
    CHOI_SIZE_CHANGE,
    at_least,
    percent,
    relative_change,
    rounded,
)
from fhirnet.criteria.timeline import LesionValue, Measured, Timeline, lesion_values, measure
from fhirnet.criteria.warnings import modality_warnings

GROWING_NODULES = (IntratumoralNodules.NEW, IntratumoralNodules.ENLARGING)


def mean_density(values: Sequence[LesionValue]) -> Decimal | None:
    """Mean HU of the targets with a measured diameter above 0 (D6).

    Too-small and disappeared lesions have no measurable density; ``None`` if no target is left
    or one of them lacks ``densityHu``.
    """
    measured = [v for v in values if v.mm is not None and v.mm > 0 and not v.too_small]
    densities = [_density(v) for v in measured]
    known = [d for d in densities if d is not None]
    if not measured or len(known) < len(measured):
        return None
    return sum(known, Decimal(0)) / len(known)


def _density(value: LesionValue) -> Decimal | None:
    return None if value.measured is None else value.measured.density_hu


def target_response(
    m: Measured, density: Decimal | None, baseline_density: Decimal, *, after_cr: bool
) -> Category:
    """Choi target response (``criteria.md`` §4; Choi 2007 table).

    Order: reappearance after CR, CR, NE, PR by size alone when density is unknown, PD (size up
    >= 10 % from the nadir, D3, without a >= 15 % density decrease), PR (size down >= 10 % from
    baseline or density down >= 15 %), SD.
    """
    if after_cr and (back := reappearance_after_cr(m.values)) is not None:
        return back
    if is_complete_response(m.values):
        return Category(
            response=Response.CR,
            reasons=("every target lesion has disappeared (nodes below 10 mm): target CR (Choi)",),
        )
    missing = [v.lesion.id for v in m.values if not v.evaluable]
    if m.sum_mm is None:
        return Category(
            response=Response.NE,
            reasons=(
                f"target(s) {', '.join(missing)} not evaluable: target NE "
                "(Choi has no partial-sum rule)",
            ),
        )
    size = m.sum_mm
    size_vs_baseline = relative_change(size, m.baseline_sum_mm)
    shrank = size_vs_baseline is not None and at_least(-size_vs_baseline, CHOI_SIZE_CHANGE)
    baseline_words = describe_change(size, m.baseline_sum_mm, "baseline")
    if density is None:
        if shrank:
            return Category(
                response=Response.PR,
                reasons=(
                    f"sum of diameters {mm(size)} is {baseline_words}: PR by size alone "
                    "(>= 10% decrease; no measurable density, Choi 2007)",
                ),
            )
        return Category(
            response=Response.NE,
            reasons=(
                f"no target has a measurable density and the sum {mm(size)} is "
                f"{baseline_words}, short of the 10% decrease that PR by size needs: target NE",
            ),
        )
    density_change = relative_change(density, baseline_density)
    denser_drop = density_change is not None and at_least(-density_change, CHOI_DENSITY_DECREASE)
    density_words = (
        f"mean density {rounded(density)} HU is {_signed(density_change)} vs baseline "
        f"{rounded(baseline_density)} HU"
    )
    grew = _grew_from_nadir(size, m.nadir_sum_mm)
    nadir_words = describe_change(size, m.nadir_sum_mm, f"the nadir of {m.nadir_date}")
    if grew and not denser_drop:
        return Category(
            response=Response.PD,
            reasons=(
                f"sum of diameters {mm(size)} is {nadir_words} (>= 10% increase) and the "
                f"{density_words}, not a >= 15% decrease: PD (Choi 2007)",
            ),
        )
    if shrank or denser_drop:
        why = []
        if shrank:
            why.append(f"sum of diameters {mm(size)} is {baseline_words} (>= 10% decrease)")
        if denser_drop:
            why.append(f"{density_words} (>= 15% decrease)")
        return Category(response=Response.PR, reasons=(f"{' and '.join(why)}: PR (Choi 2007)",))
    return Category(
        response=Response.SD,
        reasons=(
            f"sum of diameters {mm(size)} is {baseline_words} and {nadir_words}; {density_words}: "
            "neither PR (>= 10% size or >= 15% density decrease) nor PD (>= 10% size increase "
            "without that density decrease): SD (Choi 2007)",
        ),
    )


def _grew_from_nadir(size: Decimal, nadir: Decimal) -> bool:
    """Size increase of at least 10 % over the nadir (D3); from a nadir of 0, any size > 0."""
    change = relative_change(size, nadir)
    return size > 0 if change is None else at_least(change, CHOI_SIZE_CHANGE)


def _signed(change: Decimal | None) -> str:
    if change is None:
        return "not comparable"
    value = percent(change)
    return f"{'+' if change >= 0 else ''}{value}%"


def assess_choi(timeline: Timeline, options: Options) -> Assessment:
    """Assess every follow-up under Choi, then the best overall response (§4, §6, §7)."""
    baseline_density = mean_density(lesion_values(timeline.targets, timeline.baseline))
    if baseline_density is None:  # validation guarantees densities at baseline
        raise ValueError("Choi needs every baseline target's densityHu")
    results: list[TimePointAssessment] = []
    warnings = list(modality_warnings(timeline))
    backdates: list[dt.date] = []
    sorter = NewLesionSorter(timeline=timeline, rules=RECIST_RULES)
    for m in measure(timeline):
        prior = prior_complete_response(results, complete=Response.CR, options=options)
        after_cr = after_complete_response(prior, m, timeline.non_targets)
        density = mean_density(m.values)
        target = target_response(m, density, baseline_density, after_cr=after_cr.applies)
        non_target = non_target_response(
            timeline.non_targets, m.timepoint, after_cr=after_cr.applies
        )
        # Intratumoral nodules are not "other evidence" for a 10-15 mm new node (D28).
        findings = sorter.sort(
            m.timepoint, other_progression=Response.PD in (target.response, non_target.response)
        )
        nodules = m.timepoint.intratumoral_nodules
        overall = overall_response(target.response, non_target.response, findings.any_counted)
        reasons = [
            *after_cr.reasons,
            *target.reasons,
            *non_target.reasons,
            *new_lesion_reasons(findings),
        ]
        if nodules in GROWING_NODULES:
            overall = Response.PD
            reasons.append(f"intratumoral nodules are {nodules}: PD (Choi 2007)")
        reasons.append(
            overall_reason(target.response, non_target.response, findings.any_counted, overall)
        )
        warnings += [*after_cr.warnings, *findings.warnings]
        if findings.backdated_to is not None:
            backdates.append(findings.backdated_to)
        density_change = None if density is None else relative_change(density, baseline_density)
        results.append(
            TimePointAssessment(
                date=m.timepoint.date,
                **size_fields(m),
                target_response=target.response,
                non_target_response=non_target.response,
                new_lesions=findings.any_counted,
                overall_response=overall,
                reasons=tuple(reasons),
                choi=ChoiFigures(
                    mean_density_hu=rounded(density),
                    density_change_from_baseline_pct=percent(density_change),
                ),
            )
        )
    return finish(Criteria.CHOI, timeline, options, results, backdates, warnings)
