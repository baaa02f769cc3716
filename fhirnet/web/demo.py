"""What ``fhirnet demo`` does once gunicorn listens: submit each example patient's forms over real
HTTP, in date order, as an EHR would, and print the category of every exam and where its report
was written (README "The main job").
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from fhirnet import __version__
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES

#: NCIt code of a response category → the category's code (``PR``, ``iUPD``...).
_CATEGORIES = {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()}


def run_examples(
    base_url: str, where: str, patients: Sequence[Path], stop: bool, token: str | None
) -> None:
    """Submit each patient's forms in order and print what each exam's report concludes."""
    try:
        _submit_examples(base_url, where, patients, _auth_headers(token))
    finally:
        if stop:  # also when printing failed: --once must never leave the server running
            os.kill(os.getpid(), signal.SIGTERM)  # gunicorn's master shuts down gracefully


def _auth_headers(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def _submit_examples(
    base_url: str, where: str, patients: Sequence[Path], headers: Mapping[str, str]
) -> None:
    _wait_until_healthy(base_url)
    click.echo(f"\nfhirnet {__version__} is serving on {base_url}, writing to {where}")
    for patient in patients:
        click.echo(f"\n{patient.name}")
        reports = None
        for path in sorted(patient.glob("*.json")):
            location, line = _submit(base_url, path, headers)
            click.echo(line)
            if location is not None:
                server, _, _ = location.rpartition("/DiagnosticReport/")
                reports = f"{server}/DiagnosticReport?subject=Patient/{patient.name}&_sort=-date"
        if reports is not None:
            click.echo(f"  reports: {reports}")
        click.echo(f"  next follow-up, pre-filled: {base_url}/crf?patient={patient.name}")
        click.echo(f"  timeline: {base_url}/crf/timeline?patient={patient.name}")
    first = sorted(patients[0].glob("*.json"))[:1] if patients else []
    example = os.path.relpath(first[0]) if first else "FORM.json"
    click.echo(
        f"\nSubmit a form: curl -s -H 'Content-Type: application/fhir+json' --data @{example} "
        f"{base_url}/fhir/QuestionnaireResponse\n"
        f"Assessment API (JSON, no FHIR): POST {base_url}/api/v1/assessments, "
        f"examples in examples/assessments/; OpenAPI: {base_url}/api/v1/openapi.json"
    )


def _submit(base_url: str, path: Path, headers: Mapping[str, str]) -> tuple[str | None, str]:
    """POST one form with ``$submit`` (answered with the report, not the form); the report's
    Location and a line: date, category, warnings."""
    body = path.read_bytes()
    request = urllib.request.Request(  # noqa: S310 - the URL is our own loopback server
        f"{base_url}/fhir/QuestionnaireResponse/$submit",
        data=body,
        headers={
            "Content-Type": "application/fhir+json",
            "Prefer": "return=OperationOutcome",
            **headers,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            status, location, outcome = answer.status, answer.headers["Location"], json.load(answer)
    except urllib.error.HTTPError as error:
        outcome = json.load(error)
        problems = "; ".join(issue.get("diagnostics", "") for issue in outcome.get("issue", []))
        return None, f"  {path.name}: {error.code} {problems}"
    if status == 202:  # an external FHIR server that cannot take it now (docs/delivery.md)
        queued = answer.headers["Content-Location"]
        return None, f"  {path.name}: 202 accepted, queued for delivery; status: {queued}"
    # Our key goes to our own server only, never to an external FHIR server's Location.
    report = _fetch(location, headers if location.startswith(base_url + "/") else {})
    if report is None:
        return location, f"  {path.name}: {status}, report at {location}"
    codings = [c for concept in report.get("conclusionCode", []) for c in concept.get("coding", [])]
    category = next((_CATEGORIES[c["code"]] for c in codings if c.get("code") in _CATEGORIES), None)
    day = str(report.get("effectiveDateTime", "?"))[:10]
    written = "written" if status == 201 else "unchanged"
    kind = category or _assessment_type(json.loads(body))
    lines = [f"  {day}  {kind:<6}  {report.get('status')}, {written}: {location}"]
    lines += [
        f"      warning: {issue.get('diagnostics')}"
        for issue in outcome.get("issue", [])
        if issue.get("severity") == "warning"
    ]
    return location, "\n".join(lines)


def _assessment_type(form: Any) -> str:
    """The form's ``assessment-type`` code (``baseline``, ``pre-baseline``...): what an exam
    without a category is."""
    items = list(form.get("item", [])) if isinstance(form, dict) else []
    while items:
        item = items.pop()
        if item.get("linkId") == "assessment-type":
            for answer in item.get("answer", []):
                return str(answer.get("valueCoding", {}).get("code", "baseline"))
        items += item.get("item", [])
    return "baseline"


def _fetch(url: str, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """GET a resource the service points at; ``None`` if it cannot (an external server that
    wants credentials, say)."""
    request = urllib.request.Request(  # noqa: S310
        url, headers={"Accept": "application/fhir+json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            body: dict[str, Any] = json.load(answer)
            return body
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _wait_until_healthy(base_url: str, attempts: int = 100) -> None:
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2):  # noqa: S310
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
