"""``/crf``: the reader's workstation — the CRF in the browser (LHC-Forms), pre-filled, assessed
live, signed and submitted — and the patient's timeline (docs/crf-page.md).

``GET /crf?patient=&stream=`` (or an EHR launch, ``?launch=&iss=``): the page
(``templates/crf.html`` + ``static/crf.js``) fetches the served Questionnaire (answer ValueSets
contained and pre-expanded, :mod:`fhirnet.fhir.served`) and the patient's follow-up from
``$populate``, renders it with LHC-Forms, posts it as the reader types to the live assessment
(``POST /api/v1/forms/assessment``, a dry run) and on "Sign and submit" to
``POST /fhir/QuestionnaireResponse`` with the reader as ``author``. "Validate" still posts it to
``$validate`` and lists the OperationOutcome. ``GET /crf/timeline?patient=&stream=``
(``templates/timeline.html`` + ``static/timeline.js``) shows the patient's exams from
``GET /api/v1/patients/<id>/timeline``. ``GET /crf/config.json`` tells the page how to sign in:
nothing to do (``FHIRNET_AUTH=none``) or SMART App Launch (authorization code with PKCE) at the
configured authorization server.

LHC-Forms is vendored at install time, not committed: ``tools/browser/install.sh`` unpacks it into
``static/lforms/``. Without it the page says so, with status 503, instead of loading scripts that
are not there. The page only talks to its own origin, and its Content-Security-Policy says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, render_template, request, url_for
from werkzeug.wrappers import Response

from fhirnet.config import Settings
from fhirnet.web import public_root, web_state

#: Version of LHC-Forms the page is written for; ``install.sh`` writes it to ``lforms/VERSION``.
LFORMS_VERSION = "40.1.3"
#: The logical id of the served CRF Questionnaire.
QUESTIONNAIRE_ID = "gep-net-imaging-crf"

#: The LHC-Forms scripts, relative to ``static/lforms/``, in the order they must load (in
#: ``<body>``: zone, then the Angular bundles, then the FHIR support; tooling.md §4).
LFORMS_SCRIPTS = (
    "webcomponent/assets/lib/zone.min.js",
    "webcomponent/runtime.js",
    "webcomponent/polyfills.js",
    "webcomponent/main.js",
    "fhir/R4/lformsFHIR.min.js",
)
LFORMS_STYLESHEET = "webcomponent/styles.css"

#: Same origin only; LHC-Forms (Angular) sets inline styles, so styles allow 'unsafe-inline'.
#: No inline script and no eval: the page's own code is ``static/crf.js``.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

STATIC_DIR = Path(__file__).parent / "static"
#: The live assessment and the FHIR create the page posts to (served by other blueprints).
ASSESS_PATH = "/api/v1/forms/assessment"
SUBMIT_PATH = "/fhir/QuestionnaireResponse"
POPULATE_PATH = f"/fhir/Questionnaire/{QUESTIONNAIRE_ID}/$populate"
TIMELINE_API_PATH = "/api/v1/patients/{patient}/timeline"

bp = Blueprint(
    "crf",
    __name__,
    url_prefix="/crf",
    static_folder=STATIC_DIR,
    static_url_path="/static",
    template_folder="templates",
)


def lforms_dir() -> Path:
    """Where ``tools/browser/install.sh`` puts the LHC-Forms files (``static/lforms/``)."""
    return STATIC_DIR / "lforms"


def lforms_installed(directory: Path | None = None) -> bool:
    """Whether every LHC-Forms file the page loads is there, in :data:`LFORMS_VERSION`.

    :param directory: the vendor directory; default :func:`lforms_dir`.
    """
    directory = lforms_dir() if directory is None else directory
    marker = directory / "VERSION"
    if not marker.is_file() or marker.read_text(encoding="utf-8").strip() != LFORMS_VERSION:
        return False
    return all((directory / name).is_file() for name in (*LFORMS_SCRIPTS, LFORMS_STYLESHEET))


def signs_in(settings: Settings) -> bool:
    """Whether the page must sign the reader in: access control is on (anything but ``none``)."""
    return settings.auth != "none"


def content_security_policy(settings: Settings) -> str:
    """:data:`CONTENT_SECURITY_POLICY`, plus the authorization server's token endpoint in
    ``connect-src`` when the page signs in there (the only request that leaves the origin; the
    authorize step is a top-level navigation, which ``connect-src`` does not govern)."""
    token_url = settings.reader_token_url
    if not signs_in(settings) or not token_url:
        return CONTENT_SECURITY_POLICY
    parts = urlsplit(token_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {origin}")


def _page(template: str, **context: Any) -> Response:
    """A page of this blueprint with its security headers; 503 without LHC-Forms for the form."""
    installed = lforms_installed()
    html = render_template(
        template,
        installed=installed,
        lforms_version=LFORMS_VERSION,
        lforms_scripts=[url_for("crf.static", filename=f"lforms/{s}") for s in LFORMS_SCRIPTS],
        lforms_stylesheet=url_for("crf.static", filename=f"lforms/{LFORMS_STYLESHEET}"),
        questionnaire_url=url_for(
            "fhir.read", resource_type="Questionnaire", resource_id=QUESTIONNAIRE_ID
        ),
        validate_url=url_for("fhir.validate"),
        config_url=url_for("crf.crf_config"),
        crf_url=url_for("crf.crf_page"),
        timeline_page_url=url_for("crf.timeline_page"),
        populate_url=POPULATE_PATH,
        assess_url=ASSESS_PATH,
        submit_url=SUBMIT_PATH,
        timeline_api_url=TIMELINE_API_PATH,
        **context,
    )
    status = 200 if installed or template != "crf.html" else 503
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = content_security_policy(web_state().settings)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
def crf_page() -> Response:
    """The reader's form page; 503 with an explanation when LHC-Forms is not installed.

    The patient, stream and EHR launch parameters stay in the query: ``crf.js`` reads them, so
    the server keeps no per-reader state. LHC-Forms is checked per request (one ``stat`` per
    file), so running the install script makes a running server's page work without a restart.
    """
    return _page("crf.html")


@bp.get("/timeline")
def timeline_page() -> Response:
    """The patient's timeline page: markup and script only, the data is fetched by
    ``timeline.js`` from ``reader.timeline`` (with the reader's token when access is on)."""
    return _page("timeline.html", patient=request.args.get("patient", ""))


@bp.get("/config.json")
def crf_config() -> Response:
    """How the page signs in, from the settings: public, since a browser needs it before it
    has a token, and it holds no secret (the page is a public client, PKCE instead)."""
    settings = web_state().settings
    base = public_root(settings)
    answer = jsonify(
        {
            "auth": "smart" if signs_in(settings) else "none",
            "authorize_url": settings.authorize_url,
            "token_url": settings.reader_token_url,
            "client_id": settings.reader_client_id,
            "scope": settings.reader_scope,
            "fhir_base": f"{base}/fhir",
        }
    )
    answer.headers["Cache-Control"] = "no-store"
    return answer
