"""The main job of fhirnet: submitted forms → each patient's timeline → the assessment → one FHIR
transaction of the results (:func:`submit`, :func:`submit_bundle`), or that transaction returned
without writing it (:func:`extract`). No Flask, no HTTP: the store, the locks, the clock and the
audit trail come in as one :class:`~fhirnet.services.context.Context` (``style.md`` P10, P13).
What to write is planned by :mod:`fhirnet.services.planning` (steps 2-6); this module holds the
use cases: checking, locking, writing, answering and auditing.

**Pipeline**, per patient, under the patient's lock (:class:`~fhirnet.ports.PatientLocks`):

1. the forms are validated and read (:func:`fhirnet.services.forms.receive`); in a Bundle, all
   of them before anything else;
2. the patient's stored forms are read back (:func:`fhirnet.services.history.stored_forms`);
   *before* is the timeline of the stored forms, *after* the same with each submitted form in
   the place of its stored version (same identifier) or added;
3. both are split into read streams (the site's, and for a patient enrolled in a study each
   central reader's own: :mod:`fhirnet.services.streams`, read once under the patient's lock),
   each stream into timelines, one per baseline form, and assessed
   (:func:`fhirnet.services.timelines.assess_streams`);
4. :func:`fhirnet.fhir.build.exams_to_rebuild` compares the two: the submitted exam when it is new
   or changed, and every later exam whose results change with it (a corrected baseline or nadir),
   marked ``amended`` when they had results. An identical resubmission rebuilds nothing and
   writes nothing: the answer is the stored DiagnosticReport (``created`` false);
5. stale results: an amended exam that no longer has a resource it had before (a target lesion
   or the risk group dropped, a follow-up turned baseline) gets the stored Observation back with
   status ``entered-in-error`` in the same transaction (a conditional update cannot delete);
6. one transaction Bundle for everything (:func:`fhirnet.fhir.build.build_transaction`), written
   with :meth:`~fhirnet.ports.FhirStore.transaction`: all or nothing.

**Audit** (:mod:`fhirnet.services.audits`): with an ``audit`` trail in the context (the web layer
always sets one), each submitted form gets an AuditEvent (action ``C``; subtype ``create``,
``transaction`` or ``batch``; the patient and every resource the transaction writes about the
patient, or the stored DiagnosticReport an identical resubmission is answered with) appended to the
**same transaction** as its results, after :func:`~fhirnet.fhir.build.build_transaction`'s entries
(so ``$extract``'s Bundle stays the golden one). An identical resubmission writes a transaction of
its AuditEvent alone. A failed request writes a failure AuditEvent on its own, best effort.
``$extract`` reads patient data: its AuditEvent (subtype ``operation``, action ``E``), naming the
patient and every resource of the Bundle, is written on its own before the Bundle is returned.
Without one (unit tests, benchmarks) nothing is audited.

The lock matters because the first submission of a form finds no results and creates them: two
simultaneous first submissions would both create. Under the lock the second one finds the first
one's form and writes nothing.

**Identifier locks.** A form is written by a conditional update on its identifier, so a form of
patient B with the identifier of patient A's form would replace A's. The planner refuses that
(another patient's form with the identifier is found), but the patients' locks do not serialise
two *different* patients: two first forms with one identifier, submitted at the same moment,
both found nothing and both were written, B's replacing A's (finding 3 of the security review).
So :func:`_write` also holds a lock per submitted identifier (:func:`identifier_lock`, through
:attr:`Context.form_locks`) from the check to the end of the write, taken after the patients'
locks, each set in sorted order: a holder of identifier locks never waits for a patient's lock,
so no two submissions deadlock. The loser of the race then finds the winner's form and is
refused with 422.

**Errors**: a form that cannot be accepted raises
:class:`~fhirnet.fhir.outcome.UnprocessableResourceError` with every issue, expressions pointing at
the form's items (also for the assessment's rules: a follow-up target that is not a baseline
target, a baseline breaking target selection, no baseline form); a Bundle that is not what
:func:`submit_bundle` takes raises :class:`~fhirnet.fhir.outcome.MalformedRequestError`; the
store's refusal or absence propagates (:class:`~fhirnet.errors.FhirServerError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fhirnet.errors import FhirnetError, FhirServerError
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.outcome import (
    Issue,
    MalformedRequestError,
    OutcomeError,
    UnprocessableResourceError,
)
from fhirnet.ports import Json
from fhirnet.services.audits import (
    audit_bundle_failure,
    audit_failure,
    extract_event,
    submission_events,
)
from fhirnet.services.bundles import bundle_entries, entry_prefix
from fhirnet.services.context import Context
from fhirnet.services.forms import ReceivedForm, receive
from fhirnet.services.planning import category, plan

__all__ = [
    "BundleOutcome",
    "Submission",
    "extract",
    "patients_of_bundle",
    "patients_of_form",
    "submit",
    "submit_bundle",
]


@dataclass(frozen=True, kw_only=True)
class Submission:
    """What became of one submitted form.

    :ivar report: the exam's DiagnosticReport as the server holds it (with ``id`` and ``meta``).
    :ivar created: whether this submission created the report (else it was updated, or nothing
        was written at all: an identical resubmission).
    :ivar issues: information and warnings for the submitter: what was written, the assessment's
        warnings, a reader conclusion that differs from the computed category, re-assessed exams.
    :ivar form: the form as the server holds it after this submission (``id``, ``meta``), from
        the transaction-response; ``None`` when nothing was written for it or the server did not
        send it back (the web layer then finds it by its identifier).
    """

    report: Json
    created: bool
    issues: tuple[Issue, ...]
    form: Json | None = None


@dataclass(frozen=True, kw_only=True)
class BundleOutcome:
    """The answer to each entry of a submitted Bundle, in entry order: a :class:`Submission`, or
    (``batch`` only) the error that entry met."""

    type: str
    results: tuple[Submission | FhirnetError, ...]


def submit(resource: Mapping[str, Any], context: Context) -> Submission:
    """Accept one QuestionnaireResponse: assess it with the patient's earlier forms and write the
    form and its results in one transaction (module docstring).

    :param resource: the QuestionnaireResponse as JSON.
    :param context: the store, catalog, locks, time, client-id types and audit trail; ``now``
        is ``issued`` of the results, and its UTC date the validator's "today".
    :returns: the DiagnosticReport of the form's exam and what to tell the submitter.
    :raises UnprocessableResourceError: the form is invalid, or breaks a rule of the assessment.
    :raises fhirnet.errors.FhirServerError: the server refused the transaction, or is unavailable.
    :raises fhirnet.errors.PatientBusyError: the patient's lock stayed taken.
    """
    try:
        received = receive(resource, catalog=context.catalog, today=context.today)
        (result,) = _write([received], context, Interaction.CREATE)
    except Exception as error:
        audit_failure(context, Interaction.CREATE, Action.CREATE, [resource], error)
        raise
    return result


def submit_bundle(bundle: Mapping[str, Any], context: Context) -> BundleOutcome:
    """Accept the forms of a ``transaction`` or ``batch`` Bundle, each entry
    ``{"resource": <QuestionnaireResponse>, "request": {"method": "POST", "url":
    "QuestionnaireResponse"}}``; forms of one patient are taken in imaging-date order.

    ``transaction``: every form is validated first (any problem refuses the whole Bundle, with
    every issue, expressions under ``Bundle.entry[i].resource``), then all results of all
    patients are written in one FHIR transaction. ``batch``: each entry on its own, with its own
    transaction; an entry that fails is answered with its error, the others go on.

    Parameters as for :func:`submit`.

    :raises MalformedRequestError: not a transaction or batch Bundle of such entries (for a batch:
        only when the Bundle itself is malformed; a bad entry is that entry's answer).
    :raises UnprocessableResourceError: (transaction) a form is invalid or breaks a rule.
    """
    try:
        return _submit_bundle(bundle, context)
    except Exception as error:
        audit_bundle_failure(context, bundle, error)
        raise


def _submit_bundle(bundle: Mapping[str, Any], context: Context) -> BundleOutcome:
    kind, entries, forms, refused = _received_bundle(bundle, context)
    if kind == "transaction":
        results = _write(list(forms.values()), context, Interaction.TRANSACTION)
        return BundleOutcome(type=kind, results=tuple(results))
    answers: dict[int, Submission | FhirnetError] = dict(refused)
    for index, refusal in refused.items():
        entry = entries[index]
        refused_forms = [] if isinstance(entry, OutcomeError) else [entry]
        audit_failure(context, Interaction.BATCH, Action.CREATE, refused_forms, refusal)
    for index, form in sorted(forms.items(), key=lambda pair: pair[1].form.imaging_date):
        try:
            (answers[index],) = _write([form], context, Interaction.BATCH)
        except FhirnetError as error:  # batch: the entry's answer, the others go on
            answers[index] = error
            about = [{"subject": {"reference": f"Patient/{form.patient}"}}]
            audit_failure(context, Interaction.BATCH, Action.CREATE, about, error)
    return BundleOutcome(type=kind, results=tuple(answers[i] for i in range(len(entries))))


def _received_bundle(
    bundle: Mapping[str, Any], context: Context
) -> tuple[str, list[Any], dict[int, ReceivedForm], dict[int, OutcomeError]]:
    """A Bundle's type, entries, the forms that pass their checks and the refused entries (by
    entry index); a ``transaction`` with any refused entry is refused whole."""
    kind, entries = bundle_entries(bundle)
    today = context.today
    forms: dict[int, ReceivedForm] = {}
    refused: dict[int, OutcomeError] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, OutcomeError):
            refused[index] = entry
            continue
        try:
            received = receive(
                entry, catalog=context.catalog, today=today, prefix=entry_prefix(index)
            )
            full_url = _full_url(bundle, index) if kind == "transaction" else None
            forms[index] = replace(received, full_url=full_url)
        except UnprocessableResourceError as error:
            refused[index] = error
    if kind == "transaction" and refused:
        issues = [issue for error in refused.values() for issue in error.issues]
        if any(isinstance(error, MalformedRequestError) for error in refused.values()):
            raise MalformedRequestError(issues)
        raise UnprocessableResourceError(issues)
    return kind, entries, forms, refused


def _full_url(bundle: Mapping[str, Any], index: int) -> str | None:
    """The ``fullUrl`` of entry ``index`` of a checked Bundle, if it has one."""
    full_url = bundle["entry"][index].get("fullUrl")
    return full_url if isinstance(full_url, str) else None


def patients_of_form(resource: Mapping[str, Any], context: Context) -> frozenset[str]:
    """Check a form as :func:`submit` would before anything is read or written, and name its
    patient: what the outbox needs to accept it (:mod:`fhirnet.services.delivery`). Reads
    nothing but ``context``'s catalog and time; writes only a failure's AuditEvent.

    :raises UnprocessableResourceError: the form is invalid (its failure is audited, best
        effort, like :func:`submit`'s).
    """
    try:
        return frozenset({receive(resource, catalog=context.catalog, today=context.today).patient})
    except Exception as error:
        audit_failure(context, Interaction.CREATE, Action.CREATE, [resource], error)
        raise


def patients_of_bundle(bundle: Mapping[str, Any], context: Context) -> frozenset[str]:
    """Check a Bundle as :func:`submit_bundle` would before anything is read or written, and
    name the patients of the forms it will write.

    :raises MalformedRequestError: as for :func:`submit_bundle`.
    :raises UnprocessableResourceError: a ``transaction`` holds an invalid form (a ``batch``
        entry's problem is that entry's answer, at delivery).
    """
    try:
        forms = _received_bundle(bundle, context)[2]
    except Exception as error:
        audit_bundle_failure(context, bundle, error)
        raise
    return frozenset(form.patient for form in forms.values())


def extract(resource: Mapping[str, Any], context: Context) -> Json:
    """The resources :func:`submit` would write for ``resource`` itself, as a transaction
    Bundle, not written (SDC ``$extract``, for EHRs that write themselves). Unlike
    :func:`submit` it always holds the form's own exam, even when the server has its results
    already, and **only** that exam: not the later stored exams the form would re-assess, nor
    the retraction of stored results (they would disclose stored forms and results the form
    does not derive: finding 2 of the security review). It takes no lock. Its AuditEvent names
    the patient and every resource of the Bundle (:func:`~fhirnet.services.audits.extract_event`).

    :raises UnprocessableResourceError: as for :func:`submit`.
    :raises fhirnet.errors.FhirServerError: reading the patient's history failed, or (with an
        audit trail) its AuditEvent could not be written: nothing is disclosed without its record.
    """
    try:
        received = receive(resource, catalog=context.catalog, today=context.today)
        bundle = plan([received], context, own_exams=True).bundle
    except Exception as error:
        audit_failure(context, Interaction.OPERATION, Action.EXECUTE, [resource], error)
        raise
    audit = context.audit
    if audit is not None:
        patient = f"Patient/{received.patient}"
        event = extract_event(audit, now=context.now, patient=patient, entries=bundle["entry"])
        audit.write(context.store, [event])
    return bundle


# -- writing ---------------------------------------------------------------------------------


def _write(
    forms: Sequence[ReceivedForm], context: Context, interaction: Interaction
) -> list[Submission]:
    """Plan and write under the locks of every patient involved, each form's AuditEvent in the
    same transaction; the answer per form."""
    store, audit = context.store, context.audit
    with (
        context.locks.hold({form.patient for form in forms}),
        context.form_locks.hold({identifier_lock(form) for form in forms}),
    ):
        planned = plan(forms, context, own_exams=False)
        sent = [*planned.bundle["entry"]]
        if audit is not None:
            found = submission_events(
                audit,
                now=context.now,
                interaction=interaction,
                forms=forms,
                entries=planned.bundle["entry"],
                reports=planned.reports,
            )
            sent += [audit.entry(event) for event in found]
        response = store.transaction({**planned.bundle, "entry": sent}) if sent else {"entry": []}
    urls = [entry["fullUrl"] for entry in planned.bundle["entry"]]
    answers = response.get("entry") or []
    if len(answers) != len(sent):
        raise FhirServerError(
            f"the transaction-response has {len(answers)} entries for the {len(sent)} sent"
        )
    results = []
    for form in forms:
        report_url = form.report_identifier.full_url
        created = False
        if report_url in urls:
            answer = answers[urls.index(report_url)]
            report = _written(context, answer)
            created = str((answer.get("response") or {}).get("status", "")).startswith("201")
        else:
            report = planned.reports[form.key]
        exam = planned.exams[form.key]
        how = "created" if created else ("updated" if report_url in urls else "unchanged")
        summary = Issue.information(f"DiagnosticReport/{report.get('id')} {how}: {category(exam)}.")
        results.append(
            Submission(
                report=report,
                created=created,
                issues=(summary, *planned.notes[form.key]),
                form=_stored_form(answers, urls, form.identifier.full_url),
            )
        )
    return results


def _stored_form(answers: Sequence[Json], urls: list[str], form_url: str) -> Json | None:
    """The written form in the transaction-response, when it is there with its ``id`` and
    ``meta.versionId``: what reading it back by identifier would give, without that search."""
    if form_url not in urls:
        return None
    resource = answers[urls.index(form_url)].get("resource")
    if not isinstance(resource, dict) or resource.get("resourceType") != "QuestionnaireResponse":
        return None
    meta = resource.get("meta")
    has_version = isinstance(meta, dict) and isinstance(meta.get("versionId"), str)
    return resource if isinstance(resource.get("id"), str) and has_version else None


def identifier_lock(form: ReceivedForm) -> str:
    """The lock key of a form's identifier. A patient id (``[A-Za-z0-9-.]``) never holds a space,
    so no identifier's key is a patient's."""
    return f"QuestionnaireResponse.identifier {form.key}"


def _written(context: Context, answer: Mapping[str, Any]) -> Json:
    """The resource a transaction-response entry wrote: its ``resource``, else read back from
    its ``location`` (a server may answer ``return=minimal`` whatever was asked)."""
    resource = answer.get("resource")
    if isinstance(resource, dict):
        return resource
    location = str((answer.get("response") or {}).get("location", ""))
    path = location.split("/_history/", 1)[0].rstrip("/").split("/")
    found = context.store.read(path[-2], path[-1]) if len(path) >= 2 else None
    if found is None:
        raise FhirServerError(
            f"the DiagnosticReport the server wrote cannot be read back from {location!r}"
        )
    return found
