"""The one error hierarchy of fhirnet; the web layer maps it to HTTP in a single place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Path = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class FieldError:
    """One problem with one input field; ``path`` locates it in the request as keys and indices."""

    path: Path
    message: str


class FhirnetError(Exception):
    """Root of every error fhirnet raises on purpose."""


class InvalidInputError(FhirnetError):
    """The input cannot be processed; carries every problem found, not only the first."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{json_path(e.path)}: {e.message}" for e in self.errors))


def json_path(path: Path) -> str:
    """The JSON path of error bodies, e.g. ``$.timepoints[2].targets[0].id``."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


class ProfileNotFoundError(FhirnetError):
    """A conformance resource (Questionnaire, ValueSet, ...) that fhirnet does not have."""

    def __init__(self, canonical: str) -> None:
        self.canonical = canonical
        super().__init__(f"no conformance resource {canonical}")


class FhirServerError(FhirnetError):
    """The external FHIR server did not do what was asked."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        outcome: object = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.outcome = outcome  # the server's OperationOutcome (a JSON object), when it sent one
        #: Seconds the server asked to wait (``Retry-After``), when it said.
        self.retry_after = retry_after
        super().__init__(message)


class FhirServerUnavailableError(FhirServerError):
    """Down, timing out, or answering 5xx/429: worth retrying later (answered 503)."""


class FhirServerRejectedError(FhirServerError):
    """The server refused the request (4xx) and said why in ``outcome`` (answered 502)."""


class OutboxUnavailableError(FhirnetError):
    """The outbox of durable delivery cannot be opened or written (a full disk, a path that is
    not a writable file): nothing can be accepted, so nothing is (503)."""


class PatientBusyError(FhirnetError):
    """Another submission about the same patient held the patient's lock for too long (503)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class AuthenticationError(FhirnetError):
    """No usable bearer token: missing, unknown, badly signed, expired, for another audience...

    Answered 401 with an RFC 6750 ``WWW-Authenticate: Bearer`` challenge. ``error`` is the
    challenge's error code, ``None`` when the request carried no credentials at all (RFC 6750
    §3.1: then the challenge names no error).
    """

    def __init__(self, description: str, *, error: str | None = "invalid_token") -> None:
        self.description = description
        self.error = error
        super().__init__(description)


class AuthorizationError(FhirnetError):
    """A valid token whose scopes do not grant what the request needs (403, RFC 6750
    ``insufficient_scope``); ``scope`` is the SMART scope that would."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"The access token lacks the scope {scope} this request needs.")
