"""SDC ``$populate`` of the CRF at the FHIR endpoint: a patient's next form, pre-filled from the
forms on file (:mod:`fhirnet.services.populate`).

* ``GET|POST /fhir/Questionnaire/gep-net-imaging-crf/$populate`` and
  ``GET|POST /fhir/Questionnaire/$populate`` (SDC ``Questionnaire-populate``).
* **In**: a ``Parameters`` body with ``subject`` (``valueReference`` ``Patient/<id>``), and
  optionally ``local``, ``canonical`` (the form's URL, any of its versions; at the type level),
  ``author`` (``valueReference``: the reader) and ``context`` parts (``name`` + ``content``): a
  context ``stream`` (``valueString``: ``site``, a reader reference, or the study's label for a
  central reader, as the timeline takes it) selects the read stream,
  a context ``author`` (``valueReference``) names the reader. ``GET`` takes the same as query
  parameters: ``subject=Patient/x``, ``stream=``, ``author=``, ``canonical=``, ``local=``.
  Without an author, the signed-in reader's ``fhirUser`` is the author.
* **Out**: ``Parameters`` with ``response`` (the QuestionnaireResponse, ``in-progress``) and,
  when something could not be filled, ``issues`` (an OperationOutcome). A patient with nothing on
  file gets a blank baseline.

Bad input (no or several subjects, a subject that is not a Patient, an unknown parameter) is a
400 OperationOutcome, like every FHIR route (:mod:`fhirnet.web.errors`); another Questionnaire is
a 404, and a stream that names none of the patient's readers a 422.
The read is audited by the use case (one AuditEvent naming the patient).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from flask import Blueprint, g, request
from werkzeug.wrappers import Response

from fhirnet.fhir.identifiers import patient_id
from fhirnet.fhir.outcome import IssueType, operation_outcome
from fhirnet.fhir.profiles import QUESTIONNAIRE_URL
from fhirnet.ports import Json
from fhirnet.services.context import Context
from fhirnet.services.populate import populate
from fhirnet.services.streams import reader_key
from fhirnet.web import web_state
from fhirnet.web.errors import FhirRequestError
from fhirnet.web.fhir_http import (
    FORMAT_PARAMETERS,
    audit_trail,
    check_parameters,
    json_body,
    negotiate,
    options_without_body,
    parameters,
    respond,
)

__all__ = ["bp"]

bp = Blueprint("populate", __name__, url_prefix="/fhir")
bp.before_request(negotiate)
bp.after_request(options_without_body)

#: The one Questionnaire fhirnet populates: its id.
QUESTIONNAIRE_ID: Final = QUESTIONNAIRE_URL.rsplit("/", 1)[1]
#: Query parameters of ``GET``.
GET_PARAMETERS: Final = (*FORMAT_PARAMETERS, "subject", "stream", "author", "canonical", "local")
#: ``Parameters`` entries a ``POST`` may carry (SDC ``Questionnaire-populate`` and ``author``);
#: the SDC inputs fhirnet does not need (``identifier``, ``questionnaire``,
#: ``questionnaireRef``, ``content``) are refused rather than silently ignored.
POST_PARAMETERS: Final = ("subject", "local", "canonical", "context", "author")
#: The longest ``stream``: a reader's reference or a study's label for them.
MAX_STREAM_LENGTH: Final = 200


@bp.route("/Questionnaire/$populate", methods=["GET", "POST"], endpoint="populate")
@bp.route(
    "/Questionnaire/<questionnaire_id>/$populate", methods=["GET", "POST"], endpoint="populate"
)
def populate_form(questionnaire_id: str | None = None) -> Response:
    """The pre-filled form of the ``subject`` (module docstring)."""
    if questionnaire_id is not None and questionnaire_id != QUESTIONNAIRE_ID:
        raise FhirRequestError(
            404,
            IssueType.NOT_FOUND,
            f"No Questionnaire {questionnaire_id}: fhirnet populates {QUESTIONNAIRE_ID} only.",
        )
    if request.method == "GET":
        check_parameters(GET_PARAMETERS)
        inputs = _query_inputs()
    else:
        check_parameters(FORMAT_PARAMETERS)
        inputs = _body_inputs(json_body())
    if questionnaire_id is None:
        _check_canonical(inputs.get("canonical"))
    patient = _patient(inputs.get("subject"))
    stream = _stream(inputs.get("stream"))
    author = _author(inputs.get("author"))
    found = populate(_context(), patient=patient, author=author, stream=stream)
    answer: list[Json] = [{"name": "response", "resource": found.response}]
    if found.issues:
        answer.append({"name": "issues", "resource": operation_outcome(found.issues)})
    return respond({"resourceType": "Parameters", "parameter": answer})


def _query_inputs() -> dict[str, str]:
    found = {}
    for name in ("subject", "stream", "author", "canonical", "local"):
        values = request.args.getlist(name)
        if len(values) > 1:
            raise _bad(f"The parameter {name} is given {len(values)} times; once at most.")
        if values:
            found[name] = values[0]
    return found


def _body_inputs(body: Any) -> dict[str, str]:
    """The inputs of a ``Parameters`` body, each as a string (references as their reference)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise _bad("The body must be a Parameters resource (SDC Questionnaire-populate).")
    by_name = parameters(body)
    unknown = sorted(set(by_name) - set(POST_PARAMETERS))
    if unknown:
        raise FhirRequestError(
            400,
            IssueType.NOT_SUPPORTED,
            f"Parameter(s) not supported here: {', '.join(unknown)}. "
            f"Supported: {', '.join(POST_PARAMETERS)}.",
            expression="Parameters.parameter",
        )
    found: dict[str, str] = {}
    for name in ("subject", "author", "canonical", "local"):
        entries = by_name.get(name, [])
        if len(entries) > 1:
            raise _bad(f"The parameter {name} is given {len(entries)} times; once at most.")
        if entries:
            found[name] = _value(entries[0], name)
    for context in by_name.get("context", []):
        name, content = _context_part(context)
        if name in ("stream", "author"):
            if name in found:
                raise _bad(f"The reader {name} is given more than once.")
            found[name] = content
    return found


def _context_part(entry: Mapping[str, Any]) -> tuple[str, str]:
    """A ``context`` parameter's ``name`` and its ``content`` as a string."""
    parts = entry.get("part")
    if not isinstance(parts, list):
        raise _bad("A context parameter needs the parts name and content.")
    by_name = {p.get("name"): p for p in parts if isinstance(p, dict)}
    name, content = by_name.get("name"), by_name.get("content")
    if name is None or content is None or not isinstance(name.get("valueString"), str):
        raise _bad("A context parameter needs the parts name (valueString) and content.")
    return name["valueString"], _value(content, "context content")


def _value(entry: Mapping[str, Any], name: str) -> str:
    """A parameter's value as a string: a reference's ``reference``, a string, a boolean."""
    if "valueReference" in entry:
        value = entry["valueReference"]
        reference = value.get("reference") if isinstance(value, dict) else None
        if isinstance(reference, str):
            return reference
    for key in ("valueString", "valueCanonical", "valueUri"):
        if isinstance(entry.get(key), str):
            text: str = entry[key]
            return text
    if isinstance(entry.get("valueBoolean"), bool):
        return "true" if entry["valueBoolean"] else "false"
    raise _bad(f"The parameter {name} has no value fhirnet can read (a Reference or a string).")


def _check_canonical(canonical: str | None) -> None:
    if canonical is not None and canonical.partition("|")[0] != QUESTIONNAIRE_URL:
        raise FhirRequestError(
            404,
            IssueType.NOT_FOUND,
            f"No Questionnaire {canonical}: fhirnet populates {QUESTIONNAIRE_URL} only.",
        )


def _patient(subject: str | None) -> str:
    if subject is None:
        raise FhirRequestError(
            400,
            IssueType.REQUIRED,
            "$populate needs the subject: the Patient (subject=Patient/<id>).",
        )
    found = patient_id(subject)
    if found is None:
        raise _bad(f"The subject must be a Patient reference (Patient/<id>), not {subject!r}.")
    return found


def _stream(stream: str | None) -> str | None:
    """A stream name the use case can look up (``site``, a reader or a study's label for one);
    which reader it names is the use case's to decide (422 when none of the patient's)."""
    if stream is not None and len(stream) > MAX_STREAM_LENGTH:
        raise _bad(f"The stream is at most {MAX_STREAM_LENGTH} characters.")
    return stream


def _author(author: str | None) -> str | None:
    """The form's author: the one asked for, else the signed-in reader, if any."""
    if author is None:
        fhir_user = getattr(g.get("fhirnet_principal"), "fhir_user", None)
        return reader_key(fhir_user) if isinstance(fhir_user, str) else None
    if reader_key(author) is None:
        raise _bad("The author must be a reader (Practitioner/<id> or PractitionerRole/<id>).")
    return author


def _bad(message: str) -> FhirRequestError:
    return FhirRequestError(400, IssueType.INVALID, message)


def _context() -> Context:
    """What the use case reads with: the store, the catalog, the time and the audit trail."""
    state = web_state()
    return Context(
        catalog=state.catalog,
        now=state.clock(),
        store=state.backend.store(),
        audit=audit_trail(),
        locks=state.backend.locks,
    )
