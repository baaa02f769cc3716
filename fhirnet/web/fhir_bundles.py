"""The Bundles the FHIR endpoint answers with: the ``searchset`` of a search of the embedded store,
and the ``transaction-response``/``batch-response`` of submitted forms (R4 http.html#transaction-
response: one entry per request entry, in order, each with its ``response``); and where what a
submission wrote lives (:class:`Locator`): the form, read back, and its DiagnosticReport.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from flask import current_app

from fhirnet.adapters.store import CURSOR, SearchPage
from fhirnet.errors import FhirnetError
from fhirnet.fhir.identifiers import CRF_SUBMISSION
from fhirnet.fhir.outcome import Issue, IssueType, operation_outcome
from fhirnet.ports import FhirStore, Json
from fhirnet.services import BundleOutcome, Submission
from fhirnet.web.errors import INTERNAL_ERROR_MESSAGE, fhir_error_answer

#: ``Prefer: return=...`` values (R4 http.html#ops), lower-cased.
RETURN_MINIMAL: Final = "minimal"
RETURN_OUTCOME: Final = "operationoutcome"


def searchset(
    page: SearchPage, *, base: str, resource_type: str, query: Sequence[tuple[str, str]]
) -> Json:
    """A ``searchset`` Bundle of one page: ``self`` and ``next`` links (the next page is the same
    query with the page's cursor), the total, matches then included resources.

    :param base: the FHIR base URL the client addressed.
    :param query: the search parameters as sent (without ``_format``/``_pretty``).
    """
    criteria = [(name, value) for name, value in query if name != CURSOR]

    def link(pairs: Sequence[tuple[str, str]]) -> str:
        return f"{base}/{resource_type}" + (f"?{urlencode(pairs, safe=':/|')}" if pairs else "")

    links = [{"relation": "self", "url": link(query)}]
    if page.next_cursor is not None:
        links.append({"relation": "next", "url": link([*criteria, (CURSOR, page.next_cursor)])})
    entries = [
        {
            "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": mode},
        }
        for mode, resources in (("match", page.matches), ("include", page.included))
        for resource in resources
    ]
    bundle: Json = {"resourceType": "Bundle", "type": "searchset", "total": page.total}
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def version_headers(resource: Mapping[str, Any]) -> dict[str, str]:
    """``ETag`` (weak, the versionId) and ``Last-Modified`` of a stored resource."""
    meta = resource.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    headers = {}
    if isinstance(meta.get("versionId"), str):
        headers["ETag"] = f'W/"{meta["versionId"]}"'
    modified = _http_date(meta.get("lastUpdated"))
    if modified is not None:
        headers["Last-Modified"] = modified
    return headers


def _http_date(instant: object) -> str | None:
    if not isinstance(instant, str):
        return None
    try:
        when = dt.datetime.fromisoformat(instant)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return email.utils.format_datetime(when.astimezone(dt.UTC), usegmt=True)


#: How a client finds the results of a form (declared in the CapabilityStatement): the
#: Provenance fhirnet writes names the form as its ``entity`` and the report among its targets.
RESULTS_SEARCH = (
    "Provenance?entity=QuestionnaireResponse/{id}&_include=Provenance:target:DiagnosticReport"
)


#: The link relation of a kept answer's ``entry.link`` to the form's DiagnosticReport: an
#: extension relation type (RFC 8288 §2.1.2), as R4 Bundle.link.relation allows.
REPORT_RELATION: Final = "https://fhirnet.dev/fhir/link-relation/diagnostic-report"
#: The report's URL in the OperationOutcome of a submission (:meth:`Written.outcome`): how
#: answers kept before :data:`REPORT_RELATION` existed name it.
_REPORT_URL_TEXT = re.compile(r"The results of the form: DiagnosticReport (\S+?)[ .]")


def with_report_link(answer: Json, report_url: str) -> Json:
    """A ``batch-response`` entry about one form, with ``entry.link`` to its DiagnosticReport:
    how the outbox keeps where the report is (:func:`report_url_of`)."""
    return {"link": [{"relation": REPORT_RELATION, "url": report_url}], **answer}


def report_url_of(answer: Mapping[str, Any]) -> str | None:
    """The DiagnosticReport URL a kept answer names: its :data:`REPORT_RELATION` link; for an
    answer kept by an earlier fhirnet, the URL in its OperationOutcome's message."""
    for link in answer.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == REPORT_RELATION:
            return str(link.get("url"))
    response = answer.get("response")
    outcome = response.get("outcome") if isinstance(response, Mapping) else None
    issues = outcome.get("issue") if isinstance(outcome, Mapping) else None
    for issue in issues if isinstance(issues, list) else []:
        found = _REPORT_URL_TEXT.search(str(issue.get("diagnostics", "")))
        if found:
            return found.group(1)
    return None


@dataclass(frozen=True, kw_only=True)
class Locator:
    """Where what a submission wrote lives: on the FHIR server that holds it (the embedded
    store, served under this server's base, or the external FHIR server).

    :ivar base: that server's FHIR base URL (absolute when known).
    :ivar store: the store to read the written form back from.
    """

    base: str
    store: FhirStore

    def report_url(self, report: Mapping[str, Any]) -> str:
        """The absolute URL of a DiagnosticReport."""
        return self._url(f"DiagnosticReport/{report.get('id')}")

    def form_url(self, form: Mapping[str, Any]) -> str:
        """The versioned URL of a stored form: ``[base]/QuestionnaireResponse/{id}/_history/{vid}``
        (without ``_history`` when the server gave it no versionId)."""
        url = self._url(f"QuestionnaireResponse/{form.get('id')}")
        meta = form.get("meta")
        version = meta.get("versionId") if isinstance(meta, Mapping) else None
        return f"{url}/_history/{version}" if isinstance(version, str) else url

    def stored_form(self, sent: Mapping[str, Any]) -> Json | None:
        """The form as the server holds it after a submission of ``sent`` (its ``id`` and
        ``meta`` assigned there), found by its business identifier — the one a submission
        writes it under (a form sent without one is identified by its id,
        :mod:`fhirnet.services.forms`); ``None`` when the server does not find it."""
        identifier = sent.get("identifier")
        if isinstance(identifier, Mapping):
            system, value = identifier.get("system"), identifier.get("value")
        else:
            system, value = CRF_SUBMISSION, sent.get("id")
        if not isinstance(system, str) or not isinstance(value, str):
            return None
        token = f"{system}|{value}"
        for found in self.store.search("QuestionnaireResponse", {"identifier": [token]}):
            # A server may ignore a search parameter and answer other forms: check each.
            if _identifies(found, system, value):
                return found
        return None

    def _url(self, path: str) -> str:
        return f"{self.base}/{path}" if self.base else path


def _identifies(form: Mapping[str, Any], system: str, value: str) -> bool:
    """Whether ``form`` is the one with business identifier ``system|value`` (its id, for
    a form identified by it)."""
    identifier = form.get("identifier")
    if isinstance(identifier, Mapping):
        return identifier.get("system") == system and identifier.get("value") == value
    return system == CRF_SUBMISSION and form.get("id") == value


@dataclass(frozen=True, kw_only=True)
class Written:
    """One form a submission wrote, as a client is answered about it.

    :ivar form: the stored form (``None`` only when the server did not find it again: then the
        answer falls back to the report, and says so).
    :ivar report_url: the absolute URL of its DiagnosticReport.
    """

    submission: Submission
    form: Json | None
    report_url: str
    form_url: str | None

    @classmethod
    def of(cls, submission: Submission, sent: Mapping[str, Any], locator: Locator) -> Written:
        """What ``submission`` of the form ``sent`` wrote: the form the transaction-response
        carried, else read back through ``locator``."""
        form = submission.form or locator.stored_form(sent)
        if form is None:
            current_app.logger.warning("a submitted form was not found again by its identifier")
        return cls(
            submission=submission,
            form=form,
            report_url=locator.report_url(submission.report),
            form_url=None if form is None else locator.form_url(form),
        )

    @property
    def status(self) -> int:
        """201 when the form was new (its report created); 200 when it was there already: an
        identical resubmission (nothing written) or an amendment (an update)."""
        return 201 if self.submission.created else 200

    @property
    def location(self) -> str:
        """The form's versioned URL (its report's when it could not be read back)."""
        return self.form_url or self.report_url

    def outcome(self) -> Json:
        """The OperationOutcome of the submission: what was written, the computed category,
        the warnings, and where the results are (the report's URL and the search that finds
        them from the form)."""
        form_id = None if self.form is None else self.form.get("id")
        where = f"The results of the form: DiagnosticReport {self.report_url}"
        if form_id is not None:
            where += f" (also: GET [base]/{RESULTS_SEARCH.format(id=form_id)})"
        return operation_outcome([*self.submission.issues, Issue.information(where + ".")])

    def version_headers(self) -> dict[str, str]:
        """``ETag`` and ``Last-Modified`` of the form (of the report when it is unknown)."""
        return version_headers(self.form if self.form is not None else self.submission.report)

    def body(self, prefer: str) -> Json | None:
        """The body ``Prefer: return=`` asks for: the stored form (``representation``), the
        OperationOutcome, or none (``minimal``)."""
        if prefer == RETURN_MINIMAL:
            return None
        if prefer == RETURN_OUTCOME or self.form is None:
            return self.outcome()
        return self.form


def bundle_response(
    outcome: BundleOutcome, *, sent: Sequence[Mapping[str, Any]], locator: Locator, prefer: str
) -> Json:
    """The ``transaction-response`` or ``batch-response`` of :func:`fhirnet.services.submit_bundle`.

    A form's entry answers like ``POST /fhir/QuestionnaireResponse`` (a FHIR create) would:
    ``201 Created`` or ``200 OK``, ``location`` = the form's versioned URL, ``etag`` and
    ``lastModified`` of the form, and ``resource`` = the stored form (``representation``, the
    default), none (``minimal``) or ``response.outcome`` = the OperationOutcome with the
    report's URL (``OperationOutcome``). A failed ``batch`` entry has the status and
    OperationOutcome the form alone would have got.

    :param sent: the forms sent, in entry order (one per result).
    :param locator: where the written resources live.
    :param prefer: the ``Prefer: return=`` value, lower-cased (``representation`` by default).
    """
    entries = []
    for index, result in enumerate(outcome.results):
        if isinstance(result, Submission):
            written = Written.of(result, sent[index], locator)
            response: Json = {
                "status": "201 Created" if written.status == 201 else "200 OK",
                "location": written.location,
            }
            headers = written.version_headers()
            if "ETag" in headers:
                response["etag"] = headers["ETag"]
            meta = (written.form or result.report).get("meta") or {}
            if "lastUpdated" in meta:
                response["lastModified"] = meta["lastUpdated"]
            body = written.body(prefer)
            if prefer == RETURN_OUTCOME and body is not None:
                response["outcome"] = body
            entry: Json = {"response": response}
            if body is not None and prefer != RETURN_OUTCOME:
                entry = {"resource": body, **entry}
        else:
            entry = error_entry(result)
        entries.append(entry)
    bundle: Json = {"resourceType": "Bundle", "type": f"{outcome.type}-response"}
    if entries:
        bundle["entry"] = entries
    return bundle


def sent_forms(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The resources of a submitted Bundle's entries, in order (empty objects where an entry
    has none: those entries failed and are not looked up)."""
    entries = bundle.get("entry")
    found: list[Mapping[str, Any]] = []
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        found.append(resource if isinstance(resource, Mapping) else {})
    return found


def error_entry(error: Exception) -> Json:
    """The ``batch-response`` entry of a request that failed with ``error``: the status and
    OperationOutcome the request alone would have been answered with. An error that is not
    fhirnet's own is a bug: logged, answered 500, never explained."""
    answer = fhir_error_answer(error) if isinstance(error, FhirnetError) else None
    if answer is not None:
        return {"response": {"status": answer.status_line, "outcome": answer.outcome}}
    current_app.logger.error("Unhandled error in a submission", exc_info=error)
    issue = Issue.error(IssueType.EXCEPTION, INTERNAL_ERROR_MESSAGE)
    return {
        "response": {
            "status": "500 Internal Server Error",
            "outcome": operation_outcome([issue]),
        }
    }
