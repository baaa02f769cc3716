"""Tools the web tests need beyond the Python packages, installed once per session by
``tools/browser/install.sh`` when missing, whichever test asks first: LHC-Forms (the /crf page
serves it; ``test_schemathesis.py`` and the browser tests need the page working) and Debian's
Chromium (the browser tests). So every test passes alone, in a fresh clone, in any order.

When a tool cannot be had (no npm, not root for apt-get), the tests that need it fail in CI
(``CI=true``) and are skipped elsewhere, with the reason in the summary (``-ra``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fhirnet.web import crf_views

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO_ROOT = Path(__file__).parents[2]
INSTALL_SCRIPT = REPO_ROOT / "tools" / "browser" / "install.sh"
CHROMIUM = Path("/usr/bin/chromium")
#: Headless, and nothing the browser would fetch on its own (updates, sync, field trials).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _missing_lforms() -> list[str]:
    if crf_views.lforms_installed():
        return []
    return [f"LHC-Forms {crf_views.LFORMS_VERSION} in fhirnet/web/static/lforms/"]


def _missing_chromium() -> list[str]:
    return [] if os.access(CHROMIUM, os.X_OK) else [str(CHROMIUM)]


def _install(*args: str, missing: Callable[[], list[str]], needed_by: str) -> None:
    """Run ``install.sh args`` when ``missing()`` lists something; fail (CI) or skip (elsewhere)
    when it still does afterwards."""
    if not missing():
        return
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    still = missing()
    if still:
        message = (
            f"{needed_by} NOT RUN: missing {', '.join(still)}; {INSTALL_SCRIPT.name} exited "
            f"{done.returncode}:\n{done.stderr[-3000:]}"
        )
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def lforms() -> None:
    """LHC-Forms in ``fhirnet/web/static/lforms/`` (``install.sh --no-chromium`` when missing)."""
    _install("--no-chromium", missing=_missing_lforms, needed_by="TESTS OF THE /crf PAGE")


@pytest.fixture(scope="session")
def browser_tools(lforms: None) -> None:
    """Chromium and LHC-Forms, installed by ``tools/browser/install.sh`` when missing."""
    _install(missing=_missing_chromium, needed_by="BROWSER TESTS")


def require_browser_tools() -> None:
    """What :func:`browser_tools` does, for browser tests outside ``tests/web`` (whose fixtures
    they do not see): install Chromium and LHC-Forms when missing; fail (CI) or skip without."""
    _install("--no-chromium", missing=_missing_lforms, needed_by="TESTS OF THE /crf PAGE")
    _install(missing=_missing_chromium, needed_by="BROWSER TESTS")


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright (imported here, so the modules that guard
    its import decide whether a missing Playwright skips or fails)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser(browser_tools: None) -> Iterator[Browser]:
    """Debian's Chromium, headless, for the whole module."""
    with chromium() as launched:
        yield launched
