"""What durable delivery costs a submission: the outbox's bookkeeping next to the submission
itself, measured in the same rounds on the same disk; printed as a Markdown table.

    .venv/bin/python -m bench.outbox_bench              # 300 rounds
    .venv/bin/python -m bench.outbox_bench --quick      # smoke run, a few seconds
    .venv/bin/python -m bench.outbox_bench --dir /var/lib/fhirnet   # on the disk of production

**Accept (202)**: :meth:`fhirnet.adapters.outbox.Outbox.add` of a baseline form: one committed
SQLite
write (WAL, ``synchronous=FULL``), what a ``202 Accepted`` waits for.

**Inline delivery bookkeeping (201)**: what :class:`fhirnet.services.delivery.Delivery` does
around the pipeline for a submission delivered in the request: ``add``, the entry's patients, its
re-read under the lock, the earlier entries of its patients, the blocked check, and ``finish``
with the answer (two committed writes, four reads).

**Submission**: :func:`fhirnet.services.submit` of a new patient's baseline form to the embedded
store in the same directory (validate, read the empty history, assess, build and commit the
transaction of ~15 resources with ``synchronous=FULL``): the work the outbox is added to. With an
external FHIR server the submission costs this plus the network and the server's own commit, so
the ratio here is an upper bound of the outbox's share.

Method: ``time.perf_counter_ns``; ``--warmup`` rounds, then ``--runs`` rounds each timing the
three actions once in a shuffled order (seeded); ratios are medians over rounds of the two times
taken in the same round. Medians and 95th percentiles in ms.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fhirnet.adapters.outbox import SqliteOutbox
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.fhir.profiles import load_catalog
from fhirnet.ports import Json, Kind, State
from fhirnet.services import Context, submit
from fhirnet.services.delivery import ALREADY_HELD

ROOT = Path(__file__).parents[1]
BASELINE = sorted(
    (ROOT / "examples" / "questionnaire-responses" / "small-bowel-net-prrt").glob("01-*")
)
NOW = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)
ANSWER: Json = {
    "response": {
        "status": "201 Created",
        "location": "https://fhir.example.org/r4/DiagnosticReport/0dce1537-71ba-4efa-909d-120d57839a80",
        "etag": 'W/"1"',
        "outcome": {"resourceType": "OperationOutcome", "issue": []},
    }
}


def baseline_of(patient: str) -> Json:
    """The example baseline form, about ``patient``, with an identifier of its own."""
    form: Json = json.loads(BASELINE[0].read_text(encoding="utf-8"))
    form = copy.deepcopy(form)
    form["subject"] = {"reference": f"Patient/{patient}"}
    form["identifier"]["value"] = f"exam-{patient}"
    return form


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="20 rounds, 3 warm-up")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go [a tmp dir]")
    arguments = parser.parse_args()
    runs, warmup = (20, 3) if arguments.quick else (arguments.runs, arguments.warmup)
    with tempfile.TemporaryDirectory(dir=arguments.dir) as directory:
        run(Path(directory), runs, warmup)


def run(directory: Path, runs: int, warmup: int) -> None:
    catalog = load_catalog(ROOT / "profiles")
    outbox = SqliteOutbox(directory / "outbox.sqlite3")
    store = EmbeddedStore.open(directory / "store")
    counter = iter(range(10**9))

    def accept() -> None:
        patient = f"a{next(counter)}"
        outbox.add(
            kind=Kind.FORM, body=baseline_of(patient), patients={patient}, requester="b", now=0.0
        )

    def bookkeeping() -> None:
        patient = f"b{next(counter)}"
        entry = outbox.add(
            kind=Kind.FORM, body=baseline_of(patient), patients={patient}, requester="b", now=0.0
        )
        outbox.patients(entry.seq)
        outbox.get(entry.id)
        outbox.earlier(entry.seq)
        outbox.blocked(entry.seq)
        outbox.finish(entry.seq, state=State.DELIVERED, answer=ANSWER, now=1.0)

    def submission() -> None:
        form = baseline_of(f"s{next(counter)}")
        submit(form, Context(store=store, catalog=catalog, locks=ALREADY_HELD, now=NOW))

    actions: dict[str, Callable[[], None]] = {
        "accept (202): outbox add": accept,
        "inline delivery bookkeeping (201)": bookkeeping,
        "submission on the embedded store": submission,
    }
    samples: dict[str, list[int]] = {name: [] for name in actions}
    order = list(actions)
    shuffle = random.Random(20261121)  # noqa: S311 - an order, not a secret
    for round_number in range(warmup + runs):
        shuffle.shuffle(order)
        for name in order:
            started = time.perf_counter_ns()
            actions[name]()
            elapsed = time.perf_counter_ns() - started
            if round_number >= warmup:
                samples[name].append(elapsed)
    outbox.close()
    store.close()

    service = samples["submission on the embedded store"]
    print(f"{runs} rounds after {warmup} warm-up, {machine()}, files in {directory}\n")
    print("| action | median ms | p95 ms | median of ratio to the submission |")
    print("|---|---|---|---|")
    for name, taken in samples.items():
        print(
            f"| {name} | {ms(statistics.median(taken))} | {ms(p95(taken))} | "
            f"{ratio(taken, service):.2f} |"
        )


def p95(values: Sequence[int]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def ratio(numerator: Sequence[int], denominator: Sequence[int]) -> float:
    return statistics.median(n / d for n, d in zip(numerator, denominator, strict=True))


def ms(nanoseconds: float) -> str:
    return f"{nanoseconds / 1e6:.3f}"


def machine() -> str:
    return f"Python {platform.python_version()} on {platform.machine()} ({platform.system()})"


if __name__ == "__main__":
    main()
