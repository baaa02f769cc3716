"""One subject's trial endpoints from one evaluator's per-visit overall responses.

``derive_endpoints`` is the entry point: study days and visit names, best overall response
(unconfirmed and confirmed), first response, duration of response, progression, progression-free
survival and clinical benefit, each explained in ``reasons``. Every definition and its source is
in ``docs/trials.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fhirnet.criteria.best_response import ResponseCodes
from fhirnet.criteria.models import Response
from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.trials.calendar import scheduled_visit, study_day
from fhirnet.trials.models import (
    CensoringReason,
    DatedResponse,
    SubjectEndpoints,
    SubjectRequest,
    TimeToEvent,
    VisitResult,
    VisitRole,
)
from fhirnet.trials.response import (
    CODES,
    Assessed,
    best_overall_response,
    considered,
    is_confirmed,
    is_disease_control,
    is_response,
    overall_codes,
    progression_date,
)


def derive_endpoints(request: SubjectRequest) -> SubjectEndpoints:
    """Derive every per-subject endpoint of ``docs/trials.md`` from one evaluator's reads.

    :param request: the visits in any order, the reference date, options, schedule, withdrawal.
    :returns: the endpoints, with one or more ``reasons`` sentences per number.
    :raises InvalidInputError: a response code the criteria does not use, a follow-up without a
        response, two visits on one date, or a withdrawal before the reference date; every
        problem with its path in the request.
    """
    validate(request)
    codes = CODES[request.criteria]
    options = request.options
    reference = request.reference_date
    visits = _visit_results(request)
    follow_ups = [
        Assessed(date=visit.date, response=visit.overall_response)
        for visit in visits
        if visit.role is VisitRole.FOLLOW_UP and visit.overall_response is not None
    ]
    baseline = next((v.date for v in visits if v.role is VisitRole.BASELINE), None)
    reasons: list[str] = [_baseline_reason(request, baseline, visits)]

    unconfirmed = best_overall_response(
        follow_ups, reference_date=reference, codes=codes, options=options, confirmation=False
    )
    confirmed = best_overall_response(
        follow_ups, reference_date=reference, codes=codes, options=options, confirmation=True
    )
    reasons.append(_bor_reason("best overall response (confirmation not required)", unconfirmed))
    sd_between = "accepted once" if options.accept_sd_between else "not accepted"
    reasons.append(
        _bor_reason(
            f"confirmed best overall response (confirmation at >= "
            f"{options.confirmation_min_days} days, at most {options.max_ne_between} NE "
            f"between, SD between {sd_between})",
            confirmed,
        )
    )
    chosen = confirmed if options.confirmation_required else unconfirmed
    which = "confirmed" if options.confirmation_required else "unconfirmed"

    progressed = progression_date(follow_ups, codes)
    first_response = _first_response(follow_ups, codes, request)
    reasons.append(_progression_reason(progressed, reference, codes))
    reasons.append(_first_response_reason(first_response, which))

    last_adequate = _last_adequate(follow_ups, progressed)
    duration = None
    if first_response is not None:
        duration = _time_to_event(first_response, progressed, last_adequate, request)
        reasons.append(_tte_reason("duration of response", duration, "the first response"))
    pfs = _time_to_event(reference, progressed, last_adequate, request)
    reasons.append(_tte_reason("PFS", pfs, "the reference date"))

    objective = is_response(chosen.response, codes)
    control = is_disease_control(chosen.response, codes)
    reasons.append(
        f"objective response {'yes' if objective else 'no'}: the {which} best overall "
        f"response {chosen.response} is {'' if objective else 'not '}"
        f"{codes.complete} or {codes.partial}"
    )
    reasons.append(
        f"disease control and clinical benefit {'yes' if control else 'no'}: the {which} best "
        f"overall response {chosen.response} is {'' if control else 'not '}a response or "
        f"stable disease lasting at least {options.sd_min_days} days after the reference date"
    )
    return SubjectEndpoints(
        criteria=request.criteria,
        reference_date=reference,
        baseline_date=baseline,
        visits=tuple(visits),
        best_overall_response=unconfirmed,
        confirmed_best_overall_response=confirmed,
        first_response_date=first_response,
        duration_of_response=duration,
        progression_date=progressed,
        progression_study_day=None if progressed is None else study_day(progressed, reference),
        progression_free_survival=pfs,
        objective_response=objective,
        disease_control=control,
        clinical_benefit=control,
        reasons=tuple(reasons),
    )


def validate(request: SubjectRequest) -> None:
    """Raise :class:`InvalidInputError` with every rule of the request the domain checks.

    Codes must be the criteria's overall response codes; a follow-up (after the reference date)
    needs one (NE when it could not be assessed); dates are unique; a withdrawal is not before
    the reference date; schedule visit names are unique, target days are not 0.
    """
    errors: list[FieldError] = []
    allowed = overall_codes(request.criteria)
    seen: dict[dt.date, int] = {}
    for index, visit in enumerate(request.visits):
        path = ("visits", index)
        if visit.date in seen:
            errors.append(
                FieldError(
                    path=(*path, "date"),
                    message=f"Duplicate date {visit.date}: visits[{seen[visit.date]}] has it too.",
                )
            )
        seen.setdefault(visit.date, index)
        if visit.overall_response is None:
            if visit.date > request.reference_date:
                errors.append(
                    FieldError(
                        path=(*path, "overallResponse"),
                        message="A visit after the reference date needs an overall response "
                        "(NE when it could not be assessed).",
                    )
                )
        elif visit.overall_response not in allowed:
            errors.append(
                FieldError(
                    path=(*path, "overallResponse"),
                    message=f"{visit.overall_response} is not an overall response of "
                    f"{request.criteria}; use one of {', '.join(sorted(allowed))}.",
                )
            )
    if request.withdrawal_date is not None and request.withdrawal_date < request.reference_date:
        errors.append(
            FieldError(
                path=("withdrawalDate",),
                message=f"The withdrawal date {request.withdrawal_date} is before the reference "
                f"date {request.reference_date}.",
            )
        )
    names: dict[str, int] = {}
    for index, entry in enumerate(request.schedule):
        if entry.visit in names:
            errors.append(
                FieldError(
                    path=("schedule", index, "visit"),
                    message=f"Visit {entry.visit!r} is also schedule[{names[entry.visit]}].",
                )
            )
        names.setdefault(entry.visit, index)
        if entry.day == 0:
            errors.append(
                FieldError(
                    path=("schedule", index, "day"),
                    message="There is no study day 0: the reference date is day 1, the day "
                    "before it day -1.",
                )
            )
    if errors:
        raise InvalidInputError(errors)


def _visit_results(request: SubjectRequest) -> list[VisitResult]:
    """Every visit in date order with its study day, protocol visit and role."""
    ordered = sorted(request.visits, key=lambda visit: visit.date)
    baseline = max(
        (visit.date for visit in ordered if visit.date <= request.reference_date), default=None
    )
    results = []
    for visit in ordered:
        if visit.date == baseline:
            role = VisitRole.BASELINE
        elif visit.date <= request.reference_date:
            role = VisitRole.PRE_BASELINE
        elif request.withdrawal_date is not None and visit.date > request.withdrawal_date:
            role = VisitRole.AFTER_WITHDRAWAL
        else:
            role = VisitRole.FOLLOW_UP
        day = study_day(visit.date, request.reference_date)
        results.append(
            VisitResult(
                date=visit.date,
                study_day=day,
                visit=scheduled_visit(day, request.schedule),
                role=role,
                overall_response=visit.overall_response,
            )
        )
    return results


def _first_response(
    follow_ups: Sequence[Assessed], codes: ResponseCodes, request: SubjectRequest
) -> dt.date | None:
    """The first CR/PR among the considered follow-ups; confirmed if confirmation is required."""
    kept = considered(follow_ups, codes)
    for index, visit in enumerate(kept):
        if is_response(visit.response, codes) and (
            not request.options.confirmation_required
            or is_confirmed(kept, index, codes, request.options)
        ):
            return visit.date
    return None


def _last_adequate(follow_ups: Sequence[Assessed], progressed: dt.date | None) -> dt.date | None:
    """The last follow-up with a response other than NE, before progression if any."""
    return max(
        (
            visit.date
            for visit in follow_ups
            if visit.response is not Response.NE and (progressed is None or visit.date < progressed)
        ),
        default=None,
    )


def _time_to_event(
    start: dt.date,
    progressed: dt.date | None,
    last_adequate: dt.date | None,
    request: SubjectRequest,
) -> TimeToEvent:
    """Progression is the event; otherwise censored at the last adequate assessment on or after
    ``start`` (``WITHDRAWAL`` when the subject withdrew), or at ``start`` when there is none."""
    if progressed is not None:
        date, event, reason = progressed, True, None
    else:
        event = False
        has_adequate = last_adequate is not None and last_adequate >= start
        date = last_adequate if has_adequate and last_adequate is not None else start
        if request.withdrawal_date is not None:
            reason = CensoringReason.WITHDRAWAL
        elif has_adequate:
            reason = CensoringReason.LAST_ADEQUATE_ASSESSMENT
        else:
            reason = CensoringReason.NO_POST_BASELINE_ASSESSMENT
    return TimeToEvent(
        start_date=start,
        date=date,
        days=(date - start).days + 1,
        event=event,
        censoring_reason=reason,
    )


def _baseline_reason(
    request: SubjectRequest, baseline: dt.date | None, visits: Sequence[VisitResult]
) -> str:
    follow_ups = sum(visit.role is VisitRole.FOLLOW_UP for visit in visits)
    ignored = [visit for visit in visits if visit.role is VisitRole.AFTER_WITHDRAWAL]
    sentence = (
        f"baseline {baseline}, the last assessment on or before the reference date "
        f"{request.reference_date} (study day 1)"
        if baseline is not None
        else f"no assessment on or before the reference date {request.reference_date}: no "
        "baseline visit"
    )
    sentence += f"; {follow_ups} follow-up assessment(s)"
    if ignored:
        sentence += (
            f"; {len(ignored)} assessment(s) after the withdrawal date {request.withdrawal_date} "
            "ignored"
        )
    return sentence


def _bor_reason(name: str, result: DatedResponse) -> str:
    if result.date is None:
        return f"{name} NE: no follow-up qualifies for CR, PR, SD or progression"
    return f"{name} {result.response}, from the assessment of {result.date}"


def _progression_reason(
    progressed: dt.date | None, reference: dt.date, codes: ResponseCodes
) -> str:
    if progressed is None:
        return f"no progression: no {codes.progression} among the follow-ups"
    if codes.unconfirmed_progression is not None:
        return (
            f"progression on {progressed} (study day {study_day(progressed, reference)}): the "
            f"{codes.unconfirmed_progression} that opened the first episode confirmed by "
            f"{codes.progression}"
        )
    return (
        f"progression on {progressed} (study day {study_day(progressed, reference)}): the first "
        f"{codes.progression}"
    )


def _first_response_reason(first: dt.date | None, which: str) -> str:
    if first is None:
        return f"no first response: no {which} CR or PR before progression"
    return f"first response on {first}: the first {which} CR or PR"


def _tte_reason(name: str, result: TimeToEvent, start: str) -> str:
    days = f"{result.days} days from {start} {result.start_date} (date - start + 1)"
    if result.event:
        return f"{name} event (progression) on {result.date}: {days}"
    return f"{name} censored on {result.date} ({result.censoring_reason}): {days}"
