"""Settings of the service, read from ``FHIRNET_*`` environment variables in this module only.

Everything downstream receives a :class:`Settings` value; no other module reads ``os.environ``, so
one place knows every variable name and how it is checked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``FHIRNET_*`` variables, defaults for the unset ones.

    :param environ: the variables to read; ``None`` reads the process environment (the only
        place in fhirnet that does).
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
    )
    _check_auth(settings)
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
