"""The values of the trial endpoint derivations: one subject's visits in, its endpoints out, and
the per-arm summary (``docs/trials.md``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from fhirnet.criteria.models import Criteria, Response

#: The visit name of an assessment no schedule entry's window holds (SDTM/ADaM usage).
UNSCHEDULED = "UNSCHEDULED"


@dataclass(frozen=True, kw_only=True)
class EndpointOptions:
    """How responses are confirmed and how long stable disease must last (``docs/trials.md``).

    ``confirmation_min_days`` and ``sd_min_days`` are those of ``criteria.md`` §6.3;
    ``max_ne_between`` and ``accept_sd_between`` are admiralonco's ``max_nr_ne`` and
    ``accept_sd`` of ``derive_param_confirmed_bor``.
    """

    confirmation_required: bool = False
    confirmation_min_days: int = 28
    sd_min_days: int = 42
    max_ne_between: int = 1
    accept_sd_between: bool = False


@dataclass(frozen=True, kw_only=True)
class ScheduledVisit:
    """A protocol visit: its name, its target study day and the window either side of it."""

    visit: str
    day: int
    window_days: int


@dataclass(frozen=True, kw_only=True)
class VisitResponse:
    """One evaluator's overall response at one assessment; ``None`` only on or before the
    reference date (a baseline has no response)."""

    date: dt.date
    overall_response: Response | None


@dataclass(frozen=True, kw_only=True)
class SubjectRequest:
    """One subject's assessments by one evaluator, with what the derivations need to read them."""

    criteria: Criteria
    reference_date: dt.date
    visits: tuple[VisitResponse, ...]
    options: EndpointOptions = field(default_factory=EndpointOptions)
    schedule: tuple[ScheduledVisit, ...] = ()
    withdrawal_date: dt.date | None = None


class VisitRole(StrEnum):
    """What an assessment is to the derivations."""

    PRE_BASELINE = "pre-baseline"  # before the baseline: not used
    BASELINE = "baseline"  # the last assessment on or before the reference date
    FOLLOW_UP = "follow-up"  # after the reference date, on or before any withdrawal
    AFTER_WITHDRAWAL = "after-withdrawal"  # after the withdrawal date: not used


@dataclass(frozen=True, kw_only=True)
class VisitResult:
    """An assessment with its study day and protocol visit."""

    date: dt.date
    study_day: int
    visit: str
    role: VisitRole
    overall_response: Response | None


@dataclass(frozen=True, kw_only=True)
class DatedResponse:
    """A best overall response and the date of the assessment that gave it (``None`` for NE)."""

    response: Response
    date: dt.date | None


class CensoringReason(StrEnum):
    """Why a time-to-event endpoint is censored (``docs/trials.md`` "Censoring")."""

    LAST_ADEQUATE_ASSESSMENT = "LAST ADEQUATE ASSESSMENT"
    NO_POST_BASELINE_ASSESSMENT = "NO POST-BASELINE ASSESSMENT"
    WITHDRAWAL = "WITHDRAWAL"


@dataclass(frozen=True, kw_only=True)
class TimeToEvent:
    """An event or a censoring: its date, days from the start (``date - start + 1``) and why."""

    start_date: dt.date
    date: dt.date
    days: int
    event: bool
    censoring_reason: CensoringReason | None


@dataclass(frozen=True, kw_only=True)
class SubjectEndpoints:
    """Every endpoint of one subject, each explained in ``reasons``."""

    criteria: Criteria
    reference_date: dt.date
    baseline_date: dt.date | None
    visits: tuple[VisitResult, ...]
    best_overall_response: DatedResponse
    confirmed_best_overall_response: DatedResponse
    first_response_date: dt.date | None
    duration_of_response: TimeToEvent | None
    progression_date: dt.date | None
    progression_study_day: int | None
    progression_free_survival: TimeToEvent
    objective_response: bool
    disease_control: bool
    clinical_benefit: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ArmSubject:
    """One subject's endpoints, labelled with its arm and the evaluator who read the images."""

    arm: str
    evaluator: str
    subject: str
    endpoints: SubjectEndpoints


@dataclass(frozen=True, kw_only=True)
class Proportion:
    """``count`` of ``n`` with its exact (Clopper-Pearson) confidence interval, rounded outward
    to 4 decimals so the printed interval always contains the exact one; ``None`` when n = 0."""

    count: int
    n: int
    rate: Decimal | None
    lower: Decimal | None
    upper: Decimal | None
    confidence: Decimal


@dataclass(frozen=True, kw_only=True)
class ArmSummary:
    """Objective response and disease control rates of one arm as read by one evaluator."""

    arm: str
    evaluator: str
    n: int
    objective_response: Proportion
    disease_control: Proportion
