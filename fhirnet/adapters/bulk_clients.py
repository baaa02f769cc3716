"""The bulk clients fhirnet issues tokens to, read from ``FHIRNET_BULK_CLIENTS_FILE`` (docs/auth.md
"Bulk clients: SMART Backend Services"), and their public keys: an inline JWK Set, or a JWKS URL
fetched when needed and cached (SMART: a server SHALL support both).

Read once at start, and checked whole: a file fhirnet cannot use stops the start with an error
that names the file and the client, rather than refusing that client's requests later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from fhirnet.access import JWKS_CACHE_SECONDS, JWKS_FETCH_TIMEOUT_SECONDS, parse_scope
from fhirnet.authorization import BulkClient, KeysUnavailableError, is_read_only
from fhirnet.config import ConfigError

FIELDS = frozenset({"client_id", "jwks", "jwks_url", "scope", "pseudonymized_study"})
#: Longest ``client_id`` accepted (it is echoed in logs and audit identities).
MAX_CLIENT_ID_LENGTH = 255


class InlineKeys:
    """A client's keys given in the registration itself."""

    def __init__(self, jwks: jwt.PyJWKSet) -> None:
        self._keys = {key.key_id: key for key in jwks.keys if key.key_id}

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key with this ``kid``, if registered."""
        return self._keys.get(kid)


#: Seconds after a fetch before an unknown ``kid`` makes fhirnet fetch a client's JWKS again:
#: a client may rotate its keys, but a stream of made-up kids cannot make fhirnet hammer its URL.
REFETCH_COOLDOWN_SECONDS = 30.0


class UrlKeys:
    """A client's keys at its JWKS URL: fetched on first use, kept for
    :data:`~fhirnet.access.JWKS_CACHE_SECONDS`, fetched again for an unknown ``kid`` (so a
    client can rotate its keys) at most once per ``cooldown`` seconds."""

    def __init__(self, url: str, *, cooldown: float = REFETCH_COOLDOWN_SECONDS) -> None:
        self._client = jwt.PyJWKClient(
            url,
            cache_keys=True,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=JWKS_FETCH_TIMEOUT_SECONDS,
            cooldown_duration=cooldown,
        )

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key with this ``kid`` at the URL.

        :raises KeysUnavailableError: the URL could not be fetched.
        """
        try:
            return self._client.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError as error:
            raise KeysUnavailableError(str(error)) from None
        except jwt.PyJWKClientError:
            return None  # fetched, but no signing key has this kid
        except jwt.PyJWTError:
            return None  # fetched, but not a usable JWK Set


def load_bulk_clients(path: Path) -> dict[str, BulkClient]:
    """The clients registered in ``path``, by ``client_id``.

    The file is a JSON list of ``{"client_id": str, "jwks": {JWK Set} | "jwks_url": str,
    "scope": "system/*.rs ...", "pseudonymized_study": "<studyId>" | null}``.

    :raises ConfigError: the file cannot be read or is not such a list; a client lacks a field,
        has an unknown one, repeats another's ``client_id``, gives both or neither of ``jwks`` and
        ``jwks_url``, gives a symmetric or private key, or a scope that is not a read-only SMART
        system scope. The message names the file and the client.
    """
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"FHIRNET_BULK_CLIENTS_FILE {path} is unusable: {error}") from None
    if not isinstance(entries, list):
        raise ConfigError(f"FHIRNET_BULK_CLIENTS_FILE {path} must hold a JSON list of clients")
    clients: dict[str, BulkClient] = {}
    for number, entry in enumerate(entries, start=1):
        client = _client(entry, f"FHIRNET_BULK_CLIENTS_FILE {path}: client {number}")
        if client.client_id in clients:
            raise ConfigError(
                f"FHIRNET_BULK_CLIENTS_FILE {path}: client {number} repeats the client_id "
                f"{client.client_id!r}"
            )
        clients[client.client_id] = client
    return clients


def _client(entry: object, where: str) -> BulkClient:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not a JSON object")
    client_id = entry.get("client_id")
    if (
        not isinstance(client_id, str)
        or not client_id.strip()
        or client_id != client_id.strip()
        or len(client_id) > MAX_CLIENT_ID_LENGTH
    ):
        raise ConfigError(f"{where} needs a client_id (a string without surrounding spaces)")
    where = f"{where} ({client_id!r})"
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        raise ConfigError(f"{where} has unknown fields {unknown} (known: {sorted(FIELDS)})")
    study = entry.get("pseudonymized_study")
    if study is not None and (not isinstance(study, str) or not study):
        raise ConfigError(f"{where}: pseudonymized_study must be a study id or null")
    keys, jwks_url = _keys(entry, where)
    return BulkClient(
        client_id=client_id,
        keys=keys,
        jwks_url=jwks_url,
        scopes=_scopes(entry.get("scope"), where),
        pseudonymized_study=study,
    )


def _keys(entry: Mapping[str, Any], where: str) -> tuple[InlineKeys | UrlKeys, str | None]:
    jwks, url = entry.get("jwks"), entry.get("jwks_url")
    if (jwks is None) == (url is None):
        raise ConfigError(f"{where} needs exactly one of jwks (a JWK Set) and jwks_url")
    if url is not None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{where}: jwks_url must be an http(s) URL")
        return UrlKeys(url), url
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ConfigError(f"{where}: jwks must be a JWK Set ({{'keys': [...]}})")
    for number, key in enumerate(jwks["keys"], start=1):
        if not isinstance(key, dict):
            raise ConfigError(f"{where}: jwks key {number} is not a JSON object")
        if key.get("kty") == "oct":
            raise ConfigError(f"{where}: jwks key {number} is symmetric (oct): refused")
        if "d" in key:
            raise ConfigError(
                f"{where}: jwks key {number} is a private key: register the public key only"
            )
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise ConfigError(f"{where}: jwks key {number} has no kid (assertions name it)")
    try:
        parsed = jwt.PyJWKSet.from_dict(jwks)
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise ConfigError(f"{where}: jwks is not a usable JWK Set: {error}") from None
    if len(parsed.keys) != len(jwks["keys"]):
        raise ConfigError(f"{where}: jwks holds keys fhirnet cannot use (RSA and EC only)")
    return InlineKeys(parsed), None


def _scopes(scope: object, where: str) -> tuple[str, ...]:
    if not isinstance(scope, str) or not scope.split():
        raise ConfigError(f"{where} needs a scope: space-separated SMART system scopes")
    for name in scope.split():
        grant = parse_scope(name)
        if grant is None:
            raise ConfigError(f"{where}: {name} is not a SMART system scope (system/<Type|*>.rs)")
        if not is_read_only(grant):
            raise ConfigError(f"{where}: {name} is not read-only; bulk clients may only read")
    return tuple(scope.split())
