"""Settings of the service, read from ``FHIRNET_*`` environment variables in this module only.

Everything downstream receives a :class:`Settings` value; no other module reads ``os.environ``, so
one place knows every variable name and how it is checked.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from fhirnet.errors import FhirnetError

PREFIX = "FHIRNET_"
DEFAULT_PROFILES_DIR = Path(__file__).parents[1] / "profiles"
DEFAULT_EXAMPLES_DIR = Path(__file__).parents[1] / "examples"
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")

_T = TypeVar("_T")


class ConfigError(FhirnetError, ValueError):
    """An environment variable holds a value the service cannot run with; the message names it."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything configurable about fhirnet, with the defaults used when a variable is unset."""

    #: Largest accepted request body; larger bodies get 413 before they are parsed.
    max_body_bytes: int = 5 * 1024 * 1024
    #: Address ``fhirnet serve`` binds to; loopback by default so nothing is exposed by accident.
    host: str = "127.0.0.1"
    port: int = 8080
    #: Conformance artifacts live outside the package (see the style guide's layout notes).
    profiles_dir: Path = DEFAULT_PROFILES_DIR
    #: Example data that ``fhirnet demo`` runs through the service.
    examples_dir: Path = DEFAULT_EXAMPLES_DIR
    log_level: str = "INFO"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``FHIRNET_*`` variables, defaults for the unset ones.

    :param environ: the variables to read; ``None`` reads the process environment (the only
        place in fhirnet that does).
    :returns: validated settings.
    :raises ConfigError: a variable is set to an unusable value; the message names the variable.
    """
    env = os.environ if environ is None else environ
    defaults = Settings()

    def read(name: str, parse: Callable[[str, str], _T], default: _T) -> _T:
        variable = PREFIX + name
        raw = env.get(variable)
        return default if raw is None else parse(variable, raw)

    return Settings(
        max_body_bytes=read("MAX_BODY_BYTES", _positive_int, defaults.max_body_bytes),
        host=read("HOST", _non_empty, defaults.host),
        port=read("PORT", _port, defaults.port),
        profiles_dir=read("PROFILES_DIR", _path, defaults.profiles_dir),
        examples_dir=read("EXAMPLES_DIR", _path, defaults.examples_dir),
        log_level=read("LOG_LEVEL", _log_level, defaults.log_level),
    )


def _positive_int(variable: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{variable} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{variable} must be greater than 0, got {value}")
    return value


def _port(variable: str, raw: str) -> int:
    value = _positive_int(variable, raw)
    if value > 65535:
        raise ConfigError(f"{variable} must be a TCP port between 1 and 65535, got {value}")
    return value


def _non_empty(variable: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{variable} must not be empty")
    return raw.strip()


def _path(variable: str, raw: str) -> Path:
    return Path(_non_empty(variable, raw))


def _log_level(variable: str, raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{variable} must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level
