"""Schema migrations of the embedded store: a data directory written by an older fhirnet is
brought to the current schema when opened, index rows included."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from fhirnet.adapters.store import EmbeddedStore, versions
from fhirnet.adapters.store.sqlite import DATABASE_FILE, MIGRATIONS, SCHEMA_VERSION, Database
from fhirnet.ports import Json
from tests.adapters.store import Clock, put, transaction

FORM = "QuestionnaireResponse/f1"


def provenance(resource_id: str, *, form: str = FORM) -> Json:
    return {
        "resourceType": "Provenance",
        "id": resource_id,
        "target": [{"reference": "DiagnosticReport/r1"}],
        "recorded": "2025-01-13T10:00:00Z",
        "agent": [{"who": {"display": "fhirnet"}}],
        "entity": [{"role": "source", "what": {"reference": form}}],
    }


def old_data_directory(data_dir: Path) -> None:
    """A data directory as schema version 1 left it: Provenances without ``entity`` rows (the
    parameter was not indexed then)."""
    data_dir.mkdir()
    Database(data_dir / DATABASE_FILE, migrations=MIGRATIONS[:1]).close()
    connection = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
    try:
        # What version 1 wrote: the current code's rows, less the parameter added since.
        connection.execute("BEGIN IMMEDIATE")
        _write(connection, [provenance("pv1"), provenance("pv2", form="QuestionnaireResponse/f2")])
        connection.execute(
            "DELETE FROM search_index WHERE type = 'Provenance' AND param = 'entity'"
        )
        connection.execute("COMMIT")
    finally:
        connection.close()


def _write(connection: sqlite3.Connection, resources: list[Json]) -> None:
    for resource in resources:
        versions.save(
            connection,
            resource,
            resource_id=str(resource["id"]),
            existing=None,
            now=datetime(2025, 1, 13, tzinfo=UTC),
        )


def entity_matches(store: EmbeddedStore, form: str) -> list[str]:
    return [p["id"] for p in store.search_page("Provenance", {"entity": [form]}).matches]


def test_opening_an_old_data_directory_indexes_the_provenance_entity(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old_data_directory(data_dir)
    connection = sqlite3.connect(data_dir / DATABASE_FILE)
    try:
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
    finally:
        connection.close()

    with EmbeddedStore.open(data_dir, clock=Clock()) as store:
        assert entity_matches(store, FORM) == ["pv1"]
        assert entity_matches(store, "QuestionnaireResponse/f2") == ["pv2"]
        # The other parameters are indexed as before, once each.
        assert [p["id"] for p in store.search_page("Provenance", {"target": ["r1"]}).matches] == [
            "pv1",
            "pv2",
        ]
        # Later writes index as usual.
        store.transaction(transaction(put("Provenance/pv3", provenance("pv3"))))
        assert entity_matches(store, FORM) == ["pv1", "pv3"]

    connection = sqlite3.connect(data_dir / DATABASE_FILE)
    try:
        assert connection.execute("SELECT max(version) FROM schema_version").fetchone() == (
            SCHEMA_VERSION,
        )
        duplicates = connection.execute(
            "SELECT count(*) FROM (SELECT rid, param, system, code, low, high, count(*) AS n"
            " FROM search_index GROUP BY rid, param, system, code, low, high HAVING n > 1)"
        ).fetchone()
        assert duplicates == (0,)
    finally:
        connection.close()


def test_a_new_data_directory_runs_every_migration_once(tmp_path: Path) -> None:
    EmbeddedStore.open(tmp_path).close()
    EmbeddedStore.open(tmp_path).close()
    connection = sqlite3.connect(tmp_path / DATABASE_FILE)
    try:
        versions = [row[0] for row in connection.execute("SELECT version FROM schema_version")]
    finally:
        connection.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_opening_a_version_2_database_keeps_each_lookup_index_to_the_rows_of_its_kind(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    Database(data_dir / DATABASE_FILE, migrations=MIGRATIONS[:2]).close()
    connection = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        _write(connection, [provenance("pv1")])
        connection.execute("COMMIT")
        before = connection.execute("SELECT count(*) FROM search_index").fetchone()[0]
    finally:
        connection.close()

    with EmbeddedStore.open(data_dir, clock=Clock()) as store:
        assert entity_matches(store, FORM) == ["pv1"]
        assert [p["id"] for p in store.search_page("Provenance", {"target": ["r1"]}).matches] == [
            "pv1"
        ]

    connection = sqlite3.connect(data_dir / DATABASE_FILE)
    try:
        definitions = dict(
            connection.execute(
                "SELECT name, sql FROM sqlite_master"
                " WHERE name IN ('search_by_value', 'search_by_date')"
            ).fetchall()
        )
        value_rows = connection.execute(
            "SELECT count(*) FROM search_index INDEXED BY search_by_value WHERE code IS NOT NULL"
        ).fetchone()[0]
        after = connection.execute("SELECT count(*) FROM search_index").fetchone()[0]
    finally:
        connection.close()
    assert definitions["search_by_value"].endswith("WHERE code IS NOT NULL")
    assert definitions["search_by_date"].endswith("WHERE low IS NOT NULL")
    assert after == before  # the rows stay; only the indexes over them changed
    assert value_rows == before  # target and entity: both references
