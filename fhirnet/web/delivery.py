"""The web side of durable delivery (:mod:`fhirnet.services.delivery`): one outbox and one
delivery thread per process, what a delivery sends, and the answers kept for the status endpoint
``GET /fhir/_submission/{id}`` (docs/delivery.md).

Only with an external FHIR server: the embedded store is fhirnet's own file, never down, and a
submission it could not take would be refused with 503 before anything was promised.

**Per process.** gunicorn builds the app in its master and forks the workers; neither a SQLite
connection nor a thread survives a fork. So the outbox is opened, and the thread started, in the
process that uses them first: gunicorn's ``post_worker_init`` hook (``fhirnet serve``), else the
first request (``gunicorn wsgi:app``, whose health probes come soon after a start). Every worker
process runs a thread; the patient locks keep them from delivering one entry twice. With
``FHIRNET_DATABASE_URL`` the outbox and the locks are in PostgreSQL, so the threads of every host
share the work the same way.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

from flask import Flask, current_app

from fhirnet.config import Settings
from fhirnet.errors import (
    OutboxUnavailableError,
)
from fhirnet.fhir.profiles import Catalog
from fhirnet.ports import Entry, Kind
from fhirnet.services import BundleOutcome, Context, submit, submit_bundle
from fhirnet.services.audits import AuditTrail
from fhirnet.services.delivery import ALREADY_HELD, Backoff, Delivery, Sent, retryable
from fhirnet.web.backend import Backend, open_outbox, outbox_location, patient_locks
from fhirnet.web.fhir_bundles import (
    RETURN_OUTCOME,
    Locator,
    bundle_response,
    error_entry,
    sent_forms,
    with_report_link,
)

#: Seconds the delivery thread sleeps when nothing is due (a request queuing an entry wakes it).
POLL_SECONDS = 1.0


class Deliveries:
    """This process's :class:`~fhirnet.services.delivery.Delivery`, built on first use.

    :param clock: the application clock: ``issued`` of the results, and the time of the
        outbox (acceptance, next attempts, the pause), which the status endpoint compares with
        it for ``Retry-After``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend,
        catalog: Catalog,
        clock: Any,
    ) -> None:
        self.settings = settings
        #: Where the outbox is (a file, or the database without its password), for messages.
        self.where = outbox_location(settings)
        self._backend = backend
        self._catalog = catalog
        self._clock = clock
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._delivery: Delivery | None = None

    def current(self) -> Delivery:
        """The delivery of this process, its outbox opened and its thread running; call in an
        application context (the thread gets one of its own)."""
        pid = os.getpid()
        if self._pid == pid and self._delivery is not None:
            return self._delivery
        with self._lock:
            if self._pid != pid or self._delivery is None:
                self._delivery = self._build()
                app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
                self._delivery.start(poll=POLL_SECONDS, context=app.app_context)
                self._pid = pid
        return self._delivery

    def stop(self, timeout: float = 10.0) -> None:
        """Stop this process's delivery thread (tests; a process exiting just ends it)."""
        with self._lock:
            delivery, self._delivery, self._pid = self._delivery, None, None
        if delivery is not None:
            delivery.stop(timeout)
            delivery.outbox.close()

    def _build(self) -> Delivery:
        settings = self.settings
        return Delivery(
            open_outbox(settings),  # FHIRNET_DATABASE_URL: PostgreSQL, else a SQLite file
            send=self._send,
            explain=error_entry,
            locks=self._backend.locks,
            try_locks=patient_locks(settings, timeout=0),
            backoff=Backoff(
                initial=settings.delivery_backoff,
                maximum=max(settings.delivery_backoff, settings.delivery_max_backoff),
            ),
            retention=settings.outbox_retention_days * 86400.0,
            clock=self._timestamp,
        )

    def _timestamp(self) -> float:
        """The application clock in seconds since the epoch: the delivery's clock."""
        now: datetime = self._clock()
        return now.timestamp()

    def _send(self, entry: Entry) -> Sent:
        """Run the pipeline on an entry (its patients' locks are held) and say how it went."""
        if entry.body is None:  # finished entries have no body, and are never sent
            raise ValueError(f"submission {entry.id} has no body")
        backend = self._backend
        now: datetime = self._clock()
        context = Context(
            store=backend.delivery_store(),
            catalog=self._catalog,
            now=now,
            client_id_types=backend.client_id_types(),
            audit=AuditTrail(requester=entry.requester),
            locks=ALREADY_HELD,
            identifier_locks=backend.locks,
            bases=frozenset(b for b in (backend.server_url, self._public_base()) if b),
        )
        if entry.kind is Kind.FORM:
            submission = submit(entry.body, context)
            outcome = BundleOutcome(type="batch", results=(submission,))
            locator = self.locator()
            (answer,) = bundle_response(
                outcome, sent=[entry.body], locator=locator, prefer=RETURN_OUTCOME
            )["entry"]
            answer = with_report_link(answer, locator.report_url(submission.report))
            return Sent(answer=answer, value=submission)
        outcome = submit_bundle(entry.body, context)
        for result in outcome.results:  # a batch entry the server could not take: all again
            if isinstance(result, Exception) and retryable(result):
                raise result
        response = bundle_response(
            outcome, sent=sent_forms(entry.body), locator=self.locator(), prefer=RETURN_OUTCOME
        )
        return Sent(answer={"resource": response, "response": {"status": "200 OK"}}, value=outcome)

    def _public_base(self) -> str | None:
        """fhirnet's own FHIR base, when configured (a delivery has no request to ask)."""
        public = self.settings.public_base_url
        return None if public is None else f"{public.rstrip('/')}/fhir"

    def locator(self) -> Locator:
        """Where a delivery writes: the external server (its form and report URLs there)."""
        return Locator(base=self._backend.server_url or "", store=self._backend.store())


def build_deliveries(
    settings: Settings, *, backend: Backend, catalog: Catalog, clock: Any, durable: bool | None
) -> Deliveries | None:
    """The deliveries of an app, or ``None``: the embedded store, ``FHIRNET_OUTBOX=off``.

    :param durable: ``None``: with an external FHIR server (``FHIRNET_FHIR_BASE_URL``) only;
        tests force it on or off for a store of their own.
    """
    if durable is None:
        durable = settings.outbox and backend.server_url is not None
    if not durable:
        return None
    return Deliveries(settings, backend=backend, catalog=catalog, clock=clock)


def ensure_delivering() -> None:
    """``before_request`` hook: the outbox and the delivery thread of this process are up. An
    outbox that cannot be opened fails the requests that need it (503), not every request."""
    deliveries = current_app.extensions["fhirnet"].deliveries
    if deliveries is not None:
        try:
            deliveries.current()
        except OutboxUnavailableError:
            current_app.logger.warning("the outbox cannot be opened; submissions answer 503")
