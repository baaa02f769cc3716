"""What the use cases need from a FHIR server, as Protocols: the HTTP client and the embedded
store both implement :class:`FhirStore`, and tests can pass a fake (``style.md`` P10)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
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
