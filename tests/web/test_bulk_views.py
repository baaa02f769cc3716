"""Bulk Data export over HTTP (Flask's test client, the embedded store, API-key tokens): the
kick-off headers and parameters, the status while running and when done, the manifest, the
downloads (gzip, scopes, owner), cancel and expiry."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bench.bulk_export import write_study
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.web.app import create_app

FULL = "full-key-0123456789abcdef"
OTHER = "other-key-0123456789abcdef"
OBSERVATIONS_ONLY = "obs-key-0123456789abcdef"
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
BASE = "https://fhirnet.example.org"


def auth(key: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **headers}


class Clock:
    """The app's clock: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore.open(tmp_path / "data")


@pytest.fixture
def group(store: EmbeddedStore) -> str:
    write_study(store, 2, 2, prefix="other", study_id="OTHER-STUDY")
    return write_study(store, 3, 2, prefix="a")


@pytest.fixture
def client(tmp_path: Path, store: EmbeddedStore, clock: Clock) -> FlaskClient:
    settings = Settings(
        data_dir=tmp_path,
        api_keys=(
            (FULL, ()),
            (OTHER, ()),
            (OBSERVATIONS_ONLY, ("system/Observation.rs",)),
        ),
        public_base_url=BASE,
        export_expiry=60,
    )
    app = create_app(settings, store=store, clock=clock, durable=False)
    app.config["TESTING"] = True
    return app.test_client()


def local(url: str) -> str:
    assert url.startswith(BASE)
    return url[len(BASE) :]


def kick_off(client: FlaskClient, path: str, key: str = FULL, **kwargs: Any) -> TestResponse:
    return client.get(path, headers=auth(key, **ASYNC), **kwargs)


def wait(client: FlaskClient, location: str, key: str = FULL) -> TestResponse:
    for _ in range(200):
        answer = client.get(local(location), headers=auth(key))
        if answer.status_code != 202:
            return answer
        assert answer.headers["Retry-After"].isdigit()
        assert 0 < len(answer.headers["X-Progress"]) < 100
        time.sleep(0.05)
    raise AssertionError("the export did not finish")


def exported(
    client: FlaskClient, path: str, key: str = FULL
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    answer = kick_off(client, path, key)
    assert answer.status_code == 202, answer.get_json()
    manifest = wait(client, answer.headers["Content-Location"], key)
    assert manifest.status_code == 200, manifest.get_json()
    body: dict[str, Any] = manifest.get_json()
    files = {}
    for output in body["output"]:
        download = client.get(local(output["url"]), headers=auth(key))
        assert download.status_code == 200
        files[output["type"]] = [json.loads(line) for line in download.data.splitlines()]
    return body, files


def test_the_kick_off_answers_202_with_an_absolute_status_url(
    client: FlaskClient, group: str
) -> None:
    answer = kick_off(client, "/fhir/$export")

    assert answer.status_code == 202
    location = answer.headers["Content-Location"]
    assert location.startswith(f"{BASE}/fhir/$export-status/")
    assert answer.get_json()["resourceType"] == "OperationOutcome"
    wait(client, location)


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"Prefer": "respond-async"}, "Accept"),
        ({"Accept": "application/json", "Prefer": "respond-async"}, "Accept"),
        ({"Accept": "application/fhir+json"}, "Prefer"),
        ({"Accept": "application/fhir+json", "Prefer": "return=minimal"}, "Prefer"),
    ],
)
def test_the_kick_off_requires_accept_fhir_json_and_prefer_respond_async(
    client: FlaskClient, headers: dict[str, str], problem: str
) -> None:
    answer = client.get("/fhir/$export", headers=auth(FULL, **headers))

    assert answer.status_code == 400
    assert problem in answer.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "query",
    [
        "_outputFormat=application/xml",
        "_outputFormat=text/html",
        "_outputFormat=x-custom",
        "_since=junk",
        "_since=2999-01-01T00:00:00Z",
        "_type=Foo",
        "_typeFilter=Observation%3F_include%3DObservation:subject",
        "patient=Patient/a00000",
        "_elements=Observation.nothing",
        "unknown=1",
    ],
)
def test_bad_parameters_are_400_operation_outcomes(client: FlaskClient, query: str) -> None:
    answer = kick_off(client, f"/fhir/$export?{query}")

    assert answer.status_code == 400
    assert answer.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("group_id", ["nope", "a%20b", "x" * 65])
def test_an_unknown_group_is_404(client: FlaskClient, group_id: str) -> None:
    assert kick_off(client, f"/fhir/Group/{group_id}/$export").status_code == 404


def test_a_group_export_manifest_and_files(client: FlaskClient, group: str) -> None:
    manifest, files = exported(client, f"/fhir/Group/{group}/$export")

    assert manifest["request"] == f"{BASE}/fhir/Group/{group}/$export"
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert manifest["deleted"] == []
    dt.datetime.fromisoformat(manifest["transactionTime"])
    assert {o["type"]: o["count"] for o in manifest["output"]} == {
        "QuestionnaireResponse": 6,
        "BodyStructure": 9,
        "Observation": 30,
        "DiagnosticReport": 6,
        "Provenance": 6,
        "ResearchSubject": 3,
        "Group": 1,
    }
    subjects = {r["subject"]["reference"] for r in files["Observation"]}
    assert subjects == {"Patient/a00000", "Patient/a00001", "Patient/a00002"}
    for output in manifest["output"]:
        assert output["url"].startswith(f"{BASE}/fhir/$export-file/")


def test_the_finished_status_is_json_with_expires(client: FlaskClient, group: str) -> None:
    answer = kick_off(client, "/fhir/$export?_type=Group")
    done = wait(client, answer.headers["Content-Location"])

    assert done.status_code == 200
    assert done.mimetype == "application/json"
    assert "Expires" in done.headers


def test_a_post_kick_off_takes_a_parameters_body(client: FlaskClient, group: str) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Observation"},
            {"name": "patient", "valueReference": {"reference": "Patient/a00001"}},
        ],
    }
    answer = client.post(
        "/fhir/Patient/$export",
        headers=auth(FULL, **ASYNC),
        data=json.dumps(body),
        content_type="application/fhir+json",
    )
    assert answer.status_code == 202, answer.get_json()
    manifest = wait(client, answer.headers["Content-Location"]).get_json()

    assert [(o["type"], o["count"]) for o in manifest["output"]] == [("Observation", 10)]


def test_patient_in_a_system_level_post_is_refused(client: FlaskClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "patient", "valueReference": {"reference": "Patient/a00001"}}],
    }
    answer = client.post(
        "/fhir/$export",
        headers=auth(FULL, **ASYNC),
        data=json.dumps(body),
        content_type="application/fhir+json",
    )

    assert answer.status_code == 400


def test_lenient_handling_reports_an_unknown_type_in_the_error_file(
    client: FlaskClient, group: str
) -> None:
    headers = auth(FULL, **ASYNC)
    headers["Prefer"] = "respond-async, handling=lenient"
    answer = client.get(
        "/fhir/$export?_type=Group,Foo&includeAssociatedData=_custom", headers=headers
    )
    assert answer.status_code == 202
    manifest = wait(client, answer.headers["Content-Location"]).get_json()

    assert [o["type"] for o in manifest["output"]] == ["Group"]
    (error,) = manifest["error"]
    assert error["type"] == "OperationOutcome"
    outcome = json.loads(client.get(local(error["url"]), headers=auth(FULL)).data)
    assert len(outcome["issue"]) == 2


def test_downloads_are_ndjson_and_gzip_on_request(client: FlaskClient, group: str) -> None:
    answer = kick_off(client, "/fhir/$export?_type=Observation")
    manifest = wait(client, answer.headers["Content-Location"]).get_json()
    url = local(manifest["output"][0]["url"])

    plain = client.get(url, headers=auth(FULL))
    packed = client.get(url, headers=auth(FULL, **{"Accept-Encoding": "gzip"}))

    assert plain.mimetype == "application/fhir+ndjson"
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    lines = plain.data.decode().splitlines()
    assert len(lines) == 50
    assert all(json.loads(line)["resourceType"] == "Observation" for line in lines)


def test_the_elements_parameter_subsets_the_files(client: FlaskClient, group: str) -> None:
    _, files = exported(client, "/fhir/$export?_type=Observation&_elements=code")

    assert all(
        set(r) == {"resourceType", "id", "meta", "code", "status"} for r in files["Observation"]
    )


def test_another_client_can_neither_poll_nor_download_nor_cancel(
    client: FlaskClient, group: str
) -> None:
    answer = kick_off(client, "/fhir/$export?_type=Group")
    location = local(answer.headers["Content-Location"])
    manifest = wait(client, answer.headers["Content-Location"]).get_json()
    url = local(manifest["output"][0]["url"])

    assert client.get(location, headers=auth(OTHER)).status_code == 403
    assert client.get(url, headers=auth(OTHER)).status_code == 403
    assert client.delete(location, headers=auth(OTHER)).status_code == 403
    assert client.get(url).status_code == 401
    assert client.get(location).status_code == 401


def test_a_download_needs_read_scope_on_its_type(client: FlaskClient, group: str) -> None:
    answer = kick_off(client, "/fhir/$export?_type=Observation,DiagnosticReport", OBSERVATIONS_ONLY)
    manifest = wait(client, answer.headers["Content-Location"], OBSERVATIONS_ONLY).get_json()

    # Only the readable type was exported; the other is noted in the error file.
    assert [o["type"] for o in manifest["output"]] == ["Observation"]
    assert len(manifest["error"]) == 1


def test_a_kick_off_with_no_readable_type_is_403(client: FlaskClient, group: str) -> None:
    answer = kick_off(client, "/fhir/$export?_type=Group", OBSERVATIONS_ONLY)

    assert answer.status_code == 403


def test_a_type_the_level_does_not_export_is_400_not_403(client: FlaskClient) -> None:
    # Group is no Patient-compartment type: the token may read it, the level does not hold it.
    answer = kick_off(client, "/fhir/Patient/$export?_type=Group")

    assert answer.status_code == 400
    assert "not exported at patient level" in answer.get_json()["issue"][0]["diagnostics"]


def test_a_pseudonymized_client_s_system_level_types_are_noted_not_refused(
    pseudonymized: tuple[FlaskClient, str, str],
) -> None:
    client, token, _ = pseudonymized

    manifest, _ = exported(client, "/fhir/$export?_type=ResearchStudy,Group", token)

    assert [o["type"] for o in manifest["output"]] == ["Group"]
    assert len(manifest["error"]) == 1


def test_cancel_answers_202_and_then_everything_is_404(client: FlaskClient, group: str) -> None:
    answer = kick_off(client, "/fhir/$export?_type=Group")
    location = local(answer.headers["Content-Location"])
    manifest = wait(client, answer.headers["Content-Location"]).get_json()
    url = local(manifest["output"][0]["url"])

    cancelled = client.delete(location, headers=auth(FULL))

    assert cancelled.status_code == 202
    assert cancelled.get_json()["resourceType"] == "OperationOutcome"
    gone = client.get(location, headers=auth(FULL))
    assert gone.status_code == 404
    assert gone.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(url, headers=auth(FULL)).status_code == 404
    assert client.delete(location, headers=auth(FULL)).status_code == 404


def test_files_expire(client: FlaskClient, group: str, clock: Clock) -> None:
    answer = kick_off(client, "/fhir/$export?_type=Group")
    location = local(answer.headers["Content-Location"])
    manifest = wait(client, answer.headers["Content-Location"]).get_json()
    url = local(manifest["output"][0]["url"])

    clock.offset = dt.timedelta(seconds=61)

    assert client.get(url, headers=auth(FULL)).status_code == 404
    assert client.get(location, headers=auth(FULL)).status_code == 404


def test_unknown_jobs_and_files_are_404(client: FlaskClient, group: str) -> None:
    assert client.get("/fhir/$export-status/" + "x" * 32, headers=auth(FULL)).status_code == 404
    answer = kick_off(client, "/fhir/$export?_type=Group")
    location = answer.headers["Content-Location"]
    wait(client, location)
    job = location.rsplit("/", 1)[1]
    for name in ("Observation.ndjson", "x.txt"):
        answer = client.get(f"/fhir/$export-file/{job}/{name}", headers=auth(FULL))
        assert answer.status_code == 404
    traversal = client.get(
        f"/fhir/$export-file/{job}/..%2F..%2Fexports.sqlite3", headers=auth(FULL)
    )
    assert traversal.status_code in (400, 404)  # refused before or by the view


def test_the_export_is_audited_once(client: FlaskClient, group: str, store: EmbeddedStore) -> None:
    before = sum(1 for _ in store.search("AuditEvent", {}))

    exported(client, f"/fhir/Group/{group}/$export")

    events = list(store.search("AuditEvent", {}))
    assert len(events) == before + 1
    assert events[-1]["agent"][0]["who"]["identifier"]["value"] == "key:1"


# -- a client registered for pseudonymized access ------------------------------------------------

SECRET = "s" * 40
ISSUER = "urn:fhirnet:token-endpoint"


def issued_token(key: bytes, **claims: Any) -> str:
    """A token as fhirnet's token endpoint issues it to a bulk client."""
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "sub": "registry",
        "client_id": "registry",
        "scope": "system/*.rs",
        "iat": now,
        "exp": now + 300,
        "jti": f"t-{now}",
    } | claims
    return jwt.encode(
        payload, key, algorithm="HS256", headers={"kid": "fhirnet-token-key", "typ": "at+jwt"}
    )


@pytest.fixture
def pseudonymized(
    tmp_path: Path, store: EmbeddedStore, clock: Clock, group: str
) -> tuple[FlaskClient, str, str]:
    """An app with bulk clients and a secrets file naming BENCH-STUDY; a pseudonymized client's
    token and a token of the same study without a regime."""
    clients = tmp_path / "clients.json"
    clients.write_text("[]")
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps({"BENCH-STUDY": {"secret": SECRET, "dates": "shift"}}))
    settings = Settings(
        data_dir=tmp_path,
        api_keys=((FULL, ()),),
        bulk_clients_file=clients,
        study_secrets_file=secrets_file,
        public_base_url=BASE,
    )
    app = create_app(settings, store=store, clock=clock, durable=False)
    app.config["TESTING"] = True
    key = bytes.fromhex((tmp_path / "token-key").read_text().strip())
    return (
        app.test_client(),
        issued_token(key, pseudonymized_study="BENCH-STUDY"),
        issued_token(key, pseudonymized_study="NO-REGIME", sub="other", client_id="other"),
    )


def test_a_pseudonymized_client_gets_its_study_pseudonymized_whatever_it_asks(
    pseudonymized: tuple[FlaskClient, str, str], store: EmbeddedStore
) -> None:
    client, token, _ = pseudonymized

    manifest, files = exported(client, "/fhir/$export", token)

    statement = manifest["extension"]["pseudonymization"]
    assert statement["study"] == "BENCH-STUDY"
    assert statement["regime"] == "pseudonymized"
    assert SECRET not in json.dumps(manifest)
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert "ResearchStudy" not in counts  # the study's Group export, not the system's
    assert counts["Group"] == 1
    both_studies = {g["id"] for g in store.search("Group", {})}
    study_members = {
        m["entity"]["reference"] for g in store.search("Group", {}) for m in g["member"]
    }
    text = json.dumps(files)
    assert not any(f'"{group_id}"' in text for group_id in both_studies)  # ids are keyed
    assert not any(reference in text for reference in study_members)  # no real patient id
    for resources in files.values():
        for resource in resources:
            labels = resource["meta"].get("security", [])
            assert any(label.get("code") == "PSEUDED" for label in labels)
    assert len({r["subject"]["reference"] for r in files["Observation"]}) == 3


def test_a_pseudonymized_client_may_not_export_another_group(
    pseudonymized: tuple[FlaskClient, str, str], store: EmbeddedStore
) -> None:
    client, token, _ = pseudonymized
    groups = [g["id"] for g in store.search("Group", {})]
    answers = [kick_off(client, f"/fhir/Group/{g}/$export", token).status_code for g in groups]

    assert sorted(answers) == [202, 403]


def test_a_study_without_a_regime_exports_nothing(
    pseudonymized: tuple[FlaskClient, str, str],
) -> None:
    client, _, no_regime = pseudonymized

    answer = kick_off(client, "/fhir/$export", no_regime)

    assert answer.status_code == 403
    assert "no pseudonymization regime" in answer.get_json()["issue"][0]["diagnostics"]


# -- several hosts on one PostgreSQL (FHIRNET_DATABASE_URL) -----------------------------------


def host_clients(
    tmp_path: Path, store: EmbeddedStore, database_url: str, *, shared_exports: bool
) -> list[FlaskClient]:
    """Two apps as two hosts: a data directory each, one database and one FHIR store; the
    export directory shared (as deployment.md asks) or each host's own."""
    clients = []
    for n in range(2):
        settings = Settings(
            data_dir=tmp_path / f"host-{n}",
            api_keys=((FULL, ()), (OTHER, ())),
            public_base_url=BASE,
            database_url=database_url,
            export_dir=tmp_path / ("shared-exports" if shared_exports else f"exports-{n}"),
        )
        app = create_app(settings, store=store, durable=False)
        app.config["TESTING"] = True
        clients.append(app.test_client())
    return clients


def test_an_export_kicked_off_on_one_host_is_polled_and_downloaded_on_another(
    tmp_path: Path, store: EmbeddedStore, group: str, fresh_database_url: str
) -> None:
    one, other = host_clients(tmp_path, store, fresh_database_url, shared_exports=True)

    answer = kick_off(one, f"/fhir/Group/{group}/$export?_type=Observation")
    assert answer.status_code == 202
    manifest = wait(other, answer.headers["Content-Location"])

    assert manifest.status_code == 200, manifest.get_json()
    [output] = manifest.get_json()["output"]
    download = other.get(local(output["url"]), headers=auth(FULL))
    assert download.status_code == 200
    assert len(download.data.splitlines()) == output["count"] == 30
    # Only the client that kicked it off, whichever host it asks.
    assert other.get(local(output["url"]), headers=auth(OTHER)).status_code == 403
    # Cancelled through the first host: gone on the second.
    assert (
        one.delete(local(answer.headers["Content-Location"]), headers=auth(FULL)).status_code == 202
    )
    assert other.get(local(output["url"]), headers=auth(FULL)).status_code == 404


def test_a_download_on_a_host_without_the_files_says_the_directory_is_not_shared(
    tmp_path: Path, store: EmbeddedStore, group: str, fresh_database_url: str
) -> None:
    one, other = host_clients(tmp_path, store, fresh_database_url, shared_exports=False)
    answer = kick_off(one, f"/fhir/Group/{group}/$export?_type=Observation")
    manifest = wait(other, answer.headers["Content-Location"])  # the job is shared
    [output] = manifest.get_json()["output"]

    download = other.get(local(output["url"]), headers=auth(FULL))

    assert download.status_code == 500
    diagnostics = download.get_json()["issue"][0]["diagnostics"]
    assert "FHIRNET_EXPORT_DIR" in diagnostics
    assert "do not share" in diagnostics
    assert one.get(local(output["url"]), headers=auth(FULL)).status_code == 200


def test_an_unreachable_database_answers_503_without_its_password(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    settings = Settings(
        data_dir=tmp_path / "host",
        api_keys=((FULL, ()),),
        public_base_url=BASE,
        database_url="postgresql://fhirnet:s3cret@127.0.0.1:1/fhirnet",
        export_dir=tmp_path / "shared-exports",
    )
    client = create_app(settings, store=store, durable=False).test_client()

    for answer in (
        kick_off(client, "/fhir/$export"),
        client.get(f"/fhir/$export-status/{'x' * 32}", headers=auth(FULL)),
    ):
        assert answer.status_code == 503
        assert answer.get_json()["issue"][0]["code"] == "transient"
        assert "s3cret" not in answer.get_data(as_text=True)
