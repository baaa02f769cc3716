"""Benchmark of FHIR Bulk Data export: a study's enrolment Group exported from the embedded store
at 100 and 1,000 subjects x 10 visits, with its time and memory, to show that the export streams
(its peak memory must not grow with the study).

    .venv/bin/python -m bench.bulk_export                         # 100 and 1,000 subjects
    .venv/bin/python -m bench.bulk_export --subjects 50 --visits 2  # smoke run

The study is generated straight into the store with transactions (one per subject: the
submission path would take far longer and is measured by ``submission_bench``). Per visit: a
QuestionnaireResponse (about 3 KB), 5 Observations (3 lesion measurements, their sum and the
response), a DiagnosticReport listing them and a Provenance targeting them with the form as its
source; per subject 3 lesion BodyStructures and a ResearchSubject; the ResearchStudy and its
enrolment Group with every subject. Each export runs in a fresh child process
(``--child``), which reports its wall time, its ``ru_maxrss`` (resident peak, KiB, of the whole
process: the interpreter and the FHIR models' imports included) and, in a second child, the
``tracemalloc`` peak of the export alone (Python allocations from just before the kick-off's
planning to the manifest).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhirnet.adapters.export_jobs import ExportJobs
from fhirnet.adapters.locks import FileLocks
from fhirnet.adapters.store import EmbeddedStore
from fhirnet.config import DEFAULT_PROFILES_DIR
from fhirnet.fhir.bulk_parameters import Level, export_request
from fhirnet.fhir.profiles import load_catalog
from fhirnet.fhir.studies import GROUP_SYSTEM, STUDY_SYSTEM, subject_system
from fhirnet.ports import FhirStore, Json
from fhirnet.services.audits import AuditTrail
from fhirnet.services.bulk_export import group_members, plan_export, run_export
from fhirnet.services.context import Context

STUDY_ID = "BENCH-STUDY"
SYSTEM = "urn:fhirnet:bench"
LOINC = "http://loinc.org"
QUESTIONNAIRE = "https://fhirnet.example.org/Questionnaire/net-imaging-crf|1.0.0"
START = date(2025, 1, 13)
LESIONS = ("liver", "liver", "lymph node")


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _post(resource: Json, full_url: str | None = None) -> Json:
    return {
        "fullUrl": full_url or _urn(),
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _form(patient: str, visit: int, day: date) -> Json:
    """A filled CRF of about 3 KB: the exam, three targets with sizes, two non-targets."""
    lesions = [
        {
            "linkId": "target-lesion",
            "item": [
                {"linkId": "lesion-id", "answer": [{"valueString": f"T{n + 1}"}]},
                {"linkId": "organ", "answer": [{"valueString": organ}]},
                {"linkId": "longest-diameter-mm", "answer": [{"valueDecimal": 20.0 - visit}]},
                {"linkId": "method", "answer": [{"valueString": "CT with contrast"}]},
            ],
        }
        for n, organ in enumerate(LESIONS)
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "identifier": {"system": SYSTEM, "value": f"form-{patient}-{visit}"},
        "questionnaire": QUESTIONNAIRE,
        "status": "completed",
        "subject": {"reference": f"Patient/{patient}"},
        "authored": f"{day.isoformat()}T12:00:00+01:00",
        "author": {"reference": "Practitioner/reader-nuclear-radiology"},
        "item": [
            {"linkId": "exam-date", "answer": [{"valueDate": day.isoformat()}]},
            {"linkId": "criteria", "answer": [{"valueString": "recist-1.1"}]},
            {"linkId": "assessment-type", "answer": [{"valueString": "follow-up"}]},
            *lesions,
            {"linkId": "non-target", "answer": [{"valueString": "present"}]},
            {"linkId": "non-target", "answer": [{"valueString": "present"}]},
            {"linkId": "comment", "answer": [{"valueString": "No new lesion. " * 20}]},
        ],
    }


def _observation(patient: str, code: str, value: float, day: date, form: str) -> Json:
    return {
        "resourceType": "Observation",
        "identifier": [{"system": SYSTEM, "value": _urn()}],
        "status": "final",
        "category": [{"coding": [{"system": LOINC, "code": "imaging"}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": f"{day.isoformat()}T10:00:00+01:00",
        "valueQuantity": {"value": value, "unit": "mm", "code": "mm"},
        "derivedFrom": [{"reference": form}],
    }


def subject_bundle(patient: str, visits: int) -> Json:
    """One subject's data: lesions, ``visits`` forms with their results and Provenance."""
    entries: list[Json] = []
    for n, organ in enumerate(LESIONS):
        entries.append(
            _post(
                {
                    "resourceType": "BodyStructure",
                    "identifier": [{"system": SYSTEM, "value": f"{patient}-T{n + 1}"}],
                    "location": {"text": organ},
                    "patient": {"reference": f"Patient/{patient}"},
                }
            )
        )
    for visit in range(visits):
        day = START + timedelta(days=56 * visit)
        form_url = _urn()
        entries.append(_post(_form(patient, visit, day), form_url))
        results = [
            _post(_observation(patient, code, 20.0 - visit, day, form_url))
            for code in ("33728-7", "33728-7", "33728-7", "21889-1", "44667-4")
        ]
        report = _post(
            {
                "resourceType": "DiagnosticReport",
                "identifier": [{"system": SYSTEM, "value": _urn()}],
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "18748-4"}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": f"{day.isoformat()}T10:00:00+01:00",
                "result": [{"reference": entry["fullUrl"]} for entry in results],
                "conclusion": "Stable disease (RECIST 1.1).",
            }
        )
        provenance = _post(
            {
                "resourceType": "Provenance",
                "target": [{"reference": e["fullUrl"]} for e in (*results, report)],
                "recorded": f"{day.isoformat()}T12:00:01+01:00",
                "agent": [{"who": {"display": "fhirnet"}}],
                "entity": [{"role": "source", "what": {"reference": form_url}}],
            }
        )
        entries += [*results, report, provenance]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def write_study(
    store: FhirStore, subjects: int, visits: int, *, prefix: str = "p", study_id: str = STUDY_ID
) -> str:
    """Generate a study of ``subjects`` x ``visits`` into ``store``; returns the enrolment
    Group's id."""
    patients = [f"{prefix}{n:05d}" for n in range(subjects)]
    for patient in patients:
        store.transaction(subject_bundle(patient, visits))
    group_url, study_url = _urn(), _urn()
    members = [
        {"entity": {"reference": f"Patient/{p}"}, "period": {"start": START.isoformat()}}
        for p in patients
    ]
    entries = [
        _post(
            {
                "resourceType": "Group",
                "identifier": [{"system": GROUP_SYSTEM, "value": study_id}],
                "type": "person",
                "actual": True,
                "quantity": len(members),
                "member": members,
            },
            group_url,
        ),
        _post(
            {
                "resourceType": "ResearchStudy",
                "identifier": [{"system": STUDY_SYSTEM, "value": study_id}],
                "status": "active",
                "enrollment": [{"reference": group_url}],
            },
            study_url,
        ),
    ]
    for number, patient in enumerate(patients):
        entries.append(
            _post(
                {
                    "resourceType": "ResearchSubject",
                    "identifier": [{"system": subject_system(study_id), "value": f"{number:04d}"}],
                    "status": "on-study",
                    "study": {"reference": study_url},
                    "individual": {"reference": f"Patient/{patient}"},
                }
            )
        )
    answer = store.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    location = str(answer["entry"][0]["response"]["location"])  # [base/]Group/<id>[/_history/n]
    return location.split("/_history/")[0].rstrip("/").split("/")[-1]


def export_group(
    data_dir: Path, group_id: str, *, trace: bool = False, batch: int = 1
) -> dict[str, Any]:
    """Export the Group from the store in ``data_dir``, as the kick-off's thread does; with
    ``trace``, the ``tracemalloc`` peak of the export alone (the catalog loaded before)."""
    store = EmbeddedStore.open(data_dir / "store")
    jobs = ExportJobs(data_dir)
    now = datetime.now(UTC)
    context = Context(
        store=store,
        catalog=load_catalog(DEFAULT_PROFILES_DIR),
        locks=FileLocks(data_dir / "locks", timeout=10),
        now=now,
        audit=AuditTrail(requester="bench"),
    )
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    members = group_members(store, group_id)
    request = export_request(Level.GROUP, [], now=now, group_id=group_id)
    plan = plan_export(store, request, readable=lambda _: True, members=members, batch=batch)
    job = jobs.create(owner="bench", request="bench", transaction_time="", now=now.timestamp())
    finished = run_export(
        context,
        plan,
        job_id=job.id,
        files=jobs,
        request_url=f"Group/{group_id}/$export",
        expires_at=lambda: time.time() + 3600,
    )
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    tracemalloc.stop()
    done = jobs.get(job.id)
    assert finished  # a benchmark of a working export
    assert done is not None
    size = sum(path.stat().st_size for path in jobs.directory(job.id).iterdir())
    return {
        "seconds": seconds,
        "resources": sum(f.count for f in done.outputs),
        "bytes": size,
        "counts": {f.resource_type: f.count for f in done.outputs},
        "tracemalloc_peak": peak,
    }


def _child(data_dir: Path, group_id: str, *, trace: bool) -> None:
    result = export_group(data_dir, group_id, trace=trace)
    result["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


def _run_child(data_dir: Path, group_id: str, *, trace: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.bulk_export", "--child", str(data_dir), group_id]
    if trace:
        command.append("--trace")
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--visits", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("DATA_DIR", "GROUP_ID"))
    parser.add_argument("--trace", action="store_true")
    arguments = parser.parse_args()
    if arguments.child:
        _child(Path(arguments.child[0]), arguments.child[1], trace=arguments.trace)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="fhirnet-bulk-bench-") as temporary:
        for subjects in arguments.subjects:
            data_dir = Path(temporary) / f"study-{subjects}"
            data_dir.mkdir()
            started = time.perf_counter()
            with EmbeddedStore.open(data_dir / "store") as store:
                group_id = write_study(store, subjects, arguments.visits)
            generated = time.perf_counter() - started
            timed = _run_child(data_dir, group_id, trace=False)
            traced = _run_child(data_dir, group_id, trace=True)
            rows.append((subjects, generated, timed, traced))
    print(
        f"{'subjects':>8} {'visits':>6} {'resources':>9} {'NDJSON MB':>9} {'generate s':>10} "
        f"{'export s':>8} {'res/s':>7} {'maxrss MB':>9} {'tracemalloc peak MB':>19}"
    )
    for subjects, generated, timed, traced in rows:
        print(
            f"{subjects:>8} {arguments.visits:>6} {timed['resources']:>9} "
            f"{timed['bytes'] / 1e6:>9.1f} {generated:>10.1f} {timed['seconds']:>8.2f} "
            f"{timed['resources'] / timed['seconds']:>7.0f} {timed['maxrss_kib'] / 1024:>9.1f} "
            f"{traced['tracemalloc_peak'] / 1e6:>19.2f}"
        )
    if len(rows) >= 2:
        (small, _, small_t, small_m), (large, _, large_t, large_m) = rows[0], rows[-1]
        print(
            f"\n{large}/{small} subjects: time x {large_t['seconds'] / small_t['seconds']:.1f}, "
            f"tracemalloc peak x {large_m['tracemalloc_peak'] / small_m['tracemalloc_peak']:.2f}, "
            f"maxrss x {large_t['maxrss_kib'] / small_t['maxrss_kib']:.2f}"
        )


if __name__ == "__main__":
    main()
