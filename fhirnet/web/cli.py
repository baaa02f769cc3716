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
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import click

from fhirnet import __version__
from fhirnet.adapters.fhir_client import FhirClient
from fhirnet.adapters.study_secrets import load_study_secrets
from fhirnet.config import ConfigError, load_settings
from fhirnet.errors import InvalidInputError, OutboxUnavailableError
from fhirnet.fhir.outcome import UnprocessableResourceError
from fhirnet.fhir.profiles import load_catalog
from fhirnet.fhir.studies import study_client_id_types
from fhirnet.ports import Entry, State
from fhirnet.services import Context
from fhirnet.services.audits import AuditTrail
from fhirnet.services.reassessment import patients_with_forms, reassess
from fhirnet.web.api_views import assess_document, endpoints_document
from fhirnet.web.app import create_app
from fhirnet.web.backend import Backend, open_outbox, outbox_location, outbox_path
from fhirnet.web.demo import run_examples
from fhirnet.web.errors import error_body
from fhirnet.web.sdtm_export import export_study
from fhirnet.web.serving import GunicornServer, gunicorn_options
from fhirnet.web.study_views import (
    get_study_document,
    put_study_document,
    put_subject_document,
    study_endpoints_document,
    study_plot_document,
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
    GunicornServer(app, gunicorn_options(settings, host=host, port=port)).run()


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
        # Runs in gunicorn's master once it is up; the examples wait for /health (the workers
        # bind their sockets as they start) and go through the real HTTP stack.
        threading.Thread(
            target=run_examples, args=(base_url, where, patients, once, token), daemon=True
        ).start()

    quiet = {"when_ready": when_ready, "accesslog": None}  # the summary is the demo's output
    GunicornServer(create_app(settings), {**options, **quiet}).run()


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
    where = outbox_location(settings)  # never the database's password
    if settings.database_url is None and not outbox_path(settings).is_file():
        raise click.ClickException(f"no outbox at {where} (FHIRNET_OUTBOX_PATH, FHIRNET_DATA_DIR)")
    try:
        box = open_outbox(settings)  # FHIRNET_DATABASE_URL: the one every host shares
    except OutboxUnavailableError as error:
        raise click.ClickException(str(error)) from None
    try:
        counts = box.counts()
        shown = {State(state) for state in states} or {State.FAILED, State.QUEUED}
        listed = [entry for entry in box.entries() if entry.state in shown]
    finally:
        box.close()
    click.echo(
        f"{where}: " + ", ".join(f"{count} {state.value}" for state, count in counts.items())
    )
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


@study.command(name="plot")
@click.argument("study_id", metavar="STUDY")
@click.argument("kind", metavar="KIND", type=click.Choice(["waterfall", "spider", "swimmer"]))
@click.option(
    "--format", "fmt", type=click.Choice(["svg", "png", "json"]), default="svg", show_default=True
)
@click.option("--out", type=click.File("wb"), default="-", help="The file to write [default: -].")
@click.option("--arm", help="Only the subjects of this arm [default: every arm].")
@click.option("--evaluator", help="INVESTIGATOR (default), CENTRAL or a central reader's label.")
def study_plot_command(
    study_id: str,
    kind: str,
    fmt: str,
    out: BinaryIO,
    arm: str | None,
    evaluator: str | None,
) -> None:
    """Write STUDY's KIND plot (waterfall, spider, swimmer) as SVG, PNG or its data as JSON
    (as GET /api/v1/studies/STUDY/plots/KIND.FORMAT; each subject's read is audited)."""
    body, _media_type = study_plot_document(
        study_id, f"{kind}.{fmt}", _study_context(), arm=arm, evaluator=evaluator
    )
    out.write(_dumps(body).encode() + b"\n" if isinstance(body, dict) else body)


def _outbox_line(entry: Entry) -> str:
    accepted = datetime.fromtimestamp(entry.accepted, UTC).isoformat(timespec="seconds")
    answer = (entry.answer or {}).get("response") or {}
    result = str(answer.get("status") or entry.last_error or "")
    return (
        f"{entry.id}  {entry.state.value:<9}  accepted {accepted}  by {entry.requester}  "
        f"{entry.kind.value}  attempts {entry.attempts}  {result}".rstrip()
    )


def _dumps(body: Any) -> str:
    # allow_nan=False: a non-finite number must fail loudly, never print invalid JSON.
    return json.dumps(body, indent=2, allow_nan=False, ensure_ascii=False)


@study.command(name="export")
@click.argument("study_id")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to write into (created if missing).",
)
def study_export_command(study_id: str, out: Path) -> None:
    """Write STUDY's SDTM domains TU, TR, RS and DM as Dataset-JSON, SAS XPORT v5 and CSV into
    OUT, with manifest.json (each subject's read is audited); print the manifest. A study with
    a regime in FHIRNET_STUDY_SECRETS_FILE is exported pseudonymized."""
    regimes = load_study_secrets(load_settings(default_auth="none").study_secrets_file)
    manifest = export_study(study_id, out, _study_context(), regimes.get(study_id))
    click.echo(_dumps(manifest))


if __name__ == "__main__":
    main(prog_name="fhirnet")
