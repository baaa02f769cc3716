"""The Flask application factory; nothing is built at import time (style P3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.wrappers import Response

from fhirnet import __version__
from fhirnet.access import Authenticator
from fhirnet.adapters.store import SearchSupport, search_support
from fhirnet.adapters.study_secrets import load_study_secrets
from fhirnet.config import Settings, load_settings
from fhirnet.errors import OutboxUnavailableError
from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.fhir.capability import capability_statement
from fhirnet.fhir.profiles import load_catalog
from fhirnet.fhir.served import served_questionnaire
from fhirnet.ports import FhirStore
from fhirnet.web import WebState, auth
from fhirnet.web import fhir_submissions as _fhir_submissions  # noqa: F401  routes on fhir_bp
from fhirnet.web import fhir_views as _fhir_views  # noqa: F401  routes on fhir_bp
from fhirnet.web.api_views import bp as api_bp
from fhirnet.web.backend import Backend
from fhirnet.web.bulk_views import bp as bulk_bp
from fhirnet.web.crf_views import bp as crf_bp
from fhirnet.web.delivery import build_deliveries, ensure_delivering
from fhirnet.web.discovery import bp as discovery_bp
from fhirnet.web.discovery import rest_security
from fhirnet.web.errors import register_error_handlers
from fhirnet.web.fhir_http import bp as fhir_bp
from fhirnet.web.logs import install_logging
from fhirnet.web.openapi import build_openapi_document
from fhirnet.web.populate_views import bp as populate_bp
from fhirnet.web.reader_views import bp as reader_bp
from fhirnet.web.study_views import bp as studies_bp
from fhirnet.web.token_views import bp as token_bp


class _ContractOrderJSONProvider(DefaultJSONProvider):
    """Write keys in the order the schemas declare them (the contract's order), not sorted."""

    sort_keys = False


def utc_now() -> datetime:
    """The default clock of the application: the current time in UTC."""
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    store: FhirStore | None = None,
    durable: bool | None = None,
) -> Flask:
    """Build a configured fhirnet application.

    The conformance package is loaded and the served Questionnaire and CapabilityStatement are
    built here, once, so a broken ``profiles/`` stops the start instead of failing requests. The
    embedded store is opened on first use (:mod:`fhirnet.web.backend`).

    :param settings: overrides for tests; ``None`` reads ``FHIRNET_*`` from the environment.
    :param clock: returns the current, timezone-aware time; tests pass a fixed one. Validation's
        "today" is this time's UTC date, and results are ``issued`` at it. Default: UTC now.
    :param store: the FHIR store to work on instead of the one ``settings`` name (tests); an
        :class:`~fhirnet.adapters.store.EmbeddedStore` is served under ``/fhir`` too.
    :param durable: whether submissions go through the outbox (:mod:`fhirnet.web.delivery`);
        ``None``: with an external FHIR server, unless ``FHIRNET_OUTBOX=off``.
    :returns: the application, with its shared objects in ``app.extensions["fhirnet"]``.
    :raises fhirnet.config.ConfigError: an environment variable has an unusable value, or no
        authentication is configured and ``FHIRNET_AUTH`` is not ``none`` (docs/auth.md).
    :raises fhirnet.errors.ProfileNotFoundError: ``settings.profiles_dir`` is not a FHIR package,
        or lacks the Questionnaire or a ValueSet it uses.
    """
    settings = load_settings() if settings is None else settings
    authenticator = Authenticator(settings)  # before anything else: a bad key list stops here
    catalog = load_catalog(settings.profiles_dir)
    backend = Backend(settings, store=store)
    clock = utc_now if clock is None else clock
    deliveries = build_deliveries(
        settings, backend=backend, catalog=catalog, clock=clock, durable=durable
    )
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = _ContractOrderJSONProvider(app)
    app.logger.setLevel(settings.log_level)
    install_logging(app, settings.log_level)  # first, so every request has its id
    app.extensions["fhirnet"] = WebState(
        settings=settings,
        openapi=build_openapi_document(),
        catalog=catalog,
        questionnaire=served_questionnaire(catalog),
        capability=capability_statement(
            catalog,
            software_version=__version__,
            stored=stored_types() if backend.embedded else None,
            security=rest_security(settings),
        ),
        clock=clock,
        backend=backend,
        deliveries=deliveries,
        regimes=load_study_secrets(settings.study_secrets_file),
    )
    register_error_handlers(app)
    if deliveries is not None:  # before access control: any request starts the deliveries
        app.before_request(ensure_delivering)
    app.register_blueprint(api_bp)
    app.register_blueprint(studies_bp)
    app.register_blueprint(fhir_bp)
    app.register_blueprint(populate_bp)
    app.register_blueprint(crf_bp)
    app.register_blueprint(reader_bp)
    app.register_blueprint(discovery_bp)
    app.register_blueprint(bulk_bp)
    app.register_blueprint(token_bp)
    app.add_url_rule("/health", endpoint="health", view_func=_health)
    app.after_request(security_headers)
    app.after_request(reason_phrase)
    auth.install(app, authenticator)
    return app


#: Endpoints whose answers hold no patient data and may be cached: the CRF page's scripts.
CACHEABLE_ENDPOINTS = frozenset({"static", "crf.static"})


def security_headers(response: Response) -> Response:
    """``X-Content-Type-Options: nosniff`` on every answer, so no browser runs a JSON body as
    HTML or script; ``Cache-Control: no-store`` on every answer but static files, so no browser,
    proxy or CDN keeps a copy of patient data (FHIR reads and searches, submissions, errors that
    echo input). Runs for error answers too."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint not in CACHEABLE_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def reason_phrase(response: Response) -> Response:
    """The status line's reason phrase as RFC 9110 spells it (``401 Unauthorized``): werkzeug
    writes it in capitals, and clients that compare it (the SMART Bulk Data test suite) fail."""
    try:
        phrase = HTTPStatus(response.status_code).phrase
    except ValueError:
        return response  # a code without a registered phrase keeps werkzeug's
    response.status = f"{response.status_code} {phrase}"
    return response


def stored_types() -> dict[str, SearchSupport]:
    """How the embedded store searches each type fhirnet writes, for the CapabilityStatement:
    the store's own description, so the statement lists exactly what it honours."""
    return {resource_type: search_support(resource_type) for resource_type in STORED_TYPES}


def _health() -> dict[str, Any] | tuple[dict[str, Any], int]:
    """Liveness probe: answers as soon as the app can serve requests. With durable delivery,
    how many submissions are queued, delivered and failed (counts only: no patient data), for
    monitoring an outage or a growing queue."""
    health: dict[str, Any] = {"status": "ok", "version": __version__}
    deliveries = current_app.extensions["fhirnet"].deliveries
    if deliveries is not None:
        try:
            counts = deliveries.current().outbox.counts()
        except OutboxUnavailableError:  # nothing can be accepted: not healthy
            return {"status": "unavailable", "version": __version__, "outbox": None}, 503
        health["outbox"] = {state.value: count for state, count in counts.items()}
    return health
