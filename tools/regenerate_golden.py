"""Regenerate the golden transaction Bundles of ``examples/transactions/`` (``style.md`` P11).

For every example form ``examples/questionnaire-responses/<patient>/<exam>.json`` this writes
``examples/transactions/<patient>/<exam>.json``: the Bundle fhirnet writes when that form arrives
with the patient's earlier forms as history. ``tests/fhir/test_build.py`` builds the same Bundles
and compares them with these files as parsed JSON. A change of these files is a change of what
fhirnet writes to the FHIR server: it is reviewed by a human like code.

Usage (from the repository root)::

    .venv/bin/python tools/regenerate_golden.py          # rewrite the files
    .venv/bin/python tools/regenerate_golden.py --check  # exit 1 and name the stale files
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout, like the CLI of fsh/tools

from fhirnet.criteria import assess  # noqa: E402
from fhirnet.fhir.build import (  # noqa: E402
    build_transaction,
    exam_results,
    pre_baseline_result,
)
from fhirnet.fhir.crf_codes import AssessmentType  # noqa: E402
from fhirnet.fhir.extract import assessment_request, extract_form  # noqa: E402

FORMS = ROOT / "examples" / "questionnaire-responses"
GOLDEN = ROOT / "examples" / "transactions"
#: ``issued`` of the golden Bundles; the comparison ignores it (and ``recorded``, ``timestamp``).
ISSUED = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def transactions() -> dict[Path, dict[str, Any]]:
    """Every golden Bundle by the path it belongs at: one per example form, built from the
    patient's forms up to and including it, assessed with that form's criteria. A pre-baseline
    form sent before its baseline (``00-...``) is written on its own, not assessed."""
    found: dict[Path, dict[str, Any]] = {}
    for patient in sorted(p for p in FORMS.iterdir() if p.is_dir()):
        paths = sorted(patient.glob("*.json"))
        forms = [extract_form(json.loads(path.read_text(encoding="utf-8"))) for path in paths]
        for index, path in enumerate(paths):
            history = forms[: index + 1]
            if not any(f.assessment_type is AssessmentType.BASELINE for f in history):
                exam = pre_baseline_result(history[-1])
            else:
                assessment = assess(assessment_request(history, history[-1].criteria))
                exam = exam_results(history, assessment)[-1]
            found[GOLDEN / patient.name / path.name] = build_transaction([exam], issued=ISSUED)
    return found


def render(bundle: dict[str, Any]) -> str:
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    expected = transactions()
    stale = sorted(
        path
        for path, bundle in expected.items()
        if not path.is_file() or json.loads(path.read_text(encoding="utf-8")) != bundle
    )
    extra = sorted(set(GOLDEN.glob("*/*.json")) - set(expected))
    if args.check:
        for path in [*stale, *extra]:
            sys.stderr.write(f"stale: {path.relative_to(ROOT)}\n")
        return 1 if stale or extra else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(expected[path]), encoding="utf-8")
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")
    for path in extra:
        path.unlink()
        sys.stdout.write(f"removed {path.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
