"""The SDTM export's two entry points (``docs/trials.md`` "SDTM export"): one domain of a study
for ``GET /api/v1/studies/{studyId}/sdtm/{domain}`` and every domain in every format for
``fhirnet study export STUDY --out DIR``, with a ``manifest.json``.

A study with a regime in ``FHIRNET_STUDY_SECRETS_FILE`` is exported pseudonymized
(``docs/trials.md`` "Pseudonymization"): dates shifted per patient, or emptied under the
study-day regime, ``--DY`` unchanged; the manifest states the regime. The route reads the file
once per application (:func:`app_regimes`), the command once per run."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

from flask import has_app_context

from fhirnet import __version__
from fhirnet.adapters.sdtm_files import (
    CONTENT_TYPES,
    CsvWriter,
    DatasetJsonWriter,
    csv_chunks,
    dataset_json_chunks,
    read_dataset_json_rows,
    write_xpt,
)
from fhirnet.errors import FieldError, InvalidInputError
from fhirnet.fhir.crf_codes import CRITERIA
from fhirnet.fhir.pseudonymize import Regime
from fhirnet.services import Context
from fhirnet.services.sdtm import StudyExport, study_export
from fhirnet.trials.sdtm import Row, SubjectData, domain_rows, without_dates
from fhirnet.trials.sdtm_domains import DOMAINS
from fhirnet.web import web_state
from fhirnet.web.study_schemas import check_id

__all__ = [
    "FORMATS",
    "PSEUDONYMIZATION",
    "app_regimes",
    "export_study",
    "regime_statement",
    "sdtm_document",
]

FORMATS: Final = tuple(CONTENT_TYPES)
#: What an identified export (a study without a regime) still guarantees.
PSEUDONYMIZATION: Final = "subject numbers only, no hospital identifiers"


def app_regimes() -> Mapping[str, Regime]:
    """The regimes of ``FHIRNET_STUDY_SECRETS_FILE``, read when the application was built."""
    return web_state().regimes


def regime_statement(study_id: str, regime: Regime | None) -> dict[str, Any]:
    """The manifest's statement of how the export is pseudonymized."""
    if regime is not None:
        return regime.statement()
    return {"regime": "identified", "study": study_id, "subjects": PSEUDONYMIZATION}


def _rows(domain: str, subjects: Iterator[SubjectData], export: StudyExport) -> Iterator[Row]:
    """The domain's rows; under the study-day regime without dates (``--DY`` stays)."""
    rows = domain_rows(domain, subjects)
    return rows if export.dates_kept else (without_dates(row) for row in rows)


def _check(study_id: str, domain: str, file_format: str) -> None:
    check_id(study_id, "studyId")
    problems = []
    if domain not in DOMAINS:
        problems.append(FieldError(path=("domain",), message=f"One of {', '.join(DOMAINS)}."))
    if file_format not in CONTENT_TYPES:
        problems.append(FieldError(path=("format",), message=f"One of {', '.join(FORMATS)}."))
    if problems:
        raise InvalidInputError(problems)


def sdtm_document(
    study_id: str,
    domain: str,
    file_format: str,
    context: Context,
    regimes: Mapping[str, Regime] | None = None,
) -> tuple[str, bytes, str]:
    """``(file name, content, content type)`` of one domain of the study.

    :param regimes: the studies' pseudonymization regimes; None: the current application's
        (:func:`app_regimes`), none outside an application
    :raises InvalidInputError: a bad study id, domain or format.
    :raises fhirnet.services.studies.StudyNotFoundError: no such study.
    """
    _check(study_id, domain, file_format)
    if regimes is None:
        regimes = app_regimes() if has_app_context() else {}
    export = study_export(study_id, context, regimes.get(study_id))
    rows = _rows(domain, export.subjects, export)
    name = f"{domain.lower()}.{file_format}"
    if file_format == "xpt":
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            write_xpt(DOMAINS[domain], rows, path)
            content = path.read_bytes()
    elif file_format == "csv":
        content = "".join(csv_chunks(DOMAINS[domain], rows)).encode()
    else:
        chunks = dataset_json_chunks(DOMAINS[domain], rows, study_id=study_id, created=context.now)
        content = "".join(chunks).encode()
    return name, content, CONTENT_TYPES[file_format]


def export_study(
    study_id: str, out: Path, context: Context, regime: Regime | None = None
) -> dict[str, Any]:
    """Write every domain of the study in every format into ``out`` and ``manifest.json``;
    answer the manifest. One pass over the subjects, one subject held at a time: its rows go
    to the Dataset-JSON and CSV files at once; each XPT file is then written from its
    Dataset-JSON file (pyreadstat needs a whole domain as one data frame).

    :param regime: the study's pseudonymization (None: identified, trial numbers only)
    """
    check_id(study_id, "studyId")
    export = study_export(study_id, context, regime)
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as files:
        writers: dict[str, tuple[DatasetJsonWriter, CsvWriter]] = {}
        for name, domain in DOMAINS.items():
            base = out / name.lower()
            json_file = files.enter_context(base.with_suffix(".json").open("w", encoding="utf-8"))
            csv_file = files.enter_context(
                base.with_suffix(".csv").open("w", encoding="utf-8", newline="")
            )
            writers[name] = (
                DatasetJsonWriter(json_file, domain, study_id=study_id, created=context.now),
                CsvWriter(csv_file, domain),
            )
        for subject in export.subjects:
            for name, (as_json, as_csv) in writers.items():
                for row in _rows(name, iter([subject]), export):
                    as_json.write(row)
                    as_csv.write(row)
        for as_json, _ in writers.values():
            as_json.close()
    for name, domain in DOMAINS.items():
        base = out / name.lower()
        write_xpt(
            domain, read_dataset_json_rows(base.with_suffix(".json")), base.with_suffix(".xpt")
        )
    criteria = CRITERIA[export.study.criteria]
    manifest = {
        "study": study_id,
        "domains": {name: as_json.count for name, (as_json, _) in writers.items()},
        "formats": list(FORMATS),
        "subjects": export.count,
        "fhirnetVersion": __version__,
        "criteria": {"code": export.study.criteria.value, "display": criteria.display},
        "pseudonymization": regime_statement(study_id, regime),
        "created": context.now.isoformat(timespec="seconds"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
