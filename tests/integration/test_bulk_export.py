"""Bulk Data export against a running ``fhirnet serve`` (two gunicorn workers, API-key tokens):
the kick-off, status, cancel, manifest and download flow over real HTTP, every kick-off
parameter, gzip, and expiry (``FHIRNET_EXPORT_EXPIRY=2``), on the multicenter trial scenario
(tests/trials_scenario.py): its enrolment Group exports exactly its eight subjects. The export
runs in a thread of the worker that got the kick-off; the polls, on fresh connections, land on
either worker (the job's state is in SQLite).

The last test runs the export use case against the real FHIR server of the integration suite
(``fhir_base_url``, marked ``integration``): paged searches over HTTP.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from bench.bulk_export import write_study
from fhirnet.adapters.export_jobs import ExportJobs, JobStatus
from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.locks import FileLocks
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.fhir.audit import patients_of
from fhirnet.fhir.bulk_parameters import Level, export_request
from fhirnet.fhir.profiles import load_catalog
from fhirnet.fhir.subsetting import SUBSETTED
from fhirnet.services.audits import AuditTrail
from fhirnet.services.bulk_export import group_members, plan_export, run_export
from fhirnet.services.context import Context
from fhirnet.web.app import create_app
from tests import trials_scenario as scenario
from tests.servers import free_port, serving

KEY = "bulk-key-0123456789abcdef"
SECRET = "trial-secret-0123456789abcdef-0123456789"  # noqa: S105 -- a test study's
OTHER = "other-key-0123456789abcdef"
STUDY_ID = "NET-TRIAL-1"
PREFIX = "trial"
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


def headers(key: str = KEY, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **more}


def played_data_dir(data_dir: Path) -> str:
    """The trial scenario played into ``data_dir`` in-process; its enrolment Group's id."""
    store = EmbeddedStore.open(data_dir)
    app = create_app(Settings(data_dir=data_dir, auth="none"), store=store, durable=False)
    app.config["TESTING"] = True
    scenario.run(app.test_client(), STUDY_ID, PREFIX)
    write_study(store, 2, 1, prefix="outsider")  # another Group's patients, never exported
    (group,) = [g for g in store.search("Group", {}) if "outsider" not in json.dumps(g)]
    store.close()
    return str(group["id"])


class Server:
    def __init__(self, url: str, group: str, data_dir: Path) -> None:
        self.url = url
        self.group = group
        self.data_dir = data_dir

    def pseudonymized_token(self) -> str:
        """A token of a bulk client registered for pseudonymized access to the trial, signed
        with the server's own key as its token endpoint signs them (the token endpoint itself,
        with a client assertion, is tested with it)."""
        key = bytes.fromhex((self.data_dir / "token-key").read_text().strip())
        now = int(time.time())
        claims = {
            "iss": "urn:fhirnet:token-endpoint",
            "sub": "registry",
            "client_id": "registry",
            "scope": "system/*.rs",
            "pseudonymized_study": STUDY_ID,
            "iat": now,
            "exp": now + 300,
            "jti": f"bulk-{now}",
        }
        return jwt.encode(
            claims, key, algorithm="HS256", headers={"kid": "fhirnet-token-key", "typ": "at+jwt"}
        )


def start(tmp: Path, expiry: int | None = None) -> Iterator[Server]:
    data_dir = tmp / "data"
    group = played_data_dir(data_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    clients, secrets_file = tmp / "bulk-clients.json", tmp / "study-secrets.json"
    clients.write_text("[]")
    secrets_file.write_text(json.dumps({STUDY_ID: {"secret": SECRET, "dates": "study-day"}}))
    env |= {
        "FHIRNET_PORT": str(port),
        "FHIRNET_WORKERS": "2",
        "FHIRNET_DATA_DIR": str(data_dir),
        "FHIRNET_API_KEYS": f"{KEY},{OTHER}",
        "FHIRNET_BULK_CLIENTS_FILE": str(clients),
        "FHIRNET_STUDY_SECRETS_FILE": str(secrets_file),
    }
    if expiry is not None:
        env["FHIRNET_EXPORT_EXPIRY"] = str(expiry)
    command = [sys.executable, "-m", "fhirnet.web.cli", "serve"]
    with serving(command, port=port, env=env, log_path=tmp / "serve.log"):
        yield Server(f"http://127.0.0.1:{port}", group, data_dir)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("bulk"))


@pytest.fixture(scope="module")
def expiring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("bulk-expiring"), expiry=2)


def kick_off(server: Server, path: str, **kwargs: Any) -> requests.Response:
    extra = kwargs.pop("headers", {})
    return requests.get(
        f"{server.url}{path}", headers=headers(**ASYNC) | extra, timeout=30, **kwargs
    )


def wait(location: str, key: str = KEY) -> requests.Response:
    """Poll on a fresh connection each time (either worker may answer)."""
    for _ in range(600):
        answer = requests.get(location, headers=headers(key), timeout=30)
        if answer.status_code != 202:
            return answer
        assert int(answer.headers["Retry-After"]) > 0
        assert answer.headers["X-Progress"]
        time.sleep(0.1)
    raise AssertionError("the export did not finish")


def manifest_of(server: Server, path: str) -> dict[str, Any]:
    answer = kick_off(server, path)
    assert answer.status_code == 202, answer.text
    done = wait(answer.headers["Content-Location"])
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


def files_of(manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for output in manifest["output"]:
        answer = requests.get(output["url"], headers=headers(), timeout=30)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("application/fhir+ndjson")
        found[output["type"]] = [json.loads(line) for line in answer.text.splitlines()]
    return found


def test_the_enrolment_group_exports_exactly_its_subjects(server: Server) -> None:
    manifest = manifest_of(server, f"/fhir/Group/{server.group}/$export")

    assert manifest["requiresAccessToken"] is True
    assert manifest["request"] == f"{server.url}/fhir/Group/{server.group}/$export"
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts["QuestionnaireResponse"] == 71
    assert counts["DiagnosticReport"] == 71
    assert counts["Provenance"] == 71
    assert counts["ResearchSubject"] == 8
    assert counts["Group"] == 1
    files = files_of(manifest)
    patients = {p for resources in files.values() for r in resources for p in patients_of(r)}
    assert patients == {scenario.patient(PREFIX, s) for s in scenario.SUBJECTS}


def test_a_system_export_holds_both_studies_and_no_audit_events(server: Server) -> None:
    manifest = manifest_of(server, "/fhir/$export")

    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts["ResearchStudy"] == 2
    assert counts["Group"] == 2
    assert "AuditEvent" not in counts


def test_type_since_type_filter_elements_and_output_format(server: Server) -> None:
    everything = manifest_of(server, "/fhir/$export?_type=DiagnosticReport")
    reports = everything["output"][0]["count"]

    later = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    since = manifest_of(server, f"/fhir/$export?_type=DiagnosticReport&_since={later}")
    filtered = manifest_of(
        server,
        "/fhir/$export?_type=Observation,DiagnosticReport&_outputFormat=application/ndjson"
        "&_typeFilter=DiagnosticReport%3Fstatus%3Dfinal&_elements=DiagnosticReport.conclusion",
    )

    assert since["output"] == []  # nothing changed since
    counts = {o["type"]: o["count"] for o in filtered["output"]}
    assert counts["DiagnosticReport"] == reports
    assert counts["Observation"] > reports
    report = files_of(filtered)["DiagnosticReport"][0]
    assert SUBSETTED in report["meta"]["tag"]
    assert "result" not in report


@pytest.mark.parametrize(
    "query",
    ["_outputFormat=text/html", "_since=junk", "_type=Foo", "patient=Patient/x", "nothing=1"],
)
def test_bad_parameters_are_refused_with_400(server: Server, query: str) -> None:
    answer = kick_off(server, f"/fhir/$export?{query}")

    assert answer.status_code == 400
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_missing_kick_off_headers_are_400(server: Server) -> None:
    answer = requests.get(f"{server.url}/fhir/$export", headers=headers(), timeout=30)

    assert answer.status_code == 400


def test_lenient_handling_and_include_associated_data(server: Server) -> None:
    answer = kick_off(
        server,
        "/fhir/$export?_type=Group,Unknown&includeAssociatedData=LatestProvenanceResources",
        headers={"Prefer": "respond-async, handling=lenient"},
    )
    assert answer.status_code == 202
    done = wait(answer.headers["Content-Location"]).json()

    assert [o["type"] for o in done["output"]] == ["Group"]
    outcome = requests.get(done["error"][0]["url"], headers=headers(), timeout=30).json()
    assert "Unknown" in outcome["issue"][0]["diagnostics"]


def test_what_bdt_found_a_type_outside_the_level_and_a_lenient_foreign_type_filter(
    server: Server,
) -> None:
    # SMART's Bulk Data test suite: Patient/$export?_type=Group was a 403 for a scope the
    # token had; a lenient _typeFilter on Patient (not exported) was refused.
    outside = kick_off(server, "/fhir/Patient/$export?_type=Group")
    lenient = kick_off(
        server,
        "/fhir/Patient/$export?_type=DiagnosticReport&_typeFilter=Patient%3Fstatus%3Dactive",
        headers={"Prefer": "respond-async, handling=lenient"},
    )

    assert outside.status_code == 400
    assert "not exported at patient level" in outside.json()["issue"][0]["diagnostics"]
    assert lenient.status_code == 202
    done = wait(lenient.headers["Content-Location"]).json()
    assert [o["type"] for o in done["output"]] == ["DiagnosticReport"]
    outcome = requests.get(done["error"][0]["url"], headers=headers(), timeout=30).json()
    assert "Patient?status=active" in outcome["issue"][0]["diagnostics"]


def test_a_post_with_patient_restricts_a_group_export(server: Server) -> None:
    subject = scenario.patient(PREFIX, scenario.SUBJECTS[0])
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "QuestionnaireResponse,ResearchSubject"},
            {"name": "patient", "valueReference": {"reference": subject}},
        ],
    }
    answer = requests.post(
        f"{server.url}/fhir/Group/{server.group}/$export",
        headers=headers(**ASYNC, **{"Content-Type": "application/fhir+json"}),
        data=json.dumps(body),
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    manifest = wait(answer.headers["Content-Location"]).json()

    files = files_of(manifest)
    assert {p for r in files["QuestionnaireResponse"] for p in patients_of(r)} == {subject}
    assert len(files["ResearchSubject"]) == 1


def test_gzip_on_request(server: Server) -> None:
    manifest = manifest_of(server, "/fhir/$export?_type=Observation")
    url = manifest["output"][0]["url"]

    raw = requests.get(url, headers=headers(**{"Accept-Encoding": "gzip"}), timeout=30, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    lines = gzip.decompress(raw.raw.read()).decode().splitlines()
    assert len(lines) == manifest["output"][0]["count"]


def test_only_the_client_that_kicked_off_may_poll_and_download(server: Server) -> None:
    answer = kick_off(server, "/fhir/$export?_type=Group")
    location = answer.headers["Content-Location"]
    manifest = wait(location).json()

    assert requests.get(location, headers=headers(OTHER), timeout=30).status_code == 403
    url = manifest["output"][0]["url"]
    assert requests.get(url, headers=headers(OTHER), timeout=30).status_code == 403
    assert requests.get(url, timeout=30).status_code == 401


def test_cancel_then_404(server: Server) -> None:
    answer = kick_off(server, "/fhir/$export")
    location = answer.headers["Content-Location"]

    cancelled = requests.delete(location, headers=headers(), timeout=30)

    assert cancelled.status_code == 202
    gone = requests.get(location, headers=headers(), timeout=30)
    assert gone.status_code == 404
    assert gone.json()["resourceType"] == "OperationOutcome"


def test_files_expire(expiring: Server) -> None:
    manifest = manifest_of(expiring, "/fhir/$export?_type=Group")
    url = manifest["output"][0]["url"]
    assert requests.get(url, headers=headers(), timeout=30).status_code == 200

    time.sleep(2.5)

    assert requests.get(url, headers=headers(), timeout=30).status_code == 404


def test_a_pseudonymized_client_gets_the_trial_pseudonymized_whatever_it_asks(
    server: Server,
) -> None:
    token = server.pseudonymized_token()
    answer = requests.get(
        f"{server.url}/fhir/$export?_type=QuestionnaireResponse,ResearchSubject,Group",
        headers=headers(token, **ASYNC),
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    done = wait(answer.headers["Content-Location"], token)
    assert done.status_code == 200, done.text
    manifest = done.json()

    assert manifest["extension"]["pseudonymization"]["dates"] == "study-day"
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {"QuestionnaireResponse": 71, "ResearchSubject": 8, "Group": 1}
    text = ""
    for output in manifest["output"]:
        download = requests.get(output["url"], headers=headers(token), timeout=30)
        assert download.status_code == 200
        text += download.text
    real = [scenario.patient(PREFIX, s) for s in scenario.SUBJECTS]
    assert not any(reference in text for reference in real)
    assert server.group not in text
    assert scenario.REFERENCE_DATE not in text  # study days: day 1 is the anchor date
    assert text.count("PSEUDED") == 71 + 8 + 1
    other_group = requests.get(
        f"{server.url}/fhir/Group/other/$export", headers=headers(token, **ASYNC), timeout=30
    )
    assert other_group.status_code == 403
    # ... and its token opens nothing but bulk export.
    assert (
        requests.get(f"{server.url}/fhir/Observation", headers=headers(token), timeout=30)
    ).status_code == 403


@pytest.mark.integration
def test_the_export_pages_through_a_real_fhir_server(
    fhir_base_url: str, tmp_path: Path, unique: str
) -> None:
    client = FhirClient(fhir_base_url, timeout=(5.0, 60.0))
    group = write_study(client, 3, 2, prefix=f"bulk{unique[:8]}-")
    write_study(client, 2, 1, prefix=f"other{unique[:8]}-")
    jobs = ExportJobs(tmp_path)
    now = dt.datetime.now(dt.UTC)
    context = Context(
        store=client,
        catalog=load_catalog(Settings().profiles_dir),
        locks=FileLocks(tmp_path / "locks", timeout=10),
        now=now,
        audit=AuditTrail(requester="key:1"),
    )
    members = group_members(client, group)
    plan = plan_export(
        client,
        export_request(Level.GROUP, [], now=now, group_id=group),
        readable=lambda _: True,
        members=members,
        batch=2,  # several searches per type, and paging within each
    )
    job = jobs.create(owner="key:1", request="r", transaction_time="t", now=time.time())

    assert run_export(
        context, plan, job_id=job.id, files=jobs, request_url="u", expires_at=time.time
    )

    done = jobs.get(job.id)
    assert done is not None
    assert done.status is JobStatus.DONE
    counts = {f.resource_type: f.count for f in done.outputs}
    assert counts == {
        "QuestionnaireResponse": 6,
        "BodyStructure": 9,
        "Observation": 30,
        "DiagnosticReport": 6,
        "Provenance": 6,
        "ResearchSubject": 3,
        "Group": 1,
    }
    path = jobs.file(job.id, "Observation.ndjson")
    assert path is not None
    subjects = {json.loads(line)["subject"]["reference"] for line in path.read_text().splitlines()}
    assert subjects == {f"Patient/bulk{unique[:8]}-{n:05d}" for n in range(3)}
