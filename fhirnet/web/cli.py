"""The ``fhirnet`` command: ``assess FILE.json`` offline, ``serve`` with gunicorn, ``demo`` (serve
and submit the example forms), ``outbox`` (what durable delivery holds), ``reassess`` (stored exams
under the running rules, after an upgrade), ``study`` (define studies and enrol subjects, on
the store ``serve`` uses).

``assess`` runs exactly the endpoint's path (:func:`fhirnet.web.api_views.assess_document`) and
prints the same bodies: the response on stdout (exit 0), or the API's ``{"errors": ...}`` body on
stderr (exit 2, click's code for bad input).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import click
from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from fhirnet import __version__
from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.outbox import OUTBOX_FILE, SqliteOutbox
from fhirnet.config import ConfigError, Settings, load_settings
from fhirnet.errors import InvalidInputError
from fhirnet.fhir.crf_codes import RESPONSE_CATEGORIES
from fhirnet.fhir.outcome import UnprocessableResourceError
from fhirnet.fhir.profiles import load_catalog
from fhirnet.fhir.studies import study_client_id_types
from fhirnet.ports import Entry, State
from fhirnet.services import Context
from fhirnet.services.audits import AuditTrail
from fhirnet.services.reassessment import patients_with_forms, reassess
from fhirnet.web.api_views import assess_document, endpoints_document
from fhirnet.web.app import create_app
from fhirnet.web.backend import Backend
from fhirnet.web.errors import error_body
from fhirnet.web.study_views import (
    get_study_document,
    put_study_document,
    put_subject_document,
    study_endpoints_document,
    withdraw_document,
)

INVALID_INPUT_EXIT_CODE = 2
#: Who the AuditEvents of ``fhirnet reassess`` name: the operator's command, not an API client.
REASSESS_REQUESTER = "cli:reassess"
#: Who the AuditEvents of ``fhirnet study`` name.
STUDY_REQUESTER = "cli:study"


class _FhirnetGroup(click.Group):
    """Maps fhirnet errors to exit codes in one place, as ``web/errors.py`` does for HTTP."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidInputError as error:
            click.echo(_dumps(error_body(error.errors)), err=True)
            ctx.exit(INVALID_INPUT_EXIT_CODE)
        except ConfigError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_FhirnetGroup)
@click.version_option(__version__, prog_name="fhirnet")
def main() -> None:
    """fhirnet: tumour response categories (RECIST 1.1, iRECIST, Choi, PERCIST 1.0)."""


@main.command()
@click.argument("file", type=click.File("rb"))
def assess(file: BinaryIO) -> None:
    """Assess the request in FILE (JSON, as POST /api/v1/assessments takes; - reads stdin)."""
    click.echo(_dumps(assess_document(file.read())))


@main.command()
@click.argument("file", type=click.File("rb"))
def endpoints(file: BinaryIO) -> None:
    """Derive one subject's trial endpoints from FILE (JSON, as POST /api/v1/endpoints takes;
    - reads stdin; docs/trials.md)."""
    click.echo(_dumps(endpoints_document(file.read())))


@main.command()
@click.option("--host", help="Address to bind [default: FHIRNET_HOST or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="[default: FHIRNET_PORT or 8080].")
def serve(host: str | None, port: int | None) -> None:
    """Serve the HTTP API with gunicorn."""
    settings = load_settings()
    app = create_app(settings)
    _GunicornServer(app, gunicorn_options(settings, host=host, port=port)).run()


@main.command()
@click.option("--host", help="Address to bind [default: FHIRNET_HOST or 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="[default: FHIRNET_PORT or 8080].")
@click.option("--once", is_flag=True, help="Stop after the examples instead of serving on.")
def demo(host: str | None, port: int | None, once: bool) -> None:
    """Serve fhirnet, submit the example forms over HTTP and print the categories written.

    Each patient's forms in ``examples/questionnaire-responses/`` go to ``POST
    /fhir/QuestionnaireResponse/$submit`` in date order, as an EHR would send them; the results
    land in the embedded store (``FHIRNET_DATA_DIR``), or on ``FHIRNET_FHIR_BASE_URL`` when set.

    Unless access control is configured, the demo serves without it (``FHIRNET_AUTH=none``) and
    says so; with API keys it submits with the first one.
    """
    settings = load_settings(default_auth="none")
    if settings.auth == "none":
        click.echo(
            "Authentication is disabled for the demo (FHIRNET_AUTH=none): every endpoint is open. "
            "Set FHIRNET_API_KEYS or FHIRNET_JWKS_* to protect it (docs/auth.md)."
        )
    token = settings.api_keys[0][0] if settings.api_keys else None
    options = gunicorn_options(settings, host=host, port=port)
    forms_dir = settings.examples_dir / "questionnaire-responses"
    patients = sorted(path for path in forms_dir.iterdir() if path.is_dir())
    base_url = f"http://{options['bind']}"
    where = settings.fhir_base_url or f"the embedded store in {settings.data_dir}"

    def when_ready(_server: object) -> None:
        # Runs in gunicorn's master once the socket listens; requests wait in its backlog until
        # a worker takes them, so the examples go through the real HTTP stack.
        threading.Thread(
            target=_run_examples, args=(base_url, where, patients, once, token), daemon=True
        ).start()

    quiet = {"when_ready": when_ready, "accesslog": None}  # the summary is the demo's output
    _GunicornServer(create_app(settings), {**options, **quiet}).run()


@main.command()
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([state.value for state in State]),
    help="List the submissions in this state (repeatable) [default: failed and queued].",
)
def outbox(states: Sequence[str]) -> None:
    """What durable delivery holds (docs/delivery.md): how many submissions are queued,
    delivered and failed, and one line per failed or queued one — its id (the status URL's), when
    it was accepted, by whom, the attempts, and its answer or last error. No patient data."""
    settings = load_settings(default_auth="none")
    path = settings.outbox_path or settings.data_dir / OUTBOX_FILE
    if not path.is_file():
        raise click.ClickException(f"no outbox at {path} (FHIRNET_OUTBOX_PATH, FHIRNET_DATA_DIR)")
    box = SqliteOutbox(path)
    try:
        counts = box.counts()
        shown = {State(state) for state in states} or {State.FAILED, State.QUEUED}
        listed = [entry for entry in box.entries() if entry.state in shown]
    finally:
        box.close()
    click.echo(f"{path}: " + ", ".join(f"{count} {state.value}" for state, count in counts.items()))
    for entry in listed:
        click.echo(_outbox_line(entry))


@main.command(name="reassess")
@click.argument("patients", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every patient with a stored form.")
@click.option("--dry-run", is_flag=True, help="Report the stale exams, write nothing.")
def reassess_command(patients: Sequence[str], every: bool, dry_run: bool) -> None:
    """Re-assess stored exams under the rules of this version and rewrite, as amended, those whose
    stored report differs (docs/criteria-v2.md): run once after an upgrade. PATIENTS are Patient
    ids; the store is the one ``serve`` uses (FHIRNET_FHIR_BASE_URL or FHIRNET_DATA_DIR). One
    line per patient: the exams assessed and the dates rewritten (or stale, with --dry-run)."""
    if bool(patients) == every:
        raise click.UsageError("name the patients, or give --all")
    settings = load_settings(default_auth="none")
    backend = Backend(settings)
    context = Context(
        store=backend.store(),
        catalog=load_catalog(settings.profiles_dir),
        locks=backend.locks,
        now=datetime.now(UTC),
        client_id_types=backend.client_id_types(),
        audit=AuditTrail(requester=REASSESS_REQUESTER),
    )
    failed = False
    for patient in patients_with_forms(context) if every else patients:
        try:
            found = reassess(patient, context, dry_run=dry_run)
        except UnprocessableResourceError as error:
            failed = True
            click.echo(f"{patient}: not re-assessed: {error.issues[0].message}", err=True)
            continue
        dates = ", ".join(str(day) for day in found.stale) or "none"
        verb = "rewritten" if found.written else ("stale" if found.stale else "rewritten")
        click.echo(f"{patient}: {found.exams} exam(s) assessed; {verb}: {dates}")
    if failed:
        raise SystemExit(1)


@main.group()
def study() -> None:
    """Define studies and enrol subjects (docs/trials.md "Studies and enrolment") on the store
    ``serve`` uses (FHIRNET_FHIR_BASE_URL or FHIRNET_DATA_DIR); the same use cases and bodies
    as /api/v1/studies. Errors print the API's {"errors": ...} body (exit 2)."""


def _study_context() -> Context:
    settings = load_settings(default_auth="none")
    backend = Backend(settings)
    store = backend.store()
    types = set(backend.client_id_types())
    if isinstance(store, FhirClient):
        types |= study_client_id_types(store.capabilities())
    return Context(
        store=store,
        catalog=load_catalog(settings.profiles_dir),
        locks=backend.locks,
        now=datetime.now(UTC),
        client_id_types=frozenset(types),
        audit=AuditTrail(requester=STUDY_REQUESTER),
    )


@study.command(name="put")
@click.argument("study_id", metavar="STUDY")
@click.argument("file", type=click.File("rb"))
def study_put(study_id: str, file: BinaryIO) -> None:
    """Define or update STUDY from FILE (as PUT /api/v1/studies/STUDY takes)."""
    body, _status = put_study_document(study_id, file.read(), _study_context())
    click.echo(_dumps(body))


@study.command(name="enrol")
@click.argument("study_id", metavar="STUDY")
@click.argument("subject_id", metavar="SUBJECT")
@click.argument("file", type=click.File("rb"))
def study_enrol(study_id: str, subject_id: str, file: BinaryIO) -> None:
    """Enrol SUBJECT in STUDY from FILE (as PUT .../subjects/SUBJECT takes)."""
    body, _status = put_subject_document(study_id, subject_id, file.read(), _study_context())
    click.echo(_dumps(body))


@study.command(name="show")
@click.argument("study_id", metavar="STUDY")
def study_show(study_id: str) -> None:
    """Print STUDY's definition."""
    click.echo(_dumps(get_study_document(study_id, _study_context())))


@study.command(name="withdraw")
@click.argument("study_id", metavar="STUDY")
@click.argument("subject_id", metavar="SUBJECT")
@click.option("--date", help="The withdrawal date, YYYY-MM-DD [default: today].")
def study_withdraw(study_id: str, subject_id: str, date: str | None) -> None:
    """Withdraw SUBJECT from STUDY: status withdrawn, its data kept."""
    click.echo(_dumps(withdraw_document(study_id, subject_id, date, _study_context())))


@study.command(name="endpoints")
@click.argument("study_id", metavar="STUDY")
def study_endpoints_command(study_id: str) -> None:
    """Print STUDY's endpoints per subject, evaluator and arm, from its subjects' stored reports
    (the JSON of GET /api/v1/studies/STUDY/endpoints; each subject's read is audited)."""
    click.echo(_dumps(study_endpoints_document(study_id, _study_context())))


def _outbox_line(entry: Entry) -> str:
    accepted = datetime.fromtimestamp(entry.accepted, UTC).isoformat(timespec="seconds")
    answer = (entry.answer or {}).get("response") or {}
    result = str(answer.get("status") or entry.last_error or "")
    return (
        f"{entry.id}  {entry.state.value:<9}  accepted {accepted}  by {entry.requester}  "
        f"{entry.kind.value}  attempts {entry.attempts}  {result}".rstrip()
    )


#: NCIt code of a response category → the category's code (``PR``, ``iUPD``...).
_CATEGORIES = {coding.code: response.value for response, coding in RESPONSE_CATEGORIES.items()}


def _run_examples(
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
    request = urllib.request.Request(  # noqa: S310 - the URL is our own loopback server
        f"{base_url}/fhir/QuestionnaireResponse/$submit",
        data=path.read_bytes(),
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
    lines = [f"  {day}  {category or 'baseline':<6}  {report.get('status')}, {written}: {location}"]
    lines += [
        f"      warning: {issue.get('diagnostics')}"
        for issue in outcome.get("issue", [])
        if issue.get("severity") == "warning"
    ]
    return location, "\n".join(lines)


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


#: gunicorn settings of ``fhirnet serve`` that do not come from Settings (docs/security.md,
#: README "In production"). gunicorn's defaults (one sync worker, one thread) let one client
#: that sends its headers or body slowly hold the only worker: everyone else waited.
PRODUCTION_OPTIONS: Mapping[str, Any] = {
    # Threads: a slow client holds one thread, not the process. gthread also waits for a new
    # connection's first bytes in its poller, not in a thread (gunicorn >= 25).
    "worker_class": "gthread",
    # A worker whose main loop stops for this long is restarted (gthread's loop keeps
    # beating while threads work, so this does not cut slow requests short; the proxy does).
    "timeout": 30,
    "graceful_timeout": 30,
    # Idle kept-alive connections are closed after 5 s: they cost a file descriptor, no thread.
    "keepalive": 5,
    # Request line and headers as small as FHIR needs (search URLs included).
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
}


def gunicorn_options(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> dict[str, Any]:
    """gunicorn settings for ``fhirnet serve``: bind address (unless overridden), workers and
    threads from Settings, and the production defaults of :data:`PRODUCTION_OPTIONS`.

    :param settings: the service settings.
    :param host: overrides ``settings.host``.
    :param port: overrides ``settings.port``.
    :returns: gunicorn setting names → values.
    """
    address = host or settings.host
    if ":" in address:  # an IPv6 address needs brackets in a bind string
        address = f"[{address}]"
    return {
        **PRODUCTION_OPTIONS,
        "bind": f"{address}:{port or settings.port}",
        "workers": settings.workers,
        "threads": settings.threads,
        "loglevel": settings.log_level.lower(),
        # No access log: its lines hold the raw path and query string (ids, search parameters
        # with patient identifiers). The app logs each request as JSON with the URL rule instead
        # (fhirnet.web.logs), and gunicorn's own records use the same formatter.
        "accesslog": None,
        "logconfig_dict": gunicorn_logging(settings),
        # gunicorn >= 25 opens a control socket in $HOME by default; we do not use it, and two
        # instances on one host would compete for the same path.
        "control_socket_disable": True,
    }


def gunicorn_logging(settings: Settings) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error log as JSON lines on stderr
    (:class:`fhirnet.web.logs.JsonFormatter`), no access log, nothing on the root logger (the
    ``fhirnet`` loggers have their own handler, see :func:`fhirnet.web.logs.install_logging`)."""
    return {
        "root": {"level": "WARNING", "handlers": []},
        "loggers": {
            "gunicorn.error": {
                "level": settings.log_level,
                "handlers": ["json"],
                "propagate": False,
                "qualname": "gunicorn.error",
            },
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "formatters": {"json": {"()": "fhirnet.web.logs.JsonFormatter"}},
    }


class _GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn run in-process on an app already built, so no import string or cwd is needed."""

    def __init__(self, app: Flask, options: Mapping[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            self.cfg.set(name, value)
        # Each worker delivers queued submissions from the start, not from its first request
        # (fhirnet.web.delivery), and finishes the attempt it is making when it stops.
        self.cfg.set("post_worker_init", self._start_deliveries)
        self.cfg.set("worker_exit", self._stop_deliveries)

    def _start_deliveries(self, _worker: object) -> None:
        deliveries = self._app.extensions["fhirnet"].deliveries
        if deliveries is not None:
            with self._app.app_context():
                deliveries.current()

    def _stop_deliveries(self, _server: object, _worker: object) -> None:
        deliveries = self._app.extensions["fhirnet"].deliveries
        if deliveries is not None:
            deliveries.stop(timeout=5)

    def load(self) -> Flask:
        return self._app


def _dumps(body: Any) -> str:
    # allow_nan=False: a non-finite number must fail loudly, never print invalid JSON.
    return json.dumps(body, indent=2, allow_nan=False, ensure_ascii=False)


if __name__ == "__main__":
    main(prog_name="fhirnet")
