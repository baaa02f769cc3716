"""Bounded load test of ``fhirnet serve`` on the embedded store, loopback only.

    .venv/bin/python -m bench.load_test                     # 16 clients, 60 s, the default server
    .venv/bin/python -m bench.load_test --seconds 5         # smoke run
    .venv/bin/python -m bench.load_test --workers 2 --threads 1

The script starts fhirnet itself on a free port of 127.0.0.1 with ``FHIRNET_AUTH=none`` and a
fresh temporary ``FHIRNET_DATA_DIR``, and never talks to anything but that loopback address.
Without ``--workers``/``--threads`` it runs ``python -m fhirnet.web.cli serve`` unchanged:
its default, one sync worker with one thread (``FHIRNET_WORKERS``/``FHIRNET_THREADS`` unset:
the script clears every ``FHIRNET_*`` variable it does not set). With either option it runs
the same gunicorn application (:func:`fhirnet.web.serving.gunicorn_options`, same logging) with
``workers`` and ``threads`` added (``threads`` > 1 makes gunicorn use its ``gthread`` worker).

**Warm-up and reference.** Before the clock starts, the three example patients' forms are posted
as they are (one client, in date order) and the categories of their reports read back: these are
the reference categories, checked against ``examples/questionnaire-responses/README.md``.

**Load.** ``--clients`` threads, each with its own keep-alive ``http.client`` connection, for
``--seconds``. A client works through synthetic patients of its own: iteration *i* of client *c*
takes the example series ``(c + i) mod 3``, replaces the example patient's id everywhere in the
forms (``subject``, the form's ``id`` and ``identifier`` value all derive from it) with
``lt-c<c>-i<i>-<series>``, and posts the forms in date order (``submit``: must answer 201). After
each submission, with probability ``--resubmit`` it re-posts one of that patient's forms already
answered (``resubmit``: must answer 200, writing nothing) and with probability ``--read`` it
searches the patient's reports (``read``: ``GET /fhir/DiagnosticReport?subject=...&_sort=-date``,
must answer 200). Any other status, or an exception, is an error. Latency is
``time.perf_counter`` around one request and its whole answer. Forms in flight when the time
runs out are completed; no new one starts.

**Verification** (after the load, against the server, not the clients' bookkeeping): every
synthetic patient's DiagnosticReports are searched (``_count=1000``, following ``next`` links) and
counted by their ``https://fhirnet.dev/fhir/sid/imaging-response-report`` identifier. *Lost*: a
form answered 201 or 200 without exactly one report; *duplicated*: an exam with more than one
report, or a report of an exam never answered; *wrong category*: a report whose category differs
from the reference's for the same exam of the same series. The exit status is 1 when errors,
lost, duplicated or wrong categories are not all zero.

**CPU.** The server's processes (gunicorn's master and workers) are sampled from ``/proc`` at
the start and end of the load: CPU seconds per wall second, next to the machine's busy share
(``/proc/stat``) and the load generator's own CPU (it shares the machine).
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES

ROOT = Path(__file__).resolve().parents[1]
FORMS_DIR = ROOT / "examples" / "questionnaire-responses"
REPORT_SYSTEM = "https://fhirnet.dev/fhir/sid/imaging-response-report"
FHIR_JSON = "application/fhir+json"
#: Categories of the example series, from ``examples/questionnaire-responses/README.md``.
EXPECTED = {
    "pancreatic-net-everolimus": ["baseline", "PR", "PR", "SD", "PD"],
    "small-bowel-net-prrt": ["baseline", "SD", "SD", "PR", "PR", "PR"],
    "g3-nec-immunotherapy": ["baseline", "baseline", "iUPD", "iSD", "iSD", "iPR"],
}
SHORT = {
    "pancreatic-net-everolimus": "pne",
    "small-bowel-net-prrt": "sbn",
    "g3-nec-immunotherapy": "g3n",
}
#: NCIt code of a response category → the category (``PR``, ``iUPD``...).
CATEGORIES = {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()}

# The server launched with workers/threads: fhirnet serve's own gunicorn options, plus those two.
LAUNCHER = """
import sys
from fhirnet.config import load_settings
from fhirnet.web.app import create_app
from fhirnet.web.serving import GunicornServer, gunicorn_options
settings = load_settings()
options = gunicorn_options(settings, host="127.0.0.1", port=int(sys.argv[1]))
options.update(workers=int(sys.argv[2]), threads=int(sys.argv[3]))
GunicornServer(create_app(settings), options).run()
"""


@dataclass
class Series:
    """One example patient: its id and its forms' JSON text in date order."""

    patient: str
    forms: list[str]

    def for_patient(self, patient: str) -> list[bytes]:
        # The example id appears only in the form's id, identifier value and subject.
        return [form.replace(self.patient, patient).encode() for form in self.forms]


@dataclass
class Results:
    """What one client saw; merged after the run."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    #: synthetic patient → (its series, exams answered 201/200, exams whose answer is unknown)
    patients: dict[str, tuple[str, list[str], list[str]]] = field(default_factory=dict)


def load_series() -> list[Series]:
    series = []
    for patient in EXPECTED:
        paths = sorted((FORMS_DIR / patient).glob("*.json"))
        series.append(Series(patient, [path.read_text(encoding="utf-8") for path in paths]))
        if len(paths) != len(EXPECTED[patient]):
            raise SystemExit(
                f"{patient}: {len(paths)} forms, README lists {len(EXPECTED[patient])}"
            )
    return series


def exam_of(form: bytes) -> str:
    value: str = json.loads(form)["identifier"]["value"]
    return value


class Client:
    """One keep-alive connection to the server (http.client reopens it after a close)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Accept": FHIR_JSON}
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
        try:
            self.connection.request(method, path, body=body, headers=headers)
            answer = self.connection.getresponse()
            return answer.status, answer.read()
        except Exception:
            self.connection.close()
            raise

    def timed(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        start = time.perf_counter()
        status, data = self.request(method, path, body)
        return status, data, time.perf_counter() - start


def reports_path(patient: str, count: int | None = None) -> str:
    path = f"/fhir/DiagnosticReport?subject={quote('Patient/' + patient, safe='')}&_sort=-date"
    return path if count is None else f"{path}&_count={count}"


def run_client(
    number: int, port: int, series: list[Series], deadline: float, args: argparse.Namespace
) -> Results:
    results = Results()
    client = Client(port)
    chance = random.Random(args.seed * 1000 + number)  # noqa: S311 - not crypto
    iteration = 0

    def call(kind: str, method: str, path: str, body: bytes | None, expected: int) -> bool:
        try:
            status, data, seconds = client.timed(method, path, body)
        except Exception as error:  # every failure is counted, none stops the run
            results.errors.append(f"{kind} {path}: {type(error).__name__}: {error}")
            return False
        results.latencies[kind].append(seconds)
        if status != expected:
            results.errors.append(f"{kind} {path}: {status} (expected {expected}) {data[:200]!r}")
            return False
        return True

    while time.perf_counter() < deadline:
        template = series[(number + iteration) % len(series)]
        patient = f"lt-c{number:02d}-i{iteration:04d}-{SHORT[template.patient]}"
        iteration += 1
        answered: list[str] = []
        unknown: list[str] = []
        results.patients[patient] = (template.patient, answered, unknown)
        sent: list[bytes] = []
        for form in template.for_patient(patient):
            if time.perf_counter() >= deadline:
                break
            exam = exam_of(form)
            if not call("submit", "POST", "/fhir/QuestionnaireResponse", form, 201):
                unknown.append(exam)
                break  # a follow-up needs its predecessors
            answered.append(exam)
            sent.append(form)
            if chance.random() < args.resubmit:
                call("resubmit", "POST", "/fhir/QuestionnaireResponse", chance.choice(sent), 200)
            if chance.random() < args.read:
                call("read", "GET", reports_path(patient), None, 200)
    client.connection.close()
    return results


def search_reports(client: Client, patient: str) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = []
    path: str | None = reports_path(patient, 1000)
    while path is not None:
        status, data = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {data[:200]!r}")
        bundle = json.loads(data)
        reports += [entry["resource"] for entry in bundle.get("entry", [])]
        path = None
        for link in bundle.get("link", []):
            if link.get("relation") == "next":
                parts = urlsplit(link["url"])
                path = f"{parts.path}?{parts.query}"
    return reports


def exam_and_category(report: dict[str, Any]) -> tuple[str, str]:
    values = [i["value"] for i in report.get("identifier", []) if i.get("system") == REPORT_SYSTEM]
    exam = values[0].rpartition("/")[2] if len(values) == 1 else f"?{report.get('id')}"
    codings = [c for concept in report.get("conclusionCode", []) for c in concept.get("coding", [])]
    category = next((CATEGORIES[c["code"]] for c in codings if c.get("code") in CATEGORIES), None)
    return exam, category or "baseline"


def categories_by_exam(client: Client, patient: str) -> tuple[Counter[str], dict[str, str]]:
    counts: Counter[str] = Counter()
    categories: dict[str, str] = {}
    for report in search_reports(client, patient):
        exam, category = exam_and_category(report)
        counts[exam] += 1
        categories[exam] = category
    return counts, categories


def reference(port: int, series: list[Series]) -> dict[str, list[str]]:
    """Post the examples as they are, one client, and read back each exam's category."""
    client = Client(port)
    found: dict[str, list[str]] = {}
    for template in series:
        forms = template.for_patient(template.patient)
        for form in forms:
            status, data = client.request("POST", "/fhir/QuestionnaireResponse", form)
            if status != 201:
                raise SystemExit(f"reference run: {template.patient}: {status} {data[:300]!r}")
        _, categories = categories_by_exam(client, template.patient)
        found[template.patient] = [categories.get(exam_of(form), "missing") for form in forms]
        if found[template.patient] != EXPECTED[template.patient]:
            raise SystemExit(
                f"reference run: {template.patient}: {found[template.patient]}, "
                f"README: {EXPECTED[template.patient]}"
            )
    client.connection.close()
    return found


@dataclass
class Verification:
    patients: int = 0
    answered: int = 0
    reports: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_category: int = 0
    problems: list[str] = field(default_factory=list)


def verify(port: int, patients: dict[str, tuple[str, list[str], list[str]]], series: list[Series],
           expected: dict[str, list[str]]) -> Verification:  # fmt: skip
    """Count each synthetic patient's reports on the server, by exam identifier."""
    check = Verification()
    client = Client(port)
    templates = {template.patient: template for template in series}
    for patient, (template, answered, unknown) in sorted(patients.items()):
        check.patients += 1
        check.answered += len(answered)
        counts, categories = categories_by_exam(client, patient)
        check.reports += sum(counts.values())
        exams = [exam_of(form) for form in templates[template].for_patient(patient)]
        for exam in answered:
            if counts[exam] == 0:
                check.lost += 1
                check.problems.append(f"lost: {patient} {exam}")
            elif counts[exam] > 1:
                check.duplicated += counts[exam] - 1
                check.problems.append(f"duplicated: {patient} {exam} x{counts[exam]}")
            want = expected[template][exams.index(exam)]
            if counts[exam] and categories[exam] != want:
                check.wrong_category += 1
                check.problems.append(f"category: {patient} {exam} {categories[exam]} != {want}")
        for exam, count in counts.items():
            if exam in answered:
                continue
            if exam in unknown:  # its POST failed or timed out: a report may or may not exist
                if count > 1:
                    check.duplicated += count - 1
                    check.problems.append(f"duplicated: {patient} {exam} x{count}")
                continue
            check.duplicated += count
            check.problems.append(f"report of an exam never answered: {patient} {exam} x{count}")
    client.connection.close()
    return check


# --- server process -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(
    port: int, data_dir: Path, workers: int | None, threads: int | None, root: Path = ROOT
) -> subprocess.Popen[bytes]:
    """Start fhirnet from the checkout ``root`` (another one: its own ``fhirnet`` package is
    imported, first on ``PYTHONPATH``, with this interpreter and its installed libraries)."""
    # Only these FHIRNET_* variables: the embedded store, always, and fhirnet serve's defaults.
    env = {name: value for name, value in os.environ.items() if not name.startswith("FHIRNET_")}
    env |= {"FHIRNET_AUTH": "none", "FHIRNET_DATA_DIR": str(data_dir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    if workers is None and threads is None:
        command = [sys.executable, "-m", "fhirnet.web.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, "-c", LAUNCHER, str(port), str(workers or 1), str(threads or 1)]
    log = (data_dir / "server.log").open("wb")  # the app logs every request (JSON lines)
    return subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log)  # noqa: S603


def wait_healthy(port: int, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            status, _ = Client(port).request("GET", "/health")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become healthy")


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from ``/proc/<pid>/stat``."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return seconds


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


# --- report ---------------------------------------------------------------------------------


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-len(ordered) * share // 100))
    return ordered[int(rank) - 1]


def table(latencies: dict[str, list[float]], seconds: float) -> str:
    lines = [
        "| request | count | per second | p50 ms | p90 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    kinds = [kind for kind in ("submit", "resubmit", "read") if latencies.get(kind)]
    every = [value for kind in kinds for value in latencies[kind]]
    for kind, values in [*((kind, latencies[kind]) for kind in kinds), ("all", every)]:
        ordered = sorted(values)
        if not ordered:
            continue
        cells = [percentile(ordered, p) * 1000 for p in (50, 90, 95, 99)] + [ordered[-1] * 1000]
        lines.append(
            f"| {kind} | {len(ordered):,} | {len(ordered) / seconds:.1f} | "
            + " | ".join(f"{cell:.1f}" for cell in cells)
            + " |"
        )
    return "\n".join(lines)


@dataclass
class LoadRun:
    """One load phase against a running server, and its verification."""

    elapsed: float
    merged: Results
    check: Verification
    #: CPU-seconds of each server process over the load.
    server_cpu: dict[int, float]
    client_cpu: float
    #: Share of the machine's CPU time that was busy (all processes).
    busy: float

    @property
    def submissions(self) -> int:
        latencies = self.merged.latencies
        return len(latencies.get("submit", [])) + len(latencies.get("resubmit", []))

    @property
    def failed(self) -> int:
        check = self.check
        return len(self.merged.errors) + check.lost + check.duplicated + check.wrong_category


def run_load(
    port: int,
    server_pid: int,
    series: list[Series],
    expected: dict[str, list[str]],
    args: argparse.Namespace,
) -> LoadRun:
    """``args.clients`` clients for ``args.seconds`` against the server on ``port``, its CPU
    from ``/proc`` (the process tree of ``server_pid``), then the verification on the server."""
    tree = process_tree(server_pid)
    cpu_before, machine_before = cpu_seconds(tree), machine_ticks()
    client_before = os.times()
    start = time.perf_counter()
    deadline = start + args.seconds
    merged = Results()
    lock = threading.Lock()

    def worker(number: int) -> None:
        results = run_client(number, port, series, deadline, args)
        with lock:
            for kind, values in results.latencies.items():
                merged.latencies[kind] += values
            merged.errors += results.errors
            merged.patients.update(results.patients)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    cpu_after, machine_after = cpu_seconds(tree), machine_ticks()
    client_after = os.times()
    check = verify(port, merged.patients, series, expected)
    busy = (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])
    server_cpu = {
        pid: cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after if pid in cpu_before
    }
    client_cpu = (client_after.user + client_after.system) - (
        client_before.user + client_before.system
    )
    return LoadRun(elapsed, merged, check, server_cpu, client_cpu, busy)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration [60]")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients [16]")
    parser.add_argument("--workers", type=int, help="gunicorn workers [fhirnet serve's: 1]")
    parser.add_argument("--threads", type=int, help="gunicorn threads per worker [1]")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address only")
    parser.add_argument("--resubmit", type=float, default=0.1, help="re-post chance [0.1]")
    parser.add_argument("--read", type=float, default=0.2, help="report search chance [0.2]")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback or args.host != "127.0.0.1":
        parser.error("the load test only targets 127.0.0.1")
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients >= 1 and --seconds > 0")

    series = load_series()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fhirnet-load-") as tmp:
        server = start_server(port, Path(tmp), args.workers, args.threads)
        try:
            wait_healthy(port, server)
            expected = reference(port, series)
            print(f"reference categories (single client): {expected}", file=sys.stderr)
            run = run_load(port, server.pid, series, expected, args)
        finally:
            stop_server(server)

    merged, check, elapsed, server_cpu = run.merged, run.check, run.elapsed, run.server_cpu
    new_forms = len(merged.latencies.get("submit", []))
    submissions = run.submissions
    total = sum(len(values) for values in merged.latencies.values())
    worker_setting = (
        "fhirnet serve default (gunicorn 1 sync worker, 1 thread)"
        if args.workers is None and args.threads is None
        else f"{args.workers or 1} worker(s) x {args.threads or 1} thread(s)"
    )
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, Linux "
        f"{platform.release()}, CPython {platform.python_version()}; server: {worker_setting}; "
        f"{args.clients} clients for {elapsed:.1f} s (requested {args.seconds:g} s)\n"
    )
    print(table(merged.latencies, elapsed))
    print(
        f"\nthroughput: {total / elapsed:.1f} requests/s, "
        f"{submissions / elapsed:.1f} submissions/s (new forms {new_forms / elapsed:.1f}/s)\n"
        f"errors: {len(merged.errors)}; verified on the server: {check.patients} patients, "
        f"{check.answered} forms answered, {check.reports} reports; lost {check.lost}, "
        f"duplicated {check.duplicated}, wrong category {check.wrong_category}\n"
        f"CPU during the load (CPU-seconds per second): server "
        + ", ".join(f"pid {pid} {sec / elapsed:.2f}" for pid, sec in sorted(server_cpu.items()))
        + f" (total {sum(server_cpu.values()) / elapsed:.2f}); load generator "
        f"{run.client_cpu / elapsed:.2f}; machine busy {run.busy:.0%} of {os.cpu_count()} CPUs"
    )
    for line in (merged.errors + check.problems)[:20]:
        print(f"  {line}", file=sys.stderr)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
