"""``load_settings``: defaults when ``FHIRNET_*`` is unset, parsed values when set, and a
``ConfigError`` naming the variable when a value is unusable."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirnet.config import ConfigError, Settings, load_settings


def test_no_variables_give_the_defaults() -> None:
    settings = load_settings({})

    assert settings == Settings()
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.profiles_dir == Path(__file__).parents[1] / "profiles"
    assert settings.log_level == "INFO"


def test_every_variable_is_read_with_the_fhirnet_prefix() -> None:
    settings = load_settings(
        {
            "FHIRNET_MAX_BODY_BYTES": "1024",
            "FHIRNET_HOST": "0.0.0.0",  # noqa: S104
            "FHIRNET_PORT": "9000",
            "FHIRNET_PROFILES_DIR": "/srv/profiles",
            "FHIRNET_LOG_LEVEL": "debug",
            "MAX_BODY_BYTES": "1",  # unprefixed: not ours
        }
    )

    assert settings == Settings(
        max_body_bytes=1024,
        host="0.0.0.0",  # noqa: S104
        port=9000,
        profiles_dir=Path("/srv/profiles"),
        log_level="DEBUG",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FHIRNET_MAX_BODY_BYTES", "5MB"),
        ("FHIRNET_MAX_BODY_BYTES", "0"),
        ("FHIRNET_MAX_BODY_BYTES", "-1"),
        ("FHIRNET_PORT", "http"),
        ("FHIRNET_PORT", "0"),
        ("FHIRNET_PORT", "65536"),
        ("FHIRNET_HOST", " "),
        ("FHIRNET_PROFILES_DIR", ""),
        ("FHIRNET_LOG_LEVEL", "verbose"),
    ],
)
def test_an_unusable_value_is_a_config_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: value})


def test_a_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]
