"""``GET /crf``: the CRF rendered in the browser by LHC-Forms, with a "Validate" button.

A page for EHR developers and the proof that the served Questionnaire works without a terminology
server. The page (``templates/crf.html`` + ``static/crf.js``) fetches
``/fhir/Questionnaire/gep-net-imaging-crf`` (answer ValueSets contained and pre-expanded,
:mod:`fhirnet.fhir.served`), renders it with LHC-Forms, and on "Validate" extracts the
QuestionnaireResponse, posts it to ``/fhir/QuestionnaireResponse/$validate`` and lists the
OperationOutcome's issues.

LHC-Forms is vendored at install time, not committed: ``tools/browser/install.sh`` unpacks it into
``static/lforms/``. Without it the page says so, with status 503, instead of loading scripts that
are not there. The page only talks to its own origin, and its Content-Security-Policy says so.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, render_template, url_for
from werkzeug.wrappers import Response

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


@bp.get("")
def crf_page() -> Response:
    """The CRF form page; 503 with an explanation when LHC-Forms is not installed.

    Checked per request (one ``stat`` per file), so running the install script makes a running
    server's page work without a restart.
    """
    installed = lforms_installed()
    html = render_template(
        "crf.html",
        installed=installed,
        lforms_version=LFORMS_VERSION,
        lforms_scripts=[url_for("crf.static", filename=f"lforms/{s}") for s in LFORMS_SCRIPTS],
        lforms_stylesheet=url_for("crf.static", filename=f"lforms/{LFORMS_STYLESHEET}"),
        questionnaire_url=url_for(
            "fhir.read", resource_type="Questionnaire", resource_id=QUESTIONNAIRE_ID
        ),
        validate_url=url_for("fhir.validate"),
    )
    response = Response(html, status=200 if installed else 503, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
