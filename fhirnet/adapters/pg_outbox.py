"""The outbox in PostgreSQL (``FHIRNET_DATABASE_URL``): the :class:`~fhirnet.ports.Outbox` of
:mod:`fhirnet.adapters.outbox`, with the same semantics, shared by several fhirnet hosts.

The tables are created by the versioned migrations of :mod:`fhirnet.adapters.pg_schema`. Every
method is one short transaction on a pooled connection, with a ``statement_timeout`` and a
``lock_timeout``; PostgreSQL's errors (connection lost, timeouts) become
:class:`~fhirnet.errors.OutboxUnavailableError`, as SQLite's do.

**Order per patient across hosts.** As in SQLite, an entry is due only when no earlier queued
entry shares one of its patients. Sequence numbers are drawn at ``INSERT`` but become visible at
``COMMIT``, so two hosts accepting forms of one patient at once could commit out of order; an
``add`` therefore takes a transaction-scoped advisory lock per patient before drawing its number:
per patient, numbering order is commit order.

**Claims.** :meth:`PostgresOutbox.due` *claims* the entries it hands out, so the delivery threads
of several hosts split the due entries instead of all trying the same ones. A claim is a
session-level advisory lock (``pg_try_advisory_lock``) on one connection of this outbox kept for
the purpose; entries another host has claimed are skipped (and so, being still queued, are the
later entries of their patients). A claim ends when the entry is finished or retried later, when
the next ``due`` of this outbox starts (the previous round is over), and — the point — when the
claiming session ends: a host killed mid-delivery, or whose connection is cut
(``pg_terminate_backend``), leaves nothing claimed, without waiting for a lease to expire. Why not
``SELECT … FOR UPDATE SKIP LOCKED`` in a transaction held for the delivery: the delivery writes
the entry (``finish``, ``retry_later``) from other connections and other methods of the port, which
would wait for that very row lock; and why not a lease column: a dead host's entries would wait
for the lease. A claim is an optimization, not the guarantee: that one entry is never delivered
twice at once is the patient locks' job (:mod:`fhirnet.adapters.pg_locks`), with the re-read of
the entry under them (:mod:`fhirnet.services.delivery`).
"""

from __future__ import annotations

import json
import select
import threading
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import psycopg
from psycopg.types.json import Jsonb

from fhirnet.adapters.pg_connections import Connection, connect, where
from fhirnet.adapters.pg_schema import migrate
from fhirnet.errors import OutboxUnavailableError
from fhirnet.ports import Entry, Json, Kind, State

__all__ = ["PostgresOutbox"]

_COLUMNS: Final = (
    "seq, id, kind, requester, body, state, accepted, attempts, next_attempt, last_error, "
    "answer, finished"
)
#: Prefixes of the advisory lock keys (hashed with the patient or the entry).
_ADD_LOCK: Final = "fhirnet.outbox.add:"
_CLAIM_LOCK: Final = "fhirnet.outbox.claim:"


class PostgresOutbox:
    """The :class:`~fhirnet.ports.Outbox` in the PostgreSQL database at ``database_url``, its
    schema migrated on first use.

    :param statement_timeout: seconds a statement may run, or wait for a lock, before failing.
    :param connect_timeout: seconds to wait for a connection.
    :param pool_size: idle connections kept for reuse.
    """

    def __init__(
        self,
        database_url: str,
        *,
        statement_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        pool_size: int = 4,
    ) -> None:
        self._url = database_url
        #: Where the outbox is, for messages: never the password.
        self.where = where(database_url)
        self._statement_timeout = statement_timeout
        self._connect_timeout = connect_timeout
        self._pool_size = pool_size
        self._idle: list[Connection] = []
        self._pool_lock = threading.Lock()
        self._claims_lock = threading.Lock()
        self._claims: Connection | None = None
        self._claimed: set[int] = set()
        with self._unavailable(), self._connection() as connection:
            migrate(connection)

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> Connection:
        return connect(
            self._url,
            application_name="fhirnet outbox",
            connect_timeout=self._connect_timeout,
            statement_timeout=self._statement_timeout,
        )

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection (a broken one is dropped, not put back)."""
        with self._pool_lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None and not _alive(connection):
            connection.close()  # the server ended it while idle (restart, terminated)
            connection = None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        except BaseException:
            connection.close()
            raise
        with self._pool_lock:
            if len(self._idle) < self._pool_size and not connection.closed:
                self._idle.append(connection)
                connection = None
        if connection is not None:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._unavailable(), self._connection() as connection, connection.transaction():
            yield connection

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        """PostgreSQL's errors as :class:`OutboxUnavailableError`."""
        try:
            yield
        except (psycopg.Error, OSError) as error:
            raise OutboxUnavailableError(
                f"the outbox {self.where} cannot be used: {type(error).__name__}: {error}"
            ) from error

    def close(self) -> None:
        """Close every connection (the claims end with theirs); the entries stay."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        with self._claims_lock:
            if self._claims is not None:
                self._claims.close()
                self._claims = None
            self._claimed.clear()

    # -- the port ------------------------------------------------------------------------------

    def add(
        self, *, kind: Kind, body: Json, patients: Collection[str], requester: str, now: float
    ) -> Entry:
        """Commit a new queued entry, due at once; returns it."""
        entry_id = uuid.uuid4().hex
        copy = json.loads(json.dumps(body, ensure_ascii=False, allow_nan=False))
        ordered = sorted(set(patients))
        with self._transaction() as connection:
            for patient in ordered:  # numbering order is commit order, per patient
                connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_ADD_LOCK + patient,)
                )
            row = connection.execute(
                "INSERT INTO outbox_entry (id, kind, requester, body, state, accepted, "
                "next_attempt) VALUES (%s, %s, %s, %s, 'queued', %s, %s) RETURNING seq",
                (entry_id, kind.value, requester, Jsonb(copy), now, now),
            ).fetchone()
            assert row is not None  # noqa: S101 - INSERT … RETURNING gives a row
            seq = int(row[0])
            if ordered:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO outbox_entry_patient (patient, seq) VALUES (%s, %s)",
                        [(patient, seq) for patient in ordered],
                    )
        return Entry.queued(
            seq=seq, id=entry_id, kind=kind, requester=requester, body=copy, now=now
        )

    def get(self, entry_id: str) -> Entry | None:
        """The entry with public id ``entry_id``, or ``None``."""
        with self._transaction() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM outbox_entry WHERE id = %s",  # noqa: S608 - constant
                (entry_id,),
            ).fetchone()
        return None if row is None else _entry(row)

    def patients(self, seq: int) -> tuple[str, ...]:
        """The patients a queued entry is about (none once it is finished)."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT patient FROM outbox_entry_patient WHERE seq = %s "
                'ORDER BY patient COLLATE "C"',  # byte order, as sorted() and SQLite
                (seq,),
            ).fetchall()
        return tuple(row[0] for row in rows)

    def blocked(self, seq: int) -> bool:
        """Whether an earlier queued entry shares a patient with entry ``seq``."""
        return bool(self.earlier(seq))

    def earlier(self, seq: int) -> list[Entry]:
        """The queued entries before entry ``seq`` that share a patient with it, in order."""
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM outbox_entry WHERE seq IN ("  # noqa: S608 - constant
                "  SELECT earlier.seq FROM outbox_entry_patient mine "
                "  JOIN outbox_entry_patient earlier "
                "  ON earlier.patient = mine.patient AND earlier.seq < mine.seq "
                "  WHERE mine.seq = %s) ORDER BY seq",
                (seq,),
            ).fetchall()
        return [_entry(row) for row in rows]

    def due(self, now: float, *, limit: int = 100) -> list[Entry]:
        """Queued entries whose next attempt has come and that no earlier queued entry of one
        of their patients holds back, in acceptance order; claimed for this outbox, skipping
        those another one has claimed (module docstring)."""
        with self._unavailable(), self._claims_lock:
            try:
                return self._claim_due(now, limit)
            except psycopg.OperationalError:
                if self._claims is None or not (self._claims.closed or self._claims.broken):
                    raise
                # the claims' session was cut (server restarted, connection terminated): its
                # claims are gone with it; a new session claims afresh, once
                self._claims.close()
                self._claims = None
                return self._claim_due(now, limit)

    def end_round(self) -> None:
        """End every claim of this outbox (a new round, or :meth:`due`, claims afresh)."""
        with self._unavailable(), self._claims_lock:
            if self._claims is not None and not (self._claims.closed or self._claims.broken):
                self._claims.execute("SELECT pg_advisory_unlock_all()")
            self._claimed.clear()

    def _claim_due(self, now: float, limit: int) -> list[Entry]:
        claims = self._claiming()
        claims.execute("SELECT pg_advisory_unlock_all()")  # the previous round is over
        self._claimed.clear()
        taken: list[Entry] = []
        after = 0
        while len(taken) < limit:
            rows = claims.execute(
                f"SELECT {_COLUMNS} FROM outbox_entry e "  # noqa: S608 - constant columns
                "WHERE e.state = 'queued' AND e.next_attempt <= %s AND e.seq > %s "
                "AND NOT EXISTS ("
                "  SELECT 1 FROM outbox_entry_patient mine JOIN outbox_entry_patient earlier "
                "  ON earlier.patient = mine.patient AND earlier.seq < mine.seq "
                "  WHERE mine.seq = e.seq) "
                "ORDER BY e.seq LIMIT %s",
                (now, after, limit),
            ).fetchall()
            for row in rows:
                entry = _entry(row)
                after = entry.seq
                if len(taken) < limit and self._claim(claims, entry.seq):
                    taken.append(entry)
            if len(rows) < limit:
                break
        return taken

    def _claiming(self) -> Connection:
        """The connection holding this outbox's claims (a new one when it was lost: its claims
        went with it)."""
        if self._claims is None or self._claims.closed or self._claims.broken:
            if self._claims is not None:
                self._claims.close()
            self._claimed.clear()
            self._claims = self._connect()
        return self._claims

    def _claim(self, claims: Connection, seq: int) -> bool:
        """Claim entry ``seq`` unless another session has; keep it only if still queued (it may
        have been finished between the search and the claim)."""
        row = claims.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (f"{_CLAIM_LOCK}{seq}",)
        ).fetchone()
        if row is None or not row[0]:
            return False
        self._claimed.add(seq)
        still = claims.execute(
            "SELECT 1 FROM outbox_entry WHERE seq = %s AND state = 'queued'", (seq,)
        ).fetchone()
        if still is None:
            self._release(seq)
            return False
        return True

    def _release(self, seq: int) -> None:
        """End this outbox's claim on entry ``seq``, if it has one (caller holds the lock)."""
        if seq not in self._claimed:
            return
        self._claimed.discard(seq)
        if self._claims is not None and not self._claims.closed:
            self._claims.execute(
                "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"{_CLAIM_LOCK}{seq}",)
            )

    def _released(self, seq: int) -> None:
        with self._unavailable(), self._claims_lock:
            self._release(seq)

    def next_due(self) -> float | None:
        """When the earliest queued entry is next due (blocked or not); ``None`` if none."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT min(next_attempt) FROM outbox_entry WHERE state = 'queued'"
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def retry_later(self, seq: int, *, at: float, error: str) -> None:
        """Count a failed attempt of a queued entry and schedule the next one."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE outbox_entry SET attempts = attempts + 1, next_attempt = %s, "
                "last_error = %s WHERE seq = %s AND state = 'queued'",
                (at, error, seq),
            )
        self._released(seq)

    def reschedule(self, *, before: float, at: float) -> None:
        """Bring every queued entry due after ``before`` forward to ``at`` (the server is back)."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE outbox_entry SET next_attempt = %s "
                "WHERE state = 'queued' AND next_attempt > %s",
                (at, before),
            )

    def finish(
        self, seq: int, *, state: State, answer: Json, now: float, attempted: bool = True
    ) -> None:
        """End a queued entry as delivered or failed with its answer; its body is dropped."""
        if state is State.QUEUED:
            raise ValueError("finish() ends an entry: delivered or failed")
        copy = json.loads(json.dumps(answer, ensure_ascii=False, allow_nan=False))
        with self._transaction() as connection:
            connection.execute(
                "UPDATE outbox_entry SET state = %s, answer = %s, finished = %s, body = NULL, "
                "attempts = attempts + %s WHERE seq = %s AND state = 'queued'",
                (state.value, Jsonb(copy), now, int(attempted), seq),
            )
            connection.execute("DELETE FROM outbox_entry_patient WHERE seq = %s", (seq,))
        self._released(seq)

    def purge(self, *, finished_before: float) -> int:
        """Delete the entries finished before ``finished_before``; returns how many."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM outbox_entry WHERE state != 'queued' AND finished < %s",
                (finished_before,),
            )
        return cursor.rowcount

    def counts(self) -> dict[State, int]:
        """How many entries are in each state."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT state, count(*) FROM outbox_entry GROUP BY state"
            ).fetchall()
        found = {State(state): int(count) for state, count in rows}
        return {state: found.get(state, 0) for state in State}

    def entries(self, seq_from: int = 0) -> Sequence[Entry]:
        """Every entry from ``seq_from`` on, in acceptance order (operators, tests)."""
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM outbox_entry WHERE seq >= %s ORDER BY seq",  # noqa: S608
                (seq_from,),
            ).fetchall()
        return [_entry(row) for row in rows]


def _alive(connection: Connection) -> bool:
    """Whether an idle connection may still be used: an idle session receives nothing, so
    anything to read on its socket is the server's goodbye (or its end of file)."""
    if connection.closed or connection.broken:
        return False
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _entry(row: Sequence[Any]) -> Entry:
    (seq, entry_id, kind, requester, body, state, accepted, attempts, nxt, error, answer, end) = row
    return Entry(
        seq=int(seq),
        id=entry_id,
        kind=Kind(kind),
        requester=requester,
        body=body,
        state=State(state),
        accepted=float(accepted),
        attempts=int(attempts),
        next_attempt=float(nxt),
        last_error=error,
        answer=answer,
        finished=None if end is None else float(end),
    )
