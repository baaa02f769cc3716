"""The Bundles :func:`fhirnet.services.submit_bundle` takes: a ``transaction`` or ``batch`` whose
entries each POST a QuestionnaireResponse; anything else is a malformed request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fhirnet.fhir.outcome import Issue, IssueType, MalformedRequestError
from fhirnet.services.forms import ROOT

__all__ = ["BUNDLE_TYPES", "bundle_entries", "entry_prefix"]

#: Bundle types :func:`fhirnet.services.submit_bundle` processes.
BUNDLE_TYPES: Final = ("transaction", "batch")


def entry_prefix(index: int) -> str:
    """Where the expressions of the form of entry ``index`` start."""
    return f"Bundle.entry[{index}].resource"


def bundle_entries(
    bundle: Mapping[str, Any],
) -> tuple[str, list[Mapping[str, Any] | MalformedRequestError]]:
    """The Bundle's type and, per entry, its QuestionnaireResponse or what is wrong with it."""
    kind = bundle.get("type")
    if bundle.get("resourceType") != "Bundle" or kind not in BUNDLE_TYPES:
        raise MalformedRequestError(
            [
                Issue.error(
                    IssueType.NOT_SUPPORTED,
                    f"Expected a Bundle of type {' or '.join(BUNDLE_TYPES)}, got "
                    f"{bundle.get('resourceType')!r} of type {kind!r}",
                    expression="Bundle.type",
                )
            ]
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise MalformedRequestError(
            [
                Issue.error(
                    IssueType.STRUCTURE, "Bundle.entry must be a list", expression="Bundle.entry"
                )
            ]
        )
    return str(kind), [_entry(index, entry) for index, entry in enumerate(entries)]


def _entry(index: int, entry: object) -> Mapping[str, Any] | MalformedRequestError:
    where = f"Bundle.entry[{index}]"
    request = entry.get("request") if isinstance(entry, Mapping) else None
    resource = entry.get("resource") if isinstance(entry, Mapping) else None
    method = request.get("method") if isinstance(request, Mapping) else None
    url = request.get("url") if isinstance(request, Mapping) else None
    if method != "POST" or not isinstance(url, str) or url.strip("/") != ROOT:
        message = (
            "fhirnet takes forms only: each entry's request must be POST QuestionnaireResponse "
            f"(got {method!r} {url!r})"
        )
        return MalformedRequestError(
            [Issue.error(IssueType.NOT_SUPPORTED, message, expression=f"{where}.request")]
        )
    if not isinstance(resource, Mapping) or resource.get("resourceType") != ROOT:
        found = resource.get("resourceType") if isinstance(resource, Mapping) else resource
        message = f"the entry's resource must be a QuestionnaireResponse, got {found!r}"
        return MalformedRequestError(
            [Issue.error(IssueType.NOT_SUPPORTED, message, expression=f"{where}.resource")]
        )
    return resource
