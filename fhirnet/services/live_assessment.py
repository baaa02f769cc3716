"""What fhirnet would compute for a form while the reader is still typing it: a dry run of the
submission pipeline (:mod:`fhirnet.services.submission`), nothing written.

The form goes the way ``$extract`` takes it — :func:`~fhirnet.services.forms.receive` (validated
and read), :func:`~fhirnet.services.planning.plan` with the patient's stored forms (references,
history, read streams, timelines, the domain core) — so the figures, categories, reasons and
warnings shown before signing are the ones the submission will write. Two differences, both
because a form on screen is not finished:

* the form is checked as if it were ``completed`` (the page keeps it ``in-progress`` until it is
  signed), and a form without ``identifier`` or ``id`` is given a draft identifier that no stored
  form has;
* what a reader has not answered yet is not an error but the answer: ``missing`` names each item
  (a required answer the validator asks for, a target without a size or "too small to measure",
  a baseline target left out of a follow-up), and nothing is assessed until it is complete;
  every other problem the submission would refuse the form for is in ``problems``.

The reader's own conclusion items (``crf.md`` "Conclusion": ``response-vs-baseline``,
``response-vs-nadir``) are compared with the computed overall response exactly as the submission
flags them (:func:`fhirnet.fhir.observations.concordant`), so a discordance shows before signing.

**Audit**: once the patient's stored forms were read (the plan ran), an AuditEvent like
``$extract``'s (subtype ``operation``, action ``E``, the patient and the resources the exam
derives) is written before the answer leaves; a plan refused by the assessment's rules writes a
failure event, as ``$extract`` does. A form refused before any read (missing answers, an invalid
form) reads nothing and is not audited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from fhirnet.criteria.models import Criteria, Response
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.build import ExamResult
from fhirnet.fhir.extract import ExamForm
from fhirnet.fhir.observations import concordant
from fhirnet.fhir.outcome import Issue, IssueType, UnprocessableResourceError
from fhirnet.services.audits import audit_failure, extract_event
from fhirnet.services.context import Context
from fhirnet.services.forms import ACCEPTED_STATUSES, ROOT, ReceivedForm, receive
from fhirnet.services.planning import plan

__all__ = [
    "DRAFT_SYSTEM",
    "Discordance",
    "FormProblem",
    "LiveAssessment",
    "ReaderConclusion",
    "assess_live",
    "new_lesion_response",
]

#: The identifier system of a form on screen that has neither identifier nor id yet: no stored
#: form has it, so the dry run treats the form as a new exam.
DRAFT_SYSTEM: Final = "https://fhirnet.dev/fhir/sid/crf-draft"
#: The reader's conclusion items, compared with the computed overall response.
CONCLUSION_ITEMS: Final = ("response-vs-baseline", "response-vs-nadir")
_MISSING_ANSWER: Final = re.compile(r"'([^']+)' is missing")
_ITEM_STEP: Final = re.compile(r"\.item\[(\d+)\]")


@dataclass(frozen=True, kw_only=True)
class FormProblem:
    """An item of the form the assessment waits for, or a problem the submission would refuse.

    :ivar item: the item as linkIds with their occurrence, e.g. ``target-lesion[1].lesion-size``
        (``subject`` or the form itself: ``QuestionnaireResponse``).
    :ivar expression: the FHIRPath expression of the item, or of its parent when it is absent.
    """

    item: str
    expression: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Discordance:
    """A conclusion item the reader answered differently from the computed category."""

    item: str
    reader: Response
    computed: Response


@dataclass(frozen=True, kw_only=True)
class ReaderConclusion:
    """The reader's own conclusion items; ``overall`` is the one a reader reports as the exam's
    category: ``response-vs-baseline``, else ``response-vs-nadir`` (the CRF has no third)."""

    response_vs_baseline: Response | None
    response_vs_nadir: Response | None

    @property
    def overall(self) -> Response | None:
        return self.response_vs_baseline or self.response_vs_nadir


@dataclass(frozen=True, kw_only=True)
class LiveAssessment:
    """What the submission of the form would compute, or why it cannot yet (module docstring).

    Figures are ``None`` when not assessable, for a baseline (its ``sum_mm`` and
    ``baseline_sum_mm`` are its own sum) and where the domain core gives none.
    """

    assessable: bool
    missing: tuple[FormProblem, ...] = ()
    problems: tuple[FormProblem, ...] = ()
    criteria: Criteria | None = None
    assessment_type: str | None = None
    sum_mm: Decimal | None = None
    baseline_sum_mm: Decimal | None = None
    nadir_sum_mm: Decimal | None = None
    change_from_baseline_pct: Decimal | None = None
    change_from_nadir_pct: Decimal | None = None
    target_response: Response | None = None
    non_target_response: Response | None = None
    new_lesion_response: str | None = None
    overall: Response | None = None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    reader: ReaderConclusion = ReaderConclusion(response_vs_baseline=None, response_vs_nadir=None)
    discordances: tuple[Discordance, ...] = ()


def assess_live(resource: Mapping[str, Any], context: Context) -> LiveAssessment:
    """Dry-run the submission of ``resource`` (module docstring); nothing is written but the
    AuditEvent of the read.

    :param resource: a QuestionnaireResponse of the CRF as the page has it, finished or not.
    :param context: the store read from, the catalog, the time and the audit trail.
    :returns: the computed figures and categories, or what is missing.
    :raises fhirnet.errors.FhirServerError: reading the patient's history failed, or its
        AuditEvent could not be written.
    """
    draft = _as_submitted(resource)
    try:
        received = receive(draft, catalog=context.catalog, today=context.today)
    except UnprocessableResourceError as error:
        return _refused(draft, error.issues)
    reader = ReaderConclusion(
        response_vs_baseline=received.form.response_vs_baseline,
        response_vs_nadir=received.form.response_vs_nadir,
    )
    unmeasured = _unmeasured_targets(received)
    if unmeasured:
        return LiveAssessment(
            assessable=False,
            missing=tuple(unmeasured),
            criteria=received.form.criteria,
            assessment_type=received.form.assessment_type.value,
            reader=reader,
        )
    try:
        planned = plan([received], context, own_exams=True)
    except UnprocessableResourceError as error:
        audit_failure(context, Interaction.OPERATION, Action.EXECUTE, [draft], error)
        refused = _refused(draft, error.issues)
        return LiveAssessment(
            assessable=False,
            missing=refused.missing,
            problems=refused.problems,
            criteria=received.form.criteria,
            assessment_type=received.form.assessment_type.value,
            reader=reader,
        )
    audit = context.audit
    if audit is not None:
        event = extract_event(
            audit,
            now=context.now,
            patient=f"Patient/{received.patient}",
            entries=planned.bundle["entry"],
        )
        audit.write(context.store, [event])
    exam = planned.exams[received.key]
    left_out = _left_out_targets(received, exam)
    return _computed(exam, reader, left_out)


def new_lesion_response(new_lesions: bool) -> str:
    """The new-lesion part of a timepoint in words: ``present`` when the criteria count a new
    lesion (unequivocal, or equivocal and confirmed: ``criteria.md`` §2.3), else ``absent``."""
    return "present" if new_lesions else "absent"


def _as_submitted(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The form as its submission will be: finished, and identified (module docstring)."""
    draft = dict(resource)
    if draft.get("status") not in ACCEPTED_STATUSES:
        draft["status"] = "completed"
    if draft.get("identifier") is None and not draft.get("id"):
        draft["identifier"] = {"system": DRAFT_SYSTEM, "value": "draft"}
    return draft


def _refused(resource: Mapping[str, Any], issues: Sequence[Issue]) -> LiveAssessment:
    """Not assessable: the validator's missing answers, and every other error."""
    missing: list[FormProblem] = []
    problems: list[FormProblem] = []
    for issue in issues:
        if not issue.is_error:
            continue
        expression = issue.expression or ROOT
        path = item_path(resource, expression)
        if issue.code is IssueType.REQUIRED:
            found = _MISSING_ANSWER.search(issue.message)
            name = found[1] if found else ("subject" if "subject" in issue.message else None)
            item = path if name is None else (f"{path}.{name}" if path != ROOT else name)
            missing.append(FormProblem(item=item, expression=expression, message=issue.message))
        else:
            problems.append(FormProblem(item=path, expression=expression, message=issue.message))
    return LiveAssessment(assessable=False, missing=tuple(missing), problems=tuple(problems))


def _unmeasured_targets(received: ReceivedForm) -> list[FormProblem]:
    """Each target of the form with neither a size nor "too small to measure": the size the
    reader has still to type (an absent size is *not evaluable* to the criteria, which a
    submitted form may mean; on screen it is an answer not given yet)."""
    found = []
    for index, lesion in enumerate(received.form.targets):
        if lesion.diameter_mm is not None or lesion.too_small_to_measure:
            continue
        found.append(
            FormProblem(
                item=f"target-lesion[{index}].lesion-size",
                expression=received.item(("target-lesion", index)),
                message=f"Target {lesion.id}: no size yet (lesion-size, or lesion-too-small).",
            )
        )
    return found


def _left_out_targets(received: ReceivedForm, exam: ExamResult) -> list[FormProblem]:
    """A follow-up's baseline targets that the form does not list at all."""
    if exam.assessment is None:
        return []
    listed = {lesion.id for lesion in received.form.targets}
    return [
        FormProblem(
            item="target-lesion",
            expression=received.prefix,
            message=f"Baseline target {lesion.id} is not in the form: give its size.",
        )
        for lesion in exam.baseline.targets
        if lesion.id not in listed
    ]


def _computed(
    exam: ExamResult, reader: ReaderConclusion, left_out: Sequence[FormProblem]
) -> LiveAssessment:
    form: ExamForm = exam.form
    common: dict[str, Any] = {
        "criteria": exam.criteria,
        "assessment_type": form.assessment_type.value,
        "warnings": exam.warnings,
        "reader": reader,
    }
    assessment = exam.assessment
    if left_out:
        return LiveAssessment(assessable=False, missing=tuple(left_out), **common)
    if assessment is None:  # a baseline or pre-baseline scan: its own sum, nothing to compare
        return LiveAssessment(
            assessable=True, sum_mm=exam.sum_mm, baseline_sum_mm=exam.sum_mm, **common
        )
    return LiveAssessment(
        assessable=True,
        sum_mm=assessment.sum_mm,
        baseline_sum_mm=assessment.baseline_sum_mm,
        nadir_sum_mm=assessment.nadir_sum_mm,
        change_from_baseline_pct=assessment.change_from_baseline_pct,
        change_from_nadir_pct=assessment.change_from_nadir_pct,
        target_response=assessment.target_response,
        non_target_response=assessment.non_target_response,
        new_lesion_response=new_lesion_response(assessment.new_lesions),
        overall=assessment.overall_response,
        reasons=assessment.reasons,
        discordances=discordances(reader, assessment.overall_response),
        **common,
    )


def discordances(reader: ReaderConclusion, computed: Response) -> tuple[Discordance, ...]:
    """The reader's conclusion items that disagree with ``computed``, as the submission flags
    them (:func:`fhirnet.fhir.observations.concordant`)."""
    answers = zip(
        CONCLUSION_ITEMS, (reader.response_vs_baseline, reader.response_vs_nadir), strict=True
    )
    return tuple(
        Discordance(item=item, reader=answer, computed=computed)
        for item, answer in answers
        if answer is not None and not concordant(answer, computed)
    )


def item_path(resource: Mapping[str, Any], expression: str) -> str:
    """``QuestionnaireResponse.item[8].item[3]`` as linkIds, a group's with its occurrence
    (``target-lesion[2].lesion-size``): what a form filler can find; the expression itself when
    it does not lead to items of ``resource``."""
    if not expression.startswith(ROOT):
        return expression
    steps: list[str] = []
    items: Any = resource.get("item")
    for match in _ITEM_STEP.finditer(expression[len(ROOT) :]):
        index = int(match[1])
        if not isinstance(items, list) or index >= len(items) or not isinstance(items[index], dict):
            break
        link_id = str(items[index].get("linkId"))
        children = items[index].get("item")
        if children is None:  # a question: its linkId; a group: which one of them too
            steps.append(link_id)
        else:
            occurrence = sum(
                1
                for item in items[:index]
                if isinstance(item, dict) and item.get("linkId") == link_id
            )
            steps.append(f"{link_id}[{occurrence}]")
        items = children
    return ".".join(steps) if steps else ROOT
