"""``$extract`` discloses no more than the submitted form derives (finding 2 of the security
review): a fabricated amendment of a patient's baseline, sent with a create-only scope, answered
with the patient's later stored QuestionnaireResponses and results (the exams it re-assesses),
writing nothing and auditing only the patient. Now the Bundle holds the form's own exam only, and
the AuditEvent names every resource of it. (The web layer also asks for read scopes on every
type the Bundle can hold: ``tests/web/test_auth.py``.)"""

from __future__ import annotations

from fhirnet.ports import Json
from fhirnet.services import Context, extract, submit
from tests.submissions import RECIST, amended, form, set_answer, target


def audit_events(context: Context) -> list[Json]:
    return list(context.store.search("AuditEvent", {"_count": "1000"}))


def test_extract_of_a_fabricated_amendment_holds_only_its_own_exam_and_audits_each_resource(
    context: Context,
) -> None:
    for number in range(1, 7):
        submit(form(RECIST, number), context)
    fabricated = amended(form(RECIST, 1))
    set_answer(target(fabricated, "T1"), "lesion-size", "valueDecimal", 43.0)
    before = {event["id"] for event in audit_events(context)}

    bundle = extract(fabricated, context)

    forms = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse"]
    assert [e["resource"]["identifier"] for e in forms] == [fabricated["identifier"]]
    reports = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    assert [e["resource"]["effectiveDateTime"] for e in reports] == ["2025-01-13"]
    assert all(e["resource"].get("status") != "entered-in-error" for e in bundle["entry"])
    (event,) = [e for e in audit_events(context) if e["id"] not in before]
    disclosed = [
        d["valueString"]
        for entity in event["entity"]
        for d in entity.get("detail", [])
        if d["type"] == "disclosed"
    ]
    assert len(event["entity"]) == 1 + len(bundle["entry"])  # the patient, and each resource
    for entry in bundle["entry"]:
        resource = entry["resource"]
        found = resource.get("identifier")
        identifier = found[0] if isinstance(found, list) else found
        label = (
            f"{resource['resourceType']}/{resource['id']}"
            if identifier is None
            else f"{resource['resourceType']}|{identifier['system']}|{identifier['value']}"
        )
        assert label in disclosed
