"""Settings of the service, read from ``FHIRNET_*`` environment variables in this module only.

Everything downstream receives a :class:`Settings` value; no other module reads ``os.environ``, so
one place knows every variable name and how it is checked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from fhirnet.errors import FhirnetError

PREFIX = "FHIRNET_"
DEFAULT_PROFILES_DIR = Path(__file__).parents[1] / "profiles"
DEFAULT_EXAMPLES_DIR = Path(__file__).parents[1] / "examples"
#: fhirnet's own files (the embedded store's database, the per-patient lock files): next to the
#: checkout by default, like ``profiles/``; a container sets ``FHIRNET_DATA_DIR`` to a volume.
DEFAULT_DATA_DIR = Path(__file__).parents[1] / "data"
#: What fhirnet asks a SMART authorisation server for: search, read, create and update of the
#: types it reads and writes (SMART v2 scope syntax), nothing else.
DEFAULT_SMART_SCOPE = " ".join(
    f"system/{resource_type}.crus"
    for resource_type in (
        "QuestionnaireResponse",
        "Observation",
        "DiagnosticReport",
        "BodyStructure",
        "Provenance",
    )
)
#: What the /crf page asks the readers' authorization server for: who the reader is (OpenID
#: Connect ``fhirUser``), the EHR's launch context, creating forms, and reading what a
#: follow-up is pre-filled and assessed from (SMART v2 ``user/`` scopes).
DEFAULT_READER_SCOPE = " ".join(
    (
        "openid",
        "fhirUser",
        "launch",
        "launch/patient",
        "user/QuestionnaireResponse.crs",
        *(
            f"user/{resource_type}.rs"
            for resource_type in (
                "Observation",
                "DiagnosticReport",
                "BodyStructure",
                "Provenance",
            )
        ),
    )
)
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
#: Values of ``FHIRNET_AUTH``.
AUTH_MODES = ("none", "keys", "jwt", "keys,jwt")
#: Asymmetric JWS algorithms ``FHIRNET_JWT_ALGORITHMS`` may list. HMAC (HS*) is left out on
#: purpose: with a public JWKS it invites the key-confusion attack; ``none`` is never accepted.
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
#: Shortest API key accepted: 16 characters of ``secrets.token_urlsafe`` carry 96 bits.
MIN_API_KEY_LENGTH = 16

_T = TypeVar("_T")


class ConfigError(FhirnetError, ValueError):
    """An environment variable holds a value the service cannot run with; the message names it."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable about fhirnet, with the defaults used when a variable is unset."""

    #: Largest accepted request body; larger bodies get 413 before they are parsed.
    max_body_bytes: int = 5 * 1024 * 1024
    #: Address ``fhirnet serve`` binds to; loopback by default so nothing is exposed by accident.
    host: str = "127.0.0.1"
    port: int = 8080
    #: gunicorn worker processes and threads per worker for ``fhirnet serve`` / ``fhirnet demo``.
    #: Threaded workers (gthread) by default: one sync worker is CPU-bound on one core
    #: (bench/README.md, load test), and one slow client held it for everyone (docs/security.md).
    workers: int = 2
    threads: int = 8
    #: The URL clients reach fhirnet at (``https://fhirnet.example.org``): every absolute URL
    #: fhirnet answers with (``Location``, Bundle links, ``fullUrl``) starts with it plus
    #: ``/fhir``. ``None``: taken from the request's ``Host`` header, which a client controls.
    public_base_url: str | None = None
    #: Conformance artifacts live outside the package (see the style guide's layout notes).
    profiles_dir: Path = DEFAULT_PROFILES_DIR
    #: Example data that ``fhirnet demo`` runs through the service.
    examples_dir: Path = DEFAULT_EXAMPLES_DIR
    log_level: str = "INFO"
    #: fhirnet's own files: the embedded store (``fhirnet-store.sqlite3``) and ``locks/``.
    data_dir: Path = DEFAULT_DATA_DIR
    #: The external FHIR R4 server results are written to; ``None``: the embedded store.
    fhir_base_url: str | None = None
    #: Seconds to connect to the FHIR server, and to wait for each of its answers.
    fhir_connect_timeout: float = 5.0
    fhir_timeout: float = 30.0
    #: A static access token for the FHIR server (exclusive with SMART).
    fhir_bearer_token: str | None = field(default=None, repr=False)
    #: SMART Backend Services: the client id registered with the FHIR server's authorisation
    #: server, the PEM private key file whose public key it holds, the scopes asked for, and
    #: optionally the token endpoint (else discovered) and the key's ``kid``.
    smart_client_id: str | None = None
    smart_private_key_file: Path | None = None
    smart_scope: str = DEFAULT_SMART_SCOPE
    smart_token_url: str | None = None
    smart_key_id: str | None = None
    #: Seconds a submission waits for another one about the same patient before answering 503.
    lock_timeout: float = 30.0
    #: Durable delivery to the external FHIR server (docs/delivery.md): submissions are kept in
    #: an outbox (``outbox_path``, default ``data_dir/outbox.sqlite3``) until the server has
    #: them, and answered ``202 Accepted`` while it is down. ``False``: answered ``503``.
    outbox: bool = True
    outbox_path: Path | None = None
    #: First and longest delay between two delivery attempts of a queued submission.
    delivery_backoff: float = 1.0
    delivery_max_backoff: float = 300.0
    #: Days the status of a finished submission stays answerable (then ``404``).
    outbox_retention_days: int = 30
    #: PostgreSQL shared by every host (``postgresql://user:password@host/db``): the outbox and
    #: the per-patient locks live there instead of ``data_dir`` (SQLite, ``flock``: one host).
    #: Never shown in a repr: it usually carries the password.
    database_url: str | None = field(default=None, repr=False)

    # --- Access control of fhirnet's own endpoints (docs/auth.md) ---
    #: How callers authenticate: ``"keys"``, ``"jwt"``, ``"keys,jwt"`` or ``"none"`` (open
    #: access, explicit only). ``None``: whichever of API keys and JWKS is configured; with
    #: neither, :func:`auth_methods` refuses to start.
    auth: str | None = None
    #: Static API keys, each with the SMART scopes it grants (empty: full access).
    api_keys: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), repr=False)
    #: Where the public keys that sign access tokens come from: a JWKS URL or a JWKS file.
    jwks_url: str | None = None
    jwks_file: Path | None = None
    #: The ``iss`` and ``aud`` every access token must carry.
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    #: The signature algorithms accepted; never ``none`` nor HMAC (the keys are public).
    jwt_algorithms: tuple[str, ...] = ("RS256", "RS384", "ES256", "ES384")
    #: Limits on every JSON request body, checked after decoding and before any other work
    #: (:mod:`fhirnet.web.limits`): nesting depth, number of JSON values, characters per string
    #: (keys included), items and answers per QuestionnaireResponse, entries per Bundle.
    max_json_depth: int = 64
    max_json_values: int = 200_000
    max_string_length: int = 10_000
    max_items: int = 2_000
    max_bundle_entries: int = 100

    # --- Sharing a study's data (docs/trials.md "Pseudonymization", "Bulk Data export") ---
    #: JSON file of per-study pseudonymization regimes: ``{"<studyId>": {"secret": "...",
    #: "dates": "shift" | "study-day"}}``. The secrets key the pseudonyms and date offsets; a
    #: study without an entry is exported identified (SDTM) and refused to pseudonymized clients.
    study_secrets_file: Path | None = None
    #: JSON file of the SMART Backend Services clients fhirnet issues tokens to (bulk export):
    #: ``[{"client_id", "jwks" | "jwks_url", "scope", "pseudonymized_study"}]``.
    bulk_clients_file: Path | None = None
    #: The key that signs the access tokens fhirnet issues; ``None``: ``data_dir/token-key``,
    #: created on first start (every host behind one address must share it).
    token_key_file: Path | None = None
    #: Seconds an access token fhirnet issues stays valid.
    token_lifetime: int = 300
    #: Seconds the files of a finished bulk export stay downloadable (then 404).
    export_expiry: int = 3600
    #: Where the NDJSON files of the bulk exports are written (``<job id>/<Type>.ndjson``);
    #: ``None``: ``data_dir/exports``. Several hosts (``database_url``) must share it.
    export_dir: Path | None = None

    # --- The reader's workstation (/crf) signing in (docs/crf-page.md) ---
    #: The authorization server readers sign in at (SMART App Launch, authorization code with
    #: PKCE): its authorize and token endpoints, published in the SMART configuration. Its
    #: access tokens are verified as every JWT (FHIRNET_JWKS_*, FHIRNET_JWT_ISSUER/AUDIENCE).
    authorize_url: str | None = None
    reader_token_url: str | None = None
    #: The public client id the /crf page is registered with at that server; ``None``: the page
    #: can sign in only where access is open (FHIRNET_AUTH=none).
    reader_client_id: str | None = None
    #: The scopes the page asks for.
    reader_scope: str = DEFAULT_READER_SCOPE


def load_settings(
    environ: Mapping[str, str] | None = None, *, default_auth: str | None = None
) -> Settings:
    """Build :class:`Settings` from ``FHIRNET_*`` variables, defaults for the unset ones.

    :param environ: the variables to read; ``None`` reads the process environment (the only
        place in fhirnet that does).
    :param default_auth: ``FHIRNET_AUTH`` when neither it nor any API key or JWKS is set;
        ``fhirnet demo`` passes ``"none"``. ``None``: such a configuration is refused.
    :returns: validated settings.
    :raises ConfigError: a variable is set to an unusable value; the message names the variable.
    """
    env = os.environ if environ is None else environ
    defaults = Settings()

    def read(name: str, parse: Callable[[str, str], _T], default: _T) -> _T:
        variable = PREFIX + name
        raw = env.get(variable)
        return default if raw is None else parse(variable, raw)

    settings = Settings(
        max_body_bytes=read("MAX_BODY_BYTES", _positive_int, defaults.max_body_bytes),
        host=read("HOST", _non_empty, defaults.host),
        port=read("PORT", _port, defaults.port),
        workers=read("WORKERS", _positive_int, defaults.workers),
        threads=read("THREADS", _positive_int, defaults.threads),
        public_base_url=read("PUBLIC_BASE_URL", _base_url, defaults.public_base_url),
        profiles_dir=read("PROFILES_DIR", _path, defaults.profiles_dir),
        examples_dir=read("EXAMPLES_DIR", _path, defaults.examples_dir),
        log_level=read("LOG_LEVEL", _log_level, defaults.log_level),
        data_dir=read("DATA_DIR", _path, defaults.data_dir),
        fhir_base_url=read("FHIR_BASE_URL", _base_url, defaults.fhir_base_url),
        fhir_connect_timeout=read(
            "FHIR_CONNECT_TIMEOUT", _positive_seconds, defaults.fhir_connect_timeout
        ),
        fhir_timeout=read("FHIR_TIMEOUT", _positive_seconds, defaults.fhir_timeout),
        fhir_bearer_token=read("FHIR_BEARER_TOKEN", _non_empty, defaults.fhir_bearer_token),
        smart_client_id=read("SMART_CLIENT_ID", _non_empty, defaults.smart_client_id),
        smart_private_key_file=read(
            "SMART_PRIVATE_KEY_FILE", _path, defaults.smart_private_key_file
        ),
        smart_scope=read("SMART_SCOPE", _non_empty, defaults.smart_scope),
        smart_token_url=read("SMART_TOKEN_URL", _base_url, defaults.smart_token_url),
        smart_key_id=read("SMART_KEY_ID", _non_empty, defaults.smart_key_id),
        lock_timeout=read("LOCK_TIMEOUT", _positive_seconds, defaults.lock_timeout),
        outbox=read("OUTBOX", _on_off, defaults.outbox),
        outbox_path=read("OUTBOX_PATH", _path, defaults.outbox_path),
        delivery_backoff=read("DELIVERY_BACKOFF", _positive_seconds, defaults.delivery_backoff),
        delivery_max_backoff=read(
            "DELIVERY_MAX_BACKOFF", _positive_seconds, defaults.delivery_max_backoff
        ),
        outbox_retention_days=read(
            "OUTBOX_RETENTION_DAYS", _positive_int, defaults.outbox_retention_days
        ),
        database_url=read("DATABASE_URL", _database_url, defaults.database_url),
        max_json_depth=read("MAX_JSON_DEPTH", _positive_int, defaults.max_json_depth),
        max_json_values=read("MAX_JSON_VALUES", _positive_int, defaults.max_json_values),
        max_string_length=read("MAX_STRING_LENGTH", _positive_int, defaults.max_string_length),
        max_items=read("MAX_ITEMS", _positive_int, defaults.max_items),
        max_bundle_entries=read("MAX_BUNDLE_ENTRIES", _positive_int, defaults.max_bundle_entries),
        auth=read("AUTH", _auth_mode, defaults.auth),
        api_keys=read("API_KEYS", _api_keys, defaults.api_keys),
        jwks_url=read("JWKS_URL", _base_url, defaults.jwks_url),
        jwks_file=read("JWKS_FILE", _path, defaults.jwks_file),
        jwt_issuer=read("JWT_ISSUER", _non_empty, defaults.jwt_issuer),
        jwt_audience=read("JWT_AUDIENCE", _non_empty, defaults.jwt_audience),
        jwt_algorithms=read("JWT_ALGORITHMS", _jwt_algorithms, defaults.jwt_algorithms),
        study_secrets_file=read("STUDY_SECRETS_FILE", _path, defaults.study_secrets_file),
        bulk_clients_file=read("BULK_CLIENTS_FILE", _path, defaults.bulk_clients_file),
        token_key_file=read("TOKEN_KEY_FILE", _path, defaults.token_key_file),
        token_lifetime=read("TOKEN_LIFETIME", _positive_int, defaults.token_lifetime),
        export_expiry=read("EXPORT_EXPIRY", _positive_int, defaults.export_expiry),
        export_dir=read("EXPORT_DIR", _path, defaults.export_dir),
        authorize_url=read("AUTHORIZE_URL", _base_url, defaults.authorize_url),
        reader_token_url=read("READER_TOKEN_URL", _base_url, defaults.reader_token_url),
        reader_client_id=read("READER_CLIENT_ID", _non_empty, defaults.reader_client_id),
        reader_scope=read("READER_SCOPE", _non_empty, defaults.reader_scope),
    )
    _check_auth(settings)
    unconfigured = (
        not settings.api_keys and settings.jwks_url is None and settings.bulk_clients_file is None
    )
    if unconfigured and settings.jwks_file is None and settings.auth is None and default_auth:
        settings = replace(settings, auth=_auth_mode(PREFIX + "AUTH", default_auth))
    auth_methods(settings)
    return settings


def _check_auth(settings: Settings) -> None:
    """Auth settings only make sense together, and with an external FHIR server."""
    smart = settings.smart_client_id is not None or settings.smart_private_key_file is not None
    if settings.fhir_bearer_token is not None and smart:
        raise ConfigError(
            f"{PREFIX}FHIR_BEARER_TOKEN and {PREFIX}SMART_* are two ways to authenticate: set one"
        )
    if smart and (settings.smart_client_id is None or settings.smart_private_key_file is None):
        raise ConfigError(
            f"SMART Backend Services needs both {PREFIX}SMART_CLIENT_ID and "
            f"{PREFIX}SMART_PRIVATE_KEY_FILE"
        )
    if (settings.authorize_url is None) != (settings.reader_token_url is None):
        raise ConfigError(
            f"readers sign in with both {PREFIX}AUTHORIZE_URL and {PREFIX}READER_TOKEN_URL "
            "(the authorization server's authorize and token endpoints): set both or neither"
        )
    if (
        settings.authorize_url is not None
        and settings.jwks_url is None
        and (settings.jwks_file is None)
    ):
        raise ConfigError(
            f"{PREFIX}AUTHORIZE_URL is set but no {PREFIX}JWKS_URL (or {PREFIX}JWKS_FILE): the "
            "readers' access tokens could not be verified"
        )
    if (smart or settings.fhir_bearer_token is not None) and settings.fhir_base_url is None:
        raise ConfigError(
            f"FHIR server credentials are set but {PREFIX}FHIR_BASE_URL is not: without it "
            "fhirnet uses its embedded store, which needs none"
        )


def _positive_int(variable: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{variable} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{variable} must be greater than 0, got {value}")
    return value


def _on_off(variable: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("on", "off"):
        raise ConfigError(f"{variable} must be on or off, got {raw!r}")
    return value == "on"


def _positive_seconds(variable: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{variable} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{variable} must be a positive number of seconds, got {raw!r}")
    return value


def _base_url(variable: str, raw: str) -> str:
    url = _non_empty(variable, raw)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise ConfigError(f"{variable} is not a URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{variable} must be an http(s) URL without query or fragment: {url!r}")
    return url.rstrip("/")


#: URL schemes ``FHIRNET_DATABASE_URL`` may have (libpq's two spellings).
DATABASE_URL_SCHEMES = ("postgresql", "postgres")


def _database_url(variable: str, raw: str) -> str:
    """A PostgreSQL URL with a host or a database; never echoed (it carries the password)."""
    url = _non_empty(variable, raw)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError(f"{variable} is not a URL") from None
    if parts.scheme not in DATABASE_URL_SCHEMES or not (parts.netloc or parts.path.strip("/")):
        raise ConfigError(
            f"{variable} must be a postgresql:// (or postgres://) URL, e.g. "
            "postgresql://fhirnet:PASSWORD@db.example.org:5432/fhirnet"
        )
    return url


def _port(variable: str, raw: str) -> int:
    value = _positive_int(variable, raw)
    if value > 65535:
        raise ConfigError(f"{variable} must be a TCP port between 1 and 65535, got {value}")
    return value


def _non_empty(variable: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{variable} must not be empty")
    return raw.strip()


def _path(variable: str, raw: str) -> Path:
    return Path(_non_empty(variable, raw))


def _log_level(variable: str, raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{variable} must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level


def auth_methods(settings: Settings) -> frozenset[str]:
    """How callers of fhirnet authenticate, checked: ``{"keys"}``, ``{"jwt"}``, both, or the
    empty set for open access (``FHIRNET_AUTH=none``, never implied); plus ``"issued"`` (the
    access tokens fhirnet issues itself) whenever bulk clients are registered
    (``FHIRNET_BULK_CLIENTS_FILE``), whatever ``FHIRNET_AUTH`` says: registering them is asking
    for that method, and they may be the only callers.

    :raises ConfigError: nothing is configured and access is not explicitly open; a method is
        named without its settings; settings are given for a method that is not used; bulk
        clients are registered while access is open.
    """
    keys = bool(settings.api_keys)
    jwks = settings.jwks_url is not None or settings.jwks_file is not None
    issued = frozenset({"issued"} if settings.bulk_clients_file is not None else set())
    if settings.jwks_url is not None and settings.jwks_file is not None:
        raise ConfigError(f"{PREFIX}JWKS_URL and {PREFIX}JWKS_FILE are exclusive: set one")
    if settings.auth == "none":
        if keys or jwks:
            raise ConfigError(
                f"{PREFIX}AUTH=none opens every endpoint, yet API keys or a JWKS are configured: "
                f"unset {PREFIX}AUTH to use them"
            )
        if issued:
            raise ConfigError(
                f"{PREFIX}AUTH=none opens every endpoint, yet bulk clients are registered "
                f"({PREFIX}BULK_CLIENTS_FILE): their tokens and pseudonymized access would mean "
                f"nothing; unset {PREFIX}AUTH"
            )
        return frozenset()
    if settings.auth is None:
        methods = frozenset({"keys"} if keys else set()) | frozenset({"jwt"} if jwks else set())
        if not methods and issued:
            return issued
        if not methods:
            raise ConfigError(
                f"no authentication is configured: set {PREFIX}API_KEYS, or {PREFIX}JWKS_URL "
                f"(or {PREFIX}JWKS_FILE) with {PREFIX}JWT_ISSUER and {PREFIX}JWT_AUDIENCE, or "
                f"{PREFIX}BULK_CLIENTS_FILE; "
                f"{PREFIX}AUTH=none serves every endpoint without authentication"
            )
    else:
        methods = frozenset(settings.auth.split(","))
    if "keys" in methods and not keys:
        raise ConfigError(f"{PREFIX}AUTH={settings.auth} needs {PREFIX}API_KEYS")
    if "keys" not in methods and keys:
        raise ConfigError(f"{PREFIX}API_KEYS is set but {PREFIX}AUTH={settings.auth} ignores it")
    jwt_settings = jwks or settings.jwt_issuer is not None or settings.jwt_audience is not None
    if "jwt" not in methods and jwt_settings:
        raise ConfigError(
            f"{PREFIX}JWKS_*/{PREFIX}JWT_* are set but {PREFIX}AUTH={settings.auth} ignores them"
        )
    if "jwt" in methods:
        missing = [
            name
            for name, value in (
                ("JWKS_URL or FHIRNET_JWKS_FILE", settings.jwks_url or settings.jwks_file),
                ("JWT_ISSUER", settings.jwt_issuer),
                ("JWT_AUDIENCE", settings.jwt_audience),
            )
            if value is None
        ]
        if missing:
            raise ConfigError(
                "JWT access tokens need " + ", ".join(PREFIX + name for name in missing)
            )
    return methods | issued


def _auth_mode(variable: str, raw: str) -> str:
    mode = ",".join(sorted({part.strip().lower() for part in raw.split(",")}, reverse=True))
    if mode not in AUTH_MODES:
        raise ConfigError(f"{variable} must be one of {', '.join(AUTH_MODES)}, got {raw!r}")
    return mode


def _api_keys(variable: str, raw: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``KEY[:SCOPE SCOPE ...]`` entries separated by commas; the keys are never echoed."""
    keys: dict[str, tuple[str, ...]] = {}
    for number, entry in enumerate(raw.split(","), start=1):
        key, _, scopes = entry.strip().partition(":")
        key = key.strip()
        if len(key) < MIN_API_KEY_LENGTH or any(c.isspace() for c in key):
            raise ConfigError(
                f"{variable}: key {number} must be at least {MIN_API_KEY_LENGTH} characters "
                "without spaces (e.g. python -c 'import secrets; print(secrets.token_urlsafe())')"
            )
        if key in keys:
            raise ConfigError(f"{variable}: key {number} repeats an earlier key")
        keys[key] = tuple(scopes.split())
    return tuple(keys.items())


def _jwt_algorithms(variable: str, raw: str) -> tuple[str, ...]:
    algorithms = tuple(part.strip() for part in raw.split(",") if part.strip())
    refused = [name for name in algorithms if name not in JWT_ALGORITHMS]
    if not algorithms or refused:
        raise ConfigError(
            f"{variable} must list some of {', '.join(JWT_ALGORITHMS)} "
            f"(never none nor HMAC), got {raw!r}"
        )
    return algorithms
