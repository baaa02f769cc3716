"""HTTP and command-line entry points: the only package that imports Flask, marshmallow or click.

``create_app`` (in :mod:`fhirnet.web.app`) builds the application; the objects it shares between
requests live in ``app.extensions["fhirnet"]`` as a :class:`WebState`, never in module globals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import current_app

from fhirnet.config import Settings
from fhirnet.fhir.profiles import Catalog
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


def web_state() -> WebState:
    """The :class:`WebState` of the application handling the current request."""
    state: WebState = current_app.extensions["fhirnet"]
    return state
