"""The use cases of fhirnet, over the ports (``style.md`` P10): :func:`submit` a form,
:func:`submit_bundle` several, :func:`extract` the transaction a form gives without writing it.

Modules: :mod:`~fhirnet.services.submission` (the pipeline), :mod:`~fhirnet.services.forms`
(checking and reading a received form, locating its items), :mod:`~fhirnet.services.history`
(what the FHIR server holds about a patient), :mod:`~fhirnet.services.timelines` (a patient's
forms as assessed timelines), :mod:`~fhirnet.services.bundles` (the Bundles taken).
"""

from fhirnet.services.submission import BundleOutcome, Submission, extract, submit, submit_bundle

__all__ = ["BundleOutcome", "Submission", "extract", "submit", "submit_bundle"]
