"""Re-assessing stored exams after an upgrade of the rules (``docs/criteria-v2.md``): an exam
whose stored report no longer says what the running rules conclude is rewritten, amended; the
others are left alone, and a second run writes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from fhirnet.adapters.store import EmbeddedStore
from fhirnet.criteria import Response
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.ports import Json
from fhirnet.services import Context, submit
from fhirnet.services.reassessment import patients_with_forms, reassess
from fhirnet.web.cli import main
from tests.submissions import CHOI, RECIST, form, form_paths

#: The RECIST example's last exam: SD under criteria version 1, a continuing PR under version 2.
CONTINUING_PR = dt.date(2026, 4, 13)


@pytest.fixture
def store(embedded: EmbeddedStore) -> EmbeddedStore:
    """The embedded store itself (the conftest's ``context`` writes to it through a recorder)."""
    return embedded


def submit_patient(context: Context, patient: str) -> None:
    for path in form_paths(patient):
        submit(form(patient, int(path.name[:2])), context)


def reports(store: EmbeddedStore, patient: str) -> dict[str, Json]:
    found = store.search("DiagnosticReport", {"subject": f"Patient/{patient}"})
    return {report["effectiveDateTime"]: report for report in found}


def write_as_version_1(store: EmbeddedStore, report: Json) -> None:
    """Put back the report as criteria version 1 wrote it: SD, not a continuing PR."""
    sd = RESPONSE_CATEGORIES[Response.SD]
    old = {
        **report,
        "conclusionCode": [{"coding": [sd.json()]}],
        "conclusion": "RECIST 1.1: SD. (as written by criteria version 1)",
    }
    store.transaction(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": old,
                    "request": {"method": "PUT", "url": f"DiagnosticReport/{report['id']}"},
                }
            ],
        }
    )


def category(report: Json) -> str:
    codes = {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()}
    return codes[report["conclusionCode"][0]["coding"][0]["code"]]


def test_an_exam_written_under_the_old_rules_is_rewritten_amended_and_no_other(
    context: Context, store: EmbeddedStore
) -> None:
    submit_patient(context, RECIST)
    before = reports(store, RECIST)
    write_as_version_1(store, before[str(CONTINUING_PR)])
    versions = {day: reports(store, RECIST)[day]["meta"]["versionId"] for day in before}

    found = reassess(RECIST, context)

    assert found.stale == (CONTINUING_PR,)
    assert found.written
    assert found.exams == len(before)
    after = reports(store, RECIST)
    rewritten = after[str(CONTINUING_PR)]
    assert category(rewritten) == "PR"
    assert rewritten["status"] == "amended"
    assert "continuing PR" in rewritten["conclusion"]
    unchanged = {day for day in before if day != str(CONTINUING_PR)}
    assert {day: after[day]["meta"]["versionId"] for day in unchanged} == {
        day: versions[day] for day in unchanged
    }


def test_a_second_run_finds_nothing_stale_and_writes_nothing(
    context: Context, store: EmbeddedStore
) -> None:
    submit_patient(context, RECIST)
    write_as_version_1(store, reports(store, RECIST)[str(CONTINUING_PR)])
    reassess(RECIST, context)
    versions = {day: r["meta"]["versionId"] for day, r in reports(store, RECIST).items()}

    again = reassess(RECIST, context)

    assert again.stale == ()
    assert not again.written
    assert {day: r["meta"]["versionId"] for day, r in reports(store, RECIST).items()} == versions


def test_results_written_by_the_running_rules_are_not_stale(context: Context) -> None:
    submit_patient(context, CHOI)

    assert reassess(CHOI, context).stale == ()


def test_a_dry_run_names_the_stale_exams_and_writes_nothing(
    context: Context, store: EmbeddedStore
) -> None:
    submit_patient(context, RECIST)
    write_as_version_1(store, reports(store, RECIST)[str(CONTINUING_PR)])

    found = reassess(RECIST, context, dry_run=True)

    assert found.stale == (CONTINUING_PR,)
    assert not found.written
    assert category(reports(store, RECIST)[str(CONTINUING_PR)]) == "SD"


def test_the_rewrite_is_audited_in_the_same_transaction(
    context: Context, store: EmbeddedStore
) -> None:
    submit_patient(context, RECIST)
    write_as_version_1(store, reports(store, RECIST)[str(CONTINUING_PR)])

    reassess(RECIST, context)

    (event,) = [e for e in store.search("AuditEvent", {}) if e["action"] == "U"]
    assert [e["what"]["reference"] for e in event["entity"]] == [f"Patient/{RECIST}"]
    assert event["agent"][0]["who"]["identifier"]["value"] == "key:0"


def test_every_patient_with_a_form_is_found(context: Context) -> None:
    submit_patient(context, RECIST)
    submit_patient(context, CHOI)

    assert patients_with_forms(context) == sorted([RECIST, CHOI])


def test_the_command_reports_stale_exams_per_patient(
    context: Context, store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit_patient(context, RECIST)
    write_as_version_1(store, reports(store, RECIST)[str(CONTINUING_PR)])
    monkeypatch.setenv("FHIRNET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FHIRNET_FHIR_BASE_URL", raising=False)

    dry = CliRunner().invoke(main, ["reassess", "--all", "--dry-run"])
    done = CliRunner().invoke(main, ["reassess", RECIST])
    again = CliRunner().invoke(main, ["reassess", RECIST])

    assert dry.exit_code == 0, dry.output
    assert dry.output == f"{RECIST}: 6 exam(s) assessed; stale: {CONTINUING_PR}\n"
    assert done.output == f"{RECIST}: 6 exam(s) assessed; rewritten: {CONTINUING_PR}\n"
    assert again.output == f"{RECIST}: 6 exam(s) assessed; rewritten: none\n"


def test_the_command_needs_patients_or_all() -> None:
    result = CliRunner().invoke(main, ["reassess"])

    assert result.exit_code == 2
    assert "name the patients, or give --all" in result.output
