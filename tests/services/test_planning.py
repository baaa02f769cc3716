"""Where the assessment's warnings point (:data:`fhirnet.services.planning.WARNING_ITEMS`): every
warning code of ``criteria.md`` §8 that is about an item of the CRF has an entry, every entry
names an item of the form, and the criteria core emits no code the table forgets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhirnet.config import Settings
from fhirnet.fhir.profiles import load_catalog
from fhirnet.services.forms import receive
from fhirnet.services.planning import WARNING_ITEMS
from tests.submissions import NOW, RECIST, form

#: The warning codes of ``criteria.md`` §8 (spec v2) that are about an item of the form: a
#: modality (§2 ``missing-modality``), a new lesion (§2.3), the PET reference (§5), the exam
#: date of an iCPD confirmation (§3.2), the target lesions of an unconfirmed CR (§2.4).
ITEM_CODES = (
    "missing-modality",
    "new-modality-lesion",
    "blood-pool-reference",
    "pet-reference-missing",
    "uptake-time",
    "liver-drift",
    "small-new-node",
    "equivocal-new-node",
    "unconfirmed-cr",
    "icpd-window",
)
#: §8 codes about no single item: ``tgr-undefined`` is about the timeline's growth rate (§7).
ITEMLESS_CODES = ("tgr-undefined",)
CRITERIA = Path(__file__).parents[2] / "fhirnet" / "criteria"


def link_ids(items: list[dict[str, Any]]) -> Iterator[str]:
    for item in items:
        yield item["linkId"]
        yield from link_ids(item.get("item", []))


@pytest.mark.parametrize("code", ITEM_CODES)
def test_each_warning_code_about_an_item_points_at_one(code: str) -> None:
    assert code in WARNING_ITEMS


def test_each_warning_item_is_an_item_of_the_form() -> None:
    catalog = load_catalog(Settings().profiles_dir)
    questionnaire = catalog.questionnaire()
    known = set(link_ids(questionnaire["item"]))

    assert set(WARNING_ITEMS.values()) <= known


def test_the_criteria_core_emits_no_warning_code_the_table_forgets() -> None:
    emitted = {
        match
        for path in CRITERIA.glob("*.py")
        for match in re.findall(r"f?\"([a-z]+(?:-[a-z]+)+): ", path.read_text())
    }
    assert "small-new-node" in emitted  # guards the scan
    assert emitted - set(WARNING_ITEMS) - set(ITEMLESS_CODES) == set()


def test_a_group_item_points_at_its_first_occurrence() -> None:
    catalog = load_catalog(Settings().profiles_dir)
    received = receive(form(RECIST, 2), catalog=catalog, today=NOW.date())
    groups = [item["linkId"] for item in received.form.response["item"]]

    expression = received.item(WARNING_ITEMS["unconfirmed-cr"])

    assert expression == f"QuestionnaireResponse.item[{groups.index('target-lesion')}]"
