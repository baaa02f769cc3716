"""FHIR Bulk Data export over HTTP (Bulk Data Access 2.0, export.md): the kick-off at system,
Patient and Group level, the status URL (poll and ``DELETE``), and the NDJSON files.

Kick-off (``GET`` or ``POST`` with a ``Parameters`` body) needs ``Accept: application/fhir+json``
and ``Prefer: respond-async`` (400 otherwise), checks the parameters
(:mod:`fhirnet.fhir.bulk_parameters`) and the Group, creates a job
(:mod:`fhirnet.adapters.export_jobs`, shared by all worker processes, and with
``FHIRNET_DATABASE_URL`` by every host: :func:`fhirnet.web.backend.open_export_jobs`) and runs the
export
(:func:`fhirnet.services.bulk_export.run_export`) in a thread of this worker: ``202`` with the
status URL in ``Content-Location``. Status: ``202`` with ``X-Progress`` and ``Retry-After``
while running, ``200`` with the manifest and ``Expires`` when done, ``DELETE`` cancels (``202``,
then ``404``). A job answers only the client that kicked it off (403 to any other); a file also
needs read on its type. Any valid token may call these endpoints (:mod:`fhirnet.web.auth`): the
export holds only the types the token may read.

A client registered for pseudonymized access (``Principal.pseudonymized_study``) gets, whatever
it asks for, its study's enrolment Group (another Group: 403), every resource through
:class:`~fhirnet.fhir.pseudonymize.Pseudonymizer`, and the regime stated in the manifest's
``extension.pseudonymization``; a study without a regime exports nothing (403).
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any, NoReturn

from flask import Blueprint, current_app, g, request
from werkzeug.http import http_date
from werkzeug.wrappers import Response

from fhirnet.access import Authenticator, Permission
from fhirnet.adapters.export_jobs import ExportJobs, Job, JobStatus
from fhirnet.errors import AuthorizationError
from fhirnet.fhir.audit import ANONYMOUS
from fhirnet.fhir.bulk_parameters import (
    Level,
    export_request,
    parameter_pairs,
    query_pairs,
)
from fhirnet.fhir.outcome import Issue, IssueType, operation_outcome
from fhirnet.fhir.pseudonymize import Pseudonymizer, Regime
from fhirnet.ports import FhirStore
from fhirnet.services.bulk_export import (
    PATIENT_BATCH,
    StudyGroup,
    Transform,
    group_members,
    plan_export,
    run_export,
    study_group,
    study_reference,
)
from fhirnet.services.context import Context
from fhirnet.web import public_root, web_state
from fhirnet.web.auth import may_read
from fhirnet.web.backend import open_export_jobs
from fhirnet.web.errors import FhirRequestError, fhir_json_response
from fhirnet.web.fhir_http import (
    FHIR_JSON,
    audit_trail,
    base_url,
    json_body,
    lenient,
    respond_async,
)

bp = Blueprint("bulk", __name__, url_prefix="/fhir")

NDJSON = "application/fhir+ndjson"
#: Seconds a client is asked to wait between two polls of a running export.
RETRY_AFTER_SECONDS = 2
#: Bytes read from a file per chunk of a download.
CHUNK_BYTES = 64 * 1024
_JOBS = "fhirnet.bulk_jobs"
#: A FHIR logical id (R4 datatypes: id).
_LOGICAL_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@bp.route("/$export", methods=["GET", "POST"], endpoint="kickoff_system")
def kickoff_system() -> Response:
    """``[base]/$export``: every type fhirnet stores but AuditEvent."""
    return _kickoff(Level.SYSTEM, None)


@bp.route("/Patient/$export", methods=["GET", "POST"], endpoint="kickoff_patient")
def kickoff_patient() -> Response:
    """``[base]/Patient/$export``: the patient compartments (``patient``: some of them)."""
    return _kickoff(Level.PATIENT, None)


@bp.route("/Group/<group_id>/$export", methods=["GET", "POST"], endpoint="kickoff_group")
def kickoff_group(group_id: str) -> Response:
    """``[base]/Group/<id>/$export``: the compartments of the Group's members, and the Group."""
    return _kickoff(Level.GROUP, group_id)


@bp.get("/$export-status/<job_id>", endpoint="status")
def status(job_id: str) -> Response:
    """Poll an export: 202 while running, the manifest when done, 404 once gone."""
    job = _owned_job(job_id)
    if job.status is JobStatus.RUNNING:
        response = Response(status=202)
        response.headers["X-Progress"] = job.progress or "started"
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if job.status is JobStatus.FAILED:
        transient = (job.failure or "").startswith("transient")
        raise FhirRequestError(
            503 if transient else 500,
            IssueType.TRANSIENT if transient else IssueType.EXCEPTION,
            f"The export failed ({job.failure}); kick it off again.",
        )
    response = current_app.response_class(
        current_app.json.dumps(_manifest(job)), status=200, mimetype="application/json"
    )
    if job.expires is not None:
        response.headers["Expires"] = http_date(job.expires)
    return response


@bp.delete("/$export-status/<job_id>", endpoint="cancel")
def cancel(job_id: str) -> Response:
    """Cancel an export, running or done: its files go at once, its URLs answer 404."""
    job = _owned_job(job_id)
    _jobs().cancel(job.id)
    issue = Issue.information("The export was cancelled and its files deleted.")
    return fhir_json_response(operation_outcome([issue]), 202)


@bp.get("/$export-file/<job_id>/<file_name>", endpoint="download")
def download(job_id: str, file_name: str) -> Response:
    """One NDJSON file of a finished export, gzip-compressed when the client accepts it."""
    job = _owned_job(job_id)
    listed = {f.name: f.resource_type for f in job.outputs} if job.status is JobStatus.DONE else {}
    errors = {f.name for f in job.errors} if job.status is JobStatus.DONE else set()
    if file_name not in listed and file_name not in errors:
        raise FhirRequestError(404, IssueType.NOT_FOUND, "No such file of this export.")
    path = _jobs().file(job.id, file_name)
    if path is None:
        _missing_file(job.id)
    if file_name in listed and not may_read(listed[file_name]):
        raise AuthorizationError(str(Permission(listed[file_name], "r")))
    gzip = request.accept_encodings["gzip"] > 0
    file = path.open("rb")  # now: a file deleted from here on is still read to its end
    response = Response(_chunks(file, gzip=gzip), status=200, mimetype=NDJSON)
    response.headers["Vary"] = "Accept-Encoding"
    if gzip:
        response.headers["Content-Encoding"] = "gzip"
    return response


def _missing_file(job_id: str) -> NoReturn:
    """A listed file that is not in the files directory: gone with its job meanwhile (404), or
    written by another host into a directory this one does not share (500, saying so, rather
    than a 404 that would tell the client the export is gone)."""
    job = _jobs().get(job_id)
    if job is None or job.status is not JobStatus.DONE:
        raise FhirRequestError(
            404, IssueType.NOT_FOUND, "No such export: never started, cancelled or expired."
        )
    current_app.logger.error(
        "a file of a finished export is missing from %s: the hosts do not share "
        "FHIRNET_EXPORT_DIR, or it was deleted",
        _jobs().files_dir,
    )
    raise FhirRequestError(
        500,
        IssueType.EXCEPTION,
        "This export's file is not in this server's export directory: the servers behind this "
        "address do not share it (FHIRNET_EXPORT_DIR). The export itself is finished; "
        "the operator must put the export directory on storage every server shares.",
    )


def _kickoff(level: Level, group_id: str | None) -> Response:
    state = web_state()
    now = state.clock()
    jobs = _jobs()
    jobs.purge(now.timestamp())
    _require_async_json()
    if request.method == "POST":
        body = json_body()
        if not isinstance(body, dict):
            raise FhirRequestError(400, IssueType.STRUCTURE, "The body must be a Parameters.")
        if request.args:
            raise FhirRequestError(
                400, IssueType.NOT_SUPPORTED, "A POST kick-off takes its parameters in the body."
            )
        pairs = parameter_pairs(body)
    else:
        pairs = query_pairs(request.args.items(multi=True))
    export = export_request(level, pairs, now=now, lenient=lenient(), group_id=group_id)
    store = state.backend.store()
    members = None
    transform: Transform | None = None
    extension: dict[str, Any] | None = None
    study = getattr(g.get("fhirnet_principal"), "pseudonymized_study", None)
    if study is not None:
        enrolment, regime = _pseudonymized_study(store, str(study), group_id)
        # The level is the server's choice here, not the client's: a type it asked for that
        # the Group level does not hold is noted in the error file, not refused.
        export = replace(export, level=Level.GROUP, group_id=enrolment.group_id, lenient=True)
        members = enrolment.members
        transform = Pseudonymizer(regime, enrolment.reference_dates).resource
        extension = {"extension": {"pseudonymization": regime.statement()}}
    elif group_id is not None:
        if not _LOGICAL_ID.fullmatch(group_id):
            raise FhirRequestError(404, IssueType.NOT_FOUND, "No Group with this id.")
        members = group_members(store, group_id)
        if members is None:
            raise FhirRequestError(404, IssueType.NOT_FOUND, f"No Group {group_id}.")
    batch = 1 if state.backend.embedded else PATIENT_BATCH  # see ExportPlan.batch
    plan = plan_export(store, export, readable=may_read, members=members, batch=batch)
    if study is not None:
        plan = replace(plan, study=study_reference(store, str(study)) or "ResearchStudy/-")
    if not plan.types:
        first = next(iter(export.types), "*")
        raise AuthorizationError(str(Permission(first, "r")))
    request_url = public_root() + request.full_path.rstrip("?")
    job = jobs.create(
        owner=_owner(), request=request_url, transaction_time=now.isoformat(), now=now.timestamp()
    )
    context = Context(
        store=store,
        catalog=state.catalog,
        locks=state.backend.locks,
        now=now,
        audit=audit_trail(),
    )
    expiry, clock = state.settings.export_expiry, state.clock
    threading.Thread(
        target=run_export,
        name=f"bulk-export-{job.id[:6]}",
        daemon=True,
        kwargs={
            "context": context,
            "plan": plan,
            "job_id": job.id,
            "files": jobs,
            "request_url": request_url,
            "expires_at": lambda: clock().timestamp() + expiry,
            "transform": transform,
            "extension": extension,
        },
    ).start()
    issue = Issue.information("The export has started; poll the URL in Content-Location.")
    response = fhir_json_response(operation_outcome([issue]), 202)
    response.headers["Content-Location"] = f"{base_url()}/$export-status/{job.id}"
    return response


def _pseudonymized_study(
    store: FhirStore, study: str, group_id: str | None
) -> tuple[StudyGroup, Regime]:
    """The enrolment Group and regime of a pseudonymized client's study: whatever it asked
    for, it gets that study's subjects only, pseudonymized (docs/trials.md Pseudonymization).

    403 when the study has no regime in ``FHIRNET_STUDY_SECRETS_FILE`` (its data cannot leave
    pseudonymized, so they do not leave), no enrolment Group, or the kick-off names another
    Group.
    """
    regime = web_state().regimes.get(study)
    if regime is None:
        raise FhirRequestError(
            403,
            IssueType.FORBIDDEN,
            f"Study {study} has no pseudonymization regime (FHIRNET_STUDY_SECRETS_FILE): "
            "this client receives pseudonymized data only, so nothing is exported.",
        )
    enrolment = study_group(store, study)
    if enrolment is None:
        raise FhirRequestError(
            403, IssueType.FORBIDDEN, f"Study {study} has no enrolment Group to export."
        )
    if group_id is not None and group_id != enrolment.group_id:
        raise FhirRequestError(
            403,
            IssueType.FORBIDDEN,
            f"This client may export the enrolment Group of study {study} only.",
        )
    return enrolment, regime


def _require_async_json() -> None:
    """Bulk Data kick-off headers (export.md): ``Accept: application/fhir+json`` and
    ``Prefer: respond-async``; 400 without them (bdt "Requires Accept header")."""
    accepted = [value.split(";")[0].strip() for value, _ in request.accept_mimetypes]
    if FHIR_JSON not in accepted:
        raise FhirRequestError(
            400, IssueType.INVALID, "A kick-off needs the header Accept: application/fhir+json."
        )
    if not respond_async():
        raise FhirRequestError(
            400, IssueType.INVALID, "A kick-off needs the header Prefer: respond-async."
        )


def _manifest(job: Job) -> dict[str, Any]:
    base = f"{base_url()}/$export-file/{job.id}"
    manifest: dict[str, Any] = {
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": not _authenticator().open,
        "output": [
            {"type": f.resource_type, "url": f"{base}/{f.name}", "count": f.count}
            for f in job.outputs
        ],
        "error": [
            {"type": f.resource_type, "url": f"{base}/{f.name}", "count": f.count}
            for f in job.errors
        ],
        "deleted": [],
    }
    if job.extension:
        manifest.update(job.extension)
    return manifest


def _owned_job(job_id: str) -> Job:
    """The job, for its owner only: 404 when there is none (or it was cancelled or expired),
    403 for another client."""
    jobs = _jobs()
    jobs.purge(web_state().clock().timestamp())
    job = jobs.get(job_id)
    if job is None or job.status is JobStatus.CANCELLED:
        raise FhirRequestError(
            404, IssueType.NOT_FOUND, "No such export: never started, cancelled or expired."
        )
    if job.owner != _owner():
        raise FhirRequestError(
            403, IssueType.FORBIDDEN, "This export was kicked off by another client."
        )
    return job


def _owner() -> str:
    """Who the current request comes from: the token's client, or ``anonymous``."""
    principal = g.get("fhirnet_principal")
    if principal is None:
        return ANONYMOUS
    client_id = getattr(principal, "client_id", None)
    return str(client_id) if client_id else str(principal.subject)


def _authenticator() -> Authenticator:
    authenticator: Authenticator = current_app.extensions["fhirnet.auth"]
    return authenticator


def _jobs() -> ExportJobs:
    """The application's export jobs (one per app, opened on first use)."""
    found = current_app.extensions.get(_JOBS)
    if found is None:  # two threads may both open it: the second one's is dropped, no harm
        found = current_app.extensions.setdefault(_JOBS, open_export_jobs(web_state().settings))
    jobs: ExportJobs = found
    return jobs


def _chunks(file: IO[bytes], *, gzip: bool) -> Iterator[bytes]:
    """A file's bytes, read a chunk at a time (gzip-compressed on the fly when asked); closes
    the file at the end."""
    compressor = zlib.compressobj(wbits=31) if gzip else None
    with file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk if compressor is None else compressor.compress(chunk)
    if compressor is not None:
        yield compressor.flush()
