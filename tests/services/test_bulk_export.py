"""The Bulk Data export use case on the embedded store: what each level exports (a Group exactly
its members' data), ``_since``, ``_typeFilter``, ``_elements``, the token's types, the
transform, cancellation, failure, the audit record, and that it searches in batches of
patients rather than holding a type in memory. (The same against a real FHIR server:
``tests/integration/test_bulk_export.py``.)"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench.bulk_export import write_study
from fhirnet.adapters.export_jobs import ExportJobs, JobStatus
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.errors import FhirServerUnavailableError
from fhirnet.fhir.audit import patients_of
from fhirnet.fhir.bulk_parameters import Level, export_request
from fhirnet.fhir.outcome import MalformedRequestError
from fhirnet.fhir.subsetting import SUBSETTED
from fhirnet.ports import Json, SearchParams
from fhirnet.services import Context
from fhirnet.services.bulk_export import (
    PATIENT_BATCH,
    ExportPlan,
    group_members,
    plan_export,
    run_export,
    study_group,
)
from tests.submissions import RecordingStore

PER_VISIT = {"QuestionnaireResponse": 1, "Observation": 5, "DiagnosticReport": 1, "Provenance": 1}


class SearchRecordingStore(RecordingStore):
    """The embedded store, noting every search (type and parameters)."""

    def __init__(self, inner: EmbeddedStore) -> None:
        super().__init__(inner)
        self.searches: list[tuple[str, dict[str, Any]]] = []

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        self.searches.append((resource_type, dict(params)))
        return self.inner.search(resource_type, params)


class FailingSearchStore(RecordingStore):
    """A server that goes away once the export searches."""

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        raise FhirServerUnavailableError("down")


@pytest.fixture
def jobs(tmp_path: Path) -> ExportJobs:
    return ExportJobs(tmp_path / "jobs")


@pytest.fixture
def study(embedded: EmbeddedStore) -> tuple[str, str]:
    """Two studies of 3 subjects x 2 visits each; their Groups' ids."""
    return (
        write_study(embedded, 3, 2, prefix="a"),
        write_study(embedded, 3, 2, prefix="b", study_id="OTHER-STUDY"),
    )


def export(
    context: Context,
    jobs: ExportJobs,
    level: Level,
    pairs: list[tuple[str, str]] | None = None,
    *,
    group_id: str | None = None,
    readable: Any = lambda _: True,
    transform: Any = None,
) -> tuple[dict[str, list[Json]], ExportPlan, str]:
    """Run an export to its end; its files' resources by type, the plan and the job id."""
    now = dt.datetime.now(dt.UTC)
    request = export_request(level, pairs or [], now=now, group_id=group_id)
    members = group_members(context.store, group_id) if group_id else None
    plan = plan_export(context.store, request, readable=readable, members=members)
    job = jobs.create(owner="key:0", request="r", transaction_time="t", now=time.time())
    assert run_export(
        context,
        plan,
        job_id=job.id,
        files=jobs,
        request_url="https://x.test/fhir/$export",
        expires_at=lambda: time.time() + 60,
        transform=transform,
    )
    done = jobs.get(job.id)
    assert done is not None
    assert done.status is JobStatus.DONE
    found = {}
    for output in done.outputs:
        path = jobs.file(job.id, output.name)
        assert path is not None
        lines = path.read_text().splitlines()
        assert len(lines) == output.count
        found[output.resource_type] = [json.loads(line) for line in lines]
    return found, plan, job.id


def counts(found: dict[str, list[Json]]) -> dict[str, int]:
    return {kind: len(resources) for kind, resources in found.items()}


def test_a_group_export_holds_exactly_its_members_data_and_the_group(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    group_a, _ = study

    found, _, _ = export(context, jobs, Level.GROUP, group_id=group_a)

    visits = 3 * 2
    assert counts(found) == {
        **{kind: n * visits for kind, n in PER_VISIT.items()},
        "BodyStructure": 3 * 3,
        "ResearchSubject": 3,
        "Group": 1,
    }
    patients = {p for resources in found.values() for r in resources for p in patients_of(r)}
    assert patients == {f"Patient/a{n:05d}" for n in range(3)}
    forms = {f"QuestionnaireResponse/{r['id']}" for r in found["QuestionnaireResponse"]}
    sources = {e["what"]["reference"] for p in found["Provenance"] for e in p["entity"]}
    assert sources == forms
    assert found["Group"][0]["id"] == group_a


def test_a_system_export_holds_every_type_but_audit_events(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    found, _, _ = export(context, jobs, Level.SYSTEM)

    assert counts(found) == {
        "QuestionnaireResponse": 12,
        "BodyStructure": 18,
        "Observation": 60,
        "DiagnosticReport": 12,
        "Provenance": 12,
        "ResearchStudy": 2,
        "ResearchSubject": 6,
        "Group": 2,
    }
    assert "AuditEvent" in [e["resource"]["resourceType"] for e in context.store.sent[-1]["entry"]]  # type: ignore[attr-defined]


def test_a_patient_export_with_patient_covers_those_patients_only(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    found, _, _ = export(context, jobs, Level.PATIENT, [("patient", "Patient/b00001")])

    assert counts(found) == {
        "QuestionnaireResponse": 2,
        "BodyStructure": 3,
        "Observation": 10,
        "DiagnosticReport": 2,
        "Provenance": 2,
        "ResearchSubject": 1,
    }
    patients = {p for resources in found.values() for r in resources for p in patients_of(r)}
    assert patients == {"Patient/b00001"}


def test_patient_in_a_group_export_keeps_to_the_groups_members(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    group_a, _ = study
    pairs = [("patient", "Patient/a00000"), ("patient", "Patient/b00000"), ("_type", "Observation")]

    found, plan, _ = export(context, jobs, Level.GROUP, pairs, group_id=group_a)

    assert plan.patients == ("a00000",)
    assert {r["subject"]["reference"] for r in found["Observation"]} == {"Patient/a00000"}


def test_since_exports_what_changed_after_it(
    embedded: EmbeddedStore, context: Context, jobs: ExportJobs
) -> None:
    write_study(embedded, 2, 1, prefix="old")
    time.sleep(0.01)
    since = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    write_study(embedded, 1, 1, prefix="new")

    found, _, _ = export(context, jobs, Level.SYSTEM, [("_since", since.isoformat())])

    patients = {p for resources in found.values() for r in resources for p in patients_of(r)}
    assert patients == {"Patient/new00000"}
    assert counts(found)["Observation"] == 5


def test_type_filters_are_or_ed_and_each_resource_written_once(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    pairs = [
        ("_type", "Observation"),
        ("_typeFilter", "Observation?code=33728-7"),
        ("_typeFilter", "Observation?code=33728-7,44667-4"),  # overlaps the first
    ]

    found, _, _ = export(context, jobs, Level.SYSTEM, pairs)

    codes = [r["code"]["coding"][0]["code"] for r in found["Observation"]]
    assert sorted(set(codes)) == ["33728-7", "44667-4"]
    assert len(codes) == len({r["id"] for r in found["Observation"]}) == 12 * 4


def test_a_type_filter_the_store_cannot_run_is_refused_at_kick_off(
    context: Context, study: tuple[str, str]
) -> None:
    now = dt.datetime.now(dt.UTC)
    request = export_request(Level.SYSTEM, [("_typeFilter", "Observation?nothing=1")], now=now)

    with pytest.raises(MalformedRequestError):
        plan_export(context.store, request, readable=lambda _: True)


def test_elements_subset_and_tag_the_resources(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    pairs = [("_type", "Observation,DiagnosticReport"), ("_elements", "Observation.code")]

    found, _, _ = export(context, jobs, Level.SYSTEM, pairs)

    observation = found["Observation"][0]
    assert set(observation) == {"resourceType", "id", "meta", "code", "status"}  # status: 1..1
    assert SUBSETTED in observation["meta"]["tag"]
    assert "result" in found["DiagnosticReport"][0]  # _elements names Observation only


def test_only_types_the_token_may_read_are_exported(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    found, plan, _ = export(
        context, jobs, Level.SYSTEM, readable=lambda kind: kind == "DiagnosticReport"
    )

    assert list(found) == ["DiagnosticReport"]
    assert plan.notes == ()  # nothing was asked for by name


def test_the_transform_sees_every_resource_with_its_patient(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    group_a, _ = study
    seen: list[tuple[str, str | None]] = []

    def transform(resource: Json, patient: str | None) -> Json:
        seen.append((resource["resourceType"], patient))
        return {**resource, "id": "x"}

    found, _, _ = export(
        context,
        jobs,
        Level.GROUP,
        [("_type", "Provenance,Observation,Group")],
        group_id=group_a,
        transform=transform,
    )

    assert {r["id"] for resources in found.values() for r in resources} == {"x"}
    members = {f"a{n:05d}" for n in range(3)}
    # A Provenance is its source form's patient's; the Group is nobody's.
    assert {p for kind, p in seen if kind == "Provenance"} == members
    assert {p for kind, p in seen if kind == "Observation"} == members
    assert [p for kind, p in seen if kind == "Group"] == [None]


def test_the_enrolment_group_of_a_study_with_reference_dates(
    embedded: EmbeddedStore, study: tuple[str, str]
) -> None:
    found = study_group(embedded, "BENCH-STUDY")

    assert found is not None
    assert found.group_id == study[0]
    assert len(found.members) == 3
    assert set(found.reference_dates.values()) == {dt.date(2025, 1, 13)}
    assert study_group(embedded, "NO-SUCH-STUDY") is None


def test_lenient_notes_go_to_the_error_file(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    now = dt.datetime.now(dt.UTC)
    request = export_request(Level.SYSTEM, [("_type", "Group,Foo")], now=now, lenient=True)
    plan = plan_export(context.store, request, readable=lambda _: True)
    job = jobs.create(owner="o", request="r", transaction_time="t", now=time.time())

    run_export(context, plan, job_id=job.id, files=jobs, request_url="u", expires_at=time.time)

    done = jobs.get(job.id)
    assert done is not None
    assert [(f.resource_type, f.count) for f in done.errors] == [("OperationOutcome", 1)]
    path = jobs.file(job.id, done.errors[0].name)
    assert path is not None
    outcome = json.loads(path.read_text())
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Foo" in outcome["issue"][0]["diagnostics"]


def test_one_audit_event_names_the_requester_the_query_counts_and_patients(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    group_a, _ = study
    store: RecordingStore = context.store  # type: ignore[assignment]
    before = len(store.sent)

    export(context, jobs, Level.GROUP, group_id=group_a)

    assert len(store.sent) == before + 1
    event = store.sent[-1]["entry"][0]["resource"]
    assert event["resourceType"] == "AuditEvent"
    assert event["agent"][0]["who"]["identifier"]["value"] == "key:0"
    query, *patients = event["entity"]
    details = {d["type"]: d["valueString"] for d in query["detail"]}
    assert details["exported Observation"] == "30"
    assert details["patients"] == "3"
    assert sorted(p["what"]["reference"] for p in patients) == [
        f"Patient/a{n:05d}" for n in range(3)
    ]


def test_a_group_is_searched_in_batches_of_patients(
    embedded: EmbeddedStore, catalog: Any, jobs: ExportJobs, context: Context
) -> None:
    group = write_study(embedded, PATIENT_BATCH + 1, 1, prefix="s")
    recording = SearchRecordingStore(embedded)

    found, _, _ = export(
        replace(context, store=recording),
        jobs,
        Level.GROUP,
        [("_type", "Observation")],
        group_id=group,
    )

    assert len(found["Observation"]) == 5 * (PATIENT_BATCH + 1)
    searched = [params["patient"] for kind, params in recording.searches if kind == "Observation"]
    assert [value.count(",") + 1 for value in searched] == [PATIENT_BATCH, 1]


def test_a_cancelled_export_stops_and_leaves_no_files(
    context: Context, jobs: ExportJobs, study: tuple[str, str]
) -> None:
    now = dt.datetime.now(dt.UTC)
    plan = plan_export(
        context.store, export_request(Level.SYSTEM, [], now=now), readable=lambda _: True
    )
    job = jobs.create(owner="o", request="r", transaction_time="t", now=time.time())
    jobs.cancel(job.id)

    assert not run_export(
        context, plan, job_id=job.id, files=jobs, request_url="u", expires_at=time.time
    )

    assert jobs.cancelled(job.id)
    assert not jobs.directory(job.id).exists()


def test_a_server_going_away_fails_the_job_as_transient(
    embedded: EmbeddedStore, context: Context, jobs: ExportJobs
) -> None:

    failing = replace(context, store=FailingSearchStore(embedded))
    plan = plan_export(
        embedded,
        export_request(Level.SYSTEM, [], now=dt.datetime.now(dt.UTC)),
        readable=lambda _: True,
    )
    job = jobs.create(owner="o", request="r", transaction_time="t", now=time.time())

    assert not run_export(
        failing, plan, job_id=job.id, files=jobs, request_url="u", expires_at=time.time
    )

    done = jobs.get(job.id)
    assert done is not None
    assert done.status is JobStatus.FAILED
    assert done.failure == "transient: FhirServerUnavailableError"
    event = failing.store.sent[-1]["entry"][0]["resource"]  # type: ignore[attr-defined]
    assert event["outcome"] == "8"  # serious failure, recorded


def test_an_unknown_group_has_no_members(embedded: EmbeddedStore) -> None:
    assert group_members(embedded, "nope") is None


def test_a_type_outside_the_level_is_refused_not_taken_for_a_missing_scope(
    embedded: EmbeddedStore,
) -> None:
    # bdt asks Patient/$export?_type=Group: 400 naming the level, where fhirnet said 403
    # "lacks the scope system/Group.r" to a token that had it.
    request = export_request(
        Level.PATIENT, [("_type", "Group,DiagnosticReport")], now=dt.datetime.now(dt.UTC)
    )

    with pytest.raises(MalformedRequestError) as raised:
        plan_export(embedded, request, readable=lambda _: True)

    assert [i.expression for i in raised.value.issues] == ["_type"]
    assert "Group is not exported at patient level" in raised.value.issues[0].message


def test_lenient_handling_notes_a_type_outside_the_level_unless_none_is_left(
    embedded: EmbeddedStore,
) -> None:
    now = dt.datetime.now(dt.UTC)
    mixed = export_request(
        Level.PATIENT, [("_type", "Group,DiagnosticReport")], now=now, lenient=True
    )
    only_group = export_request(Level.PATIENT, [("_type", "Group")], now=now, lenient=True)

    plan = plan_export(embedded, mixed, readable=lambda _: True)

    assert plan.types == ("DiagnosticReport",)
    assert ["Group" in n.message for n in plan.notes] == [True]
    with pytest.raises(MalformedRequestError):
        plan_export(embedded, only_group, readable=lambda _: True)
