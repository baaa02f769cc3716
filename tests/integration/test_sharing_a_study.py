"""Sharing a study, end to end, against a running ``fhirnet serve`` (two worker processes): the
multicenter trial scenario (tests/trials_scenario.py) played for study A, two of its patients
enrolled in a second study B, and a name, an MRN and a free-text phrase planted where a client
puts them in a submitted form (subject display and identifier, the form's identifier, author
display, narrative, an extension) and in the Patients themselves. Three bulk clients get their
tokens at ``POST /auth/token`` with real signed assertions: an identified one (RS384, inline
JWKS), one pseudonymized for A (ES384, JWKS URL served by a local HTTP server) and one
pseudonymized for B (ES384, inline JWKS); both studies shift dates, under different secrets.

The identified Group export of A is the "before"; the pseudonymized exports of A must hold none
of the planted markers, no real patient id and no secret in any byte (plain and gzip), every
reference must resolve inside the export, every date of a subject must move by one offset (so
every interval is what it was), pseudonyms must be stable across exports and differ in B; the
SDTM export of A (``fhirnet study export``, a subprocess on the same data directory) must agree
with the NDJSON on the shifted reference dates.

This needs no FHIR server (the embedded store), so it is not marked ``integration``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.fhir.audit import patients_of
from fhirnet.fhir.pseudonymize import DateRegime, Regime
from fhirnet.web.app import create_app
from tests import trials_scenario as scenario
from tests.bulk_clients import ClientKey, assertion, ec_key, rsa_key, token_form, write_clients
from tests.jwks_server import JwksServer
from tests.servers import free_port, serving

STUDY_A, STUDY_B = "NET-SHARE-A", "NET-SHARE-B"
PREFIX = "hosp4417"  # the patients' ids carry a hospital number: it must not leave
SECRET_A = "study-A-secret-kept-on-site-0123456789abcdef"  # noqa: S105 - a test secret
SECRET_B = "study-B-secret-kept-on-site-fedcba9876543210"  # noqa: S105 - a test secret
NAME = "Zebulon Quixote-Marker"
MRN = "MRN-7731-MARKER"
PHRASE = "purple elephant remark"
MARKERS = (NAME, MRN, PHRASE, SECRET_A, SECRET_B)
#: The patients of A that B enrols too.
SHARED = (scenario.SUBJECTS[0], scenario.SUBJECTS[-1])
REAL_IDS = tuple(scenario.patient(PREFIX, s).removeprefix("Patient/") for s in scenario.SUBJECTS)
REGIME_A = Regime(study_id=STUDY_A, secret=SECRET_A.encode(), dates=DateRegime.SHIFT)
REGIME_B = Regime(study_id=STUDY_B, secret=SECRET_B.encode(), dates=DateRegime.SHIFT)
V3_OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
IDENTIFIED_KEY, KEY_A, KEY_B = rsa_key("registry-rs384"), ec_key("cro-a-es384"), ec_key("cro-b")
#: A date, dateTime or instant: the date part, then the rest (time and zone) kept by a shift.
DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T[0-9:.]+(?:Z|[+-]\d{2}:\d{2}))?$")

Resources = list[dict[str, Any]]
ORIGINAL_SCAN_FORM = scenario.scan_form


def marked_form(
    prefix: str, subject: scenario.Subject, author: str, number: int, read: scenario.Scan
) -> dict[str, Any]:
    """The scenario's form of one read, with the markers where a submitting client can put
    them."""
    resource = ORIGINAL_SCAN_FORM(prefix, subject, author, number, read)
    resource["subject"] |= {
        "display": NAME,
        "identifier": {"system": "urn:oid:1.2.3", "value": MRN},
    }
    resource["author"]["display"] = f"Dr. {NAME}"
    resource["identifier"]["value"] = f"{MRN}-{resource['identifier']['value']}"
    div = f'<div xmlns="http://www.w3.org/1999/xhtml">{PHRASE} {MRN}</div>'
    resource["text"] = {"status": "generated", "div": div}
    resource["extension"] = [
        {"url": "http://example.org/fhir/StructureDefinition/note", "valueString": PHRASE}
    ]
    for item in lesion_ids(resource["item"]):  # the same in every form: lesions still link
        item["answer"] = [{"valueString": f"{MRN}-{item['answer'][0]['valueString']}"}]
    return resource


def lesion_ids(items: Resources) -> Iterator[dict[str, Any]]:
    """The CRF lesion-id answers of a form's items, at any depth."""
    for item in items:
        if str(item["linkId"]).endswith("lesion-id"):
            yield item
        yield from lesion_ids(item.get("item", []))


def plant_patients(store: EmbeddedStore) -> None:
    """A Patient with name, MRN, narrative and birth date for every subject (the source data
    the forms point at)."""
    entries = [
        {
            "resource": {
                "resourceType": "Patient",
                "id": patient_id,
                "text": {"status": "generated", "div": f"<div>{NAME} {PHRASE}</div>"},
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.1", "value": MRN}],
                "name": [{"text": NAME}],
                "birthDate": "1950-07-04",
            },
            "request": {"method": "PUT", "url": f"Patient/{patient_id}"},
        }
        for patient_id in REAL_IDS
    ]
    store.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def fill(data_dir: Path) -> dict[str, str]:
    """Play both studies into ``data_dir`` in-process; each study's enrolment Group id."""
    store = EmbeddedStore.open(data_dir)
    app = create_app(Settings(data_dir=data_dir, auth="none"), store=store, durable=False)
    app.config["TESTING"] = True
    client = app.test_client()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scenario, "scan_form", marked_form)
        scenario.run(client, STUDY_A, PREFIX)
    assert client.put(f"/api/v1/studies/{STUDY_B}", json=scenario.STUDY).status_code == 201
    for subject in SHARED:
        answer = client.put(
            f"/api/v1/studies/{STUDY_B}/subjects/{subject.number}",
            json=scenario.enrolment(PREFIX, subject),
        )
        assert answer.status_code == 201, answer.get_json()
    plant_patients(store)
    # The markers are stored as submitted: what leaves identified still carries them.
    stored = json.dumps(list(store.search("QuestionnaireResponse", {"_count": "500"})))
    assert all(marker in stored for marker in (NAME, MRN, PHRASE))
    assert f'crf-lesion-id", "value": "{MRN}-T1"' in json.dumps(
        list(store.search("BodyStructure", {"_count": "500"}))
    )
    groups = {}
    for group in store.search("Group", {}):
        (identifier,) = [i["value"] for i in group["identifier"] if "enrolment" in i["system"]]
        groups[identifier] = str(group["id"])
    store.close()
    return groups


@dataclass
class Export:
    """One finished export: its manifest, each file's bytes as served plain and gzipped, and
    its resources by type."""

    manifest: dict[str, Any]
    plain: dict[str, bytes] = field(default_factory=dict)
    gzipped: dict[str, bytes] = field(default_factory=dict)
    resources: dict[str, Resources] = field(default_factory=dict)

    def everything(self) -> Resources:
        return [r for found in self.resources.values() for r in found]


@dataclass(frozen=True)
class Served:
    base: str
    groups: dict[str, str]
    env: dict[str, str]
    data_dir: Path

    @property
    def token_url(self) -> str:
        return f"{self.base}/auth/token"

    def token(self, key: ClientKey, client_id: str, scope: str = "system/*.read") -> str:
        """A fresh token: a new assertion (new ``jti``) each time."""
        signed = assertion(key, client_id=client_id, aud=self.token_url)
        answer = requests.post(self.token_url, data=token_form(signed, scope), timeout=30)
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def get(self, url: str, token: str, **headers: str) -> requests.Response:
        return requests.get(
            url if url.startswith("http") else self.base + url,
            headers={"Authorization": f"Bearer {token}", **headers},
            timeout=30,
        )

    def kick_off(self, path: str, token: str) -> requests.Response:
        return self.get(path, token, **ASYNC)

    def wait(self, location: str, token: str) -> requests.Response:
        """Poll, each time on a new connection (either worker answers), until not 202."""
        for _ in range(600):
            answer = self.get(location, token)
            if answer.status_code != 202:
                return answer
            assert int(answer.headers["Retry-After"]) > 0
            assert 0 < len(answer.headers["X-Progress"]) < 100
            time.sleep(0.1)
        raise AssertionError("the export did not finish")

    def export(self, path: str, token: str) -> Export:
        """Kick off, poll, download every file plain and gzipped."""
        answer = self.kick_off(path, token)
        assert answer.status_code == 202, answer.text
        done = self.wait(answer.headers["Content-Location"], token)
        assert done.status_code == 200, done.text
        found = Export(done.json())
        for output in found.manifest["output"]:
            plain = self.get(output["url"], token, **{"Accept-Encoding": "identity"})
            assert plain.status_code == 200
            assert plain.headers["Content-Type"].startswith("application/fhir+ndjson")
            assert "Content-Encoding" not in plain.headers
            packed = requests.get(
                output["url"],
                headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"},
                timeout=30,
                stream=True,
            )
            assert packed.headers["Content-Encoding"] == "gzip"
            found.plain[output["type"]] = plain.content
            found.gzipped[output["type"]] = packed.raw.read(decode_content=False)
            found.resources[output["type"]] = [
                json.loads(line) for line in plain.content.decode().splitlines()
            ]
        return found


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    """Client A's JWK Set, served over HTTP on the loopback interface."""
    with JwksServer(KEY_A.jwks()["keys"]) as server:
        yield server.url


def start(folder: Path, jwks_url: str, dates: str) -> Iterator[Served]:
    """Both studies played into a data directory, then ``fhirnet serve`` on it with the three
    bulk clients and both studies' secrets (``dates``: study A's date regime; B shifts)."""
    data_dir = folder / "data"
    groups = fill(data_dir)
    clients = write_clients(
        folder / "clients.json",
        [
            {"client_id": "registry", "jwks": IDENTIFIED_KEY.jwks(), "scope": "system/*.read"},
            {
                "client_id": "cro-a",
                "jwks_url": jwks_url,
                "scope": "system/*.read",
                "pseudonymized_study": STUDY_A,
            },
            {
                "client_id": "cro-b",
                "jwks": KEY_B.jwks(),
                "scope": "system/*.read",
                "pseudonymized_study": STUDY_B,
            },
        ],
    )
    secrets_file = folder / "study-secrets.json"
    secrets_file.write_text(
        json.dumps(
            {
                STUDY_A: {"secret": SECRET_A, "dates": dates},
                STUDY_B: {"secret": SECRET_B, "dates": "shift"},
            }
        )
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    env |= {
        "FHIRNET_PORT": str(port),
        "FHIRNET_WORKERS": "2",
        "FHIRNET_DATA_DIR": str(data_dir),
        "FHIRNET_BULK_CLIENTS_FILE": str(clients),
        "FHIRNET_STUDY_SECRETS_FILE": str(secrets_file),
    }
    command = [sys.executable, "-m", "fhirnet.web.cli", "serve"]
    with serving(command, port=port, env=env, log_path=folder / "serve.log", startup_seconds=60):
        yield Served(f"http://127.0.0.1:{port}", groups, env, data_dir)


@pytest.fixture(scope="module")
def served(jwks_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Both studies shift dates."""
    yield from start(tmp_path_factory.mktemp("sharing"), jwks_url, "shift")


@pytest.fixture(scope="module")
def study_days(jwks_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Study A gives dates as study days."""
    yield from start(tmp_path_factory.mktemp("sharing-study-day"), jwks_url, "study-day")


@pytest.fixture(scope="module")
def identified(served: Served) -> Export:
    """Study A's Group exported by the identified client: the "before"."""
    token = served.token(IDENTIFIED_KEY, "registry")
    return served.export(f"/fhir/Group/{served.groups[STUDY_A]}/$export", token)


@pytest.fixture(scope="module")
def pseudonymized(served: Served) -> Export:
    """Study A's Group exported by client A."""
    token = served.token(KEY_A, "cro-a")
    return served.export(f"/fhir/Group/{served.groups[STUDY_A]}/$export", token)


# -- walking the JSON ----------------------------------------------------------------------------


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key path without list positions, leaf) of a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from walk(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for inner in value:
            yield from walk(inner, path)
    else:
        yield path, value


def references(resource: dict[str, Any]) -> list[str]:
    return [v for p, v in walk(resource) if p.endswith(".reference") and isinstance(v, str)]


def dated(resource: dict[str, Any]) -> Iterator[tuple[str, dt.date, str]]:
    """Every full date, dateTime and instant of a resource: (path, date, time and zone)."""
    for path, value in walk(resource):
        match = DATE.match(value) if isinstance(value, str) else None
        if match is not None and not path.endswith(".birthDate"):
            yield f"{resource['resourceType']}{path}", dt.date.fromisoformat(match[1]), match[2]


def of_study_a(resource: dict[str, Any]) -> bool:
    """Whether a resource of an identified export is in study A's pseudonymized one too: all
    but the shared patients' enrolments in study B."""
    return f"/research-study/{STUDY_B}/" not in json.dumps(resource.get("identifier", []))


def by_patient(export: Export, real_of: dict[str, str]) -> dict[str, Resources]:
    """The export's resources of a single patient, by the patient's real id (``real_of`` maps
    the ids the export uses to the real ones)."""
    found: dict[str, Resources] = {}
    for resource in export.everything():
        if resource["resourceType"] == "Patient":
            owners = [real_of[resource["id"]]]
        else:
            owners = [real_of[p.removeprefix("Patient/")] for p in patients_of(resource)]
        if len(owners) == 1:
            found.setdefault(owners[0], []).append(resource)
    return found


def research_subject_starts(export: Export) -> dict[str, str]:
    """Subject number -> ``ResearchSubject.period.start`` (the subject number stays in clear)."""
    found = {}
    for subject in export.resources["ResearchSubject"]:
        for identifier in subject["identifier"]:
            if identifier["system"].endswith(f"/{STUDY_A}/subject"):
                found[identifier["value"]] = subject["period"]["start"]
    return found


def studies_of(export: Export) -> list[str]:
    """The study of each exported ResearchSubject, read from its subject-number system."""
    return [
        i["system"].split("/research-study/")[1].removesuffix("/subject")
        for subject in export.resources["ResearchSubject"]
        for i in subject["identifier"]
        if i["system"].endswith("/subject")
    ]


def sdtm_export(served: Served, out: Path) -> None:
    """``fhirnet study export`` of study A, a process of its own with the server's settings."""
    done = subprocess.run(
        [sys.executable, "-m", "fhirnet.web.cli", "study", "export", STUDY_A, "--out", str(out)],
        env=served.env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


def dm_rows(out: Path) -> Resources:
    document = json.loads((out / "dm.json").read_text())
    names = [c["name"] for c in document["columns"]]
    return [dict(zip(names, row, strict=True)) for row in document["rows"]]


def assert_nothing_leaks(raw: bytes) -> None:
    """No marker, secret or real patient id (nor the hospital number in it) in ``raw``."""
    text = raw.decode()
    for marker in (*MARKERS, *REAL_IDS, PREFIX):
        assert marker not in text, marker


# -- the specification ---------------------------------------------------------------------------


def test_the_identified_client_exports_exactly_study_a_s_subjects(
    served: Served, identified: Export
) -> None:
    manifest = identified.manifest

    group = served.groups[STUDY_A]
    assert manifest["request"] == f"{served.base}/fhir/Group/{group}/$export"
    assert manifest["requiresAccessToken"] is True
    assert dt.datetime.fromisoformat(manifest["transactionTime"]).tzinfo is not None
    assert manifest["error"] == []
    assert manifest["deleted"] == []
    assert "extension" not in manifest
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {t: len(r) for t, r in identified.resources.items()}
    assert counts["QuestionnaireResponse"] == 71
    # The members' compartments: A's eight enrolments and the shared patients' two in B.
    assert sorted(studies_of(identified)) == [STUDY_A] * 8 + [STUDY_B] * 2
    assert counts["Group"] == 1
    for kind, packed in identified.gzipped.items():
        assert gzip.decompress(packed) == identified.plain[kind]
    patients = {p for r in identified.everything() for p in patients_of(r)}
    assert patients == {f"Patient/{p}" for p in REAL_IDS}
    # Not B's Group; and identified, the export holds the markers as they were submitted.
    text = b"".join(identified.plain.values()).decode()
    assert served.groups[STUDY_B] not in text
    assert all(marker in text for marker in (NAME, MRN, PHRASE, *REAL_IDS))


def test_client_a_s_export_is_pseudonymized_and_leaks_no_byte(
    served: Served, identified: Export, pseudonymized: Export
) -> None:
    manifest = pseudonymized.manifest

    assert manifest["extension"]["pseudonymization"]["regime"] == "pseudonymized"
    assert manifest["extension"]["pseudonymization"]["dates"] == "shift"
    assert manifest["extension"]["pseudonymization"]["study"] == STUDY_A
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    identified_counts = {o["type"]: o["count"] for o in identified.manifest["output"]}
    # The same data, but for the shared patients' enrolments in study B (not A's data).
    assert counts == identified_counts | {
        "ResearchSubject": identified_counts["ResearchSubject"] - 2
    }
    assert_nothing_leaks(json.dumps(manifest).encode())
    for kind, plain in pseudonymized.plain.items():
        assert_nothing_leaks(plain)
        assert_nothing_leaks(gzip.decompress(pseudonymized.gzipped[kind]))
        assert served.groups[STUDY_A].encode() not in plain
    for resource in pseudonymized.everything():
        labels = {(s["system"], s["code"]) for s in resource["meta"]["security"]}
        assert (V3_OBSERVATION_VALUE, "PSEUDED") in labels, resource["resourceType"]


def test_every_reference_of_client_a_s_export_resolves_inside_it(
    pseudonymized: Export,
) -> None:
    exported = {f"{r['resourceType']}/{r['id']}" for r in pseudonymized.everything()}
    kinds = {r["resourceType"] for r in pseudonymized.everything()}

    dangling = [
        reference
        for resource in pseudonymized.everything()
        for reference in references(resource)
        if reference.split("/")[0] in kinds and reference not in exported
    ]
    assert dangling == []
    # Patients are not exported (fhirnet stores none of its own): their references are the
    # pseudonyms, the same in every resource of a subject.
    patients = {p for r in pseudonymized.everything() for p in patients_of(r)}
    assert patients == {f"Patient/{REGIME_A.pseudonym(p)}" for p in REAL_IDS}


def test_every_date_of_a_subject_moves_by_one_offset_so_every_interval_stays(
    identified: Export, pseudonymized: Export
) -> None:
    before = by_patient(identified, {p: p for p in REAL_IDS})
    after = by_patient(pseudonymized, {REGIME_A.pseudonym(p): p for p in REAL_IDS})

    assert set(before) == set(after) == set(REAL_IDS)
    offsets = {}
    for patient, resources in before.items():
        reference = dt.date.fromisoformat(scenario.REFERENCE_DATE)
        days = REGIME_A.date_offset(patient, reference)
        assert days != 0
        offsets[patient] = days
        shift = dt.timedelta(days=days)
        expected = Counter(
            (p, d + shift, rest) for r in resources if of_study_a(r) for p, d, rest in dated(r)
        )
        found = Counter((p, d, rest) for r in after[patient] for p, d, rest in dated(r))
        # The same dates at the same places, each moved by the patient's one offset: every
        # interval between two of them is what it was.
        assert found == expected, patient
        assert found.total() > 100
    assert len(set(offsets.values())) > 1  # per patient, not per study


def test_a_system_export_by_client_a_is_still_only_study_a(
    served: Served, pseudonymized: Export
) -> None:
    token = served.token(KEY_A, "cro-a")

    system = served.export("/fhir/$export", token)

    assert system.manifest["extension"]["pseudonymization"]["study"] == STUDY_A
    assert {o["type"]: o["count"] for o in system.manifest["output"]} == {
        o["type"]: o["count"] for o in pseudonymized.manifest["output"]
    }
    patients = {p for r in system.everything() for p in patients_of(r)}
    assert patients == {f"Patient/{REGIME_A.pseudonym(p)}" for p in REAL_IDS}
    for plain in system.plain.values():
        assert_nothing_leaks(plain)


def test_a_second_export_gives_the_same_pseudonyms_study_b_other_ones(
    served: Served, pseudonymized: Export
) -> None:
    again = served.export(
        f"/fhir/Group/{served.groups[STUDY_A]}/$export", served.token(KEY_A, "cro-a")
    )
    in_b = served.export(
        f"/fhir/Group/{served.groups[STUDY_B]}/$export", served.token(KEY_B, "cro-b")
    )

    ids = {(r["resourceType"], r["id"]) for r in pseudonymized.everything()}
    assert {(r["resourceType"], r["id"]) for r in again.everything()} == ids
    for kind, found in again.resources.items():
        first = {r["id"]: r for r in pseudonymized.resources[kind]}
        for resource in found:  # the same content but the server time of the export
            assert {k: v for k, v in resource.items() if k != "meta"} == {
                k: v for k, v in first[resource["id"]].items() if k != "meta"
            }
    shared = {p for s in SHARED for p in [scenario.patient(PREFIX, s).removeprefix("Patient/")]}
    patients_b = {p for r in in_b.everything() for p in patients_of(r)}
    assert patients_b == {f"Patient/{REGIME_B.pseudonym(p)}" for p in shared}
    assert not {REGIME_A.pseudonym(p) for p in shared} & {p[8:] for p in patients_b}
    b_ids = {(r["resourceType"], r["id"]) for r in in_b.everything()}
    assert not b_ids & ids
    assert in_b.manifest["extension"]["pseudonymization"]["study"] == STUDY_B
    for plain in in_b.plain.values():
        assert_nothing_leaks(plain)


def test_the_sdtm_export_of_a_leaks_nothing_and_agrees_with_the_ndjson(
    served: Served, pseudonymized: Export, tmp_path: Path
) -> None:
    out = tmp_path / "sdtm"

    sdtm_export(served, out)

    files = sorted(p for p in out.iterdir() if p.suffix in (".json", ".xpt", ".csv"))
    assert {p.suffix for p in files} == {".json", ".xpt", ".csv"}
    for path in files:
        raw = path.read_bytes()
        for secret in (*MARKERS, *REAL_IDS, PREFIX):
            assert secret.encode() not in raw, (path.name, secret)
    dm = dm_rows(out)
    starts = research_subject_starts(pseudonymized)
    assert {row["SUBJID"]: row["RFSTDTC"] for row in dm} == {
        number: start[:10] for number, start in starts.items()
    }
    assert scenario.REFERENCE_DATE not in {row["RFSTDTC"] for row in dm}


def test_a_cancelled_export_is_gone_and_so_are_its_files(served: Served) -> None:
    token = served.token(IDENTIFIED_KEY, "registry")
    group = served.groups[STUDY_A]
    finished = served.kick_off(f"/fhir/Group/{group}/$export?_type=Group", token)
    manifest = served.wait(finished.headers["Content-Location"], token).json()
    running = served.kick_off("/fhir/$export", token)
    assert running.status_code == 202

    for answer in (finished, running):
        location = answer.headers["Content-Location"]
        cancelled = requests.delete(
            location, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert cancelled.status_code == 202
        gone = served.get(location, token)
        assert gone.status_code == 404
        assert gone.json()["resourceType"] == "OperationOutcome"
    assert served.get(manifest["output"][0]["url"], token).status_code == 404


def test_a_pseudonymized_token_opens_no_search_nor_another_client_s_files(
    served: Served, pseudonymized: Export
) -> None:
    token_a = served.token(KEY_A, "cro-a")
    identified_token = served.token(IDENTIFIED_KEY, "registry")

    assert served.get("/fhir/DiagnosticReport", token_a).status_code == 403
    assert served.get("/fhir/DiagnosticReport", identified_token).status_code == 200
    url = pseudonymized.manifest["output"][0]["url"]
    assert served.get(url, identified_token).status_code == 403
    assert served.get(url, token_a).status_code == 200


def test_client_a_s_export_holds_no_enrolment_in_another_study(pseudonymized: Export) -> None:
    text = b"".join(pseudonymized.plain.values()).decode()

    assert set(studies_of(pseudonymized)) == {STUDY_A}
    assert f"/research-study/{STUDY_B}/" not in text


def test_under_study_days_every_subject_starts_on_2000_01_01_and_keeps_its_intervals(
    study_days: Served, tmp_path: Path
) -> None:
    group = f"/fhir/Group/{study_days.groups[STUDY_A]}/$export"
    identified = study_days.export(group, study_days.token(IDENTIFIED_KEY, "registry"))
    pseudonymized = study_days.export(group, study_days.token(KEY_A, "cro-a"))

    assert pseudonymized.manifest["extension"]["pseudonymization"]["dates"] == "study-day"
    assert set(research_subject_starts(pseudonymized).values()) == {"2000-01-01"}
    shift = dt.date(2000, 1, 1) - dt.date.fromisoformat(scenario.REFERENCE_DATE)
    before = by_patient(identified, {p: p for p in REAL_IDS})
    after = by_patient(pseudonymized, {REGIME_A.pseudonym(p): p for p in REAL_IDS})
    for patient, resources in before.items():
        expected = Counter(
            (p, d + shift, rest) for r in resources if of_study_a(r) for p, d, rest in dated(r)
        )
        found = Counter((p, d, rest) for r in after[patient] for p, d, rest in dated(r))
        assert found == expected, patient
    for plain in pseudonymized.plain.values():
        assert_nothing_leaks(plain)
        assert scenario.REFERENCE_DATE.encode() not in plain
    # SDTM: no calendar date at all, only study days.
    sdtm_export(study_days, tmp_path / "sdtm")
    assert {row["RFSTDTC"] for row in dm_rows(tmp_path / "sdtm")} == {None}
