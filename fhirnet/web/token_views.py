"""``POST /auth/token``: the token endpoint of fhirnet's bulk clients (SMART Backend Services;
:mod:`fhirnet.authorization` decides, this blueprint only reads the form and writes the answer).

Public (a client has no token before it asks for one). Answers are JSON, never cached
(``Cache-Control: no-store``, RFC 6749 §5.1); refusals are RFC 6749 §5.2 error objects, never an
OperationOutcome: the callers are OAuth clients. With no bulk client registered, fhirnet issues
no tokens and the endpoint answers 404.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import Blueprint, current_app, request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from fhirnet.access import MAX_TOKEN_LENGTH
from fhirnet.adapters.bulk_clients import load_bulk_clients
from fhirnet.adapters.store.resources import RESOURCE_TYPES
from fhirnet.authorization import TokenIssuer, TokenRequestError, TokenServiceUnavailableError
from fhirnet.config import Settings
from fhirnet.token_key import load_token_key, token_key_path
from fhirnet.web import public_root, web_state
from fhirnet.web.backend import used_assertions

bp = Blueprint("token", __name__)

TOKEN_PATH = "/auth/token"  # noqa: S105 - a URL path, not a secret
FORM_TYPE = "application/x-www-form-urlencoded"
#: Longest token request read: an assertion is at most 8 KiB, the rest is a few short fields.
MAX_FORM_BYTES = 4 * MAX_TOKEN_LENGTH
#: Where the application keeps its :class:`TokenIssuer` (``None``: no bulk clients).
EXTENSION = "fhirnet.token"


def token_url(settings: Settings) -> str:
    """The absolute URL of the token endpoint: ``FHIRNET_PUBLIC_BASE_URL`` (else the URL the
    request came to) plus ``/auth/token``. Every assertion's ``aud`` must be exactly this."""
    return public_root(settings) + TOKEN_PATH


def build_issuer(settings: Settings) -> TokenIssuer | None:
    """The token issuer ``settings`` configure; ``None`` without bulk clients. The used
    assertion ids are kept where every worker (with ``FHIRNET_DATABASE_URL``: every host) sees
    them, so a replayed assertion is refused wherever it lands.

    :raises fhirnet.config.ConfigError: the clients file or the token key is unusable, or
        several hosts would not share the key (:func:`fhirnet.token_key.token_key_path`).
    """
    if settings.bulk_clients_file is None:
        return None
    return TokenIssuer(
        clients=load_bulk_clients(settings.bulk_clients_file),
        key=load_token_key(token_key_path(settings)),
        used=used_assertions(settings),
        resource_types=RESOURCE_TYPES,
        lifetime=settings.token_lifetime,
    )


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    # At registration, so a bad clients file stops the start (create_app sets the settings
    # before it registers the blueprints).
    state.app.extensions[EXTENSION] = build_issuer(state.app.extensions["fhirnet"].settings)


@bp.route(TOKEN_PATH, methods=["GET", "POST"])
def token() -> Response:
    """A token request: ``grant_type=client_credentials`` with a client assertion and a scope,
    form-encoded; answers the token (200) or an OAuth error (400, 401 ``invalid_client``)."""
    if request.method != "POST":
        answer = _json(
            {"error": "invalid_request", "error_description": "The token endpoint takes POST."},
            405,
        )
        answer.headers["Allow"] = "POST"
        return answer
    issuer: TokenIssuer | None = current_app.extensions[EXTENSION]
    if issuer is None:
        return _json(
            {
                "error": "invalid_request",
                "error_description": "This fhirnet issues no tokens: no bulk client is registered.",
            },
            404,
        )
    if request.mimetype != FORM_TYPE:
        raise TokenRequestError("invalid_request", f"The token request must be {FORM_TYPE}.")
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise RequestEntityTooLarge()
    state = web_state()
    issued = issuer.issue(
        request.form.to_dict(flat=False),
        token_url=token_url(state.settings),
        now=int(state.clock().timestamp()),
        new_id=secrets.token_urlsafe,
    )
    current_app.logger.info("token issued to a bulk client (scope %s)", issued["scope"])
    return _json(issued, 200)


@bp.errorhandler(TokenRequestError)
def _refused(error: TokenRequestError) -> Response:
    current_app.logger.info("token request refused: %s", error)
    return _json(error.body(), error.status)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Response:
    return _json(
        {"error": "invalid_request", "error_description": "The token request is too large."},
        413,
    )


@bp.errorhandler(TokenServiceUnavailableError)
def _unavailable(error: TokenServiceUnavailableError) -> Response:
    current_app.logger.error("token endpoint unavailable: %s", error)
    answer = _json(
        {
            "error": "temporarily_unavailable",
            "error_description": "The token endpoint cannot check assertions now; retry later.",
        },
        503,
    )
    answer.headers["Retry-After"] = "5"
    return answer


def _json(body: dict[str, Any], status: int) -> Response:
    answer = Response(json.dumps(body), status=status, mimetype="application/json")
    answer.headers["Cache-Control"] = "no-store"
    answer.headers["Pragma"] = "no-cache"
    return answer
