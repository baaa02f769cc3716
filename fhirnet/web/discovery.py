"""What a SMART client discovers before it calls fhirnet (SMART App Launch 2.x,
https://hl7.org/fhir/smart-app-launch/conformance.html): ``GET /.well-known/smart-configuration``,
also at the FHIR base (``/fhir/.well-known/smart-configuration``, where SMART clients look), and
the CapabilityStatement's ``rest.security`` that says the same.

fhirnet verifies tokens but issues none: callers are systems (SMART Backend Services, the
``client_credentials`` grant with a signed JWT assertion) holding SMART v2 ``system/`` scopes.
There is no ``authorize`` endpoint, so no authorization-code flow and no PKCE
(``code_challenge_methods_supported`` is left out). ``token_endpoint`` is published only when
fhirnet is told it (it has no such setting for its own callers yet: ``FHIRNET_SMART_TOKEN_URL``
is the token endpoint fhirnet itself uses towards the external FHIR server, not the one its
callers use), and ``issuer``/``jwks_uri`` when tokens are JWTs.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from werkzeug.wrappers import Response

from fhirnet.config import Settings
from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.web import web_state
from fhirnet.web.errors import fhir_json_response

bp = Blueprint("discovery", __name__)

#: The SMART v2 scopes fhirnet's access rules check (fhirnet/web/auth.py): create of forms,
#: read and search of what it writes. Wider grants (``system/*.cruds``, SMART v1 ``.read`` and
#: ``.write``) are honoured too.
SCOPES = (
    "system/QuestionnaireResponse.c",
    *(f"system/{resource_type}.rs" for resource_type in STORED_TYPES),
)
SMART_SERVICE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR",
        }
    ],
    "text": "OAuth2 bearer tokens with SMART v2 system scopes",
}


def smart_configuration(settings: Settings) -> dict[str, Any]:
    """The SMART configuration document of a fhirnet instance with ``settings``."""
    document: dict[str, Any] = {}
    if settings.jwt_issuer is not None:
        document["issuer"] = settings.jwt_issuer
    if settings.jwks_url is not None:
        document["jwks_uri"] = settings.jwks_url
    document |= {
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(settings.jwt_algorithms),
        "scopes_supported": list(SCOPES),
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
    }
    return document


def rest_security(settings: Settings) -> dict[str, Any]:
    """The CapabilityStatement's ``rest.security``: no CORS headers are sent, SMART on FHIR, the
    scopes honoured (described, since R4 has no element for them)."""
    open_access = settings.auth == "none"
    description = (
        "SMART Backend Services: Authorization: Bearer with an API key or a JWT access token "
        "carrying SMART v2 system scopes (system/<Type>.<cruds>; v1 .read/.write accepted). "
        "Scopes honoured: "
        + ", ".join(SCOPES)
        + " (system/*.<cruds> covers every type). patient/ and user/ scopes grant nothing. "
        "Discovery: [base]/.well-known/smart-configuration."
    )
    if open_access:
        description = "Access control is off on this instance (FHIRNET_AUTH=none). " + description
    security: dict[str, Any] = {"cors": False, "service": [SMART_SERVICE]}
    security["description"] = description
    return security


def _answer() -> Response:
    """``GET /.well-known/smart-configuration``: public, JSON (SMART App Launch 2.x §2.1)."""
    response = fhir_json_response(smart_configuration(web_state().settings), 200, pretty=False)
    response.headers["Content-Type"] = "application/json"
    return response


bp.add_url_rule("/.well-known/smart-configuration", "smart_configuration", _answer)
bp.add_url_rule("/fhir/.well-known/smart-configuration", "fhir_smart_configuration", _answer)
