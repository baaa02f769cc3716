"""The edges of fhirnet: everything that does I/O, each behind a protocol of :mod:`fhirnet.ports`.

- :mod:`~fhirnet.adapters.store` — the embedded FHIR store (SQLite): a
  :class:`~fhirnet.ports.FhirStore` with search and transactions, and the description of its
  search it publishes;
- :mod:`~fhirnet.adapters.fhir_client` — an external FHIR server over HTTP, the other
  :class:`~fhirnet.ports.FhirStore` (retries, backoff, SMART Backend Services tokens);
- :mod:`~fhirnet.adapters.smart` — the signed JWT assertions of SMART Backend Services;
- :mod:`~fhirnet.adapters.outbox` — the durable :class:`~fhirnet.ports.Outbox` of accepted
  submissions (SQLite);
- :mod:`~fhirnet.adapters.locks` — per-patient :class:`~fhirnet.ports.PatientLocks` (``flock``);
- :mod:`~fhirnet.adapters.pg_outbox`, :mod:`~fhirnet.adapters.pg_locks` — the same outbox and
  locks in PostgreSQL (``FHIRNET_DATABASE_URL``: several hosts share them; advisory locks held
  inside transactions), :mod:`~fhirnet.adapters.pg_replay_cache`,
  :mod:`~fhirnet.adapters.pg_export_jobs` — the used assertion ids and the export jobs of every
  host, :mod:`~fhirnet.adapters.pg_schema` — their versioned migrations,
  :mod:`~fhirnet.adapters.pg_connections` — their connections (these are the only users of
  psycopg);
- :mod:`~fhirnet.adapters.sdtm_files` — SDTM datasets as Dataset-JSON, SAS XPORT v5 and CSV files
  (the only user of pyreadstat and pandas);
- :mod:`~fhirnet.adapters.export_jobs` — Bulk Data export jobs (SQLite, shared by a host's
  workers) and their NDJSON files;
- :mod:`~fhirnet.adapters.bulk_clients` — the bulk clients registered in a file, with their keys;
- :mod:`~fhirnet.adapters.replay_cache` — the client assertion ids already used (SQLite);
- :mod:`~fhirnet.adapters.study_secrets` — the per-study pseudonymization secrets file.

The services never import this package; the web layer builds the adapters and hands them in.
"""
