"""Access control of every request: which endpoints are public, which SMART scope each other one
needs, and the ``before_request`` hook that checks the bearer token (docs/auth.md).

Public: ``/health``, ``/fhir/metadata``, ``/api/v1/openapi.json``, the ``/crf`` page and its
static files, and read/search of the conformance resources (Questionnaire, ValueSet...): none of
them holds patient data, and the CRF page needs the Questionnaire before anyone signs in. Every
other endpoint needs a token; the scope it needs is in :func:`required_permission`. A route
that is in neither list stops ``create_app`` (fail closed), so a new endpoint cannot be
published unprotected by accident.

A search discloses more than its own type when it asks for ``_include`` or ``_revinclude``: each
type such a parameter can reach needs ``system/<Type>.r`` too (:func:`include_permissions`), else
the search is refused (403) before the store is asked. :func:`may_read` is the second line: the
view drops from a Bundle any resource whose type the token may not read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, current_app, g, request

from fhirnet.access import Authenticator, Permission, is_resource_type
from fhirnet.adapters.store.parameters import Kind, parameters_of
from fhirnet.errors import AuthenticationError, AuthorizationError
from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.fhir.capability import READABLE_TYPES
from fhirnet.fhir.identifiers import WRITTEN_TYPES

#: Endpoints anyone may call, with or without a token.
PUBLIC_ENDPOINTS = frozenset(
    {
        "health",
        "fhir.metadata",
        "api.openapi_document",
        "crf.crf_page",
        "crf.static",
        # The reader's timeline page: HTML and script only; its data comes from
        # reader.timeline, with a token.
        "crf.timeline_page",
        # The /crf page's sign-in settings (the authorization server, the page's public
        # client id): what a browser needs before it has a token.
        "crf.crf_config",
        "static",
        # SMART discovery: how to get a token, so it cannot need one.
        "discovery.smart_configuration",
        "discovery.fhir_smart_configuration",
        # The token endpoint of the bulk clients: how to get a token, so it cannot need one.
        "token.token",
    }
)
#: The bulk export (Bulk Data Access) endpoints: a valid token, whatever its scopes, lets a
#: request in; the views check read permission on every type they export.
BULK_ENDPOINTS = frozenset(
    {
        "bulk.kickoff_system",
        "bulk.kickoff_patient",
        "bulk.kickoff_group",
        "bulk.status",
        "bulk.cancel",
        "bulk.download",
    }
)
#: Endpoints any authenticated caller may call, whatever its scopes: the assessment calculator
#: and the trial endpoint derivation read and write no FHIR data, they compute from the request
#: body alone; the bulk endpoints check per type.
AUTHENTICATED_ENDPOINTS = frozenset(
    {"api.create_assessment", "api.create_endpoints", *BULK_ENDPOINTS}
)

QUESTIONNAIRE_RESPONSE = "QuestionnaireResponse"
#: Submitting forms needs create on QuestionnaireResponse only: the Observations,
#: DiagnosticReport, BodyStructures and Provenance that result are written by fhirnet with its own
#: credentials. ``$validate`` and ``$extract`` are the dry runs of that create, so they need it
#: too.
_SUBMIT = Permission(QUESTIONNAIRE_RESPONSE, "c")
#: ``$extract`` also *answers* with resources: the form's results, computed from the patient's
#: stored forms, in a Bundle that can hold every type fhirnet writes. With create alone, a
#: fabricated follow-up for a known patient read out that patient's stored forms and results
#: (finding 2 of the security review), so it needs read on each of those types as well.
EXTRACT_READS = tuple(Permission(resource_type, "r") for resource_type in WRITTEN_TYPES)


def _read_or_search(interaction: str) -> Callable[[Mapping[str, Any]], Permission | None]:
    def permission(view_args: Mapping[str, Any]) -> Permission | None:
        resource_type = str(view_args.get("resource_type", ""))
        if resource_type in READABLE_TYPES:
            return None  # a conformance resource: public
        if not is_resource_type(resource_type):
            # Not a type name at all (the view answers 404): a token, but no scope, is needed,
            # and the name never reaches a response header.
            return Permission("*", interaction)
        return Permission(resource_type, interaction)

    return permission


#: Endpoint → the permission its request needs (``None``: public) given the URL's variables.
SCOPED_ENDPOINTS: Mapping[str, Callable[[Mapping[str, Any]], Permission | None]] = {
    "fhir.read": _read_or_search("r"),
    "fhir.vread": _read_or_search("r"),  # a version of what fhirnet stores: a read
    "fhir.search": _read_or_search("s"),
    "fhir.create": lambda _: _SUBMIT,
    "fhir.submit_form": lambda _: _SUBMIT,  # $submit: the create, answered with the report
    "fhir.transaction": lambda _: _SUBMIT,  # a Bundle of QuestionnaireResponses
    "fhir.validate": lambda _: _SUBMIT,
    "fhir.extract_resources": lambda _: _SUBMIT,
    # The status of a submission: for the client that submitted it (the view checks it is).
    "fhir.submission_status": lambda _: _SUBMIT,
    # Studies (docs/auth.md): a PUT creates or updates, so it needs both (SMART v2 `cu`); a
    # withdrawal updates the ResearchSubject (its data is kept); deleting a study deletes it.
    "studies.put_study_view": lambda _: Permission("ResearchStudy", "c"),
    "studies.get_study_view": lambda _: Permission("ResearchStudy", "r"),
    "studies.delete_study_view": lambda _: Permission("ResearchStudy", "d"),
    "studies.put_subject_view": lambda _: Permission("ResearchSubject", "c"),
    "studies.get_subject_view": lambda _: Permission("ResearchSubject", "r"),
    "studies.withdraw_view": lambda _: Permission("ResearchSubject", "u"),
    # A study's endpoints: derived numbers of the study, its subjects and their reports (no
    # form is read or answered); an adjudication updates the ResearchSubject.
    "studies.study_endpoints_view": lambda _: Permission("ResearchStudy", "r"),
    # A study's plots: the same derived numbers as its endpoints, drawn (and their data).
    "studies.study_plot_view": lambda _: Permission("ResearchStudy", "r"),
    "studies.adjudication_view": lambda _: Permission("ResearchSubject", "u"),
    # SDTM domains: the study, its subjects, their forms (lesions as entered), reports and
    # Observations (sums and responses fhirnet computed).
    "studies.sdtm_view": lambda _: Permission("ResearchStudy", "r"),
    # The reader's workstation (issue 15): $populate reads the patient's stored forms and
    # results to pre-fill a follow-up; the live assessment is a dry run of a submission (like
    # $extract); the timeline reads the patient's forms and results.
    "populate.populate": lambda _: Permission(QUESTIONNAIRE_RESPONSE, "r"),
    "reader.assess": lambda _: _SUBMIT,
    "reader.timeline": lambda _: Permission("DiagnosticReport", "r"),
}

#: What an endpoint needs beyond its :data:`SCOPED_ENDPOINTS` permission: a study or subject PUT
#: creates or updates, so it needs ``u`` besides ``c`` (the scope ``system/<Type>.cu``).
ALSO_NEEDED: Mapping[str, tuple[Permission, ...]] = {
    "studies.put_study_view": (Permission("ResearchStudy", "u"),),
    "studies.put_subject_view": (Permission("ResearchSubject", "u"),),
    "studies.study_endpoints_view": (
        Permission("ResearchSubject", "r"),
        Permission("DiagnosticReport", "r"),
    ),
    "studies.study_plot_view": (
        Permission("ResearchSubject", "r"),
        Permission("DiagnosticReport", "r"),
    ),
    "populate.populate": (Permission("DiagnosticReport", "r"), Permission("Observation", "r")),
    "reader.assess": EXTRACT_READS,
    "reader.timeline": (
        Permission(QUESTIONNAIRE_RESPONSE, "r"),
        Permission("Observation", "r"),
    ),
    "studies.sdtm_view": (
        Permission("ResearchSubject", "r"),
        Permission("QuestionnaireResponse", "r"),
        Permission("DiagnosticReport", "r"),
        Permission("Observation", "r"),
    ),
}


class PseudonymizedClientError(AuthorizationError):
    """A pseudonymized bulk client called an endpoint other than bulk export (403): every other
    endpoint answers identified data."""

    def __init__(self) -> None:
        super().__init__("system/*.rs")
        self.args = (
            "This client is registered as pseudonymized: its token opens bulk export only "
            "($export and its status and files), whose data leave pseudonymized; the other "
            "endpoints answer identified data.",
        )


_PUBLIC = object()
_ANY_SCOPE = object()


def required_permission(endpoint: str | None, view_args: Mapping[str, Any]) -> object:
    """What a request to ``endpoint`` needs: a :class:`Permission`, or one of the markers
    :data:`_PUBLIC` (nothing) and :data:`_ANY_SCOPE` (a valid token).

    A URL that matches no route (``endpoint`` is ``None``) needs a valid token before it learns
    that it is a 404 or 405.
    """
    if endpoint in PUBLIC_ENDPOINTS:
        return _PUBLIC
    if endpoint is None or endpoint in AUTHENTICATED_ENDPOINTS:
        return _ANY_SCOPE
    rule = SCOPED_ENDPOINTS.get(endpoint)
    if rule is None:  # unreachable after check_routes(); fail closed all the same
        return Permission("*", "cruds")
    permission = rule(view_args)
    if permission is None:
        return _PUBLIC
    if permission.resource_type == "*":
        return _ANY_SCOPE
    return permission


def is_public(endpoint: str | None, view_args: Mapping[str, Any]) -> bool:
    """Whether a request to ``endpoint`` with these URL variables needs no token."""
    return required_permission(endpoint, view_args) is _PUBLIC


def check_routes(app: Flask) -> None:
    """Refuse to build an app with a route that is neither public nor mapped to a scope.

    :raises RuntimeError: names the unmapped endpoints (a programming error, not configuration).
    """
    known = PUBLIC_ENDPOINTS | AUTHENTICATED_ENDPOINTS | SCOPED_ENDPOINTS.keys()
    unmapped = sorted({rule.endpoint for rule in app.url_map.iter_rules()} - known)
    if unmapped:
        raise RuntimeError(f"routes without an access rule in fhirnet.web.auth: {unmapped}")


def install(app: Flask, authenticator: Authenticator) -> None:
    """Check every request to ``app`` with ``authenticator``; call after the blueprints are
    registered. With open access (``FHIRNET_AUTH=none``) say so in the log, once."""
    check_routes(app)
    app.extensions["fhirnet.auth"] = authenticator
    if authenticator.open:
        app.logger.warning("authentication disabled (FHIRNET_AUTH=none): every endpoint is open")
    app.before_request(_authorize)


def _authorize() -> None:
    """``before_request``: raise :class:`AuthenticationError` (401) or
    :class:`AuthorizationError` (403) unless the request may go on."""
    authenticator: Authenticator = current_app.extensions["fhirnet.auth"]
    if authenticator.open or request.method == "OPTIONS":
        return  # OPTIONS only lists the allowed methods; it never reaches a view
    needed = required_permission(request.endpoint, request.view_args or {})
    if needed is _PUBLIC:
        return
    principal = authenticator.authenticate(_bearer_token())
    g.fhirnet_principal = principal
    if principal.pseudonymized_study is not None and request.endpoint not in BULK_ENDPOINTS:
        raise PseudonymizedClientError()
    if not isinstance(needed, Permission):
        return
    if request.endpoint == "fhir.search":
        needed_too = include_permissions(request.args.items(multi=True))
    elif request.endpoint == "fhir.extract_resources":
        needed_too = list(EXTRACT_READS)
    else:
        needed_too = list(ALSO_NEEDED.get(request.endpoint or "", ()))
    for permission in (needed, *needed_too):
        if not principal.allows(permission):
            # The URL rule (added by the log formatter), never the raw path: it holds ids.
            current_app.logger.info("%s lacks %s", principal.subject, permission)
            raise AuthorizationError(str(permission))


#: Search parameters that add resources of other types to a search's answer.
INCLUDE_PARAMETERS = ("_include", "_revinclude")


def include_permissions(args: Iterable[tuple[str, str]]) -> list[Permission]:
    """The read permissions the ``_include``/``_revinclude`` parameters among ``args`` need: one
    ``system/<Type>.r`` per type they can bring into the answer.

    ``_include=Source:param:Target`` reaches ``Target``; without a target, the types ``param``
    may refer to; a parameter that may refer to any type (``Provenance:target``,
    ``AuditEvent:entity``), a wildcard (``*``), ``:iterate`` or anything unparseable reaches
    every type the store holds (fail closed: the store refuses what it does not support, but
    only after this check). ``_revinclude=Source:param`` reaches ``Source``.

    :param args: the query's ``(name, value)`` pairs, repeated names included.
    :returns: the permissions in first-needed order, without duplicates.
    """
    found: dict[Permission, None] = {}
    for name, value in args:
        base, _, modifier = name.partition(":")
        if base not in INCLUDE_PARAMETERS:
            continue
        for resource_type in _reached(base, modifier, value):
            found.setdefault(Permission(resource_type, "r"))
    return list(found)


def _reached(parameter: str, modifier: str, value: str) -> tuple[str, ...]:
    """The types one ``_include``/``_revinclude`` value can bring in (see the caller)."""
    source, _, rest = value.partition(":")
    reference, _, target = rest.partition(":")
    if modifier or "*" in value or not is_resource_type(source):
        return STORED_TYPES
    if parameter == "_revinclude":
        return (source,)
    if target:
        return (target,) if is_resource_type(target) else STORED_TYPES
    found = parameters_of(source).get(reference)
    if found is None or found.kind is not Kind.REFERENCE or not found.targets:
        return STORED_TYPES
    return found.targets


def may_read(resource_type: str) -> bool:
    """Whether the current request's token may read resources of ``resource_type``: every
    resource a search answers with is checked with this, whatever the query asked for."""
    authenticator: Authenticator = current_app.extensions["fhirnet.auth"]
    if authenticator.open:
        return True
    principal = g.get("fhirnet_principal")
    return principal is not None and principal.allows(Permission(resource_type, "r"))


def _bearer_token() -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise AuthenticationError(
            "An access token is required (Authorization: Bearer).", error=None
        )
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError(
            "Only bearer tokens are accepted (Authorization: Bearer).", error=None
        )
    token = token.strip()
    if not token:
        raise AuthenticationError("The Authorization header carries no token.")
    return token
