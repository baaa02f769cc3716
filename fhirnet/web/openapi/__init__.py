"""The OpenAPI document of the service, in pieces found by endpoint: the JSON API and the
service endpoints (:mod:`~fhirnet.web.openapi.json_api`), the FHIR endpoint's reads
(:mod:`~fhirnet.web.openapi.fhir_reads`) and submissions
(:mod:`~fhirnet.web.openapi.fhir_submissions`), the schemas they share
(:mod:`~fhirnet.web.openapi.components`) and what every operation is made of
(:mod:`~fhirnet.web.openapi.operations`).

Each piece is generated from the tables that drive what it describes — the marshmallow schemas,
:data:`~fhirnet.fhir.capability.READABLE_TYPES`, the store's description of its search
(:func:`fhirnet.adapters.store.search_support`), the format parameters of
:mod:`fhirnet.web.fhir_http`
and the access rules of :mod:`fhirnet.web.auth` — so the document cannot drift from the service.
``tests/web/test_schemathesis.py`` runs schemathesis on every operation of it, so it is also held
to what the service answers: documented statuses, media types and bodies.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from fhirnet import __version__
from fhirnet.web.openapi import (
    bulk,
    fhir_reads,
    fhir_submissions,
    json_api,
    populate,
    reader,
    studies,
)
from fhirnet.web.openapi.components import add_fhir_components
from fhirnet.web.openapi.operations import BEARER, BEARER_SCHEME

OPENAPI_VERSION = "3.1.0"


def build_openapi_document() -> dict[str, Any]:
    """Describe every route of the app: ``POST /api/v1/assessments``, the service endpoints and
    the FHIR endpoint under ``/fhir`` (every path, its parameters, bodies, responses and the
    token and scope it needs).

    :returns: the OpenAPI document as plain JSON-ready data.
    """
    spec = APISpec(
        title="fhirnet assessment API",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Tumour response categories (RECIST 1.1, iRECIST, Choi, PERCIST 1.0) "
            "from lesion measurements over time.",
        },
    )
    spec.components.security_scheme(BEARER, BEARER_SCHEME)
    json_api.add_assessments(spec)
    json_api.add_endpoints(spec)
    studies.add_studies(spec)
    reader.add_reader(spec)
    json_api.add_service_endpoints(spec)
    add_fhir_components(spec)
    fhir_reads.add_metadata(spec)
    fhir_reads.add_smart_configuration(spec)
    fhir_reads.add_conformance_types(spec)
    fhir_reads.add_validate(spec)
    fhir_submissions.add_submissions(spec)
    populate.add_populate(spec)
    bulk.add_bulk_export(spec)
    bulk.add_token_endpoint(spec)
    # After the submissions: /fhir/QuestionnaireResponse lists its POST before its GET.
    fhir_reads.add_stored_types(spec)
    return spec.to_dict()
