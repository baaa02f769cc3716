"""A patient's forms as timelines, assessed: the domain core run on the forms, with its problems
reported at the items of the submitted forms (``fhirnet.services.submission``, step 3).

A timeline is one baseline form and its follow-ups: a follow-up belongs to the baseline form of
its ``baseline-date`` answer (a stored one whose baseline is gone: to the latest earlier
baseline), so a patient re-baselined for a new line of treatment has several. Each timeline is
assessed with the criteria of its latest form.

A **pre-baseline** form (``crf.md`` v2, a scan before treatment start) has no ``baseline-date``:
it belongs to the first baseline dated after it, and is a ``pre-baseline`` timepoint of that
timeline (the tumour growth rate of its follow-ups, ``criteria.md`` §7). With no later baseline
but an earlier one it joins the latest earlier baseline, where the assessment refuses it as the
JSON API does (§1 rule 4: dated on or after the baseline). With no baseline at all it is stored
and waits for its baseline: its exam is written on its own (:func:`~fhirnet.fhir.build.
pre_baseline_result`).

The forms given are **one read stream** (:mod:`fhirnet.services.streams`): the site's, or one
central reader's, whose exams carry that reader.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace

from fhirnet.criteria import assess
from fhirnet.errors import InvalidInputError
from fhirnet.fhir.build import ExamResult, exam_results, pre_baseline_result
from fhirnet.fhir.crf_codes import AssessmentType
from fhirnet.fhir.extract import ExamForm, assessment_request
from fhirnet.fhir.identifiers import patient_id
from fhirnet.fhir.outcome import Issue, IssueType
from fhirnet.fhir.report import CRITERIA_LABELS
from fhirnet.fhir.studies import Reader
from fhirnet.services.forms import ReceivedForm, form_key
from fhirnet.services.streams import CentralRead, split

__all__ = ["assess_forms", "assess_streams"]


def assess_streams(
    forms: Sequence[ExamForm],
    received: Mapping[str, ReceivedForm],
    readers: Sequence[CentralRead],
) -> tuple[list[ExamResult], list[Issue]]:
    """Split a patient's forms into read streams (:func:`fhirnet.services.streams.split`) and
    assess each stream's timelines on its own (:func:`assess_forms`).

    :param readers: the patient's central readers; none: one stream, the site's, as before.
    """
    results: list[ExamResult] = []
    issues: list[Issue] = []
    for stream in split(forms, readers):
        found, problems = assess_forms(stream.forms, received, reader=stream.reader)
        results += found
        issues += problems
    return results, issues


def assess_forms(
    forms: Sequence[ExamForm],
    received: Mapping[str, ReceivedForm],
    *,
    reader: Reader | None = None,
) -> tuple[list[ExamResult], list[Issue]]:
    """Assess every timeline of a patient's forms of one read stream (module docstring).

    A timeline that fails the assessment's rules is an error when it holds a submitted form
    (``received``), and is left out otherwise: the stored state was accepted once, and a broken
    part of it that the submission does not touch must not block the submission.

    :param reader: the central reader whose stream ``forms`` are; ``None``: the site's.
    :returns: the exams of every assessed timeline, and the issues found (errors and warnings).
    """
    results, issues = _assess(forms, received, reader)
    if reader is None:
        return results, issues
    return [replace(result, reader=reader) for result in results], issues


def _assess(
    forms: Sequence[ExamForm], received: Mapping[str, ReceivedForm], reader: Reader | None
) -> tuple[list[ExamResult], list[Issue]]:
    timelines, waiting, issues = _timelines(forms, received, _scope(reader))
    results: list[ExamResult] = [pre_baseline_result(form) for form in waiting]
    for timeline in timelines:
        criteria = timeline[-1].criteria
        mine = [received[key] for key in map(form_key, timeline) if key in received]
        try:
            assessment = assess(assessment_request(timeline, criteria))
        except InvalidInputError as error:
            if mine:
                issues += _rule_issues(error, timeline, received, mine[0])
            continue
        others = sorted({f.criteria for f in timeline if f.criteria is not criteria})
        if others and mine:
            issues.append(
                Issue.warning(
                    IssueType.BUSINESS_RULE,
                    f"The timeline from the baseline of {_baseline_date(timeline)} is assessed "
                    f"with {CRITERIA_LABELS[criteria]}, the criteria of its latest form; earlier "
                    f"forms name {', '.join(CRITERIA_LABELS[c] for c in others)}.",
                    expression=mine[0].item("response-criteria"),
                )
            )
        results += exam_results(timeline, assessment)
    return results, issues


def _scope(reader: Reader | None) -> str:
    """Where a problem is, in words: nothing for the site's stream (as before streams)."""
    return "" if reader is None else f" in the central read of {reader.label}"


def _timelines(
    forms: Sequence[ExamForm], received: Mapping[str, ReceivedForm], scope: str = ""
) -> tuple[list[list[ExamForm]], list[ExamForm], list[Issue]]:
    """Split a patient's forms into timelines, each a baseline form and its pre-baseline and
    follow-up forms in date order (module docstring), and the pre-baseline forms that wait for a
    baseline; with an error for each submitted follow-up that has no baseline and a warning for
    each stored one."""
    ordered = sorted(forms, key=lambda form: form.imaging_date)
    baselines: dict[dt.date, ExamForm] = {}
    issues: list[Issue] = []
    for form in ordered:
        if form.assessment_type is not AssessmentType.BASELINE:
            continue
        first = baselines.setdefault(form.imaging_date, form)
        if first is form:
            continue
        # Two baseline forms of one date: the submitted one is refused; of two stored ones
        # the one first in date order counts.
        new = received.get(form_key(form)) or received.get(form_key(first))
        if new is None:
            issues.append(
                Issue.warning(
                    IssueType.BUSINESS_RULE,
                    f"{_named(form)} is left out: {_named(first)} is a baseline of the same date.",
                )
            )
            continue
        other = first if new.form is form else form
        issues.append(
            Issue.error(
                IssueType.BUSINESS_RULE,
                f"A baseline form of {form.imaging_date} is on file already{scope} "
                f"({_named(other)}): "
                "correct that form (same identifier, status amended) instead of sending another",
                expression=new.item("imaging-date"),
            )
        )
    timelines = {day: [form] for day, form in baselines.items()}
    waiting: list[ExamForm] = []
    for form in ordered:
        if form.assessment_type is AssessmentType.BASELINE:
            continue
        if form.pre_baseline:
            later = [day for day in timelines if day > form.imaging_date]
            earlier = [day for day in timelines if day <= form.imaging_date]
            if later or earlier:
                timelines[min(later) if later else max(earlier)].append(form)
            else:
                waiting.append(form)
            continue
        new = received.get(form_key(form))
        home = form.baseline_date if form.baseline_date in timelines else None
        if home is None and (new is None or form.baseline_date is None):
            home = max((day for day in timelines if day < form.imaging_date), default=None)
        if home is not None and home < form.imaging_date:
            timelines[home].append(form)
            continue
        on_file = ", ".join(str(day) for day in sorted(timelines)) or "none"
        message = (
            f"No baseline form of {form.baseline_date or 'an earlier date'} for Patient/"
            f"{_patient(form)}{scope} (baseline forms on file: {on_file}): send the baseline "
            "form first"
        )
        if new is not None:
            issues.append(
                Issue.error(IssueType.BUSINESS_RULE, message, expression=new.item("baseline-date"))
            )
        else:
            issues.append(
                Issue.warning(IssueType.BUSINESS_RULE, f"{_named(form)} is left out. {message}.")
            )
    ordered_timelines = [sorted(timelines[day], key=_date) for day in sorted(timelines)]
    return ordered_timelines, waiting, issues


def _date(form: ExamForm) -> dt.date:
    return form.imaging_date


def _baseline_date(timeline: Sequence[ExamForm]) -> dt.date:
    return next(f.imaging_date for f in timeline if f.assessment_type is AssessmentType.BASELINE)


def _rule_issues(
    error: InvalidInputError,
    timeline: Sequence[ExamForm],
    received: Mapping[str, ReceivedForm],
    fallback: ReceivedForm,
) -> list[Issue]:
    """The assessment's rule violations at the items of the submitted forms they are about; a
    violation in a stored form is reported at the submitted form that brought it up."""
    issues = []
    for problem in error.errors:
        path = problem.path
        if len(path) >= 2 and path[0] == "timepoints" and isinstance(path[1], int):
            form = timeline[path[1]]
            own = received.get(form_key(form))
            if own is not None:
                issues.append(
                    Issue.error(
                        IssueType.BUSINESS_RULE, problem.message, expression=own.locate(path[2:])
                    )
                )
                continue
            message = f"{problem.message} (in {_named(form)}, assessed together with this form)"
            issues.append(Issue.error(IssueType.BUSINESS_RULE, message, expression=fallback.prefix))
        else:
            issues.append(
                Issue.error(IssueType.BUSINESS_RULE, problem.message, expression=fallback.prefix)
            )
    return issues


def _patient(form: ExamForm) -> str:
    """The Patient id of a form's subject (every form here has one: received forms are checked,
    stored ones filtered)."""
    return patient_id(form.subject or "") or ""


def _named(form: ExamForm) -> str:
    value = form.identifier.value if form.identifier is not None else "without identifier"
    return f"the form {value} of {form.imaging_date} on file"
