"""The PostgreSQL schema shared by the adapters that keep state there (the outbox), as versioned
migrations.

Each migration is applied once, in order, and recorded in ``fhirnet_schema_version``; several
hosts starting at once take a transaction-scoped advisory lock first, so exactly one applies a
migration and the others find it recorded. A migration's statements and its version row commit
together: a host killed half-way leaves the previous version, and the next start applies it again.

To change the schema, append a :class:`Migration` to :data:`MIGRATIONS` (never edit an applied
one): version 3 is the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import psycopg

__all__ = ["MIGRATIONS", "Migration", "migrate", "schema_version"]

#: Key of the advisory lock that serializes the migrations of concurrently starting hosts.
MIGRATION_LOCK: Final = 0x66686972_6E657401  # "fhirnet" + 1


@dataclass(frozen=True)
class Migration:
    """One step of the schema: its version (1, 2, ...), what it is for, its statements."""

    version: int
    purpose: str
    statements: tuple[str, ...]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "the outbox: accepted submissions and the patients each is about",
        (
            """
            CREATE TABLE outbox_entry (
                seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- acceptance order
                id text NOT NULL UNIQUE,                -- public: the status URL's id
                kind text NOT NULL,
                requester text NOT NULL,
                body jsonb,                             -- NULL once finished
                state text NOT NULL CHECK (state IN ('queued', 'delivered', 'failed')),
                accepted double precision NOT NULL,     -- seconds since the epoch
                attempts integer NOT NULL DEFAULT 0,
                next_attempt double precision NOT NULL,
                last_error text,
                answer jsonb,                           -- the final answer
                finished double precision
            )
            """,
            "CREATE INDEX outbox_entry_due ON outbox_entry (state, next_attempt)",
            """
            CREATE TABLE outbox_entry_patient (
                patient text NOT NULL,
                seq bigint NOT NULL REFERENCES outbox_entry (seq) ON DELETE CASCADE,
                PRIMARY KEY (patient, seq)
            )
            """,
            "CREATE INDEX outbox_entry_patient_by_seq ON outbox_entry_patient (seq)",
        ),
    ),
    Migration(
        2,
        "what the token endpoint and bulk export share between hosts: the used client"
        " assertion ids, the export jobs",
        (
            """
            CREATE TABLE used_assertion (
                jti text PRIMARY KEY,                   -- the client and its assertion's jti
                expires_at bigint NOT NULL              -- seconds since the epoch
            )
            """,
            "CREATE INDEX used_assertion_expiry ON used_assertion (expires_at)",
            """
            CREATE TABLE export_jobs (
                id text PRIMARY KEY,
                status text NOT NULL
                    CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
                owner text NOT NULL,
                request text NOT NULL,
                transaction_time text NOT NULL,
                created double precision NOT NULL,      -- seconds since the epoch
                progress text NOT NULL DEFAULT '',
                outputs text NOT NULL DEFAULT '[]',     -- JSON: [{type, name, count}]
                errors text NOT NULL DEFAULT '[]',
                extension text,                         -- JSON object, or NULL
                failure text,
                expires double precision,
                heartbeat double precision
            )
            """,
        ),
    ),
    # Migration(3, "...", ("ALTER TABLE ...",)),  -- the next change goes here
)


def migrate(connection: psycopg.Connection[tuple[object, ...]]) -> int:
    """Bring the database to the last version of :data:`MIGRATIONS` (idempotent, safe for
    several hosts at once); returns the version it is at. ``connection`` must be idle."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS fhirnet_schema_version ("
            " version integer PRIMARY KEY,"
            " purpose text NOT NULL,"
            " applied timestamptz NOT NULL DEFAULT now())"
        )
        current = _version(connection)
        for migration in MIGRATIONS:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                connection.execute(statement.encode())
            connection.execute(
                "INSERT INTO fhirnet_schema_version (version, purpose) VALUES (%s, %s)",
                (migration.version, migration.purpose),
            )
            current = migration.version
    return current


def schema_version(connection: psycopg.Connection[tuple[object, ...]]) -> int:
    """The version the database is at (0: none applied)."""
    exists = connection.execute("SELECT to_regclass('fhirnet_schema_version')").fetchone()
    return 0 if exists is None or exists[0] is None else _version(connection)


def _version(connection: psycopg.Connection[tuple[object, ...]]) -> int:
    row = connection.execute(
        "SELECT coalesce(max(version), 0) FROM fhirnet_schema_version"
    ).fetchone()
    return 0 if row is None else int(str(row[0]))
