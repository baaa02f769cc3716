"""Where a submission's time goes inside real ``fhirnet serve`` workers under load: py-spy samples
each gunicorn worker while :mod:`bench.load_test`'s clients submit, and the samples are summed per
function (self and inclusive shares).

    .venv/bin/pip download py-spy==0.4.3 --no-deps -d /tmp/py-spy   # bench only, not a dependency
    (cd /tmp/py-spy && python3 -m zipfile -e py_spy-*.whl .)   # the binary: *.data/scripts
    .venv/bin/python -m bench.profile_workers --py-spy /tmp/py-spy/py_spy-0.4.3.data/scripts/py-spy
    .venv/bin/python -m bench.profile_workers --root /path/to/other/checkout   # another revision
    .venv/bin/python -m bench.profile_workers --api   # wrk on POST /api/v1/assessments instead

The server is started as ``bench.load_test --workers 2 --threads 1`` starts it (fresh data
directory, 127.0.0.1, ``FHIRNET_AUTH=none``); after the reference forms, ``--clients`` clients
load it for ``--seconds`` and py-spy records every worker (``record --nonblocking --format raw``,
``--rate`` per second) from 2 s after the start until 2 s before the end. Nothing in fhirnet is
changed or enabled for this: py-spy reads the workers' memory from outside (it needs ptrace,
e.g. root or ``CAP_SYS_PTRACE``). py-spy counts samples of threads that are running, so a
function's share includes time it waits in C (a disk sync inside SQLite's COMMIT, say), not
only CPU.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.before_after import Sample, run_wrk
from bench.load_test import (
    ROOT,
    LoadRun,
    free_port,
    load_series,
    reference,
    run_load,
    start_server,
    stop_server,
    wait_healthy,
)

_LINE = re.compile(r":\d+\)$")


def workers_of(master: int) -> list[int]:
    """The gunicorn workers: children of the master, from ``/proc``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == master:
                found.append(int(entry.name))
    return found


def summary(paths: list[Path], top: int) -> str:
    """Self and inclusive shares of the functions in py-spy's raw (collapsed stack) files."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            samples = int(count)
            frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
            total += samples
            own[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples
    lines = [f"{total:,} samples", "", "| self | function |", "|---|---|"]
    lines += [f"| {n / total:.1%} | {name} |" for name, n in own.most_common(top)]
    lines += ["", "| inclusive | function |", "|---|---|"]
    lines += [f"| {n / total:.1%} | {name} |" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="the py-spy binary")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve [this]")
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration [20]")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients [16]")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers [2]")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker [1]")
    parser.add_argument("--rate", type=int, default=250, help="samples per second [250]")
    parser.add_argument("--top", type=int, default=30, help="functions listed [30]")
    parser.add_argument("--resubmit", type=float, default=0.1, help="re-post chance [0.1]")
    parser.add_argument("--read", type=float, default=0.2, help="report search chance [0.2]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--api",
        action="store_true",
        help="load POST /api/v1/assessments with wrk (as bench.before_after does) instead",
    )
    parser.add_argument("--wrk-connections", type=int, default=16, help="with --api [16]")
    args = parser.parse_args()
    if args.py_spy is None:
        parser.error("py-spy not found: see this module's docstring for how to get it")
    if args.seconds < 6:
        parser.error(
            "--seconds >= 6 (py-spy records from 2 s after the start to 2 s before the end)"
        )

    series = load_series()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fhirnet-profile-") as tmp:
        server = start_server(port, Path(tmp), args.workers, args.threads, root=args.root)
        try:
            wait_healthy(port, server)
            runs: list[LoadRun] = []
            api = Sample()
            if args.api:
                load = threading.Thread(target=run_wrk, args=(port, server.pid, args, api))
            else:
                expected = reference(port, series)
                load = threading.Thread(
                    target=lambda: runs.append(run_load(port, server.pid, series, expected, args))
                )
            load.start()
            load.join(2)
            outputs, spies = [], []
            for worker in workers_of(server.pid):
                output = Path(tmp) / f"py-spy-{worker}.txt"
                command = [
                    args.py_spy,
                    "record",
                    "-p",
                    str(worker),
                    "-d",
                    str(int(args.seconds - 4)),
                ]
                command += ["-r", str(args.rate), "-f", "raw", "-o", str(output), "--nonblocking"]
                spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))  # noqa: S603
                outputs.append(output)
            for spy in spies:
                spy.wait()
            load.join()
            profile = summary([path for path in outputs if path.exists()], args.top)
        finally:
            stop_server(server)
    if args.api:
        print(
            f"POST /api/v1/assessments: {api.api_per_s or 0:.0f} requests/s,"
            f" {api.api_cpu_ms_per_request or 0:.2f} ms server CPU per request"
            f" {' '.join(api.notes)}; {args.workers} worker(s) x {args.threads} thread(s),"
            f" wrk {args.wrk_connections} connections; served from {args.root}\n"
        )
        print(profile)
        return 0 if api.api_per_s else 1
    run = runs[0]
    print(
        f"{run.submissions / run.elapsed:.1f} submissions/s, "
        f"{sum(run.server_cpu.values()) / max(1, run.submissions) * 1000:.2f} ms server CPU per "
        f"submission, failures {run.failed}; {args.workers} worker(s) x {args.threads} thread(s), "
        f"{args.clients} clients, {run.elapsed:.1f} s; served from {args.root}\n"
    )
    print(profile)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
