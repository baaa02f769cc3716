"""What a SMART client discovers before it calls fhirnet (SMART App Launch 2.x,
https://hl7.org/fhir/smart-app-launch/conformance.html): ``GET /.well-known/smart-configuration``,
also at the FHIR base (``/fhir/.well-known/smart-configuration``, where SMART clients look), and
the CapabilityStatement's ``rest.security`` that says the same.

Callers are systems (SMART Backend Services, the ``client_credentials`` grant with a signed JWT
assertion) holding SMART v2 ``system/`` scopes. There is no ``authorize`` endpoint, so no
authorization-code flow and no PKCE (``code_challenge_methods_supported`` is left out).

With bulk clients registered (``FHIRNET_BULK_CLIENTS_FILE``) fhirnet issues their tokens itself:
the document then names its own ``token_endpoint`` (``[root]/auth/token``,
:mod:`fhirnet.web.token_views`), the assertion algorithms it takes (RS384, ES384) and the v1
and v2 read scopes those clients may ask for; the CapabilityStatement's ``rest.security`` carries
the same URL in SMART's ``oauth-uris`` extension. Without them fhirnet issues no tokens, only
verifies them (API keys, or JWTs of ``FHIRNET_JWT_ISSUER``), and publishes no token endpoint
(``FHIRNET_SMART_TOKEN_URL`` is the token endpoint fhirnet itself uses towards the external FHIR
server, not one its callers use); ``issuer``/``jwks_uri`` are published when tokens are those
JWTs.

Readers sign in at the /crf page with SMART App Launch (authorization code with PKCE, standalone
or EHR launch) at an authorization server of their site: with ``FHIRNET_AUTHORIZE_URL`` and
``FHIRNET_READER_TOKEN_URL`` set, the document publishes that server's
``authorization_endpoint`` and ``token_endpoint``, PKCE ``S256``, the ``code`` response type, the
App Launch capabilities and the ``user/`` scopes fhirnet honours. The document has one
``token_endpoint``; the rule (docs/auth.md): it is always the token endpoint of the server whose
``authorization_endpoint`` it names (a code is redeemed where it was issued), so with readers'
sign-in configured it is the readers' server's, and fhirnet's own (bulk clients) is then named
only in the CapabilityStatement's ``oauth-uris``, which never names an authorize endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from werkzeug.wrappers import Response

from fhirnet.authorization import ASSERTION_ALGORITHMS
from fhirnet.config import Settings
from fhirnet.fhir.audit import STORED_TYPES
from fhirnet.web import web_state
from fhirnet.web.errors import fhir_json_response
from fhirnet.web.token_views import TOKEN_PATH, token_url

bp = Blueprint("discovery", __name__)

#: The SMART v2 scopes fhirnet's access rules check (fhirnet/web/auth.py): create of forms,
#: read and search of what it writes. Wider grants (``system/*.cruds``, SMART v1 ``.read`` and
#: ``.write``) are honoured too.
SCOPES = (
    "system/QuestionnaireResponse.c",
    *(f"system/{resource_type}.rs" for resource_type in STORED_TYPES),
)
#: What a bulk client may ask fhirnet's token endpoint for: read of every type, SMART v2 and v1.
BULK_SCOPES = ("system/*.rs", "system/*.read")
#: What a reader signing in at /crf may hold: who they are, the EHR's launch context, and the
#: same interactions as :data:`SCOPES` as ``user/`` scopes (SMART v2; v1 accepted too).
READER_SCOPES = (
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    *(scope.replace("system/", "user/", 1) for scope in SCOPES),
)
#: SMART App Launch capabilities of a fhirnet whose readers sign in (App Launch 2.x §2.1.2).
READER_CAPABILITIES = (
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "context-ehr-patient",
    "context-standalone-patient",
    "sso-openid-connect",
)
#: The SMART extension that names the OAuth endpoints in a CapabilityStatement.
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SMART_SERVICE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR",
        }
    ],
    "text": "OAuth2 bearer tokens with SMART v2 system scopes",
}


def issues_tokens(settings: Settings) -> bool:
    """Whether fhirnet runs its own token endpoint (bulk clients are registered)."""
    return settings.bulk_clients_file is not None


def readers_sign_in(settings: Settings) -> bool:
    """Whether readers sign in with SMART App Launch: the authorization server's authorize and
    token endpoints are both configured (one without the other is no usable flow)."""
    return settings.authorize_url is not None and settings.reader_token_url is not None


def smart_configuration(settings: Settings, *, token_endpoint: str | None = None) -> dict[str, Any]:
    """The SMART configuration document of a fhirnet instance with ``settings``.

    :param token_endpoint: the absolute URL of fhirnet's token endpoint, published when
        :func:`issues_tokens`.
    """
    document: dict[str, Any] = {}
    if settings.jwt_issuer is not None:
        document["issuer"] = settings.jwt_issuer
    if settings.jwks_url is not None:
        document["jwks_uri"] = settings.jwks_url
    own = issues_tokens(settings) and token_endpoint is not None
    readers = readers_sign_in(settings)
    if readers:
        # The one token endpoint is the authorize endpoint's: a code is redeemed where issued.
        document["authorization_endpoint"] = settings.authorize_url
        document["token_endpoint"] = settings.reader_token_url
    elif own:
        document["token_endpoint"] = token_endpoint
    scopes = [*SCOPES, *BULK_SCOPES] if own else list(SCOPES)
    document |= {
        "grant_types_supported": (
            ["authorization_code", "client_credentials"] if readers else ["client_credentials"]
        ),
        "token_endpoint_auth_methods_supported": (
            ["none", "private_key_jwt"] if readers else ["private_key_jwt"]
        ),
        "token_endpoint_auth_signing_alg_values_supported": (
            list(ASSERTION_ALGORITHMS) if own else list(settings.jwt_algorithms)
        ),
        "scopes_supported": [*scopes, *READER_SCOPES] if readers else scopes,
        "capabilities": [
            *(READER_CAPABILITIES if readers else ()),
            "client-confidential-asymmetric",
            "permission-v2",
            "permission-v1",
        ],
    }
    if readers:
        document["response_types_supported"] = ["code"]
        document["code_challenge_methods_supported"] = ["S256"]
    return document


def oauth_uris(token_endpoint: str) -> dict[str, Any]:
    """SMART's ``oauth-uris`` extension of ``rest.security``, naming the token endpoint."""
    return {
        "url": OAUTH_URIS,
        "extension": [{"url": "token", "valueUri": token_endpoint}],
    }


def with_token_endpoint(statement: Mapping[str, Any]) -> dict[str, Any]:
    """``statement`` with SMART's ``oauth-uris`` extension naming fhirnet's token endpoint, when
    fhirnet issues tokens: for the metadata view, which knows the URL requests arrive at
    (:func:`~fhirnet.web.token_views.token_url`; the statement built at start-up can name it
    only when ``FHIRNET_PUBLIC_BASE_URL`` is set)."""
    settings = web_state().settings
    if not issues_tokens(settings):
        return dict(statement)
    rest = [dict(entry) for entry in statement["rest"]]
    for entry in rest:
        security = dict(entry.get("security", {}))
        extensions = [e for e in security.get("extension", []) if e.get("url") != OAUTH_URIS]
        security["extension"] = [*extensions, oauth_uris(token_url(settings))]
        entry["security"] = security
    return {**statement, "rest": rest}


def rest_security(settings: Settings) -> dict[str, Any]:
    """The CapabilityStatement's ``rest.security``: no CORS headers are sent, SMART on FHIR, the
    scopes honoured (described, since R4 has no element for them)."""
    open_access = settings.auth == "none"
    description = (
        "SMART Backend Services: Authorization: Bearer with an API key or a JWT access token "
        "carrying SMART v2 system scopes (system/<Type>.<cruds>; v1 .read/.write accepted). "
        "Scopes honoured: "
        + ", ".join(SCOPES)
        + " (system/*.<cruds> covers every type). user/ scopes in the JWTs of the configured "
        "issuer grant what the same system/ scopes grant; patient/ scopes grant nothing. "
        "Discovery: [base]/.well-known/smart-configuration."
    )
    if open_access:
        description = "Access control is off on this instance (FHIRNET_AUTH=none). " + description
    if issues_tokens(settings):
        description += (
            f" Bulk clients get their tokens from fhirnet itself: POST [root]{TOKEN_PATH} "
            "(client_credentials, a client assertion signed with RS384 or ES384, scopes "
            "system/<Type|*>.rs or .read)."
        )
    else:
        description += " fhirnet issues no tokens itself (no bulk client is registered)."
    if readers_sign_in(settings):
        description += (
            f" Readers sign in with SMART App Launch (authorization code with PKCE S256) at "
            f"{settings.authorize_url}; the smart-configuration's token_endpoint is that "
            "server's"
            + (", not fhirnet's own (named in oauth-uris)." if issues_tokens(settings) else ".")
        )
    security: dict[str, Any] = {"cors": False, "service": [SMART_SERVICE]}
    if issues_tokens(settings) and settings.public_base_url is not None:
        security["extension"] = [oauth_uris(settings.public_base_url + TOKEN_PATH)]
    security["description"] = description
    return security


def _answer() -> Response:
    """``GET /.well-known/smart-configuration``: public, JSON (SMART App Launch 2.x §2.1)."""
    settings = web_state().settings
    document = smart_configuration(settings, token_endpoint=token_url(settings))
    response = fhir_json_response(document, 200, pretty=False)
    response.headers["Content-Type"] = "application/json"
    return response


bp.add_url_rule("/.well-known/smart-configuration", "smart_configuration", _answer)
bp.add_url_rule("/fhir/.well-known/smart-configuration", "fhir_smart_configuration", _answer)
