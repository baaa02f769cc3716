"""The SDTM export of a study with a pseudonymization regime (``FHIRNET_STUDY_SECRETS_FILE``):
the multicenter trial scenario (tests/trials_scenario.py) with a name, an MRN and a free-text
phrase planted in the store, exported by ``fhirnet study export`` and the API. Dates move by one
offset per subject (the one the FHIR export uses), ``--DY`` stays, nothing planted leaves, the
manifest states the regime, and the secret is in no output."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import ConfigError, Settings
from fhirnet.fhir.pseudonymize import STUDY_DAY_ANCHOR, DateRegime, Regime
from fhirnet.web.app import create_app
from fhirnet.web.cli import main
from tests import trials_scenario as scenario
from tests.submissions import NOW

STUDY = "NET-PSEUDO"
PREFIX = "mrn99887766"  # the patients' ids carry a hospital number: it must not leave
SECRET = "the-NET-PSEUDO-secret-kept-on-site-0123456789"  # noqa: S105 - a test secret
OTHER_SECRET = "another-secret-for-the-same-data-9876543210"  # noqa: S105
NAME = "Zebulon Quaxmire"
MRN = "MRN-99887766"
PHRASE = "patient mentioned the lake house"
MARKERS = (NAME, MRN, PHRASE, PREFIX, SECRET, OTHER_SECRET)
DOMAINS = ("TU", "TR", "RS", "DM")
FORMATS = ("json", "xpt", "csv")

Records = dict[str, list[dict[str, Any]]]


def secrets_file(folder: Path, secret: str, dates: str) -> Path:
    path = folder / f"secrets-{dates}-{secret[:7]}.json"
    path.write_text(json.dumps({STUDY: {"secret": secret, "dates": dates}}))
    return path


def plant(store: EmbeddedStore) -> None:
    """A Patient with name, MRN and narrative for every subject; the reader's name and a
    free-text phrase on every form and report."""
    entries: list[dict[str, Any]] = []
    for subject in scenario.SUBJECTS:
        patient_id = scenario.patient(PREFIX, subject).removeprefix("Patient/")
        entries.append(
            {
                "resourceType": "Patient",
                "id": patient_id,
                "text": {"status": "generated", "div": f"<div>{NAME} {PHRASE}</div>"},
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.1", "value": MRN}],
                "name": [{"text": NAME}],
                "birthDate": "1950-07-04",
            }
        )
        params = {"subject": f"Patient/{patient_id}", "_count": "500"}
        for form in store.search("QuestionnaireResponse", params):
            form["author"]["display"] = f"Dr. {NAME}"
            form["text"] = {"status": "generated", "div": f"<div>{PHRASE} {MRN}</div>"}
            entries.append(form)
        for report in store.search("DiagnosticReport", params):
            report["conclusion"] = f"{PHRASE}. {report.get('conclusion', '')}"
            for interpreter in report.get("resultsInterpreter", []):
                interpreter["display"] = NAME
            entries.append(report)
    store.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in entries
            ],
        }
    )
    planted = store.read("Patient", entries[0]["id"])
    assert planted is not None
    assert planted["name"] == [{"text": NAME}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pseudo")


@pytest.fixture(scope="module")
def played(folder: Path) -> tuple[Path, FlaskClient]:
    data_dir = folder / "data"
    store = EmbeddedStore.open(data_dir)
    settings = Settings(
        data_dir=data_dir,
        auth="none",
        study_secrets_file=secrets_file(folder, SECRET, "shift"),
    )
    app = create_app(settings, store=store, clock=lambda: NOW, durable=False)
    app.config["TESTING"] = True
    client = app.test_client()
    scenario.run(client, STUDY, PREFIX)
    plant(store)
    return data_dir, client


def export(data_dir: Path, out: Path, secrets: Path | None) -> tuple[Result, dict[str, Any]]:
    env = {
        "FHIRNET_DATA_DIR": str(data_dir),
        "FHIRNET_FHIR_BASE_URL": None,
        "FHIRNET_STUDY_SECRETS_FILE": None if secrets is None else str(secrets),
    }
    result = CliRunner().invoke(main, ["study", "export", STUDY, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return result, json.loads(result.stdout)


def records(out: Path) -> Records:
    found = {}
    for domain in DOMAINS:
        document = json.loads((out / f"{domain.lower()}.json").read_text())
        names = [c["name"] for c in document["columns"]]
        found[domain] = [dict(zip(names, row, strict=True)) for row in document["rows"]]
    return found


@pytest.fixture(scope="module")
def exports(played: tuple[Path, FlaskClient], folder: Path) -> dict[str, tuple[Path, Result]]:
    """The identified export, the shift export twice, the shift export under another secret
    and the study-day export: output folder and command result of each."""
    data_dir, _ = played
    runs = {
        "identified": None,
        "shift": secrets_file(folder, SECRET, "shift"),
        "shift-again": secrets_file(folder, SECRET, "shift"),
        "other-secret": secrets_file(folder, OTHER_SECRET, "shift"),
        "study-day": secrets_file(folder, SECRET, "study-day"),
    }
    found = {}
    for name, secrets in runs.items():
        out = folder / f"out-{name}"
        result, _manifest = export(data_dir, out, secrets)
        found[name] = (out, result)
    return found


def dates_of(rows: list[dict[str, Any]]) -> Iterator[tuple[str, str, str | None]]:
    for row in rows:
        for name, value in row.items():
            if name.endswith("DTC"):
                yield row["USUBJID"], name, value


def without_dtc(found: Records) -> Records:
    return {
        d: [{k: v for k, v in r.items() if not k.endswith("DTC")} for r in rows]
        for d, rows in found.items()
    }


def patient_of(usubjid: str) -> str:
    subject = next(s for s in scenario.SUBJECTS if usubjid == f"{STUDY}-{s.site}-{s.number}")
    return scenario.patient(PREFIX, subject).removeprefix("Patient/")


def offsets(identified: Records, pseudonymized: Records) -> dict[str, set[int]]:
    """Per USUBJID, the day differences between the pseudonymized and the identified dates."""
    found: dict[str, set[int]] = {}
    for domain in DOMAINS:
        pairs = zip(dates_of(identified[domain]), dates_of(pseudonymized[domain]), strict=True)
        for (usubjid, name, before), (same_subject, same_name, after) in pairs:
            assert (usubjid, name) == (same_subject, same_name)
            assert before is not None
            assert after is not None
            days = (dt.date.fromisoformat(after) - dt.date.fromisoformat(before)).days
            found.setdefault(usubjid, set()).add(days)
    return found


def test_dates_move_by_one_offset_per_subject_the_fhir_export_uses(
    exports: dict[str, tuple[Path, Result]],
) -> None:
    identified = records(exports["identified"][0])
    shifted = records(exports["shift"][0])
    found = offsets(identified, shifted)
    assert set(found) == {f"{STUDY}-{s.site}-{s.number}" for s in scenario.SUBJECTS}
    regime = Regime(study_id=STUDY, secret=SECRET.encode(), dates=DateRegime.SHIFT)
    reference = dt.date.fromisoformat(scenario.REFERENCE_DATE)
    for usubjid, days in found.items():
        assert days == {regime.date_offset(patient_of(usubjid), reference)}
        assert 0 not in days
    assert len({next(iter(d)) for d in found.values()}) > 1  # per patient, not per study


def test_study_days_visits_and_everything_else_are_those_of_the_identified_export(
    exports: dict[str, tuple[Path, Result]],
) -> None:
    identified = records(exports["identified"][0])
    for name in ("shift", "other-secret", "study-day"):
        assert without_dtc(records(exports[name][0])) == without_dtc(identified)
    assert any(r["TRDY"] == -1 for r in identified["TR"])  # the baseline, day -1 (no day 0)


def test_under_study_day_the_dates_are_empty_and_the_study_days_stay(
    exports: dict[str, tuple[Path, Result]],
) -> None:
    found = records(exports["study-day"][0])
    assert {value for domain in DOMAINS for _, _, value in dates_of(found[domain])} == {None}
    assert STUDY_DAY_ANCHOR.isoformat() not in (exports["study-day"][0] / "dm.csv").read_text()
    assert {r["TRDY"] for r in found["TR"]} >= {-1, 29, 57, 113, 169}


def test_the_export_is_stable_and_differs_under_another_secret(
    exports: dict[str, tuple[Path, Result]],
) -> None:
    shifted = records(exports["shift"][0])
    assert records(exports["shift-again"][0]) == shifted
    for domain in FORMATS[1:]:
        for name in ("tr", "dm"):
            first = (exports["shift"][0] / f"{name}.{domain}").read_bytes()
            again = (exports["shift-again"][0] / f"{name}.{domain}").read_bytes()
            assert first == again or domain == "xpt"  # XPT headers hold the creation time
    other = records(exports["other-secret"][0])
    assert [d for _, _, d in dates_of(other["DM"])] != [d for _, _, d in dates_of(shifted["DM"])]


@pytest.mark.parametrize("name", ["shift", "study-day", "identified"])
def test_no_planted_marker_nor_the_secret_is_in_any_exported_byte(
    exports: dict[str, tuple[Path, Result]], name: str
) -> None:
    out, result = exports[name]
    files = sorted(out.iterdir())
    assert {f.name for f in files} == {
        "manifest.json",
        *(f"{d.lower()}.{f}" for d in DOMAINS for f in FORMATS),
    }
    for path in files:
        content = path.read_bytes()
        for marker in MARKERS:
            assert marker.encode() not in content, (path.name, marker)
            assert marker.upper().encode() not in content, (path.name, marker)
    for marker in MARKERS:
        assert marker not in result.output
        assert marker not in result.stderr


def test_the_manifest_states_the_regime(exports: dict[str, tuple[Path, Result]]) -> None:
    def manifest(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((exports[name][0] / "manifest.json").read_text())
        return loaded

    shift = manifest("shift")["pseudonymization"]
    assert shift["regime"] == "pseudonymized"
    assert shift["dates"] == "shift"
    assert shift["study"] == STUDY
    assert "HMAC-SHA256" in shift["pseudonyms"]
    assert manifest("study-day")["pseudonymization"]["dates"] == "study-day"
    assert manifest("identified")["pseudonymization"]["regime"] == "identified"


@pytest.mark.parametrize("file_format", FORMATS)
def test_the_api_answers_the_pseudonymized_rows(
    played: tuple[Path, FlaskClient],
    exports: dict[str, tuple[Path, Result]],
    file_format: str,
) -> None:
    _, client = played
    for domain in DOMAINS:
        answer = client.get(f"/api/v1/studies/{STUDY}/sdtm/{domain}?format={file_format}")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        for marker in MARKERS:
            assert marker.encode() not in answer.data
        if file_format == "csv":
            expected = (exports["shift"][0] / f"{domain.lower()}.csv").read_bytes()
            assert answer.data == expected
        elif file_format == "json":
            document = json.loads(answer.data)
            names = [c["name"] for c in document["columns"]]
            rows = [dict(zip(names, r, strict=True)) for r in document["rows"]]
            assert rows == records(exports["shift"][0])[domain]
    assert STUDY in client.application.extensions["fhirnet"].regimes


def test_a_broken_secrets_file_stops_the_export_without_showing_the_secret(
    played: tuple[Path, FlaskClient], folder: Path
) -> None:
    data_dir, _ = played
    broken = folder / "broken.json"
    broken.write_text(json.dumps({STUDY: {"secret": SECRET, "dates": "monthly"}}))
    env = {
        "FHIRNET_DATA_DIR": str(data_dir),
        "FHIRNET_FHIR_BASE_URL": None,
        "FHIRNET_STUDY_SECRETS_FILE": str(broken),
    }
    out = folder / "out-broken"
    result = CliRunner().invoke(main, ["study", "export", STUDY, "--out", str(out)], env=env)
    assert result.exit_code != 0
    assert str(broken) in result.output + result.stderr
    assert SECRET not in result.output + result.stderr
    assert not out.exists()


def test_a_broken_secrets_file_stops_the_service_at_start_without_showing_the_secret(
    folder: Path,
) -> None:
    broken = folder / "broken-at-start.json"
    broken.write_text(json.dumps({STUDY: {"secret": SECRET, "dates": "monthly"}}))
    settings = Settings(data_dir=folder / "data", auth="none", study_secrets_file=broken)

    with pytest.raises(ConfigError) as raised:
        create_app(settings)

    assert STUDY in str(raised.value)
    assert SECRET not in str(raised.value)
