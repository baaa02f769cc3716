"""Reading ``FHIRNET_STUDY_SECRETS_FILE`` (``fhirnet.adapters.study_secrets``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhirnet.adapters.study_secrets import load_study_secrets
from fhirnet.config import ConfigError
from fhirnet.fhir.pseudonymize import DateRegime

SECRET = "s3cr3t-value-that-is-long-enough-for-hmac"  # noqa: S105 - a test secret


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "secrets.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_each_study_gets_its_regime(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "NET-01": {"secret": SECRET, "dates": "shift"},
            "NET-02": {"secret": SECRET[::-1], "dates": "study-day"},
        },
    )
    regimes = load_study_secrets(path)
    assert set(regimes) == {"NET-01", "NET-02"}
    assert regimes["NET-01"].dates is DateRegime.SHIFT
    assert regimes["NET-02"].dates is DateRegime.STUDY_DAY
    assert regimes["NET-01"].secret == SECRET.encode()
    assert regimes["NET-01"].pseudonym("p") != regimes["NET-02"].pseudonym("p")
    assert SECRET not in repr(regimes)


def test_no_file_means_no_pseudonymized_study() -> None:
    assert load_study_secrets(None) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f'{{"NET-01": {{"secret": "{SECRET}", "dates": "shift"', "is not JSON"),
        ([SECRET], "must hold an object"),
        ({"NET-01": SECRET}, "study 'NET-01': must be an object"),
        ({"NET-01": {"dates": "shift"}}, "study 'NET-01': 'secret' is missing"),
        ({"NET-01": {"secret": 12345, "dates": "shift"}}, "'secret' is missing"),
        ({"NET-01": {"secret": SECRET[:31], "dates": "shift"}}, "shorter than 32 characters"),
        ({"NET-01": {"secret": SECRET, "dates": "weekly"}}, "'dates' must be 'shift' or"),
        ({"NET-01": {"secret": SECRET}}, "'dates' must be"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "entry-not-object",
        "no-secret",
        "secret-not-string",
        "short-secret",
        "unknown-dates",
        "no-dates",
    ],
)
def test_a_bad_file_is_a_config_error_naming_file_and_study_but_not_the_secret(
    tmp_path: Path, content: Any, message: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError, match=message) as error:
        load_study_secrets(path)
    assert str(path) in str(error.value)
    assert SECRET[:16] not in str(error.value)
    assert error.value.__cause__ is None
    assert error.value.__context__ is None or SECRET[:16] not in str(error.value.__context__)


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(ConfigError, match="cannot be read") as error:
        load_study_secrets(path)
    assert str(path) in str(error.value)
