"""The reader's workstation API (issue 15), JSON for the ``/crf`` page:

* ``POST /api/v1/forms/assessment`` — the live assessment of the form being typed: a dry run of
  its submission, nothing written (:mod:`fhirnet.services.live_assessment`); a form not finished
  is answered 200 with ``assessable: false`` and what is missing, a body that is not a
  QuestionnaireResponse of the CRF is 422 with every field named;
* ``GET /api/v1/patients/{patientId}/timeline?stream=`` — the patient's exams of one read stream
  with the chart's lines (:mod:`fhirnet.services.patient_timeline`), links to the FHIR resources.

Both read patient data and are audited by the use cases (the dry run as ``$extract`` is, the
timeline as a read); their scopes are in :mod:`fhirnet.web.auth`. Errors use the JSON API's
envelope ``{"errors": ...}`` (:mod:`fhirnet.web.errors`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import UnsupportedMediaType

from fhirnet.services.live_assessment import assess_live
from fhirnet.services.patient_timeline import ExamEntry, PatientTimeline, patient_timeline
from fhirnet.web import web_state
from fhirnet.web.bodies import NOT_PLAIN_UTF8, body_within_limit, is_plain_utf8
from fhirnet.web.fhir_http import BODY_MEDIA_TYPES, base_url
from fhirnet.web.fhir_submissions import _context
from fhirnet.web.limits import check_json, limits_of
from fhirnet.web.reader_schemas import (
    check_patient_id,
    check_stream,
    dump_live_assessment,
    dump_timeline,
    load_assessment_form,
)
from fhirnet.web.schema_fields import parse_json

bp = Blueprint("reader", __name__, url_prefix="/api/v1")


@bp.post("/forms/assessment")
def assess() -> dict[str, Any]:
    """What fhirnet would compute for the form as it stands (module docstring)."""
    resource = load_assessment_form(_form_body())
    return dump_live_assessment(assess_live(resource, _context()))


@bp.get("/patients/<patient_id>/timeline")
def timeline(patient_id: str) -> dict[str, Any]:
    """The patient's timeline in the ``stream`` asked for (the site's by default)."""
    check_patient_id(patient_id)
    stream = request.args.get("stream")
    check_stream(stream)
    found = patient_timeline(patient_id, _context(server=False), stream=stream)
    return dump_timeline(_with_urls(found, fhir_base()))


def fhir_base() -> str:
    """Where the links point: the FHIR server fhirnet writes to, else its own ``/fhir``."""
    return web_state().backend.server_url or base_url()


def _with_urls(timeline: PatientTimeline, base: str) -> PatientTimeline:
    """The exams' ``<type>/<id>`` references as URLs on ``base``."""

    def absolute(reference: str | None) -> str | None:
        return None if reference is None else f"{base.rstrip('/')}/{reference}"

    def linked(exam: ExamEntry) -> ExamEntry:
        return replace(
            exam,
            questionnaire_response=absolute(exam.questionnaire_response),
            diagnostic_report=absolute(exam.diagnostic_report),
        )

    return replace(timeline, exams=tuple(linked(exam) for exam in timeline.exams))


def _form_body() -> Any:
    """The decoded body: a QuestionnaireResponse as JSON (``application/json`` or
    ``application/fhir+json``, UTF-8); 415 for another media type, 413 over the size limit,
    422 for malformed JSON or one over the JSON limits (as FHIR bodies are limited)."""
    charset = request.mimetype_params.get("charset", "utf-8").strip().lower()
    if request.mimetype not in BODY_MEDIA_TYPES or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"Content-Type must be {' or '.join(BODY_MEDIA_TYPES)} (UTF-8).")
    raw = body_within_limit()
    if not is_plain_utf8(raw):
        raise UnsupportedMediaType(NOT_PLAIN_UTF8)
    document = parse_json(raw)
    check_json(document, limits_of(web_state().settings))
    return document
