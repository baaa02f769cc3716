"""The SQL of a search: the criterion that drives it goes through the lookup index of its kind
(token, reference and canonical values in ``search_by_value``, dates in ``search_by_date``), each
of which holds only the rows of its kind (schema version 3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.adapters.store.clauses import where
from fhirnet.adapters.store.parser import parse_query
from fhirnet.adapters.store.sqlite import DATABASE_FILE
from fhirnet.ports import SearchParams
from tests.adapters.store import LOINC, SYSTEM, Clock, identifier, observation, put, transaction


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a few hundred Observations (SQLite plans by what it knows of the tables)."""
    data_dir = tmp_path_factory.mktemp("store")
    with EmbeddedStore.open(data_dir, clock=Clock()) as store:
        for batch in range(4):
            store.transaction(
                transaction(
                    *(
                        put(
                            f"Observation/o{batch}-{n}",
                            observation(
                                id=f"o{batch}-{n}",
                                identifier=identifier(f"v{batch}-{n}"),
                                subject={"reference": f"Patient/p{n % 7}"},
                                effectiveDateTime=f"2025-0{1 + n % 9}-13",
                            ),
                        )
                        for n in range(50)
                    )
                )
            )
    connection = sqlite3.connect(data_dir / DATABASE_FILE)
    try:
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return data_dir / DATABASE_FILE


def plan(database: Path, params: SearchParams) -> str:
    sql, values = where(parse_query("Observation", params))
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute(
            f"EXPLAIN QUERY PLAN SELECT r.rid FROM resources r WHERE {sql}",  # noqa: S608
            values,
        ).fetchall()
    finally:
        connection.close()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    "params",
    [
        {"code": [f"{LOINC}|21907-1"]},
        {"code": ["21907-1,8480-6"]},
        {"identifier": [f"{SYSTEM}|"]},
        {"subject": ["Patient/p1"]},
        {"patient": ["p1"], "date": ["ge2025-03-01"]},
    ],
    ids=["token", "token-any-of", "token-system-only", "reference", "reference-and-date"],
)
def test_a_token_or_reference_criterion_drives_through_the_value_index(
    database: Path, params: SearchParams
) -> None:
    assert "USING COVERING INDEX search_by_value" in plan(database, params)


@pytest.mark.parametrize("date", ["ge2025-03-01", "lt2025-03", "eq2025-03-13", "sa2025-06"])
def test_a_date_criterion_alone_drives_through_the_date_index(database: Path, date: str) -> None:
    assert "USING COVERING INDEX search_by_date" in plan(database, {"date": [date]})


def test_each_lookup_index_holds_only_the_rows_of_its_kind(database: Path) -> None:
    connection = sqlite3.connect(database)
    try:
        counts = {
            name: connection.execute(
                f"SELECT count(*) FROM search_index INDEXED BY {name}"  # noqa: S608
                f" WHERE {condition}"
            ).fetchone()[0]
            for name, condition in [
                ("search_by_value", "code IS NOT NULL"),
                ("search_by_date", "low IS NOT NULL"),
            ]
        }
        rows = connection.execute("SELECT count(*) FROM search_index").fetchone()[0]
        dates = connection.execute(
            "SELECT count(*) FROM search_index WHERE param = 'date'"
        ).fetchone()[0]
    finally:
        connection.close()
    assert counts == {"search_by_value": rows - dates, "search_by_date": dates}
