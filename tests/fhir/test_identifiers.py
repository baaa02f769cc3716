"""Business identifiers and the fullUrls derived from them (:mod:`fhirnet.fhir.identifiers`)."""

from __future__ import annotations

import uuid

from fhirnet.fhir.identifiers import NAMESPACE, Identifier


def test_the_full_url_is_the_uuid5_of_system_and_value_in_fhirnets_namespace() -> None:
    identifier = Identifier(system="https://fhirnet.dev/fhir/sid/lesion", value="p/e/T1")

    expected = uuid.uuid5(NAMESPACE, "https://fhirnet.dev/fhir/sid/lesion|p/e/T1")
    assert identifier.uuid == expected
    assert identifier.full_url == f"urn:uuid:{expected}"


def test_asked_again_it_is_the_same_and_another_identifier_has_its_own() -> None:
    one = Identifier(system="s", value="a")
    other = Identifier(system="s", value="b")

    assert one.full_url == Identifier(system="s", value="a").full_url
    assert one.full_url != other.full_url
    assert one.uuid != other.uuid
    assert (
        Identifier(system="s|a", value="").full_url == Identifier(system="s", value="a|").full_url
    )
