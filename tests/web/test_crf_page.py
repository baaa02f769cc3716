"""``GET /crf`` in a real browser: Debian Chromium driven by Playwright against ``fhirnet serve``.

The page renders the served Questionnaire with LHC-Forms from its contained, pre-expanded
ValueSets (no terminology server), and "Validate" posts the QuestionnaireResponse it extracts to
``$validate`` and lists the OperationOutcome. The browser runs against a real server process on a
free loopback port, like ``tests/web/test_cli.py``'s ``served`` fixture.

Tools (``shared/reference/tooling.md`` §4): ``/usr/bin/chromium`` from Debian and the LHC-Forms
files in ``fhirnet/web/static/lforms/``, both put there by ``tools/browser/install.sh``, which the
tests run when something is missing; PyPI ``playwright`` drives the browser (never
``playwright install``). When the tools cannot be had, the browser tests fail in CI (``CI=true``)
and are skipped elsewhere, with the reason in the summary (``-ra``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fhirnet.config import DEFAULT_READER_SCOPE, Settings
from fhirnet.web import crf_views
from fhirnet.web.app import create_app
from tests.servers import free_port, serving

IN_CI = os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}

#: ``fhirnet serve`` (FHIRNET_PORT etc. from the environment), with the /crf blueprint
#: registered when ``create_app`` does not register it itself.
SERVE_WITH_CRF = """
from fhirnet.web import app, cli
from fhirnet.web.crf_views import bp

def create_app(*args, **kwargs):
    application = app.create_app(*args, **kwargs)
    if bp.name not in application.blueprints:
        application.register_blueprint(bp)
    return application

cli.create_app = create_app
cli.main(["serve"], prog_name="fhirnet")
"""

RECIST = ("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl", "C124415")
CHOI = ("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl", "C122394")
ASSESSMENT_TYPE = "https://fhirnet.dev/fhir/CodeSystem/assessment-type"
IMAGING_PROCEDURE = "https://fhirnet.dev/fhir/CodeSystem/imaging-procedure"
#: A past date (the validator refuses dates after its "today"), as LHC-Forms' picker takes it.
IMAGING_DATE = ("06/02/2025", "2025-06-02")

try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request
except ImportError:  # pragma: no cover - depends on the environment
    if IN_CI:
        raise
    pytest.skip(
        "BROWSER TESTS NOT RUN: PyPI playwright is not installed "
        "(pip install playwright==1.65.2; never `playwright install`)",
        allow_module_level=True,
    )


# --- tools, server and browser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``fhirnet serve`` with /crf on a free loopback port; stopped after the module."""
    port = free_port()
    directory = tmp_path_factory.mktemp("crf-serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRNET_")}
    env |= {
        "FHIRNET_PORT": str(port),
        "FHIRNET_AUTH": "none",
        # Its own data directory: never the checkout's data/, which make run uses.
        "FHIRNET_DATA_DIR": str(directory / "data"),
    }
    log_path = directory / "gunicorn.log"
    with serving([sys.executable, "-c", SERVE_WITH_CRF], port=port, env=env, log_path=log_path):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def served_questionnaire(base_url: str) -> dict[str, Any]:
    """The Questionnaire exactly as the page gets it."""
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base_url}/fhir/Questionnaire/gep-net-imaging-crf",
        headers={"Accept": "application/fhir+json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        questionnaire: dict[str, Any] = json.load(answer)
        return questionnaire


@dataclass
class CrfPage:
    """An open /crf page and what the browser did while it was open."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    #: Console errors (CSP violations among them), uncaught exceptions and failed requests.
    problems: list[str] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        """Requests that left the app's origin (scheme, host and port)."""
        return [url for url in self.requests if _origin(url) != self.origin]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def crf(browser: Browser, base_url: str) -> Iterator[CrfPage]:
    """/crf loaded in a fresh browser context, with the form rendered."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    opened = CrfPage(page=page, origin=base_url)
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("console", lambda message: _note_console(opened, message))
    page.on("pageerror", lambda error: opened.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: opened.problems.append(_failure(request)))
    try:
        page.goto(f"{base_url}/crf")
        page.wait_for_selector("#crf[data-form=ready], #crf[data-form=error]")
        assert page.get_attribute("#crf", "data-form") == "ready", page.text_content("#formStatus")
        yield opened
    finally:
        context.close()


def _note_console(opened: CrfPage, message: ConsoleMessage) -> None:
    # Chromium logs every 4xx fetch; a 422 from $validate is the answer for an invalid form.
    expected = message.location.get("url", "").endswith("/$validate") and "422" in message.text
    if message.type == "error" and not expected:
        opened.problems.append(f"console error: {message.text}")


def _failure(request: Request) -> str:
    return f"request failed: {request.method} {request.url}: {request.failure}"


# --- filling the form ------------------------------------------------------------------------


def choose(page: Page, link_id: str, system: str, code: str) -> None:
    """Click the radio button or check box of a coded answer (LHC-Forms ids: linkId/1|sys|code)."""
    page.locator(f'[id="{link_id}/1|{system}|{code}"]').click()


def pick(page: Page, input_id: str, display: str) -> None:
    """Open an LHC-Forms drop-down (autocomplete) and choose the option showing ``display``."""
    page.locator(f'[id="{input_id}"]').click()
    option = re.compile(rf"^\d+:\s+{re.escape(display)}$")
    page.locator("#lhc-tools-searchResults li").filter(has_text=option).click()


def fill_baseline(page: Page, *, lesion_id: str = "T1", size: str = "25") -> None:
    """A minimal valid baseline: date, type, a procedure, criteria, one target lesion."""
    page.locator('[id="imaging-date/1"] input').fill(IMAGING_DATE[0])
    page.keyboard.press("Enter")
    choose(page, "assessment-type", ASSESSMENT_TYPE, "baseline")
    choose(page, "imaging-procedure", IMAGING_PROCEDURE, "CT")
    choose(page, "response-criteria", *RECIST)
    if lesion_id:
        page.fill('[id="lesion-id/1/1"]', lesion_id)
    pick(page, "lesion-location/1/1", "Liver")
    page.locator('[id="lesion-nodal/1/1|false"]').click()
    page.fill('[id="lesion-size/1/1"]', size)


@dataclass(frozen=True)
class Validation:
    """What "Validate" sent and got, and what the page shows of it."""

    sent: dict[str, Any]
    status: int
    outcome: dict[str, Any]
    #: The issue list as displayed: (severity, message, expressions).
    shown: list[tuple[str, str, tuple[str, ...]]]
    summary: str


def validate(page: Page) -> Validation:
    """Click "Validate" and wait for the page to show the OperationOutcome."""
    with page.expect_response(lambda r: r.url.endswith("/QuestionnaireResponse/$validate")) as info:
        page.click("#validateButton")
    answer = info.value
    page.wait_for_selector("#crf[data-validation=valid], #crf[data-validation=invalid]")
    shown = []
    for item in page.locator("#issues li").all():
        shown.append(
            (
                item.locator(".crf-issue-severity").text_content() or "",
                item.locator(".crf-issue-message").text_content() or "",
                tuple(item.locator(".crf-issue-expression").all_text_contents()),
            )
        )
    return Validation(
        sent=json.loads(answer.request.post_data or "null"),
        status=answer.status,
        outcome=answer.json(),
        shown=shown,
        summary=page.text_content("#validateStatus") or "",
    )


def as_listed(outcome: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    """The issues of an OperationOutcome as the page should list them."""
    return [
        (
            issue["severity"],
            issue.get("details", {}).get("text") or issue.get("diagnostics", ""),
            tuple(issue.get("expression", ())),
        )
        for issue in outcome["issue"]
    ]


# --- the page in the browser ------------------------------------------------------------------


def test_the_form_renders_every_top_level_item(
    crf: CrfPage, served_questionnaire: dict[str, Any]
) -> None:
    """Unconditional items at once; the conditional ones when their enableWhen holds."""
    page = crf.page
    top_level = [item["linkId"] for item in served_questionnaire["item"]]
    conditional = {item["linkId"] for item in served_questionnaire["item"] if "enableWhen" in item}

    def rendered() -> set[str]:
        return {
            link_id for link_id in top_level if page.locator(f'[id="item-{link_id}/1"]').count()
        }

    assert rendered() == set(top_level) - conditional

    choose(page, "assessment-type", ASSESSMENT_TYPE, "follow-up")
    choose(page, "imaging-procedure", IMAGING_PROCEDURE, "SSTR-PET")
    choose(page, "response-criteria", *CHOI)

    assert rendered() == set(top_level)
    for item in served_questionnaire["item"]:
        label = page.locator(f'[id="label-{item["linkId"]}/1"]').text_content() or ""
        assert label.strip().removesuffix("*").strip() == item["text"]
    assert crf.problems == []


def exported_first_answer(page: Any, timeout_s: float = 10.0) -> Any:
    """The first answer of the exported QuestionnaireResponse, once LHC-Forms has registered the
    click: under load its change detection can lag behind Playwright's click."""
    script = (
        "(() => { const qr = LForms.Util.getFormFHIRData('QuestionnaireResponse', 'R4', "
        "document.getElementById('formContainer')); "
        "return qr?.item?.[0]?.item?.[0]?.answer?.[0] ?? null; })()"
    )
    deadline = time.monotonic() + timeout_s
    while (answer := page.evaluate(script)) is None and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    return answer


def test_a_dropdown_lists_the_contained_expansion_without_a_terminology_server(
    crf: CrfPage, served_questionnaire: dict[str, Any]
) -> None:
    page = crf.page
    (location,) = [
        child
        for item in served_questionnaire["item"]
        for child in item.get("item", [])
        if child["linkId"] == "lesion-location"
    ]
    reference = location["answerValueSet"]
    assert reference.startswith("#")  # a contained ValueSet, not a canonical URL to resolve
    (value_set,) = [r for r in served_questionnaire["contained"] if r["id"] == reference[1:]]
    expansion = value_set["expansion"]["contains"]

    page.locator('[id="lesion-location/1/1"]').click()
    shown_count = page.text_content("#lhc-tools-searchCount") or ""
    if page.locator("#lhc-tools-moreResults").is_visible():  # long lists open shortened
        page.click("#lhc-tools-moreResults")
    options = page.locator("#lhc-tools-searchResults li").all_inner_texts()
    page.locator("#lhc-tools-searchResults li").nth(2).click()
    answer = exported_first_answer(page)

    assert [re.sub(r"^\d+:\s+", "", option) for option in options] == [
        concept["display"] for concept in expansion
    ]
    assert f"of {value_set['expansion']['total']} items total" in shown_count
    assert answer == {"valueCoding": expansion[2]}
    # Everything the page loaded came from fhirnet itself: no terminology server, no CDN.
    assert crf.requests, "no requests were recorded"
    assert crf.foreign_requests() == []
    assert f"{crf.origin}/fhir/Questionnaire/gep-net-imaging-crf" in crf.requests
    assert crf.problems == []  # a CSP violation would be a console error


def test_a_minimal_valid_baseline_shows_no_issues(crf: CrfPage, tmp_path: Path) -> None:
    page = crf.page
    fill_baseline(page)

    result = validate(page)
    page.screenshot(path=tmp_path / "crf-valid-baseline.png", full_page=True)

    assert result.status == 200
    assert result.shown == [("information", "No issues detected", ())]
    assert result.summary.startswith("Valid (HTTP 200)")
    # What LHC-Forms produced, cleaned as the page promises.
    sent = result.sent
    assert "meta" not in sent  # LHC-Forms' meta.profile and lformsVersion tag are stripped
    assert sent["subject"] == {"reference": "Patient/demo"}
    assert sent["questionnaire"].startswith(
        "https://fhirnet.dev/fhir/Questionnaire/gep-net-imaging-crf"
    )
    assert [item["linkId"] for item in sent["item"]] == [
        "imaging-date",
        "assessment-type",
        "imaging-procedure",
        "response-criteria",
        "target-lesion",
    ]
    assert sent["item"][0]["answer"] == [{"valueDate": IMAGING_DATE[1]}]
    assert sent["item"][4]["item"][3]["answer"] == [{"valueDecimal": 25}]
    assert crf.foreign_requests() == []
    assert crf.problems == []


@dataclass(frozen=True)
class Mistake:
    """A way to get the form wrong, and the issue the validator reports for it."""

    fill: Callable[[Page], None]
    expression: str
    message: str  # a regular expression the issue's message matches


def _clear_subject(page: Page) -> None:
    fill_baseline(page)
    page.fill("#subject", "")


MISTAKES = {
    "required lesion ID left empty": Mistake(
        fill=lambda page: fill_baseline(page, lesion_id=""),
        expression="QuestionnaireResponse.item[4]",
        message=r"lesion-id",
    ),
    "size of 2000 mm": Mistake(
        fill=lambda page: fill_baseline(page, size="2000"),
        expression="QuestionnaireResponse.item[4].item[3].answer[0].valueDecimal",
        message=r"1000",
    ),
    "no subject": Mistake(
        fill=_clear_subject,
        expression="QuestionnaireResponse",
        message=r"subject",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES.values(), ids=MISTAKES.keys())
def test_an_invalid_form_shows_the_validators_error_with_its_expression(
    crf: CrfPage, mistake: Mistake, tmp_path: Path
) -> None:
    page = crf.page
    mistake.fill(page)

    result = validate(page)
    page.screenshot(path=tmp_path / "crf-invalid.png", full_page=True)

    assert result.status == 422
    assert result.shown == as_listed(result.outcome)  # every issue, as the server sent it
    errors = [issue for issue in result.shown if issue[0] == "error"]
    assert any(
        expressions == (mistake.expression,) and re.search(mistake.message, message)
        for _, message, expressions in errors
    ), errors
    assert result.summary.startswith("Not valid (HTTP 422)")
    assert crf.problems == []


# --- the page without a browser --------------------------------------------------------------


@pytest.fixture
def crf_client(app: Flask) -> FlaskClient:
    """A test client of an app with the /crf blueprint (registered here if the app lacks it)."""
    if crf_views.bp.name not in app.blueprints:
        app.register_blueprint(crf_views.bp)
    return app.test_client()


def test_without_lforms_the_page_explains_how_to_install_it(
    crf_client: FlaskClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(crf_views, "lforms_dir", lambda: tmp_path / "lforms")

    response = crf_client.get("/crf")

    assert response.status_code == 503
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "bash tools/browser/install.sh" in page
    assert "/fhir/Questionnaire/gep-net-imaging-crf" in page
    assert "<script" not in page


def test_an_old_lforms_version_counts_as_not_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (*crf_views.LFORMS_SCRIPTS, crf_views.LFORMS_STYLESHEET):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "VERSION").write_text("39.0.0\n")
    assert not crf_views.lforms_installed(tmp_path)

    (tmp_path / "VERSION").write_text(f"{crf_views.LFORMS_VERSION}\n")
    assert crf_views.lforms_installed(tmp_path)

    (tmp_path / crf_views.LFORMS_SCRIPTS[-1]).unlink()
    assert not crf_views.lforms_installed(tmp_path)


def test_the_page_allows_its_own_origin_only_and_has_no_inline_script(
    crf_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crf_views, "lforms_installed", lambda directory=None: True)

    response = crf_client.get("/crf")

    assert response.status_code == 200
    policy = dict(
        directive.split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split("; ")
    )
    assert policy["default-src"] == policy["script-src"] == policy["connect-src"] == "'self'"
    page = response.get_data(as_text=True)
    # External scripts only, LHC-Forms' in the order they must load, then the page's own.
    assert re.findall(r"<script\b[^>]*>", page) == [
        f'<script src="/crf/static/{name}">'
        for name in (*(f"lforms/{s}" for s in crf_views.LFORMS_SCRIPTS), "crf.js")
    ]
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    assert 'data-validate-url="/fhir/QuestionnaireResponse/$validate"' in page


# --- signing in: /crf/config.json and the policy that lets the page reach the token endpoint ---


def test_with_open_access_the_config_says_there_is_no_sign_in(crf_client: FlaskClient) -> None:
    answer = crf_client.get("/crf/config.json")

    assert answer.status_code == 200
    config = answer.get_json()
    assert config["auth"] == "none"
    assert config["fhir_base"] == "http://localhost/fhir"
    assert set(config) == {"auth", "authorize_url", "token_url", "client_id", "scope", "fhir_base"}


def _secured_client(tmp_path: Path) -> FlaskClient:
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys=(("set-up-key", ("system/*.cruds",)),),
        authorize_url="https://login.example.org/oauth/authorize",
        reader_token_url="https://login.example.org/oauth/token",  # noqa: S106 - a URL
        reader_client_id="fhirnet-crf",
        public_base_url="https://fhirnet.example.org",
    )
    return create_app(settings).test_client()


def test_with_access_control_the_config_names_the_authorization_server(tmp_path: Path) -> None:
    answer = _secured_client(tmp_path).get("/crf/config.json")

    assert answer.status_code == 200  # public: the page needs it before it has a token
    assert answer.get_json() == {
        "auth": "smart",
        "authorize_url": "https://login.example.org/oauth/authorize",
        "token_url": "https://login.example.org/oauth/token",
        "client_id": "fhirnet-crf",
        "scope": DEFAULT_READER_SCOPE,
        "fhir_base": "https://fhirnet.example.org/fhir",
    }


def test_with_access_control_the_page_may_call_the_token_endpoint_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crf_views, "lforms_installed", lambda directory=None: True)
    client = _secured_client(tmp_path)

    for path in ("/crf", "/crf/timeline?patient=x"):
        response = client.get(path)
        policy = dict(
            directive.split(" ", 1)
            for directive in response.headers["Content-Security-Policy"].split("; ")
        )
        assert response.status_code == 200
        assert policy["connect-src"] == "'self' https://login.example.org"
        assert policy["default-src"] == policy["script-src"] == "'self'"


def test_the_timeline_page_loads_its_own_script_only(crf_client: FlaskClient) -> None:
    response = crf_client.get("/crf/timeline?patient=small-bowel-net-prrt&stream=site")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/crf/static/timeline.js">']
    assert 'data-api-url="/api/v1/patients/{patient}/timeline"' in page
    assert "<caption" in page  # the table is the record; the chart is drawn from it


# --- make run's installation of LHC-Forms ------------------------------------------------------

INSTALL_SCRIPT = Path(__file__).parents[2] / "tools" / "browser" / "install.sh"


def test_the_install_script_is_a_quick_file_check_when_lforms_is_there(lforms: None) -> None:
    started = time.monotonic()
    done = subprocess.run(
        ["/usr/bin/bash", str(INSTALL_SCRIPT), "--no-chromium"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert f"lforms {crf_views.LFORMS_VERSION} present" in done.stderr
    assert time.monotonic() - started < 5  # no npm, no network


def test_without_npm_the_install_script_says_how_to_get_it(tmp_path: Path) -> None:
    script = tmp_path / "tools" / "browser" / "install.sh"
    script.parent.mkdir(parents=True)
    shutil.copy(INSTALL_SCRIPT, script)
    tools = tmp_path / "bin"  # what the script needs before npm, and no npm
    tools.mkdir()
    (tools / "dirname").symlink_to(shutil.which("dirname") or "/usr/bin/dirname")

    done = subprocess.run(
        ["/usr/bin/bash", str(script), "--no-chromium"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": str(tools)},
    )

    assert done.returncode == 1
    assert "npm was not found" in done.stderr
    assert "apt-get install -y nodejs npm" in done.stderr
    assert not (tmp_path / "fhirnet").exists()  # nothing half-installed
