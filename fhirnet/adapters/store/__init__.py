"""The embedded FHIR store: with no external FHIR server configured, fhirnet keeps the resources
it writes in a SQLite file behind the same :class:`~fhirnet.ports.FhirStore` port. Standard
library only: ``sqlite3`` and ``json``.

- :mod:`~fhirnet.adapters.store.embedded` — the store: :class:`EmbeddedStore`, the port's methods;
- :mod:`~fhirnet.adapters.store.transaction` — transaction and batch Bundles, processed;
- :mod:`~fhirnet.adapters.store.entries` — Bundle entries checked and parsed into requests;
- :mod:`~fhirnet.adapters.store.interactions` — one entry's create, update, delete or read;
- :mod:`~fhirnet.adapters.store.search` — the search semantics; a search run into a page;
- :mod:`~fhirnet.adapters.store.query` — a parsed search, its values and limits, its error;
- :mod:`~fhirnet.adapters.store.parser` — search parameters parsed into a query, strictly;
- :mod:`~fhirnet.adapters.store.clauses` — the SQL of a query: its WHERE and ORDER BY;
- :mod:`~fhirnet.adapters.store.cursor` — the opaque paging cursor (keyset pagination);
- :mod:`~fhirnet.adapters.store.parameters` — the search parameters indexed, per type;
- :mod:`~fhirnet.adapters.store.support` — the search support it publishes (:func:`search_support`);
- :mod:`~fhirnet.adapters.store.versions` — version rows: save, delete, load;
- :mod:`~fhirnet.adapters.store.sqlite` — the schema and connections;
- :mod:`~fhirnet.adapters.store.dates` — FHIR dates as ranges of instants;
- :mod:`~fhirnet.adapters.store.resources` — FHIR ids, types and references.
"""

from fhirnet.adapters.store.embedded import EmbeddedStore
from fhirnet.adapters.store.query import CURSOR, SearchParameterError
from fhirnet.adapters.store.search import SearchPage
from fhirnet.adapters.store.support import SearchSupport, search_support

__all__ = [
    "CURSOR",
    "EmbeddedStore",
    "SearchPage",
    "SearchParameterError",
    "SearchSupport",
    "search_support",
]
