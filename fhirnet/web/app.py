"""The Flask application factory; nothing is built at import time (style P3)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from fhirnet import __version__
from fhirnet.config import Settings, load_settings
from fhirnet.web import WebState
from fhirnet.web.api_views import bp as api_bp
from fhirnet.web.errors import register_error_handlers
from fhirnet.web.openapi import build_openapi_document


class _ContractOrderJSONProvider(DefaultJSONProvider):
    """Write keys in the order the schemas declare them (the contract's order), not sorted."""

    sort_keys = False


def create_app(settings: Settings | None = None) -> Flask:
    """Build a configured fhirnet application.

    :param settings: overrides for tests; ``None`` reads ``FHIRNET_*`` from the environment.
    :returns: the application, with its shared objects in ``app.extensions["fhirnet"]``.
    :raises fhirnet.config.ConfigError: an environment variable has an unusable value.
    """
    settings = load_settings() if settings is None else settings
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = _ContractOrderJSONProvider(app)
    app.logger.setLevel(settings.log_level)
    app.extensions["fhirnet"] = WebState(settings=settings, openapi=build_openapi_document())
    register_error_handlers(app)
    app.register_blueprint(api_bp)
    app.add_url_rule("/health", endpoint="health", view_func=_health)
    return app


def _health() -> dict[str, Any]:
    """Liveness probe: answers as soon as the app can serve requests."""
    return {"status": "ok", "version": __version__}
