"""The whole assessment from one criteria's timepoint responses (``criteria.md`` §6, §7).

Each criteria assesses its follow-ups; what follows is common: the progression date, the
follow-ups that count for the best overall response, the best overall response and the growth
rate, put together as one :class:`~fhirnet.criteria.models.Assessment`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fhirnet.criteria.best_response import RECIST_CODES, ResponseCodes, best_overall_response
from fhirnet.criteria.growth_rate import tumor_growth_rate
from fhirnet.criteria.models import (
    Assessment,
    Criteria,
    Options,
    Response,
    TimePointAssessment,
)
from fhirnet.criteria.timeline import Timeline


def first_progression(
    results: Sequence[TimePointAssessment], progression: Response, backdates: Sequence[dt.date]
) -> dt.date | None:
    """Earliest of the first progression timepoint and any backdated first sighting (§6.1)."""
    dates = [r.date for r in results if r.overall_response is progression][:1] + list(backdates)
    return min(dates, default=None)


def finish(
    criteria: Criteria,
    timeline: Timeline,
    options: Options,
    results: Sequence[TimePointAssessment],
    backdates: Sequence[dt.date],
    warnings: Sequence[str],
    *,
    codes: ResponseCodes = RECIST_CODES,
) -> Assessment:
    """Best overall response, progression date and growth rate of the RECIST family (§6, §7)."""
    progression = first_progression(results, codes.progression, backdates)
    return assemble(
        criteria,
        timeline,
        options,
        results,
        progression=progression,
        considered=[r for r in results if progression is None or r.date < progression],
        codes=codes,
        warnings=warnings,
    )


def assemble(
    criteria: Criteria,
    timeline: Timeline,
    options: Options,
    results: Sequence[TimePointAssessment],
    *,
    progression: dt.date | None,
    considered: Sequence[TimePointAssessment],
    codes: ResponseCodes,
    warnings: Sequence[str],
) -> Assessment:
    """The whole assessment once each criteria has chosen its progression date and the
    follow-ups that count for the best overall response (§6.1, §6.2); adds the growth rate."""
    growth, growth_warnings = tumor_growth_rate(timeline, results[0] if results else None)
    return Assessment(
        criteria=criteria,
        baseline_date=timeline.baseline.date,
        timepoints=tuple(results),
        best_overall_response=best_overall_response(
            considered,
            baseline_date=timeline.baseline.date,
            progression_date=progression,
            codes=codes,
            options=options,
        ),
        progression_date=progression,
        tumor_growth_rate=growth,
        warnings=(*warnings, *growth_warnings),
    )
