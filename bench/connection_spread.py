"""Whether new connections reach every worker: a base revision's ``fhirnet serve`` and the working
tree's, each started once per round, then wrk started ``--runs`` times on it (16 fresh kept-alive
connections each time, ``POST /api/v1/assessments``), counting the runs in which one worker
served everything: the machine about half busy instead of fully.

    .venv/bin/python -m bench.connection_spread --base 938adf1            # 3 rounds x 6 runs
    .venv/bin/python -m bench.connection_spread --base 938adf1 --rounds 5 --runs 10 --seconds 2

Servers as :mod:`bench.before_after` starts them (2 workers x 1 thread), each run after the
first starting on a server whose workers are all up (a 3 s pause after ``/health``). The sides
alternate which goes first. A run counts as one worker's when the machine was less than 70 %
busy (two workers on 2 CPUs keep it at 97-100 %).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.before_after import Sample, base_worktree, remove_worktree, run_wrk
from bench.load_test import ROOT, free_port, start_server, stop_server, wait_healthy

ONE_WORKER_BELOW = 0.7


def runs_on_one_server(root: Path, args: argparse.Namespace) -> list[Sample]:
    port = free_port()
    samples = []
    with tempfile.TemporaryDirectory(prefix="fhirnet-spread-") as tmp:
        server = start_server(port, Path(tmp), 2, 1, root=root)
        try:
            wait_healthy(port, server)
            time.sleep(3)
            for _ in range(args.runs):
                sample = Sample()
                run_wrk(port, server.pid, args, sample)
                samples.append(sample)
        finally:
            stop_server(server)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the before revision")
    parser.add_argument("--rounds", type=int, default=3, help="servers per side [3]")
    parser.add_argument("--runs", type=int, default=6, help="wrk runs per server [6]")
    parser.add_argument("--seconds", type=float, default=3.0, help="per wrk run [3]")
    parser.add_argument("--wrk-connections", type=int, default=16, help="[16]")
    args = parser.parse_args()
    found: dict[str, list[Sample]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="fhirnet-before-") as tmp:
        base = base_worktree(args.base, Path(tmp))
        try:
            for number in range(args.rounds):
                sides = [("before", base), ("after", ROOT)]
                for name, root in reversed(sides) if number % 2 else sides:
                    samples = runs_on_one_server(root, args)
                    found[name] += samples
                    print(
                        f"round {number + 1} {name}: "
                        + ", ".join(
                            f"{s.api_busy or 0:.0%} busy {s.api_per_s or 0:.0f}/s" for s in samples
                        ),
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            remove_worktree(base)
    print(f"\nbefore = {args.base}, after = this working tree\n")
    print("| side | wrk runs served by one worker | requests/s of the others (median) |")
    print("|---|---|---|")
    for name, samples in found.items():
        both = [s.api_per_s or 0.0 for s in samples if (s.api_busy or 0) >= ONE_WORKER_BELOW]
        median = f"{statistics.median(both):.0f}" if both else "n/a"
        print(f"| {name} | {len(samples) - len(both)} of {len(samples)} | {median} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
