"""The study API (``docs/trials.md`` "Studies and enrolment"): define, read and delete studies,
enrol, read and withdraw subjects, on the store fhirnet works on (the embedded store or the
external FHIR server). The ``*_document`` functions are the one path from request to answer,
shared with ``fhirnet study`` (:mod:`fhirnet.web.cli`).

Errors: 422 field-level (``{"errors": ...}``) for bad bodies and rules, 404 for an unknown
study or subject, 409 for a request that contradicts what is stored, 502/503 when the FHIR
server refuses or is away; never half-written (one transaction per request).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, current_app, request

from fhirnet.errors import FhirServerError, FieldError, InvalidInputError, PatientBusyError
from fhirnet.fhir.studies import study_client_id_types
from fhirnet.services import Context
from fhirnet.services.adjudication import adjudicate
from fhirnet.services.studies import (
    StudyConflictError,
    StudyNotFoundError,
    delete_study,
    enrol,
    get_study,
    get_subject,
    put_study,
    withdraw,
)
from fhirnet.services.study_endpoints import study_endpoints
from fhirnet.web import web_state
from fhirnet.web.api_views import _json_body
from fhirnet.web.errors import error_body, fhir_error_answer
from fhirnet.web.fhir_submissions import _context
from fhirnet.web.limits import check_json, limits_of
from fhirnet.web.schema_fields import iso_date, parse_json
from fhirnet.web.sdtm_export import sdtm_document
from fhirnet.web.study_endpoint_schemas import (
    dump_adjudication,
    dump_study_endpoints,
    load_adjudication,
)
from fhirnet.web.study_schemas import (
    check_id,
    dump_study,
    dump_subject,
    load_study,
    load_subject,
)

bp = Blueprint("studies", __name__, url_prefix="/api/v1/studies")

#: Where the external server's support of the study types is kept (read once).
_CLIENT_ID_TYPES = "fhirnet.study_client_id_types"


def study_context(context: Context) -> Context:
    """``context`` with the study types the FHIR server cannot update conditionally by
    identifier added to its client-id types (read once from its CapabilityStatement)."""
    backend = web_state().backend
    if backend.embedded:
        return context
    found: frozenset[str] | None = current_app.extensions.get(_CLIENT_ID_TYPES)
    if found is None:
        store = backend.store()
        capabilities = getattr(store, "capabilities", None)
        found = frozenset(study_client_id_types(capabilities())) if capabilities else frozenset()
        current_app.extensions[_CLIENT_ID_TYPES] = found
    return replace(context, client_id_types=frozenset(context.client_id_types) | found)


def _request_context() -> Context:
    return study_context(_context())


def put_study_document(
    study_id: str, raw: bytes | str, context: Context
) -> tuple[dict[str, Any], int]:
    """``PUT`` a study from a JSON body: the answer body and status (201 created, else 200)."""
    body = parse_json(raw)
    stored = put_study(load_study(study_id, body), context)
    answer = dump_study(stored.study, reference=stored.reference, group=stored.group)
    return answer, 201 if stored.created else 200


def get_study_document(study_id: str, context: Context) -> dict[str, Any]:
    check_id(study_id, "studyId")
    stored = get_study(study_id, context)
    return dump_study(stored.study, reference=stored.reference, group=stored.group)


def put_subject_document(
    study_id: str, subject_id: str, raw: bytes | str, context: Context
) -> tuple[dict[str, Any], int]:
    """``PUT`` a subject from a JSON body: the answer body and status (201 created, else 200)."""
    body = parse_json(raw)
    stored = enrol(load_subject(study_id, subject_id, body), context)
    return dump_subject(stored.enrolment, reference=stored.reference), (
        201 if stored.created else 200
    )


def get_subject_document(study_id: str, subject_id: str, context: Context) -> dict[str, Any]:
    check_id(study_id, "studyId")
    check_id(subject_id, "subjectId")
    stored = get_subject(study_id, subject_id, context)
    return dump_subject(stored.enrolment, reference=stored.reference)


def withdraw_document(
    study_id: str, subject_id: str, date: str | None, context: Context
) -> dict[str, Any]:
    """Withdraw a subject on ``date`` (``YYYY-MM-DD``; ``None``: today)."""
    check_id(study_id, "studyId")
    check_id(subject_id, "subjectId")
    on: dt.date | None = None
    if date is not None:
        on = iso_date(date)
        if on is None:
            message = "Not a valid date; expected YYYY-MM-DD."
            raise InvalidInputError([FieldError(path=("date",), message=message)])
    stored = withdraw(study_id, subject_id, context, on=on)
    return dump_subject(stored.enrolment, reference=stored.reference)


def study_endpoints_document(study_id: str, context: Context) -> dict[str, Any]:
    """A study's endpoints per subject and evaluator and per arm (audited subject reads)."""
    check_id(study_id, "studyId")
    return dump_study_endpoints(study_endpoints(study_id, context))


def adjudication_document(
    study_id: str, subject_id: str, raw: bytes | str, context: Context
) -> dict[str, Any]:
    """Record an adjudication from a JSON body ``{"accept": label, "by": reference}``."""
    check_id(study_id, "studyId")
    check_id(subject_id, "subjectId")
    accept, by = load_adjudication(parse_json(raw))
    stored = adjudicate(study_id, subject_id, accept=accept, by=by, context=context)
    return dump_adjudication(stored.enrolment, reference=stored.reference)


def _body() -> bytes:
    raw = _json_body()
    limits = dataclasses.replace(limits_of(web_state().settings), max_values=sys.maxsize)
    check_json(parse_json(raw), limits)
    return raw


@bp.put("/<study_id>")
def put_study_view(study_id: str) -> tuple[dict[str, Any], int]:
    """Define or update a study."""
    return put_study_document(study_id, _body(), _request_context())


@bp.get("/<study_id>")
def get_study_view(study_id: str) -> dict[str, Any]:
    """A study's definition."""
    return get_study_document(study_id, _request_context())


@bp.delete("/<study_id>")
def delete_study_view(study_id: str) -> tuple[str, int]:
    """Delete a study without subjects."""
    check_id(study_id, "studyId")
    delete_study(study_id, _request_context())
    return "", 204


@bp.put("/<study_id>/subjects/<subject_id>")
def put_subject_view(study_id: str, subject_id: str) -> tuple[dict[str, Any], int]:
    """Enrol a subject, or update its enrolment."""
    return put_subject_document(study_id, subject_id, _body(), _request_context())


@bp.get("/<study_id>/subjects/<subject_id>")
def get_subject_view(study_id: str, subject_id: str) -> dict[str, Any]:
    """A subject's enrolment (audited: it names the patient)."""
    return get_subject_document(study_id, subject_id, _request_context())


@bp.delete("/<study_id>/subjects/<subject_id>")
def withdraw_view(study_id: str, subject_id: str) -> dict[str, Any]:
    """Withdraw a subject (``?date=YYYY-MM-DD``, default today); its data is kept."""
    return withdraw_document(study_id, subject_id, request.args.get("date"), _request_context())


@bp.get("/<study_id>/endpoints")
def study_endpoints_view(study_id: str) -> dict[str, Any]:
    """The study's endpoints from its subjects' stored reports (audited)."""
    return study_endpoints_document(study_id, _request_context())


@bp.get("/<study_id>/sdtm/<domain>")
def sdtm_view(study_id: str, domain: str) -> Response:
    """One SDTM domain of the study (``?format=json|xpt|csv``; audited subject reads)."""
    name, body, content_type = sdtm_document(
        study_id, domain, request.args.get("format", "json"), _request_context()
    )
    answer = Response(body, content_type=content_type)
    answer.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return answer


@bp.put("/<study_id>/subjects/<subject_id>/adjudication")
def adjudication_view(study_id: str, subject_id: str) -> dict[str, Any]:
    """Record which central read counts for a subject whose central readers disagree."""
    return adjudication_document(study_id, subject_id, _body(), _request_context())


@bp.errorhandler(StudyNotFoundError)
def _not_found(error: StudyNotFoundError) -> tuple[dict[str, Any], int]:
    return error_body(error.errors), 404


@bp.errorhandler(StudyConflictError)
def _conflict(error: StudyConflictError) -> tuple[dict[str, Any], int]:
    return error_body(error.errors), 409


@bp.errorhandler(FhirServerError)
@bp.errorhandler(PatientBusyError)
def _unavailable(
    error: FhirServerError | PatientBusyError,
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The FHIR server refused (502) or is away, or the study is busy (503): the JSON envelope
    with the message the FHIR routes give, and ``Retry-After`` when known."""
    answer = fhir_error_answer(error)
    assert answer is not None  # noqa: S101 -- fhir_error_answer maps both
    messages = [str(issue.get("diagnostics", "")) for issue in answer.outcome["issue"]]
    body = error_body([FieldError(path=(), message=m) for m in messages if m])
    return body, answer.status, answer.headers


#: The plots of a study: ``<kind>.<format>`` (docs/trials.md "Plots").
PLOT_NAMES = tuple(
    f"{kind}.{fmt}" for kind in ("waterfall", "spider", "swimmer") for fmt in ("svg", "png", "json")
)


def study_plot_document(
    study_id: str,
    plot: str,
    context: Context,
    *,
    arm: str | None = None,
    evaluator: str | None = None,
) -> tuple[bytes | dict[str, Any], str]:
    """One plot of a study (``waterfall.svg`` ...) and its media type; ``.json`` is the data
    behind it. Subject reads are audited. Imported here, not at the top: matplotlib is loaded
    by the first plot, not by every start of the app.

    :raises StudyNotFoundError: no such study, or no such plot (404).
    :raises InvalidInputError: an arm or evaluator the study does not have (422).
    """
    from fhirnet.services.study_endpoints import INVESTIGATOR
    from fhirnet.services.study_plots import study_plot
    from fhirnet.trials.plot_data import PlotKind
    from fhirnet.web import plots

    check_id(study_id, "studyId")
    if plot not in PLOT_NAMES:
        raise StudyNotFoundError(f"No plot {plot!r}; the plots are {', '.join(PLOT_NAMES)}.")
    kind, fmt = plot.split(".")
    data = study_plot(
        study_id, PlotKind(kind), context, evaluator=evaluator or INVESTIGATOR, arm=arm
    )
    if fmt == "json":
        return plots.plot_json(data), plots.MEDIA_TYPES[fmt]
    return plots.render(data, fmt), plots.MEDIA_TYPES[fmt]


@bp.get("/<study_id>/plots/<plot>")
def study_plot_view(study_id: str, plot: str) -> Any:
    """A waterfall, spider or swimmer plot of the study as SVG, PNG or its data as JSON
    (``?arm=``, ``?evaluator=``; audited subject reads)."""
    body, media_type = study_plot_document(
        study_id,
        plot,
        _request_context(),
        arm=request.args.get("arm"),
        evaluator=request.args.get("evaluator"),
    )
    if isinstance(body, dict):
        return body
    return body, 200, {"Content-Type": media_type}
