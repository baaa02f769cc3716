"""The per-study pseudonymization regimes of ``FHIRNET_STUDY_SECRETS_FILE``, read into
:class:`~fhirnet.fhir.pseudonymize.Regime` values.

The file is ``{"<studyId>": {"secret": "<at least 32 characters>", "dates": "shift" |
"study-day"}}``. It stays on the site (``docs/trials.md`` "Pseudonymization"); every error
names the file and the study, never the secret, because error messages end up in logs and
HTTP answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from fhirnet.config import ConfigError
from fhirnet.fhir.pseudonymize import MIN_SECRET_BYTES, DateRegime, Regime

__all__ = ["MIN_SECRET_CHARACTERS", "load_study_secrets"]

#: Shortest secret accepted, in characters (the UTF-8 bytes are at least as many).
MIN_SECRET_CHARACTERS: Final = MIN_SECRET_BYTES


def load_study_secrets(path: Path | None) -> dict[str, Regime]:
    """The regime of each study the file names; ``{}`` without a file (every study identified).

    :raises ConfigError: the file cannot be read or is not JSON of the documented shape, a
        secret is missing or shorter than :data:`MIN_SECRET_CHARACTERS`, or ``dates`` is not
        ``shift`` / ``study-day``. The message names the file and the study.
    """
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"FHIRNET_STUDY_SECRETS_FILE {path} cannot be read ({type(error).__name__})"
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        # the position only: the decoder's message may quote the text around it, the secret
        raise ConfigError(
            f"FHIRNET_STUDY_SECRETS_FILE {path} is not JSON "
            f"(line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"FHIRNET_STUDY_SECRETS_FILE {path} must hold an object of studies "
            '({"<studyId>": {"secret": ..., "dates": ...}})'
        )
    return {str(study): _regime(path, str(study), entry) for study, entry in document.items()}


def _regime(path: Path, study: str, entry: object) -> Regime:
    where = f"FHIRNET_STUDY_SECRETS_FILE {path}, study {study!r}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be an object with 'secret' and 'dates'")
    secret = entry.get("secret")
    if not isinstance(secret, str) or not secret:
        raise ConfigError(f"{where}: 'secret' is missing (a string of at least 32 characters)")
    if len(secret) < MIN_SECRET_CHARACTERS:
        raise ConfigError(
            f"{where}: 'secret' is shorter than {MIN_SECRET_CHARACTERS} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    dates = entry.get("dates")
    try:
        regime = DateRegime(dates) if isinstance(dates, str) else None
    except ValueError:
        regime = None
    if regime is None:
        allowed = " or ".join(repr(d.value) for d in DateRegime)
        raise ConfigError(f"{where}: 'dates' must be {allowed}")  # the value is not echoed
    return Regime(study_id=study, secret=secret.encode("utf-8"), dates=regime)
