"""Bulk Data export against a running ``fhirnet serve`` (two gunicorn workers, bulk clients as
its only authentication): the kick-off, status, cancel, manifest and download flow over real
HTTP, every kick-off parameter, gzip, and expiry (``FHIRNET_EXPORT_EXPIRY=2``), on the
multicenter trial scenario (tests/trials_scenario.py): its enrolment Group exports exactly its
eight subjects. The export runs in a thread of the worker that got the kick-off; the polls, on
fresh connections, land on either worker (the job's state is in SQLite).

Every token is the server's own answer at ``POST /auth/token`` to a real signed client
assertion (SMART Backend Services): the exporting client (RS384), another client (ES384, whose
token may not touch the first one's exports) and a client pseudonymized for the trial (ES384);
the exporting client also asks for a narrower scope, whose token may not download every file
of its export. Each server signs its tokens with its own key, so each holds its own tokens.

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
from tests.bulk_clients import ClientKey, assertion, ec_key, rsa_key, token_form, write_clients
from tests.servers import free_port, serving

SECRET = "trial-secret-0123456789abcdef-0123456789"  # noqa: S105 -- a test study's
EXPORTER, OTHER, REGISTRY = "exporter", "other", "registry"
#: Each client's key: a real RS384 or ES384 pair, made for this run.
KEYS = {EXPORTER: rsa_key("exporter-rs384"), OTHER: ec_key("other-es384"), REGISTRY: ec_key()}
SCOPE = "system/*.read"
#: A cached token is asked for again (a new assertion, a new ``jti``) once this old: tokens
#: live 300 s, and a test must not get one about to expire.
TOKEN_REUSE_SECONDS = 240
STUDY_ID = "NET-TRIAL-1"
PREFIX = "trial"
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}


def headers(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def registered_clients() -> list[dict[str, Any]]:
    """The bulk clients the served ``FHIRNET_BULK_CLIENTS_FILE`` registers."""
    return [
        {"client_id": EXPORTER, "jwks": KEYS[EXPORTER].jwks(), "scope": SCOPE},
        {"client_id": OTHER, "jwks": KEYS[OTHER].jwks(), "scope": SCOPE},
        {
            "client_id": REGISTRY,
            "jwks": KEYS[REGISTRY].jwks(),
            "scope": SCOPE,
            "pseudonymized_study": STUDY_ID,
        },
    ]


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
    """A running ``fhirnet serve`` and the tokens its token endpoint gave each client."""

    def __init__(self, url: str, group: str, data_dir: Path) -> None:
        self.url = url
        self.group = group
        self.data_dir = data_dir
        self._tokens: dict[tuple[str, str], tuple[float, str]] = {}

    @property
    def token_url(self) -> str:
        return f"{self.url}/auth/token"

    def token(self, client_id: str = EXPORTER, scope: str = SCOPE) -> str:
        """``client_id``'s token for ``scope`` from this server's ``POST /auth/token`` (a signed
        client assertion), asked for once and again only when it gets old."""
        cached = self._tokens.get((client_id, scope))
        if cached is not None and time.monotonic() - cached[0] < TOKEN_REUSE_SECONDS:
            return cached[1]
        issued_at = time.monotonic()
        token = request_token(self.token_url, KEYS[client_id], client_id, scope)
        self._tokens[(client_id, scope)] = (issued_at, token)
        return token


def request_token(token_url: str, key: ClientKey, client_id: str, scope: str) -> str:
    """A token for ``client_id``: a new assertion (new ``jti``) signed with ``key``."""
    signed = assertion(key, client_id=client_id, aud=token_url)
    answer = requests.post(token_url, data=token_form(signed, scope), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == scope
    token: str = answer.json()["access_token"]
    return token


def start(tmp: Path, expiry: int | None = None) -> Iterator[Server]:
    data_dir = tmp / "data"
    group = played_data_dir(data_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    clients = write_clients(tmp / "bulk-clients.json", registered_clients())
    secrets_file = tmp / "study-secrets.json"
    secrets_file.write_text(json.dumps({STUDY_ID: {"secret": SECRET, "dates": "study-day"}}))
    env |= {
        "FHIRNET_PORT": str(port),
        "FHIRNET_WORKERS": "2",
        "FHIRNET_DATA_DIR": str(data_dir),
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


def kick_off(server: Server, path: str, token: str, **kwargs: Any) -> requests.Response:
    extra = kwargs.pop("headers", {})
    return requests.get(
        f"{server.url}{path}", headers=headers(token, **ASYNC) | extra, timeout=30, **kwargs
    )


def wait(location: str, token: str) -> requests.Response:
    """Poll on a fresh connection each time (either worker may answer)."""
    for _ in range(600):
        answer = requests.get(location, headers=headers(token), timeout=30)
        if answer.status_code != 202:
            return answer
        assert int(answer.headers["Retry-After"]) > 0
        assert answer.headers["X-Progress"]
        time.sleep(0.1)
    raise AssertionError("the export did not finish")


def manifest_of(server: Server, path: str, token: str) -> dict[str, Any]:
    answer = kick_off(server, path, token)
    assert answer.status_code == 202, answer.text
    done = wait(answer.headers["Content-Location"], token)
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


def files_of(manifest: dict[str, Any], token: str) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for output in manifest["output"]:
        answer = requests.get(output["url"], headers=headers(token), timeout=30)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("application/fhir+ndjson")
        found[output["type"]] = [json.loads(line) for line in answer.text.splitlines()]
    return found


def test_the_enrolment_group_exports_exactly_its_subjects(server: Server) -> None:
    token = server.token()
    manifest = manifest_of(server, f"/fhir/Group/{server.group}/$export", token)

    assert manifest["requiresAccessToken"] is True
    assert manifest["request"] == f"{server.url}/fhir/Group/{server.group}/$export"
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts["QuestionnaireResponse"] == 71
    assert counts["DiagnosticReport"] == 71
    assert counts["Provenance"] == 71
    assert counts["ResearchSubject"] == 8
    assert counts["Group"] == 1
    files = files_of(manifest, token)
    patients = {p for resources in files.values() for r in resources for p in patients_of(r)}
    assert patients == {scenario.patient(PREFIX, s) for s in scenario.SUBJECTS}


def test_a_system_export_holds_both_studies_and_no_audit_events(server: Server) -> None:
    manifest = manifest_of(server, "/fhir/$export", server.token())

    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts["ResearchStudy"] == 2
    assert counts["Group"] == 2
    assert "AuditEvent" not in counts


def test_type_since_type_filter_elements_and_output_format(server: Server) -> None:
    token = server.token()
    everything = manifest_of(server, "/fhir/$export?_type=DiagnosticReport", token)
    reports = everything["output"][0]["count"]

    later = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    since = manifest_of(server, f"/fhir/$export?_type=DiagnosticReport&_since={later}", token)
    filtered = manifest_of(
        server,
        "/fhir/$export?_type=Observation,DiagnosticReport&_outputFormat=application/ndjson"
        "&_typeFilter=DiagnosticReport%3Fstatus%3Dfinal&_elements=DiagnosticReport.conclusion",
        token,
    )

    assert since["output"] == []  # nothing changed since
    counts = {o["type"]: o["count"] for o in filtered["output"]}
    assert counts["DiagnosticReport"] == reports
    assert counts["Observation"] > reports
    report = files_of(filtered, token)["DiagnosticReport"][0]
    assert SUBSETTED in report["meta"]["tag"]
    assert "result" not in report


@pytest.mark.parametrize(
    "query",
    ["_outputFormat=text/html", "_since=junk", "_type=Foo", "patient=Patient/x", "nothing=1"],
)
def test_bad_parameters_are_refused_with_400(server: Server, query: str) -> None:
    answer = kick_off(server, f"/fhir/$export?{query}", server.token())

    assert answer.status_code == 400
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_missing_kick_off_headers_are_400(server: Server) -> None:
    answer = requests.get(f"{server.url}/fhir/$export", headers=headers(server.token()), timeout=30)

    assert answer.status_code == 400


def test_lenient_handling_and_include_associated_data(server: Server) -> None:
    token = server.token()
    answer = kick_off(
        server,
        "/fhir/$export?_type=Group,Unknown&includeAssociatedData=LatestProvenanceResources",
        token,
        headers={"Prefer": "respond-async, handling=lenient"},
    )
    assert answer.status_code == 202
    done = wait(answer.headers["Content-Location"], token).json()

    assert [o["type"] for o in done["output"]] == ["Group"]
    outcome = requests.get(done["error"][0]["url"], headers=headers(token), timeout=30).json()
    assert "Unknown" in outcome["issue"][0]["diagnostics"]


def test_what_bdt_found_a_type_outside_the_level_and_a_lenient_foreign_type_filter(
    server: Server,
) -> None:
    # SMART's Bulk Data test suite: Patient/$export?_type=Group was a 403 for a scope the
    # token had; a lenient _typeFilter on Patient (not exported) was refused.
    token = server.token()
    outside = kick_off(server, "/fhir/Patient/$export?_type=Group", token)
    lenient = kick_off(
        server,
        "/fhir/Patient/$export?_type=DiagnosticReport&_typeFilter=Patient%3Fstatus%3Dactive",
        token,
        headers={"Prefer": "respond-async, handling=lenient"},
    )

    assert outside.status_code == 400
    assert "not exported at patient level" in outside.json()["issue"][0]["diagnostics"]
    assert lenient.status_code == 202
    done = wait(lenient.headers["Content-Location"], token).json()
    assert [o["type"] for o in done["output"]] == ["DiagnosticReport"]
    outcome = requests.get(done["error"][0]["url"], headers=headers(token), timeout=30).json()
    assert "Patient?status=active" in outcome["issue"][0]["diagnostics"]


def test_a_post_with_patient_restricts_a_group_export(server: Server) -> None:
    token = server.token()
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
        headers=headers(token, **ASYNC, **{"Content-Type": "application/fhir+json"}),
        data=json.dumps(body),
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    manifest = wait(answer.headers["Content-Location"], token).json()

    files = files_of(manifest, token)
    assert {p for r in files["QuestionnaireResponse"] for p in patients_of(r)} == {subject}
    assert len(files["ResearchSubject"]) == 1


def test_gzip_on_request(server: Server) -> None:
    token = server.token()
    manifest = manifest_of(server, "/fhir/$export?_type=Observation", token)
    url = manifest["output"][0]["url"]

    gzipped = headers(token, **{"Accept-Encoding": "gzip"})
    raw = requests.get(url, headers=gzipped, timeout=30, stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    lines = gzip.decompress(raw.raw.read()).decode().splitlines()
    assert len(lines) == manifest["output"][0]["count"]


def test_only_the_client_that_kicked_off_may_poll_and_download(server: Server) -> None:
    token, other = server.token(), server.token(OTHER)
    answer = kick_off(server, "/fhir/$export?_type=Group", token)
    location = answer.headers["Content-Location"]
    manifest = wait(location, token).json()

    assert requests.get(location, headers=headers(other), timeout=30).status_code == 403
    url = manifest["output"][0]["url"]
    assert requests.get(url, headers=headers(other), timeout=30).status_code == 403
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.delete(location, headers=headers(other), timeout=30).status_code == 403


def test_a_file_of_a_type_the_token_may_not_read_is_refused(server: Server) -> None:
    # The exporting client's own job, polled and downloaded with a token it asked for a
    # narrower scope: the job is its, the Group file is not for that token.
    token = server.token()
    narrow = server.token(scope="system/DiagnosticReport.read")
    answer = kick_off(server, "/fhir/$export?_type=Group,DiagnosticReport", token)
    manifest = wait(answer.headers["Content-Location"], narrow).json()

    urls = {o["type"]: o["url"] for o in manifest["output"]}
    refused = requests.get(urls["Group"], headers=headers(narrow), timeout=30)
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    allowed = requests.get(urls["DiagnosticReport"], headers=headers(narrow), timeout=30)
    assert allowed.status_code == 200


def test_a_token_opens_only_the_server_that_issued_it(server: Server, expiring: Server) -> None:
    # Each server signs its tokens with a key of its own data directory.
    foreign = headers(server.token(), **ASYNC)

    assert (
        requests.get(f"{expiring.url}/fhir/$export", headers=foreign, timeout=30).status_code == 401
    )


def test_cancel_then_404(server: Server) -> None:
    token = server.token()
    answer = kick_off(server, "/fhir/$export", token)
    location = answer.headers["Content-Location"]

    cancelled = requests.delete(location, headers=headers(token), timeout=30)

    assert cancelled.status_code == 202
    gone = requests.get(location, headers=headers(token), timeout=30)
    assert gone.status_code == 404
    assert gone.json()["resourceType"] == "OperationOutcome"


def test_files_expire(expiring: Server) -> None:
    token = expiring.token()
    manifest = manifest_of(expiring, "/fhir/$export?_type=Group", token)
    url = manifest["output"][0]["url"]
    assert requests.get(url, headers=headers(token), timeout=30).status_code == 200

    time.sleep(2.5)

    assert requests.get(url, headers=headers(token), timeout=30).status_code == 404


def test_a_pseudonymized_client_gets_the_trial_pseudonymized_whatever_it_asks(
    server: Server,
) -> None:
    token = server.token(REGISTRY)
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
