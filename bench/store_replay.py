"""What a change of the embedded store's schema does to the writes fhirnet makes: the transaction
Bundles of real submissions replayed on the store at an older schema version and at the current
one, paired, in one process.

    .venv/bin/python -m bench.store_replay                      # schema 2 vs the current one
    .venv/bin/python -m bench.store_replay --old 2 --rounds 6 --copies 6

The Bundles are captured from the app (the example series of ``bench.load_test``, ``--copies``
patients per series, each form ``POST``\\ ed to ``/fhir/QuestionnaireResponse`` with the embedded
store in a temporary directory; ``EmbeddedStore.transaction`` records each Bundle it is given).
Each round replays all of them, in order, into two fresh database files (``synchronous=FULL``,
WAL, as fhirnet runs it), one per schema, alternating which goes first; ``time.thread_time``
around each ``transaction``. Reported: the median CPU per transaction of each side, the median of
the paired ratios (new / old) and the ratio of the means (the means carry the checkpoints), and
the pages each side's transactions wrote to the write-ahead log.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.load_test import load_series
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.adapters.store.sqlite import MIGRATIONS, SCHEMA_VERSION
from fhirnet.config import Settings
from fhirnet.ports import Json
from fhirnet.web.app import create_app


def capture(copies: int, data_dir: Path) -> list[str]:
    """The JSON of every Bundle the app hands its store for the example forms."""
    captured: list[str] = []
    transaction = EmbeddedStore.transaction

    def recording(store: EmbeddedStore, bundle: Json) -> Json:
        captured.append(json.dumps(bundle))
        return transaction(store, bundle)

    EmbeddedStore.transaction = recording  # type: ignore[method-assign,assignment]
    try:
        client = create_app(Settings(auth="none", data_dir=data_dir)).test_client()
        logging.disable(logging.CRITICAL)
        for number, series in enumerate(load_series() * copies):
            for form in series.for_patient(f"replay-{number}"):
                answer = client.post(
                    "/fhir/QuestionnaireResponse", data=form, content_type="application/fhir+json"
                )
                if answer.status_code != 201:
                    raise SystemExit(f"submission refused: {answer.status_code}")
    finally:
        EmbeddedStore.transaction = transaction  # type: ignore[method-assign]
        logging.disable(logging.NOTSET)
    return captured


def wal_pages(path: Path) -> int:
    """Frames in a write-ahead log that was never checkpointed (bench only: reads the header)."""
    size = path.stat().st_size if path.exists() else 0
    with path.open("rb") as log:
        page_size = int.from_bytes(log.read(12)[8:12], "big")
    return max(0, size - 32) // (24 + page_size)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=int, default=SCHEMA_VERSION - 1, help="older schema version")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=6, help="patients per example series")
    args = parser.parse_args()
    if not 1 <= args.old < SCHEMA_VERSION:
        raise SystemExit(f"--old must be between 1 and {SCHEMA_VERSION - 1}")
    with tempfile.TemporaryDirectory() as scratch:
        bundles = capture(args.copies, Path(scratch) / "capture")
        schemas = {"old": MIGRATIONS[: args.old], "new": MIGRATIONS}
        cpu: dict[str, list[float]] = {"old": [], "new": []}
        pages = {"old": 0, "new": 0}
        ratios: list[float] = []
        for round_ in range(args.rounds):
            stores = {}
            for side, migrations in schemas.items():
                path = Path(scratch) / f"{side}-{round_}.sqlite3"
                # No checkpoint during the replay, so the log holds every page written.
                stores[side] = EmbeddedStore(path, migrations=migrations)
                with stores[side]._database.writing() as connection:
                    connection.execute("PRAGMA wal_autocheckpoint = 0")
            for number, text in enumerate(bundles):
                order = ["old", "new"] if (number + round_) % 2 == 0 else ["new", "old"]
                taken = {}
                for side in order:
                    bundle = json.loads(text)
                    started = time.thread_time()
                    stores[side].transaction(bundle)
                    taken[side] = time.thread_time() - started
                    cpu[side].append(taken[side])
                ratios.append(taken["new"] / taken["old"])
            for side, store in stores.items():
                pages[side] += wal_pages(Path(f"{store.path}-wal"))
                store.close()
    count = len(bundles) * args.rounds
    print(f"{len(bundles)} Bundles x {args.rounds} rounds; schema {args.old} vs {SCHEMA_VERSION}")
    for side in ("old", "new"):
        version = args.old if side == "old" else SCHEMA_VERSION
        print(
            f"schema {version}: median {statistics.median(cpu[side]) * 1000:.3f} ms CPU per"
            f" transaction, mean {statistics.mean(cpu[side]) * 1000:.3f} ms,"
            f" {pages[side] / count:.1f} WAL pages per transaction"
        )
    print(
        f"new / old: median of paired ratios {statistics.median(ratios):.3f},"
        f" ratio of means {statistics.mean(cpu['new']) / statistics.mean(cpu['old']):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
