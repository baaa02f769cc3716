"""SDC ``$populate`` of the CRF, pure: the next form of a patient's timeline, pre-filled from the
forms already on file, as an ``in-progress`` QuestionnaireResponse.

A follow-up starts from what the reader would otherwise retype (issue 15, item 1; paper response
forms go wrong for one patient in five exactly there): every **baseline target** with its
``lesion-id``, ``lesion-location`` and ``lesion-nodal`` (sizes empty: they are this exam's), the
baseline's **non-targets** (status empty), the **baseline date**, the **current nadir date**, the
timeline's **criteria** and the latest **therapy type**, the **modalities** used so far, and the
**new lesions already counted** (iRECIST follows them: they must be measured again; size and
modality empty). Coded answers are copied as they were answered, so the form keeps the reader's
own codings; the linkIds are the Questionnaire's (``crf.md`` "Items").

The nadir and the counted new lesions come from the domain core, not from a rule written again
here: the nadir is the one :func:`fhirnet.criteria.timeline.measure` would give an exam after the
latest one (the smallest sum so far, ties to the earliest date, ``criteria.md`` §0), and a new
lesion counts when :class:`~fhirnet.criteria.new_lesions.NewLesionSorter` counted it at one of the
follow-ups with the criteria's own rules (§2.3).

What the reader must still type (the imaging date, every size, every non-target status, a new
lesion's modality) is left unanswered: the response validates as ``in-progress``, where a missing
required answer is a warning only (R4 ``Questionnaire.item.required``).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from fhirnet.criteria import Criteria, Modality, Response, TimePoint, TimePointAssessment
from fhirnet.criteria.new_lesions import (
    IRECIST_RULES,
    PERCIST_RULES,
    RECIST_RULES,
    NewLesionRules,
    NewLesionSorter,
)
from fhirnet.criteria.timeline import build_timeline, measure
from fhirnet.fhir.build import ExamResult
from fhirnet.fhir.crf_codes import ASSESSMENT_TYPE_SYSTEM, CRITERIA, MODALITIES, AssessmentType
from fhirnet.fhir.datatypes import Json, reference
from fhirnet.fhir.extract import ExamForm

__all__ = ["blank_baseline", "counted_new_lesions", "follow_up", "next_nadir_date"]

#: The Questionnaire's linkIds of what a follow-up carries over from each lesion group.
TARGET_KEPT: Final = frozenset({"lesion-id", "lesion-location", "lesion-nodal"})
NON_TARGET_KEPT: Final = frozenset(
    {
        "non-target-lesion.lesion-id",
        "non-target-lesion.lesion-location",
        "non-target-lesion.lesion-nodal",
    }
)
NEW_LESION_KEPT: Final = frozenset(
    {"new-lesion.lesion-id", "new-lesion.lesion-location", "new-lesion.lesion-nodal"}
)

_ASSESSMENT_TYPE_DISPLAY: Final = {
    AssessmentType.BASELINE: "Baseline",
    AssessmentType.FOLLOW_UP: "Follow-up",
}

#: The new-lesion rules of each criteria (``criteria.md`` §2.3, D28), as each criteria module
#: applies them.
_NEW_LESION_RULES: Final[Mapping[Criteria, NewLesionRules]] = {
    Criteria.RECIST_1_1: RECIST_RULES,
    Criteria.CHOI: RECIST_RULES,
    Criteria.IRECIST: IRECIST_RULES,
    Criteria.PERCIST_1_0: PERCIST_RULES,
}

#: Target or non-target categories that are progression: with one of them a 10 to 15 mm new
#: node is not the only evidence (D28).
_PROGRESSION: Final = frozenset({Response.PD, Response.IUPD, Response.ICPD, Response.PMD})


def blank_baseline(*, questionnaire: str, subject: str, author: str | None = None) -> Json:
    """The form of a patient with nothing on file: a baseline, only its assessment type set.

    :param questionnaire: the Questionnaire's canonical, ``url|version``.
    :param subject: ``Patient/<id>``.
    :param author: the reader (``Practitioner/<id>``), when known.
    """
    return _response(questionnaire, subject, author, [_assessment_type(AssessmentType.BASELINE)])


def follow_up(
    timeline: Sequence[ExamResult],
    *,
    questionnaire: str,
    subject: str,
    author: str | None = None,
) -> Json:
    """The next follow-up of ``timeline``, pre-filled (module docstring).

    :param timeline: the assessed exams of one timeline (one baseline and its follow-ups, a
        pre-baseline scan too), as :func:`fhirnet.services.timelines.assess_forms` gives them.
    :param questionnaire: the Questionnaire's canonical, ``url|version``.
    :param subject: ``Patient/<id>``.
    :param author: the reader (``Practitioner/<id>``), when known.
    :raises ValueError: ``timeline`` has no baseline exam.
    """
    exams = sorted(
        (r for r in timeline if not r.form.pre_baseline), key=lambda r: r.form.imaging_date
    )
    forms = [r.form for r in exams]
    baseline = next((f for f in forms if f.assessment_type is AssessmentType.BASELINE), None)
    if baseline is None:
        raise ValueError("a timeline without its baseline exam")
    latest = forms[-1]
    items: list[Json] = [_assessment_type(AssessmentType.FOLLOW_UP)]
    modalities = _modalities(forms)
    if modalities:
        items.append(
            {"linkId": "imaging-procedure", "answer": [{"valueCoding": c} for c in modalities]}
        )
    items.append(_date("baseline-date", baseline.imaging_date))
    items.append(_date("nadir-date", next_nadir_date(forms)))
    therapy = next(
        (a for f in reversed(forms) if (a := _answers(f.response, "therapy-type"))), None
    )
    if therapy is not None:
        items.append({"linkId": "therapy-type", "answer": therapy})
    items.append(
        {
            "linkId": "response-criteria",
            "answer": [{"valueCoding": CRITERIA[latest.criteria].json()}],
        }
    )
    items += [_kept(g, TARGET_KEPT) for g in _groups(baseline.response, "target-lesion")]
    items += [_kept(g, NON_TARGET_KEPT) for g in _groups(baseline.response, "non-target-lesion")]
    items += _new_lesions(forms, counted_new_lesions(exams, latest.criteria))
    return _response(questionnaire, subject, author, items)


def next_nadir_date(forms: Sequence[ExamForm]) -> dt.date:
    """The nadir the next exam of a timeline is judged against: what the domain's
    :func:`~fhirnet.criteria.timeline.measure` gives an exam the day after the latest one.

    :param forms: the timeline's baseline and follow-up forms (pre-baseline ones are ignored).
    """
    timepoints = [f.timepoint() for f in forms]
    probe = TimePoint(date=max(tp.date for tp in timepoints) + dt.timedelta(days=1))
    *_, next_exam = measure(build_timeline([*timepoints, probe]))
    return next_exam.nadir_date


def counted_new_lesions(exams: Sequence[ExamResult], criteria: Criteria) -> list[str]:
    """The ids of the new lesions the domain counted at a follow-up of ``exams``, in order of
    first count: held back ones (equivocal, a new modality's, a small node) are not counted
    until they are confirmed (``criteria.md`` §2.3).

    :param exams: one timeline's exams, its baseline among them.
    :param criteria: the criteria whose new-lesion rules apply.
    """
    forms = [r.form for r in exams if not r.form.pre_baseline]
    timeline = build_timeline([f.timepoint() for f in forms])
    progressing = {r.form.imaging_date: _progressing(r.assessment) for r in exams}
    sorter = NewLesionSorter(timeline=timeline, rules=_NEW_LESION_RULES[criteria])
    found: dict[str, None] = {}
    for timepoint in timeline.follow_ups:
        other = progressing.get(timepoint.date, False)
        findings = sorter.sort(timepoint, other_progression=other)
        found.update((lesion.id, None) for lesion in findings.counted)
    return list(found)


def _progressing(assessment: TimePointAssessment | None) -> bool:
    if assessment is None:
        return False
    return bool({assessment.target_response, assessment.non_target_response} & _PROGRESSION)


def _new_lesions(forms: Sequence[ExamForm], counted: Iterable[str]) -> list[Json]:
    """A ``new-lesion`` group per counted lesion, as last listed (id, location, nodal)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for form in forms:
        for group in _groups(form.response, "new-lesion"):
            lesion_id = _string_of(group, "new-lesion.lesion-id")
            if lesion_id is not None:
                latest[lesion_id] = group
    return [_kept(latest[i], NEW_LESION_KEPT) for i in counted if i in latest]


def _modalities(forms: Sequence[ExamForm]) -> list[Json]:
    """The codings of every modality of the forms, in order of first use."""
    used: dict[Modality, None] = {}
    for form in forms:
        used.update((m, None) for m in form.modalities)
    return [MODALITIES[m].json() for m in used if m in MODALITIES]


def _response(questionnaire: str, subject: str, author: str | None, items: list[Json]) -> Json:
    response: Json = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire,
        "status": "in-progress",
        "subject": reference(subject),
    }
    if author is not None:
        response["author"] = reference(author)
    response["item"] = items
    return response


def _assessment_type(kind: AssessmentType) -> Json:
    coding = {
        "system": ASSESSMENT_TYPE_SYSTEM,
        "code": kind.value,
        "display": _ASSESSMENT_TYPE_DISPLAY[kind],
    }
    return {"linkId": "assessment-type", "answer": [{"valueCoding": coding}]}


def _date(link_id: str, value: dt.date) -> Json:
    return {"linkId": link_id, "answer": [{"valueDate": value.isoformat()}]}


def _groups(response: Mapping[str, Any], link_id: str) -> list[Mapping[str, Any]]:
    items = response.get("item")
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, Mapping) and i.get("linkId") == link_id]


def _answers(response: Mapping[str, Any], link_id: str) -> list[Json] | None:
    """A copy of the answers of the top-level item ``link_id``, if it has any."""
    for item in _groups(response, link_id):
        answers = item.get("answer")
        if isinstance(answers, list) and answers:
            return copy.deepcopy(answers)
    return None


def _kept(group: Mapping[str, Any], link_ids: frozenset[str]) -> Json:
    """A copy of a lesion group with only the answers named in ``link_ids``."""
    children = group.get("item")
    kept = [
        copy.deepcopy(child)
        for child in (children if isinstance(children, list) else [])
        if isinstance(child, Mapping) and child.get("linkId") in link_ids
    ]
    return {"linkId": group["linkId"], "item": kept}


def _string_of(group: Mapping[str, Any], link_id: str) -> str | None:
    for child in group.get("item") or []:
        if isinstance(child, Mapping) and child.get("linkId") == link_id:
            for answer in child.get("answer") or []:
                value = answer.get("valueString") if isinstance(answer, Mapping) else None
                if isinstance(value, str):
                    return value
    return None
