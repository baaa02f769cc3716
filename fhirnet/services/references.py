"""What a submitted form may refer to (finding 5 of the security review).

A form is written as sent, inside fhirnet's transaction, so every reference in it is resolved by
the FHIR server fhirnet writes to, with fhirnet's credentials. A conditional reference
(``Observation?code=...`` in ``basedOn``, ``partOf``...) made the embedded store search on the
submitter's behalf: a create-only client learnt from 201 versus 502 whether any resource of any
type matched, and stored a link to another patient's resource. So a submitted form may carry
**literal references only**, and only to what is about its own patient. Each refusal is a 422
issue at the element:

* a conditional reference (``<Type>?<criteria>``), anywhere in the form;
* a reference to a Patient other than the form's subject;
* a reference to a resource the store holds about another patient (fhirnet reads it: a literal
  ``<Type>/<id>`` on the server it writes to);
* a ``urn:uuid:`` reference, unless it names an entry of the same transaction Bundle whose form
  is about the same patient (the uuids of fhirnet's own entries are computable: a form could
  otherwise point at another patient's results in the same transaction);
* an absolute reference whose base is neither the FHIR server fhirnet writes to nor fhirnet's
  own (``Context.bases``): ``https://other.example/fhir/Patient/1`` was merged with the local
  Patient ``1``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, Final

from fhirnet.fhir.audit import patients_of
from fhirnet.fhir.identifiers import patient_id
from fhirnet.fhir.outcome import Issue, IssueType
from fhirnet.ports import FhirStore
from fhirnet.services.forms import ReceivedForm

__all__ = ["check_references"]

#: ``[base/]<Type>/<id>[/_history/<version>]``: a literal reference.
_LITERAL: Final = re.compile(
    r"(?P<base>https?://\S+?)?/?(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)


def check_references(
    forms: Sequence[ReceivedForm], store: FhirStore, *, bases: Collection[str]
) -> list[Issue]:
    """Every problem with the references of ``forms`` (module docstring).

    :param bases: the absolute base URLs a reference may carry: the FHIR server's and
        fhirnet's own, without trailing ``/``.
    """
    entries = {form.full_url: form.patient for form in forms if form.full_url is not None}
    allowed = {base.rstrip("/") for base in bases}
    issues = []
    for form in forms:
        for path, reference in _references(form.form.response, form.prefix):
            problem = _problem(form, reference, store, entries, allowed)
            if problem is not None:
                issues.append(Issue.error(IssueType.BUSINESS_RULE, problem, expression=path))
    return issues


def _problem(
    form: ReceivedForm,
    reference: str,
    store: FhirStore,
    entries: Mapping[str, str],
    bases: Collection[str],
) -> str | None:
    if "?" in reference:
        return (
            "a submitted form may carry literal references only: fhirnet does not resolve the "
            "conditional reference in it"
        )
    if reference.startswith("#"):
        return None  # a contained resource
    if reference.startswith("urn:"):
        if entries.get(reference) == form.patient:
            return None
        return (
            "a urn:uuid reference may only name an entry of the same transaction Bundle whose "
            "form is about the same patient"
        )
    match = _LITERAL.fullmatch(reference)
    if match is None:
        return "not a literal reference <Type>/<id> (relative, or on the FHIR server written to)"
    base = match["base"]
    if base is not None and base.rstrip("/") not in bases:
        return (
            "an absolute reference must be on the FHIR server fhirnet writes to, or fhirnet's "
            "own base: a resource on another server is not the local one of the same id"
        )
    if match["type"] == "Patient":
        if patient_id(reference) != form.patient:
            return "a form may refer to its own patient only, not to another Patient"
        return None
    found = store.read(match["type"], match["id"])
    others = [p for p in patients_of(found or {}) if p != f"Patient/{form.patient}"]
    if others:
        return "a form may not refer to a resource about another patient"
    return None


def _references(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """``(expression, reference)`` of every ``reference`` string in a resource's JSON."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}"
            if key == "reference" and isinstance(item, str):
                yield where, item
            else:
                yield from _references(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{path}[{index}]")
