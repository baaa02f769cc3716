"""``_include`` and scopes: a search answers only resources the token may read, and every patient
resource it discloses is audited (docs/security.md, finding 1 of the security review).

The attack: the scope check read only the searched type, but the search returned every included
resource, so ``system/DiagnosticReport.rs`` read Observations through ``DiagnosticReport:result``,
and ``Provenance:target`` or ``AuditEvent:entity`` reached the forms and everything else.

The matrix: for every scope set of :data:`SCOPE_SETS` and every ``_include`` the store supports
(each reference parameter of each stored type, with and without each target type) plus the
wildcard and unsupported forms, the answer is a 403 that names a type the token may not read, or
a 4xx the store gives, or a 200 whose every resource is of a type the token may read — and every
patient whose resources it discloses is named by an AuditEvent of that request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.access import grants_of
from fhirnet.adapters.store.parameters import Kind, parameters_of
from fhirnet.config import Settings
from fhirnet.fhir.audit import AUDIT_EVENT, STORED_TYPES, patients_of
from fhirnet.ports import Json
from fhirnet.web.app import create_app
from tests.submissions import CHOI, NOW, RECIST, SUBMIT, body, form
from tests.web.test_submission_views import store_of

FULL_KEY = "include-test-full-key-0123456789"

#: Scope sets a client may hold: name → scopes. Each gets its own API key.
SCOPE_SETS: dict[str, str] = {
    "reports only": "system/DiagnosticReport.rs",
    "reports, v1 syntax": "system/DiagnosticReport.read",
    "reports and results": "system/DiagnosticReport.rs system/Observation.rs",
    "search without read": "system/DiagnosticReport.s system/Observation.s",
    "provenance only": "system/Provenance.rs",
    "audit only": "system/AuditEvent.rs",
    "audit and forms": "system/AuditEvent.rs system/QuestionnaireResponse.r",
    "forms only": "system/QuestionnaireResponse.rs",
    "all but audit": " ".join(f"system/{t}.rs" for t in STORED_TYPES if t != AUDIT_EVENT),
    "everything": "system/*.rs",
}


def _key(name: str) -> str:
    return "key-" + "".join(c for c in name if c.isalnum()).ljust(24, "0")


def _includes() -> list[tuple[str, str, str]]:
    """(searched type, query parameter, value): every _include the store supports, with each
    target it could name, then wildcard and unsupported forms."""
    found = []
    for source in STORED_TYPES:
        for parameter in parameters_of(source).values():
            if parameter.kind is not Kind.REFERENCE:
                continue
            found.append((source, "_include", f"{source}:{parameter.name}"))
            for target in parameter.targets or (*STORED_TYPES, "Patient"):
                found.append((source, "_include", f"{source}:{parameter.name}:{target}"))
    for source in STORED_TYPES:
        found += [
            (source, "_include", "*"),
            (source, "_include", f"{source}:*"),
            (source, "_include:iterate", "DiagnosticReport:result"),
            (source, "_revinclude", "Provenance:target"),
            (source, "_include", f"{source}:subject:not-a-type"),
        ]
    return found


INCLUDES = _includes()


@dataclass(frozen=True)
class Served:
    app: Flask
    client: FlaskClient


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One app with a key per scope set and the forms of two patients written (so that every
    stored type, AuditEvents included, has resources to include)."""
    keys = ((FULL_KEY, ()), *((_key(n), tuple(s.split())) for n, s in SCOPE_SETS.items()))
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("include-scopes")), auth="keys", api_keys=keys
    )
    app = create_app(settings, clock=lambda: NOW)
    app.config["TESTING"] = True
    client = app.test_client()
    for patient, number in ((RECIST, 1), (RECIST, 2), (CHOI, 1)):
        response = client.post(
            SUBMIT,
            json=form(patient, number),
            content_type="application/fhir+json",
            headers={"Authorization": f"Bearer {FULL_KEY}"},
        )
        assert response.status_code == 201, response.get_data(as_text=True)
    yield Served(app, client)
    store_of(app).close()


def readable(scopes: str) -> set[str]:
    """The types ``scopes`` may read, computed from the scope grammar alone."""
    grants = grants_of(scopes.split())
    return {
        t
        for t in (*STORED_TYPES, "Patient")
        if any(g.resource_type in ("*", t) and "r" in g.interactions for g in grants)
    }


def audit_count(app: Flask) -> int:
    return store_of(app).search_page(AUDIT_EVENT, {"_count": "0"}).total


def events_after(app: Flask, before: int) -> list[Json]:
    page = store_of(app).search_page(AUDIT_EVENT, {"_sort": "_lastUpdated", "_count": "1000"})
    return page.matches[before:]


def named_patients(events: list[Json]) -> set[str]:
    return {
        e["what"]["reference"]
        for event in events
        for e in event.get("entity", [])
        if e["role"]["code"] == "1"
    }


@pytest.mark.parametrize("scope_set", SCOPE_SETS)
def test_no_search_answers_a_type_the_token_may_not_read_and_every_disclosure_is_audited(
    served: Served, scope_set: str
) -> None:
    scopes = SCOPE_SETS[scope_set]
    may_read = readable(scopes)
    may_search = {
        t
        for t in STORED_TYPES
        if any(
            g.resource_type in ("*", t) and "s" in g.interactions for g in grants_of(scopes.split())
        )
    }
    headers = {"Authorization": f"Bearer {_key(scope_set)}"}
    statuses: dict[int, int] = {}
    for source, parameter, value in INCLUDES:
        before = audit_count(served.app)
        response = served.client.get(
            f"/fhir/{source}", query_string={parameter: value}, headers=headers
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        where = f"{scope_set}: GET /fhir/{source}?{parameter}={value}"
        if response.status_code == 403:
            (issue,) = body(response)["issue"]
            needed = issue["diagnostics"].split("scope ")[1].split(" ")[0]
            assert needed.startswith("system/"), where
            needed_type = needed.removeprefix("system/").split(".")[0]
            assert needed_type not in may_read or source not in may_search, where
            assert audit_count(served.app) == before, where  # refused before the store
            continue
        if response.status_code != 200:
            assert response.status_code == 400, where  # the store refuses what it lacks
            assert source in may_search, where
            continue
        assert source in may_search, where
        disclosed = [e["resource"] for e in body(response).get("entry", [])]
        types = {r["resourceType"] for r in disclosed}
        assert types <= may_read | {source}, where
        patient_data = [r for r in disclosed if r["resourceType"] != AUDIT_EVENT]
        expected = {p for r in patient_data for p in patients_of(r)}
        events = events_after(served.app, before)
        if patient_data:
            assert events, where
        assert expected <= named_patients(events), where
    assert statuses.get(200, 0) + statuses.get(403, 0) > 0


@pytest.mark.parametrize(
    ("scope_set", "search", "refused"),
    [
        # The review's attacks, each refused with the type it would have disclosed.
        ("reports only", "DiagnosticReport?_include=DiagnosticReport:result", "Observation"),
        ("reports, v1 syntax", "DiagnosticReport?_include=DiagnosticReport:result", "Observation"),
        ("search without read", "DiagnosticReport?_include=DiagnosticReport:result", "Observation"),
        # Type-less targets and wildcards reach every stored type: the first one not readable.
        ("provenance only", "Provenance?_include=Provenance:target", None),
        ("audit only", "AuditEvent?_include=AuditEvent:entity", None),
        ("audit and forms", "AuditEvent?_include=AuditEvent:entity", None),
        ("reports only", "DiagnosticReport?_include=*", None),
        ("audit only", "AuditEvent?_include=AuditEvent:entity:Observation", "Observation"),
        ("reports only", "DiagnosticReport?_revinclude=Provenance:target", "Provenance"),
        ("all but audit", "Provenance?_include=Provenance:target", "AuditEvent"),
    ],
)
def test_an_include_of_a_type_the_token_may_not_read_is_refused_naming_it(
    served: Served, scope_set: str, search: str, refused: str | None
) -> None:
    if refused is None:
        may_read = readable(SCOPE_SETS[scope_set])
        refused = next(t for t in STORED_TYPES if t not in may_read)
    response = served.client.get(
        f"/fhir/{search}", headers={"Authorization": f"Bearer {_key(scope_set)}"}
    )

    assert response.status_code == 403
    assert response.content_type.startswith("application/fhir+json")
    (issue,) = body(response)["issue"]
    assert issue["code"] == "forbidden"
    assert f"system/{refused}.r" in issue["diagnostics"]
    assert f'scope="system/{refused}.r"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("scope_set", "search", "included"),
    [
        ("reports and results", "DiagnosticReport?_include=DiagnosticReport:result", "Observation"),
        ("everything", "Provenance?_include=Provenance:target", "DiagnosticReport"),
        (
            "audit and forms",
            # every AuditEvent: the searches of earlier tests fill a default page
            "AuditEvent?_include=AuditEvent:entity:QuestionnaireResponse&_count=1000",
            "QuestionnaireResponse",
        ),
    ],
)
def test_an_include_the_token_may_read_is_answered_and_audited(
    served: Served, scope_set: str, search: str, included: str
) -> None:
    before = audit_count(served.app)

    response = served.client.get(
        f"/fhir/{search}", headers={"Authorization": f"Bearer {_key(scope_set)}"}
    )

    assert response.status_code == 200
    entries = body(response)["entry"]
    found = [e["resource"] for e in entries if e["search"]["mode"] == "include"]
    assert found
    assert included in {r["resourceType"] for r in found}
    (event,) = events_after(served.app, before)
    assert {p for r in found for p in patients_of(r)} <= named_patients([event])
