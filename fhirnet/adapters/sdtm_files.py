"""SDTM datasets as files (``docs/trials.md`` "SDTM export"): CDISC Dataset-JSON v1.1 and CSV,
written row by row, and SAS XPORT v5 through pyreadstat (which needs the whole dataset as one
data frame: the only writer that holds every row of a domain).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, TextIO

import pandas as pd
import pyreadstat

from fhirnet import __version__
from fhirnet.trials.sdtm import Row
from fhirnet.trials.sdtm_domains import Domain

__all__ = [
    "CONTENT_TYPES",
    "DATASET_JSON_VERSION",
    "csv_chunks",
    "dataset_json_chunks",
    "write_xpt",
]

DATASET_JSON_VERSION: Final = "1.1.0"
#: STUDYID, DOMAIN, USUBJID: the key variables every domain starts with.
_KEYS: Final = 3
CONTENT_TYPES: Final = {
    "json": "application/json",
    "xpt": "application/x-sas-xport",
    "csv": "text/csv",
}


class DatasetJsonWriter:
    """Dataset-JSON v1.1 text written to ``out`` as rows come: the metadata first, each row as
    it is given, ``records`` at :meth:`close` (the count is known only at the end; JSON member
    order does not matter)."""

    def __init__(self, out: TextIO, domain: Domain, *, study_id: str, created: dt.datetime) -> None:
        self.out = out
        self.domain = domain
        self.count = 0
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
                    **({"keySequence": k + 1} if k < _KEYS else {}),
                }
                for k, c in enumerate(domain.columns)
            ],
        }
        out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "rows": [')

    def write(self, row: Row) -> None:
        values = [None if row[c.name] == "" else row[c.name] for c in self.domain.columns]
        self.out.write(("," if self.count else "") + json.dumps(values, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self.out.write(f'], "records": {self.count}}}')


class CsvWriter:
    """CSV (header = variable names; missing values empty) written to ``out`` as rows come."""

    def __init__(self, out: TextIO, domain: Domain) -> None:
        self.domain = domain
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow(domain.names)

    def write(self, row: Row) -> None:
        self.writer.writerow(
            ["" if row[c.name] is None else row[c.name] for c in self.domain.columns]
        )


def dataset_json_chunks(
    domain: Domain, rows: Iterable[Row], *, study_id: str, created: dt.datetime
) -> Iterator[str]:
    """The dataset as Dataset-JSON v1.1 text, one chunk per row (:class:`DatasetJsonWriter`)."""
    buffer = io.StringIO()
    writer = DatasetJsonWriter(buffer, domain, study_id=study_id, created=created)
    for row in rows:
        writer.write(row)
        yield _drain(buffer)
    writer.close()
    yield _drain(buffer)


def csv_chunks(domain: Domain, rows: Iterable[Row]) -> Iterator[str]:
    """The dataset as CSV, one chunk per row (:class:`CsvWriter`)."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer, domain)
    for row in rows:
        writer.write(row)
        yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def read_dataset_json_rows(path: Path) -> Iterator[Row]:
    """The rows of a Dataset-JSON file fhirnet wrote, as :data:`Row` (missing strings ``""``)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    columns = document["columns"]
    for values in document["rows"]:
        yield {
            c["name"]: ("" if v is None and c["dataType"] in ("string", "date") else v)
            for c, v in zip(columns, values, strict=True)
        }


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
