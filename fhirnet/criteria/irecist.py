"""iRECIST (Seymour 2017): RECIST 1.1 with unconfirmed (iUPD) and confirmed (iCPD) progression.

Target and non-target categories are RECIST 1.1's (``recist.py``) written with the ``i`` prefix
(iRECIST Table 1); new lesions are split into new-lesion targets (NLT) and non-targets (NLNT),
and measured, in ``irecist_new_lesions.py``. What iRECIST adds lives here (``criteria.md`` §3, §6):

- a progression opens an *episode* (iUPD) that the next assessments confirm (iCPD), keep (iUPD)
  or reset (iSD, iPR, iCR, NON-iCR/NON-iUPD) — iRECIST Table 2 and the EORTC iRECIST FAQ;
  a scan fewer than 26 days after the iUPD neither confirms (but by a brand-new lesion) nor
  resets it (D26), and a trigger that cannot be assessed makes the scan NE (D27);
- after a non-target iUPD, only a non-target ``increased`` (further increase) confirms it (D18);
- the progression date is the iUPD of the first confirmed episode (admiralonco iRECIST vignette).

The module is one state machine and stays whole, above 450 lines: its transitions, the iCPD rules
a-e and the trigger statuses all read the same ``Evidence`` and ``Episode`` and together are
iRECIST Table 2, which reads best in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from fhirnet.criteria.assembly import assemble
from fhirnet.criteria.best_response import IRECIST_CODES
from fhirnet.criteria.figures import describe_change, mm, size_fields
from fhirnet.criteria.irecist_new_lesions import NewLesionTally, tally_new_lesions
from fhirnet.criteria.models import (
    Assessment,
    Criteria,
    IrecistFigures,
    NonTargetLesion,
    NonTargetStatus,
    Options,
    Response,
    TimePointAssessment,
)
from fhirnet.criteria.recist import (
    AfterCr,
    Category,
    after_complete_response,
    continuing_pr,
    non_target_response,
    overall_response,
    pd_against_nadir,  # the RECIST 1.1 §4.3.1 growth test, reused for new-lesion targets
    target_response,
)
from fhirnet.criteria.response_history import (
    PriorCr,
    partial_response_since,
    prior_complete_response,
)
from fhirnet.criteria.thresholds import (
    ICPD_WINDOW_MAX_DAYS,
    ICPD_WINDOW_MIN_DAYS,
    IRECIST_CONFIRM_INCREASE_MM,
    at_least,
    greater_than,
    less_than,
    rounded,
)
from fhirnet.criteria.timeline import Measured, Timeline, measure
from fhirnet.criteria.warnings import modality_warnings

#: RECIST 1.1 category -> iRECIST code (iRECIST Table 1; ``criteria.md`` §3).
I_CODES: Mapping[Response, Response] = MappingProxyType(
    {
        Response.CR: Response.ICR,
        Response.PR: Response.IPR,
        Response.SD: Response.ISD,
        Response.PD: Response.IUPD,
        Response.NE: Response.NE,
        Response.NON_CR_NON_PD: Response.NON_ICR_NON_IUPD,
    }
)

TABLE_2 = "iRECIST Table 2"


def i_code(response: Response | None) -> Response | None:
    """The iRECIST code of a RECIST 1.1 category; ``None`` (no such lesions) stays ``None``."""
    return None if response is None else I_CODES[response]


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids)


def _versus_iupd(value: Decimal, reference: Decimal, opened_on: dt.date) -> str:
    """``"6.0 mm above the 60.0 mm at iUPD on 2025-03-01"``: iCPD increases are in mm."""
    difference = value - reference
    direction = "above" if difference >= 0 else "below"
    return f"{mm(abs(difference))} {direction} the {mm(reference)} at iUPD on {opened_on}"


class Trigger(StrEnum):
    """A cause of iUPD that an episode remembers (``criteria.md`` §3.2)."""

    TARGET = "target lesions"
    NON_TARGET = "non-target lesions"
    NEW_LESIONS = "new lesions"


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What the state machine reads from one follow-up; categories are in RECIST 1.1 codes."""

    measured: Measured
    baseline_non_targets: tuple[NonTargetLesion, ...]
    target: Category
    non_target: Category
    new_lesions: NewLesionTally
    after_cr: AfterCr  # what §2.4 says here (D15)

    @property
    def date(self) -> dt.date:
        return self.measured.timepoint.date

    @property
    def has_targets(self) -> bool:
        return bool(self.measured.values)

    @property
    def target_sum_mm(self) -> Decimal | None:
        """The sum of diameters; ``None`` with a target NE or with no target lesions at all."""
        return self.measured.sum_mm if self.has_targets else None


@dataclass(frozen=True, kw_only=True)
class Episode:
    """An unconfirmed progression: its iUPD date, triggers and reference values (§3.2)."""

    opened_on: dt.date
    triggers: tuple[Trigger, ...]  # targets, non-targets, new lesions: in that order
    target_sum_mm: Decimal | None
    new_target_sum_mm: Decimal | None
    new_non_target_mm: Mapping[str, Decimal]
    new_lesion_ids: tuple[str, ...]  # lesions counted at the iUPD, in list order


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One follow-up's overall response, why, and the episode it leaves open or confirms."""

    response: Response
    reasons: tuple[str, ...]
    episode: Episode | None = None  # open after this follow-up
    confirms: Episode | None = None  # the episode an iCPD confirms
    warnings: tuple[str, ...] = ()  # icpd-window (D26)


@dataclass(frozen=True, kw_only=True)
class Confirmation:
    """The first iCPD: the episode it confirmed and its date."""

    of: Episode
    on: dt.date


@dataclass(frozen=True, kw_only=True)
class State:
    """What the state machine carries from one follow-up to the next."""

    episode: Episode | None = None  # open: the latest response that is not NE was iUPD
    confirmed: Confirmation | None = None  # iCPD is final (D18)
    partial_response_since: dt.date | None = None  # continuing iPR (§2.1 rule 6, D16)


def judge(evidence: Evidence, state: State) -> Verdict:
    """The overall iRECIST response of a follow-up (``criteria.md`` §3.2, in that order).

    :param evidence: the follow-up's RECIST 1.1 categories and its new-lesion tally.
    :param state: the episode open before it, and whether iCPD was already confirmed.
    :returns: iCPD after a confirmation; else the open-episode rules; else the no-episode rules.
    """
    if state.confirmed is not None:
        return _after_confirmation(state.confirmed)
    if state.episode is not None:
        return _in_episode(evidence, state.episode)
    return _without_episode(evidence)


def advance(state: State, verdict: Verdict, evidence: Evidence) -> State:
    """The state after a follow-up's verdict: NE keeps the episode, the first iCPD is kept, and
    the targets carry a run of iPR on (a target iUPD ends it, §2.1 rule 6)."""
    confirmed = state.confirmed
    if confirmed is None and verdict.confirms is not None:
        confirmed = Confirmation(of=verdict.confirms, on=evidence.date)
    return State(
        episode=verdict.episode,
        confirmed=confirmed,
        partial_response_since=partial_response_since(
            state.partial_response_since, evidence.target.response, evidence.date
        ),
    )


def _after_confirmation(confirmed: Confirmation) -> Verdict:
    return Verdict(
        response=Response.ICPD,
        reasons=(
            f"iCPD was confirmed on {confirmed.on} (of the iUPD on {confirmed.of.opened_on}) and "
            "is final: overall iCPD (criteria.md D18)",
        ),
        confirms=confirmed.of,
    )


def _without_episode(evidence: Evidence) -> Verdict:
    """No open episode: any trigger opens one (iUPD); else RECIST 1.1's table in ``i`` codes."""
    triggers = _triggers(evidence)
    if triggers:
        return Verdict(
            response=Response.IUPD,
            reasons=(
                f"{'; '.join(triggers.values())}: overall iUPD, an unconfirmed progression that "
                f"the next assessment confirms (iCPD) or not ({TABLE_2})",
            ),
            episode=_open_episode(evidence, tuple(triggers)),
        )
    response, reasons = _non_progression(evidence)
    return Verdict(response=response, reasons=reasons)


def _triggers(evidence: Evidence) -> dict[Trigger, str]:
    """The causes of a new iUPD, each with its sentence (``criteria.md`` §3.2, "no episode")."""
    found: dict[Trigger, str] = {}
    if evidence.target.response is Response.PD:
        found[Trigger.TARGET] = "target iUPD"
    if evidence.non_target.response is Response.PD:
        found[Trigger.NON_TARGET] = "non-target iUPD"
    tally = evidence.new_lesions
    if tally.brand_new:
        found[Trigger.NEW_LESIONS] = f"brand-new lesion(s) {_ids(tally.brand_new)}"
    elif (regrowth := _new_target_regrowth(tally)) is not None:
        found[Trigger.NEW_LESIONS] = regrowth
    return found


def _new_target_regrowth(tally: NewLesionTally) -> str | None:
    """NLT sum >= 1.2 x NLT nadir and >= nadir + 5 mm, after a reset (EORTC iRECIST FAQ).

    NLTs exist without an open episode only after a reset: their first count opened an episode.
    """
    total, nadir = tally.new_target_sum_mm, tally.new_target_nadir_mm
    if total is None or nadir is None or not pd_against_nadir(total, nadir):
        return None
    return (
        f"new-lesion target sum {mm(total)} is "
        f"{describe_change(total, nadir, 'the new-lesion target nadir')} (>= 20% and >= 5 mm, "
        "EORTC iRECIST FAQ: new lesions define progression)"
    )


def _open_episode(evidence: Evidence, triggers: tuple[Trigger, ...]) -> Episode:
    tally = evidence.new_lesions
    return Episode(
        opened_on=evidence.date,
        triggers=triggers,
        target_sum_mm=evidence.target_sum_mm,
        new_target_sum_mm=tally.new_target_sum_mm,
        new_non_target_mm=tally.new_non_target_mm,
        new_lesion_ids=tuple(lesion.id for lesion in tally.findings.counted),
    )


def _non_progression(evidence: Evidence) -> tuple[Response, tuple[str, ...]]:
    """RECIST 1.1 Tables 1-2 in ``i`` codes with no progressing new lesion (§3.2, §2.5).

    Already-counted new lesions still listed rule out iCR: iPR with targets, else NON-iCR/NON-iUPD.
    """
    target, non_target = i_code(evidence.target.response), i_code(evidence.non_target.response)
    response = I_CODES[
        overall_response(evidence.target.response, evidence.non_target.response, False)
    ]
    reasons = [
        f"target {target or 'none'}, non-target {non_target or 'none'}, no new lesion that "
        f"opens or holds an iUPD: overall {response} (RECIST 1.1 Tables 1-2 in iRECIST codes)"
    ]
    still = evidence.new_lesions.still_listed
    if response is Response.ICR and still:
        response = Response.IPR if evidence.has_targets else Response.NON_ICR_NON_IUPD
        reasons.append(
            f"new lesion(s) {_ids(still)}, counted before, are still listed: not iCR but "
            f"{response} (criteria.md §3.2)"
        )
    return response, tuple(reasons)


def _in_episode(evidence: Evidence, episode: Episode) -> Verdict:
    """An open episode is confirmed (iCPD), held by an early scan, kept open by NE, still iUPD,
    or reset (§3.2)."""
    since = f"the iUPD on {episode.opened_on}"
    days = (evidence.date - episode.opened_on).days
    early = days < ICPD_WINDOW_MIN_DAYS
    confirmations = _confirmations(evidence, episode, early=early)
    if confirmations:
        late = days > ICPD_WINDOW_MAX_DAYS
        return Verdict(
            response=Response.ICPD,
            reasons=confirmations,
            confirms=episode,
            warnings=(_late_warning(evidence, episode, days),) if late else (),
        )
    if early:
        return _too_early(evidence, episode, days)
    if evidence.has_targets and evidence.target.response is Response.NE:
        return Verdict(
            response=Response.NE,
            reasons=(f"target NE and nothing confirms {since}: NE, the episode stays open",),
            episode=episode,
        )
    unassessable = _unassessable_trigger(evidence, episode)
    if unassessable is not None:
        return Verdict(
            response=Response.NE,
            reasons=(
                f"{unassessable}: the growth that would confirm {since} cannot be excluded: NE, "
                "the episode stays open (criteria.md §3.2, D27)",
            ),
            episode=episode,
        )
    statuses = [_trigger_status(trigger, evidence, episode) for trigger in episode.triggers]
    active = [sentence for holds, sentence in statuses if holds]
    if active:
        return Verdict(
            response=Response.IUPD,
            reasons=(
                f"{'; '.join(active)}: {since} is neither confirmed nor resolved, "
                f"overall iUPD ({TABLE_2})",
            ),
            episode=episode,
        )
    return _reset(evidence, episode, [sentence for _, sentence in statuses])


def _window(days: int, episode: Episode) -> str:
    return f"{days} days after the iUPD on {episode.opened_on}"


def _too_early(evidence: Evidence, episode: Episode, days: int) -> Verdict:
    """A scan fewer than 26 days after the iUPD neither confirms (but by a brand-new lesion) nor
    resets it: iUPD, whatever it shows (EORTC iRECIST FAQ; ``criteria.md`` §3.2, D26)."""
    window = _window(days, episode)
    return Verdict(
        response=Response.IUPD,
        reasons=(
            f"this exam is {window}, fewer than {ICPD_WINDOW_MIN_DAYS} (4 weeks less 2 days): "
            "only a brand-new lesion could confirm the iUPD, and it can neither confirm nor "
            "reset it otherwise: overall iUPD (EORTC iRECIST FAQ; criteria.md §3.2, D26)",
        ),
        episode=episode,
        warnings=(
            f"icpd-window: the exam of {evidence.date.isoformat()} is {window}, fewer than "
            f"{ICPD_WINDOW_MIN_DAYS} days: it can neither confirm (except by a brand-new lesion) "
            "nor reset that iUPD, which stays iUPD (EORTC iRECIST FAQ; criteria.md D26)",
        ),
    )


def _late_warning(evidence: Evidence, episode: Episode, days: int) -> str:
    """``icpd-window`` for a confirmation more than 58 days after the iUPD (D26): it stands."""
    return (
        f"icpd-window: the iCPD of {evidence.date.isoformat()} is {_window(days, episode)}, more "
        f"than {ICPD_WINDOW_MAX_DAYS} days (8 weeks plus 2 days): the confirmation stands, but "
        "later than iRECIST recommends (EORTC iRECIST FAQ; criteria.md D26)"
    )


def _unassessable_trigger(evidence: Evidence, episode: Episode) -> str | None:
    """A trigger of the episode that this follow-up cannot assess, in words (D27), else ``None``:
    an NLT listed without a diameter (new lesions), a non-target not evaluated (non-targets)."""
    unmeasured = evidence.new_lesions.unmeasured_new_targets
    if Trigger.NEW_LESIONS in episode.triggers and unmeasured:
        return f"new-lesion target(s) {_ids(unmeasured)} listed without a diameter"
    unseen = _non_targets_with(evidence, NonTargetStatus.NOT_EVALUATED)
    if Trigger.NON_TARGET in episode.triggers and unseen:
        return f"non-target lesion(s) {_ids(unseen)} not evaluated"
    return None


def _reset(evidence: Evidence, episode: Episode, inactive: Sequence[str]) -> Verdict:
    """No trigger is active: the episode closes with the non-progression outcome (D18).

    With no target lesions and non-targets not evaluated that outcome is NE, which keeps the
    episode open: an episode is open while the latest response that is not NE is iUPD.
    """
    response, reasons = _non_progression(evidence)
    if response is Response.NE:
        return Verdict(
            response=Response.NE,
            reasons=(
                f"{'; '.join(inactive)}, but the assessment is NE: the iUPD on "
                f"{episode.opened_on} stays open",
                *reasons,
            ),
            episode=episode,
        )
    return Verdict(
        response=response,
        reasons=(
            f"{'; '.join(inactive)}: the iUPD on {episode.opened_on} is not confirmed and resets "
            f"({TABLE_2}; criteria.md D18)",
            *reasons,
        ),
    )


def _confirmations(evidence: Evidence, episode: Episode, *, early: bool) -> tuple[str, ...]:
    """Every iCPD rule a-e that holds, as sentences (``criteria.md`` §3.2; iRECIST Table 2).

    On a scan fewer than 26 days after the iUPD only rule a (a brand-new lesion) may confirm
    (D26).
    """
    if early:
        first = _more_new_lesions(evidence, episode)
        return () if first is None else (first,)
    rules = (
        _more_new_lesions(evidence, episode),
        _non_target_progression(evidence, episode),
        _target_further_increase(evidence, episode),
        _target_newly_progressing(evidence, episode),
        _new_target_further_increase(evidence, episode),
        *_new_non_targets_growing(evidence, episode),
    )
    return tuple(rule for rule in rules if rule is not None)


def _more_new_lesions(evidence: Evidence, episode: Episode) -> str | None:
    """Rule a: a brand-new lesion (an increase in the number of new lesions)."""
    brand_new = evidence.new_lesions.brand_new
    if not brand_new:
        return None
    return (
        f"brand-new lesion(s) {_ids(brand_new)} after the iUPD on {episode.opened_on}: iCPD "
        f"(increase in the number of new lesions, {TABLE_2})"
    )


def _non_targets_with(evidence: Evidence, status: NonTargetStatus) -> list[str]:
    """Baseline non-targets with ``status`` at this follow-up; missing ones are not evaluated."""
    listed = {lesion.id: lesion.status for lesion in evidence.measured.timepoint.non_targets}
    return [
        lesion.id
        for lesion in evidence.baseline_non_targets
        if listed.get(lesion.id, NonTargetStatus.NOT_EVALUATED) is status
    ]


def _non_target_progression(evidence: Evidence, episode: Episode) -> str | None:
    """Rule b (v2): after a non-target iUPD a further increase (``increased``) confirms; after
    another iUPD the non-targets newly in progression do (EORTC iRECIST FAQ "iUPD driven by
    non-target disease"; D18). An unchanged ``progression`` does not confirm."""
    if Trigger.NON_TARGET in episode.triggers:
        increased = _non_targets_with(evidence, NonTargetStatus.INCREASED)
        if not increased:
            return None
        return (
            f"non-target lesion(s) {_ids(increased)} increased further after the non-target "
            f"iUPD on {episode.opened_on}: iCPD (a further increase of non-target disease, "
            f"{TABLE_2}; EORTC iRECIST FAQ; criteria.md D18)"
        )
    progressing = _non_targets_with(evidence, NonTargetStatus.PROGRESSION)
    if not progressing:
        return None
    return (
        f"non-target lesion(s) {_ids(progressing)} in unequivocal progression, while the iUPD on "
        f"{episode.opened_on} came from {_ids(episode.triggers)}: iCPD (progression in a new "
        f"category, {TABLE_2})"
    )


def _target_further_increase(evidence: Evidence, episode: Episode) -> str | None:
    """Rule c: target-driven iUPD and >= 5 mm more than at the iUPD, cumulatively (iFAQ)."""
    reference = episode.target_sum_mm
    if Trigger.TARGET not in episode.triggers or reference is None:
        return None
    total = evidence.measured.evaluable_sum_mm
    if not at_least(total - reference, IRECIST_CONFIRM_INCREASE_MM):
        return None
    what = "target sum" if evidence.measured.sum_mm is not None else "sum of the evaluable targets"
    return (
        f"{what} {mm(total)} is {_versus_iupd(total, reference, episode.opened_on)}: iCPD "
        f"(>= 5 mm further increase, {TABLE_2})"
    )


def _target_newly_progressing(evidence: Evidence, episode: Episode) -> str | None:
    """Rule d: targets were not a trigger and now meet iUPD (progression in a new category)."""
    if Trigger.TARGET in episode.triggers or evidence.target.response is not Response.PD:
        return None
    return (
        f"target iUPD, while the iUPD on {episode.opened_on} came from "
        f"{_ids(episode.triggers)}: iCPD (progression in a new category, {TABLE_2})"
    )


def _new_target_further_increase(evidence: Evidence, episode: Episode) -> str | None:
    """Rule e, targets: NLT sum >= NLT sum at the iUPD + 5 mm."""
    reference, total = episode.new_target_sum_mm, evidence.new_lesions.new_target_sum_mm
    if reference is None or total is None:
        return None
    if not at_least(total - reference, IRECIST_CONFIRM_INCREASE_MM):
        return None
    return (
        f"new-lesion target sum {mm(total)} is {_versus_iupd(total, reference, episode.opened_on)}"
        f": iCPD (>= 5 mm increase of new-lesion targets, {TABLE_2})"
    )


def _new_non_targets_growing(evidence: Evidence, episode: Episode) -> Iterator[str]:
    """Rule e, non-targets: any NLNT larger than at the iUPD (any increase, iFAQ)."""
    for lesion_id, reference in episode.new_non_target_mm.items():
        size = evidence.new_lesions.new_non_target_mm.get(lesion_id)
        if size is not None and greater_than(size, reference):
            yield (
                f"new-lesion non-target {lesion_id} measures {mm(size)}, "
                f"{_versus_iupd(size, reference, episode.opened_on)}: iCPD (any increase of a "
                f"new-lesion non-target, {TABLE_2})"
            )


def _trigger_status(trigger: Trigger, evidence: Evidence, episode: Episode) -> tuple[bool, str]:
    """Whether an episode's trigger still holds the iUPD, with the sentence saying why (§3.2)."""
    if trigger is Trigger.TARGET:
        return _target_status(evidence, episode)
    if trigger is Trigger.NON_TARGET:
        return _non_target_status(evidence)
    return _new_lesion_status(evidence, episode)


def _non_target_status(evidence: Evidence) -> tuple[bool, str]:
    """Non-targets hold the iUPD while one is still reported ``progression``; ``present`` and
    ``increased`` let them leave it (``criteria.md`` §3.2, D18)."""
    progressing = _non_targets_with(evidence, NonTargetStatus.PROGRESSION)
    if progressing:
        return True, (
            f"non-target lesion(s) {_ids(progressing)} still reported in unequivocal progression, "
            "without further increase (criteria.md D18)"
        )
    return False, (
        f"non-target lesions are no longer in progression (non-target "
        f"{i_code(evidence.non_target.response)}, criteria.md D18)"
    )


def _target_status(evidence: Evidence, episode: Episode) -> tuple[bool, str]:
    """Targets hold the iUPD while their category is iUPD (EORTC iRECIST FAQ scenario D)."""
    if evidence.target.response is not Response.PD:
        return False, (
            f"target lesions are no longer in progression (target "
            f"{i_code(evidence.target.response)}; EORTC iRECIST FAQ scenario D)"
        )
    reference = episode.target_sum_mm
    if reference is None:
        return True, "target lesions still meet iUPD (no target sum at iUPD to compare with)"
    total = evidence.measured.evaluable_sum_mm
    return True, (
        f"target lesions still meet iUPD; their sum {mm(total)} is "
        f"{_versus_iupd(total, reference, episode.opened_on)}, short of the "
        f"{IRECIST_CONFIRM_INCREASE_MM} mm further increase that confirms"
    )


def _new_lesion_status(evidence: Evidence, episode: Episode) -> tuple[bool, str]:
    """New lesions hold the iUPD while listed and the targets have not shrunk below the iUPD.

    EORTC iRECIST FAQ scenarios: B (shrinking targets reset it), F (no change keeps it).
    """
    still = [i for i in evidence.new_lesions.present if i in episode.new_lesion_ids]
    if not still:
        return (
            False,
            f"new lesion(s) {_ids(episode.new_lesion_ids)} of the iUPD are no longer listed",
        )
    total, reference = evidence.target_sum_mm, episode.target_sum_mm
    if total is not None and reference is not None and less_than(total, reference):
        return False, (
            f"new lesion(s) {_ids(still)} are still listed, but the target sum {mm(total)} is "
            f"below the {mm(reference)} at iUPD (EORTC iRECIST FAQ scenario B)"
        )
    if total is None or reference is None:
        targets = "no target sum shows shrinkage"
    else:
        targets = f"the target sum {mm(total)} is not below the {mm(reference)} at iUPD"
    return True, (
        f"new lesion(s) {_ids(still)} of the iUPD are still listed and {targets} "
        "(EORTC iRECIST FAQ scenario F)"
    )


def assess_irecist(timeline: Timeline, options: Options) -> Assessment:
    """Assess every follow-up under iRECIST, then best overall response and progression.

    iRECIST, Seymour 2017 (Lancet Oncol 18:e143), Tables 1-3, and the EORTC iRECIST FAQ, as
    ``criteria.md`` §3 (timepoints), §6 (best response, progression date) and §7 (growth rate).

    :param timeline: the validated, ordered timepoints.
    :param options: best-overall-response options.
    :returns: one assessment per follow-up with ``irecist`` figures, the BOR over the follow-ups
        up to the first iCPD, and the date of the iUPD that iCPD confirmed as progression date.
    """
    state = State()
    results: list[TimePointAssessment] = []
    warnings = list(modality_warnings(timeline))
    for measured, tally in zip(measure(timeline), tally_new_lesions(timeline), strict=True):
        prior = prior_complete_response(results, complete=Response.ICR, options=options)
        evidence = _evidence(timeline, measured, tally, state, prior=prior)
        verdict = judge(evidence, state)
        results.append(_timepoint(evidence, verdict))
        warnings += [*evidence.after_cr.warnings, *tally.findings.warnings, *verdict.warnings]
        state = advance(state, verdict, evidence)
    return _finish(timeline, options, results, state.confirmed, warnings)


def _evidence(
    timeline: Timeline,
    measured: Measured,
    tally: NewLesionTally,
    state: State,
    *,
    prior: PriorCr | None,
) -> Evidence:
    """RECIST 1.1 target and non-target categories of a follow-up, with §2.4 after a definitive
    iCR (D15), the continuing iPR (§2.1 rule 6, D16) and ``increased`` non-targets inside a
    non-target iUPD episode (§2.2, D18)."""
    after_cr = after_complete_response(prior, measured, timeline.non_targets)
    target = continuing_pr(
        target_response(measured, after_cr=after_cr.applies),
        measured,
        state.partial_response_since,
    )
    non_target = non_target_response(
        timeline.non_targets, measured.timepoint, after_cr=after_cr.applies
    )
    episode = state.episode if state.confirmed is None else None
    if episode is not None and Trigger.NON_TARGET in episode.triggers:
        non_target = _increased_non_targets(timeline, measured, non_target, episode)
    return Evidence(
        measured=measured,
        baseline_non_targets=timeline.non_targets,
        target=target,
        non_target=non_target,
        new_lesions=tally,
        after_cr=after_cr,
    )


def _increased_non_targets(
    timeline: Timeline, measured: Measured, category: Category, episode: Episode
) -> Category:
    """Inside an episode whose iUPD had non-target iUPD, ``increased`` is non-target iUPD
    (``criteria.md`` §2.2 exception; EORTC iRECIST FAQ "iUPD driven by non-target disease")."""
    if category.response is Response.PD:
        return category
    known = {lesion.id for lesion in timeline.non_targets}
    increased = [
        lesion.id
        for lesion in measured.timepoint.non_targets
        if lesion.id in known and lesion.status is NonTargetStatus.INCREASED
    ]
    if not increased:
        return category
    return Category(
        response=Response.PD,
        reasons=(
            f"non-target lesion(s) {_ids(increased)} increased further after the non-target "
            f"iUPD on {episode.opened_on}: non-target iUPD (criteria.md §2.2, D18)",
        ),
    )


def _timepoint(evidence: Evidence, verdict: Verdict) -> TimePointAssessment:
    return TimePointAssessment(
        date=evidence.date,
        **size_fields(evidence.measured),
        target_response=i_code(evidence.target.response),
        non_target_response=i_code(evidence.non_target.response),
        new_lesions=evidence.new_lesions.findings.any_counted,
        overall_response=verdict.response,
        reasons=(
            *evidence.after_cr.reasons,
            *evidence.target.reasons,
            *evidence.non_target.reasons,
            _codes_reason(evidence),
            *evidence.new_lesions.reasons,
            *verdict.reasons,
        ),
        irecist=IrecistFigures(
            new_lesion_sum_mm=rounded(evidence.new_lesions.new_target_sum_mm),
            confirmation_of=None if verdict.confirms is None else verdict.confirms.opened_on,
        ),
    )


def _codes_reason(evidence: Evidence) -> str:
    """The RECIST 1.1 categories above, in the iRECIST codes the output uses."""
    parts = [
        f"{name} {code} is {I_CODES[code]}"
        for name, code in (
            ("target", evidence.target.response),
            ("non-target", evidence.non_target.response),
        )
        if code is not None
    ]
    return f"in iRECIST codes (Seymour 2017, Table 1): {', '.join(parts)}"


def _finish(
    timeline: Timeline,
    options: Options,
    results: Sequence[TimePointAssessment],
    confirmed: Confirmation | None,
    warnings: Sequence[str],
) -> Assessment:
    """Progression date (§6.1), BOR up to the first iCPD (§6.2, §6.3) and growth rate (§7)."""
    progression = None if confirmed is None else confirmed.of.opened_on
    return assemble(
        Criteria.IRECIST,
        timeline,
        options,
        results,
        progression=progression,
        considered=[r for r in results if confirmed is None or r.date <= confirmed.on],
        codes=IRECIST_CODES,
        warnings=warnings,
    )
