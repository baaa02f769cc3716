"""RECIST 1.1 (Eisenhauer 2009): target, non-target and overall timepoint responses.

The target and non-target rules here are also the building blocks of iRECIST and Choi, which reuse
them with their own codes and thresholds (``criteria.md`` §3, §4).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from fhirnet.criteria.assembly import finish
from fhirnet.criteria.figures import describe_change, mm, size_fields
from fhirnet.criteria.models import (
    Assessment,
    Criteria,
    NonTargetLesion,
    NonTargetStatus,
    Options,
    Response,
    TimePoint,
    TimePointAssessment,
)
from fhirnet.criteria.new_lesions import (
    RECIST_RULES,
    WHY_EQUIVOCAL,
    WHY_EQUIVOCAL_NODE,
    WHY_NEW_MODALITY,
    NewLesionFindings,
    NewLesionSorter,
)
from fhirnet.criteria.response_history import (
    PriorCr,
    partial_response_since,
    prior_complete_response,
)
from fhirnet.criteria.thresholds import (
    MEASURABLE_NODAL_MM,
    NODE_NORMAL_SHORT_AXIS_MM,
    RECIST_PD_ABSOLUTE_MM,
    RECIST_PD_INCREASE,
    RECIST_PR_DECREASE,
    at_least,
    at_most,
    less_than,
)
from fhirnet.criteria.timeline import LesionValue, Measured, Timeline, measure
from fhirnet.criteria.warnings import modality_warnings


@dataclass(frozen=True, kw_only=True)
class Category:
    """A response category with the sentences that justify it."""

    response: Response | None
    reasons: tuple[str, ...]


REAPPEARING_STATUSES = (
    NonTargetStatus.PRESENT,
    NonTargetStatus.INCREASED,
    NonTargetStatus.PROGRESSION,
)


def reappeared_targets(values: Sequence[LesionValue]) -> list[str]:
    """Targets seen again after a CR: non-nodal of any size (too small included), nodes from
    10 mm (RECIST 1.1 Table 3 note a; EORTC Q&A "abnormal lymph node"), e.g. ``T1 (3.0 mm)``."""
    return [
        f"{v.lesion.id} ({mm(v.mm)})"
        for v in values
        if v.mm is not None
        and (at_least(v.mm, NODE_NORMAL_SHORT_AXIS_MM) if v.lesion.nodal else v.mm > 0)
    ]


def reappeared_non_targets(baseline: Sequence[NonTargetLesion], timepoint: TimePoint) -> list[str]:
    """Baseline non-targets reported ``present``, ``increased`` or ``progression`` (§2.4)."""
    known = {lesion.id for lesion in baseline}
    return [
        f"{lesion.id} ({lesion.status})"
        for lesion in timepoint.non_targets
        if lesion.id in known and lesion.status in REAPPEARING_STATUSES
    ]


@dataclass(frozen=True, kw_only=True)
class AfterCr:
    """Whether §2.4 applies at a follow-up, and what it says there (D15)."""

    applies: bool
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def after_complete_response(
    prior: PriorCr | None, m: Measured, baseline_non_targets: Sequence[NonTargetLesion]
) -> AfterCr:
    """§2.4 after a definitive overall CR; after one that is not, ordinary rules and, when a
    lesion reappears, the ``unconfirmed-cr`` warning (``criteria.md`` §2.4, D15)."""
    if prior is None:
        return AfterCr(applies=False)
    back = [
        *reappeared_targets(m.values),
        *reappeared_non_targets(baseline_non_targets, m.timepoint),
    ]
    if not back:
        return AfterCr(applies=prior.definitive)
    names = ", ".join(back)
    if prior.definitive:
        return AfterCr(
            applies=True,
            reasons=(
                f"lesion(s) {names} reappeared after the overall CR of {prior.date}, which is "
                f"definitive ({prior.why}): judged as reappearance after CR (RECIST 1.1 Table 3 "
                "note a; criteria.md §2.4, D15)",
            ),
        )
    sentence = (
        f"lesion(s) {names} reappeared after the overall CR of {prior.date}, which is not "
        f"definitive ({prior.why}): judged by the ordinary rules, not as progression after CR "
        "(EORTC RECIST Q&A; criteria.md §2.4, D15)"
    )
    return AfterCr(
        applies=False,
        reasons=(sentence,),
        warnings=(f"unconfirmed-cr: on {m.timepoint.date.isoformat()} {sentence}",),
    )


def reappearance_after_cr(values: Sequence[LesionValue]) -> Category | None:
    """Target PD because a lesion came back after a definitive overall CR (D15), else ``None``.

    RECIST 1.1 Table 3 note a and the EORTC Q&A: after CR, a non-nodal target with any size
    (too small included) or a node of 10 mm or more is progression, whatever else is NE.
    """
    back = reappeared_targets(values)
    if not back:
        return None
    names = ", ".join(back)
    return Category(
        response=Response.PD,
        reasons=(
            f"target lesion(s) {names} reappeared after an overall CR: PD "
            "(RECIST 1.1 Table 3 note a; nodes count from 10 mm)",
        ),
    )


def is_complete_response(values: Sequence[LesionValue]) -> bool:
    """Every target evaluable, non-nodal ones 0 mm and nodes below 10 mm (RECIST 1.1 §4.3.1).

    A too-small non-nodal lesion (5 mm) is not 0; residual normal nodes may keep the sum above 0.
    """
    return all(
        v.mm is not None
        and (less_than(v.mm, NODE_NORMAL_SHORT_AXIS_MM) if v.lesion.nodal else v.mm == 0)
        for v in values
    )


def pd_against_nadir(total: Decimal, nadir: Decimal) -> bool:
    """``total >= 1.2 x nadir`` and ``total - nadir >= 5 mm`` (RECIST 1.1 §4.3.1)."""
    increase = total - nadir
    return at_least(increase, RECIST_PD_ABSOLUTE_MM) and at_least(
        increase, nadir * RECIST_PD_INCREASE
    )


def target_response(m: Measured, *, after_cr: bool) -> Category:
    """RECIST 1.1 target response of one follow-up (``criteria.md`` §2.1, §2.4).

    Order: reappearance after CR, CR, PD (a partial sum may already prove it), NE, PR, SD.
    """
    if not m.values:
        return Category(response=None, reasons=())
    if after_cr and (back := reappearance_after_cr(m.values)) is not None:
        return back
    if is_complete_response(m.values):
        return Category(
            response=Response.CR,
            reasons=(
                "every non-nodal target lesion has disappeared and every target node is below "
                "10 mm short axis: target CR (RECIST 1.1 §4.3.1)",
            ),
        )
    missing = [v.lesion.id for v in m.values if not v.evaluable]
    vs_nadir = describe_change(m.evaluable_sum_mm, m.nadir_sum_mm, f"the nadir of {m.nadir_date}")
    if pd_against_nadir(m.evaluable_sum_mm, m.nadir_sum_mm):
        if missing:
            reason = (
                f"target(s) {', '.join(missing)} not evaluable, but the evaluable targets alone "
                f"sum {mm(m.evaluable_sum_mm)}, {vs_nadir}: PD (>= 20% and >= 5 mm increase; "
                "missing lesions can only add, RECIST 1.1 §4.4.2)"
            )
        else:
            reason = (
                f"sum of diameters {mm(m.evaluable_sum_mm)} is {vs_nadir}: PD "
                "(>= 20% and >= 5 mm increase over the nadir, RECIST 1.1 §4.3.1)"
            )
        return Category(response=Response.PD, reasons=(reason,))
    if missing:
        return Category(
            response=Response.NE,
            reasons=(
                f"target(s) {', '.join(missing)} not evaluable and the evaluable targets "
                f"({mm(m.evaluable_sum_mm)}) do not prove PD: target NE (RECIST 1.1 §4.4.2)",
            ),
        )
    total = m.evaluable_sum_mm
    vs_baseline = describe_change(total, m.baseline_sum_mm, "baseline")
    if at_most(total, m.baseline_sum_mm * (1 - RECIST_PR_DECREASE)):
        return Category(
            response=Response.PR,
            reasons=(
                f"sum of diameters {mm(total)} is {vs_baseline}: PR "
                "(>= 30% decrease from baseline, RECIST 1.1 §4.3.1)",
            ),
        )
    return Category(
        response=Response.SD,
        reasons=(
            f"sum of diameters {mm(total)} is {vs_baseline}: neither PR (>= 30% decrease) nor PD "
            f"(it is {vs_nadir}; PD needs >= 20% and >= 5 mm increase)",
        ),
    )


def continuing_pr(target: Category, m: Measured, since: dt.date | None) -> Category:
    """Target SD by the numbers stays PR after an earlier target PR or CR (§2.1 rule 6, D16).

    EORTC RECIST Q&A "definition of SD": "a confirmed PR at a next visit is considered to be a
    continuing PR unless the criteria for PD are met" (165 -> 63 -> 65 mm: continued PR).

    :param since: the first follow-up of the current run of target PR/CR, ``None`` if none.
    """
    if since is None or target.response is not Response.SD or m.sum_mm is None:
        return target
    vs_baseline = describe_change(m.sum_mm, m.baseline_sum_mm, "baseline")
    vs_nadir = describe_change(m.sum_mm, m.nadir_sum_mm, f"the nadir of {m.nadir_date}")
    return Category(
        response=Response.PR,
        reasons=(
            f"sum of diameters {mm(m.sum_mm)} is {vs_baseline} and {vs_nadir}: SD by the "
            f"numbers, but the target response has been PR or better since {since} and only PD "
            'ends it: target PR, a continuing PR (EORTC RECIST Q&A "definition of SD"; '
            "criteria.md §2.1 rule 6, D16)",
        ),
    )


def non_target_response(
    baseline: Sequence[NonTargetLesion], timepoint: TimePoint, *, after_cr: bool
) -> Category:
    """RECIST 1.1 non-target response (``criteria.md`` §2.2, §2.4; RECIST 1.1 §4.3.3)."""
    if not baseline:
        return Category(response=None, reasons=())
    listed = {lesion.id: lesion.status for lesion in timepoint.non_targets}
    missing = NonTargetStatus.NOT_EVALUATED
    statuses = {lesion.id: listed.get(lesion.id, missing) for lesion in baseline}
    progressing = [i for i, s in statuses.items() if s is NonTargetStatus.PROGRESSION]
    if progressing:
        return Category(
            response=Response.PD,
            reasons=(
                f"non-target lesion(s) {', '.join(progressing)} show unequivocal progression: "
                "non-target PD (RECIST 1.1 §4.3.3)",
            ),
        )
    if after_cr:
        back = [i for i, s in statuses.items() if s in REAPPEARING_STATUSES]
        if back:
            return Category(
                response=Response.PD,
                reasons=(
                    f"non-target lesion(s) {', '.join(back)} reappeared after an overall CR: "
                    "non-target PD (RECIST 1.1 Table 3 note a)",
                ),
            )
    unseen = [i for i, s in statuses.items() if s is NonTargetStatus.NOT_EVALUATED]
    if unseen:
        return Category(
            response=Response.NE,
            reasons=(f"non-target lesion(s) {', '.join(unseen)} not evaluated: non-target NE",),
        )
    if all(s is NonTargetStatus.ABSENT for s in statuses.values()):
        return Category(
            response=Response.CR,
            reasons=("every non-target lesion has disappeared: non-target CR",),
        )
    return Category(
        response=Response.NON_CR_NON_PD,
        reasons=(
            "non-target lesion(s) persist without unequivocal progression: "
            "non-target NON-CR/NON-PD",
        ),
    )


DECISION = {WHY_EQUIVOCAL: "D12", WHY_NEW_MODALITY: "D11", WHY_EQUIVOCAL_NODE: "D28"}


def new_lesion_reasons(findings: NewLesionFindings) -> tuple[str, ...]:
    """Sentences on the new lesions of a follow-up: what counts and what does not (§2.3)."""
    reasons = [
        f"new lesion {lesion.id} ({lesion.site}"
        f"{', ' + lesion.modality if lesion.modality else ''}) counts as progression "
        "(RECIST 1.1 §4.3.5)"
        for lesion in findings.counted
    ]
    reasons += [
        f"new lesion {lesion.id} is equivocal: it does not count until confirmed "
        "(RECIST 1.1 §4.3.5)"
        for lesion in findings.equivocal
    ]
    reasons += [
        f"new lesion {lesion.id} is seen only on {lesion.modality}, a modality not used before: "
        "new baseline lesion, not progression"
        for lesion in findings.new_baseline
    ]
    reasons += [
        f"new lymph node {lesion.id} measures {mm(lesion.diameter_mm)} in short axis, below "
        f"{NODE_NORMAL_SHORT_AXIS_MM} mm: a normal node, not a new lesion (EORTC RECIST Q&A "
        '"new lymph node lesions"; criteria.md D28)'
        for lesion in findings.small_nodes
        if lesion.diameter_mm is not None
    ]
    reasons += [
        f"new lymph node {lesion.id} measures {mm(lesion.diameter_mm)} in short axis "
        f"({NODE_NORMAL_SHORT_AXIS_MM} to below {MEASURABLE_NODAL_MM} mm) and nothing else shows "
        "progression: equivocal, it does not count until listed again at "
        f"{NODE_NORMAL_SHORT_AXIS_MM} mm or more (EORTC RECIST Q&A; criteria.md §2.3, D28)"
        for lesion in findings.equivocal_nodes
        if lesion.diameter_mm is not None
    ]
    reasons += [
        f"new lesion {c.lesion_id}, first seen on {c.since} {c.why}, is now confirmed: "
        f"progression dates from {c.since} (RECIST 1.1 §4.3.5; criteria.md {DECISION[c.why]})"
        for c in findings.confirmed
    ]
    return tuple(reasons)


def overall_response(
    target: Response | None, non_target: Response | None, new_lesion: bool
) -> Response:
    """RECIST 1.1 Tables 1 and 2 (``criteria.md`` §2.5), in RECIST codes."""
    if Response.PD in (target, non_target) or new_lesion:
        return Response.PD
    if target is None:
        return non_target or Response.NE
    if target is Response.NE:
        return Response.NE
    if target is Response.CR:
        return Response.CR if non_target in (Response.CR, None) else Response.PR
    return target


def overall_reason(
    target: Response | None, non_target: Response | None, new_lesion: bool, overall: Response
) -> str:
    """One sentence tying the three components to the overall response."""
    parts = [
        f"target {target or 'none'}",
        f"non-target {non_target or 'none'}",
        "a counted new lesion" if new_lesion else "no counted new lesion",
    ]
    return f"{', '.join(parts)}: overall {overall}"


def assess_recist(timeline: Timeline, options: Options) -> Assessment:
    """Assess every follow-up under RECIST 1.1, then the best overall response (§2, §6, §7)."""
    results: list[TimePointAssessment] = []
    warnings = list(modality_warnings(timeline))
    backdates: list[dt.date] = []
    sorter = NewLesionSorter(timeline=timeline, rules=RECIST_RULES)
    pr_since: dt.date | None = None
    for m in measure(timeline):
        prior = prior_complete_response(results, complete=Response.CR, options=options)
        after_cr = after_complete_response(prior, m, timeline.non_targets)
        target = continuing_pr(target_response(m, after_cr=after_cr.applies), m, pr_since)
        pr_since = partial_response_since(pr_since, target.response, m.timepoint.date)
        non_target = non_target_response(
            timeline.non_targets, m.timepoint, after_cr=after_cr.applies
        )
        findings = sorter.sort(
            m.timepoint, other_progression=Response.PD in (target.response, non_target.response)
        )
        overall = overall_response(target.response, non_target.response, findings.any_counted)
        warnings += [*after_cr.warnings, *findings.warnings]
        if findings.backdated_to is not None:
            backdates.append(findings.backdated_to)
        results.append(
            TimePointAssessment(
                date=m.timepoint.date,
                **size_fields(m),
                target_response=target.response,
                non_target_response=non_target.response,
                new_lesions=findings.any_counted,
                overall_response=overall,
                reasons=(
                    *after_cr.reasons,
                    *target.reasons,
                    *non_target.reasons,
                    *new_lesion_reasons(findings),
                    overall_reason(
                        target.response, non_target.response, findings.any_counted, overall
                    ),
                ),
            )
        )
    return finish(Criteria.RECIST_1_1, timeline, options, results, backdates, warnings)
