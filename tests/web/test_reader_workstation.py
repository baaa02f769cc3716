"""The reader's workstation in a real browser: Debian Chromium driven by Playwright against
``fhirnet serve``, with the RECIST 1.1 example patient's baseline on file.

A reader opens the patient's next form at ``/crf?patient=...``: it arrives pre-filled by
``$populate`` (every baseline target with its label, location and nodal flag; sizes empty). As
the reader types sizes, the panel shows what fhirnet computes (``POST /api/v1/forms/assessment``,
a dry run): PR, then SD, then PD, with the sums and changes; a conclusion answered differently
shows the discordance before signing; "Sign and submit" stores the form and links the report;
the patient's timeline lists the exam with its category. The form can be completed with the
keyboard alone, and the page sends no request outside its origin. The run writes the
screenshots of ``docs/crf-page.md`` (``docs/images/crf-form.png``, ``crf-timeline.png``).

The baseline (``examples/questionnaire-responses/small-bowel-net-prrt/01-...-baseline.json``):
T1 42 mm and T2 28 mm (liver), T3 22 mm (lymph node, short axis): 92 mm. Each test gives it a
patient of its own, so that each passes alone and in any order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.oauth_server import OAuthServer
from tests.servers import free_port, serving
from tests.web.test_crf_page import (
    SERVE_WITH_CRF,
    CrfPage,
    _failure,
    pick,
)

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, expect
except ImportError:  # pragma: no cover - test_crf_page skips (or fails in CI) first
    pytest.skip("playwright is not installed", allow_module_level=True)

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "questionnaire-responses" / "small-bowel-net-prrt"
BASELINE = EXAMPLES / "01-2025-01-13-baseline.json"
IMAGES = ROOT / "docs" / "images"
#: The screenshots' size, whatever the form's length: the viewport, not the full page.
VIEWPORT = {"width": 1400, "height": 1000}
NON_TARGET_STATUS = "https://fhirnet.dev/fhir/CodeSystem/non-target-status"
#: The follow-up's date as LHC-Forms' picker takes it, and as FHIR has it.
FOLLOW_UP_DATE = ("04/14/2025", "2025-04-14")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``fhirnet serve`` (open access, as ``make run``) on a store of its own."""
    port = free_port()
    directory = tmp_path_factory.mktemp("workstation")
    env = {
        **os.environ,
        "FHIRNET_PORT": str(port),
        "FHIRNET_AUTH": "none",
        "FHIRNET_DATA_DIR": str(directory / "data"),
    }
    with serving(
        [sys.executable, "-c", SERVE_WITH_CRF],
        port=port,
        env=env,
        log_path=directory / "gunicorn.log",
    ):
        yield f"http://127.0.0.1:{port}"


def post_json(
    url: str, body: dict[str, Any], *, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    """POST a FHIR resource; the status and the answer's JSON."""
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
        return answer.status, json.load(answer)


def post_plain_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST JSON to the authorization server (an EHR registering a launch)."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
        answered: dict[str, Any] = json.load(answer)
        return answered


def get_json(url: str, *, token: str) -> dict[str, Any]:
    """GET a FHIR resource with a token."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, headers={"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
        answered: dict[str, Any] = json.load(answer)
        return answered


def patient_of(request: pytest.FixtureRequest) -> str:
    """A patient id of the test's own, the same at every run (the screenshots show it)."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:6]
    return f"recist-example-{digest}"


@pytest.fixture
def patient(base_url: str, request: pytest.FixtureRequest) -> str:
    """A patient of this test's own with the RECIST example's baseline form on file."""
    patient_id = patient_of(request)
    form = json.loads(BASELINE.read_text(encoding="utf-8"))
    form.pop("id", None)
    form["identifier"]["value"] = f"{patient_id}-01"
    form["subject"] = {"reference": f"Patient/{patient_id}"}
    status, _ = post_json(f"{base_url}/fhir/QuestionnaireResponse", form)
    assert status == 201
    return patient_id


def open_page(browser: Browser, base_url: str, path: str) -> tuple[CrfPage, Any]:
    """A fresh context with ``path`` open; requests and problems recorded from the start."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(20_000)
    opened = CrfPage(page=page, origin=base_url)
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("console", lambda message: _note_console(opened, message))
    page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: opened.problems.append(_failure(request)))
    page.goto(base_url + path)
    return opened, context


def _note_console(opened: CrfPage, message: ConsoleMessage) -> None:
    """Console errors of fhirnet's pages; the authorization server's login page (its favicon
    404, say) is not the page under test."""
    page_url = message.page.url if message.page else ""
    if message.type == "error" and page_url.startswith(opened.origin):
        opened.problems.append(f"console error: {message.text} ({page_url})")


@pytest.fixture
def workstation(browser: Browser, base_url: str, patient: str) -> Iterator[CrfPage]:
    """``/crf?patient=...`` with the pre-filled follow-up rendered."""
    opened, context = open_page(browser, base_url, f"/crf?patient={patient}")
    try:
        page = opened.page
        page.wait_for_selector("#crf[data-form=ready], #crf[data-form=error]")
        assert page.get_attribute("#crf", "data-form") == "ready", page.text_content("#formStatus")
        yield opened
    finally:
        context.close()


# --- what the reader does ------------------------------------------------------------------------


def value(page: Page, element_id: str) -> str:
    return page.locator(f'[id="{element_id}"]').input_value()


def status(page: Page, lesion: int, code: str) -> str:
    """The id of a non-target lesion's status radio button."""
    return f"lesion-status/{lesion}/1|{NON_TARGET_STATUS}|{code}"


def size(page: Page, lesion: int, millimetres: str) -> None:
    """Type a target's size as a reader does: select what is there, type, leave the field."""
    field = page.locator(f'[id="lesion-size/{lesion}/1"]')
    field.fill(millimetres)
    field.press("Tab")


def assessed(page: Page, overall: str, **shown: str) -> None:
    """Wait until the panel shows ``overall`` and each of ``shown`` (element id → text)."""
    expect(page.locator("#overall")).to_have_text(re.compile(rf"\b{overall}\b"), timeout=15_000)
    for element_id, text in shown.items():
        expect(page.locator(f"#{element_id}")).to_have_text(text)


# --- the reader's workstation -------------------------------------------------------------------


def test_a_follow_up_arrives_with_every_baseline_target_pre_filled(workstation: CrfPage) -> None:
    page = workstation.page

    targets = [
        (value(page, f"lesion-id/{n}/1"), value(page, f"lesion-location/{n}/1")) for n in (1, 2, 3)
    ]
    non_targets = [
        (
            value(page, f"non-target-lesion.lesion-id/{n}/1"),
            value(page, f"non-target-lesion.lesion-location/{n}/1"),
        )
        for n in (1, 2)
    ]

    assert targets == [("T1", "Liver"), ("T2", "Liver"), ("T3", "Lymph node")]
    assert non_targets == [("NT1", "Bone"), ("NT2", "Peritoneum")]
    assert [value(page, f"lesion-size/{n}/1") for n in (1, 2, 3)] == ["", "", ""]
    # The nodal flags: T3 is a node, T1 and T2 are not.
    assert page.locator('[id="lesion-nodal/3/1|true"] input').is_checked()
    assert page.locator('[id="lesion-nodal/1/1|false"] input').is_checked()
    assert page.locator('[id="baseline-date/1"] input').input_value() == "01/13/2025"
    assert workstation.foreign_requests() == []
    assert workstation.problems == []


def test_the_category_follows_the_sizes_and_a_different_conclusion_is_flagged(
    workstation: CrfPage, base_url: str, patient: str
) -> None:
    page = workstation.page
    page.locator('[id="imaging-date/1"] input').fill(FOLLOW_UP_DATE[0])
    page.keyboard.press("Enter")
    for lesion in (1, 2):
        page.locator(f'[id="{status(page, lesion, "present")}"]').click()

    size(page, 1, "30")
    size(page, 2, "20")
    size(page, 3, "10")  # 60 mm: -34.8 % from 92 mm
    assessed(page, "PR", sum="60 mm", baselineSum="92 mm", changeBaseline="-34.8 %")
    reasons_pr = page.locator("#reasons li").all_text_contents()

    size(page, 1, "40")  # 70 mm: -23.9 %
    assessed(page, "SD", sum="70 mm", changeBaseline="-23.9 %")

    size(page, 1, "50")
    size(page, 2, "35")
    size(page, 3, "30")  # 115 mm: +25 % from the nadir (the baseline)
    assessed(page, "PD", sum="115 mm", changeNadir="+25 %")
    reasons_pd = page.locator("#reasons li").all_text_contents()
    expect(page.locator("#discordance")).to_be_hidden()

    pick(page, "response-vs-baseline/1", "Stable Disease")
    expect(page.locator("#discordance")).to_be_visible()
    expect(page.locator("#discordance")).to_contain_text("PD")
    page.locator('[id="lesion-size/1/1"]').scroll_into_view_if_needed()
    page.screenshot(path=IMAGES / "crf-form.png")

    page.click("#submitButton")
    page.wait_for_selector("#crf[data-submission=stored], #crf[data-submission=failed]")
    assert page.get_attribute("#crf", "data-submission") == "stored", page.text_content(
        "#submitIssues"
    )
    report = page.get_attribute("#reportLink", "href") or ""
    stored = page.get_attribute("#storedLink", "href") or ""

    page.click("#submittedTimelineLink")
    page.wait_for_selector("#timeline[data-timeline=ready], #timeline[data-timeline=error]")
    assert page.get_attribute("#timeline", "data-timeline") == "ready", page.text_content(
        "#timelineStatus"
    )
    rows = page.locator("#exams tbody tr")
    follow_up = rows.filter(has_text=FOLLOW_UP_DATE[1])
    page.screenshot(path=IMAGES / "crf-timeline.png")

    assert reasons_pr
    assert reasons_pd != reasons_pr
    assert "/DiagnosticReport/" in report
    assert "/QuestionnaireResponse/" in stored
    assert rows.count() == 2
    assert re.search(r"\bPD\b", follow_up.locator(".tl-category").text_content() or "")
    assert "115 mm" in (follow_up.text_content() or "")
    assert follow_up.locator(".tl-discordant").count() >= 1
    assert page.locator("#chart svg title").text_content()
    assert page.locator("#chart svg polyline.tl-sum").count() == 1
    assert workstation.foreign_requests() == []
    assert workstation.problems == []


def tab_to(page: Page, selector: str, presses: int = 400) -> None:
    """Press Tab until the focused element is (or is inside) ``selector``."""
    check = (
        "(s) => { const e = document.activeElement;"
        " return !!e && (e.matches(s) || !!e.closest(s)); }"
    )
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(check, selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_the_form_is_completed_signed_and_submitted_with_the_keyboard_alone(
    workstation: CrfPage,
) -> None:
    page = workstation.page

    tab_to(page, '[id="imaging-date/1"] input')
    page.keyboard.type(FOLLOW_UP_DATE[0])
    page.keyboard.press("Enter")
    for lesion, millimetres in ((1, "30"), (2, "20"), (3, "10")):
        tab_to(page, f'[id="lesion-size/{lesion}/1"]')
        page.keyboard.type(millimetres)
    for lesion in (1, 2):
        tab_to(page, f'[id="{status(page, lesion, "present")}"]')
        page.keyboard.press("Space")
    assessed(page, "PR", sum="60 mm")
    tab_to(page, '[id="response-vs-baseline/1"]')
    page.keyboard.type("Stable")
    # LHC-Forms narrows its list as the reader types; then the first match is chosen.
    expect(page.locator("#lhc-tools-searchResults li").first).to_contain_text("Stable Disease")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#discordance")).to_contain_text("is SD, fhirnet computes PR")
    tab_to(page, "#submitButton")
    page.keyboard.press("Enter")

    page.wait_for_selector("#crf[data-submission=stored], #crf[data-submission=failed]")
    assert page.get_attribute("#crf", "data-submission") == "stored", page.text_content(
        "#submitIssues"
    )
    assert workstation.foreign_requests() == []
    assert workstation.problems == []


# --- with access control on: signing in at the authorization server ------------------------------

CLIENT_ID = "fhirnet-crf"
READER = "reader-1"


@dataclass(frozen=True)
class SignedInServer:
    """``fhirnet serve`` with access control on, and the authorization server readers use."""

    base_url: str
    authorization: OAuthServer

    def system_token(self) -> str:
        """A token of the authorization server for the test's own set-up (not the page's)."""
        now = int(time.time())
        claims = {
            "iss": self.authorization.base_url,
            "aud": f"{self.base_url}/fhir",
            "sub": "test-setup",
            "iat": now,
            "exp": now + 300,
            "scope": "system/*.cruds",
        }
        return self.authorization.state.sign(claims, typ="at+jwt")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedInServer]:
    """fhirnet verifying the authorization server's tokens, the page registered there."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = {
        "fhir_base": f"{base_url}/fhir",
        "clients": [{"client_id": CLIENT_ID, "redirect_uris": [f"{base_url}/crf"]}],
        "users": [{"id": READER, "name": "Dr Reader"}],
        "patients": [],
        "cors_origins": [base_url],
    }
    directory = tmp_path_factory.mktemp("workstation-secured")
    with OAuthServer(config) as authorization:
        env = {
            **os.environ,
            "FHIRNET_PORT": str(port),
            "FHIRNET_DATA_DIR": str(directory / "data"),
            "FHIRNET_JWKS_URL": f"{authorization.base_url}/jwks",
            "FHIRNET_JWT_ISSUER": authorization.base_url,
            "FHIRNET_JWT_AUDIENCE": f"{base_url}/fhir",
            "FHIRNET_AUTHORIZE_URL": f"{authorization.base_url}/authorize",
            "FHIRNET_READER_TOKEN_URL": f"{authorization.base_url}/token",
            "FHIRNET_READER_CLIENT_ID": CLIENT_ID,
        }
        env.pop("FHIRNET_AUTH", None)
        with serving(
            [sys.executable, "-c", SERVE_WITH_CRF],
            port=port,
            env=env,
            log_path=directory / "gunicorn.log",
        ):
            yield SignedInServer(base_url=base_url, authorization=authorization)


@pytest.fixture
def secured_patient(secured: SignedInServer, request: pytest.FixtureRequest) -> str:
    """A patient with the RECIST baseline on file, written with a set-up token."""
    patient_id = patient_of(request)
    form = json.loads(BASELINE.read_text(encoding="utf-8"))
    form.pop("id", None)
    form["identifier"]["value"] = f"{patient_id}-01"
    form["subject"] = {"reference": f"Patient/{patient_id}"}
    status, _ = post_json(
        f"{secured.base_url}/fhir/QuestionnaireResponse", form, token=secured.system_token()
    )
    assert status == 201
    return patient_id


def allowed_origins(opened: CrfPage, authorization: OAuthServer) -> list[str]:
    """Requests that went neither to fhirnet nor to the configured authorization server."""
    return [url for url in opened.foreign_requests() if not url.startswith(authorization.base_url)]


def fill_follow_up_to_pr(page: Page) -> None:
    """Date, both non-targets present, sizes 30/20/10 mm (60 mm: PR)."""
    page.locator('[id="imaging-date/1"] input').fill(FOLLOW_UP_DATE[0])
    page.keyboard.press("Enter")
    for lesion in (1, 2):
        page.locator(f'[id="{status(page, lesion, "present")}"]').click()
    size(page, 1, "30")
    size(page, 2, "20")
    size(page, 3, "10")


def test_with_access_control_on_the_reader_signs_in_with_pkce_and_submits_as_author(
    browser: Browser, secured: SignedInServer, secured_patient: str
) -> None:
    opened, context = open_page(browser, secured.base_url, f"/crf?patient={secured_patient}")
    try:
        page = opened.page
        page.wait_for_selector("#crf[data-auth=signed-out]")
        authorize_request: list[str] = []
        page.on(
            "request",
            lambda r: authorize_request.append(r.url) if "/authorize?" in r.url else None,
        )
        page.click("#signInButton")
        page.wait_for_url(f"{secured.authorization.base_url}/authorize*")
        page.click("button[value=sign-in]")
        page.wait_for_selector("#crf[data-form=ready], #crf[data-form=error]")
        assert page.get_attribute("#crf", "data-auth") == "signed-in", page.text_content(
            "#signInStatus"
        )
        assert page.get_attribute("#crf", "data-form") == "ready", page.text_content("#formStatus")
        assert value(page, "lesion-id/3/1") == "T3"  # $populate answered with the token
        fill_follow_up_to_pr(page)
        assessed(page, "PR", sum="60 mm")
        page.click("#submitButton")
        page.wait_for_selector("#crf[data-submission=stored], #crf[data-submission=failed]")
        submitted = page.get_attribute("#crf", "data-submission")
        submit_text = page.text_content("#submitIssues")
        stored = page.get_attribute("#storedLink", "href") or ""
        token_in_storage = page.evaluate("Object.keys(window.localStorage)")
        signed_in_as = page.text_content("#signInStatus") or ""
        current_url = page.url
        # The timeline page of the same tab reads with the same sign-in.
        page.click("#submittedTimelineLink")
        page.wait_for_selector("#timeline[data-timeline=ready], #timeline[data-timeline=error]")
        timeline_status = page.text_content("#timelineStatus") or ""
        categories = page.locator("#exams tbody .tl-category").all_text_contents()
    finally:
        context.close()

    query = parse_qs(urlsplit(authorize_request[0]).query)
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["aud"] == [f"{secured.base_url}/fhir"]
    assert query["state"][0]
    assert query["nonce"][0]
    assert "code=" not in current_url  # the code is not left in the address bar
    assert f"Practitioner/{READER}" in signed_in_as
    assert submitted == "stored", submit_text
    form = get_json(stored, token=secured.system_token())
    assert form["author"] == {"reference": f"Practitioner/{READER}"}
    assert form["subject"] == {"reference": f"Patient/{secured_patient}"}
    assert token_in_storage == []  # never localStorage
    assert categories == ["—", "PR"], timeline_status
    assert allowed_origins(opened, secured.authorization) == []
    assert opened.problems == []


def test_an_ehr_launch_opens_the_launched_patients_form(
    browser: Browser, secured: SignedInServer, secured_patient: str
) -> None:
    launch = post_plain_json(
        f"{secured.authorization.base_url}/launch", {"patient": secured_patient}
    )["launch"]
    iss = quote(f"{secured.base_url}/fhir", safe="")
    opened, context = open_page(browser, secured.base_url, f"/crf?launch={launch}&iss={iss}")
    try:
        page = opened.page
        page.wait_for_url(f"{secured.authorization.base_url}/authorize*")
        page.click("button[value=sign-in]")
        page.wait_for_selector("#crf[data-form=ready], #crf[data-form=error]")
        patient_field = page.locator("#patient").input_value()
        target = value(page, "lesion-id/1/1")
        auth = page.get_attribute("#crf", "data-auth")
    finally:
        context.close()

    assert auth == "signed-in"
    assert patient_field == secured_patient  # from the token response, not the address
    assert target == "T1"
    assert allowed_origins(opened, secured.authorization) == []


def test_an_expired_sign_in_asks_to_sign_in_again_and_keeps_what_was_typed(
    browser: Browser, secured: SignedInServer, secured_patient: str
) -> None:
    """The authorization server issues tokens that fhirnet refuses a few seconds later
    (``exp`` in the past, within fhirnet's 30 s leeway): the next live assessment is a 401."""
    config = secured.authorization.state.config
    assert isinstance(config, dict)
    valid_seconds = 6
    config["token_seconds"] = valid_seconds - 30
    opened, context = open_page(browser, secured.base_url, f"/crf?patient={secured_patient}")
    try:
        page = opened.page
        page.click("#signInButton")
        page.click("button[value=sign-in]")
        page.wait_for_selector("#crf[data-form=ready]")
        signed_in = time.monotonic()
        config["token_seconds"] = 300
        size(page, 1, "30")
        page.wait_for_timeout(max(0.0, valid_seconds + 1.5 - (time.monotonic() - signed_in)) * 1000)
        size(page, 2, "20")
        page.wait_for_selector("#crf[data-auth=signed-out]")
        expect(page.locator("#signInButton")).to_be_visible()
        page.click("#signInButton")
        page.click("button[value=sign-in]")
        page.wait_for_selector("#crf[data-form=ready]")
        kept = [value(page, f"lesion-size/{n}/1") for n in (1, 2)]
        auth = page.get_attribute("#crf", "data-auth")
        status_text = page.text_content("#formStatus") or ""
        # The form is assessed again with the new token.
        expect(page.locator("#crf")).to_have_attribute("data-assessment", "done")
    finally:
        config["token_seconds"] = 300
        context.close()

    assert auth == "signed-in"
    assert kept == ["30", "20"]
    assert "as you left it" in status_text
    unexpected = [p for p in opened.problems if "401" not in p]
    assert unexpected == []


def test_the_timeline_marks_baseline_nadir_and_thresholds_over_several_exams(
    browser: Browser, base_url: str, patient: str
) -> None:
    """Forms 2-4 of the example after the baseline: SD, SD (the reader said PR), PR."""
    for path in sorted(EXAMPLES.glob("0[234]-*.json")):
        form = json.loads(path.read_text(encoding="utf-8"))
        form.pop("id", None)
        form["identifier"]["value"] = f"{patient}-{path.name[:2]}"
        form["subject"] = {"reference": f"Patient/{patient}"}
        status, _ = post_json(f"{base_url}/fhir/QuestionnaireResponse", form)
        assert status == 201
    opened, context = open_page(browser, base_url, f"/crf/timeline?patient={patient}")
    try:
        page = opened.page
        page.wait_for_selector("#timeline[data-timeline=ready], #timeline[data-timeline=error]")
        assert page.get_attribute("#timeline", "data-timeline") == "ready", page.text_content(
            "#timelineStatus"
        )
        categories = page.locator("#exams tbody .tl-category").all_text_contents()
        dates = [row.split()[0] for row in page.locator("#exams tbody tr").all_inner_texts()]
        discordant = page.locator("#exams tbody tr").nth(2).locator(".tl-discordant").count()
        chart = page.locator("#chart svg")
        description = chart.locator("desc").text_content() or ""
        lesions = chart.locator("polyline.tl-lesion").count()
        marks = (chart.locator(".tl-baseline").count(), chart.locator(".tl-nadir").count())
        lines = (
            chart.locator(".tl-threshold-pr").count(),
            chart.locator(".tl-threshold-pd").count(),
        )
        links = page.locator("#exams tbody tr").nth(3).locator("a").all()
        hrefs = [link.get_attribute("href") or "" for link in links]
    finally:
        context.close()

    assert dates == ["2025-01-13", "2025-04-14", "2025-07-14", "2025-10-13"]
    assert categories == ["—", "SD", "SD", "PR"]
    assert discordant == 1  # the reader's PR against the computed SD
    assert lesions == 3  # T1, T2, T3
    assert marks == (1, 1)
    assert lines == (1, 1)
    assert "2025-10-13: 60 mm" in description
    assert [h.split("/fhir/")[1].split("/")[0] for h in hrefs] == [
        "QuestionnaireResponse",
        "DiagnosticReport",
    ]
    assert opened.foreign_requests() == []
    assert opened.problems == []


def test_a_reader_who_cancels_at_the_authorization_server_is_told_so(
    browser: Browser, secured: SignedInServer, secured_patient: str
) -> None:
    opened, context = open_page(browser, secured.base_url, f"/crf?patient={secured_patient}")
    try:
        page = opened.page
        page.click("#signInButton")
        page.click("button[value=deny]")
        page.wait_for_selector("#crf[data-auth=error]")
        message = page.text_content("#signInStatus") or ""
        form = page.get_attribute("#crf", "data-form")
    finally:
        context.close()

    assert "access_denied" in message
    assert form == "signed-out"  # no form to type into without a reader
    assert allowed_origins(opened, secured.authorization) == []
