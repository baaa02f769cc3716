"""The embedded FHIR store: with no external FHIR server configured, fhirnet keeps the resources
it writes in a SQLite file behind the same :class:`~fhirnet.ports.FhirStore` port.

Modules: :mod:`~fhirnet.adapters.store.embedded` (the store),
:mod:`~fhirnet.adapters.store.transaction` (Bundle
processing), :mod:`~fhirnet.adapters.store.search` (search parameters and their SQL),
:mod:`~fhirnet.adapters.store.parameters` (what is indexed), :mod:`~fhirnet.adapters.store.support`
(the search
support it publishes: :func:`search_support`), :mod:`~fhirnet.adapters.store.versions` (version
rows), :mod:`~fhirnet.adapters.store.sqlite` (schema and connections),
:mod:`~fhirnet.adapters.store.dates` and
:mod:`~fhirnet.adapters.store.resources` (FHIR value helpers). Standard library only: ``sqlite3``
and
``json``.
"""

from fhirnet.adapters.store.embedded import EmbeddedStore
from fhirnet.adapters.store.search import CURSOR, SearchPage, SearchParameterError
from fhirnet.adapters.store.support import SearchSupport, search_support

__all__ = [
    "CURSOR",
    "EmbeddedStore",
    "SearchPage",
    "SearchParameterError",
    "SearchSupport",
    "search_support",
]
