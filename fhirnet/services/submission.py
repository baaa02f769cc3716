"""The main job of fhirnet: submitted forms → each patient's timeline → the assessment → one FHIR
transaction of the results (:func:`submit`, :func:`submit_bundle`), or that transaction returned
without writing it (:func:`extract`). No Flask, no HTTP: the store, the locks and the clock come
in as arguments (``style.md`` P10, P13).

**Pipeline**, per patient, under the patient's lock (:class:`~fhirnet.ports.PatientLocks`):

1. the forms are validated and read (:func:`fhirnet.services.forms.receive`); in a Bundle, all
   of them before anything else;
2. the patient's stored forms are read back (:func:`fhirnet.services.history.stored_forms`);
   *before* is the timeline of the stored forms, *after* the same with each submitted form in
   the place of its stored version (same identifier) or added;
3. both are split into timelines, one per baseline form, and assessed
   (:func:`fhirnet.services.timelines.assess_forms`);
4. :func:`fhirnet.fhir.build.exams_to_rebuild` compares the two: the submitted exam when it is new
   or changed, and every later exam whose results change with it (a corrected baseline or nadir),
   marked ``amended`` when they had results. An identical resubmission rebuilds nothing and
   writes nothing: the answer is the stored DiagnosticReport (``created`` false);
5. stale results: an amended exam that no longer has a resource it had before (a target lesion
   or the risk group dropped, a follow-up turned baseline) gets the stored Observation back with
   status ``entered-in-error`` in the same transaction (a conditional update cannot delete);
6. one transaction Bundle for everything (:func:`fhirnet.fhir.build.build_transaction`), written
   with :meth:`~fhirnet.ports.FhirStore.transaction`: all or nothing.

**Audit** (:mod:`fhirnet.services.audits`): with an ``audit`` trail (the web layer always passes
one), each submitted form gets an AuditEvent (action ``C``; subtype ``create``, ``transaction``
or ``batch``; the patient and every resource the transaction writes about the patient, or the
stored DiagnosticReport an identical resubmission is answered with) appended to the **same
transaction** as its results, after :func:`~fhirnet.fhir.build.build_transaction`'s entries (so
``$extract``'s Bundle stays the golden one). An identical resubmission writes a transaction of
its AuditEvent alone. A failed request writes a failure AuditEvent on its own, best effort.
``$extract`` reads patient data: its AuditEvent (subtype ``operation``, action ``E``) is written
on its own before the Bundle is returned. Without ``audit`` (unit tests, benchmarks) nothing is
audited.

The lock matters because the first submission of a form finds no results and creates them: two
simultaneous first submissions would both create. Under the lock the second one finds the first
one's form and writes nothing.

**Errors**: a form that cannot be accepted raises
:class:`~fhirnet.fhir.outcome.UnprocessableResourceError` with every issue, expressions pointing at
the form's items (also for the assessment's rules: a follow-up target that is not a baseline
target, a baseline breaking target selection, no baseline form); a Bundle that is not what
:func:`submit_bundle` takes raises :class:`~fhirnet.fhir.outcome.MalformedRequestError`; the
store's refusal or absence propagates (:class:`~fhirnet.errors.FhirServerError`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from fhirnet.errors import FhirnetError, FhirServerError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import Action, Interaction
from fhirnet.fhir.build import ExamResult, build_transaction, exams_to_rebuild
from fhirnet.fhir.identifiers import (
    DEFAULT_CLIENT_ID_TYPES,
    Identifier,
)
from fhirnet.fhir.observations import concordant
from fhirnet.fhir.outcome import (
    Issue,
    IssueType,
    MalformedRequestError,
    OutcomeError,
    Severity,
    UnprocessableResourceError,
)
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL, Catalog
from fhirnet.fhir.report import CRITERIA_LABELS
from fhirnet.ports import FhirStore, Json, PatientLocks
from fhirnet.services import history
from fhirnet.services.audits import AuditTrail
from fhirnet.services.bundles import bundle_entries, entry_prefix
from fhirnet.services.forms import ReceivedForm, content_of, form_key, receive
from fhirnet.services.timelines import assess_forms, rule_error, rule_warning

__all__ = [
    "BundleOutcome",
    "Submission",
    "extract",
    "patients_of_bundle",
    "patients_of_form",
    "submit",
    "submit_bundle",
]

#: :func:`~fhirnet.fhir.build.build_transaction` with the time and the server's capability bound.
Builder = Callable[[Sequence[ExamResult]], Json]

REPORT: Final = "DiagnosticReport"
#: Assessment warning code → the item it is about.
_WARNING_ITEMS: Final = {
    "missing-modality": "imaging-procedure",
    "reader-nadir-date": "nadir-date",
    "new-modality-lesion": "new-lesion",
    "pet-reference-missing": "pet-reference",
    "blood-pool-reference": "pet-reference",
    "liver-drift": "pet-reference",
    "uptake-time": "pet-reference",
}


@dataclass(frozen=True, kw_only=True)
class Submission:
    """What became of one submitted form.

    :ivar report: the exam's DiagnosticReport as the server holds it (with ``id`` and ``meta``).
    :ivar created: whether this submission created the report (else it was updated, or nothing
        was written at all: an identical resubmission).
    :ivar issues: information and warnings for the submitter: what was written, the assessment's
        warnings, a reader conclusion that differs from the computed category, re-assessed exams.
    """

    report: Json
    created: bool
    issues: tuple[Issue, ...]


@dataclass(frozen=True, kw_only=True)
class BundleOutcome:
    """The answer to each entry of a submitted Bundle, in entry order: a :class:`Submission`, or
    (``batch`` only) the error that entry met."""

    type: str
    results: tuple[Submission | FhirnetError, ...]


def submit(
    resource: Mapping[str, Any],
    *,
    store: FhirStore,
    catalog: Catalog,
    locks: PatientLocks,
    now: dt.datetime,
    client_id_types: Collection[str] = DEFAULT_CLIENT_ID_TYPES,
    audit: AuditTrail | None = None,
) -> Submission:
    """Accept one QuestionnaireResponse: assess it with the patient's earlier forms and write the
    form and its results in one transaction (module docstring).

    :param resource: the QuestionnaireResponse as JSON.
    :param store: the FHIR server (or the embedded store) read from and written to.
    :param catalog: the conformance package holding the form.
    :param locks: the per-patient locks.
    :param now: the current time, timezone-aware: ``issued`` of the results, and the validator's
        "today" (its UTC date).
    :param client_id_types: types the server cannot update conditionally by identifier
        (:func:`fhirnet.fhir.identifiers.client_id_types` of its CapabilityStatement).
    :param audit: who asks; an AuditEvent goes with the results (module docstring).
    :returns: the DiagnosticReport of the form's exam and what to tell the submitter.
    :raises UnprocessableResourceError: the form is invalid, or breaks a rule of the assessment.
    :raises fhirnet.errors.FhirServerError: the server refused the transaction, or is unavailable.
    :raises fhirnet.errors.PatientBusyError: the patient's lock stayed taken.
    """
    try:
        received = receive(resource, catalog=catalog, today=_today(now))
        (result,) = _write(
            [received], store, locks, now, client_id_types, audit, Interaction.CREATE
        )
    except Exception as error:
        _audit_failure(audit, store, now, Interaction.CREATE, Action.CREATE, [resource], error)
        raise
    return result


def submit_bundle(
    bundle: Mapping[str, Any],
    *,
    store: FhirStore,
    catalog: Catalog,
    locks: PatientLocks,
    now: dt.datetime,
    client_id_types: Collection[str] = DEFAULT_CLIENT_ID_TYPES,
    audit: AuditTrail | None = None,
) -> BundleOutcome:
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
        return _submit_bundle(bundle, store, catalog, locks, now, client_id_types, audit)
    except Exception as error:
        _audit_bundle_failure(audit, store, now, bundle, error)
        raise


def _submit_bundle(
    bundle: Mapping[str, Any],
    store: FhirStore,
    catalog: Catalog,
    locks: PatientLocks,
    now: dt.datetime,
    client_id_types: Collection[str],
    audit: AuditTrail | None,
) -> BundleOutcome:
    kind, entries, forms, refused = _received_bundle(bundle, catalog, now)
    if kind == "transaction":
        results = _write(
            list(forms.values()), store, locks, now, client_id_types, audit, Interaction.TRANSACTION
        )
        return BundleOutcome(type=kind, results=tuple(results))
    answers: dict[int, Submission | FhirnetError] = dict(refused)
    for index, refusal in refused.items():
        entry = entries[index]
        refused_forms = [] if isinstance(entry, OutcomeError) else [entry]
        _audit_failure(audit, store, now, Interaction.BATCH, Action.CREATE, refused_forms, refusal)
    for index, form in sorted(forms.items(), key=lambda pair: pair[1].form.imaging_date):
        try:
            (answers[index],) = _write(
                [form], store, locks, now, client_id_types, audit, Interaction.BATCH
            )
        except FhirnetError as error:  # batch: the entry's answer, the others go on
            answers[index] = error
            about = [{"subject": {"reference": f"Patient/{form.patient}"}}]
            _audit_failure(audit, store, now, Interaction.BATCH, Action.CREATE, about, error)
    return BundleOutcome(type=kind, results=tuple(answers[i] for i in range(len(entries))))


def _received_bundle(
    bundle: Mapping[str, Any], catalog: Catalog, now: dt.datetime
) -> tuple[str, list[Any], dict[int, ReceivedForm], dict[int, OutcomeError]]:
    """A Bundle's type, entries, the forms that pass their checks and the refused entries (by
    entry index); a ``transaction`` with any refused entry is refused whole."""
    kind, entries = bundle_entries(bundle)
    today = _today(now)
    forms: dict[int, ReceivedForm] = {}
    refused: dict[int, OutcomeError] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, OutcomeError):
            refused[index] = entry
            continue
        try:
            forms[index] = receive(entry, catalog=catalog, today=today, prefix=entry_prefix(index))
        except UnprocessableResourceError as error:
            refused[index] = error
    if kind == "transaction" and refused:
        issues = [issue for error in refused.values() for issue in error.issues]
        if any(isinstance(error, MalformedRequestError) for error in refused.values()):
            raise MalformedRequestError(issues)
        raise UnprocessableResourceError(issues)
    return kind, entries, forms, refused


def patients_of_form(
    resource: Mapping[str, Any],
    *,
    catalog: Catalog,
    now: dt.datetime,
    store: FhirStore,
    audit: AuditTrail | None = None,
) -> frozenset[str]:
    """Check a form as :func:`submit` would before anything is read or written, and name its
    patient: what the outbox needs to accept it (:mod:`fhirnet.services.delivery`).

    :raises UnprocessableResourceError: the form is invalid (its failure is audited, best
        effort, like :func:`submit`'s).
    """
    try:
        return frozenset({receive(resource, catalog=catalog, today=_today(now)).patient})
    except Exception as error:
        _audit_failure(audit, store, now, Interaction.CREATE, Action.CREATE, [resource], error)
        raise


def patients_of_bundle(
    bundle: Mapping[str, Any],
    *,
    catalog: Catalog,
    now: dt.datetime,
    store: FhirStore,
    audit: AuditTrail | None = None,
) -> frozenset[str]:
    """Check a Bundle as :func:`submit_bundle` would before anything is read or written, and
    name the patients of the forms it will write.

    :raises MalformedRequestError: as for :func:`submit_bundle`.
    :raises UnprocessableResourceError: a ``transaction`` holds an invalid form (a ``batch``
        entry's problem is that entry's answer, at delivery).
    """
    try:
        forms = _received_bundle(bundle, catalog, now)[2]
    except Exception as error:
        _audit_bundle_failure(audit, store, now, bundle, error)
        raise
    return frozenset(form.patient for form in forms.values())


def extract(
    resource: Mapping[str, Any],
    *,
    store: FhirStore,
    catalog: Catalog,
    now: dt.datetime,
    client_id_types: Collection[str] = DEFAULT_CLIENT_ID_TYPES,
    audit: AuditTrail | None = None,
) -> Json:
    """The transaction Bundle :func:`submit` would write for ``resource``, not written (SDC
    ``$extract``, for EHRs that write themselves). Unlike :func:`submit` it always holds the
    form's own exam, even when the server has its results already.

    :raises UnprocessableResourceError: as for :func:`submit`.
    :raises fhirnet.errors.FhirServerError: reading the patient's history failed, or (with
        ``audit``) its AuditEvent could not be written: nothing is disclosed without its record.
    """
    try:
        received = receive(resource, catalog=catalog, today=_today(now))
        bundle = _plan([received], store, now, client_id_types, own_exams=True).bundle
    except Exception as error:
        _audit_failure(audit, store, now, Interaction.OPERATION, Action.EXECUTE, [resource], error)
        raise
    if audit is not None:
        entities = [events.patient(f"Patient/{received.patient}")]
        event = audit.event(
            interaction=Interaction.OPERATION, action=Action.EXECUTE, now=now, entities=entities
        )
        audit.write(store, [event])
    return bundle


# -- planning --------------------------------------------------------------------------------


@dataclass(kw_only=True)
class _Plan:
    """What one submission writes, and what each submitted form is answered."""

    bundle: Json = field(default_factory=dict)
    #: The exams to (re)write, of every patient.
    rebuilt: list[ExamResult] = field(default_factory=list)
    #: Amended exams as they were and as they are: what they no longer write is retracted.
    stale: list[tuple[ExamResult, ExamResult]] = field(default_factory=list)
    #: Per submitted form (key): its exam as assessed now.
    exams: dict[str, ExamResult] = field(default_factory=dict)
    #: Per submitted form that is not rewritten: its stored DiagnosticReport.
    reports: dict[str, Json] = field(default_factory=dict)
    notes: dict[str, list[Issue]] = field(default_factory=dict)


def _write(
    forms: Sequence[ReceivedForm],
    store: FhirStore,
    locks: PatientLocks,
    now: dt.datetime,
    client_id_types: Collection[str],
    audit: AuditTrail | None,
    interaction: Interaction,
) -> list[Submission]:
    """Plan and write under the locks of every patient involved, each form's AuditEvent in the
    same transaction; the answer per form."""
    with locks.hold({form.patient for form in forms}):
        plan = _plan(forms, store, now, client_id_types, own_exams=False)
        sent = [*plan.bundle["entry"]]
        if audit is not None:
            sent += [audit.entry(event) for event in _events(plan, forms, audit, now, interaction)]
        response = store.transaction({**plan.bundle, "entry": sent}) if sent else {"entry": []}
    urls = [entry["fullUrl"] for entry in plan.bundle["entry"]]
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
            report = _written(store, answer)
            created = str((answer.get("response") or {}).get("status", "")).startswith("201")
        else:
            report = plan.reports[form.key]
        exam = plan.exams[form.key]
        how = "created" if created else ("updated" if report_url in urls else "unchanged")
        summary = Issue(
            severity=Severity.INFORMATION,
            code=IssueType.INFORMATIONAL,
            expression=None,
            message=f"DiagnosticReport/{report.get('id')} {how}: {_category(exam)}.",
        )
        results.append(
            Submission(report=report, created=created, issues=(summary, *plan.notes[form.key]))
        )
    return results


def _written(store: FhirStore, answer: Mapping[str, Any]) -> Json:
    """The resource a transaction-response entry wrote: its ``resource``, else read back from
    its ``location`` (a server may answer ``return=minimal`` whatever was asked)."""
    resource = answer.get("resource")
    if isinstance(resource, dict):
        return resource
    location = str((answer.get("response") or {}).get("location", ""))
    path = location.split("/_history/", 1)[0].rstrip("/").split("/")
    found = store.read(path[-2], path[-1]) if len(path) >= 2 else None
    if found is None:
        raise FhirServerError(
            f"the DiagnosticReport the server wrote cannot be read back from {location!r}"
        )
    return found


def _plan(
    forms: Sequence[ReceivedForm],
    store: FhirStore,
    now: dt.datetime,
    client_id_types: Collection[str],
    *,
    own_exams: bool,
) -> _Plan:
    """The transaction for ``forms`` and the answer to each (module docstring, steps 2-6).

    :param own_exams: always rebuild the submitted forms' exams (``$extract``), instead of
        answering an unchanged one with its stored report.
    :raises UnprocessableResourceError: every problem with every patient's forms.
    """
    _check_unique(forms)
    by_patient: dict[str, list[ReceivedForm]] = {}
    for form in forms:
        by_patient.setdefault(form.patient, []).append(form)
    plan = _Plan()
    errors: list[Issue] = []
    for patient, own in by_patient.items():
        errors += _plan_patient(plan, store, patient, own, own_exams=own_exams)
    if errors:
        raise UnprocessableResourceError(errors)
    build: Builder = partial(build_transaction, issued=now, client_id_types=client_id_types)
    plan.bundle = build(plan.rebuilt)
    for old, new in plan.stale:
        plan.bundle["entry"] += _retracted(store, old, new, build)
    return plan


def _plan_patient(
    plan: _Plan, store: FhirStore, patient: str, own: Sequence[ReceivedForm], *, own_exams: bool
) -> list[Issue]:
    """Add one patient's exams to rebuild, amended exams and the answers' notes to ``plan``;
    returns the errors (and adds nothing when there are any)."""
    received = {form.key: form for form in own}
    errors = _foreign(store, patient, own)
    stored, unread = history.stored_forms(store, patient=patient, questionnaire=QUESTIONNAIRE_URL)
    after_forms = [f for f in stored if form_key(f) not in received] + [f.form for f in own]
    before, _ = assess_forms(stored, {})
    after, issues = assess_forms(after_forms, received)
    errors += [issue for issue in issues if issue.is_error]
    if errors:
        return errors
    warnings = [*unread, *(issue for issue in issues if not issue.is_error)]
    exams = {form_key(result.form): result for result in after}
    changed = list(exams_to_rebuild(before, after))
    changed_keys = {form_key(result.form) for result in changed}
    for key, form in received.items():
        plan.exams[key] = exams[key]
        if key in changed_keys:
            continue
        report = None if own_exams else history.find(store, REPORT, form.report_identifier)
        if report is None:  # no results (yet): written by an EHR without fhirnet, say
            changed.append(exams[key])
        else:
            plan.reports[key] = report
    previous = {form_key(result.form): result for result in before}
    plan.stale += [
        (previous[form_key(exam.form)], exam)
        for exam in changed
        if exam.amended and form_key(exam.form) in previous
    ]
    plan.rebuilt += changed
    later = sorted(r.form.imaging_date for r in changed if form_key(r.form) not in received)
    for key, form in received.items():
        plan.notes[key] = [
            *form.notes,
            *_exam_notes(form, exams[key]),
            *_reassessed(later),
            *warnings,
        ]
    return errors


def _foreign(store: FhirStore, patient: str, forms: Sequence[ReceivedForm]) -> list[Issue]:
    """An error for each form whose identifier names another patient's form on the server: the
    form would replace it (conditional update by identifier)."""
    issues = []
    for form in forms:
        for other in history.with_identifier(store, "QuestionnaireResponse", form.identifier):
            if history.subject_patient(other) != patient:
                issues.append(
                    Issue(
                        severity=Severity.ERROR,
                        code=IssueType.BUSINESS_RULE,
                        expression=f"{form.prefix}.identifier",
                        message=f"The identifier {form.key} already identifies a form of another "
                        "patient on the FHIR server; a form's identifier must be unique",
                    )
                )
                break
    return issues


def _retracted(store: FhirStore, old: ExamResult, new: ExamResult, build: Builder) -> list[Json]:
    """Entries marking ``entered-in-error`` the stored Observations of ``old`` that ``new`` no
    longer writes (module docstring, step 5)."""
    kept = {entry["fullUrl"] for entry in build([new])["entry"]}
    entries = []
    for entry in build([old])["entry"]:
        resource = entry["resource"]
        if entry["fullUrl"] in kept or resource["resourceType"] != "Observation":
            continue
        (identifier,) = (Identifier(**i) for i in resource["identifier"])
        stored = history.find(store, "Observation", identifier)
        if stored is None or stored.get("status") == "entered-in-error":
            continue
        retracted = {**content_of(stored), "id": stored["id"], "status": "entered-in-error"}
        entries.append(
            {
                "fullUrl": entry["fullUrl"],
                "resource": retracted,
                "request": {"method": "PUT", "url": f"Observation/{stored['id']}"},
            }
        )
    return entries


# -- notes for the submitter -----------------------------------------------------------------


def _exam_notes(form: ReceivedForm, exam: ExamResult) -> list[Issue]:
    """The assessment's warnings about the exam, and the reader's discordant conclusion."""
    notes = []
    for warning in exam.warnings:
        item = _WARNING_ITEMS.get(warning.split(":", 1)[0])
        notes.append(rule_warning(None if item is None else form.item(item), f"{warning}."))
    if exam.assessment is None:
        return notes
    computed = exam.assessment.overall_response
    label = CRITERIA_LABELS[exam.criteria]
    for link_id, answer in (
        ("response-vs-baseline", exam.form.response_vs_baseline),
        ("response-vs-nadir", exam.form.response_vs_nadir),
    ):
        if answer is not None and not concordant(answer, computed):
            notes.append(
                Issue(
                    severity=Severity.WARNING,
                    code=IssueType.BUSINESS_RULE,
                    expression=form.item(link_id),
                    message=f"Discordant: the reader's {link_id} is {answer}, {label} computes "
                    f"{computed}. Accepted; the report carries both and flags the discordance.",
                )
            )
    return notes


def _reassessed(days: Sequence[dt.date]) -> list[Issue]:
    if not days:
        return []
    exams = ", ".join(str(day) for day in days)
    return [
        Issue(
            severity=Severity.INFORMATION,
            code=IssueType.INFORMATIONAL,
            expression=None,
            message=f"Re-assessed with this form: the exam(s) of {exams}; their results are "
            "replaced (status amended).",
        )
    ]


def _category(exam: ExamResult) -> str:
    label = CRITERIA_LABELS[exam.criteria]
    if exam.pre_baseline:
        return f"{label} pre-baseline scan of {exam.form.imaging_date}, not assessed"
    if exam.assessment is None:
        return f"{label} baseline of {exam.form.imaging_date}"
    return f"{label} {exam.assessment.overall_response} at {exam.form.imaging_date}"


# -- audit -----------------------------------------------------------------------------------


def _events(
    plan: _Plan,
    forms: Sequence[ReceivedForm],
    audit: AuditTrail,
    now: dt.datetime,
    interaction: Interaction,
) -> list[Json]:
    """One AuditEvent per form: its patient, every resource the transaction writes about that
    patient (by fullUrl, which the server turns into the written resource's reference), and the
    stored DiagnosticReport an unchanged form is answered with."""
    written = _written_by_patient(plan.bundle["entry"])
    found = []
    for form in forms:
        patient = f"Patient/{form.patient}"
        entities = [events.patient(patient), *written.get(patient, [])]
        report = plan.reports.get(form.key)
        if report is not None:
            entities.append(events.resource(f"{REPORT}/{report.get('id')}", REPORT))
        found.append(
            audit.event(interaction=interaction, action=Action.CREATE, now=now, entities=entities)
        )
    return found


def _written_by_patient(entries: Sequence[Json]) -> dict[str, list[events.Entity]]:
    """The entities of a transaction's entries per ``Patient/<id>``; an entry that names no
    patient (a Provenance targets the others by fullUrl) goes with its targets' patients."""
    patients = {entry["fullUrl"]: events.patients_of(entry["resource"]) for entry in entries}
    found: dict[str, list[events.Entity]] = {}
    for entry in entries:
        resource = entry["resource"]
        own = patients[entry["fullUrl"]]
        if not own:
            targets = [t.get("reference") for t in _list(resource.get("target"))]
            own = list(
                dict.fromkeys(p for t in targets if isinstance(t, str) for p in patients.get(t, []))
            )
        entity = events.resource(entry["fullUrl"], str(resource["resourceType"]))
        for patient in own:
            found.setdefault(patient, []).append(entity)
    return found


def _audit_failure(
    audit: AuditTrail | None,
    store: FhirStore,
    now: dt.datetime,
    interaction: Interaction,
    action: Action,
    forms: Sequence[Mapping[str, Any]],
    error: Exception,
) -> None:
    """Write, best effort, the failure AuditEvent of a request about ``forms`` (as sent: only
    the patients they name, when they name one, are recorded)."""
    if audit is None or now.utcoffset() is None:
        return
    patients = dict.fromkeys(p for form in forms for p in events.patients_of(form))
    entities = [events.patient(patient) for patient in patients]
    event = audit.event(
        interaction=interaction, action=action, now=now, entities=entities, error=error
    )
    audit.write_failure(store, [event])


def _audit_bundle_failure(
    audit: AuditTrail | None,
    store: FhirStore,
    now: dt.datetime,
    bundle: Mapping[str, Any],
    error: Exception,
) -> None:
    """:func:`_audit_failure` of a submitted Bundle, about the forms it holds."""
    forms = [e.get("resource") for e in _list(bundle.get("entry")) if isinstance(e, dict)]
    seen = [form for form in forms if isinstance(form, Mapping)]
    kind = Interaction.BATCH if bundle.get("type") == "batch" else Interaction.TRANSACTION
    _audit_failure(audit, store, now, kind, Action.CREATE, seen, error)


# -- helpers ---------------------------------------------------------------------------------


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _today(now: dt.datetime) -> dt.date:
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC).date()


def _check_unique(forms: Sequence[ReceivedForm]) -> None:
    seen: dict[str, ReceivedForm] = {}
    issues = []
    for form in forms:
        first = seen.setdefault(form.key, form)
        if first is not form:
            issues.append(
                rule_error(
                    f"{form.prefix}.identifier",
                    f"{first.prefix} has the same identifier {form.key}: send a form once",
                )
            )
    if issues:
        raise UnprocessableResourceError(issues)
