"""A reader's form that the FHIR server cannot take now, followed by the page to its delivery.

``fhirnet serve`` (open access, durable delivery on, a short backoff) writes to the session's
FHIR server through a fault proxy. The RECIST 1.1 example patient's baseline is submitted first,
so the reader's follow-up at ``/crf?patient=...`` arrives pre-filled; the reader types sizes
(70 mm against 92 mm: SD). Then the proxy answers every transaction of results ``503``: "Sign
and submit" is answered ``202 Accepted``, and the page shows the submission queued with its
attempts, from ``GET /fhir/_submission/<id>``. Once the fault is cleared the page, still polling,
shows it delivered with links to the stored form and to the report, and the report is on the FHIR
server with the computed category. The browser sends no request outside fhirnet's origin (with
access control on, but to the authorization server). A form the server then refuses is shown
failed with the server's issue; with access control on, the page reads the status with the
reader's token (the status is only for the client that submitted).

Debian's Chromium and Playwright as in ``tests/web/test_reader_workstation.py``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from fhirnet.adapters.fhir_client import FhirClient
from tests.integration.fault_proxy import (
    TRANSACTION,
    FaultProxy,
    ProxiedRequest,
    refuse,
    unavailable,
)
from tests.integration.test_submission_scenarios import (
    DATA_WRITE,
    Patient,
    category,
    new_patient,
    written,
)
from tests.oauth_server import OAuthServer, fhirnet_environment, site_config
from tests.servers import free_port, serving
from tests.web.conftest import chromium, require_browser_tools
from tests.web.test_crf_page import SERVE_WITH_CRF
from tests.web.test_reader_workstation import FOLLOW_UP_DATE, assessed, open_page, size, status

try:
    from playwright.sync_api import Browser, Page, expect
except ImportError:  # pragma: no cover - test_reader_workstation skips (or fails in CI) first
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = pytest.mark.integration

SERIES = "small-bowel-net-prrt"
FHIR_JSON = "application/fhir+json"
#: Seconds before the first retry of a queued submission: short, so the test does not wait.
BACKOFF, MAX_BACKOFF = 0.5, 2.0


def results_transaction(request: ProxiedRequest) -> bool:
    """A transaction of results, not a failure's AuditEvent alone."""
    return TRANSACTION(request) and DATA_WRITE(request)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (installed with LHC-Forms when missing)."""
    require_browser_tools()
    with chromium() as launched:
        yield launched


@contextmanager
def fhirnet_serve(
    proxy: FaultProxy, directory: Path, port: int, settings: Mapping[str, str]
) -> Iterator[str]:
    """``fhirnet serve`` on ``port`` writing through ``proxy``, with the outbox on and a short
    backoff, and ``settings`` (FHIRNET_*); its URL."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    env = clean | {
        "FHIRNET_PORT": str(port),
        "FHIRNET_FHIR_BASE_URL": proxy.base_url,
        "FHIRNET_DATA_DIR": str(directory / "data"),
        "FHIRNET_OUTBOX": "on",
        "FHIRNET_WORKERS": "1",
        "FHIRNET_FHIR_TIMEOUT": "10",
        "FHIRNET_DELIVERY_BACKOFF": f"{BACKOFF:g}",
        "FHIRNET_DELIVERY_MAX_BACKOFF": f"{MAX_BACKOFF:g}",
        **settings,
    }
    with serving(
        [sys.executable, "-c", SERVE_WITH_CRF],
        port=port,
        env=env,
        log_path=directory / "fhirnet.log",
        startup_seconds=60,
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def served(fault_proxy: FaultProxy, tmp_path: Path) -> Iterator[str]:
    """``fhirnet serve`` with open access (the demo) writing through ``fault_proxy``."""
    with fhirnet_serve(fault_proxy, tmp_path, free_port(), {"FHIRNET_AUTH": "none"}) as url:
        yield url


def baseline_on_file(
    served: str, fhir: FhirClient, *, token: str | None = None
) -> tuple[Patient, str]:
    """A new patient on the FHIR server with the example's baseline submitted through fhirnet
    (so the follow-up is pre-filled); the patient and the baseline's author (a Practitioner the
    server has)."""
    patient = new_patient(fhir, SERIES)
    baseline = patient.form(1)
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    stored = requests.post(
        f"{served}/fhir/QuestionnaireResponse",
        data=json.dumps(baseline),
        headers=headers,
        timeout=120,
    )
    assert stored.status_code == 201, stored.text
    return patient, str(baseline["author"]["reference"])


def type_follow_up(page: Page, reader: str | None) -> None:
    """The pre-filled follow-up, completed: 70 mm against 92 mm (-23.9 %), SD."""
    page.wait_for_selector("#crf[data-form=ready], #crf[data-form=error]")
    assert page.get_attribute("#crf", "data-form") == "ready", page.text_content("#formStatus")
    assert page.locator('[id="lesion-id/3/1"]').input_value() == "T3"  # pre-filled
    if reader is not None:  # signed in, the reader is the token's fhirUser
        page.locator("#reader").fill(reader)
    page.locator('[id="imaging-date/1"] input').fill(FOLLOW_UP_DATE[0])
    page.keyboard.press("Enter")
    for lesion in (1, 2):
        page.locator(f'[id="{status(page, lesion, "present")}"]').click()
    size(page, 1, "40")
    size(page, 2, "20")
    size(page, 3, "10")
    assessed(page, "SD", sum="70 mm", changeBaseline="-23.9 %")


def test_a_queued_form_is_followed_on_the_page_until_it_is_delivered(
    browser: Browser, served: str, fault_proxy: FaultProxy, fhir: FhirClient
) -> None:
    patient, reader = baseline_on_file(served, fhir)

    opened, context = open_page(browser, served, f"/crf?patient={patient.id}")
    try:
        page = opened.page
        type_follow_up(page, reader)
        fault_proxy.inject(unavailable(retry_after=1), when=results_transaction)
        page.click("#submitButton")
        page.wait_for_selector("#crf[data-submission=queued], #crf[data-submission=failed]")
        assert page.get_attribute("#crf", "data-submission") == "queued", page.text_content(
            "#submitStatus"
        )
        submitted_text = page.text_content("#submitStatus") or ""  # the 202 itself
        status_url = page.get_attribute("#statusLink", "href") or ""
        # The page asks the status again: later attempts (all refused) are counted on it.
        expect(page.locator("#crf")).to_have_attribute(
            "data-delivery-attempts", re.compile(r"^([2-9]|\d{2,})$"), timeout=30_000
        )
        queued_text = page.text_content("#submitStatus") or ""
        assert page.locator("#reportLink").count() == 0

        fault_proxy.pass_through()
        expect(page.locator("#crf")).to_have_attribute(
            "data-submission", re.compile("^(delivered|failed)$"), timeout=60_000
        )
        assert page.get_attribute("#crf", "data-submission") == "delivered", page.text_content(
            "#submitIssues"
        )
        report_url = page.get_attribute("#reportLink", "href") or ""
        form_url = page.get_attribute("#storedLink", "href") or ""
        delivered_text = page.text_content("#submitStatus") or ""
        foreign = opened.foreign_requests()
        problems = list(opened.problems)
    finally:
        context.close()

    assert status_url.startswith(f"{served}/fhir/_submission/")
    assert "Queued for the FHIR server (attempt 1, next try " in submitted_text
    assert re.search(r"Queued for the FHIR server \(attempt \d+, next try ", queued_text)
    assert "503" in queued_text
    assert delivered_text.startswith("Delivered")
    assert "/QuestionnaireResponse/" in form_url
    report_id = re.search(r"/DiagnosticReport/([^/]+)", report_url)
    assert report_id is not None, report_url
    report = fhir.read("DiagnosticReport", report_id[1])  # on the server itself
    assert report is not None
    assert report["subject"]["reference"].endswith(patient.reference)
    assert category(report) == "SD"
    assert foreign == []
    assert problems == []


def test_a_queued_form_the_server_then_refuses_is_shown_failed_with_its_issues(
    browser: Browser, served: str, fault_proxy: FaultProxy, fhir: FhirClient
) -> None:
    patient, reader = baseline_on_file(served, fhir)

    opened, context = open_page(browser, served, f"/crf?patient={patient.id}")
    try:
        page = opened.page
        type_follow_up(page, reader)
        # Rules apply in order: a 503 first (the form is queued), then a refusal of the server.
        fault_proxy.inject(unavailable(retry_after=1), when=results_transaction, times=1)
        fault_proxy.inject(
            refuse(422, "Injected: rule R-9 failed", "business-rule"), when=results_transaction
        )
        page.click("#submitButton")
        page.wait_for_selector("#crf[data-submission=queued], #crf[data-submission=failed]")
        first = page.get_attribute("#crf", "data-submission")
        expect(page.locator("#crf")).to_have_attribute(
            "data-submission", re.compile("^(delivered|failed)$"), timeout=60_000
        )
        finished = page.get_attribute("#crf", "data-submission")
        failed_text = page.text_content("#submitStatus") or ""
        issues = page.locator("#submitIssues li").all_text_contents()
        links = page.locator("#reportLink, #storedLink").count()
        foreign = opened.foreign_requests()
        problems = list(opened.problems)
    finally:
        context.close()

    assert (first, finished) == ("queued", "failed")
    assert failed_text.startswith("Delivery failed (502 Bad Gateway)")
    assert any("Injected: rule R-9 failed" in issue for issue in issues), issues
    assert links == 0
    assert len(written(fhir, patient).reports) == 1  # the baseline's only
    assert foreign == []
    assert problems == []


CLIENT_ID = "fhirnet-crf"
READER = "reader-1"


def test_with_access_control_on_the_page_follows_the_delivery_with_the_reader_s_token(
    browser: Browser, fault_proxy: FaultProxy, fhir: FhirClient, tmp_path: Path
) -> None:
    port = free_port()
    fhirnet_root = f"http://127.0.0.1:{port}"
    config = site_config(fhirnet_root, client_id=CLIENT_ID, users=[(READER, "Dr Reader")])
    with (
        OAuthServer(config) as authorization,
        fhirnet_serve(
            fault_proxy,
            tmp_path,
            port,
            fhirnet_environment(authorization.base_url, fhirnet_root, CLIENT_ID),
        ) as served,
    ):
        now = int(time.time())
        set_up = authorization.state.sign(
            {
                "iss": authorization.base_url,
                "aud": f"{served}/fhir",
                "sub": "test-setup",
                "iat": now,
                "exp": now + 300,
                "scope": "system/*.cruds",
            },
            typ="at+jwt",
        )
        patient, _ = baseline_on_file(served, fhir, token=set_up)
        opened, context = open_page(browser, served, f"/crf?patient={patient.id}")
        try:
            page = opened.page
            page.wait_for_selector("#crf[data-auth=signed-out]")
            page.click("#signInButton")
            page.wait_for_url(f"{authorization.base_url}/authorize*")
            page.click("button[value=sign-in]")
            page.wait_for_selector("#crf[data-form=ready], #crf[data-form=error]")
            assert page.get_attribute("#crf", "data-auth") == "signed-in"
            type_follow_up(page, None)
            fault_proxy.inject(unavailable(retry_after=1), when=results_transaction)
            page.click("#submitButton")
            page.wait_for_selector("#crf[data-submission=queued], #crf[data-submission=failed]")
            first = page.get_attribute("#crf", "data-submission")
            expect(page.locator("#crf")).to_have_attribute(
                "data-delivery-attempts", re.compile(r"^([2-9]|\d{2,})$"), timeout=30_000
            )
            fault_proxy.pass_through()
            expect(page.locator("#crf")).to_have_attribute(
                "data-submission", re.compile("^(delivered|failed)$"), timeout=60_000
            )
            finished = page.get_attribute("#crf", "data-submission")
            issues = page.text_content("#submitIssues")
            report_url = page.get_attribute("#reportLink", "href") or ""
            foreign = [
                url
                for url in opened.foreign_requests()
                if not url.startswith(authorization.base_url)
            ]
            problems = list(opened.problems)
        finally:
            context.close()

    assert (first, finished) == ("queued", "delivered"), issues
    report_id = re.search(r"/DiagnosticReport/([^/]+)", report_url)
    assert report_id is not None, report_url
    report = fhir.read("DiagnosticReport", report_id[1])
    assert report is not None
    assert category(report) == "SD"
    assert foreign == []
    assert problems == []
