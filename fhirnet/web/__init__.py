"""HTTP and command-line entry points: the only package that imports Flask, marshmallow or click.

``create_app`` (in :mod:`fhirnet.web.app`) builds the application; the objects it shares between
requests live in ``app.extensions["fhirnet"]`` as a :class:`WebState`, never in module globals.

- :mod:`~fhirnet.web.app` — the application factory ``create_app``;
- :mod:`~fhirnet.web.backend` — the FHIR store the application works on, and the patient locks;
- :mod:`~fhirnet.web.auth` — access control: public endpoints, SMART scopes, the token check;
- :mod:`~fhirnet.web.errors` — the one place where errors become HTTP responses;
- :mod:`~fhirnet.web.limits` — limits on decoded JSON request bodies;
- :mod:`~fhirnet.web.bodies` — request bodies, read whole and never past the size limit;
- :mod:`~fhirnet.web.logs` — structured JSON logs, without patient data;
- :mod:`~fhirnet.web.api_views` — the plain-JSON assessment API;
- :mod:`~fhirnet.web.assessment_schemas` — marshmallow schemas of the assessment API;
- :mod:`~fhirnet.web.schema_fields` — the marshmallow toolkit every JSON API body uses;
- :mod:`~fhirnet.web.crf_views` — ``GET /crf``: the reader's form page, its timeline page and
  sign-in settings;
- :mod:`~fhirnet.web.populate_views` — SDC ``$populate``: a patient's next form, pre-filled;
- :mod:`~fhirnet.web.reader_views` — the live assessment of a form being typed and a patient's
  timeline (JSON), :mod:`~fhirnet.web.reader_schemas` their answers;
- :mod:`~fhirnet.web.fhir_http` — the ``/fhir`` blueprint and its HTTP plumbing;
- :mod:`~fhirnet.web.fhir_views` — reads at ``/fhir``: metadata, conformance, store, ``$validate``;
- :mod:`~fhirnet.web.fhir_search` — search of the conformance resources;
- :mod:`~fhirnet.web.fhir_submissions` — submissions at ``/fhir``: forms in, results written;
- :mod:`~fhirnet.web.fhir_bundles` — the searchset and transaction-response Bundles answered;
- :mod:`~fhirnet.web.delivery` — the web side of durable delivery to the external server;
- :mod:`~fhirnet.web.discovery` — ``/.well-known/smart-configuration``;
- :mod:`~fhirnet.web.endpoint_schemas` — the trial endpoints API (``POST /api/v1/endpoints``);
- :mod:`~fhirnet.web.study_views` — the study API: studies, subjects, endpoints, adjudication,
  plots, SDTM; :mod:`~fhirnet.web.study_schemas` and
  :mod:`~fhirnet.web.study_endpoint_schemas` — its bodies and answers;
- :mod:`~fhirnet.web.plots` — waterfall, spider and swimmer drawn with matplotlib (SVG, PNG);
- :mod:`~fhirnet.web.sdtm_export` — SDTM datasets per study, for the route and the command;
- :mod:`~fhirnet.web.bulk_views` — FHIR Bulk Data export: kick-off, status, cancel, NDJSON files;
- :mod:`~fhirnet.web.token_views` — ``POST /auth/token``: tokens for the registered bulk clients;
- :mod:`~fhirnet.web.cli` — the ``fhirnet`` command (assess, endpoints, serve, demo, outbox,
  reassess, study); :mod:`~fhirnet.web.demo` and :mod:`~fhirnet.web.serving` — what ``demo`` and
  ``serve`` run under gunicorn;
- :mod:`~fhirnet.web.openapi` — the OpenAPI document, in pieces by endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from fhirnet.config import Settings
from fhirnet.fhir.profiles import Catalog
from fhirnet.fhir.pseudonymize import Regime
from fhirnet.web.backend import Backend

if TYPE_CHECKING:
    from fhirnet.web.delivery import Deliveries


@dataclass(frozen=True, kw_only=True)
class WebState:
    """What one application instance shares between requests."""

    settings: Settings
    #: Built once by ``create_app`` from the same schemas that validate requests.
    openapi: dict[str, Any]
    #: The conformance package of ``settings.profiles_dir``, loaded once.
    catalog: Catalog
    #: The Questionnaire as served: answer ValueSets contained and pre-expanded.
    questionnaire: Mapping[str, Any]
    #: The CapabilityStatement, without ``implementation.url`` (known per request).
    capability: Mapping[str, Any]
    #: The current time, timezone-aware; "today" of validations is its UTC date.
    clock: Callable[[], datetime]
    #: The FHIR store submissions are assessed against and written to, and the patient locks.
    backend: Backend
    #: Durable delivery to the external FHIR server; ``None`` with the embedded store, or
    #: with ``FHIRNET_OUTBOX=off``.
    deliveries: Deliveries | None = None
    #: The studies' pseudonymization regimes (``FHIRNET_STUDY_SECRETS_FILE``), read once at
    #: start so a broken file stops the start instead of failing exports.
    regimes: Mapping[str, Regime] = field(default_factory=dict)


def web_state() -> WebState:
    """The :class:`WebState` of the application handling the current request."""
    state: WebState = current_app.extensions["fhirnet"]
    return state


def public_root(settings: Settings | None = None) -> str:
    """Where clients reach fhirnet, e.g. ``https://fhirnet.example.org``: every absolute URL it
    answers with starts here. ``FHIRNET_PUBLIC_BASE_URL`` when set (``settings``, default the
    application's); else as the client addressed it (the ``Host`` header, which the client
    chooses: a demo convenience, docs/configuration.md)."""
    public = (web_state().settings if settings is None else settings).public_base_url
    return public if public is not None else request.url_root.rstrip("/")
