"""The use cases of fhirnet, over the ports (``style.md`` P10): :func:`submit` a form,
:func:`submit_bundle` several, :func:`extract` the transaction a form gives without writing it;
each takes the resource and a :class:`Context` (store, catalog, locks, time, audit trail).

Modules: :mod:`~fhirnet.services.submission` (the use cases), :mod:`~fhirnet.services.context`
(what they run with), :mod:`~fhirnet.services.planning` (what a submission writes),
:mod:`~fhirnet.services.audits` (their AuditEvents), :mod:`~fhirnet.services.forms`
(checking and reading a received form, locating its items), :mod:`~fhirnet.services.history`
(what the FHIR server holds about a patient), :mod:`~fhirnet.services.timelines` (a patient's
forms as assessed timelines), :mod:`~fhirnet.services.bundles` (the Bundles taken),
:mod:`~fhirnet.services.delivery` (durable delivery through the outbox),
:mod:`~fhirnet.services.streams` (which forms of a patient are assessed together: the site's read
and each central reader's own stream),
:mod:`~fhirnet.services.studies` (trial studies and enrolment: define, enrol, withdraw),
:mod:`~fhirnet.services.study_records` (reading and writing studies and subjects in the store),
:mod:`~fhirnet.services.study_endpoints` (a study's endpoints per subject, evaluator and arm, from
the stored DiagnosticReports),
:mod:`~fhirnet.services.adjudication` (accepting one central reader's read when they disagree),
:mod:`~fhirnet.services.study_plots` (the series behind a study's waterfall, spider and swimmer
plots), :mod:`~fhirnet.services.sdtm` (a study's CDISC SDTM rows, one subject at a time),
:mod:`~fhirnet.services.references` (what a submitted form may refer to),
:mod:`~fhirnet.services.reassessment` (assessing stored exams again under the running rules).
"""

from fhirnet.services.context import Context
from fhirnet.services.submission import (
    BundleOutcome,
    Submission,
    extract,
    patients_of_bundle,
    patients_of_form,
    submit,
    submit_bundle,
)

__all__ = [
    "BundleOutcome",
    "Context",
    "Submission",
    "extract",
    "patients_of_bundle",
    "patients_of_form",
    "submit",
    "submit_bundle",
]
