"""A small but real OAuth 2.0 authorization server for the tests of readers signing in (SMART App
Launch 2.x: authorization code with PKCE, standalone and EHR launch), run as a thread
(:class:`OAuthServer`) or a process (``python -m tests.oauth_server --port N --config file``).

What an EHR's authorization server does, and nothing it does not:

* ``/.well-known/openid-configuration`` and ``/.well-known/smart-configuration``; ``/jwks`` (the
  RS256 key, made at start);
* ``GET /authorize`` checks the request (the registered client and its exact ``redirect_uri``,
  else a 400 page and no redirect, RFC 6749 §4.1.2.1; ``response_type=code``, PKCE ``S256``
  required, ``aud`` = fhirnet's FHIR base, a registered ``launch``) and answers a login page: a
  user picker and a "Sign in" button posting a form, so a browser test clicks through;
* ``POST /authorize`` (that form) redirects with a single-use, short-lived ``code`` and the
  ``state``;
* ``POST /token`` (``authorization_code``) checks the ``code_verifier``, the client and the
  ``redirect_uri`` and answers an RS256 access token (``iss``, ``aud`` = fhirnet's audience,
  ``sub``, ``exp``, ``scope`` = the granted ``user/`` scopes, ``fhirUser``), an ``id_token``
  with ``fhirUser`` when ``openid`` was granted, and ``patient`` for a launch with a patient;
* ``POST /launch`` ``{"patient": "..."}`` registers an EHR launch as the EHR would, answering its
  ``launch`` id;
* CORS headers on ``/token`` and the well-knowns for the configured origins (the /crf page calls
  ``/token`` from the browser).

The configuration (JSON file or dict)::

    {"fhir_base": "http://127.0.0.1:8000/fhir",       # the aud /authorize requires
     "audience": "http://127.0.0.1:8000/fhir",        # the access token's aud (default fhir_base)
     "clients": [{"client_id": "crf", "redirect_uris": ["http://127.0.0.1:8000/crf"]}],
     "users": [{"id": "reader-1", "name": "Dr One"}],  # fhirUser Practitioner/<id>
     "patients": ["small-bowel-net-prrt"],            # the standalone launch's patient picker
     "cors_origins": ["http://127.0.0.1:8000"],
     "issuer": "...",                                 # default: the server's own base URL
     "code_seconds": 60, "token_seconds": 300, "login_seconds": 600}
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import secrets
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, request
from jwt.algorithms import RSAAlgorithm
from werkzeug.serving import BaseWSGIServer, make_server

KEY_ID = "test-as-1"
#: Scopes that are not resource scopes: identity and launch context.
CONTEXT_SCOPES = frozenset({"openid", "fhirUser", "profile", "launch", "launch/patient"})
CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "context-ehr-patient",
    "context-standalone-patient",
    "sso-openid-connect",
    "permission-v2",
    "permission-v1",
]


@dataclass(frozen=True)
class Client:
    """A registered public client: its id and the redirect URIs it may use (exact match)."""

    client_id: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class Pending:
    """A checked authorization request waiting for the user to sign in."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str
    nonce: str | None
    patient: str | None
    expires: float


@dataclass(frozen=True)
class Grant:
    """What a code stands for until it is exchanged (once)."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    user: str
    nonce: str | None
    patient: str | None
    expires: float


class AuthorizeError(Exception):
    """An authorization request refused with an OAuth error; ``redirect``: told to the client
    at its redirect URI (else shown to the user: the redirect URI is not trusted)."""

    def __init__(self, error: str, description: str, *, redirect: bool) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect = redirect


class TokenError(Exception):
    """A token request refused: RFC 6749 §5.2 error JSON with ``status``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class AuthorizationServer:
    """The state of the server: its key, clients, users, pending requests, codes, launches."""

    config: Mapping[str, Any]
    issuer: str
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    pending: dict[str, Pending] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    launches: dict[str, str | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def clients(self) -> dict[str, Client]:
        return {
            entry["client_id"]: Client(entry["client_id"], tuple(entry["redirect_uris"]))
            for entry in self.config.get("clients", [])
        }

    @property
    def users(self) -> dict[str, str]:
        return {entry["id"]: entry.get("name", entry["id"]) for entry in self.config["users"]}

    @property
    def fhir_base(self) -> str:
        return str(self.config["fhir_base"]).rstrip("/")

    @property
    def audience(self) -> str:
        return str(self.config.get("audience", self.fhir_base))

    def seconds(self, name: str, default: int) -> int:
        return int(self.config.get(name, default))

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}

    def metadata(self) -> dict[str, Any]:
        """What OpenID Connect discovery and SMART's well-known both say."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": sorted(CONTEXT_SCOPES),
        }

    # --- /authorize ---

    def check_authorize(self, query: Mapping[str, str]) -> Pending:
        """A checked authorization request (RFC 6749 §4.1.1, RFC 7636, SMART App Launch)."""
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            raise AuthorizeError("unauthorized_client", "Unknown client_id.", redirect=False)
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            raise AuthorizeError(
                "invalid_request", "redirect_uri is not the client's.", redirect=False
            )
        if query.get("response_type") != "code":
            raise AuthorizeError("unsupported_response_type", "Only code.", redirect=True)
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            raise AuthorizeError(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required.",
                redirect=True,
            )
        if query.get("aud", "").rstrip("/") != self.fhir_base:
            raise AuthorizeError("invalid_request", f"aud must be {self.fhir_base}.", redirect=True)
        scopes = tuple(query.get("scope", "").split())
        patient = None
        if "launch" in query:
            with self.lock:
                if query["launch"] not in self.launches:
                    raise AuthorizeError("invalid_request", "Unknown launch.", redirect=True)
                patient = self.launches[query["launch"]]
        return Pending(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=query.get("state"),
            code_challenge=query["code_challenge"],
            nonce=query.get("nonce"),
            patient=patient,
            expires=time.time() + self.seconds("login_seconds", 600),
        )

    def remember(self, pending: Pending) -> str:
        request_id = secrets.token_urlsafe(16)
        with self.lock:
            self.pending[request_id] = pending
        return request_id

    def sign_in(self, request_id: str, user: str, patient: str | None) -> tuple[Pending, str]:
        """The user signed in for a pending request: its code (single use, short-lived)."""
        with self.lock:
            pending = self.pending.pop(request_id, None)
        if pending is None or pending.expires < time.time():
            raise AuthorizeError("invalid_request", "No such sign-in request.", redirect=False)
        if user not in self.users:
            raise AuthorizeError("access_denied", "Unknown user.", redirect=True)
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = Grant(
                client_id=pending.client_id,
                redirect_uri=pending.redirect_uri,
                scopes=pending.scopes,
                code_challenge=pending.code_challenge,
                user=user,
                nonce=pending.nonce,
                patient=pending.patient or patient,
                expires=time.time() + self.seconds("code_seconds", 60),
            )
        return pending, code

    # --- /token ---

    def exchange(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The token response to an ``authorization_code`` request (RFC 6749 §4.1.3)."""
        if form.get("grant_type") != "authorization_code":
            raise TokenError("unsupported_grant_type", "Only authorization_code.")
        missing = [
            name
            for name in ("code", "redirect_uri", "client_id", "code_verifier")
            if not form.get(name)
        ]
        if missing:
            raise TokenError("invalid_request", f"Missing {', '.join(missing)}.")
        if form["client_id"] not in self.clients:
            raise TokenError("invalid_client", "Unknown client_id.", 401)
        with self.lock:
            grant = self.codes.pop(form["code"], None)  # single use, whatever happens next
        if grant is None or grant.expires < time.time():
            raise TokenError("invalid_grant", "Unknown, used or expired code.")
        if grant.client_id != form["client_id"]:
            raise TokenError("invalid_grant", "The code was issued to another client.")
        if grant.redirect_uri != form["redirect_uri"]:
            raise TokenError("invalid_grant", "redirect_uri differs from the authorization's.")
        if s256(form["code_verifier"]) != grant.code_challenge:
            raise TokenError("invalid_grant", "code_verifier does not match code_challenge.")
        return self.tokens(grant)

    def tokens(self, grant: Grant) -> dict[str, Any]:
        now = int(time.time())
        lifetime = self.seconds("token_seconds", 300)
        fhir_user = f"Practitioner/{grant.user}"
        granted = [s for s in grant.scopes if s in CONTEXT_SCOPES or s.startswith("user/")]
        if grant.patient is None:
            granted = [s for s in granted if s != "launch/patient"]
        resource_scopes = [s for s in granted if s.startswith("user/")]
        access = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": grant.user,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(8),
            "client_id": grant.client_id,
            "scope": " ".join(resource_scopes),
            "fhirUser": fhir_user,
        }
        answer: dict[str, Any] = {
            "access_token": self.sign(access, typ="at+jwt"),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(granted),
        }
        if "openid" in granted:
            identity = {
                "iss": self.issuer,
                "aud": grant.client_id,
                "sub": grant.user,
                "iat": now,
                "exp": now + lifetime,
                "fhirUser": fhir_user,
                "name": self.users[grant.user],
            }
            if grant.nonce:
                identity["nonce"] = grant.nonce
            answer["id_token"] = self.sign(identity, typ="JWT")
        if grant.patient is not None:
            answer["patient"] = grant.patient
            answer["need_patient_banner"] = True
        return answer

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        return jwt.encode(
            dict(claims), self.key, algorithm="RS256", headers={"kid": KEY_ID, "typ": typ}
        )

    def launch(self, patient: str | None) -> str:
        launch_id = secrets.token_urlsafe(12)
        with self.lock:
            self.launches[launch_id] = patient
        return launch_id


def site_config(
    fhirnet_root: str,
    *,
    client_id: str = "crf",
    users: Iterable[tuple[str, str]] = (("reader-nuclear-radiology", "Dr Nuclear"),),
    patients: Iterable[str] = (),
) -> dict[str, Any]:
    """The configuration of a server for the /crf page of the fhirnet at ``fhirnet_root``
    (``http://127.0.0.1:8000``): aud and audience its FHIR base, the page registered with its
    redirect URI, its origin allowed by CORS; ``users`` as (id, name)."""
    return {
        "fhir_base": f"{fhirnet_root}/fhir",
        "audience": f"{fhirnet_root}/fhir",
        "clients": [{"client_id": client_id, "redirect_uris": [f"{fhirnet_root}/crf"]}],
        "users": [{"id": user_id, "name": name} for user_id, name in users],
        "patients": list(patients),
        "cors_origins": [fhirnet_root],
    }


def fhirnet_environment(issuer: str, fhirnet_root: str, client_id: str = "crf") -> dict[str, str]:
    """The ``FHIRNET_*`` variables of a fhirnet whose readers sign in at the server at
    ``issuer`` (its tokens verified through its JWKS, the page sent to it)."""
    return {
        "FHIRNET_JWKS_URL": f"{issuer}/jwks",
        "FHIRNET_JWT_ISSUER": issuer,
        "FHIRNET_JWT_AUDIENCE": f"{fhirnet_root}/fhir",
        "FHIRNET_AUTHORIZE_URL": f"{issuer}/authorize",
        "FHIRNET_READER_TOKEN_URL": f"{issuer}/token",
        "FHIRNET_READER_CLIENT_ID": client_id,
    }


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def create_app(server: AuthorizationServer) -> Flask:
    """The HTTP face of ``server``."""
    app = Flask(__name__)

    def cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and origin in server.config.get("cors_origins", []):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
            response.headers["Vary"] = "Origin"
        return response

    def json_answer(body: Any, status: int = 200) -> Response:
        response = Response(json.dumps(body), status, mimetype="application/json")
        response.headers["Cache-Control"] = "no-store"
        return cors(response)

    @app.get("/health")
    def health() -> Response:
        return Response("ok", mimetype="text/plain")

    @app.route("/.well-known/openid-configuration", methods=["GET", "OPTIONS"])
    def openid_configuration() -> Response:
        return json_answer(server.metadata())

    @app.route("/.well-known/smart-configuration", methods=["GET", "OPTIONS"])
    def smart_configuration() -> Response:
        return json_answer(server.metadata() | {"capabilities": CAPABILITIES})

    @app.get("/jwks")
    def jwks() -> Response:
        return json_answer(server.jwks())

    @app.get("/authorize")
    def authorize() -> Response:
        try:
            pending = server.check_authorize(request.args)
        except AuthorizeError as error:
            return refused(error, request.args.get("redirect_uri"), request.args.get("state"))
        return login_page(server, server.remember(pending), pending)

    @app.post("/authorize")
    def signed_in() -> Response:
        form = request.form
        request_id = form.get("request", "")
        if form.get("action") == "deny":
            with server.lock:
                pending = server.pending.pop(request_id, None)
            if pending is None:
                return error_page("No such sign-in request.")
            error = AuthorizeError("access_denied", "The user declined.", redirect=True)
            return refused(error, pending.redirect_uri, pending.state)
        try:
            pending, code = server.sign_in(
                request_id, form.get("user", ""), form.get("patient") or None
            )
        except AuthorizeError as error:
            return error_page(error.description)
        return redirect(pending.redirect_uri, {"code": code, "state": pending.state})

    @app.route("/token", methods=["POST", "OPTIONS"])
    def token() -> Response:
        if request.method == "OPTIONS":
            return cors(Response(status=204))
        try:
            return json_answer(server.exchange(request.form))
        except TokenError as error:
            body = {"error": error.error, "error_description": error.description}
            return json_answer(body, error.status)

    @app.post("/launch")
    def launch() -> Response:
        body = request.get_json(silent=True)
        patient = body.get("patient") if isinstance(body, dict) else None
        if patient is not None and not isinstance(patient, str):
            return json_answer({"error": "invalid_request"}, 400)
        return json_answer({"launch": server.launch(patient)}, 201)

    def refused(error: AuthorizeError, redirect_uri: str | None, state: str | None) -> Response:
        if not error.redirect or not redirect_uri:
            return error_page(error.description)
        query = {"error": error.error, "error_description": error.description, "state": state}
        return redirect(redirect_uri, query)

    return app


def redirect(uri: str, query: Mapping[str, str | None]) -> Response:
    """A 302 to ``uri`` with ``query`` added (``None`` values left out)."""
    values = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    separator = "&" if urllib.parse.urlsplit(uri).query else "?"
    response = Response(status=302)
    response.headers["Location"] = f"{uri}{separator}{values}"
    return response


def error_page(message: str) -> Response:
    page = (
        "<!doctype html><title>Sign-in refused</title><h1>Sign-in refused</h1>"
        f"<p>{html.escape(message)}</p>"
    )
    return Response(page, 400, mimetype="text/html")


def login_page(server: AuthorizationServer, request_id: str, pending: Pending) -> Response:
    """The sign-in page: pick a user (and, for a standalone launch asking for a patient, the
    patient), then "Sign in" posts the form."""
    users = "".join(
        f'<label><input type="radio" name="user" value="{html.escape(user_id)}"'
        f"{' checked' if number == 0 else ''}> {html.escape(name)} (Practitioner/"
        f"{html.escape(user_id)})</label><br>"
        for number, (user_id, name) in enumerate(server.users.items())
    )
    patients = ""
    if "launch/patient" in pending.scopes and pending.patient is None:
        options = "".join(
            f'<option value="{html.escape(p)}">{html.escape(p)}</option>'
            for p in server.config.get("patients", [])
        )
        patients = f'<label>Patient <select name="patient">{options}</select></label><br>'
    page = (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>Sign in</title>'
        f"<h1>Sign in to {html.escape(pending.client_id)}</h1>"
        '<form method="post" action="authorize">'
        f'<input type="hidden" name="request" value="{html.escape(request_id)}">'
        f"<fieldset><legend>Reader</legend>{users}</fieldset>{patients}"
        '<button type="submit" name="action" value="sign-in">Sign in</button> '
        '<button type="submit" name="action" value="deny">Cancel</button>'
        "</form></html>"
    )
    return Response(page, 200, mimetype="text/html")


class OAuthServer:
    """The authorization server served on a loopback port by a thread (or the main thread)."""

    def __init__(self, config: Mapping[str, Any], *, port: int = 0, host: str = "127.0.0.1"):
        self._http: BaseWSGIServer = make_server(host, port, Flask(__name__), threaded=True)
        self.port = self._http.server_port
        self.base_url = f"http://{host}:{self.port}"
        self.state = AuthorizationServer(config=config, issuer=config.get("issuer", self.base_url))
        self._http.app = create_app(self.state)
        self._thread: threading.Thread | None = None

    def start(self) -> OAuthServer:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    arguments = parser.parse_args(None if argv is None else list(argv))
    config = json.loads(arguments.config.read_text(encoding="utf-8"))
    server = OAuthServer(config, port=arguments.port)
    sys.stdout.write(f"authorization server at {server.base_url}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
