"""PostgreSQL for the tests of the PostgreSQL outbox and patient locks.

``database_url`` (session): makes sure the local cluster runs (``pg_ctlcluster 15 main start``
when it does not, which works as root, as in CI), creates a role with a password and a database
of its own for the session, and yields ``postgresql://<role>:<password>@127.0.0.1:5432/<db>``;
both are dropped at the end. ``fresh_database_url`` (function): a new, empty database of that
role for one test, so every test starts from a clean schema, passes alone and in any order.

When PostgreSQL cannot be had (no cluster, not root), the tests that need it fail in CI
(``CI=true``) and are skipped elsewhere, with the reason in the summary (``-ra``): the same policy
as the browser tools (``tests/web/conftest.py``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

PG_VERSION = "15"
PG_CLUSTER = "main"
HOST = "127.0.0.1"
PORT = 5432
IN_CI = os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _unavailable(reason: str) -> None:
    """Fail (CI) or skip (elsewhere): the tests needing PostgreSQL did not run."""
    message = f"POSTGRESQL TESTS NOT RUN: {reason}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), capture_output=True, text=True, timeout=timeout, check=False
    )


def _accepting() -> bool:
    """Whether the server answers on HOST:PORT (``pg_isready`` exits 0)."""
    if shutil.which("pg_isready") is None:
        return False
    return _run("pg_isready", "-q", "-h", HOST, "-p", str(PORT), timeout=10).returncode == 0


def ensure_cluster() -> None:
    """Start the local cluster when it is not accepting connections (idempotent), or give up."""
    if _accepting():
        return
    if shutil.which("pg_ctlcluster") is None:
        _unavailable("no pg_ctlcluster (PostgreSQL 15 is not installed here)")
    started = _run("pg_ctlcluster", PG_VERSION, PG_CLUSTER, "start", timeout=120)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _accepting():
            return
        time.sleep(0.2)
    _unavailable(
        f"pg_ctlcluster {PG_VERSION} {PG_CLUSTER} start exited {started.returncode} and the "
        f"server does not accept connections on {HOST}:{PORT}:\n{started.stderr[-2000:]}"
    )


def _superuser_psql(statement: str) -> None:
    """Run ``statement`` as the ``postgres`` superuser over the local socket (peer auth)."""
    if os.geteuid() != 0:
        _unavailable("not root: cannot run psql as the postgres user to create a test role")
    done = _run(
        "runuser", "-u", "postgres", "--",
        "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-p", str(PORT), "-d", "postgres",
        "-c", statement,
    )  # fmt: skip
    if done.returncode != 0:
        _unavailable(f"psql as postgres failed ({done.returncode}): {done.stderr[-2000:]}")


def with_database(url: str, database: str) -> str:
    """``url`` naming ``database`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _literal(value: str) -> str:
    return sql.Literal(value).as_string()


def _ident(value: str) -> str:
    return sql.Identifier(value).as_string()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A role and a database of this session on the local cluster (started when needed)."""
    ensure_cluster()
    suffix = secrets.token_hex(4)
    role = f"fhirnet_test_{suffix}"
    database = f"fhirnet_test_{suffix}"
    password = secrets.token_urlsafe(18)
    _superuser_psql(f"CREATE ROLE {_ident(role)} LOGIN CREATEDB PASSWORD {_literal(password)}")
    _superuser_psql(f"CREATE DATABASE {_ident(database)} OWNER {_ident(role)}")
    try:
        yield f"postgresql://{role}:{password}@{HOST}:{PORT}/{database}"
    finally:
        _drop(role)


def _drop(role: str) -> None:
    """Drop the session's databases and role (teardown: best effort, never skips or fails)."""
    if os.geteuid() != 0:
        return
    listed = _run(
        "runuser", "-u", "postgres", "--",
        "psql", "-X", "-At", "-p", str(PORT), "-d", "postgres",
        "-c", sql.SQL(
            "SELECT datname FROM pg_database WHERE datdba = "
            "(SELECT oid FROM pg_roles WHERE rolname = {})"
        ).format(sql.Literal(role)).as_string(),
    )  # fmt: skip
    for database in listed.stdout.split():
        _run(
            "runuser", "-u", "postgres", "--",
            "psql", "-X", "-q", "-p", str(PORT), "-d", "postgres",
            "-c", f"DROP DATABASE IF EXISTS {_ident(database)} WITH (FORCE)",
        )  # fmt: skip
    _run(
        "runuser", "-u", "postgres", "--",
        "psql", "-X", "-q", "-p", str(PORT), "-d", "postgres",
        "-c", f"DROP ROLE IF EXISTS {_ident(role)}",
    )  # fmt: skip


@pytest.fixture
def fresh_database_url(database_url: str) -> Iterator[str]:
    """A new, empty database for one test (dropped after it, its connections with it)."""
    name = f"{urlsplit(database_url).path.lstrip('/')}_{secrets.token_hex(4)}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(database_url, name)
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
