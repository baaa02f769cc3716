"""The FHIR endpoint at ``/fhir`` (R4, JSON only).

* ``GET /fhir/metadata`` — the CapabilityStatement;
* ``GET /fhir/<type>/<id>`` and ``GET /fhir/<type>?url=...`` — read and search of the conformance
  resources (:data:`~fhirnet.fhir.capability.READABLE_TYPES`); the Questionnaire is served with
  its answer ValueSets contained and pre-expanded (:mod:`fhirnet.fhir.served`);
* ``POST /fhir/QuestionnaireResponse/$validate`` — validation of a QuestionnaireResponse;
* ``POST /fhir/QuestionnaireResponse`` — the main job: assess a form with the patient's earlier
  ones and write form and results in one transaction (:func:`fhirnet.services.submit`);
  ``POST /fhir`` with a ``transaction`` or ``batch`` Bundle of forms; and
  ``POST /fhir/QuestionnaireResponse/$extract``, the transaction without writing it;
* with an external FHIR server, submissions are durable (:mod:`fhirnet.web.delivery`): kept in
  the outbox before they are answered, ``202 Accepted`` when the server cannot take them now, and
  ``GET /fhir/_submission/<id>`` tells what became of them;
* with the embedded store, ``GET /fhir/<type>/<id>`` and ``GET /fhir/<type>?...`` of what it
  holds (:data:`STORED_TYPES`); with an external FHIR server these are read there (404 here).

**Audit**: every submission, ``$extract``, and read or search of patient data in the embedded
store is recorded as an AuditEvent (:mod:`fhirnet.services.audits`), the requester being the
authenticated client (``g.fhirnet_principal``) or ``anonymous`` with ``FHIRNET_AUTH=none``. A
read's AuditEvent is written after the store answered and before the response goes out: if it
cannot be written the read fails (503), so nothing is disclosed unrecorded. A read that finds
nothing (404) and requests refused before the store is asked (400, 401, 403) are not recorded;
nor are ``$validate`` (it reads and stores no patient data), the conformance resources, and reads
of AuditEvent itself (an audit of reading the audit would grow the log with every look at it).

Views raise and never catch; :mod:`fhirnet.web.errors` renders every error as an OperationOutcome.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, g, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from fhirnet.errors import ProfileNotFoundError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import ANONYMOUS, AUDIT_EVENT, Action, Interaction
from fhirnet.fhir.capability import READABLE_TYPES
from fhirnet.fhir.identifiers import DEFAULT_CLIENT_ID_TYPES
from fhirnet.fhir.outcome import Issue, IssueType, Severity, has_errors, operation_outcome
from fhirnet.fhir.profiles import Resource
from fhirnet.fhir.questionnaire import validate_response
from fhirnet.outbox import Entry, Kind, State
from fhirnet.ports import Json
from fhirnet.services import (
    BundleOutcome,
    Submission,
    extract,
    patients_of_bundle,
    patients_of_form,
    submit,
    submit_bundle,
)
from fhirnet.services.audits import AuditTrail
from fhirnet.services.delivery import Attempt
from fhirnet.store import EmbeddedStore
from fhirnet.store.parameters import COMMON, parameters_of
from fhirnet.store.resources import is_id
from fhirnet.store.search import RESULT_PARAMETERS as STORE_RESULT_PARAMETERS
from fhirnet.web import web_state
from fhirnet.web.bodies import body_within_limit
from fhirnet.web.delivery import Deliveries
from fhirnet.web.errors import FhirRequestError, fhir_json_response
from fhirnet.web.fhir_bundles import (
    RETURN_MINIMAL,
    RETURN_OUTCOME,
    bundle_response,
    searchset,
    version_headers,
)
from fhirnet.web.fhir_search import search_query
from fhirnet.web.limits import JsonLimits, check_json, limits_of, no_duplicate_keys, too_deep

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

FHIR_JSON = "application/fhir+json"
#: Media types a request body may have.
BODY_MEDIA_TYPES = (FHIR_JSON, "application/json")
#: ``charset`` values a body may declare: FHIR JSON is UTF-8 (R4 http §3.1.0.1.1).
UTF_8_NAMES = frozenset({"utf-8", "utf8"})
#: ``_format`` values meaning JSON (FHIR R4 http §3.1.0.1.8).
FORMAT_VALUES = frozenset({"json", "application/json", FHIR_JSON})
#: Parameters every FHIR interaction takes.
FORMAT_PARAMETERS = ("_format", "_pretty")
#: ``$validate`` modes: fhirnet checks content only, so these three mean the same.
VALIDATE_MODES = ("create", "update", "profile")
#: What fhirnet writes, and its AuditEvents; the embedded store serves them by read and search.
STORED_TYPES = events.STORED_TYPES


class LogicalIdConverter(BaseConverter):
    """The ``id`` segment of a read: anything but a segment starting with ``$``, which names an
    operation (``/QuestionnaireResponse/$validate``). So a read never matches an operation's URL,
    and ``OPTIONS`` or a 405 there lists the operation's methods only (``Allow: POST``), not GET.
    """

    regex = r"[^/$][^/]*"


@bp.record_once
def _register_converters(state: BlueprintSetupState) -> None:
    """Before the routes below are added, which use it."""
    state.app.url_map.converters["logical_id"] = LogicalIdConverter


#: Ids of submissions (:mod:`fhirnet.outbox`): 32 lower-case hex digits.
_SUBMISSION_ID = re.compile(r"[0-9a-f]{32}")


@bp.before_request
def _negotiate() -> None:
    """Refuse, with 406, a request that does not accept JSON; check ``_pretty``.

    ``_format`` overrides ``Accept`` (FHIR R4 http §3.1.0.1.8), so a browser can ask for
    ``?_format=json``.
    """
    formats = request.args.getlist("_format")
    accepted = (
        all(_media_type(value) in FORMAT_VALUES for value in formats)
        if formats
        else _accepts_json(request.headers.get("Accept", ""))
    )
    if not accepted:
        raise FhirRequestError(
            406,
            IssueType.NOT_SUPPORTED,
            "Only JSON is served (application/fhir+json, _format=json); XML and Turtle are not.",
        )
    if request.args.get("_pretty", "false") not in ("true", "false"):
        raise FhirRequestError(400, IssueType.INVALID, "_pretty must be true or false.")


@bp.get("/metadata")
def metadata() -> Response:
    """The CapabilityStatement of this server (FHIR ``capabilities`` interaction)."""
    _check_parameters((*FORMAT_PARAMETERS, "mode"))
    if request.args.get("mode", "full") != "full":
        raise FhirRequestError(
            400,
            IssueType.NOT_SUPPORTED,
            "Only mode=full of the capabilities interaction is served.",
        )
    statement = dict(web_state().capability)
    statement["implementation"] = {**statement["implementation"], "url": _base_url()}
    return _respond(statement)


@bp.get("/<resource_type>/<logical_id:resource_id>")
def read(resource_type: str, resource_id: str) -> Response:
    """One conformance resource, or one the embedded store holds, by type and logical id (FHIR
    ``read`` interaction)."""
    if resource_type in STORED_TYPES:
        return _read_stored(resource_type, resource_id)
    _require_readable(resource_type, "read")
    _check_parameters(FORMAT_PARAMETERS)
    resource = web_state().catalog.by_id(resource_type, resource_id)
    if resource is None:
        raise ProfileNotFoundError(f"{resource_type}/{resource_id}")
    return _respond(_as_served(resource))


@bp.get("/<resource_type>")
def search(resource_type: str) -> Response:
    """A ``searchset`` Bundle of the conformance resources of a type (``search-type``), or of
    what the embedded store holds."""
    if resource_type in STORED_TYPES:
        return _search_stored(resource_type)
    _require_readable(resource_type, "search")
    query = search_query(resource_type, request.args, lenient=_lenient(), ignored=FORMAT_PARAMETERS)
    state = web_state()
    matches = [r for r in state.catalog.of_type(resource_type) if query.matches(r)]
    end = len(matches) if query.count is None else query.offset + query.count
    base = _base_url()
    links = [{"relation": "self", "url": query.link(base, resource_type, query.offset)}]
    if end < len(matches):
        links.append({"relation": "next", "url": query.link(base, resource_type, end)})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{resource_type}/{resource['id']}",
                "resource": _as_served(resource),
                "search": {"mode": "match"},
            }
            for resource in matches[query.offset : end]
        ],
    }
    if not bundle["entry"]:
        del bundle["entry"]  # R4 has no empty arrays
    return _respond(bundle)


@bp.post("/QuestionnaireResponse/$validate")
def validate() -> Response:
    """Validate a QuestionnaireResponse (FHIR ``$validate``): 200 when valid, 422 when not.

    The body is the QuestionnaireResponse itself, or a ``Parameters`` resource whose ``resource``
    parameter holds it. The answer is an OperationOutcome: without error issues (information
    and warnings only) and 200 when valid, with every problem found and 422 when not.
    """
    _check_parameters((*FORMAT_PARAMETERS, "mode", "profile"))
    _check_validate_options(request.args.getlist("mode"), request.args.getlist("profile"))
    response = _resource_to_validate(_json_body())
    state = web_state()
    # The validator's "today" is a UTC date; the clock may run in any timezone.
    today = state.clock().astimezone(UTC).date()
    issues = validate_response(response, state.catalog, today=today)
    return _respond(operation_outcome(issues), 422 if has_errors(issues) else 200)


@bp.post("/QuestionnaireResponse")
def create() -> Response:
    """Submit a filled form (the main job): 201 with the DiagnosticReport written, or 200 when
    nothing new was written; ``Location`` is the DiagnosticReport (module docstring). With
    durable delivery, ``202 Accepted`` when the FHIR server cannot take it now."""
    _check_parameters(FORMAT_PARAMETERS)
    resource = _resource_of(_json_body(), "QuestionnaireResponse")
    deliveries = web_state().deliveries
    if deliveries is None:
        return _submitted(submit(resource, **_pipeline(), locks=web_state().backend.locks))
    attempt = _accept(deliveries, Kind.FORM, resource, patients_of_form(resource, **_checks()))
    if isinstance(attempt.value, Submission):
        return _submitted(attempt.value)
    return _accepted(attempt)


@bp.post("")
def transaction() -> Response:
    """Submit several forms in a ``transaction`` (all or nothing) or ``batch`` Bundle."""
    _check_parameters(FORMAT_PARAMETERS)
    bundle = _resource_of(_json_body(), "Bundle")
    deliveries = web_state().deliveries
    if deliveries is None:
        outcome = submit_bundle(bundle, **_pipeline(), locks=web_state().backend.locks)
        return _respond(bundle_response(outcome, report_url=_report_url, prefer=_return()))
    patients = patients_of_bundle(bundle, **_checks())
    if not patients:  # a batch of refused entries only: nothing to write, nothing to keep
        outcome = submit_bundle(
            bundle,
            **_checks(),
            client_id_types=DEFAULT_CLIENT_ID_TYPES,
            locks=web_state().backend.locks,
        )
        return _respond(bundle_response(outcome, report_url=_report_url, prefer=_return()))
    attempt = _accept(deliveries, Kind.BUNDLE, bundle, patients)
    if isinstance(attempt.value, BundleOutcome):
        return _respond(bundle_response(attempt.value, report_url=_report_url, prefer=_return()))
    return _accepted(attempt)


@bp.get("/_submission/<submission_id>")
def submission_status(submission_id: str) -> Response:
    """The status of a submission answered ``202 Accepted`` (FHIR asynchronous pattern): 202
    while it is queued, then 200 with a ``batch-response`` Bundle whose entry is the answer to
    the original request — delivered (``201``/``200`` and the DiagnosticReport's location) or
    failed (the status and OperationOutcome, the FHIR server's issues included). Only the
    client that submitted it may see it; to others it does not exist (404)."""
    _check_parameters(FORMAT_PARAMETERS)
    deliveries = web_state().deliveries
    entry = None
    if deliveries is not None and _SUBMISSION_ID.fullmatch(submission_id):
        entry = deliveries.current().outbox.get(submission_id)
    if entry is None or entry.requester != _audit_trail().requester:
        raise FhirRequestError(404, IssueType.NOT_FOUND, "No such submission.")
    if entry.state is State.QUEUED:
        response = _respond(operation_outcome([_queued_issue(entry, waiting=None)]), 202)
        response.headers["X-Progress"] = _progress(entry)
        now = web_state().clock().timestamp()
        response.headers["Retry-After"] = str(max(1, math.ceil(_next_attempt(entry) - now)))
        return response
    bundle: Json = {
        "resourceType": "Bundle",
        "id": entry.id,
        "type": "batch-response",
        "entry": [entry.answer or {}],
    }
    if entry.finished is not None:
        when = datetime.fromtimestamp(entry.finished, UTC).isoformat(timespec="milliseconds")
        bundle["meta"] = {"lastUpdated": when.replace("+00:00", "Z")}
    return _respond(bundle)


def _accept(deliveries: Deliveries, kind: Kind, body: Json, patients: Collection[str]) -> Attempt:
    """Keep a checked submission in the outbox, and deliver it now unless the client asked for
    ``respond-async`` (:meth:`fhirnet.services.delivery.Delivery.accept`)."""
    return deliveries.current().accept(
        kind=kind,
        body=body,
        patients=patients,
        requester=_audit_trail().requester,
        attempt_now=not _respond_async(),
    )


def _checks() -> dict[str, Any]:
    """The store, the catalog, the time and the audit trail: what checking a submission before
    the outbox takes it needs (no FHIR server call)."""
    state = web_state()
    return {
        "catalog": state.catalog,
        "now": state.clock(),
        "store": state.backend.store(),
        "audit": _audit_trail(),
    }


def _respond_async() -> bool:
    """Whether the client asked for ``Prefer: respond-async`` (R4 async.html): 202 at once."""
    return "respond-async" in _preferences()


def _accepted(attempt: Attempt) -> Response:
    """``202 Accepted``, ``Content-Location`` = the submission's status (R4 async.html), and an
    OperationOutcome saying why it is not done yet."""
    entry = attempt.entry
    if attempt.error is not None and entry.state is not State.QUEUED:
        raise attempt.error  # failed for good in this request: answered like without an outbox
    if entry.state is not State.QUEUED and entry.answer is not None:
        return _replayed(entry, entry.answer)  # finished by another request or the thread
    deliveries = web_state().deliveries
    waiting = None
    if attempt.error is not None:
        waiting = "the FHIR server could not take it now"
    elif _respond_async():
        waiting = "as asked: Prefer: respond-async"
    elif deliveries is not None and deliveries.current().paused():
        waiting = "the FHIR server was unavailable at the last attempt"
    elif entry.state is State.QUEUED:
        waiting = "an earlier submission about the same patient is being delivered first"
    response = _respond(operation_outcome([_queued_issue(entry, waiting=waiting)]), 202)
    response.headers["Content-Location"] = f"{_base_url()}/_submission/{entry.id}"
    return response


def _replayed(entry: Entry, answer: Json) -> Response:
    """The answer of a submission that another request (or the delivery thread) finished while
    this one waited for the patient's lock: what it would have answered itself, from the
    outbox's record (a delivered form's DiagnosticReport is read back from the server)."""
    result = answer.get("response") or {}
    status = int(str(result.get("status", "500")).split()[0])
    outcome = result.get("outcome") or operation_outcome([])
    if status >= 400:
        return _respond(outcome, status)
    if entry.kind is Kind.BUNDLE:
        return _respond(answer.get("resource") or {}, status)
    location = str(result.get("location", ""))
    report = None
    if _return() not in (RETURN_MINIMAL, RETURN_OUTCOME):
        report = web_state().backend.store().read("DiagnosticReport", location.rsplit("/", 1)[-1])
    return _written(status, location, outcome=outcome, report=report)


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
    return Issue(
        severity=Severity.INFORMATION,
        code=IssueType.INFORMATIONAL,
        expression=None,
        message=message,
    )


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


@bp.post("/QuestionnaireResponse/$extract")
def extract_resources() -> Response:
    """The transaction Bundle a submission of the form would write, not written (SDC
    ``$extract``). The body is the QuestionnaireResponse, or a ``Parameters`` resource with a
    ``questionnaire-response`` parameter holding it."""
    _check_parameters(FORMAT_PARAMETERS)
    body = _json_body()
    resource = _resource_of(body, "QuestionnaireResponse", parameter="questionnaire-response")
    return _respond(extract(resource, **_pipeline()))


def _pipeline() -> dict[str, Any]:
    """The arguments every use case takes: those of :func:`_checks`, and the server's client-id
    types (read from the server on first use)."""
    return {**_checks(), "client_id_types": web_state().backend.client_id_types()}


def _audit_trail() -> AuditTrail:
    """The audit trail of the current request: its authenticated client, or ``anonymous``."""
    principal = getattr(g, "fhirnet_principal", None)
    return AuditTrail(requester=ANONYMOUS if principal is None else principal.subject)


def _audit_read(
    store: EmbeddedStore,
    interaction: Interaction,
    resources: Sequence[Json],
    query: events.Entity | None = None,
) -> None:
    """Record a read or search of patient data (module docstring); AuditEvents are not."""
    if not resources and query is None:
        return
    entities = [events.patient(p) for r in resources for p in events.patients_of(r)]
    entities += [
        events.resource(f"{r['resourceType']}/{r['id']}", r["resourceType"]) for r in resources
    ]
    if query is not None:
        entities.append(query)
    action = Action.READ if interaction is Interaction.READ else Action.EXECUTE
    trail = _audit_trail()
    now = web_state().clock()
    trail.write(
        store, [trail.event(interaction=interaction, action=action, now=now, entities=entities)]
    )


def _submitted(submission: Submission) -> Response:
    """201/200 with ``Location``, ``ETag`` and the body the client prefers."""
    return _written(
        201 if submission.created else 200,
        _report_url(submission.report),
        outcome=operation_outcome(submission.issues),
        report=submission.report,
    )


def _written(status: int, location: str, *, outcome: Json, report: Json | None) -> Response:
    """The answer to a form that was written: ``Location`` = its report, and the body ``Prefer:
    return=`` asks for (none, the OperationOutcome, or the report when there is one); ``ETag``
    and ``Last-Modified`` of the report when there is one."""
    preference = _return()
    if preference == RETURN_MINIMAL:
        response = Response(status=status)
        del response.headers["Content-Type"]  # no body, so no media type
    elif preference == RETURN_OUTCOME or report is None:
        response = _respond(outcome, status)
    else:
        response = _respond(report, status)
    response.headers["Location"] = location
    if report is not None:
        response.headers.update(version_headers(report))
    return response


def _report_url(report: Json) -> str:
    """The absolute URL of a DiagnosticReport: on the FHIR server that holds it."""
    base = web_state().backend.server_url or _base_url()
    return f"{base}/DiagnosticReport/{report.get('id')}"


def _return() -> str:
    """The ``Prefer: return=`` value, lower-cased; ``representation`` when not given."""
    return _preferences().get("return", "representation")


def _preferences() -> dict[str, str]:
    """``Prefer`` header preferences (RFC 7240), names and values lower-cased."""
    found = {}
    for part in request.headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found[name.strip().lower()] = value.strip().strip('"').lower()
    return found


def _embedded(resource_type: str) -> EmbeddedStore:
    """The embedded store; 404 ``not-supported`` when results go to an external server."""
    backend = web_state().backend
    store = backend.embedded_store()
    if store is None:
        raise FhirRequestError(
            404,
            IssueType.NOT_SUPPORTED,
            f"fhirnet writes {resource_type} resources to the FHIR server at "
            f"{backend.server_url or 'its configured base URL'}: read and search them there.",
        )
    return store


def _read_stored(resource_type: str, resource_id: str) -> Response:
    _check_parameters(FORMAT_PARAMETERS)
    store = _embedded(resource_type)
    resource = store.read(resource_type, resource_id) if is_id(resource_id) else None
    if resource is None:
        raise FhirRequestError(
            404, IssueType.NOT_FOUND, f"There is no {resource_type} with id {resource_id!r}."
        )
    if resource_type != AUDIT_EVENT:
        _audit_read(store, Interaction.READ, [resource])
    response = _respond(resource)
    response.headers.update(version_headers(resource))
    return response


def _search_stored(resource_type: str) -> Response:
    """A page of the embedded store's search; the store refuses (400) what it cannot honour,
    unless the client prefers lenient handling, which leaves unknown parameters out."""
    store = _embedded(resource_type)
    supported = {*parameters_of(resource_type), *COMMON, *STORE_RESULT_PARAMETERS}
    lenient = _lenient()
    query = [
        (name, value)
        for name, value in request.args.items(multi=True)
        if name not in FORMAT_PARAMETERS and (name in supported or not lenient)
    ]
    params: dict[str, list[str]] = {}
    for name, value in query:
        params.setdefault(name, []).append(value)
    page = store.search_page(resource_type, params)
    if resource_type != AUDIT_EVENT:
        searched = events.query(resource_type, request.query_string.decode("utf-8", "replace"))
        _audit_read(store, Interaction.SEARCH_TYPE, [*page.matches, *page.included], searched)
    return _respond(searchset(page, base=_base_url(), resource_type=resource_type, query=query))


def _resource_of(body: Any, resource_type: str, *, parameter: str | None = None) -> Json:
    """The resource of type ``resource_type`` a body holds: the body itself, or (when
    ``parameter`` is given) the ``resource`` of that parameter of a ``Parameters`` body."""
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirRequestError(
            400,
            IssueType.STRUCTURE,
            "The body must be a FHIR resource: an object with resourceType.",
        )
    if parameter is not None and body["resourceType"] == "Parameters":
        entries = body.get("parameter")
        found = [
            entry.get("resource")
            for entry in (entries if isinstance(entries, list) else [])
            if isinstance(entry, dict) and entry.get("name") == parameter
        ]
        if len(found) != 1 or not isinstance(found[0], dict):
            raise FhirRequestError(
                400,
                IssueType.REQUIRED,
                f"A Parameters body needs exactly one {parameter!r} parameter holding the "
                f"{resource_type} as its resource.",
                expression="Parameters.parameter",
            )
        body = found[0]
    if body.get("resourceType") != resource_type:
        also = " (or a Parameters resource holding one)" if parameter else ""
        raise FhirRequestError(
            400,
            IssueType.INVALID,
            f"Expected a {resource_type}{also}, got {body.get('resourceType')!r}.",
        )
    resource: Json = body
    return resource


def _respond(body: Mapping[str, Any], status: int = 200) -> Response:
    return fhir_json_response(body, status, pretty=request.args.get("_pretty") == "true")


def _base_url() -> str:
    """The FHIR base URL as the client addressed it, e.g. ``http://host:8080/fhir``."""
    return request.url_root.rstrip("/") + (bp.url_prefix or "")


def _as_served(resource: Resource) -> Resource:
    """The resource as this server serves it: the Questionnaire with contained expansions."""
    state = web_state()
    return state.questionnaire if resource is state.catalog.questionnaire() else resource


def _require_readable(resource_type: str, interaction: str) -> None:
    if resource_type not in READABLE_TYPES:
        served = READABLE_TYPES + (STORED_TYPES if web_state().backend.embedded else ())
        raise FhirRequestError(
            404,
            IssueType.NOT_SUPPORTED,
            f"{interaction} of {resource_type!r} is not supported; this server serves "
            f"{', '.join(served)} (see /fhir/metadata).",
        )


def _lenient() -> bool:
    """Whether the client sent ``Prefer: handling=lenient`` (ignore unknown parameters)."""
    return _preferences().get("handling") == "lenient"


def _check_parameters(allowed: Collection[str]) -> None:
    """400 for a query parameter outside ``allowed``, unless the client prefers lenient handling."""
    if _lenient():
        return
    unknown = sorted({name for name in request.args if name not in allowed})
    if unknown:
        raise FhirRequestError(
            400,
            IssueType.NOT_SUPPORTED,
            f"Parameter(s) not supported here: {', '.join(unknown)}. "
            f"Supported: {', '.join(allowed)}.",
        )


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _accepts_json(header: str) -> bool:
    """Whether an ``Accept`` header admits FHIR JSON or plain JSON (RFC 9110 §12.5.1).

    Each candidate gets the quality of the most specific range that matches it, so
    ``application/fhir+json;q=0, */*`` refuses FHIR JSON but still admits ``application/json``.
    Media type parameters other than ``q`` (e.g. ``fhirVersion=4.0``) are ignored.
    """
    if not header.strip():
        return True
    return any(_quality(header, candidate) > 0 for candidate in BODY_MEDIA_TYPES)


def _quality(header: str, media_type: str) -> float:
    kind = media_type.split("/", 1)[0]
    best = (-1, 0.0)  # (specificity, quality)
    for part in header.split(","):
        fields = part.split(";")
        media_range = fields[0].strip().lower()
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range)
        if specificity is None or specificity <= best[0]:
            continue
        quality = 1.0
        for field in fields[1:]:
            name, _, value = field.partition("=")
            if name.strip().lower() == "q" and re.fullmatch(r"\s*[01](\.[0-9]{0,3})?\s*", value):
                quality = float(value)
        best = (specificity, quality)
    return best[1]


def _check_validate_options(modes: Sequence[Any], profiles: Sequence[Any]) -> None:
    for mode in modes:
        if mode not in VALIDATE_MODES:
            raise FhirRequestError(
                400,
                IssueType.NOT_SUPPORTED,
                f"$validate mode {mode!r} is not supported; fhirnet stores nothing and checks "
                f"content only ({', '.join(VALIDATE_MODES)}).",
            )
    if profiles:
        raise FhirRequestError(
            400,
            IssueType.NOT_SUPPORTED,
            "The profile parameter of $validate is not supported: a QuestionnaireResponse is "
            "validated against the Questionnaire it names.",
        )


def _resource_to_validate(body: Any) -> Mapping[str, Any]:
    """The QuestionnaireResponse in a ``$validate`` body: the body itself or its ``resource``."""
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirRequestError(
            400,
            IssueType.STRUCTURE,
            "The body must be a FHIR resource: an object with resourceType.",
        )
    resource: dict[str, Any] = (
        _from_parameters(body) if body["resourceType"] == "Parameters" else body
    )
    if resource["resourceType"] != "QuestionnaireResponse":
        raise FhirRequestError(
            400,
            IssueType.INVALID,
            f"Expected a QuestionnaireResponse (or a Parameters resource holding one), "
            f"got {resource['resourceType']}.",
        )
    return resource


def _from_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    entries = parameters.get("parameter", [])
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("name"), str) for entry in entries
    ):
        raise FhirRequestError(
            400, IssueType.STRUCTURE, "Parameters.parameter must be a list of objects with a name."
        )
    by_name: dict[str, list[Any]] = {"resource": [], "mode": [], "profile": []}
    for entry in entries:
        if entry["name"] not in by_name:
            raise FhirRequestError(
                400,
                IssueType.NOT_SUPPORTED,
                f"$validate has no parameter {entry['name']!r}; it takes resource, mode, profile.",
            )
        value = {"resource": "resource", "mode": "valueCode"}.get(entry["name"], "valueUri")
        by_name[entry["name"]].append(entry.get(value, entry.get("valueCanonical")))
    _check_validate_options(by_name["mode"], by_name["profile"])
    resources = by_name["resource"]
    if len(resources) != 1 or not isinstance(resources[0], dict):
        raise FhirRequestError(
            400,
            IssueType.REQUIRED,
            "A Parameters body needs exactly one 'resource' parameter holding the resource.",
        )
    resource: dict[str, Any] = resources[0]
    if not isinstance(resource.get("resourceType"), str):
        raise FhirRequestError(
            400,
            IssueType.STRUCTURE,
            "The 'resource' parameter must hold an object with resourceType.",
        )
    return resource


def _json_body() -> Any:
    """The decoded JSON request body: 415 for other media types (or a charset other than UTF-8),
    413 over the size limit, 400 if not strict JSON, 400/413/422 over the JSON limits
    (:mod:`fhirnet.web.limits`), all before any other work on it."""
    charset = request.mimetype_params.get("charset", "utf-8").strip().lower()
    if request.mimetype not in BODY_MEDIA_TYPES or charset not in UTF_8_NAMES:
        raise FhirRequestError(
            415,
            IssueType.NOT_SUPPORTED,
            f"Content-Type must be {' or '.join(BODY_MEDIA_TYPES)} (UTF-8), got "
            f"{request.mimetype or 'none'}.",
        )
    limits = limits_of(web_state().settings)
    body = _parse_json(body_within_limit(), limits)
    check_json(body, limits)
    return body


def _parse_json(raw: bytes, limits: JsonLimits) -> Any:
    """Decode strict JSON: no duplicate keys, no NaN/Infinity, no number too large for a float
    (FHIR JSON has none of these)."""
    try:
        return json.loads(
            raw,
            object_pairs_hook=no_duplicate_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except RecursionError:
        raise too_deep(limits) from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        message = str(error)
    raise FhirRequestError(400, IssueType.STRUCTURE, f"The body is not valid JSON: {message}.")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e999, which float() reads as inf
        raise ValueError("a number is too large")
    return value
