"""A received QuestionnaireResponse made ready for the pipeline: validated against the form, checked
for what fhirnet keys its results on, read into an :class:`~fhirnet.fhir.extract.ExamForm`; and
the FHIRPath expressions of its items, which the assessment's problems are reported at.

What the pipeline needs beyond a valid form (each refused with 422 and an issue at the element):

* ``status`` ``completed`` or ``amended``: an unfinished (``in-progress``, ``stopped``) or
  retracted (``entered-in-error``) form is not assessed;
* ``subject`` a literal ``Patient/<id>`` (the validator also accepts ``urn:uuid:`` and an
  identifier-only Patient, which a FHIR server could not resolve into the patient's history);
* an ``identifier`` with ``system`` and ``value``: every business identifier of the results is
  built from it (:mod:`fhirnet.fhir.identifiers`), so that resubmitting the form replaces rather
  than duplicates. A form without one but with an ``id`` is given
  ``https://fhirnet.dev/fhir/sid/crf-submission|<id>`` (the examples' convention, id = identifier
  value), so resubmitting the same id is idempotent too; the answer says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fhirnet.errors import InvalidInputError
from fhirnet.fhir.extract import ExamForm, extract_form
from fhirnet.fhir.identifiers import CRF_SUBMISSION, ExamKey, Identifier, Kind, patient_id
from fhirnet.fhir.outcome import (
    Issue,
    IssueType,
    UnprocessableResourceError,
    has_errors,
    rebased,
)
from fhirnet.fhir.profiles import Catalog
from fhirnet.fhir.questionnaire import validate_response
from fhirnet.ports import Json

#: The expression root of a QuestionnaireResponse sent on its own.
ROOT: Final = "QuestionnaireResponse"
#: Form statuses that are assessed; the others are refused (module docstring).
ACCEPTED_STATUSES: Final = ("completed", "amended")
#: R4 questionnaire-answers-status codes the validator accepts; of these only the accepted ones
#: go through, the others get a business-rule issue rather than the validator's code-invalid.
_KNOWN_STATUSES: Final = ("in-progress", "completed", "amended", "entered-in-error", "stopped")
#: Server-managed ``meta`` elements: not part of the form's content.
_SERVER_META: Final = ("versionId", "lastUpdated", "source")

#: Domain field (``assessment-api.md`` names) → the CRF item it is read from (``crf.md``).
_GROUPS: Final = {
    "targets": "target-lesion",
    "nonTargets": "non-target-lesion",
    "newLesions": "new-lesion",
}
_LESION_ITEMS: Final = {
    "id": "lesion-id",
    "site": "lesion-location",
    "nodal": "lesion-nodal",
    "diameterMm": "lesion-size",
    "tooSmallToMeasure": "lesion-too-small",
    "densityHu": "lesion-density",
    "sulPeak": "lesion-sul-peak",
    "suvMax": "lesion-suv-max",
    "status": "lesion-status",
    "modality": "lesion-modality",
    "equivocal": "lesion-equivocal",
}
_EXAM_ITEMS: Final = {
    "date": "imaging-date",
    "modalities": "imaging-procedure",
    "pet": "pet-reference",
    "intratumoralNodules": "intratumoral-nodules",
}


def form_key(form: ExamForm) -> str:
    """``system|value`` of the form's identifier: what tells two forms (or two versions of one
    form) apart. Only called on forms that have one."""
    identifier = form.identifier
    if identifier is None:
        raise ValueError("a form without identifier has no key")
    return f"{identifier.system}|{identifier.value}"


def content_of(resource: Mapping[str, Any]) -> Json:
    """The form as its author sent it: without ``id`` and the ``meta`` a server manages, so that
    a form read back from a server equals the form as received (``exams_to_rebuild`` compares
    them to decide whether anything changed)."""
    content = {key: value for key, value in resource.items() if key != "id"}
    meta = content.get("meta")
    if isinstance(meta, Mapping):
        kept = {key: value for key, value in meta.items() if key not in _SERVER_META}
        if kept:
            content["meta"] = kept
        else:
            del content["meta"]
    return content


@dataclass(frozen=True, kw_only=True)
class ReceivedForm:
    """A submitted form that passed every check: its domain values, its patient, where its
    expressions start (``QuestionnaireResponse`` or ``Bundle.entry[i].resource``) and the
    validator's warnings and information about it."""

    form: ExamForm
    patient: str
    prefix: str
    notes: tuple[Issue, ...] = ()
    #: The entry's ``fullUrl`` in a submitted Bundle (what its other forms may refer to it by).
    full_url: str | None = None

    @property
    def key(self) -> str:
        return form_key(self.form)

    @property
    def identifier(self) -> Identifier:
        identifier = self.form.identifier
        if identifier is None:  # receive() guarantees one
            raise ValueError("a received form always has an identifier")
        return identifier

    @property
    def report_identifier(self) -> Identifier:
        """The business identifier of the exam's DiagnosticReport."""
        key = ExamKey.of(self.patient, self.identifier)
        return key.identifier(Kind.IMAGING_RESPONSE_REPORT)

    def item(self, *steps: str | tuple[str, int]) -> str:
        """The expression of an item: each step is a linkId, or a linkId and which occurrence;
        stops at the deepest item found (at worst the form itself)."""
        expression = self.prefix
        items: Any = self.form.response.get("item")
        for step in steps:
            link_id, occurrence = step if isinstance(step, tuple) else (step, 0)
            found = _nth(items, link_id, occurrence)
            if found is None:
                break
            index, item = found
            expression += f".item[{index}]"
            items = item.get("item")
        return expression

    def locate(self, path: Sequence[str | int]) -> str:
        """The item a problem of the domain validation is about: ``path`` is the part of an
        :class:`~fhirnet.errors.FieldError` path after ``timepoints[i]`` (e.g. ``targets``, 2,
        ``id`` → ``QuestionnaireResponse.item[10].item[0]``)."""
        if not path:
            return self.prefix
        head = str(path[0])
        if head in _GROUPS:
            group = _GROUPS[head]
            occurrence = path[1] if len(path) > 1 and isinstance(path[1], int) else 0
            field = _LESION_ITEMS.get(str(path[2])) if len(path) > 2 else None
            if field is None:
                return self.item((group, occurrence))
            return self.item((group, occurrence), _in_group(group, field))
        if head in _EXAM_ITEMS:
            return self.item(_EXAM_ITEMS[head])
        return self.prefix


def _in_group(group: str, field: str) -> str:
    """Items of the non-target and new-lesion groups carry the group's linkId as a prefix
    (``non-target-lesion.lesion-id``, ``fsh/README.md``), except the group's own items such as
    ``lesion-status``; :func:`_nth` matches both spellings."""
    return field if group == "target-lesion" else f"{group}.{field}"


def _nth(items: object, link_id: str, occurrence: int) -> tuple[int, Any] | None:
    """The index and item of the ``occurrence``-th item ``link_id`` (with or without its group
    prefix) among ``items``."""
    if not isinstance(items, list):
        return None
    names = {link_id, link_id.split(".", 1)[-1]}
    seen = 0
    for index, item in enumerate(items):
        if isinstance(item, Mapping) and item.get("linkId") in names:
            if seen == occurrence:
                return index, item
            seen += 1
    return None


def receive(
    resource: Mapping[str, Any], *, catalog: Catalog, today: dt.date, prefix: str = ROOT
) -> ReceivedForm:
    """Validate a submitted QuestionnaireResponse and read it (module docstring).

    :param resource: the QuestionnaireResponse as JSON.
    :param catalog: the conformance package holding the form.
    :param today: the validator's "today" (dates after it are refused).
    :param prefix: the expression of the resource in the request, for issues.
    :returns: the form, ready for :mod:`fhirnet.services.submission`.
    :raises UnprocessableResourceError: every problem found, warnings included.
    """
    issues = list(validate_response(resource, catalog, today=today))
    content = dict(resource)
    issues += _identifier(content)
    issues += _status_and_subject(content, issues)
    issues = [rebased(issue, ROOT, prefix) for issue in issues]
    if has_errors(issues):
        raise UnprocessableResourceError(issues)
    try:
        form = extract_form(content_of(content))
    except InvalidInputError as error:
        raise UnprocessableResourceError(
            [*issues, *(_read_problem(prefix, e.path, e.message) for e in error.errors)]
        ) from None
    patient = patient_id(form.subject or "")
    if patient is None or form.identifier is None:  # checked above
        raise ValueError("a checked form has a patient and an identifier")
    return ReceivedForm(form=form, patient=patient, prefix=prefix, notes=tuple(issues))


def _identifier(content: dict[str, Any]) -> list[Issue]:
    """Check the identifier, or give a form without one its id as identifier (docstring)."""
    identifier = content.get("identifier")
    resource_id = content.get("id")
    if identifier is None and isinstance(resource_id, str) and resource_id:
        content["identifier"] = {"system": CRF_SUBMISSION, "value": resource_id}
        return [
            Issue.information(
                f"The form has no identifier: fhirnet identifies it by its id, as "
                f"{CRF_SUBMISSION}|{resource_id}, so that sending it again replaces it.",
                expression=f"{ROOT}.id",
            )
        ]
    if identifier is None:
        return [
            Issue.error(
                IssueType.REQUIRED,
                "identifier is missing: fhirnet keys the results it writes on the form's "
                "identifier (system and value), so that a resubmission or an amendment replaces "
                "them instead of adding more",
                expression=ROOT,
            )
        ]
    ok = isinstance(identifier, Mapping) and all(
        isinstance(identifier.get(name), str) and identifier.get(name)
        for name in ("system", "value")
    )
    if ok:
        return []
    return [
        Issue.error(
            IssueType.REQUIRED,
            "the identifier needs a system and a value: fhirnet keys the results it writes on both",
            expression=f"{ROOT}.identifier",
        )
    ]


def _status_and_subject(content: Mapping[str, Any], found: Sequence[Issue]) -> list[Issue]:
    problems = []
    status = content.get("status")
    if status in _KNOWN_STATUSES and status not in ACCEPTED_STATUSES:
        problems.append(
            Issue.error(
                IssueType.BUSINESS_RULE,
                f"fhirnet assesses finished forms only: status must be "
                f"{' or '.join(ACCEPTED_STATUSES)}, not {status!r}",
                expression=f"{ROOT}.status",
            )
        )
    subject = content.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    # A missing subject, or one the validator refused, is reported already.
    reported = any(i.is_error and (i.expression or "").startswith(f"{ROOT}.subject") for i in found)
    literal = isinstance(reference, str) and patient_id(reference) is not None
    if subject is not None and not reported and not literal:
        problems.append(
            Issue.error(
                IssueType.VALUE,
                "fhirnet finds the patient's earlier forms and writes results by the "
                "Patient's id: subject must be a literal reference Patient/<id>, not "
                f"{reference!r}",
                expression=f"{ROOT}.subject" if reference is None else f"{ROOT}.subject.reference",
            )
        )
    return problems


def _read_problem(prefix: str, path: Sequence[str | int], message: str) -> Issue:
    if len(path) == 2 and path[0] == "item":
        expression = f"{prefix}.item.where(linkId='{path[1]}')"
    else:
        expression = ".".join([prefix, *(str(part) for part in path)])
    return Issue.error(IssueType.VALUE, message, expression=expression)
