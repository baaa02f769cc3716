"""Benchmark of one form submission on the service side, for a patient with 1, 6 and 50 earlier
exams, next to the JSON floor; printed as Markdown tables.

    .venv/bin/pip install orjson==3.13.0          # the floor's fast JSON library (bench only)
    .venv/bin/python -m bench.submission_bench    # 1, 6 and 50 prior exams
    .venv/bin/python -m bench.submission_bench --quick            # smoke run, a few seconds
    .venv/bin/python -m bench.submission_bench --freeze           # gc.freeze() before timing
    .venv/bin/python -m bench.submission_bench --profile 50       # cProfile of one N, no table

**Service**: :func:`fhirnet.services.submit` of the next exam's QuestionnaireResponse (as parsed
JSON) against an in-memory :class:`~fhirnet.ports.FhirStore` whose ``search`` returns the
patient's stored forms (already parsed, with ``id`` and ``meta`` as a server sends them) and whose
``transaction`` echoes the entries back as created; the locks are a no-op. So it times validating
the form, reading the history back into domain forms, assessing, comparing before/after and
building the transaction Bundle, and nothing of the FHIR I/O (no HTTP, no JSON, no SQLite).

**Floor**: what any service handling the same payloads has to do at least: parse the request
body (the new form) and the history search result (a ``searchset`` Bundle of the N forms) from
JSON text, and serialise the transaction Bundle the service built. With orjson (the fastest JSON
library on PyPI; skipped when not installed) and with the standard library's ``json``.

**Steps**: the same pipeline composed from the public functions, each step timed once per
submission (the service runs the assessment twice: the patient's timeline without and with the
new form), to show where the time goes.

Payloads: the ``small-bowel-net-prrt`` example forms (RECIST 1.1, a baseline and 5 follow-ups)
and, from exam 7 on, copies of its 5th form 13 weeks apart with each target's size moved by -1, 0
or +1 mm (seeded: the same forms every run) and the nadir date recomputed. Each form validates
and the assessment accepts the series; the script checks both before timing.

Method: ``time.perf_counter_ns``; ``--warmup`` rounds, then ``--runs`` rounds, each running every
measured action of every N once (service, floors, steps), in an order shuffled per round (seeded):
a ratio is the median over rounds of the two times taken in the same round, so that it compares
samples taken under the same machine load. Medians and 95th percentiles. The garbage collector
stays on, as in production; ``--freeze`` calls ``gc.freeze()`` once the payloads are built, as a
server can after start-up (the objects of the imported modules are then never scanned again).
Peak memory: ``tracemalloc`` around one call, after the timings.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import datetime as dt
import gc
import importlib
import json
import os
import platform
import pstats
import random
import statistics
import time
import tracemalloc
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from fhirnet.config import DEFAULT_PROFILES_DIR
from fhirnet.criteria import assess
from fhirnet.fhir.build import build_transaction, exam_results
from fhirnet.fhir.extract import ExamForm, assessment_request, extract_form
from fhirnet.fhir.profiles import Catalog, load_catalog
from fhirnet.fhir.questionnaire import validate_response
from fhirnet.ports import Json, SearchParams
from fhirnet.services import Context, submit
from fhirnet.services.forms import content_of

EXAMPLES: Final = (
    Path(__file__).resolve().parents[1] / "examples/questionnaire-responses/small-bowel-net-prrt"
)
PATIENT: Final = "small-bowel-net-prrt"
#: The example form copied for exam 7 on (a follow-up with no new lesion).
TEMPLATE: Final = 5
INTERVAL: Final = dt.timedelta(weeks=13)
PRIOR_EXAMS: Final = (1, 6, 50)


def _orjson() -> ModuleType | None:
    try:
        return importlib.import_module("orjson")
    except ModuleNotFoundError:
        return None


ORJSON: Final = _orjson()


# -- payloads --------------------------------------------------------------------------------


def series(count: int) -> list[Json]:
    """The patient's first ``count`` forms, in date order (module docstring)."""
    examples = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.json"))]
    forms = examples[:count]
    rng = random.Random(20250113)  # noqa: S311 -- reproducible test data, not a secret
    template = examples[TEMPLATE - 1]
    while len(forms) < count:
        number = len(forms) + 1
        form = copy.deepcopy(template)
        day = _answer(forms[-1], "imaging-date")["valueDate"]
        day = (dt.date.fromisoformat(day) + INTERVAL).isoformat()
        form["id"] = f"{PATIENT}-{number:02d}"
        form["identifier"]["value"] = form["id"]
        form["authored"] = f"{day}T15:40:00+01:00"
        _answer(form, "imaging-date")["valueDate"] = day
        for target in _items(form, "target-lesion"):
            (size,) = (i for i in target["item"] if i["linkId"] == "lesion-size")
            size["answer"][0]["valueDecimal"] += rng.choice((-1.0, 0.0, 1.0))
        _answer(form, "nadir-date")["valueDate"] = _nadir(forms)
        forms.append(form)
    return forms


def _items(form: Json, link_id: str) -> Iterator[Json]:
    return (item for item in form["item"] if item["linkId"] == link_id)


def _answer(form: Json, link_id: str) -> Json:
    (item,) = _items(form, link_id)
    answer: Json = item["answer"][0]
    return answer


def _nadir(earlier: Sequence[Json]) -> str:
    """The date of the smallest sum of diameters among ``earlier``, ties to the earliest."""

    def total(form: Json) -> float:
        sizes = (
            i["answer"][0]["valueDecimal"]
            for target in _items(form, "target-lesion")
            for i in target["item"]
            if i["linkId"] == "lesion-size"
        )
        return float(sum(sizes))

    best = min(earlier, key=total)  # min keeps the first of equal sums
    day: str = _answer(best, "imaging-date")["valueDate"]
    return day


def stored(form: Json, number: int) -> Json:
    """A form as the FHIR server returns it: with its id and server meta."""
    return {
        **form,
        "id": f"qr-{number}",
        "meta": {"versionId": "1", "lastUpdated": "2026-06-01T10:00:00.000+00:00"},
    }


def searchset(resources: Sequence[Json]) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {
                "fullUrl": f"https://fhir.example/QuestionnaireResponse/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


# -- the service, without I/O ----------------------------------------------------------------


class MemoryStore:
    """A :class:`~fhirnet.ports.FhirStore` holding the patient's forms, parsed once: the
    history search returns them, other searches (identifier look-ups) find nothing, a
    transaction is answered as created without doing anything."""

    def __init__(self, forms: Sequence[Json]) -> None:
        self.forms = list(forms)
        self.last: Json | None = None

    def read(self, resource_type: str, resource_id: str) -> Json | None:
        return None

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        if resource_type == "QuestionnaireResponse" and "subject" in params:
            return iter(self.forms)
        return iter(())

    def transaction(self, bundle: Json) -> Json:
        self.last = bundle
        return {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [
                {"resource": entry["resource"], "response": {"status": "201 Created"}}
                for entry in bundle["entry"]
            ],
        }


class NoLocks:
    """One process, one thread: nothing to exclude."""

    def hold(self, patients: Collection[str]) -> AbstractContextManager[None]:
        return nullcontext()


@dataclass(frozen=True)
class Case:
    """One patient with ``prior`` earlier exams and the next exam's form."""

    prior: int
    new: Json
    store: MemoryStore
    new_text: bytes
    history_text: bytes
    now: dt.datetime

    def service(self) -> Json:
        context = Context(store=self.store, catalog=CATALOG, locks=NoLocks(), now=self.now)
        submit(self.new, context)
        if self.store.last is None:
            raise RuntimeError("the service wrote nothing")
        return self.store.last

    def floor(self, loads: Callable[[bytes], Any], dumps: Callable[[Any], bytes]) -> None:
        loads(self.new_text)
        loads(self.history_text)
        dumps(self.bundle)

    @property
    def bundle(self) -> Json:
        if self.store.last is None:
            raise RuntimeError("run the service once first")
        return self.store.last


CATALOG: Final[Catalog] = load_catalog(DEFAULT_PROFILES_DIR)


def case(prior: int) -> Case:
    """The payloads for ``prior`` earlier exams, checked: every form valid without any issue,
    the submission accepted, the stored and submitted forms left as they were."""
    forms = series(prior + 1)
    last_day = dt.date.fromisoformat(_answer(forms[-1], "imaging-date")["valueDate"])
    now = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(9), dt.UTC)
    for form in forms:
        issues = list(validate_response(form, CATALOG, today=now.date()))
        if issues:
            raise RuntimeError(f"{form['id']} does not validate cleanly: {issues}")
    history = [stored(form, number) for number, form in enumerate(forms[:-1], 1)]
    history_text = json.dumps(searchset(history)).encode()
    result = Case(
        prior=prior,
        new=forms[-1],
        store=MemoryStore(history),
        new_text=json.dumps(forms[-1]).encode(),
        history_text=history_text,
        now=now,
    )
    new_text = result.new_text
    result.service()
    if json.dumps(searchset(result.store.forms)).encode() != history_text:
        raise RuntimeError("the service modified the stored forms")
    if json.dumps(result.new).encode() != new_text:
        raise RuntimeError("the service modified the submitted form")
    return result


def orjson_dumps(value: Any) -> bytes:
    if ORJSON is None:
        raise RuntimeError("orjson is not installed")
    dumped: bytes = ORJSON.dumps(value)
    return dumped


def orjson_loads(text: bytes) -> Any:
    if ORJSON is None:
        raise RuntimeError("orjson is not installed")
    return ORJSON.loads(text)


def json_dumps(value: Any) -> bytes:
    """As :meth:`fhirnet.adapters.fhir_client.FhirClient.transaction` sends a Bundle."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()


# -- steps of the pipeline, composed ---------------------------------------------------------


def steps(item: Case) -> dict[str, Callable[[], object]]:
    """The service's work split into steps, each run once (the service assesses twice)."""
    history = item.store.forms
    today = item.now.date()
    forms: list[ExamForm] = [extract_form(content_of(f)) for f in history]
    new_form = extract_form(content_of(item.new))
    timeline = [*forms, new_form]
    assessment = assess(assessment_request(timeline, new_form.criteria))
    results = exam_results(timeline, assessment)
    return {
        "validate the form": lambda: validate_response(item.new, CATALOG, today=today),
        "extract the form and the history": lambda: [
            extract_form(content_of(f)) for f in [*history, item.new]
        ],
        "assess (once)": lambda: assess(assessment_request(timeline, new_form.criteria)),
        "exam_results (once)": lambda: exam_results(timeline, assessment),
        "build the transaction": lambda: build_transaction(results[-1:], issued=item.now),
    }


# -- measuring -------------------------------------------------------------------------------


def sample(action: Callable[[], object]) -> int:
    started = time.perf_counter_ns()
    action()
    return time.perf_counter_ns() - started


Key = tuple[int, str]


def rounds(
    actions: Mapping[Key, Callable[[], object]], runs: int, warmup: int
) -> dict[Key, list[int]]:
    """Run every action once per round, in an order shuffled per round (seeded), ``warmup`` +
    ``runs`` rounds; the nanoseconds of the last ``runs`` rounds, aligned by round."""
    samples: dict[Key, list[int]] = {key: [] for key in actions}
    order = list(actions)
    rng = random.Random(0)  # noqa: S311 -- an order, not a secret
    gc.collect()
    for number in range(warmup + runs):
        rng.shuffle(order)
        taken = [(key, sample(actions[key])) for key in order]
        if number >= warmup:
            for key, ns in taken:
                samples[key].append(ns)
    return samples


@dataclass(frozen=True)
class Stat:
    median_ms: float
    p95_ms: float

    @classmethod
    def of(cls, ns: Sequence[int]) -> Stat:
        ordered = sorted(ns)
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        return cls(statistics.median(ordered) / 1e6, p95 / 1e6)

    def cell(self) -> str:
        return f"{self.median_ms:.3f} (p95 {self.p95_ms:.3f})"


def ratio(numerator: Sequence[int], denominator: Sequence[int]) -> float:
    """The median over rounds of one action's time over another's in the same round."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def peak_bytes(action: Callable[[], object]) -> int:
    """Peak of memory allocated by one call, beyond what was allocated before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        action()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def retained_bytes(action: Callable[[], object]) -> int:
    """Memory held by what one call returns."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = action()
        size = tracemalloc.get_traced_memory()[0] - before
        del kept
        return size
    finally:
        tracemalloc.stop()


# -- output ----------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def times(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:,.0f}x"


def kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB"


def machine() -> str:
    return (
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), Linux {platform.release()}, "
        f"{os.cpu_count()} CPUs, orjson {getattr(ORJSON, '__version__', 'not installed')}"
    )


def run(priors: Sequence[int], runs: int, warmup: int, *, freeze: bool) -> None:
    cases = [case(prior) for prior in priors]
    if freeze:
        gc.collect()
        gc.freeze()
    actions: dict[Key, Callable[[], object]] = {}
    step_names: list[str] = []
    for item in cases:
        actions[item.prior, "service"] = item.service
        if ORJSON is not None:
            actions[item.prior, "floor orjson"] = partial(item.floor, orjson_loads, orjson_dumps)
        actions[item.prior, "floor json"] = partial(item.floor, json.loads, json_dumps)
        composed = steps(item)
        step_names = list(composed)
        actions.update(((item.prior, name), action) for name, action in composed.items())
    samples = rounds(actions, runs, warmup)

    main_rows, step_rows, memory_rows = [], [], []
    for item in cases:
        prior = item.prior
        service = samples[prior, "service"]
        floors = [
            (Stat.of(samples[key]).cell(), times(ratio(service, samples[key])))
            if key in samples
            else ("n/a", "n/a")
            for key in ((prior, "floor orjson"), (prior, "floor json"))
        ]
        bundle = item.bundle
        main_rows.append(
            [
                str(prior),
                kib(len(item.new_text) + len(item.history_text)),
                f"{len(bundle['entry'])} / {kib(len(json_dumps(bundle)))}",
                Stat.of(service).cell(),
                floors[0][0],
                floors[1][0],
                floors[0][1],
                floors[1][1],
            ]
        )
        step_rows.append(
            [
                str(prior),
                *(
                    f"{Stat.of(samples[prior, name]).median_ms:.3f} "
                    f"({ratio(samples[prior, name], service):.0%})"
                    for name in step_names
                ),
                f"{Stat.of(service).median_ms:.3f}",
            ]
        )
        memory_rows.append(
            [
                str(prior),
                kib(peak_bytes(item.service)),
                kib(retained_bytes(partial(json.loads, item.history_text))),
                *(
                    kib(peak_bytes(actions[prior, name])) if (prior, name) in actions else "n/a"
                    for name in ("floor orjson", "floor json")
                ),
            ]
        )

    print(f"### One submission, {runs} rounds (+{warmup} warm-up), times in ms\n")
    print(
        table(
            [
                "prior exams",
                "JSON in (form + history)",
                "Bundle out (entries / JSON)",
                "service",
                "floor orjson",
                "floor json",
                "service / orjson",
                "service / json",
            ],
            main_rows,
        )
    )
    print(
        "\n### Steps composed from the public functions, medians in ms "
        "(the step's time over the service's, same round)\n"
    )
    print(table(["prior exams", *step_names, "service"], step_rows))
    print("\n### Peak memory of one submission (tracemalloc)\n")
    print(
        table(
            [
                "prior exams",
                "service",
                "the history as parsed JSON (held by the store, not in the service's peak)",
                "floor orjson",
                "floor json",
            ],
            memory_rows,
        )
    )
    frozen = f", gc.freeze() of {gc.get_freeze_count():,} objects" if freeze else ""
    print(f"\n{machine()}{frozen}")


def profile(prior: int, runs: int) -> None:
    item = case(prior)
    for _ in range(5):
        item.service()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        item.service()
    profiler.disable()
    print(f"cProfile of {runs} submissions with {prior} prior exams\n")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", type=int, nargs="+", default=list(PRIOR_EXAMS))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="10 rounds, 2 warm-up: a smoke run")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() before timing")
    parser.add_argument("--profile", type=int, metavar="PRIOR", help="cProfile this N instead")
    arguments = parser.parse_args()
    if arguments.profile is not None:
        profile(arguments.profile, 10 if arguments.quick else arguments.runs)
        return
    if arguments.quick:
        arguments.runs, arguments.warmup = 10, 2
    run(arguments.prior, arguments.runs, arguments.warmup, freeze=arguments.freeze)


if __name__ == "__main__":
    main()
