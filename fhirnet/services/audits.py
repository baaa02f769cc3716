"""The audit trail of the use cases: who asked, and the AuditEvents a submission writes with its
results or a failed request writes on its own (:mod:`fhirnet.fhir.audit` builds them).

**Policy** (docs: the module docstring of :mod:`fhirnet.services.submission`):

* a submission's AuditEvent goes in the **same transaction** as its results: no results without
  their audit record, and no record of results that were not written. An identical resubmission
  writes a transaction holding its AuditEvent only: the audit is a log, the one resource that
  grows on resubmission;
* a request that fails (refused 422/400, the FHIR server refusing 502 or away 503, the patient
  busy) gets an AuditEvent with the failure outcome, written on its own, **best effort**: a
  failure to write it is logged (without patient data) and the request's own error is answered,
  never a 500. After a failed transaction nobody may know whether the server committed, so a
  success and a failure event may both exist for one request;
* a read (``$extract``, reads and searches of the embedded store) writes its AuditEvent on its
  own *before* the answer goes out; if it cannot be written, the read fails: no disclosure of
  patient data without its record.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from fhirnet.errors import FhirnetError, InvalidInputError
from fhirnet.fhir.audit import (
    Action,
    Entity,
    Interaction,
    Outcome,
    audit_entry,
    audit_event,
    audit_transaction,
)
from fhirnet.fhir.outcome import OutcomeError
from fhirnet.ports import FhirStore, Json

__all__ = ["AuditTrail", "failure_outcome"]

_log = logging.getLogger(__name__)


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass(frozen=True, kw_only=True)
class AuditTrail:
    """Who is asking, and where each AuditEvent's fullUrl comes from.

    :ivar requester: the authenticated client's identity (:data:`fhirnet.fhir.audit.ANONYMOUS`
        with open access).
    :ivar new_full_url: a fresh ``urn:uuid:`` per AuditEvent entry.
    """

    requester: str
    new_full_url: Callable[[], str] = field(default=_urn)

    def event(
        self,
        *,
        interaction: Interaction,
        action: Action,
        now: dt.datetime,
        entities: Iterable[Entity],
        error: Exception | None = None,
    ) -> Json:
        """The AuditEvent of one request; a failure when ``error`` is given."""
        outcome, description = (Outcome.SUCCESS, None) if error is None else failure_outcome(error)
        return audit_event(
            interaction=interaction,
            action=action,
            recorded=now,
            requester=self.requester,
            entities=entities,
            outcome=outcome,
            outcome_description=description,
        )

    def entry(self, event: Json) -> Json:
        """A ``POST AuditEvent`` entry for a transaction that writes other things too."""
        return audit_entry(event, full_url=self.new_full_url())

    def write(self, store: FhirStore, events: Sequence[Json]) -> None:
        """Write ``events`` in a transaction of their own.

        :raises fhirnet.errors.FhirServerError: the store refused or is unavailable.
        """
        store.transaction(audit_transaction((event, self.new_full_url()) for event in events))

    def write_failure(self, store: FhirStore, events: Sequence[Json]) -> None:
        """Write failure ``events``, best effort: a failure to do so is logged, not raised (the
        request's own error is what the client must see)."""
        try:
            self.write(store, events)
        except Exception as error:  # best effort: the caller re-raises its own error
            _log.warning(
                "the AuditEvent of a failed request could not be written: %s", type(error).__name__
            )


def failure_outcome(error: Exception) -> tuple[Outcome, str]:
    """The outcome code and description of a failed request: the error's kind, never its
    message (which may quote the request's content). Refused (the request's fault): minor;
    the FHIR server or the patient's lock failing: serious; anything else (a bug): major."""
    name = type(error).__name__
    if isinstance(error, OutcomeError | InvalidInputError):
        return Outcome.MINOR_FAILURE, f"refused: {name}"
    if isinstance(error, FhirnetError):
        return Outcome.SERIOUS_FAILURE, f"failed: {name}"
    return Outcome.MAJOR_FAILURE, f"failed: {name}"
