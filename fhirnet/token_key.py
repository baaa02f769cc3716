"""The secret key that signs and verifies the access tokens fhirnet issues to its bulk clients
(docs/auth.md "Bulk clients: SMART Backend Services").

fhirnet both issues and verifies these tokens, so a symmetric key is enough: HS256 with 256
random bits, never published, never used for any other token. It lives in a file
(``FHIRNET_TOKEN_KEY_FILE``, default ``data_dir/token-key``) so that every worker process, and
every host that shares the file, accepts the tokens any of them issued. The first process to
need it creates it; processes starting at the same time must agree on one key, so the key is
written to a private temporary file first and then linked into place: the link is atomic and
fails when another process won, which then reads the winner's complete file.

**Several hosts** (``FHIRNET_DATABASE_URL``) are refused at start unless
``FHIRNET_TOKEN_KEY_FILE`` names a key that exists already, the same on every host. A key
created on first use in each host's own data directory would differ from host to host: a token
issued by one host would be refused (401) by the others, so a client behind a round-robin proxy
would fail on some requests and not others — a failure seen only under load, far from its cause.
A warning in a log is easily missed; refusing costs the operator one setting and one command.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from fhirnet.config import PREFIX, ConfigError, Settings

#: Bytes of key: 256 bits, the size of HS256's hash (RFC 7518 §3.2).
KEY_BYTES = 32
KEY_FILE_NAME = "token-key"


#: How to make a key, for the messages.
MAKE_KEY = (
    "python -c 'import secrets; print(secrets.token_hex(32))' > token-key; chmod 600 token-key"
)


def token_key_path(settings: Settings) -> Path:
    """Where the key is: ``FHIRNET_TOKEN_KEY_FILE``, else ``data_dir/token-key``.

    :raises ConfigError: several hosts (``FHIRNET_DATABASE_URL``) without a shared key:
        ``FHIRNET_TOKEN_KEY_FILE`` unset, or naming a file that does not exist (it is not
        created then: each host would create its own).
    """
    if settings.database_url is None:
        return settings.token_key_file or settings.data_dir / KEY_FILE_NAME
    if settings.token_key_file is None:
        raise ConfigError(
            f"{PREFIX}DATABASE_URL is set (several hosts) and bulk clients are registered, but "
            f"{PREFIX}TOKEN_KEY_FILE is not: each host would sign the tokens with a key of its "
            "own and refuse those the other hosts issued. Create one key "
            f"({MAKE_KEY}) and give every host that file in {PREFIX}TOKEN_KEY_FILE"
        )
    if not settings.token_key_file.exists():
        raise ConfigError(
            f"{PREFIX}TOKEN_KEY_FILE {settings.token_key_file} does not exist: with "
            f"{PREFIX}DATABASE_URL (several hosts) fhirnet does not create it, since each host "
            f"would create a different one. Create it once ({MAKE_KEY}) and give every host "
            "the same file"
        )
    return settings.token_key_file


def load_token_key(path: Path) -> bytes:
    """The key in ``path``, created (mode 0600) when the file does not exist yet.

    :raises ConfigError: the file cannot be read or created, or holds no usable key (names the
        file).
    """
    try:
        if not path.exists():
            _create(path)
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"the token key file {path} is unusable: {error}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise ConfigError(
            f"the token key file {path} must hold at least {KEY_BYTES} bytes as hex "
            "(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(KEY_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
