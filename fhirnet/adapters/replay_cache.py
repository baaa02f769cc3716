"""The client assertion ids (``jti``) the token endpoint has seen, kept until their assertion
expires, in SQLite under the data directory: shared by every worker process of a host, so an
assertion replayed to another worker is refused too (SMART client-confidential-asymmetric.html:
the server SHALL check ``jti`` was not used before within the assertion's lifetime).

One row per ``jti``, keyed by it: the insert of a used one is ignored, so two workers racing with
the same assertion cannot both succeed. Expired rows are purged on every check, which keeps the
table to at most five minutes' worth of assertions.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from fhirnet.authorization import TokenServiceUnavailableError

FILE_NAME = "used-assertions.sqlite3"
#: Seconds a check waits for another worker's write before giving up (answered 503).
BUSY_TIMEOUT_SECONDS = 10.0

_SCHEMA = "CREATE TABLE IF NOT EXISTS used_assertion (jti TEXT PRIMARY KEY, expires_at INTEGER)"


class ReplayCache:
    """:class:`fhirnet.authorization.UsedAssertions` on an SQLite file (created when missing)."""

    def __init__(self, path: Path, *, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path
        self._timeout = timeout
        self._ready = False

    def first_use(self, key: str, *, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; ``False`` when it is recorded and unexpired.

        :raises TokenServiceUnavailableError: the file cannot be opened or stays locked.
        """
        try:
            with closing(self._connect()) as connection:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    connection.execute("DELETE FROM used_assertion WHERE expires_at <= ?", (now,))
                    inserted = connection.execute(
                        "INSERT OR IGNORE INTO used_assertion (jti, expires_at) VALUES (?, ?)",
                        (key, expires_at),
                    ).rowcount
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
        except (sqlite3.Error, OSError) as error:
            raise TokenServiceUnavailableError(
                f"The used-assertion store {self.path} is unavailable: {error}"
            ) from None
        return inserted == 1

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        if not self._ready:
            connection.execute(_SCHEMA)
            self._ready = True
        return connection
