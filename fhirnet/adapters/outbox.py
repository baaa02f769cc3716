"""The outbox: accepted submissions kept in a SQLite file until the FHIR server has them.

An EHR that was told ``202 Accepted`` must never lose its form, whatever happens to fhirnet or to
the FHIR server afterwards, so a submission is committed here (``synchronous=FULL``, WAL) *before*
it is answered, and stays ``queued`` until a delivery ends it as ``delivered`` or ``failed``
(:mod:`fhirnet.services.delivery`). A ``kill -9`` at any moment leaves every entry either queued
(delivered again later: harmless, the pipeline's writes are idempotent) or finished.

**Order per patient.** Each queued entry lists the patients it is about (``entry_patient``); an
entry is due only when no earlier queued entry shares one of its patients, so a follow-up is never
assessed before its baseline is delivered. Rows of ``entry_patient`` exist for queued entries
only: finishing an entry deletes them.

**What is kept.** The submitted body is deleted when the entry finishes: a delivered form is on
the FHIR server, a failed one is for the EHR to correct and send again. What stays is the status
the EHR polls: the state, the attempts and the final answer (links and OperationOutcome), until
:meth:`SqliteOutbox.purge` deletes it after the retention (``FHIRNET_OUTBOX_RETENTION_DAYS``).

Several threads and gunicorn worker processes share the file: every write runs in ``BEGIN
IMMEDIATE`` (:class:`~fhirnet.adapters.store.sqlite.Database`); that two of them never deliver the
same
entry at once is the patient locks' job, not the outbox's.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from fhirnet.adapters.store.sqlite import Database, private_directory
from fhirnet.errors import OutboxUnavailableError
from fhirnet.ports import Entry, Json, Kind, State

__all__ = ["OUTBOX_FILE", "SqliteOutbox"]

#: File name of the outbox inside the data directory (``FHIRNET_OUTBOX_PATH`` overrides).
OUTBOX_FILE: Final = "outbox.sqlite3"

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """
        CREATE TABLE entry (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- acceptance order
            id TEXT NOT NULL UNIQUE,                -- public: the status URL's id
            kind TEXT NOT NULL,
            requester TEXT NOT NULL,
            body TEXT,                              -- NULL once finished
            state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'failed')),
            accepted REAL NOT NULL,                 -- seconds since the epoch
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL,
            last_error TEXT,
            answer TEXT,                            -- the final answer, JSON
            finished REAL
        )
        """,
        "CREATE INDEX entry_due ON entry (state, next_attempt)",
        """
        CREATE TABLE entry_patient (
            patient TEXT NOT NULL,
            seq INTEGER NOT NULL REFERENCES entry (seq),
            PRIMARY KEY (patient, seq)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX entry_patient_by_seq ON entry_patient (seq)",
    ),
)

_COLUMNS: Final = (
    "seq, id, kind, requester, body, state, accepted, attempts, next_attempt, last_error, "
    "answer, finished"
)


class SqliteOutbox:
    """The :class:`~fhirnet.ports.Outbox` in the SQLite file at ``path``, created with its schema
    on first use.

    :param busy_timeout: seconds a write waits for another writer before failing
        (``sqlite3.OperationalError``).
    """

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = path
        with _unavailable(path):
            if not path.parent.exists():  # a directory we create is private; others are
                private_directory(path.parent)  # the operator's (FHIRNET_OUTBOX_PATH)
            self._db = Database(path, busy_timeout=busy_timeout, migrations=MIGRATIONS)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with _unavailable(self.path), self._db.reading() as connection:
            yield connection

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with _unavailable(self.path), self._db.writing() as connection:
            yield connection

    def close(self) -> None:
        self._db.close()

    def add(
        self, *, kind: Kind, body: Json, patients: Collection[str], requester: str, now: float
    ) -> Entry:
        """Commit a new queued entry, due at once; returns it."""
        entry_id = uuid.uuid4().hex
        text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        with self._writing() as connection:
            cursor = connection.execute(
                "INSERT INTO entry (id, kind, requester, body, state, accepted, next_attempt) "
                "VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (entry_id, kind.value, requester, text, now, now),
            )
            seq = cursor.lastrowid
            connection.executemany(
                "INSERT INTO entry_patient (patient, seq) VALUES (?, ?)",
                [(patient, seq) for patient in sorted(set(patients))],
            )
        assert seq is not None  # noqa: S101 - an INSERT has a rowid
        # The body read back from its text: a copy, as get() would give it.
        return Entry.queued(
            seq=seq, id=entry_id, kind=kind, requester=requester, body=json.loads(text), now=now
        )

    def get(self, entry_id: str) -> Entry | None:
        """The entry with public id ``entry_id``, or ``None``."""
        with self._reading() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM entry WHERE id = ?",  # noqa: S608 - constant columns
                (entry_id,),
            ).fetchone()
        return None if row is None else _entry(row)

    def patients(self, seq: int) -> tuple[str, ...]:
        """The patients a queued entry is about (none once it is finished)."""
        with self._reading() as connection:
            rows = connection.execute(
                "SELECT patient FROM entry_patient WHERE seq = ? ORDER BY patient", (seq,)
            ).fetchall()
        return tuple(row[0] for row in rows)

    def blocked(self, seq: int) -> bool:
        """Whether an earlier queued entry shares a patient with entry ``seq``."""
        return bool(self.earlier(seq))

    def earlier(self, seq: int) -> list[Entry]:
        """The queued entries before entry ``seq`` that share a patient with it, in order."""
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM entry WHERE seq IN ("  # noqa: S608 - constant columns
                "  SELECT earlier.seq FROM entry_patient mine JOIN entry_patient earlier "
                "  ON earlier.patient = mine.patient AND earlier.seq < mine.seq "
                "  WHERE mine.seq = ?) ORDER BY seq",
                (seq,),
            ).fetchall()
        return [_entry(row) for row in rows]

    def end_round(self) -> None:
        """Nothing to end: one host's processes share this file, and the patient locks keep
        two of them from delivering one entry at once."""

    def due(self, now: float, *, limit: int = 100) -> list[Entry]:
        """Queued entries whose next attempt has come and that no earlier queued entry of one
        of their patients holds back, in acceptance order."""
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM entry e "  # noqa: S608 - constant columns
                "WHERE e.state = 'queued' AND e.next_attempt <= ? AND NOT EXISTS ("
                "  SELECT 1 FROM entry_patient mine JOIN entry_patient earlier "
                "  ON earlier.patient = mine.patient AND earlier.seq < mine.seq "
                "  WHERE mine.seq = e.seq) "
                "ORDER BY e.seq LIMIT ?",
                (now, limit),
            ).fetchall()
        return [_entry(row) for row in rows]

    def next_due(self) -> float | None:
        """When the earliest queued entry is next due (blocked or not); ``None`` if none."""
        with self._reading() as connection:
            row = connection.execute(
                "SELECT min(next_attempt) FROM entry WHERE state = 'queued'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def retry_later(self, seq: int, *, at: float, error: str) -> None:
        """Count a failed attempt of a queued entry and schedule the next one."""
        with self._writing() as connection:
            connection.execute(
                "UPDATE entry SET attempts = attempts + 1, next_attempt = ?, last_error = ? "
                "WHERE seq = ? AND state = 'queued'",
                (at, error, seq),
            )

    def reschedule(self, *, before: float, at: float) -> None:
        """Bring every queued entry due after ``before`` forward to ``at`` (the server is back)."""
        with self._writing() as connection:
            connection.execute(
                "UPDATE entry SET next_attempt = ? WHERE state = 'queued' AND next_attempt > ?",
                (at, before),
            )

    def finish(
        self, seq: int, *, state: State, answer: Json, now: float, attempted: bool = True
    ) -> None:
        """End a queued entry as delivered or failed with its answer; its body is dropped."""
        if state is State.QUEUED:
            raise ValueError("finish() ends an entry: delivered or failed")
        text = json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        with self._writing() as connection:
            connection.execute(
                "UPDATE entry SET state = ?, answer = ?, finished = ?, body = NULL, "
                "attempts = attempts + ? WHERE seq = ? AND state = 'queued'",
                (state.value, text, now, int(attempted), seq),
            )
            connection.execute("DELETE FROM entry_patient WHERE seq = ?", (seq,))

    def purge(self, *, finished_before: float) -> int:
        """Delete the entries finished before ``finished_before``; returns how many."""
        with self._writing() as connection:
            cursor = connection.execute(
                "DELETE FROM entry WHERE state != 'queued' AND finished < ?", (finished_before,)
            )
        return cursor.rowcount

    def counts(self) -> dict[State, int]:
        """How many entries are in each state."""
        with self._reading() as connection:
            rows = connection.execute("SELECT state, count(*) FROM entry GROUP BY state").fetchall()
        found = {State(state): count for state, count in rows}
        return {state: found.get(state, 0) for state in State}

    def entries(self, seq_from: int = 0) -> Sequence[Entry]:
        """Every entry from ``seq_from`` on, in acceptance order (operators, tests)."""
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM entry WHERE seq >= ? ORDER BY seq",  # noqa: S608
                (seq_from,),
            ).fetchall()
        return [_entry(row) for row in rows]


@contextmanager
def _unavailable(path: Path) -> Iterator[None]:
    """SQLite's and the file system's errors as :class:`OutboxUnavailableError`."""
    try:
        yield
    except (sqlite3.Error, OSError) as error:
        raise OutboxUnavailableError(
            f"the outbox {path} cannot be used: {type(error).__name__}: {error}"
        ) from error


def _entry(row: Sequence[Any]) -> Entry:
    (seq, entry_id, kind, requester, body, state, accepted, attempts, nxt, error, answer, end) = row
    return Entry(
        seq=seq,
        id=entry_id,
        kind=Kind(kind),
        requester=requester,
        body=None if body is None else json.loads(body),
        state=State(state),
        accepted=accepted,
        attempts=attempts,
        next_attempt=nxt,
        last_error=error,
        answer=None if answer is None else json.loads(answer),
        finished=end,
    )
