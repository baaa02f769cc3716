"""``load_settings``: defaults when ``FHIRNET_*`` is unset, parsed values when set, and a
``ConfigError`` naming the variable when a value is unusable."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhirnet.config import ConfigError, Settings, load_settings

#: Open access, which ``load_settings`` never assumes; ``tests/web/test_auth.py`` tests the rest.
OPEN = {"FHIRNET_AUTH": "none"}


def test_no_variables_but_open_access_give_the_defaults() -> None:
    settings = load_settings(OPEN)

    assert settings == Settings(auth="none")
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert (settings.workers, settings.threads) == (2, 8)  # threaded: docs/security.md
    assert settings.public_base_url is None  # the Host header (demo only)
    assert settings.profiles_dir == Path(__file__).parents[1] / "profiles"
    assert settings.log_level == "INFO"
    assert settings.data_dir == Path(__file__).parents[1] / "data"
    assert settings.fhir_base_url is None  # the embedded store
    assert (settings.fhir_connect_timeout, settings.fhir_timeout) == (5.0, 30.0)


def test_every_variable_is_read_with_the_fhirnet_prefix() -> None:
    settings = load_settings(
        {
            "FHIRNET_MAX_BODY_BYTES": "1024",
            "FHIRNET_HOST": "0.0.0.0",  # noqa: S104
            "FHIRNET_PORT": "9000",
            "FHIRNET_WORKERS": "4",
            "FHIRNET_THREADS": "8",
            "FHIRNET_PROFILES_DIR": "/srv/profiles",
            "FHIRNET_LOG_LEVEL": "debug",
            "MAX_BODY_BYTES": "1",  # unprefixed: not ours
            **OPEN,
        }
    )

    assert settings == Settings(
        max_body_bytes=1024,
        host="0.0.0.0",  # noqa: S104
        port=9000,
        workers=4,
        threads=8,
        profiles_dir=Path("/srv/profiles"),
        log_level="DEBUG",
        auth="none",
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
        ("FHIRNET_WORKERS", "0"),
        ("FHIRNET_THREADS", "many"),
        ("FHIRNET_HOST", " "),
        ("FHIRNET_PROFILES_DIR", ""),
        ("FHIRNET_LOG_LEVEL", "verbose"),
        ("FHIRNET_PUBLIC_BASE_URL", "fhirnet.example.org"),  # no scheme
        ("FHIRNET_PUBLIC_BASE_URL", "https://fhirnet.example.org/?x=1"),
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


def test_the_fhir_server_and_its_auth_are_read_with_the_fhirnet_prefix() -> None:
    settings = load_settings(
        {
            "FHIRNET_FHIR_BASE_URL": "https://fhir.example.org/r4/",
            "FHIRNET_DATA_DIR": "/var/lib/fhirnet",
            "FHIRNET_FHIR_CONNECT_TIMEOUT": "2",
            "FHIRNET_FHIR_TIMEOUT": "12.5",
            "FHIRNET_SMART_CLIENT_ID": "fhirnet",
            "FHIRNET_SMART_PRIVATE_KEY_FILE": "/run/secrets/key.pem",
            "FHIRNET_SMART_SCOPE": "system/*.cruds",
            "FHIRNET_SMART_TOKEN_URL": "https://auth.example.org/token",
            "FHIRNET_SMART_KEY_ID": "k1",
            "FHIRNET_LOCK_TIMEOUT": "5",
            **OPEN,
        }
    )

    assert settings.fhir_base_url == "https://fhir.example.org/r4"  # no trailing slash
    assert settings.data_dir == Path("/var/lib/fhirnet")
    assert (settings.fhir_connect_timeout, settings.fhir_timeout) == (2.0, 12.5)
    assert (settings.smart_client_id, settings.smart_key_id) == ("fhirnet", "k1")
    assert settings.smart_private_key_file == Path("/run/secrets/key.pem")
    assert (settings.smart_scope, settings.lock_timeout) == ("system/*.cruds", 5.0)
    assert settings.smart_token_url == "https://auth.example.org/token"  # noqa: S105


def test_a_bearer_token_is_not_shown_in_the_settings_repr() -> None:
    settings = load_settings(
        {"FHIRNET_FHIR_BASE_URL": "http://fhir", "FHIRNET_FHIR_BEARER_TOKEN": "s3cret", **OPEN}
    )

    assert settings.fhir_bearer_token == "s3cret"  # noqa: S105
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FHIRNET_FHIR_BASE_URL", "fhir.example.org"),
        ("FHIRNET_FHIR_BASE_URL", "ftp://fhir.example.org"),
        ("FHIRNET_FHIR_BASE_URL", "https://fhir.example.org/r4?x=1"),
        ("FHIRNET_FHIR_BASE_URL", "http://[::1"),
        ("FHIRNET_FHIR_TIMEOUT", "0"),
        ("FHIRNET_FHIR_TIMEOUT", "nan"),
        ("FHIRNET_FHIR_CONNECT_TIMEOUT", "soon"),
        ("FHIRNET_LOCK_TIMEOUT", "-1"),
        ("FHIRNET_DATA_DIR", " "),
        ("FHIRNET_OUTBOX", "yes"),
        ("FHIRNET_OUTBOX_PATH", ""),
        ("FHIRNET_DELIVERY_BACKOFF", "0"),
        ("FHIRNET_DELIVERY_MAX_BACKOFF", "inf"),
        ("FHIRNET_OUTBOX_RETENTION_DAYS", "0"),
    ],
)
def test_an_unusable_fhir_setting_is_a_config_error_naming_the_variable(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: value})


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        (
            {
                "FHIRNET_FHIR_BASE_URL": "http://fhir",
                "FHIRNET_FHIR_BEARER_TOKEN": "t",
                "FHIRNET_SMART_CLIENT_ID": "c",
                "FHIRNET_SMART_PRIVATE_KEY_FILE": "k.pem",
            },
            "FHIRNET_FHIR_BEARER_TOKEN",
        ),
        (
            {"FHIRNET_FHIR_BASE_URL": "http://fhir", "FHIRNET_SMART_CLIENT_ID": "c"},
            "FHIRNET_SMART_PRIVATE_KEY_FILE",
        ),
        ({"FHIRNET_FHIR_BEARER_TOKEN": "t"}, "FHIRNET_FHIR_BASE_URL"),
    ],
    ids=["bearer and SMART", "SMART without key", "credentials without server"],
)
def test_auth_settings_that_do_not_go_together_are_a_config_error(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ)


def test_durable_delivery_is_on_by_default_and_configurable() -> None:
    default = load_settings(OPEN)
    assert (default.outbox, default.outbox_path) == (True, None)
    assert (default.delivery_backoff, default.delivery_max_backoff) == (1.0, 300.0)
    assert default.outbox_retention_days == 30

    settings = load_settings(
        OPEN
        | {
            "FHIRNET_OUTBOX": "OFF",
            "FHIRNET_OUTBOX_PATH": "/var/lib/fhirnet/outbox.db",
            "FHIRNET_DELIVERY_BACKOFF": "0.5",
            "FHIRNET_DELIVERY_MAX_BACKOFF": "60",
            "FHIRNET_OUTBOX_RETENTION_DAYS": "7",
        }
    )

    assert settings.outbox is False
    assert settings.outbox_path == Path("/var/lib/fhirnet/outbox.db")
    assert (settings.delivery_backoff, settings.delivery_max_backoff) == (0.5, 60.0)
    assert settings.outbox_retention_days == 7


def test_the_public_base_url_is_read_without_a_trailing_slash() -> None:
    settings = load_settings({"FHIRNET_PUBLIC_BASE_URL": "https://fhirnet.example.org/", **OPEN})

    assert settings.public_base_url == "https://fhirnet.example.org"


def test_the_sharing_settings_are_read_with_the_fhirnet_prefix() -> None:
    settings = load_settings(
        {
            "FHIRNET_STUDY_SECRETS_FILE": "/etc/fhirnet/study-secrets.json",
            "FHIRNET_BULK_CLIENTS_FILE": "/etc/fhirnet/bulk-clients.json",
            "FHIRNET_TOKEN_KEY_FILE": "/etc/fhirnet/token-key",
            "FHIRNET_TOKEN_LIFETIME": "120",
            "FHIRNET_EXPORT_EXPIRY": "600",
        }
    )

    assert settings.study_secrets_file == Path("/etc/fhirnet/study-secrets.json")
    assert settings.bulk_clients_file == Path("/etc/fhirnet/bulk-clients.json")
    assert settings.token_key_file == Path("/etc/fhirnet/token-key")
    assert (settings.token_lifetime, settings.export_expiry) == (120, 600)


@pytest.mark.parametrize("variable", ["FHIRNET_TOKEN_LIFETIME", "FHIRNET_EXPORT_EXPIRY"])
def test_a_lifetime_must_be_a_positive_number_of_seconds(variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings({variable: "0", **OPEN})


def test_bulk_clients_alone_are_configured_authentication_even_for_the_demo() -> None:
    """``fhirnet demo`` opens access only when nothing is configured: registered bulk clients
    are a configuration, so they are never silently joined by open access."""
    settings = load_settings(
        {"FHIRNET_BULK_CLIENTS_FILE": "/etc/fhirnet/bulk-clients.json"}, default_auth="none"
    )

    assert settings.auth is None


@pytest.mark.parametrize(
    "variables",
    [
        {"FHIRNET_AUTHORIZE_URL": "https://login.example.org/authorize"},
        {"FHIRNET_READER_TOKEN_URL": "https://login.example.org/token"},
    ],
)
def test_readers_sign_in_with_both_endpoints_of_the_authorization_server(
    variables: dict[str, str],
) -> None:
    with pytest.raises(ConfigError, match="set both or neither"):
        load_settings({**variables, "FHIRNET_JWKS_URL": "https://login.example.org/jwks"})


def test_readers_sign_in_only_where_their_tokens_can_be_verified() -> None:
    with pytest.raises(ConfigError, match="could not be verified"):
        load_settings(
            {
                "FHIRNET_AUTHORIZE_URL": "https://login.example.org/authorize",
                "FHIRNET_READER_TOKEN_URL": "https://login.example.org/token",
                "FHIRNET_API_KEYS": "a-key-of-at-least-thirty-two-characters",
            }
        )


def test_without_a_database_url_the_outbox_and_locks_stay_on_this_host() -> None:
    assert load_settings(OPEN).database_url is None  # SQLite outbox, flock locks


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://fhirnet:pw@db.example.org:5432/fhirnet",
        "postgres://fhirnet@db/fhirnet?sslmode=require",
        "postgresql:///fhirnet",
    ],
)
def test_a_postgresql_database_url_is_read_with_the_fhirnet_prefix(url: str) -> None:
    assert load_settings(OPEN | {"FHIRNET_DATABASE_URL": f" {url} "}).database_url == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mysql://fhirnet:s3cret@db/fhirnet",
        "sqlite:///s3cret.db",
        "db.example.org",
        "postgresql://",
    ],
)
def test_a_database_url_that_is_not_postgresql_is_a_config_error_without_the_url(
    url: str,
) -> None:
    with pytest.raises(ConfigError, match="FHIRNET_DATABASE_URL") as raised:
        load_settings(OPEN | {"FHIRNET_DATABASE_URL": url})

    assert "s3cret" not in str(raised.value)


def test_the_database_password_is_not_shown_in_the_settings_repr() -> None:
    settings = load_settings(
        OPEN | {"FHIRNET_DATABASE_URL": "postgresql://fhirnet:s3cret@db/fhirnet"}
    )

    assert "s3cret" not in repr(settings)


def test_the_export_directory_is_in_the_data_directory_unless_named() -> None:
    assert load_settings(OPEN).export_dir is None  # FHIRNET_DATA_DIR/exports
    named = load_settings(OPEN | {"FHIRNET_EXPORT_DIR": "/mnt/shared/exports"})
    assert named.export_dir == Path("/mnt/shared/exports")
    with pytest.raises(ConfigError, match="FHIRNET_EXPORT_DIR"):
        load_settings(OPEN | {"FHIRNET_EXPORT_DIR": " "})
