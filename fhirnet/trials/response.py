"""Best overall response, confirmation and progression from per-visit overall responses.

The ranking is ``criteria.md`` §6.3 (RECIST 1.1 §4.4.3, §4.6 and Table 3) with the codes of
:mod:`fhirnet.criteria.best_response`; confirmation is admiralonco's
``derive_param_confirmed_bor`` with its two parameters: at most ``max_ne_between`` NE between a
response and its confirmation, and at most one SD between a PR and its confirmation when
``accept_sd_between``. With the defaults (1, false) it is exactly ``criteria.md``'s D17, which
``tests/trials/test_response.py`` checks against :func:`fhirnet.criteria.best_response.
best_overall_response`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from fhirnet.criteria.best_response import (
    IRECIST_CODES,
    PERCIST_CODES,
    RECIST_CODES,
    ResponseCodes,
)
from fhirnet.criteria.models import Criteria, Response
from fhirnet.trials.models import DatedResponse, EndpointOptions

#: The best-overall-response codes of each criteria; Choi has no NON-CR/NON-PD (§4).
CHOI_CODES = ResponseCodes(
    complete=Response.CR,
    partial=Response.PR,
    stable=Response.SD,
    non_cr_non_pd=None,
    progression=Response.PD,
)
CODES: Mapping[Criteria, ResponseCodes] = MappingProxyType(
    {
        Criteria.RECIST_1_1: RECIST_CODES,
        Criteria.IRECIST: IRECIST_CODES,
        Criteria.CHOI: CHOI_CODES,
        Criteria.PERCIST_1_0: PERCIST_CODES,
    }
)


def overall_codes(criteria: Criteria) -> frozenset[Response]:
    """Every overall response code a visit may carry under ``criteria`` (``assessment-api.md``)."""
    codes = CODES[criteria]
    found = {
        codes.complete,
        codes.partial,
        codes.stable,
        codes.progression,
        codes.non_cr_non_pd,
        codes.unconfirmed_progression,
        Response.NE,
    }
    return frozenset(code for code in found if code is not None)


@dataclass(frozen=True, kw_only=True)
class Assessed:
    """One follow-up's date and overall response, as the derivations read it."""

    date: dt.date
    response: Response


def progression_date(visits: Sequence[Assessed], codes: ResponseCodes) -> dt.date | None:
    """The date of first progression (``criteria.md`` §6.1, D19).

    RECIST 1.1, Choi, PERCIST: the first PD/PMD. iRECIST: the iUPD that opened the first episode
    confirmed by iCPD — the first iUPD after the last response other than iUPD and NE before that
    iCPD (iUPD, iUPD, iCPD → the first iUPD; iUPD, iPR, iUPD, iCPD → the second); an iCPD with no
    such iUPD is its own date. ``None`` without progression (an unconfirmed iUPD is none).
    """
    for index, visit in enumerate(visits):
        if visit.response is not codes.progression:
            continue
        if codes.unconfirmed_progression is None:
            return visit.date
        opened = visit.date
        for earlier in reversed(visits[:index]):
            if earlier.response is codes.unconfirmed_progression:
                opened = earlier.date
            elif earlier.response is not Response.NE:
                break
        return opened
    return None


def considered(visits: Sequence[Assessed], codes: ResponseCodes) -> list[Assessed]:
    """The follow-ups that may count for the best response (``criteria.md`` §6.2): before the
    progression date (RECIST family), up to and including the first iCPD (iRECIST)."""
    if codes.unconfirmed_progression is not None:
        for index, visit in enumerate(visits):
            if visit.response is codes.progression:
                return list(visits[: index + 1])
        return list(visits)
    date = progression_date(visits, codes)
    return [visit for visit in visits if date is None or visit.date < date]


def is_confirmed(
    visits: Sequence[Assessed], index: int, codes: ResponseCodes, options: EndpointOptions
) -> bool:
    """Whether the CR/PR at ``index`` is confirmed (admiralonco ``derive_param_confirmed_bor``).

    A CR is confirmed by the first later CR at least ``confirmation_min_days`` later when every
    assessment up to it is CR or NE, with at most ``max_ne_between`` NE. A PR is confirmed by the
    first later CR or PR at least that much later when every assessment up to it is CR, PR, NE
    or (only with ``accept_sd_between``, at most one) SD, with at most ``max_ne_between`` NE,
    and no PR follows a CR (CR then PR is not a confirmed response, D17).
    """
    first = visits[index]
    complete = first.response is codes.complete
    confirming = (codes.complete,) if complete else (codes.complete, codes.partial)
    allowed = {codes.complete, Response.NE}
    if not complete:
        allowed |= {codes.partial, codes.stable}
    not_evaluated = stable = 0
    seen_complete = False
    for later in visits[index + 1 :]:
        response = later.response
        if response not in allowed:
            return False
        not_evaluated += response is Response.NE
        stable += response is codes.stable
        if response is codes.partial and seen_complete:
            return False
        seen_complete = seen_complete or response is codes.complete
        if (later.date - first.date).days >= options.confirmation_min_days and (
            response in confirming
        ):
            return not_evaluated <= options.max_ne_between and stable <= (
                1 if options.accept_sd_between else 0
            )
    return False


def best_overall_response(
    visits: Sequence[Assessed],
    *,
    reference_date: dt.date,
    codes: ResponseCodes,
    options: EndpointOptions,
    confirmation: bool,
) -> DatedResponse:
    """Rank the considered follow-ups (``criteria.md`` §6.3): CR, PR, SD, NON-CR/NON-PD, PD,
    iUPD, NE; with ``confirmation`` a CR or PR counts only when :func:`is_confirmed`.

    SD and NON-CR/NON-PD count from ``sd_min_days`` after the reference date (admiralonco:
    ``ADT >= TRTSDT + ref_start_window``), and a CR or PR that early counts as SD when it is not
    a (confirmed) response. ``date`` is the first assessment that satisfies the winning rule, the
    progression date for PD/iCPD, ``None`` for NE.

    :param visits: every follow-up in date order (this function takes §6.2's subset).
    """
    kept = considered(visits, codes)
    for rank in (codes.complete, codes.partial):
        for index, visit in enumerate(kept):
            if visit.response is rank and (
                not confirmation or is_confirmed(kept, index, codes, options)
            ):
                return DatedResponse(response=rank, date=visit.date)

    def late_enough(visit: Assessed) -> bool:
        return (visit.date - reference_date).days >= options.sd_min_days

    control = (codes.complete, codes.partial, codes.stable)
    for visit in kept:
        if visit.response in control and late_enough(visit):
            return DatedResponse(response=codes.stable, date=visit.date)
    for visit in kept:
        if visit.response is codes.non_cr_non_pd and late_enough(visit):
            return DatedResponse(response=codes.non_cr_non_pd, date=visit.date)
    progressed = progression_date(visits, codes)
    if progressed is not None:
        return DatedResponse(response=codes.progression, date=progressed)
    for visit in kept:
        if visit.response is codes.unconfirmed_progression:
            return DatedResponse(response=visit.response, date=visit.date)
    return DatedResponse(response=Response.NE, date=None)


def is_response(response: Response, codes: ResponseCodes) -> bool:
    """CR or PR (iCR, iPR; CMR, PMR): an objective response."""
    return response in (codes.complete, codes.partial)


def is_disease_control(response: Response, codes: ResponseCodes) -> bool:
    """CR, PR, SD or NON-CR/NON-PD of the criteria: disease control (and clinical benefit)."""
    return response in (codes.complete, codes.partial, codes.stable) or (
        codes.non_cr_non_pd is not None and response is codes.non_cr_non_pd
    )
