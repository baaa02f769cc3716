"""CPU of :func:`fhirnet.web.limits.check_json` against the precise walk alone (what it was before
the cheap pass), paired in one process on example bodies, printed as a table.

    .venv/bin/python -m bench.limits_bench
    .venv/bin/python -m bench.limits_bench --rounds 41 --batch 2000

Each body is decoded once, as the readers decode it. A round times one batch of each function
with :func:`time.thread_time`, the two in alternating order, and the figure is the median over
the rounds of new/old per round (pairing cancels most of a busy machine's drift).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fhirnet.web.limits import JsonLimits, _check_precisely, check_json, no_duplicate_keys

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BODIES = {
    "assessment (API)": EXAMPLES / "assessments" / "recist-1.1-small-bowel-net-prrt.json",
    "QuestionnaireResponse (FHIR)": EXAMPLES
    / "questionnaire-responses"
    / "small-bowel-net-prrt"
    / "01-2025-01-13-baseline.json",
}


def per_call(check: Callable[[Any, JsonLimits], None], body: Any, batch: int) -> float:
    """Thread CPU seconds per call, over one batch."""
    limits = JsonLimits()
    start = time.thread_time()
    for _ in range(batch):
        check(body, limits)
    return (time.thread_time() - start) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--batch", type=int, default=1000)
    arguments = parser.parse_args()
    print(f"python {platform.python_version()}, {arguments.rounds} rounds of {arguments.batch}")
    print(f"{'body':30} {'bytes':>6} {'old µs':>8} {'new µs':>8} {'new/old':>8}")
    for name, path in BODIES.items():
        raw = path.read_text(encoding="utf-8")
        body = json.loads(raw, object_pairs_hook=no_duplicate_keys)
        old_times: list[float] = []
        new_times: list[float] = []
        ratios: list[float] = []
        per_call(_check_precisely, body, arguments.batch)  # warm up
        per_call(check_json, body, arguments.batch)
        for round_ in range(arguments.rounds):
            if round_ % 2:
                new = per_call(check_json, body, arguments.batch)
                old = per_call(_check_precisely, body, arguments.batch)
            else:
                old = per_call(_check_precisely, body, arguments.batch)
                new = per_call(check_json, body, arguments.batch)
            old_times.append(old)
            new_times.append(new)
            ratios.append(new / old)
        print(
            f"{name:30} {len(raw.encode()):>6} {statistics.median(old_times) * 1e6:>8.1f} "
            f"{statistics.median(new_times) * 1e6:>8.1f} {statistics.median(ratios):>8.3f}"
        )


if __name__ == "__main__":
    main()
