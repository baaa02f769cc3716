"""The Flask application factory; nothing is built at import time (style P3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from fhirnet import __version__
from fhirnet.config import Settings, load_settings
from fhirnet.fhir.capability import capability_statement
from fhirnet.fhir.profiles import load_catalog
from fhirnet.fhir.served import served_questionnaire
from fhirnet.web import WebState
from fhirnet.web.api_views import bp as api_bp
from fhirnet.web.crf_views import bp as crf_bp
from fhirnet.web.errors import register_error_handlers
from fhirnet.web.fhir_views import bp as fhir_bp
from fhirnet.web.openapi import build_openapi_document


class _ContractOrderJSONProvider(DefaultJSONProvider):
    """Write keys in the order the schemas declare them (the contract's order), not sorted."""

    sort_keys = False


def utc_now() -> datetime:
    """The default clock of the application: the current time in UTC."""
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None
) -> Flask:
    """Build a configured fhirnet application.

    The conformance package is loaded and the served Questionnaire and CapabilityStatement are
    built here, once, so a broken ``profiles/`` stops the start instead of failing requests.

    :param settings: overrides for tests; ``None`` reads ``FHIRNET_*`` from the environment.
    :param clock: returns the current, timezone-aware time; tests pass a fixed one. Validation's
        "today" is this time's UTC date. Default: UTC now.
    :returns: the application, with its shared objects in ``app.extensions["fhirnet"]``.
    :raises fhirnet.config.ConfigError: an environment variable has an unusable value.
    :raises fhirnet.errors.ProfileNotFoundError: ``settings.profiles_dir`` is not a FHIR package,
        or lacks the Questionnaire or a ValueSet it uses.
    """
    settings = load_settings() if settings is None else settings
    catalog = load_catalog(settings.profiles_dir)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = _ContractOrderJSONProvider(app)
    app.logger.setLevel(settings.log_level)
    app.extensions["fhirnet"] = WebState(
        settings=settings,
        openapi=build_openapi_document(),
        catalog=catalog,
        questionnaire=served_questionnaire(catalog),
        capability=capability_statement(catalog, software_version=__version__),
        clock=utc_now if clock is None else clock,
    )
    register_error_handlers(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(fhir_bp)
    app.register_blueprint(crf_bp)
    app.add_url_rule("/health", endpoint="health", view_func=_health)
    return app


def _health() -> dict[str, Any]:
    """Liveness probe: answers as soon as the app can serve requests."""
    return {"status": "ok", "version": __version__}
