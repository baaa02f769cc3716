"""The client assertion ids (``jti``) the token endpoint has seen, in PostgreSQL
(``FHIRNET_DATABASE_URL``): :class:`fhirnet.adapters.replay_cache.ReplayCache`'s contract, shared
by every host, so an assertion replayed to *another host* is refused too (SMART
client-confidential-asymmetric: the server SHALL check that ``jti`` was not used before within
the assertion's lifetime). A cache per host would accept one assertion once per host.

One row per ``jti`` (``used_assertion``, migration 2 of :mod:`fhirnet.adapters.pg_schema`),
keyed by it: ``INSERT … ON CONFLICT DO NOTHING`` inserts nothing for a used one, and of two hosts
inserting the same ``jti`` at once the second waits on the key until the first commits, then
inserts nothing, so they cannot both succeed. Expired rows are purged in the same transaction.
"""

from __future__ import annotations

import psycopg

from fhirnet.adapters.pg_connections import PostgresAdapter
from fhirnet.authorization import TokenServiceUnavailableError

__all__ = ["PostgresReplayCache"]


class PostgresReplayCache(PostgresAdapter):
    """:class:`fhirnet.authorization.UsedAssertions` in the database at ``database_url``: a
    connection per check (:class:`~fhirnet.adapters.pg_connections.PostgresAdapter`)."""

    application_name = "fhirnet used assertions"

    def first_use(self, key: str, *, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; ``False`` when it is recorded and unexpired.

        :raises TokenServiceUnavailableError: the database cannot be reached or times out.
        """
        try:
            with self._connections.transaction() as connection:
                connection.execute("DELETE FROM used_assertion WHERE expires_at <= %s", (now,))
                inserted = connection.execute(
                    "INSERT INTO used_assertion (jti, expires_at) VALUES (%s, %s)"
                    " ON CONFLICT (jti) DO NOTHING",
                    (key, expires_at),
                ).rowcount
        except (psycopg.Error, OSError) as error:
            raise TokenServiceUnavailableError(
                f"The used-assertion record {self.where} is unavailable: "
                f"{type(error).__name__}: {error}"
            ) from None
        return inserted == 1
