"""The embedded FHIR store: with no external FHIR server configured, fhirnet keeps the resources
it writes in a SQLite file behind the same :class:`~fhirnet.ports.FhirStore` port.

Modules: :mod:`~fhirnet.store.embedded` (the store), :mod:`~fhirnet.store.transaction` (Bundle
processing), :mod:`~fhirnet.store.search` (search parameters and their SQL),
:mod:`~fhirnet.store.parameters` (what is indexed), :mod:`~fhirnet.store.support` (the search
support it publishes: :func:`search_support`), :mod:`~fhirnet.store.versions` (version
rows), :mod:`~fhirnet.store.sqlite` (schema and connections), :mod:`~fhirnet.store.dates` and
:mod:`~fhirnet.store.resources` (FHIR value helpers). Standard library only: ``sqlite3`` and
``json``.
"""

from fhirnet.store.embedded import EmbeddedStore
from fhirnet.store.search import CURSOR, SearchPage, SearchParameterError
from fhirnet.store.support import SearchSupport, search_support

__all__ = [
    "CURSOR",
    "EmbeddedStore",
    "SearchPage",
    "SearchParameterError",
    "SearchSupport",
    "search_support",
]
