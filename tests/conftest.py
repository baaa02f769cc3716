"""Shared fixtures: the app and its test client (flaskr pattern), settings overrides, and valid
request bodies for each criteria that the web, fuzz and CLI tests start from; and the Hypothesis
profiles (``dev``, ``ci``)."""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.config import Settings
from fhirnet.fhir.profiles import Catalog, load_catalog
from fhirnet.web import app as web_app
from fhirnet.web.app import create_app
from fhirnet.web.openapi import build_openapi_document
from tests.postgres import database_url, fresh_database_url  # noqa: F401  (fixtures for every test)

CRITERIA = ("recist-1.1", "irecist", "choi", "percist-1.0")

#: Hypothesis profiles, chosen by ``HYPOTHESIS_PROFILE``; without it ``ci`` when ``CI`` is set
#: (``CI=true``, as ``.ci/run`` runs) and ``dev`` otherwise; ``make test`` runs ``ci``.
#: ``ci`` keeps every test's own numbers (the Hypothesis defaults, and the ``max_examples`` a
#: test sets). ``dev`` is for quick local runs: at most :data:`DEV_MAX_EXAMPLES` examples per
#: test, including tests that set more; what it finds, ``ci`` finds too.
DEV_MAX_EXAMPLES = 20
hypothesis.settings.register_profile("ci", hypothesis.settings.get_profile("default"))
hypothesis.settings.register_profile("dev", max_examples=DEV_MAX_EXAMPLES)
_IN_CI = os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _IN_CI else "dev")
hypothesis.settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header(config: pytest.Config) -> str:
    """Say which Hypothesis profile runs (a ``dev`` run is not a ``ci`` run)."""
    return f"hypothesis profile: {HYPOTHESIS_PROFILE} (HYPOTHESIS_PROFILE=dev|ci)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``dev``, cap the examples of tests that set their own ``max_examples`` too (a profile
    only changes the defaults); Hypothesis keeps a test's settings on the test function."""
    if HYPOTHESIS_PROFILE != "dev":
        return
    for item in items:
        test = getattr(item, "obj", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if isinstance(own, hypothesis.settings) and own.max_examples > DEV_MAX_EXAMPLES:
            test._hypothesis_internal_use_settings = hypothesis.settings(  # type: ignore[union-attr]
                own, max_examples=DEV_MAX_EXAMPLES
            )


ValidBody = Callable[..., dict[str, Any]]

#: Status codes of every request the fuzz tests post, reported in the terminal summary.
FUZZ_STATUSES = pytest.StashKey[Counter[int]]()


class ExampleCounts:
    """How many examples the property tests ran, reported in the terminal summary: per section
    (a test module's subject), per target (an operation, an endpoint, a rule), by the status of
    the answer."""

    def __init__(self) -> None:
        self.sections: dict[str, Counter[tuple[str, int]]] = {}
        self.units: dict[str, str] = {}

    def section(self, title: str, unit: str = "requests") -> Counter[tuple[str, int]]:
        """The counter of ``(target, status)`` of the section ``title``, created empty.

        :param unit: what one count is, in the summary ("requests": one per example sent to a
            target; "examples" when a count stands for several requests).
        """
        self.units.setdefault(title, unit)
        return self.sections.setdefault(title, Counter())


#: The :class:`ExampleCounts` of the session.
EXAMPLE_COUNTS = pytest.StashKey[ExampleCounts]()


@pytest.fixture(scope="session", autouse=True)
def shared_catalog() -> Iterator[Catalog]:
    """The conformance package of ``profiles/``, loaded once per session, and shared with the
    OpenAPI document by every app the tests build from that directory.

    Both are read-only (a :class:`~fhirnet.fhir.profiles.Catalog` never changes, and keeps what
    is derived from it, such as the profile validators, for its lifetime); building them was
    most of the time of ``create_app``, which every web test calls. Each app still has its own
    settings, clock, store and state; an app built from another profiles directory loads its own.
    """
    profiles_dir = Settings().profiles_dir.resolve()
    shared = load_catalog(profiles_dir)
    document = build_openapi_document()

    def load(directory: Path) -> Catalog:
        return shared if directory.resolve() == profiles_dir else load_catalog(directory)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(web_app, "load_catalog", load)
        patch.setattr(web_app, "build_openapi_document", lambda: document)
        yield shared


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with a fresh data directory (the embedded store, the locks) and open
    access (``FHIRNET_AUTH=none``; ``tests/web/test_auth.py`` tests access control); override
    this fixture (or use ``dataclasses.replace``) to change them."""
    return Settings(data_dir=tmp_path / "data", auth="none")


@pytest.fixture
def app(settings: Settings) -> Flask:
    """An application built from ``settings``; nothing is shared between tests."""
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


def _valid_body(criteria: str = "recist-1.1", *, pre_baseline: bool = False) -> dict[str, Any]:
    """A request every criteria accepts: 2 targets (one nodal), 1 non-target, 2 follow-ups.

    Timepoints are deliberately not in date order (the contract allows any order). With
    ``pre_baseline`` a pre-treatment scan is added, so the response has a tumorGrowthRate.
    """
    pet = criteria == "percist-1.0"
    choi = criteria == "choi"
    modality = "FDG-PET" if pet else "CT"

    def target(lesion_id: str, diameter: float, density: int, sul_peak: float) -> dict[str, Any]:
        lesion: dict[str, Any] = {
            "id": lesion_id,
            "site": "liver" if lesion_id == "T1" else "lymph-node",
            "nodal": lesion_id == "T2",
            "diameterMm": diameter,
        }
        if choi:
            lesion["densityHu"] = density
        if pet:
            lesion["sulPeak"] = sul_peak
        return lesion

    def timepoint(date: str, t1: float, t2: float, scale: float) -> dict[str, Any]:
        tp: dict[str, Any] = {
            "date": date,
            "modalities": [modality],
            "targets": [
                target("T1", t1, round(85 * scale), round(6.1 * scale, 2)),
                target("T2", t2, round(60 * scale), round(4.0 * scale, 2)),
            ],
            "nonTargets": [{"id": "NT1", "site": "bone", "nodal": False, "status": "present"}],
            "newLesions": [],
        }
        if pet:
            tp["pet"] = {"liverSulMean": 2.1, "liverSulSd": 0.25, "uptakeTimeMin": 62}
        if choi:
            tp["intratumoralNodules"] = "none"
        return tp

    timepoints = [
        timepoint("2025-03-20", 28.0, 15.0, 0.8),
        timepoint("2025-01-15", 32.0, 18.0, 1.0),
        timepoint("2025-05-22", 24.5, 9.0, 0.7),
    ]
    if pre_baseline:
        early = timepoint("2024-11-15", 25.0, 16.0, 1.0)
        early.update(role="pre-baseline", nonTargets=[])
        timepoints.append(early)
    return {
        "criteria": criteria,
        "options": {"confirmationRequired": False, "confirmationMinDays": 28, "sdMinDays": 42},
        "timepoints": timepoints,
    }


@pytest.fixture(scope="session")
def valid_body() -> ValidBody:
    """Factory of valid request bodies: ``valid_body("choi", pre_baseline=True)``; each call
    returns a fresh copy that a test may mutate."""
    return lambda *args, **kwargs: copy.deepcopy(_valid_body(*args, **kwargs))


@pytest.fixture(scope="session")
def fuzz_statuses(pytestconfig: pytest.Config) -> Counter[int]:
    """Counter the fuzz tests add each posted request's status to."""
    return pytestconfig.stash.setdefault(FUZZ_STATUSES, Counter())


@pytest.fixture(scope="session")
def example_counts(pytestconfig: pytest.Config) -> ExampleCounts:
    """Where property tests count the examples they ran, printed at the end of the session."""
    return pytestconfig.stash.setdefault(EXAMPLE_COUNTS, ExampleCounts())


def _by_status(statuses: Counter[int]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Show how many fuzz examples really ran, whatever ``-q``/``-s`` say."""
    statuses = config.stash.get(FUZZ_STATUSES, None)
    if statuses:
        terminalreporter.write_sep("-", "fuzz")
        terminalreporter.write_line(
            f"fuzz: {statuses.total()} requests posted to /api/v1/assessments "
            f"({_by_status(statuses)})"
        )
    counts = config.stash.get(EXAMPLE_COUNTS, None)
    for title, sent in (counts.sections if counts else {}).items():
        targets: dict[str, Counter[int]] = {}
        for (target, status), n in sent.items():
            targets.setdefault(target, Counter())[status] += n
        terminalreporter.write_sep("-", title)
        statuses = Counter({s: 0 for _, s in sent})
        for (_, status), n in sent.items():
            statuses[status] += n
        unit = counts.units[title] if counts else "requests"
        terminalreporter.write_line(
            f"{title}: {sent.total()} {unit} to {len(targets)} targets ({_by_status(statuses)})"
        )
        for target, by_status in sorted(targets.items()):
            terminalreporter.write_line(
                f"  {target}: {by_status.total()} ({_by_status(by_status)})"
            )
