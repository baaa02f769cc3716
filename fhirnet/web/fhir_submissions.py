"""Submissions at the FHIR endpoint: forms in, results written, and what became of them.

* ``POST /fhir/QuestionnaireResponse`` — the main job, a FHIR ``create``: assess a form with the
  patient's earlier ones and write form and results in one transaction
  (:func:`fhirnet.services.submit`); answered like any create, about the form (``Location`` =
  the form's version, the body per ``Prefer: return=``);
* ``POST /fhir/QuestionnaireResponse/$submit`` — the same submission, answered with the
  DiagnosticReport (``Location`` = the report), for EHRs that want the results back at once;
* ``POST /fhir`` with a ``transaction`` or ``batch`` Bundle of forms;
* ``POST /fhir/QuestionnaireResponse/$extract`` — the transaction without writing it;
* with an external FHIR server, submissions are durable (:mod:`fhirnet.web.delivery`): kept in
  the outbox before they are answered, ``202 Accepted`` when the server cannot take them now, and
  ``GET /fhir/_submission/<id>`` tells what became of them (FHIR R4 async.html).

A caller whose token names the signed-in reader (``fhirUser``, SMART App Launch) submits forms as
that reader: a form without ``author`` gets the reader as author before it is checked, and a form
naming another author is refused (422 at ``author``): the server, not the page, decides who
signed (:func:`signed_by_reader`).

Every submission and ``$extract`` is audited by the use cases (:mod:`fhirnet.services.audits`).
Views raise and never catch; :mod:`fhirnet.web.errors` renders every error as an OperationOutcome.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime

from flask import g
from werkzeug.wrappers import Response

from fhirnet.fhir.outcome import Issue, IssueType, operation_outcome
from fhirnet.ports import Entry, Json, Kind, State
from fhirnet.services import (
    BundleOutcome,
    Context,
    Submission,
    extract,
    patients_of_bundle,
    patients_of_form,
    submit,
    submit_bundle,
)
from fhirnet.services.delivery import Attempt
from fhirnet.services.streams import reader_key
from fhirnet.web import web_state
from fhirnet.web.delivery import Deliveries
from fhirnet.web.errors import FhirRequestError
from fhirnet.web.fhir_bundles import (
    RETURN_MINIMAL,
    RETURN_OUTCOME,
    Locator,
    Written,
    bundle_response,
    report_url_of,
    sent_forms,
    version_headers,
)
from fhirnet.web.fhir_http import (
    FORMAT_PARAMETERS,
    audit_trail,
    base_url,
    bp,
    check_parameters,
    json_body,
    resource_of,
    respond,
    respond_async,
    return_preference,
)

#: Ids of submissions (:mod:`fhirnet.adapters.outbox`): 32 lower-case hex digits.
_SUBMISSION_ID = re.compile(r"[0-9a-f]{32}")


@bp.post("/QuestionnaireResponse")
def create() -> Response:
    """Submit a filled form (the main job) as a FHIR ``create``: 201 when the form is new, 200
    when it was there already (an identical resubmission, or an amendment); ``Location`` = the
    form's version, ``ETag``/``Last-Modified`` of the form, the body per ``Prefer: return=``
    (the stored form; the OperationOutcome with the category and the report's URL; none). With
    durable delivery, ``202 Accepted`` when the FHIR server cannot take it now."""
    return _submit_form(report_answer=False)


@bp.post("/QuestionnaireResponse/$submit")
def submit_form() -> Response:
    """Submit a filled form and get its results back: the same submission as ``create``,
    answered with the DiagnosticReport (``Location`` = the report; ``Prefer: return=`` as for
    create: ``OperationOutcome`` or ``minimal`` instead of the report)."""
    return _submit_form(report_answer=True)


def _submit_form(*, report_answer: bool) -> Response:
    check_parameters(FORMAT_PARAMETERS)
    resource = signed_by_reader(resource_of(json_body(), "QuestionnaireResponse"))
    deliveries = web_state().deliveries
    if deliveries is None:
        return _submitted(submit(resource, _context()), resource, report_answer=report_answer)
    patients = patients_of_form(resource, _context(server=False))
    attempt = _accept(deliveries, Kind.FORM, resource, patients)
    if isinstance(attempt.value, Submission):
        return _submitted(attempt.value, resource, report_answer=report_answer)
    return _accepted(attempt, resource, report_answer=report_answer)


@bp.post("")
def transaction() -> Response:
    """Submit several forms in a ``transaction`` (all or nothing) or ``batch`` Bundle."""
    check_parameters(FORMAT_PARAMETERS)
    bundle = _signed_forms(resource_of(json_body(), "Bundle"))
    deliveries = web_state().deliveries
    if deliveries is None:
        outcome = submit_bundle(bundle, _context())
        return respond(_bundle_response(outcome, bundle))
    checking = _context(server=False)
    patients = patients_of_bundle(bundle, checking)
    if not patients:  # a batch of refused entries only: nothing to write, nothing to keep
        outcome = submit_bundle(bundle, checking)
        return respond(_bundle_response(outcome, bundle))
    attempt = _accept(deliveries, Kind.BUNDLE, bundle, patients)
    if isinstance(attempt.value, BundleOutcome):
        return respond(_bundle_response(attempt.value, bundle))
    return _accepted(attempt, bundle, report_answer=False)


def _bundle_response(outcome: BundleOutcome, bundle: Json) -> Json:
    return bundle_response(
        outcome, sent=sent_forms(bundle), locator=locator(), prefer=return_preference()
    )


@bp.post("/QuestionnaireResponse/$extract")
def extract_resources() -> Response:
    """The transaction Bundle a submission of the form would write, not written (SDC
    ``$extract``). The body is the QuestionnaireResponse, or a ``Parameters`` resource with a
    ``questionnaire-response`` parameter holding it."""
    check_parameters(FORMAT_PARAMETERS)
    body = json_body()
    resource = resource_of(body, "QuestionnaireResponse", parameter="questionnaire-response")
    return respond(extract(signed_by_reader(resource), _context()))


@bp.get("/_submission/<submission_id>")
def submission_status(submission_id: str) -> Response:
    """The status of a submission answered ``202 Accepted`` (FHIR asynchronous pattern): 202
    while it is queued, then 200 with a ``batch-response`` Bundle whose entry is the answer to
    the original request — delivered (``201``/``200``, the form's location, and the report's
    URL in the OperationOutcome) or failed (the status and OperationOutcome, the FHIR server's
    issues included). Only the client that submitted it may see it; to others it does not
    exist (404)."""
    check_parameters(FORMAT_PARAMETERS)
    deliveries = web_state().deliveries
    entry = None
    if deliveries is not None and _SUBMISSION_ID.fullmatch(submission_id):
        entry = deliveries.current().outbox.get(submission_id)
    if entry is None or entry.requester != audit_trail().requester:
        raise FhirRequestError(404, IssueType.NOT_FOUND, "No such submission.")
    if entry.state is State.QUEUED:
        response = respond(operation_outcome([_queued_issue(entry, waiting=None)]), 202)
        return _with_progress(response, entry)
    bundle: Json = {
        "resourceType": "Bundle",
        "id": entry.id,
        "type": "batch-response",
        "entry": [entry.answer or {}],
    }
    if entry.finished is not None:
        when = datetime.fromtimestamp(entry.finished, UTC).isoformat(timespec="milliseconds")
        bundle["meta"] = {"lastUpdated": when.replace("+00:00", "Z")}
    return respond(bundle)


def signed_by_reader(form: Json, *, where: str = "QuestionnaireResponse") -> Json:
    """``form`` as the signed-in reader submits it: unchanged without one (no ``fhirUser`` in
    the token, API keys, open access); with one, authored by that reader (set when the form
    names no author).

    :param where: the form's FHIRPath in the request, for the error's expression.
    :raises FhirRequestError: 422 at ``author`` when the form names another author, or the
        signed-in user is not a Practitioner or PractitionerRole (only readers sign reads).
    """
    fhir_user = getattr(g.get("fhirnet_principal"), "fhir_user", None)
    if fhir_user is None:
        return form
    reader = reader_key(fhir_user)
    expression = f"{where}.author"
    if reader is None:
        raise FhirRequestError(
            422,
            IssueType.BUSINESS_RULE,
            f"The signed-in user {fhir_user} is not a Practitioner or PractitionerRole: only a "
            "reader can author a form.",
            expression=expression,
        )
    author = form.get("author")
    if author is None:
        return {**form, "author": {"reference": reader}}
    named = author.get("reference") if isinstance(author, dict) else None
    if not isinstance(named, str) or reader_key(named) != reader:
        raise FhirRequestError(
            422,
            IssueType.BUSINESS_RULE,
            f"The form's author must be the signed-in reader {reader} (or left out: then it is "
            f"set to the reader), not {named if isinstance(named, str) else 'that'}.",
            expression=expression,
        )
    return form


def _signed_forms(bundle: Json) -> Json:
    """``bundle`` with each of its forms :func:`signed_by_reader` (its other entries, and
    malformed ones, left to the submission's checks)."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return bundle
    signed = []
    for number, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "QuestionnaireResponse":
            where = f"Bundle.entry[{number}].resource"
            entry = {**entry, "resource": signed_by_reader(resource, where=where)}
        signed.append(entry)
    return {**bundle, "entry": signed}


def _context(*, server: bool = True) -> Context:
    """What the use cases run with in this request: the catalog, the time, the store, the audit
    trail and the patient locks; with ``server``, also the server's client-id types (read from
    the server on first use). Checking a submission before the outbox takes it passes
    ``server=False``: no FHIR server call, the default client-id types."""
    state = web_state()
    context = Context(
        catalog=state.catalog,
        now=state.clock(),
        store=state.backend.store(),
        audit=audit_trail(),
        locks=state.backend.locks,
        # Absolute references in a form: on the server written to, or on fhirnet's own base.
        bases=frozenset(b for b in (state.backend.server_url, base_url()) if b),
    )
    if not server:
        return context
    return replace(context, client_id_types=state.backend.client_id_types())


def _accept(deliveries: Deliveries, kind: Kind, body: Json, patients: Collection[str]) -> Attempt:
    """Keep a checked submission in the outbox, and deliver it now unless the client asked for
    ``respond-async`` (:meth:`fhirnet.services.delivery.Delivery.accept`)."""
    return deliveries.current().accept(
        kind=kind,
        body=body,
        patients=patients,
        requester=audit_trail().requester,
        attempt_now=not respond_async(),
    )


def _accepted(attempt: Attempt, sent: Json, *, report_answer: bool) -> Response:
    """``202 Accepted``, ``Content-Location`` = the submission's status (R4 async.html), and an
    OperationOutcome saying why it is not done yet."""
    entry = attempt.entry
    if attempt.error is not None and entry.state is not State.QUEUED:
        raise attempt.error  # failed for good in this request: answered like without an outbox
    if entry.state is not State.QUEUED and entry.answer is not None:
        # finished by another request or the thread
        return _replayed(entry, entry.answer, sent, report_answer=report_answer)
    deliveries = web_state().deliveries
    waiting = None
    if attempt.error is not None:
        waiting = "the FHIR server could not take it now"
    elif respond_async():
        waiting = "as asked: Prefer: respond-async"
    elif deliveries is not None and deliveries.current().paused():
        waiting = "the FHIR server was unavailable at the last attempt"
    elif entry.state is State.QUEUED:
        waiting = "an earlier submission about the same patient is being delivered first"
    response = respond(operation_outcome([_queued_issue(entry, waiting=waiting)]), 202)
    response.headers["Content-Location"] = f"{base_url()}/_submission/{entry.id}"
    return _with_progress(response, entry)


def _with_progress(response: Response, entry: Entry) -> Response:
    """A queued submission's ``X-Progress`` and ``Retry-After`` (R4 async.html), on its 202 and
    on its status alike, so a client reads them from headers, not from a message's wording."""
    response.headers["X-Progress"] = _progress(entry)
    now = web_state().clock().timestamp()
    response.headers["Retry-After"] = str(max(1, math.ceil(_next_attempt(entry) - now)))
    return response


def _replayed(entry: Entry, answer: Json, sent: Json, *, report_answer: bool) -> Response:
    """The answer of a submission that another request (or the delivery thread) finished while
    this one waited for the patient's lock: what it would have answered itself, from the
    outbox's record (the form, and for ``$submit`` its DiagnosticReport, read back from the
    server)."""
    result = answer.get("response") or {}
    status = int(str(result.get("status", "500")).split()[0])
    outcome = result.get("outcome") or operation_outcome([])
    if status >= 400:
        return respond(outcome, status)
    if entry.kind is Kind.BUNDLE:
        return respond(answer.get("resource") or {}, status)
    where = locator()
    form = where.stored_form(sent)
    report_url = report_url_of(answer)
    if report_answer and report_url is not None:
        report = where.store.read("DiagnosticReport", report_url.rsplit("/", 1)[-1])
        return _written(status, report_url, outcome=outcome, resource=report)
    location = str(result.get("location", "")) if form is None else where.form_url(form)
    return _written(status, location, outcome=outcome, resource=form)


def _queued_issue(entry: Entry, *, waiting: str | None) -> Issue:
    state = {
        State.QUEUED: "is queued for delivery to the FHIR server",
        State.DELIVERED: "has been delivered",
        State.FAILED: "could not be delivered",
    }[entry.state]
    message = f"Submission accepted and kept: it {state}"
    if waiting:
        message += f" ({waiting})"
    message += f". {_attempts(entry)}. Its status: GET [base]/_submission/{entry.id}."
    return Issue.information(message)


def _progress(entry: Entry) -> str:
    """``X-Progress`` of a queued submission (R4 async.html): state and attempts."""
    return f"{entry.state.value}; {_attempts(entry)}"


def _attempts(entry: Entry) -> str:
    """The attempts made, the last error, and (queued) when the next one is due."""
    text = f"Attempts: {entry.attempts}"
    if entry.last_error:
        text += f", the last one failed: {entry.last_error}"
    if entry.state is State.QUEUED:
        when = datetime.fromtimestamp(_next_attempt(entry), UTC).isoformat(timespec="seconds")
        text += f"; next attempt not before {when.replace('+00:00', 'Z')}"
    return text


def _next_attempt(entry: Entry) -> float:
    deliveries = web_state().deliveries
    return entry.next_attempt if deliveries is None else deliveries.current().next_attempt(entry)


def _submitted(submission: Submission, sent: Json, *, report_answer: bool) -> Response:
    """201/200 with ``Location``, ``ETag`` and the body the client prefers: about the form
    (create) or about its DiagnosticReport (``$submit``)."""
    written = Written.of(submission, sent, locator())
    if report_answer:
        return _written(
            written.status,
            written.report_url,
            outcome=written.outcome(),
            resource=submission.report,
        )
    return _written(
        written.status, written.location, outcome=written.outcome(), resource=written.form
    )


def _written(status: int, location: str, *, outcome: Json, resource: Json | None) -> Response:
    """The answer to a form that was written: ``Location``, and the body ``Prefer: return=``
    asks for (none, the OperationOutcome, or ``resource`` — the form or the report — when
    there is one); ``ETag`` and ``Last-Modified`` of ``resource`` when there is one."""
    preference = return_preference()
    if preference == RETURN_MINIMAL:
        response = Response(status=status)
        del response.headers["Content-Type"]  # no body, so no media type
    elif preference == RETURN_OUTCOME or resource is None:
        response = respond(outcome, status)
    else:
        response = respond(resource, status)
    response.headers["Location"] = location
    if resource is not None:
        response.headers.update(version_headers(resource))
    return response


def locator() -> Locator:
    """Where the current request's submissions are written: the FHIR server's base (this
    server's own with the embedded store) and its store."""
    backend = web_state().backend
    return Locator(base=backend.server_url or base_url(), store=backend.store())
