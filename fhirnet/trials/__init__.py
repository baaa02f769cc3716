"""Trial endpoints from per-visit overall responses: plain data in and out (``docs/trials.md``).

No Flask, no HTTP, no FHIR. ``derive_endpoints`` takes one subject's :class:`SubjectRequest` (one
evaluator's overall responses per visit) and returns its :class:`SubjectEndpoints`;
``summarize_arms`` turns many subjects into per-arm ORR and DCR with exact intervals.

Modules, one job each:

- ``models``: the values that go in and come out.
- ``calendar``: study days and protocol visit windows.
- ``response``: best overall response, confirmation and progression from overall responses.
- ``endpoints``: ``derive_endpoints``: every per-subject endpoint with its reasons.
- ``summary``: ``summarize_arms``: per arm and evaluator ORR and DCR.
- ``intervals``: the Clopper-Pearson interval (the only module that uses scipy).
- ``plot_data``: the bars, lines and lanes of the waterfall, spider and swimmer plots.
- ``sdtm``: CDISC SDTM TU/TR/RS/DM rows of one subject (codelists, limits);
  ``sdtm_domains``: each domain's variables (names, labels, types).
"""

from fhirnet.trials.endpoints import derive_endpoints
from fhirnet.trials.models import (
    UNSCHEDULED,
    ArmSubject,
    ArmSummary,
    CensoringReason,
    DatedResponse,
    EndpointOptions,
    Proportion,
    ScheduledVisit,
    SubjectEndpoints,
    SubjectRequest,
    TimeToEvent,
    VisitResponse,
    VisitResult,
    VisitRole,
)
from fhirnet.trials.summary import summarize_arms

__all__ = [
    "UNSCHEDULED",
    "ArmSubject",
    "ArmSummary",
    "CensoringReason",
    "DatedResponse",
    "EndpointOptions",
    "Proportion",
    "ScheduledVisit",
    "SubjectEndpoints",
    "SubjectRequest",
    "TimeToEvent",
    "VisitResponse",
    "VisitResult",
    "VisitRole",
    "derive_endpoints",
    "summarize_arms",
]
