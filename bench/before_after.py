"""Before and after, in one run on one machine: ``fhirnet serve`` of a base revision and of the
working tree, measured alternately (A B A B ...) so that the machine's load falls on both alike.

    .venv/bin/python -m bench.before_after                    # base 4fb72bf, 3 rounds of 30 s
    .venv/bin/python -m bench.before_after --rounds 1 --seconds 5      # smoke run
    .venv/bin/python -m bench.before_after --base <rev> --rounds 5 --seconds 60

**Sides.** ``before``: the base revision (default ``4fb72bf``, the commit before the CPU work of
issue 16) checked out with ``git worktree add --detach`` into a temporary directory (removed at
the end); ``after``: this checkout's working tree. Both run with *this* interpreter and its
installed libraries: only fhirnet's own code differs (the server is started from the side's
directory with it first on ``PYTHONPATH``). The load generator, the forms and the checks are
this checkout's (:mod:`bench.load_test`).

**Per round and side**, on a fresh server (embedded store, a fresh temporary data directory,
``FHIRNET_AUTH=none``, 127.0.0.1 only, gunicorn as ``fhirnet serve`` runs it with
``--workers`` x ``--threads``, default 2 x 1):

1. the reference forms (one client) and their categories checked, as in ``load_test``;
2. the submission load: ``--clients`` (16) clients for ``--seconds``, new forms, resubmissions
   and report searches as in ``load_test``, everything verified on the server afterwards
   (lost, duplicated, wrong category); submissions/s (new forms and resubmissions), p50 and p99
   of the submissions, and **CPU-seconds per submission**: utime + stime of the server's
   processes (``/proc/<pid>/stat``, master and workers) over the load, divided by the
   submissions (the searches' CPU is in it too: 0.2 searches per new form);
3. ``POST /api/v1/assessments`` with ``wrk`` (C load generator; ``apt-get install wrk`` on
   Debian/Ubuntu): ``--wrk-connections`` (16) connections, 2 threads, ``--seconds``, the body
   ``examples/assessments/recist-1.1-small-bowel-net-prrt.json``; requests/s, p50 and p99 and
   the non-2xx count (must be 0), and the machine's busy share meanwhile. Without ``wrk`` on
   the ``PATH`` this step is skipped with a message saying how to get it; the rest runs. With
   ``--api-first`` it runs first instead, as soon as ``/health`` answers: wrk's kept-alive
   connections are then made while the second worker may still be starting.

The order of the two sides alternates between rounds (before first in odd rounds). The table
shows the median over rounds per side and the median over rounds of the after/before ratio of
the same round. The exit status is 1 when any round had errors, lost, duplicated or wrongly
categorised forms, or non-2xx answers from wrk.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.load_test import (
    ROOT,
    cpu_seconds,
    free_port,
    load_series,
    machine_ticks,
    percentile,
    process_tree,
    reference,
    run_load,
    start_server,
    stop_server,
    wait_healthy,
)

DEFAULT_BASE = "4fb72bf"
ASSESSMENT = ROOT / "examples" / "assessments" / "recist-1.1-small-bowel-net-prrt.json"
WRK_HINT = "wrk not found: install it (Debian/Ubuntu: apt-get install -y wrk) to measure the API"
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
"""


@dataclass
class Sample:
    """One side's figures in one round."""

    submissions_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_ms_per_submission: float = 0.0
    server_cpu_per_s: float = 0.0
    busy: float = 0.0
    api_per_s: float | None = None
    api_p50_ms: float | None = None
    api_p99_ms: float | None = None
    api_cpu_ms_per_request: float | None = None
    api_busy: float | None = None
    failures: int = 0
    notes: list[str] = field(default_factory=list)


def base_worktree(base: str, into: Path) -> Path:
    """A detached worktree of ``base`` under ``into``."""
    path = into / "base"
    subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), base],  # noqa: S607
        check=True,
    )
    return path


def remove_worktree(path: Path) -> None:
    subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],  # noqa: S607
        check=False,
    )


def wrk_latency_ms(text: str, share: str) -> float | None:
    """A percentile of wrk's ``--latency`` distribution, in ms."""
    match = re.search(rf"^\s*{share}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        return None
    value, unit = float(match[1]), match[2]
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(port: int, server_pid: int, args: argparse.Namespace, sample: Sample) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        sample.notes.append(WRK_HINT)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT.format(body=ASSESSMENT))
    try:
        tree = process_tree(server_pid)
        before, machine_before = cpu_seconds(tree), machine_ticks()
        command = [wrk, "-t2", f"-c{args.wrk_connections}", f"-d{int(args.seconds)}s"]
        command += ["--latency", "-s", script.name, f"http://127.0.0.1:{port}/api/v1/assessments"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        after, machine_after = cpu_seconds(tree), machine_ticks()
    finally:
        os.unlink(script.name)
    text = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    if done.returncode != 0 or rate is None or total is None:
        sample.failures += 1
        sample.notes.append(f"wrk failed ({done.returncode}): {done.stderr.strip()[:200]}")
        return
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    if bad is not None:
        sample.failures += int(bad[1])
        sample.notes.append(f"wrk: {bad[1]} non-2xx answers")
    if errors is not None:
        sample.notes.append(f"wrk: {errors[0]}")
    sample.api_per_s = float(rate[1])
    sample.api_p50_ms = wrk_latency_ms(text, "50")
    sample.api_p99_ms = wrk_latency_ms(text, "99")
    cpu = sum(after[pid] - before.get(pid, 0.0) for pid in after if pid in before)
    sample.api_cpu_ms_per_request = cpu / max(1, int(total[1])) * 1000
    busy_ticks = machine_after[0] - machine_before[0]
    sample.api_busy = busy_ticks / max(1, machine_after[1] - machine_before[1])


def measure(root: Path, args: argparse.Namespace) -> Sample:
    """Start fhirnet from ``root``, load it, measure, stop it."""
    series = load_series()
    sample = Sample()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fhirnet-ab-") as tmp:
        server = start_server(port, Path(tmp), args.workers, args.threads, root=root)
        try:
            wait_healthy(port, server)
            if args.api_first and not args.no_wrk:  # as soon as one worker answers
                run_wrk(port, server.pid, args, sample)
            expected = reference(port, series)
            run = run_load(port, server.pid, series, expected, args)
            if not args.no_wrk and not args.api_first:
                run_wrk(port, server.pid, args, sample)
        finally:
            stop_server(server)
    latencies = sorted(
        run.merged.latencies.get("submit", []) + run.merged.latencies.get("resubmit", [])
    )
    cpu = sum(run.server_cpu.values())
    sample.submissions_per_s = run.submissions / run.elapsed
    sample.p50_ms = percentile(latencies, 50) * 1000 if latencies else 0.0
    sample.p99_ms = percentile(latencies, 99) * 1000 if latencies else 0.0
    sample.cpu_ms_per_submission = cpu / max(1, run.submissions) * 1000
    sample.server_cpu_per_s = cpu / run.elapsed
    sample.busy = run.busy
    sample.failures += run.failed
    sample.notes += (run.merged.errors + run.check.problems)[:5]
    return sample


ROWS = (
    ("submissions/s (16 clients)", "submissions_per_s", "{:.1f}"),
    ("submission p50 ms", "p50_ms", "{:.1f}"),
    ("submission p99 ms", "p99_ms", "{:.1f}"),
    ("server CPU ms per submission", "cpu_ms_per_submission", "{:.2f}"),
    ("server CPU-s per s", "server_cpu_per_s", "{:.2f}"),
    ("machine busy (all processes)", "busy", "{:.0%}"),
    ("POST /api/v1/assessments req/s (wrk)", "api_per_s", "{:.0f}"),
    ("  its p50 ms", "api_p50_ms", "{:.1f}"),
    ("  its p99 ms", "api_p99_ms", "{:.1f}"),
    ("  server CPU ms per request", "api_cpu_ms_per_request", "{:.2f}"),
    ("  machine busy (all processes)", "api_busy", "{:.0%}"),
)


def report(before: list[Sample], after: list[Sample]) -> str:
    lines = [
        "| measure | before (median) | after (median) | after / before (median of rounds) "
        "| rounds before | rounds after |",
        "|---|---|---|---|---|---|",
    ]
    for label, name, fmt in ROWS:
        old = [getattr(s, name) for s in before]
        new = [getattr(s, name) for s in after]
        if any(v is None for v in old + new):
            lines.append(f"| {label} | n/a | n/a | n/a | | |")
            continue
        ratios = [n / o for o, n in zip(old, new, strict=True) if o]
        ratio = f"{statistics.median(ratios):.2f}x" if ratios else "n/a"
        lines.append(
            f"| {label} | {fmt.format(statistics.median(old))} | "
            f"{fmt.format(statistics.median(new))} | {ratio} | "
            + ", ".join(fmt.format(v) for v in old)
            + " | "
            + ", ".join(fmt.format(v) for v in new)
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base", default=DEFAULT_BASE, help=f"the before revision [{DEFAULT_BASE}]"
    )
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds [3]")
    parser.add_argument("--seconds", type=float, default=30.0, help="per load phase [30]")
    parser.add_argument("--clients", type=int, default=16, help="submission clients [16]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers [2]")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker [1]")
    parser.add_argument("--wrk-connections", type=int, default=16, help="wrk connections [16]")
    parser.add_argument("--no-wrk", action="store_true", help="skip the API step")
    parser.add_argument(
        "--api-first",
        action="store_true",
        help="run the API step first, as soon as /health answers (connections made while a "
        "worker may still be starting)",
    )
    parser.add_argument("--resubmit", type=float, default=0.1, help="re-post chance [0.1]")
    parser.add_argument("--read", type=float, default=0.2, help="report search chance [0.2]")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds < 1 or args.clients < 1:
        parser.error("--rounds >= 1, --seconds >= 1, --clients >= 1")
    if not args.no_wrk and shutil.which("wrk") is None:
        print(WRK_HINT + "; the API step is skipped", file=sys.stderr)

    commit = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    before: list[Sample] = []
    after: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="fhirnet-before-") as tmp:
        base = base_worktree(args.base, Path(tmp))
        try:
            for number in range(args.rounds):
                sides = [("before", base, before), ("after", ROOT, after)]
                if number % 2:
                    sides.reverse()
                for name, root, samples in sides:
                    sample = measure(root, args)
                    samples.append(sample)
                    print(
                        f"round {number + 1} {name}: {sample.submissions_per_s:.1f} subm/s, "
                        f"p99 {sample.p99_ms:.1f} ms, {sample.cpu_ms_per_submission:.2f} CPU "
                        f"ms/subm, API {sample.api_per_s} req/s "
                        f"(machine {sample.api_busy or 0:.0%} busy), failures {sample.failures}"
                        + "".join(f"\n  {note}" for note in sample.notes),
                        file=sys.stderr,
                    )
        finally:
            remove_worktree(base)
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, Linux "
        f"{platform.release()}, CPython {platform.python_version()}; before = {args.base}, "
        f"after = {commit}{' + working tree changes' if dirty else ''}; {args.rounds} rounds "
        f"alternating, {args.seconds:g} s per phase; server {args.workers} worker(s) x "
        f"{args.threads} thread(s); {args.clients} submission clients, wrk "
        f"{args.wrk_connections} connections\n"
    )
    print(report(before, after))
    failed = sum(s.failures for s in before + after)
    print(f"\nfailures (errors, lost, duplicated, wrong category, non-2xx): {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
