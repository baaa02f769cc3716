"""The ``$populate`` use case: a patient's next form, pre-filled from the forms on file
(:mod:`fhirnet.fhir.populate`), for the site's read stream or a study's central reader's.

**Which forms.** The patient's stored forms (:func:`fhirnet.services.history.stored_forms`) are
split into read streams (:mod:`fhirnet.services.streams`) and the chosen stream's timelines are
assessed as a submission would (:func:`fhirnet.services.timelines.assess_forms`); the follow-up
continues the **latest timeline** (the latest baseline: a patient re-baselined for a new line of
treatment continues the new one). A patient with no form in the stream, or whose forms cannot be
assessed, gets a blank baseline, with an issue saying why when forms were there.

**Which stream.** ``stream`` names a reader (``Practitioner/<id>`` or ``PractitionerRole/<id>``,
or the label the patient's study gives a central reader, as the timeline takes it) or ``site``;
without it, the ``author``'s stream when the author is one of the patient's central readers, else
the site's. A reader who is none of the patient's central readers reads for the site.

**Audit.** A read of patient data: one AuditEvent naming the patient (operation, execute),
written before the answer, like ``$extract`` (:mod:`fhirnet.services.audits`); if it cannot be
written, nothing is answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.build import ExamResult
from fhirnet.fhir.outcome import Issue, IssueType
from fhirnet.fhir.populate import blank_baseline, follow_up
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.ports import Json
from fhirnet.services import history
from fhirnet.services.context import Context
from fhirnet.services.streams import (
    CentralRead,
    Stream,
    central_readers,
    reader_key,
    readers_for,
    split,
)
from fhirnet.services.timelines import assess_forms

__all__ = ["SITE", "Populated", "populate"]

#: The ``stream`` value naming the site's (investigator) stream.
SITE = "site"


@dataclass(frozen=True, kw_only=True)
class Populated:
    """The pre-filled form and what could not be filled (warnings and information)."""

    response: Json
    issues: tuple[Issue, ...]


def populate(
    context: Context, *, patient: str, author: str | None = None, stream: str | None = None
) -> Populated:
    """The next form of ``patient`` in the chosen read stream (module docstring).

    :param patient: the Patient id.
    :param author: the reader filling the form in (``Practitioner/<id>``...), set as ``author``.
    :param stream: ``site``, a reader reference or a central reader's label; ``None`` (or
        empty): the author's stream, if any.
    :raises InvalidInputError: ``stream`` is neither ``site``, a reader reference, nor the label
        of one of the patient's central readers.
    :raises fhirnet.errors.FhirServerError: reading the patient's forms failed, or (with an audit
        trail) the AuditEvent could not be written.
    """
    forms, issues = history.stored_forms(
        context.store, patient=patient, questionnaire=QUESTIONNAIRE_URL
    )
    # A reader asked for by name may have read nothing yet: their study is read all the same.
    if (stream and stream != SITE) or reader_key(author) is not None:
        readers, found = central_readers(context.store, patient)
    else:
        readers, found = readers_for(context.store, patient, forms)
    issues += found
    wanted = _stream_key(stream, readers)
    chosen = _chosen(split(forms, readers), readers, wanted or reader_key(author) or SITE)
    results, problems = assess_forms(chosen.forms, {}, reader=chosen.reader)
    issues += problems
    questionnaire = f"{QUESTIONNAIRE_URL}|{context.catalog.version}"
    subject = f"Patient/{patient}"
    latest = _latest_timeline(results)
    if latest:
        response = follow_up(latest, questionnaire=questionnaire, subject=subject, author=author)
    else:
        response = blank_baseline(questionnaire=questionnaire, subject=subject, author=author)
        if chosen.forms:
            issues.append(
                Issue.warning(
                    IssueType.PROCESSING,
                    f"The {len(chosen.forms)} form(s) on file for {subject} in this read stream "
                    "hold no baseline that can be assessed: a blank baseline form is answered.",
                )
            )
    audit = context.audit
    if audit is not None:
        event = audit.event(
            interaction=Interaction.OPERATION,
            action=Action.EXECUTE,
            now=context.now,
            entities=[events.patient(subject)],
        )
        audit.write(context.store, [event])
    return Populated(response=response, issues=tuple(issues))


def _stream_key(stream: str | None, readers: Sequence[CentralRead]) -> str | None:
    """The stream asked for as :data:`SITE` or a reader key; ``None`` when not asked."""
    if not stream:
        return None
    if stream == SITE:
        return SITE
    key = {read.reader.label: read.key for read in readers}.get(stream) or reader_key(stream)
    if key is None:
        raise InvalidInputError(
            [
                FieldError(
                    path=("stream",),
                    message=f"stream must be {SITE!r}, a reader (Practitioner/<id> or "
                    "PractitionerRole/<id>) or the label of one of the patient's central "
                    "readers.",
                )
            ]
        )
    return key


def _chosen(streams: Sequence[Stream], readers: Sequence[CentralRead], wanted: str) -> Stream:
    """The stream ``wanted`` names. A reader who is none of the patient's central readers reads
    for the site (:mod:`fhirnet.services.streams`); a central reader who has read nothing of
    the patient yet starts an empty stream of their own (their first form is a baseline of
    their own, never the site's follow-up)."""
    central = {read.key: read.reader for read in readers}
    if wanted not in central:
        wanted = SITE
    for stream in streams:
        key = SITE if stream.reader is None else reader_key(stream.reader.reference)
        if key == wanted:
            return stream
    return Stream(reader=central.get(wanted), forms=())


def _latest_timeline(results: Sequence[ExamResult]) -> list[ExamResult]:
    """The exams of the timeline with the latest baseline (pre-baseline scans that wait for a
    baseline are no timeline)."""
    assessed = [r for r in results if not (r.pre_baseline and r.baseline.pre_baseline)]
    if not assessed:
        return []
    last = max(r.baseline_date for r in assessed)
    return [r for r in assessed if r.baseline_date == last]
