"""Benchmark of the embedded FHIR store: transaction throughput and search latency at 1,000 and
10,000 Observations, printed as a table.

    .venv/bin/python -m bench.store_bench            # 1k and 10k, a temporary data directory
    .venv/bin/python -m bench.store_bench --sizes 1000 --runs 20

The store is a real file (WAL, ``synchronous=FULL``) in a temporary directory, loaded the way the
service writes: transactions of 10 Observations (conditional creates on their identifier), the
DiagnosticReport listing them (``urn:uuid:`` references) and a Provenance. Observations spread
over ``size / 50`` patients, 5 codes and two years of dates. Latencies are medians (and 95th
percentiles) of ``--runs`` repetitions on a warm store; a search includes its total count, its
page and, where asked, ``_include``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhirnet.adapters.store import EmbeddedStore

SYSTEM = "urn:fhirnet:bench"
LOINC = "http://loinc.org"
CODES = ("21907-1", "33728-7", "21889-1", "21905-5", "44667-4")
PER_TRANSACTION = 10
START = date(2024, 1, 1)


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def observation(number: int, patient: str, rng: random.Random) -> dict[str, Any]:
    day = START + timedelta(days=rng.randrange(730))
    return {
        "resourceType": "Observation",
        "identifier": [{"system": SYSTEM, "value": f"obs-{number}"}],
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": CODES[number % len(CODES)]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": f"{day.isoformat()}T10:00:00+01:00",
        "valueQuantity": {"value": rng.randrange(5, 120), "unit": "mm", "code": "mm"},
    }


def assessment_bundle(first: int, patient: str, rng: random.Random) -> dict[str, Any]:
    """10 Observations, their DiagnosticReport and a Provenance, linked by urn:uuid."""
    entries: list[dict[str, Any]] = []
    for number in range(first, first + PER_TRANSACTION):
        entries.append(
            {
                "fullUrl": urn(),
                "resource": observation(number, patient, rng),
                "request": {
                    "method": "POST",
                    "url": "Observation",
                    "ifNoneExist": f"identifier={SYSTEM}|obs-{number}",
                },
            }
        )
    report = urn()
    entries.append(
        {
            "fullUrl": report,
            "resource": {
                "resourceType": "DiagnosticReport",
                "identifier": [{"system": SYSTEM, "value": f"dr-{first}"}],
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "18748-4"}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": entries[0]["resource"]["effectiveDateTime"],
                "result": [{"reference": entry["fullUrl"]} for entry in entries],
            },
            "request": {
                "method": "POST",
                "url": "DiagnosticReport",
                "ifNoneExist": f"identifier={SYSTEM}|dr-{first}",
            },
        }
    )
    entries.append(
        {
            "fullUrl": urn(),
            "resource": {
                "resourceType": "Provenance",
                "target": [{"reference": report}],
                "recorded": "2025-01-13T10:00:00Z",
                "agent": [{"who": {"display": "fhirnet"}}],
            },
            "request": {"method": "POST", "url": "Provenance"},
        }
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def timed(action: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and 95th percentile in milliseconds."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def bench(size: int, runs: int, directory: Path) -> dict[str, str]:
    rng = random.Random(size)  # noqa: S311 -- reproducible test data, not a secret
    store = EmbeddedStore.open(directory / f"store-{size}")
    patients = [f"p{n}" for n in range(max(1, size // 50))]
    bundles = [
        assessment_bundle(first, patients[(first // PER_TRANSACTION) % len(patients)], rng)
        for first in range(0, size, PER_TRANSACTION)
    ]
    started = time.perf_counter()
    for bundle in bundles:
        store.transaction(bundle)
    load_seconds = time.perf_counter() - started
    resources = sum(len(bundle["entry"]) for bundle in bundles)

    results: dict[str, str] = {}
    results["load: transactions/s (12 resources each)"] = f"{len(bundles) / load_seconds:,.0f}"
    results["load: resources/s"] = f"{resources / load_seconds:,.0f}"

    # Searches first, so that they run over exactly `size` Observations.
    patient = patients[len(patients) // 2]
    observation_id = next(store.search("Observation", {"_count": "1"}))["id"]
    searches: dict[str, tuple[str, dict[str, str]]] = {
        "search patient+code+date, _sort=-date": (
            "Observation",
            {
                "patient": patient,
                "code": f"{LOINC}|{CODES[0]}",
                "date": "ge2024-06-01",
                "_sort": "-date",
            },
        ),
        "search patient, _sort=-date": ("Observation", {"patient": patient, "_sort": "-date"}),
        "search code (1/5 of all), first page of 50": (
            "Observation",
            {"code": CODES[1]},
        ),
        "search code, _sort=-date, first page of 50": (
            "Observation",
            {"code": CODES[1], "_sort": "-date"},
        ),
        "search date in one month": ("Observation", {"date": "2024-03"}),
        "search identifier": ("Observation", {"identifier": f"{SYSTEM}|obs-{size // 2}"}),
        "search _lastUpdated, _sort=-_lastUpdated": (
            "Observation",
            {"_lastUpdated": "ge2000-01-01", "_sort": "-_lastUpdated"},
        ),
        "search DiagnosticReport patient + _include result": (
            "DiagnosticReport",
            {"patient": patient, "_include": "DiagnosticReport:result"},
        ),
    }
    for label, (resource_type, params) in searches.items():
        hits = store.search_page(resource_type, params).total
        timing = timed(lambda t=resource_type, p=params: store.search_page(t, p), runs)  # type: ignore[misc]
        results[label] = f"{ms(timing)}, {hits:,} hits"
    results["read by id"] = ms(timed(lambda: store.read("Observation", observation_id), runs))
    every_page = {"code": CODES[2], "_count": "200"}
    hits = store.search_page("Observation", every_page).total
    timing = timed(lambda: list(store.search("Observation", every_page)), max(3, runs // 10))
    results["search() iterating every page of code, _count=200"] = f"{ms(timing)}, {hits:,} hits"

    retry = bundles[len(bundles) // 2]
    results["transaction retried (11 conditional no-ops + 1 Provenance)"] = ms(
        timed(lambda: store.transaction(retry), runs)
    )
    fresh_number = iter(range(10_000_000, 20_000_000, PER_TRANSACTION))
    results["transaction, new (12 resources)"] = ms(
        timed(lambda: store.transaction(assessment_bundle(next(fresh_number), "p0", rng)), runs)
    )
    store.close()
    return results


def args_note() -> str:
    return f"Python {platform.python_version()}, {os.cpu_count()} CPUs"


def ms(timing: tuple[float, float]) -> str:
    median, p95 = timing
    return f"{median:.2f} ms (p95 {p95:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=50)
    arguments = parser.parse_args()
    columns: dict[int, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="fhirnet-store-bench-") as directory:
        for size in arguments.sizes:
            columns[size] = bench(size, arguments.runs, Path(directory))
    labels = list(next(iter(columns.values())))
    width = max(map(len, labels))
    cell = max(len(value) for results in columns.values() for value in results.values())
    header = "operation".ljust(width) + "".join(
        f" | {f'{size:,} Observations':<{cell}}" for size in columns
    )
    print(header)
    print("-" * len(header))
    for label in labels:
        print(label.ljust(width) + "".join(f" | {r[label]:<{cell}}" for r in columns.values()))
    print(f"\n{datetime.now(UTC):%Y-%m-%d}, SQLite {sqlite3.sqlite_version}, {args_note()}")


if __name__ == "__main__":
    main()
