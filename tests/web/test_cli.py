"""``fhirnet assess`` gives the API's bodies offline (stdout + exit 0, or the same error body on
stderr + exit 2), ``fhirnet serve`` runs the API under gunicorn with Settings' address, and
``fhirnet demo`` submits the example forms to it and prints the categories written."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from fhirnet.adapters.outbox import SqliteOutbox
from fhirnet.adapters.pg_outbox import PostgresOutbox
from fhirnet.config import Settings
from fhirnet.criteria.models import Criteria
from fhirnet.ports import Kind, Outbox, State
from fhirnet.web.cli import main
from fhirnet.web.serving import gunicorn_options
from tests.servers import free_port, serving, socket_inodes, tcp_sockets

REPO_ROOT = Path(__file__).parents[2]
URL = "/api/v1/assessments"
CLI = [sys.executable, "-m", "fhirnet.web.cli"]

ValidBody = Callable[..., dict[str, Any]]


def invalid_bodies(valid_body: ValidBody) -> dict[str, str]:
    """Bodies the API refuses with 422, one per way of being wrong."""
    structural = valid_body()
    structural["criteria"] = "recist-2"
    structural["timepoints"][0]["targets"][0]["diameterMm"] = "12"
    domain_rule = valid_body()
    domain_rule["timepoints"][1]["targets"][0]["diameterMm"] = 9.0  # RECIST: non-nodal >= 10 mm
    return {
        "structural": json.dumps(structural),
        "criteria rule": json.dumps(domain_rule),
        "malformed JSON": '{"criteria": ',
    }


def api_answer(client: FlaskClient, body: str) -> tuple[int, Any]:
    response = client.post(URL, data=body, content_type="application/json")
    return response.status_code, response.get_json()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("criteria", [c.value for c in Criteria])
def test_assess_prints_the_apis_response_and_exits_0(
    runner: CliRunner,
    client: FlaskClient,
    valid_body: ValidBody,
    tmp_path: Path,
    criteria: str,
) -> None:
    body = json.dumps(valid_body(criteria, pre_baseline=True))
    request_file = tmp_path / "request.json"
    request_file.write_text(body)

    result = runner.invoke(main, ["assess", str(request_file)])

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == api_answer(client, body)[1]
    assert result.stdout.startswith("{\n  ")  # indented for people
    assert result.stderr == ""


def test_assess_reads_stdin_when_the_file_is_a_dash(
    runner: CliRunner, client: FlaskClient, valid_body: ValidBody
) -> None:
    body = json.dumps(valid_body())

    result = runner.invoke(main, ["assess", "-"], input=body)

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == api_answer(client, body)[1]


@pytest.mark.parametrize("kind", ["structural", "criteria rule", "malformed JSON"])
def test_invalid_input_exits_2_with_the_apis_error_body_on_stderr(
    runner: CliRunner, client: FlaskClient, valid_body: ValidBody, kind: str
) -> None:
    body = invalid_bodies(valid_body)[kind]

    result = runner.invoke(main, ["assess", "-"], input=body)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert api_answer(client, body) == (422, json.loads(result.stderr))


def test_assess_runs_as_a_real_process(valid_body: ValidBody, tmp_path: Path) -> None:
    valid = tmp_path / "valid.json"
    valid.write_text(json.dumps(valid_body("choi")))

    done = subprocess.run(
        [*CLI, "assess", str(valid)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["criteria"] == "choi"


def test_invalid_input_exits_2_as_a_real_process(
    client: FlaskClient, valid_body: ValidBody
) -> None:
    body = invalid_bodies(valid_body)["structural"]

    done = subprocess.run(
        [*CLI, "assess", "-"], input=body, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert api_answer(client, body) == (422, json.loads(done.stderr))


def test_a_missing_file_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["assess", str(tmp_path / "absent.json")])

    assert result.exit_code == 2
    assert "absent.json" in result.stderr


def test_a_bad_setting_is_reported_by_variable_name(runner: CliRunner) -> None:
    result = runner.invoke(main, ["serve"], env={"FHIRNET_PORT": "eighty"})

    assert result.exit_code == 1
    assert "FHIRNET_PORT" in result.stderr


def test_version_is_the_package_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])

    assert result.exit_code == 0
    assert "0.1.0" in result.stdout


@pytest.mark.parametrize(
    ("settings", "host", "port", "bind"),
    [
        (Settings(), None, None, "127.0.0.1:8080"),
        (Settings(host="0.0.0.0", port=9000), None, None, "0.0.0.0:9000"),  # noqa: S104
        (Settings(), "localhost", 8081, "localhost:8081"),
        (Settings(host="::1"), None, None, "[::1]:8080"),
    ],
    ids=["defaults", "from settings", "options override settings", "IPv6 in brackets"],
)
def test_serve_binds_the_address_from_settings_unless_overridden(
    settings: Settings, host: str | None, port: int | None, bind: str
) -> None:
    options = gunicorn_options(settings, host=host, port=port)

    assert options["bind"] == bind
    assert options["control_socket_disable"] is True


def test_serve_runs_the_configured_workers_and_threads() -> None:
    options = gunicorn_options(Settings(auth="none", workers=3, threads=4))

    assert (options["workers"], options["threads"]) == (3, 4)


def test_serve_defaults_to_threaded_workers_with_timeouts() -> None:
    options = gunicorn_options(Settings(auth="none"))

    assert options["worker_class"] == "gthread"
    assert (options["workers"], options["threads"]) == (2, 8)
    assert (options["timeout"], options["keepalive"]) == (30, 5)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``fhirnet serve`` on a free port with a 2000-byte body limit; stopped after the tests."""
    port = free_port()
    env = {
        **os.environ,
        "FHIRNET_PORT": str(port),
        "FHIRNET_MAX_BODY_BYTES": "2000",
        "FHIRNET_AUTH": "none",
    }
    log_path = tmp_path_factory.mktemp("serve") / "gunicorn.log"
    with serving([*CLI, "serve"], port=port, env=env, log_path=log_path) as server:
        yield port, server


def test_serve_answers_health_on_the_configured_port(
    served: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, _ = served
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        assert json.load(response) == {"status": "ok", "version": "0.1.0"}


@pytest.mark.parametrize("chunked", [False, True], ids=["Content-Length", "chunked"])
def test_serve_refuses_a_body_over_the_limit_with_413(
    served: tuple[int, subprocess.Popen[bytes]], chunked: bool
) -> None:
    port, _ = served
    body = b"[" + b" " * 5000 + b"]"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        # An iterable body without Content-Length is sent with Transfer-Encoding: chunked.
        payload: Any = iter([body[:2500], body[2500:]]) if chunked else body
        connection.request("POST", URL, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 413
    assert set(answer["errors"]) == {"$"}


def test_serve_spreads_kept_alive_connections_over_its_workers(
    served: tuple[int, subprocess.Popen[bytes]],
) -> None:
    """Each worker accepts on its own socket (SO_REUSEPORT) and the kernel spreads connections
    over them; on one shared socket one of the two workers could hold every kept-alive client.
    (The kernel spreads by a hash of the addresses: all 16 landing on one worker has a chance of
    2 in 65,536.)"""
    port, server = served
    workers = _listening_workers(server.pid, port)
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(16)]
    try:
        for client in clients:
            client.request("GET", "/health")
            response = client.getresponse()
            response.read()
            assert response.status == 200
        accepted = _accepted_sockets(port, {client.sock.getsockname()[1] for client in clients})
        held = {pid: len(socket_inodes(pid) & accepted) for pid in workers}
    finally:
        for client in clients:
            client.close()

    assert sum(held.values()) == 16
    assert all(held.values()), held


def test_serve_refuses_a_port_another_server_listens_on(tmp_path: Path) -> None:
    """Sockets shared with SO_REUSEPORT would let a second server split the first one's
    connections; ``fhirnet serve`` checks the address is free before its workers bind it."""
    port = free_port()
    env = {**os.environ, "FHIRNET_PORT": str(port), "FHIRNET_AUTH": "none"}
    env["FHIRNET_DATA_DIR"] = str(tmp_path)
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as fhirnet's workers bind
        other.bind(("127.0.0.1", port))
        other.listen()
        done = subprocess.run(
            [*CLI, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    assert done.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stderr


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _accepted_sockets(port: int, client_ports: set[int]) -> set[int]:
    """The inodes of the server's ends of the connections from ``client_ports``."""
    return {
        found.inode
        for found in tcp_sockets()
        if found.local_port == port and found.remote_port in client_ports and found.state == "01"
    }


def _listening_workers(master: int, port: int, seconds: float = 30) -> list[int]:
    """The master's workers once each listens on ``port`` (they bind as they start)."""
    deadline = time.monotonic() + seconds
    while True:
        listening = {
            found.inode
            for found in tcp_sockets()
            if (found.local_port, found.state) == (port, "0A")
        }
        workers = [pid for pid in _children(master) if socket_inodes(pid) & listening]
        if len(workers) == 2 or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


#: The patients of ``examples/questionnaire-responses/`` and their JSON assessment examples,
#: which hold the same measurements (``examples/questionnaire-responses/README.md``).
DEMO_PATIENTS = {
    "g3-nec-immunotherapy": "irecist-g3-nec-immunotherapy.json",
    "pancreatic-net-everolimus": "choi-pancreatic-net-everolimus.json",
    "small-bowel-net-prrt": "recist-1.1-small-bowel-net-prrt.json",
}


def run_demo(data_dir: Path, port: int, **variables: str) -> str:
    """``fhirnet demo --once`` (``make run``'s command) on ``data_dir``; its standard output.

    :param variables: more ``FHIRNET_*`` variables (without the prefix).
    """
    env = {**os.environ, "FHIRNET_DATA_DIR": str(data_dir)}
    env.pop("FHIRNET_FHIR_BASE_URL", None)
    env |= {f"FHIRNET_{name}": value for name, value in variables.items()}
    done = subprocess.run(
        [*CLI, "demo", "--port", str(port), "--once"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def patient_section(output: str, patient: str) -> str:
    """The lines the demo prints for one patient."""
    return output.split(f"\n{patient}\n", 1)[1].split("\n\n", 1)[0]


def test_demo_submits_the_example_forms_over_http_and_prints_the_reports_categories(
    tmp_path: Path,
) -> None:
    """Every form goes through ``POST /fhir/QuestionnaireResponse`` on the embedded store, and
    each exam's DiagnosticReport concludes what the assessment API computes for the same data."""
    port = free_port()
    output = run_demo(tmp_path / "data", port)

    assert (tmp_path / "data" / "fhirnet-store.sqlite3").is_file()
    assert "writing to the embedded store" in output
    for patient, example in DEMO_PATIENTS.items():
        section = patient_section(output, patient)
        expected = main_output(REPO_ROOT / "examples" / "assessments" / example)
        assert f"{expected['baselineDate']}  baseline  final, written" in section
        request = json.loads((REPO_ROOT / "examples" / "assessments" / example).read_text())
        for scan in request["timepoints"]:
            if scan.get("role") == "pre-baseline":  # stored, not assessed (criteria.md §7)
                assert f"{scan['date']}  pre-baseline  final, written" in section
        for timepoint in expected["timepoints"]:
            assert f"{timepoint['date']}  {timepoint['overallResponse']:<6}  final, written" in (
                section
            )
        reports = f"http://127.0.0.1:{port}/fhir/DiagnosticReport?subject=Patient/{patient}"
        assert f"reports: {reports}&_sort=-date" in section
        base = f"http://127.0.0.1:{port}"
        assert f"next follow-up, pre-filled: {base}/crf?patient={patient}" in section
        assert f"timeline: {base}/crf/timeline?patient={patient}" in section
    discordant = patient_section(output, "small-bowel-net-prrt").split("2025-07-14", 1)[1]
    assert discordant.split("\n")[1].startswith("      warning: Discordant")


def test_running_the_demo_again_writes_nothing_new(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "data", free_port())
    again = run_demo(tmp_path / "data", free_port())

    assert "written" in first
    assert ", written:" not in again
    for patient in DEMO_PATIENTS:
        assert exams(patient_section(again, patient)) == exams(patient_section(first, patient))


def test_with_an_external_fhir_server_that_is_down_the_demo_says_each_form_is_queued(
    tmp_path: Path,
) -> None:
    """Nothing listens at FHIRNET_FHIR_BASE_URL: every form is kept in the outbox and answered
    202 with its status URL, which the demo prints instead of a category."""
    nobody = f"http://127.0.0.1:{free_port()}/fhir"
    output = run_demo(
        tmp_path / "data",
        free_port(),
        FHIR_BASE_URL=nobody,
        FHIR_CONNECT_TIMEOUT="1",
        DELIVERY_BACKOFF="60",  # one probe of the absent server, then every form is queued
    )

    forms = sorted((REPO_ROOT / "examples" / "questionnaire-responses").glob("*/*.json"))
    assert output.count("202 accepted, queued for delivery; status: http") == len(forms), output
    assert (tmp_path / "data" / "outbox.sqlite3").is_file()


def exams(section: str) -> list[list[str]]:
    """Date and category of each exam line of a patient's section."""
    return [line.split()[:2] for line in section.splitlines() if line.strip()[:1].isdigit()]


def main_output(path: Path) -> dict[str, Any]:
    """What ``fhirnet assess`` prints for an example, parsed."""
    result = CliRunner().invoke(main, ["assess", str(path)])
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.output)
    return body


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Outbox, str]]:
    """An outbox of each backend and the ``FHIRNET_DATABASE_URL`` that points fhirnet at it
    (empty: the SQLite file in the data directory)."""
    if request.param == "sqlite":
        yield SqliteOutbox(tmp_path / "data" / "outbox.sqlite3"), ""
        return
    database_url: str = request.getfixturevalue("fresh_database_url")
    yield PostgresOutbox(database_url), database_url


def test_outbox_counts_the_submissions_and_lists_the_failed_and_queued_ones(
    tmp_path: Path, outbox_backend: tuple[Outbox, str]
) -> None:
    box, database_url = outbox_backend
    try:
        added = [
            box.add(
                kind=Kind.FORM,
                body={"resourceType": "QuestionnaireResponse", "id": f"qr-{n}"},
                patients={f"p{n}"},
                requester="api-key-1",
                now=1_800_000_000.0 + n,
            )
            for n in range(3)
        ]
        delivered, failed, queued = added
        answer = {"response": {"status": "201 Created", "location": "DiagnosticReport/r1"}}
        box.finish(delivered.seq, state=State.DELIVERED, answer=answer, now=1_800_000_100.0)
        refused = {"response": {"status": "502 Bad Gateway", "outcome": {"issue": []}}}
        box.finish(failed.seq, state=State.FAILED, answer=refused, now=1_800_000_100.0)
        box.retry_later(queued.seq, at=1_800_000_200.0, error="FhirServerUnavailableError")
    finally:
        box.close()
    env = {"FHIRNET_DATA_DIR": str(tmp_path / "data"), "FHIRNET_AUTH": "none"}
    if database_url:
        env["FHIRNET_DATABASE_URL"] = database_url

    listed = CliRunner().invoke(main, ["outbox"], env=env)
    everything = CliRunner().invoke(main, ["outbox", "--state", "delivered"], env=env)

    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].endswith(": 1 queued, 1 delivered, 1 failed")
    if database_url:  # where it is, never with its password
        assert lines[0].startswith("postgresql://127.0.0.1:5432/")
        password = database_url.split("@")[0].rsplit(":", 1)[1]
        assert password not in listed.output
    else:
        assert lines[0].endswith("outbox.sqlite3: 1 queued, 1 delivered, 1 failed")
    assert lines[1].startswith(f"{failed.id}  failed     accepted 2027-01-15T08:00:01+00:00")
    assert lines[1].endswith("by api-key-1  form  attempts 1  502 Bad Gateway")
    assert lines[2].startswith(f"{queued.id}  queued")
    assert lines[2].endswith("attempts 1  FhirServerUnavailableError")
    assert len(lines) == 3
    assert everything.output.splitlines()[1].startswith(f"{delivered.id}  delivered")


def test_outbox_without_an_outbox_file_says_so(tmp_path: Path) -> None:
    nothing = CliRunner().invoke(
        main, ["outbox"], env={"FHIRNET_DATA_DIR": str(tmp_path), "FHIRNET_AUTH": "none"}
    )

    assert nothing.exit_code == 1
    assert "no outbox at" in nothing.output
