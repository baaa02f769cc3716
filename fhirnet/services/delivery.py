"""Durable delivery: every accepted submission reaches the FHIR server once, in order per patient,
however long the server is down and however often fhirnet is killed.

A submission is first committed to the :class:`~fhirnet.ports.Outbox` (:meth:`Delivery.accept`),
then delivered: at once, in the request, when the server is believed up and no earlier submission
about the same patient is still queued (the EHR gets its ``201`` as if there were no outbox); else
by a background thread (:meth:`Delivery.run`) that takes the due entries in acceptance order.

**One deliverer per patient.** A delivery holds the locks of the entry's patients
(:class:`~fhirnet.ports.PatientLocks`: ``flock`` across threads and processes of one host,
released by the kernel when a process dies; PostgreSQL advisory locks across hosts, released
when the holder's transaction ends), then re-reads the entry: delivered meanwhile by someone
else, or held back by an earlier entry of one of its patients, it is left alone. The pipeline
runs under those locks with :data:`ALREADY_HELD`.

**Outcomes of one attempt.**

* sent: the entry is ``delivered`` with the answer (links, the pipeline's issues);
* the server is unavailable (down, timing out, 5xx/429, an answer that is not the FHIR asked
  for) or the patient is busy: the entry stays ``queued``; its next attempt is after an
  exponential backoff with jitter (:class:`Backoff`), or after the server's ``Retry-After`` when
  that is longer. An unavailable server also pauses this process's deliveries and in-request
  attempts, for a backoff that grows with the failures in a row (or the ``Retry-After``), so
  that an outage costs one probe per backoff, not one per submission; the first delivery that
  goes through ends the pause and brings every queued entry forward;
* anything else (the server refused the transaction with a 4xx, the form breaks a rule of the
  assessment, a bug): ``failed`` with the reason, never retried.

**Exactly once in effect**: an attempt that the server committed but fhirnet did not record (a
crash, a lost answer) is made again; the pipeline's writes are conditional on business
identifiers, so the repeat writes nothing new (``fhirnet.services.submission``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Final, TypeGuard

from fhirnet.backoff import equal_jitter
from fhirnet.errors import (
    FhirServerError,
    FhirServerRejectedError,
    OutboxUnavailableError,
    PatientBusyError,
)
from fhirnet.ports import Entry, Json, Kind, Outbox, PatientLocks, State

__all__ = ["ALREADY_HELD", "Attempt", "Backoff", "Delivery", "Sent", "retryable"]

_log = logging.getLogger(__name__)
#: The errors after which an entry is attempted again (:func:`retryable`).
RetryableError = FhirServerError | PatientBusyError
#: Entries one ``due`` hands out (and, in PostgreSQL, claims): a few at a time, so that the
#: delivery threads of several hosts share a backlog instead of the first one claiming it all.
ROUND_SIZE: Final = 10
#: How often :meth:`Delivery.run` deletes the finished entries older than the retention.
PURGE_INTERVAL_SECONDS: Final = 3600.0


class _AlreadyHeld:
    """The :class:`~fhirnet.ports.PatientLocks` of a pipeline run by a delivery, which holds the
    patients' locks already (a second ``flock`` of the same file would wait for the first)."""

    @contextmanager
    def hold(self, patients: Collection[str]) -> Iterator[None]:
        yield


ALREADY_HELD: Final[PatientLocks] = _AlreadyHeld()


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Delays between attempts: ``initial`` doubled after each failure up to ``maximum``, of
    which a random amount of up to half is taken off ("equal jitter"), so that entries failing
    together do not come back together."""

    initial: float = 1.0
    maximum: float = 300.0

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1, 2, ...):
        :func:`fhirnet.backoff.equal_jitter`."""
        return equal_jitter(failures, initial=self.initial, maximum=self.maximum, draw=rng.random())


@dataclass(frozen=True, kw_only=True)
class Sent:
    """What sending an entry gave: the ``answer`` kept in the outbox for the status endpoint,
    and the pipeline's own result (``value``) for the request that is waiting for it."""

    answer: Json
    value: object


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """An entry as it is after an attempt (or none), with the result of the attempt when one was
    made here: ``value`` when delivered, ``error`` when it failed or is to be retried."""

    entry: Entry
    value: object = None
    error: Exception | None = None


#: Sends an entry through the pipeline (run under its patients' locks).
Send = Callable[[Entry], Sent]
#: The answer kept for an entry that failed with this error.
Explain = Callable[[Exception], Json]


class Delivery:
    """Delivers the entries of ``outbox`` with ``send`` (module docstring).

    :param locks: the patient locks a request waits for (with their timeout).
    :param try_locks: the same locks without waiting, for the background thread: a patient
        whose submission is being delivered by a request is skipped, not waited for.
    :param explain: the answer of a failed entry.
    :param retention: seconds a finished entry's status is kept (purged by :meth:`run`).
    :param clock: seconds since the epoch.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        send: Send,
        explain: Explain,
        locks: PatientLocks,
        try_locks: PatientLocks,
        backoff: Backoff | None = None,
        retention: float = 30 * 86400.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.outbox = outbox
        self._send = send
        self._explain = explain
        self._locks = locks
        self._try_locks = try_locks
        self._backoff = backoff or Backoff()
        self._retention = retention
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        #: Attempts in a row that found the server unavailable, and until when to hold back.
        self._outage = 0
        self._paused_until = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- requests --------------------------------------------------------------------------

    def accept(
        self,
        *,
        kind: Kind,
        body: Json,
        patients: Collection[str],
        requester: str,
        attempt_now: bool = True,
    ) -> Attempt:
        """Commit a submission to the outbox, then deliver it at once if it may go now (the
        server is not known to be down, no earlier submission of its patients is queued, and
        ``attempt_now``); else it is left to the background thread."""
        entry = self.outbox.add(
            kind=kind, body=body, patients=patients, requester=requester, now=self._clock()
        )
        if attempt_now and not self.paused():
            attempt = self._attempt(entry, self._locks)
        else:
            attempt = Attempt(entry=entry)
        if attempt.entry.state is State.QUEUED:
            self._wake.set()
        return attempt

    def paused(self) -> bool:
        """Whether an unavailable server made this process hold its deliveries back."""
        return self._clock() < self._paused_until

    def next_attempt(self, entry: Entry) -> float:
        """When a queued entry will be attempted at the earliest: its own schedule, or the end
        of this process's pause when that is later."""
        return max(entry.next_attempt, self._paused_until)

    # -- the background thread -------------------------------------------------------------

    def deliver_due(self) -> int:
        """Attempt every entry that is due now, in acceptance order, until the server turns out
        to be unavailable; returns the number of attempts made.

        The round ends with this call: an outbox that *claims* what ``due`` hands out, so
        that several hosts split the work (PostgreSQL), ends the claims of a round when its
        next ``due`` starts, and :meth:`~fhirnet.ports.Outbox.end_round` before it returns;
        it claims :data:`ROUND_SIZE` at a time, so that one host does not take them all. Else
        the entries it did not reach — the server was unavailable to this host, or it is
        stopping — would wait for the end of its pause (up to the maximum backoff) while
        other hosts could deliver them."""
        attempted = 0
        claimed = False
        try:
            while not self.paused():
                due = self.outbox.due(self._clock(), limit=ROUND_SIZE)
                claimed = claimed or bool(due)
                progressed = False
                for entry in due:
                    if self.paused() or self._stop.is_set():
                        return attempted
                    attempt = self._attempt(entry, self._try_locks)
                    if attempt.value is not None or attempt.error is not None:
                        attempted += 1
                        progressed = progressed or attempt.entry.state is not State.QUEUED
                if not progressed:  # nothing finished: what is left is busy or waiting
                    break
            return attempted
        finally:
            if claimed:
                self._end_round()

    def _end_round(self) -> None:
        """Let go of what this round claimed. A failure here changes nothing: the claims end
        at the next round anyway, or ended with their connection."""
        try:
            self.outbox.end_round()
        except OutboxUnavailableError:
            _log.warning("the outbox could not end a delivery round; its claims end later")

    def run(self, *, poll: float = 1.0) -> None:
        """Deliver until :meth:`stop`: what is due, then wait ``poll`` seconds or until a request
        queues an entry."""
        purged_at = -PURGE_INTERVAL_SECONDS
        while not self._stop.is_set():
            try:
                attempted = self.deliver_due()
                if self._clock() - purged_at >= PURGE_INTERVAL_SECONDS:
                    purged_at = self._clock()
                    self.outbox.purge(finished_before=purged_at - self._retention)
            except Exception:  # the outbox itself failed (disk full, locked): try again later
                _log.exception("delivery round failed")
                attempted = 0
            if not attempted:
                self._wake.wait(poll)
                self._wake.clear()

    def start(
        self,
        *,
        poll: float = 1.0,
        context: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        """Run :meth:`run` in a daemon thread of this process, unless one runs already.

        :param context: entered by the thread around :meth:`run` (the web layer's application
            context, which ``send`` and ``explain`` may need).
        """
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def run() -> None:
            with context():
                self.run(poll=poll)

        self._thread = threading.Thread(target=run, name="fhirnet-delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after the attempt it is making."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- one attempt -----------------------------------------------------------------------

    def _attempt(self, entry: Entry, locks: PatientLocks) -> Attempt:
        """Deliver ``entry`` under its patients' locks, after the earlier queued entries of the
        same patients that are due (and about no other patient): concurrent submissions about
        one patient each wait for the lock, and whichever gets it first delivers in order."""
        patients = self.outbox.patients(entry.seq)
        try:
            with locks.hold(patients):
                for earlier in self.outbox.earlier(entry.seq):
                    held = set(self.outbox.patients(earlier.seq)) <= set(patients)
                    if not held or earlier.next_attempt > self._clock() or self.paused():
                        break
                    if self._deliver(earlier).entry.state is State.QUEUED:
                        break
                current = self.outbox.get(entry.id) or entry
                if current.state is not State.QUEUED or self.outbox.blocked(current.seq):
                    return Attempt(entry=current)
                return self._deliver(current)
        except PatientBusyError:
            return Attempt(entry=self.outbox.get(entry.id) or entry)

    def _deliver(self, entry: Entry) -> Attempt:
        try:
            sent = self._send(entry)
        except Exception as error:
            if retryable(error):
                return self._retry(entry, error)
            return self._fail(entry, error)
        now = self._clock()
        self.outbox.finish(entry.seq, state=State.DELIVERED, answer=sent.answer, now=now)
        if self._outage:  # the server is back: everything waiting may go now
            self._outage = 0
            self._paused_until = 0.0
            self.outbox.reschedule(before=now, at=now)
        _log.info("submission %s delivered after %d attempt(s)", entry.id, entry.attempts + 1)
        return Attempt(entry=self._current(entry), value=sent.value)

    def _retry(self, entry: Entry, error: RetryableError) -> Attempt:
        failures = entry.attempts + 1
        delay = self._backoff.delay(failures, self._rng)
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        now = self._clock()
        self.outbox.retry_later(entry.seq, at=now + delay, error=_describe(error))
        if not isinstance(error, PatientBusyError):  # the server's trouble, not the entry's
            self._outage += 1
            pause = self._backoff.delay(self._outage, self._rng)
            pause = max(pause, error.retry_after or 0.0)
            self._paused_until = max(self._paused_until, now + pause)
        _log.warning(
            "submission %s not delivered (%s, attempt %d); next attempt in %.1f s",
            entry.id,
            type(error).__name__,
            failures,
            delay,
        )
        return Attempt(entry=self._current(entry), error=error)

    def _fail(self, entry: Entry, error: Exception) -> Attempt:
        answer = self._explain(error)
        self.outbox.finish(entry.seq, state=State.FAILED, answer=answer, now=self._clock())
        _log.warning("submission %s failed for good (%s)", entry.id, type(error).__name__)
        return Attempt(entry=self._current(entry), error=error)

    def _current(self, entry: Entry) -> Entry:
        return self.outbox.get(entry.id) or entry


def retryable(error: Exception) -> TypeGuard[RetryableError]:
    """Whether ``error`` means "the server (or the patient's lock) cannot take it now": anything
    the FHIR server did but refuse (4xx), and a busy patient. Everything else is final."""
    if isinstance(error, PatientBusyError):
        return True
    return isinstance(error, FhirServerError) and not isinstance(error, FhirServerRejectedError)


def _describe(error: Exception) -> str:
    """What is kept (and shown to the submitter) of a retryable error: its class and status
    only; messages of the HTTP client name URL paths, never patient data, but stay out all the
    same."""
    status = getattr(error, "status", None)
    return type(error).__name__ + (f" (HTTP {status})" if status else "")
