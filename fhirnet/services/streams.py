"""Independent read streams: which forms of a patient are assessed together (``docs/trials.md``
"Independent read streams").

A form's reader is its ``author``. For a patient enrolled in a study, the forms authored by one
of the study's **central** readers (``ResearchStudy`` extension ``study-reader`` with role
``central``, :mod:`fhirnet.fhir.studies`) make up **that reader's own stream**: its own
timelines, baseline, nadir, categories and DiagnosticReports, never mixed with another reader's
or the site's. Every other form of the patient is the **site (investigator) stream**, however
many site radiologists report it: outside studies that is every form, as before streams existed.
Within one stream the rules are unchanged (two forms of one exam date are refused); two streams
reporting the same exam are the point of blinded central review.

**When a central reader's form counts as the study's.** While the subject is enrolled: its
``ResearchSubject`` is not ``withdrawn`` and has no ``period.end``, or the form's imaging date is
on or before ``period.end`` (the withdrawal date; a withdrawn subject without one: never). A scan
read after withdrawal is no longer central review, so such a form is the site's. Deciding by the
imaging date (not ``authored``) keeps a late-entered read of an on-study scan in its stream.

Two parts: :func:`central_readers` reads the patient's enrolments and their studies through the
:class:`~fhirnet.ports.FhirStore` port (once per patient and submission, under the patient's
lock), and :func:`split` is the pure function that puts each form in its stream.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fhirnet.errors import FhirServerRejectedError
from fhirnet.fhir.extract import ExamForm
from fhirnet.fhir.outcome import Issue, IssueType
from fhirnet.fhir.studies import (
    RESEARCH_STUDY,
    RESEARCH_SUBJECT,
    STUDY_SYSTEM,
    Reader,
    ReaderRole,
    SubjectStatus,
    UnreadableStudyError,
    study_of,
    subject_patient,
)
from fhirnet.ports import FhirStore, Json
from fhirnet.services import history

__all__ = ["CentralRead", "Stream", "central_readers", "reader_key", "readers_for", "split"]

#: A reader reference as ``Type/id``: relative, absolute or versioned references to one reader
#: are one reader (``author`` of one form may be written either way).
_READER: Final = re.compile(
    r"(?:https?://\S+/)?((?:Practitioner|PractitionerRole)/[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)


def reader_key(reference: str | None) -> str | None:
    """``Practitioner/<id>`` or ``PractitionerRole/<id>`` of a reference, else ``None``."""
    if reference is None:
        return None
    match = _READER.fullmatch(reference)
    return match[1] if match else None


@dataclass(frozen=True, kw_only=True)
class CentralRead:
    """A central reader of a study the patient is (or was) enrolled in.

    :ivar reader: the reader as the study names it (reference, role ``central``, label).
    :ivar until: the last imaging date the enrolment covers (the withdrawal date), or ``None``
        while enrolled.
    :ivar withdrawn: withdrawn without a date: no form counts as the study's.
    """

    reader: Reader
    until: dt.date | None = None
    withdrawn: bool = False

    @property
    def key(self) -> str:
        return reader_key(self.reader.reference) or self.reader.reference

    def covers(self, form: ExamForm) -> bool:
        """Whether ``form`` is a central read of this reader's study (module docstring)."""
        if reader_key(form.author) != self.key:
            return False
        if self.until is not None:
            return form.imaging_date <= self.until
        return not self.withdrawn


@dataclass(frozen=True, kw_only=True)
class Stream:
    """One stream of a patient's forms: the site's (``reader`` ``None``) or a central reader's."""

    reader: Reader | None
    forms: tuple[ExamForm, ...]


def split(forms: Iterable[ExamForm], readers: Sequence[CentralRead]) -> list[Stream]:
    """Put each form in its stream (module docstring): the site's first (always, even empty),
    then each central reader's that has forms, by reader reference.

    :param readers: the patient's central readers (:func:`central_readers`).
    """
    site: list[ExamForm] = []
    own: dict[str, list[ExamForm]] = {}
    named: dict[str, Reader] = {}
    for form in forms:
        read = next((r for r in readers if r.covers(form)), None)
        if read is None:
            site.append(form)
            continue
        named.setdefault(read.key, read.reader)
        own.setdefault(read.key, []).append(form)
    streams = [Stream(reader=None, forms=tuple(site))]
    streams += [Stream(reader=named[key], forms=tuple(own[key])) for key in sorted(own)]
    return streams


def central_readers(store: FhirStore, patient: str) -> tuple[list[CentralRead], list[Issue]]:
    """The central readers of every study ``patient`` is enrolled in (withdrawn enrolments too,
    with their date), read from the store: ``ResearchSubject?individual=Patient/<id>`` and each
    one's ResearchStudy by its reference. A study that cannot be read is left out with a
    warning (its readers' forms are then the site's), and so is everything when the server
    refuses the ResearchSubject search (4xx: a server without the type holds no enrolment).

    :raises fhirnet.errors.FhirServerUnavailableError: reading failed and may work later.
    """
    params = {"individual": f"Patient/{patient}", "_count": history.PAGE_SIZE}
    try:
        # A list: a server that refuses the search does so on the first page.
        subjects = list(store.search(RESEARCH_SUBJECT, params))
    except FhirServerRejectedError as error:
        # A server without ResearchSubject holds no enrolment: every form is the site's, as
        # before streams existed; a server that is down still fails the submission.
        return [], [
            Issue.warning(
                IssueType.PROCESSING,
                "The FHIR server does not answer ResearchSubject searches, so the patient's "
                f"study enrolment is unknown: every form is assessed as a site read ({error}).",
            )
        ]
    found: list[CentralRead] = []
    issues: list[Issue] = []
    studies: dict[str, Json | None] = {}
    for subject in subjects:
        # Filtered again: a server may ignore `individual` (history module docstring).
        if subject.get("resourceType") != RESEARCH_SUBJECT or subject_patient(subject) != patient:
            continue
        reference = _study_reference(subject)
        if reference is None:
            continue
        if reference not in studies:
            studies[reference] = store.read(RESEARCH_STUDY, reference.split("/", 1)[1])
        study = studies[reference]
        readers = None if study is None else _central(study)
        if readers is None:
            issues.append(
                Issue.warning(
                    IssueType.PROCESSING,
                    f"The patient's study {reference} cannot be read: its central readers' "
                    "forms are assessed with the site's.",
                )
            )
            continue
        until, withdrawn = _enrolled_until(subject)
        found += [CentralRead(reader=r, until=until, withdrawn=withdrawn) for r in readers]
    return found, issues


def readers_for(
    store: FhirStore, patient: str, forms: Iterable[ExamForm]
) -> tuple[list[CentralRead], list[Issue]]:
    """:func:`central_readers` of ``patient`` when one of ``forms`` (the stored and submitted
    ones) is authored by a Practitioner or PractitionerRole; without one no form can be a
    central read, and nothing is read.
    """
    if not any(reader_key(form.author) for form in forms):
        return [], []
    return central_readers(store, patient)


def _study_reference(subject: Mapping[str, Any]) -> str | None:
    study = subject.get("study")
    reference = study.get("reference") if isinstance(study, Mapping) else None
    if not isinstance(reference, str):
        return None
    parts = reference.split("/_history/", 1)[0].rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != RESEARCH_STUDY:
        return None
    return f"{RESEARCH_STUDY}/{parts[-1]}"


def _central(study: Json) -> list[Reader] | None:
    """The study's central readers; ``None`` when it is not a study fhirnet can read."""
    study_id = next(
        (
            i.get("value")
            for i in study.get("identifier", [])
            if isinstance(i, Mapping) and i.get("system") == STUDY_SYSTEM
        ),
        None,
    )
    if not isinstance(study_id, str):
        return None
    try:
        readers = study_of(study, study_id).readers
    except UnreadableStudyError:
        return None
    return [reader for reader in readers if reader.role is ReaderRole.CENTRAL]


def _enrolled_until(subject: Mapping[str, Any]) -> tuple[dt.date | None, bool]:
    """The last date a ResearchSubject covers (its ``period.end``), and whether it is withdrawn
    without one."""
    period = subject.get("period")
    end = period.get("end") if isinstance(period, Mapping) else None
    withdrawn = subject.get("status") == SubjectStatus.WITHDRAWN.value
    if isinstance(end, str):
        try:
            return dt.date.fromisoformat(end[:10]), withdrawn
        except ValueError:
            pass
    return None, withdrawn
