"""The SDTM export's two entry points (``docs/trials.md`` "SDTM export"): one domain of a study
for ``GET /api/v1/studies/{studyId}/sdtm/{domain}`` and every domain in every format for
``fhirnet study export STUDY --out DIR``, with a ``manifest.json``."""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Final

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
from fhirnet.services import Context
from fhirnet.services.sdtm import study_export
from fhirnet.trials.sdtm import domain_rows
from fhirnet.trials.sdtm_domains import DOMAINS
from fhirnet.web.study_schemas import check_id

__all__ = ["FORMATS", "PSEUDONYMIZATION", "export_study", "sdtm_document"]

FORMATS: Final = tuple(CONTENT_TYPES)
PSEUDONYMIZATION: Final = "subject numbers only, no hospital identifiers"


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
    study_id: str, domain: str, file_format: str, context: Context
) -> tuple[str, bytes, str]:
    """``(file name, content, content type)`` of one domain of the study.

    :raises InvalidInputError: a bad study id, domain or format.
    :raises fhirnet.services.studies.StudyNotFoundError: no such study.
    """
    _check(study_id, domain, file_format)
    export = study_export(study_id, context)
    rows = domain_rows(domain, export.subjects)
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


def export_study(study_id: str, out: Path, context: Context) -> dict[str, Any]:
    """Write every domain of the study in every format into ``out`` and ``manifest.json``;
    answer the manifest. One pass over the subjects, one subject held at a time: its rows go
    to the Dataset-JSON and CSV files at once; each XPT file is then written from its
    Dataset-JSON file (pyreadstat needs a whole domain as one data frame)."""
    check_id(study_id, "studyId")
    export = study_export(study_id, context)
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
                for row in domain_rows(name, iter([subject])):
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
        "pseudonymization": PSEUDONYMIZATION,
        "created": context.now.isoformat(timespec="seconds"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
