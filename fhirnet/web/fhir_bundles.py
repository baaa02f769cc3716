"""The Bundles the FHIR endpoint answers with: the ``searchset`` of a search of the embedded store,
and the ``transaction-response``/``batch-response`` of submitted forms (R4 http.html#transaction-
response: one entry per request entry, in order, each with its ``response``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

from flask import current_app

from fhirnet.adapters.store import CURSOR, SearchPage
from fhirnet.errors import FhirnetError
from fhirnet.fhir.outcome import Issue, IssueType, operation_outcome
from fhirnet.ports import Json
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


def bundle_response(
    outcome: BundleOutcome, *, report_url: Callable[[Json], str], prefer: str
) -> Json:
    """The ``transaction-response`` or ``batch-response`` of :func:`fhirnet.services.submit_bundle`.

    A form's entry answers like ``POST /fhir/QuestionnaireResponse`` would: ``201 Created`` or
    ``200 OK``, ``location`` = its DiagnosticReport, which is the entry's ``resource`` (unless
    ``prefer`` is ``minimal``); with ``OperationOutcome`` preferred, the issues are the entry's
    ``response.outcome``. A failed ``batch`` entry has the status and OperationOutcome the form
    alone would have got.

    :param report_url: the absolute URL of a DiagnosticReport.
    :param prefer: the ``Prefer: return=`` value, lower-cased (``representation`` by default).
    """
    entries = []
    for result in outcome.results:
        if isinstance(result, Submission):
            response: Json = {
                "status": "201 Created" if result.created else "200 OK",
                "location": report_url(result.report),
            }
            meta = result.report.get("meta") or {}
            if "versionId" in meta:
                response["etag"] = f'W/"{meta["versionId"]}"'
            if "lastUpdated" in meta:
                response["lastModified"] = meta["lastUpdated"]
            if prefer == RETURN_OUTCOME:
                response["outcome"] = operation_outcome(result.issues)
            entry: Json = {"response": response}
            if prefer not in (RETURN_MINIMAL, RETURN_OUTCOME):
                entry = {"resource": result.report, **entry}
        else:
            entry = error_entry(result)
        entries.append(entry)
    bundle: Json = {"resourceType": "Bundle", "type": f"{outcome.type}-response"}
    if entries:
        bundle["entry"] = entries
    return bundle


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
