"""What the use cases need from the outside world, as Protocols (``style.md`` P10): a FHIR server
(:class:`FhirStore`: the HTTP client and the embedded store implement it), per-patient locks
(:class:`PatientLocks`) and the durable outbox of accepted submissions (:class:`Outbox`, with the
values it speaks: :class:`Entry`, :class:`Kind`, :class:`State`). The implementations live in
:mod:`fhirnet.adapters`; tests can pass fakes."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

Json = dict[str, Any]
SearchParams = Mapping[str, str | Sequence[str]]


class FhirStore(Protocol):
    """A FHIR R4 server seen through the few interactions fhirnet uses."""

    def read(self, resource_type: str, resource_id: str) -> Json | None:
        """The current version of a resource, or ``None`` when it does not exist (404/410)."""
        ...

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        """Every matching resource (``search.mode`` match and include), following paging links."""
        ...

    def transaction(self, bundle: Json) -> Json:
        """Process a ``transaction`` Bundle atomically; returns the ``transaction-response``.

        :raises fhirnet.errors.FhirServerRejectedError: refused (4xx); nothing was written.
        :raises fhirnet.errors.FhirServerUnavailableError: 5xx, timeout or connection failure.
        """
        ...


class PatientLocks(Protocol):
    """Mutual exclusion per patient, across threads and worker processes: the submissions about
    one patient read its history, assess and write one after the other."""

    def hold(self, patients: Collection[str]) -> AbstractContextManager[None]:
        """Hold the locks of all ``patients`` for the ``with`` block (taken in a fixed order, so
        two holders of overlapping sets cannot deadlock).

        :raises fhirnet.errors.PatientBusyError: a lock stayed taken longer than the timeout.
        """
        ...


class Kind(StrEnum):
    """What was submitted: one QuestionnaireResponse, or a transaction/batch Bundle of them."""

    FORM = "form"
    BUNDLE = "bundle"


class State(StrEnum):
    """Where an accepted submission is: waiting for the FHIR server, or finished either way."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One accepted submission and what became of it.

    :ivar seq: the acceptance order (per outbox).
    :ivar id: the public, unguessable id of its status resource.
    :ivar body: the submitted resource; ``None`` once finished.
    :ivar answer: once finished, the answer to the original request (an ``entry`` of a
        ``batch-response`` Bundle: ``response`` with status, location, outcome; maybe
        ``resource``).
    """

    seq: int
    id: str
    kind: Kind
    requester: str
    body: Json | None
    state: State
    accepted: float
    attempts: int
    next_attempt: float
    last_error: str | None
    answer: Json | None
    finished: float | None

    @classmethod
    def queued(
        cls, *, seq: int, id: str, kind: Kind, requester: str, body: Json, now: float
    ) -> Entry:
        """A submission just accepted: queued at ``now``, due at once, never attempted."""
        return cls(
            seq=seq,
            id=id,
            kind=kind,
            requester=requester,
            body=body,
            state=State.QUEUED,
            accepted=now,
            attempts=0,
            next_attempt=now,
            last_error=None,
            answer=None,
            finished=None,
        )


class Outbox(Protocol):
    """Accepted submissions kept until the FHIR server has them, handed out in acceptance order
    and never ahead of an earlier queued entry about the same patient. Every method may raise
    :class:`fhirnet.errors.OutboxUnavailableError`."""

    def add(
        self, *, kind: Kind, body: Json, patients: Collection[str], requester: str, now: float
    ) -> Entry:
        """Commit a new queued entry, due at once; returns it."""
        ...

    def get(self, entry_id: str) -> Entry | None:
        """The entry with public id ``entry_id``, or ``None``."""
        ...

    def patients(self, seq: int) -> tuple[str, ...]:
        """The patients a queued entry is about (none once it is finished)."""
        ...

    def blocked(self, seq: int) -> bool:
        """Whether an earlier queued entry shares a patient with entry ``seq``."""
        ...

    def earlier(self, seq: int) -> list[Entry]:
        """The queued entries before entry ``seq`` that share a patient with it, in order."""
        ...

    def due(self, now: float, *, limit: int = 100) -> list[Entry]:
        """Queued entries whose next attempt has come and that no earlier queued entry of one
        of their patients blocks, in acceptance order."""
        ...

    def end_round(self) -> None:
        """End the claims of this outbox's delivery round, so that other hosts may take what it
        did not reach (an outbox that does not claim what :meth:`due` hands out: nothing)."""
        ...

    def next_due(self) -> float | None:
        """When the earliest queued entry is next due (blocked or not); ``None`` if none."""
        ...

    def retry_later(self, seq: int, *, at: float, error: str) -> None:
        """Count a failed attempt of a queued entry and schedule the next one."""
        ...

    def reschedule(self, *, before: float, at: float) -> None:
        """Bring every queued entry due after ``before`` forward to ``at`` (the server is back)."""
        ...

    def finish(
        self, seq: int, *, state: State, answer: Json, now: float, attempted: bool = True
    ) -> None:
        """End a queued entry as delivered or failed with its answer; its body is dropped."""
        ...

    def purge(self, *, finished_before: float) -> int:
        """Delete the entries finished before ``finished_before``; returns how many."""
        ...

    def counts(self) -> dict[State, int]:
        """How many entries are in each state."""
        ...

    def entries(self, seq_from: int = 0) -> Sequence[Entry]:
        """Every entry from ``seq_from`` on, in acceptance order (operators, tests)."""
        ...

    def close(self) -> None:
        """Release the connections; the entries stay."""
        ...
