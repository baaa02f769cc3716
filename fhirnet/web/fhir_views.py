"""Reads at the FHIR endpoint ``/fhir`` (R4, JSON only): the CapabilityStatement, the conformance
resources, what the embedded store holds, and ``$validate``.

* ``GET /fhir/metadata`` — the CapabilityStatement;
* ``GET /fhir/<type>/<id>`` and ``GET /fhir/<type>?url=...`` — read and search of the conformance
  resources (:data:`~fhirnet.fhir.capability.READABLE_TYPES`); the Questionnaire is served with
  its answer ValueSets contained and pre-expanded (:mod:`fhirnet.fhir.served`);
* ``POST /fhir/QuestionnaireResponse/$validate`` — validation of a QuestionnaireResponse;
* with the embedded store, ``GET /fhir/<type>/<id>`` and ``GET /fhir/<type>?...`` of what it
  holds (:data:`STORED_TYPES`); with an external FHIR server these are read there (404 here).

Submissions live in :mod:`fhirnet.web.fhir_submissions`, the HTTP plumbing both share in
:mod:`fhirnet.web.fhir_http`.

**Audit**: every read or search of patient data in the embedded store is recorded as an
AuditEvent (:mod:`fhirnet.services.audits`), the requester being the authenticated client
(``g.fhirnet_principal``) or ``anonymous`` with ``FHIRNET_AUTH=none``. A read's AuditEvent names
the resource and its patient; a search's names the query, how many resources of each type it
disclosed and their patients (bounded: :func:`fhirnet.fhir.audit.search_disclosure`). It is
written after the store answered and before the response goes out: if it cannot be written the
read fails (503), so nothing is disclosed unrecorded. A read that finds nothing (404) and requests
refused before the store is asked (400, 401, 403) are not recorded; nor are ``$validate`` (it
reads and stores no patient data), the conformance resources, and reads and searches of
AuditEvent itself (an audit of reading the audit would grow the log with every look at it) —
unless such a search includes patient data (``_include=AuditEvent:entity``), which is recorded.

**Scopes**: a search answers only resources the token may read: its ``_include`` targets were
checked before it ran (:func:`fhirnet.web.auth.include_permissions`), and :func:`_readable` drops
anything else all the same.

Views raise and never catch; :mod:`fhirnet.web.errors` renders every error as an OperationOutcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC
from typing import Any

from flask import current_app, request
from werkzeug.wrappers import Response

from fhirnet.adapters.store import EmbeddedStore, SearchPage, search_support
from fhirnet.adapters.store.resources import is_id
from fhirnet.errors import ProfileNotFoundError
from fhirnet.fhir import audit as events
from fhirnet.fhir.audit import AUDIT_EVENT, Action, Interaction
from fhirnet.fhir.capability import READABLE_TYPES
from fhirnet.fhir.outcome import IssueType, has_errors, operation_outcome
from fhirnet.fhir.profiles import Resource
from fhirnet.fhir.questionnaire import validate_response
from fhirnet.fhir.subsetting import Summary
from fhirnet.ports import Json
from fhirnet.web import web_state
from fhirnet.web.auth import may_read
from fhirnet.web.discovery import with_token_endpoint
from fhirnet.web.errors import FhirRequestError, unsupported_interaction
from fhirnet.web.fhir_bundles import searchset, version_headers
from fhirnet.web.fhir_http import (
    FORMAT_PARAMETERS,
    SUBSET_PARAMETERS,
    audit_trail,
    base_url,
    bp,
    check_parameters,
    json_body,
    lenient,
    parameter_resource,
    parameters,
    requested_subset,
    respond,
)
from fhirnet.web.fhir_search import search_query

#: ``$validate`` modes: fhirnet checks content only, so these three mean the same.
VALIDATE_MODES = ("create", "update", "profile")
#: What fhirnet writes, and its AuditEvents; the embedded store serves them by read and search.
STORED_TYPES = events.STORED_TYPES


@bp.get("/metadata")
def metadata() -> Response:
    """The CapabilityStatement of this server (FHIR ``capabilities`` interaction)."""
    check_parameters((*FORMAT_PARAMETERS, *SUBSET_PARAMETERS, "mode"))
    subset = requested_subset("CapabilityStatement", search=False)
    if request.args.get("mode", "full") != "full":
        raise FhirRequestError(
            400,
            IssueType.NOT_SUPPORTED,
            "Only mode=full of the capabilities interaction is served.",
        )
    statement = with_token_endpoint(web_state().capability)
    statement["implementation"] = {**statement["implementation"], "url": base_url()}
    return respond(subset.apply(statement))


@bp.get("/<resource_type>/<logical_id:resource_id>")
def read(resource_type: str, resource_id: str) -> Response:
    """One conformance resource, or one the embedded store holds, by type and logical id (FHIR
    ``read`` interaction)."""
    if resource_type in STORED_TYPES:
        return _read_stored(resource_type, resource_id)
    _refuse_unsupported()
    _require_readable(resource_type, "read")
    check_parameters((*FORMAT_PARAMETERS, *SUBSET_PARAMETERS))
    subset = requested_subset(resource_type, search=False)
    resource = web_state().catalog.by_id(resource_type, resource_id)
    if resource is None:
        raise ProfileNotFoundError(f"{resource_type}/{resource_id}")
    return respond(subset.apply(_as_served(resource)))


@bp.get("/<resource_type>/<logical_id:resource_id>/_history/<version_id>")
def vread(resource_type: str, resource_id: str, version_id: str) -> Response:
    """One version of a resource the embedded store holds (FHIR ``vread``): what the
    ``Location`` of a submission points at. The conformance resources are not versioned here
    (``versioning: no-version``): 404 ``not-supported``."""
    if resource_type not in STORED_TYPES:
        raise FhirRequestError(
            404,
            IssueType.NOT_SUPPORTED,
            f"vread of {resource_type!r} is not supported: only what fhirnet writes is versioned "
            "(see /fhir/metadata).",
        )
    check_parameters((*FORMAT_PARAMETERS, *SUBSET_PARAMETERS))
    subset = requested_subset(resource_type, search=False)
    store = _embedded(resource_type)
    found = store.vread(resource_type, resource_id, version_id) if is_id(resource_id) else None
    if found is None:
        raise FhirRequestError(
            404,
            IssueType.NOT_FOUND,
            f"There is no version {version_id!r} of {resource_type} {resource_id!r}.",
        )
    if resource_type != AUDIT_EVENT:
        _audit_read(store, found)
    response = respond(subset.apply(found))
    response.headers.update(version_headers(found))
    return response


@bp.get("/<resource_type>")
def search(resource_type: str) -> Response:
    """A ``searchset`` Bundle of the conformance resources of a type (``search-type``), or of
    what the embedded store holds."""
    if resource_type in STORED_TYPES:
        return _search_stored(resource_type)
    _refuse_unsupported()
    _require_readable(resource_type, "search")
    query = search_query(resource_type, request.args, lenient=lenient(), ignored=FORMAT_PARAMETERS)
    subset = requested_subset(resource_type, search=True)
    state = web_state()
    matches = [r for r in state.catalog.of_type(resource_type) if query.matches(r)]
    end = len(matches) if query.count is None else query.offset + query.count
    if subset.summary is Summary.COUNT:
        end = query.offset
    base = base_url()
    links = [{"relation": "self", "url": query.link(base, resource_type, query.offset)}]
    if end < len(matches) and subset.summary is not Summary.COUNT:
        links.append({"relation": "next", "url": query.link(base, resource_type, end)})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{resource_type}/{resource['id']}",
                "resource": subset.apply(_as_served(resource)),
                "search": {"mode": "match"},
            }
            for resource in matches[query.offset : end]
        ],
    }
    if not bundle["entry"]:
        del bundle["entry"]  # R4 has no empty arrays
    return respond(bundle)


@bp.post("/QuestionnaireResponse/$validate")
def validate() -> Response:
    """Validate a QuestionnaireResponse (FHIR ``$validate``): 200 when valid, 422 when not.

    The body is the QuestionnaireResponse itself, or a ``Parameters`` resource whose ``resource``
    parameter holds it. The answer is an OperationOutcome: without error issues (information
    and warnings only) and 200 when valid, with every problem found and 422 when not.
    """
    check_parameters((*FORMAT_PARAMETERS, "mode", "profile"))
    _check_validate_options(request.args.getlist("mode"), request.args.getlist("profile"))
    response = _resource_to_validate(json_body())
    state = web_state()
    # The validator's "today" is a UTC date; the clock may run in any timezone.
    today = state.clock().astimezone(UTC).date()
    issues = validate_response(response, state.catalog, today=today)
    return respond(operation_outcome(issues), 422 if has_errors(issues) else 200)


def _audit_read(store: EmbeddedStore, resource: Json) -> None:
    """Record a read of patient data (module docstring): the resource and its patient."""
    entities = [events.patient(p) for p in events.patients_of(resource)]
    entities.append(
        events.resource(f"{resource['resourceType']}/{resource['id']}", resource["resourceType"])
    )
    _write_audit(store, Interaction.READ, entities)


def _audit_search(store: EmbeddedStore, resource_type: str, disclosed: Sequence[Json]) -> None:
    """Record a search that disclosed patient data: the query, counts, the patients
    (:func:`fhirnet.fhir.audit.search_disclosure`). A search of AuditEvent is recorded only when
    it disclosed something else (``_include=AuditEvent:entity``)."""
    if resource_type == AUDIT_EVENT and not disclosed:
        return
    query_string = request.query_string.decode("utf-8", "replace")
    _write_audit(
        store,
        Interaction.SEARCH_TYPE,
        events.search_disclosure(resource_type, query_string, disclosed),
    )


def _write_audit(
    store: EmbeddedStore, interaction: Interaction, entities: Sequence[events.Entity]
) -> None:
    action = Action.READ if interaction is Interaction.READ else Action.EXECUTE
    trail = audit_trail()
    now = web_state().clock()
    trail.write(
        store, [trail.event(interaction=interaction, action=action, now=now, entities=entities)]
    )


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
    check_parameters((*FORMAT_PARAMETERS, *SUBSET_PARAMETERS))
    subset = requested_subset(resource_type, search=False)
    store = _embedded(resource_type)
    resource = store.read(resource_type, resource_id) if is_id(resource_id) else None
    if resource is None:
        raise FhirRequestError(
            404, IssueType.NOT_FOUND, f"There is no {resource_type} with id {resource_id!r}."
        )
    if resource_type != AUDIT_EVENT:
        _audit_read(store, resource)
    response = respond(subset.apply(resource))
    response.headers.update(version_headers(resource))
    return response


def _search_stored(resource_type: str) -> Response:
    """A page of the embedded store's search; the store refuses (400) what it cannot honour,
    unless the client prefers lenient handling, which leaves unknown parameters out."""
    store = _embedded(resource_type)
    supported = search_support(resource_type).accepted
    prefer_lenient = lenient()
    query = [
        (name, value)
        for name, value in request.args.items(multi=True)
        if name not in FORMAT_PARAMETERS and (name in supported or not prefer_lenient)
    ]
    params: dict[str, list[str]] = {}
    for name, value in query:
        params.setdefault(name, []).append(value)
    page = _readable(store.search_page(resource_type, params))
    subset = requested_subset(resource_type, search=True)
    disclosed = [
        found for found in (*page.matches, *page.included) if found["resourceType"] != AUDIT_EVENT
    ]
    _audit_search(store, resource_type, disclosed)
    if not subset.whole:
        page = replace(
            page,
            matches=[subset.apply(found) for found in page.matches],
            included=[subset.apply(found, elements=False) for found in page.included],
        )
    return respond(searchset(page, base=base_url(), resource_type=resource_type, query=query))


def _readable(page: SearchPage) -> SearchPage:
    """The page without any resource whose type the token may not read (defence in depth: the
    ``_include`` targets were checked before the search ran, :mod:`fhirnet.web.auth`)."""
    matches = [r for r in page.matches if r["resourceType"] == page.resource_type]
    included = [r for r in page.included if may_read(str(r["resourceType"]))]
    if len(matches) == len(page.matches) and len(included) == len(page.included):
        return page
    current_app.logger.warning("a search page held resources the token may not read: dropped")
    return replace(page, matches=matches, included=included)


def _as_served(resource: Resource) -> Resource:
    """The resource as this server serves it: the Questionnaire with contained expansions."""
    state = web_state()
    return state.questionnaire if resource is state.catalog.questionnaire() else resource


def _refuse_unsupported() -> None:
    """400 ``not-supported`` for a URL naming history or an operation in the type's place
    (``/fhir/_history``, ``/fhir/$meta``): :func:`~fhirnet.web.errors.unsupported_interaction`."""
    unsupported = unsupported_interaction(request.path)
    if unsupported is not None:
        raise unsupported


def _require_readable(resource_type: str, interaction: str) -> None:
    if resource_type not in READABLE_TYPES:
        served = READABLE_TYPES + (STORED_TYPES if web_state().backend.embedded else ())
        raise FhirRequestError(
            404,
            IssueType.NOT_SUPPORTED,
            f"{interaction} of {resource_type!r} is not supported; this server serves "
            f"{', '.join(served)} (see /fhir/metadata).",
        )


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
    """The QuestionnaireResponse in a ``$validate`` body: the body itself, or the ``resource``
    parameter of a ``Parameters`` body (whose ``mode`` and ``profile`` are checked too)."""
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirRequestError(
            400,
            IssueType.STRUCTURE,
            "The body must be a FHIR resource: an object with resourceType.",
        )
    resource: Mapping[str, Any] = body
    if body["resourceType"] == "Parameters":
        by_name = parameters(body)
        for name in by_name.keys() - {"resource", "mode", "profile"}:
            raise FhirRequestError(
                400,
                IssueType.NOT_SUPPORTED,
                f"$validate has no parameter {name!r}; it takes resource, mode, profile.",
            )
        _check_validate_options(
            [entry.get("valueCode") for entry in by_name.get("mode", [])],
            [
                entry.get("valueUri", entry.get("valueCanonical"))
                for entry in by_name.get("profile", [])
            ],
        )
        resource = parameter_resource(by_name, "resource", "QuestionnaireResponse")
    if resource["resourceType"] != "QuestionnaireResponse":
        raise FhirRequestError(
            400,
            IssueType.INVALID,
            f"Expected a QuestionnaireResponse (or a Parameters resource holding one), "
            f"got {resource['resourceType']}.",
        )
    return resource
