"""What earlier follow-ups mean for the current one (``criteria.md`` §2.1 rule 6, §2.4).

A partial response continues until the targets progress (D16), and a lesion that comes back after
an overall complete response is progression only when that CR was definitive (D15).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from fhirnet.criteria.models import Options, Response, TimePointAssessment


@dataclass(frozen=True, kw_only=True)
class PriorCr:
    """The overall CR §2.4 looks back to, whether it is definitive, and why (D15)."""

    date: dt.date
    definitive: bool
    why: str  # e.g. "confirmed by the CR of 2025-03-03, 28 days before it"


def prior_complete_response(
    earlier: Sequence[TimePointAssessment], *, complete: Response, options: Options
) -> PriorCr | None:
    """The latest earlier follow-up whose overall response is not NE, if it is a CR (§2.4).

    The CR is definitive when confirmation is not required, or when an earlier CR lies at least
    ``confirmationMinDays`` before it with only CR or NE (at most one NE) in between (EORTC FAQ:
    "CR (overall) was definitively assigned at the previous assessment"; D15).

    :param earlier: the follow-ups already assessed, in date order.
    :param complete: the criteria's CR code (``CR`` or ``iCR``).
    """
    evaluated = [i for i, r in enumerate(earlier) if r.overall_response is not Response.NE]
    if not evaluated or earlier[evaluated[-1]].overall_response is not complete:
        return None
    index = evaluated[-1]
    date = earlier[index].date
    if not options.confirmation_required:
        return PriorCr(date=date, definitive=True, why="confirmation is not required")
    min_days = options.confirmation_min_days
    not_evaluated = 0
    for before in reversed(earlier[:index]):
        if before.overall_response is Response.NE:
            not_evaluated += 1
            if not_evaluated > 1:
                break
        elif before.overall_response is not complete:
            break
        elif (date - before.date).days >= min_days:
            return PriorCr(
                date=date,
                definitive=True,
                why=f"confirmed by the {complete} of {before.date}, {(date - before.date).days} "
                "days before it",
            )
    return PriorCr(
        date=date,
        definitive=False,
        why=f"no earlier {complete} at least {min_days} days before it with only {complete} or "
        "NE (at most one NE) in between",
    )


def partial_response_since(
    since: dt.date | None, target: Response | None, date: dt.date
) -> dt.date | None:
    """The first follow-up of the current run of target PR (or CR), after this follow-up.

    A target PR or CR starts the run, only a target PD ends it; NE and the overall response
    (non-targets, new lesions) leave it alone (``criteria.md`` §2.1 rule 6, D16). Categories
    are in RECIST 1.1 codes, so iRECIST's target iUPD is ``PD`` here.
    """
    if target is Response.PD:
        return None
    if since is None and target in (Response.PR, Response.CR):
        return date
    return since
