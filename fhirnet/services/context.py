"""What every use case of :mod:`fhirnet.services.submission` runs with: the store, the form
catalog, the patient locks, the moment of the request, what the server cannot update
conditionally, and who asks.

One frozen value rather than the same six keyword arguments on every use case and every helper
they call: the web layer builds one per request (the delivery thread one per attempt), a test
builds one and varies it with :func:`dataclasses.replace`, and a collaborator added later (a
second store, a metrics sink) is one field here instead of a parameter threaded through every
signature. No Flask, no HTTP: everything comes in as values (``style.md`` P10, P13).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from fhirnet.fhir.identifiers import DEFAULT_CLIENT_ID_TYPES
from fhirnet.fhir.profiles import Catalog
from fhirnet.ports import FhirStore, PatientLocks
from fhirnet.services.audits import AuditTrail

__all__ = ["Context"]


@dataclass(frozen=True, kw_only=True)
class Context:
    """The collaborators and the time of one request to the use cases.

    :ivar store: the FHIR server (or the embedded store) read from and written to.
    :ivar catalog: the conformance package holding the form.
    :ivar locks: the per-patient locks a submission writes under
        (:data:`fhirnet.services.delivery.ALREADY_HELD` when the caller holds them).
    :ivar identifier_locks: the locks on form identifiers a submission also holds, after its
        patients' ones (:attr:`form_locks`); ``None``: :attr:`locks`. A delivery, which holds
        the patients' locks already, passes the real locks here.
    :ivar now: the current time, timezone-aware: ``issued`` of the results, the AuditEvents'
        ``recorded``, and the validator's "today" (its UTC date, :attr:`today`).
    :ivar client_id_types: types the server cannot update conditionally by identifier
        (:func:`fhirnet.fhir.identifiers.client_id_types` of its CapabilityStatement); the
        default when checking a form, which never asks the server.
    :ivar audit: who asks; with it every use case writes its AuditEvents
        (:mod:`fhirnet.services.audits`), without it (unit tests, benchmarks) none.
    """

    store: FhirStore
    catalog: Catalog
    locks: PatientLocks
    now: dt.datetime
    client_id_types: Collection[str] = DEFAULT_CLIENT_ID_TYPES
    audit: AuditTrail | None = None
    identifier_locks: PatientLocks | None = None
    #: The absolute base URLs a reference in a submitted form may carry: the FHIR server's and
    #: fhirnet's own (:mod:`fhirnet.services.references`); empty: relative references only.
    bases: frozenset[str] = frozenset()

    @property
    def form_locks(self) -> PatientLocks:
        """The locks held on each submitted form's identifier, from the check that no other
        patient's form has it to the write (finding 3 of the security review)."""
        return self.locks if self.identifier_locks is None else self.identifier_locks

    @property
    def today(self) -> dt.date:
        """The UTC date of :attr:`now`: the "today" forms are validated against.

        :raises ValueError: ``now`` is naive.
        """
        if self.now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        return self.now.astimezone(dt.UTC).date()
