"""Best overall response with and without confirmation (``criteria.md`` §6).

RECIST 1.1 §4.4.3, §4.6 and Table 3; iRECIST Table 3; the confirmation rules follow admiralonco's
derivation (D17): at most one NE in between, no SD in between, CR then PR is not confirmed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from fhirnet.criteria.models import BestOverallResponse, Options, Response, TimePointAssessment


@dataclass(frozen=True, kw_only=True)
class ResponseCodes:
    """The codes one criteria uses for each rank of the best overall response."""

    complete: Response
    partial: Response
    stable: Response
    non_cr_non_pd: Response | None
    progression: Response
    unconfirmed_progression: Response | None = None


RECIST_CODES = ResponseCodes(
    complete=Response.CR,
    partial=Response.PR,
    stable=Response.SD,
    non_cr_non_pd=Response.NON_CR_NON_PD,
    progression=Response.PD,
)
IRECIST_CODES = ResponseCodes(
    complete=Response.ICR,
    partial=Response.IPR,
    stable=Response.ISD,
    non_cr_non_pd=Response.NON_ICR_NON_IUPD,
    progression=Response.ICPD,
    unconfirmed_progression=Response.IUPD,
)
PERCIST_CODES = ResponseCodes(
    complete=Response.CMR,
    partial=Response.PMR,
    stable=Response.SMD,
    non_cr_non_pd=None,
    progression=Response.PMD,
)


def best_overall_response(
    considered: Sequence[TimePointAssessment],
    *,
    baseline_date: dt.date,
    progression_date: dt.date | None,
    codes: ResponseCodes,
    options: Options,
) -> BestOverallResponse:
    """Rank the considered follow-ups: CR, PR, SD, NON-CR/NON-PD, PD, iUPD, NE (§6.3).

    :param considered: follow-ups in date order that may count (§6.2: before the progression
        date for the RECIST family, up to the first iCPD for iRECIST).
    :param progression_date: the date of progression (§6.1), ``None`` when there is none.
    """
    confirmed: bool | None = None
    if options.confirmation_required:
        confirmed = False

    def result(response: Response, date: dt.date | None) -> BestOverallResponse:
        is_response = response in (codes.complete, codes.partial)
        return BestOverallResponse(
            response=response,
            date=date,
            confirmed=None if confirmed is None else is_response,
        )

    for rank in (codes.complete, codes.partial):
        for index, timepoint in enumerate(considered):
            if timepoint.overall_response is rank and (
                not options.confirmation_required
                or _is_confirmed(considered, index, codes, options.confirmation_min_days)
            ):
                return result(rank, timepoint.date)

    def late_enough(timepoint: TimePointAssessment) -> bool:
        return (timepoint.date - baseline_date).days >= options.sd_min_days

    disease_control = (codes.complete, codes.partial, codes.stable)
    for timepoint in considered:
        if timepoint.overall_response in disease_control and late_enough(timepoint):
            return result(codes.stable, timepoint.date)
    if codes.non_cr_non_pd is not None:
        for timepoint in considered:
            if timepoint.overall_response is codes.non_cr_non_pd and late_enough(timepoint):
                return result(codes.non_cr_non_pd, timepoint.date)
    if progression_date is not None:
        return result(codes.progression, progression_date)
    if codes.unconfirmed_progression is not None:
        for timepoint in considered:
            if timepoint.overall_response is codes.unconfirmed_progression:
                return result(codes.unconfirmed_progression, timepoint.date)
    return result(Response.NE, None)


def _is_confirmed(
    considered: Sequence[TimePointAssessment], index: int, codes: ResponseCodes, min_days: int
) -> bool:
    """Whether the CR/PR at ``index`` is confirmed by a later one at least ``min_days`` later.

    In between: only CR/PR (only CR for a CR) or NE, at most one NE, and no PR after a CR (D17).
    """
    first = considered[index]
    is_complete = first.overall_response is codes.complete
    seen_complete = is_complete
    not_evaluated = 0
    for later in considered[index + 1 :]:
        response = later.overall_response
        if (later.date - first.date).days >= min_days and (
            response is codes.complete
            or (not is_complete and response is codes.partial and not seen_complete)
        ):
            return True
        if response is Response.NE:
            not_evaluated += 1
            if not_evaluated > 1:
                return False
        elif response is codes.complete:
            seen_complete = True
        elif response is codes.partial and not is_complete and not seen_complete:
            continue
        else:
            return False
    return False
