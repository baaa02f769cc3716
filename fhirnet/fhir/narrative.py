"""The generated narrative (``text``, R4 narrative.html) of every resource fhirnet writes: a small
XHTML ``div`` naming what the resource says, built from its own elements only (never the
clock's: ``issued`` and ``recorded`` are left out), so the same
resource always gets the same bytes.

The QuestionnaireResponse is the client's and keeps whatever narrative it was sent with; the
AuditEvents are a log for machines and have none. ``status`` is ``generated``: the narrative holds
nothing the structured elements do not (R4 Narrative.status), and every value is escaped; no
scripts, styles, attributes or links besides the XHTML namespace, as R4's narrative rules allow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from fhirnet.fhir.datatypes import Json

XHTML = "http://www.w3.org/1999/xhtml"
#: Resource types whose narrative is not fhirnet's to write.
NOT_NARRATED = frozenset({"QuestionnaireResponse", "AuditEvent"})


def with_narrative(resource: Mapping[str, Any]) -> Json:
    """``resource`` with its generated ``text`` (placed after ``meta``), replacing any earlier
    one; a type of :data:`NOT_NARRATED` is returned unchanged (as a new dict)."""
    if resource.get("resourceType") in NOT_NARRATED:
        return dict(resource)
    text = {"status": "generated", "div": narrative_div(resource)}
    narrated: Json = {}
    for key, value in resource.items():
        if key == "text":
            continue
        narrated[key] = value
        if key == "meta":
            narrated["text"] = text
    if "text" not in narrated:
        narrated = {
            **{k: narrated[k] for k in ("resourceType", "id") if k in narrated},
            "text": text,
            **{k: v for k, v in narrated.items() if k not in ("resourceType", "id")},
        }
    return narrated


def narrative_div(resource: Mapping[str, Any]) -> str:
    """The XHTML ``div``: the type and what it is about, then one line per fact it states."""
    title = _concept(resource.get("code")) or _concept(resource.get("location"))
    heading = str(resource.get("resourceType", "Resource"))
    if title:
        heading += f": {title}"
    rows = [(label, value) for label, value in _facts(resource) if value]
    lines = "".join(f"<li>{escape(label)}: {escape(value)}</li>" for label, value in rows)
    listing = f"<ul>{lines}</ul>" if lines else ""
    return f'<div xmlns="{XHTML}"><p><b>{escape(heading)}</b></p>{listing}</div>'


def _facts(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    facts = [
        ("Status", str(resource.get("status") or "")),
        ("Subject", _reference(resource.get("subject") or resource.get("patient"))),
        ("Date", str(resource.get("effectiveDateTime") or "")),
        ("Value", _value(resource)),
        ("Components", _components(resource.get("component"))),
        ("Conclusion", str(resource.get("conclusion") or "")),
        ("Category", ", ".join(_concept(c) for c in _list(resource.get("conclusionCode")))),
        ("Description", str(resource.get("description") or "")),
        ("Results", _count(resource.get("result"), "result")),
        ("Targets", _count(resource.get("target"), "resource")),
        ("Source", ", ".join(_reference(e.get("what")) for e in _mappings(resource, "entity"))),
    ]
    return facts


def _value(resource: Mapping[str, Any]) -> str:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, Mapping):
        unit = quantity.get("unit") or quantity.get("code") or ""
        return f"{quantity.get('value')} {unit}".strip()
    if "valueCodeableConcept" in resource:
        return _concept(resource["valueCodeableConcept"])
    for key in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if key in resource:
            value = resource[key]
            return str(value).lower() if isinstance(value, bool) else str(value)
    return ""


def _components(components: Any) -> str:
    parts = []
    for component in _list(components):
        if isinstance(component, Mapping):
            value = _value(component)
            parts.append(f"{_concept(component.get('code'))} {value}".strip())
    return "; ".join(part for part in parts if part)


def _concept(concept: Any) -> str:
    """A CodeableConcept as words: its text, else its first coding's display, else its code."""
    if not isinstance(concept, Mapping):
        return ""
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for coding in _list(concept.get("coding")):
        if isinstance(coding, Mapping):
            return str(coding.get("display") or coding.get("code") or "")
    return ""


def _reference(reference: Any) -> str:
    if not isinstance(reference, Mapping):
        return ""
    return str(reference.get("display") or reference.get("reference") or "")


def _count(items: Any, noun: str) -> str:
    number = len(_list(items))
    return "" if number == 0 else f"{number} {noun}{'' if number == 1 else 's'}"


def _mappings(resource: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [item for item in _list(resource.get(key)) if isinstance(item, Mapping)]


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []
