"""SDTM datasets as files (``docs/trials.md`` "SDTM export"): CDISC Dataset-JSON v1.1 and CSV,
written row by row, and SAS XPORT v5 through pyreadstat (which needs the whole dataset as one
data frame: the only writer that holds every row).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import pandas as pd
import pyreadstat

from fhirnet import __version__
from fhirnet.trials.sdtm import Domain, Row

__all__ = [
    "CONTENT_TYPES",
    "DATASET_JSON_VERSION",
    "csv_chunks",
    "dataset_json_chunks",
    "write_xpt",
]

DATASET_JSON_VERSION: Final = "1.1.0"
CONTENT_TYPES: Final = {
    "json": "application/json",
    "xpt": "application/x-sas-xport",
    "csv": "text/csv",
}


def dataset_json_chunks(
    domain: Domain, rows: Iterable[Row], *, study_id: str, created: dt.datetime
) -> Iterator[str]:
    """The dataset as Dataset-JSON v1.1 text, in chunks: the metadata, one chunk per row, then
    ``records`` (the count is known only at the end; JSON member order does not matter)."""
    head = {
        "datasetJSONCreationDateTime": created.isoformat(timespec="seconds"),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"fhirnet.{study_id}.{domain.name}",
        "originator": "fhirnet",
        "sourceSystem": {"name": "fhirnet", "version": __version__},
        "studyOID": study_id,
        "itemGroupOID": f"IG.{domain.name}",
        "name": domain.name,
        "label": domain.label,
        "columns": [
            {
                "itemOID": f"IT.{domain.name}.{c.name}",
                "name": c.name,
                "label": c.label,
                "dataType": c.data_type,
                **({"keySequence": k + 1} if k < 3 else {}),
            }
            for k, c in enumerate(domain.columns)
        ],
    }
    text = json.dumps(head, ensure_ascii=False)
    yield text[:-1] + ', "rows": ['
    count = 0
    for row in rows:
        values = [None if row[c.name] == "" else row[c.name] for c in domain.columns]
        yield ("," if count else "") + json.dumps(values, ensure_ascii=False)
        count += 1
    yield f'], "records": {count}}}'


def csv_chunks(domain: Domain, rows: Iterable[Row]) -> Iterator[str]:
    """The dataset as CSV (header = variable names), one chunk per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(domain.names)
    for row in rows:
        writer.writerow(["" if row[c.name] is None else row[c.name] for c in domain.columns])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def write_xpt(domain: Domain, rows: Iterable[Row], path: Path) -> None:
    """The dataset as a SAS XPORT version 5 file (8-character names, 40-character labels,
    character values of at most 200 bytes — what :mod:`fhirnet.trials.sdtm` produces)."""
    columns = {c.name: [] for c in domain.columns}  # type: dict[str, list[object]]
    for row in rows:
        for name, values in columns.items():
            values.append(row[name])
    frame = pd.DataFrame(columns)
    for column in domain.columns:
        if column.data_type in ("string", "date"):
            frame[column.name] = frame[column.name].astype(object)
        else:
            frame[column.name] = pd.to_numeric(frame[column.name]).astype("float64")
    pyreadstat.write_xport(
        frame,
        str(path),
        file_label=domain.label,
        column_labels=[c.label for c in domain.columns],
        table_name=domain.name,
        file_format_version=5,
    )
