"""The variables of the SDTM tumour domains fhirnet exports — TU, TR, RS and a minimal DM — with
their names (8 characters at most), labels (40 at most) and Dataset-JSON types, in the order of
pharmaversesdtm's ``tu_onco``, ``tr_onco``, ``rs_onco`` and ``dm`` (``docs/trials.md`` "SDTM
export"). A table, kept apart from the row mapping (:mod:`fhirnet.trials.sdtm`) so that the
writers and tests can read it alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["DOMAINS", "Column", "Domain"]


@dataclass(frozen=True, kw_only=True)
class Column:
    """One variable: name (≤ 8), label (≤ 40), Dataset-JSON ``dataType``."""

    name: str
    label: str
    data_type: str = "string"


@dataclass(frozen=True, kw_only=True)
class Domain:
    name: str
    label: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, label: str, data_type: str = "string") -> Column:
    return Column(name=name, label=label, data_type=data_type)


_HEAD = (_c("STUDYID", "Study Identifier"), _c("DOMAIN", "Domain Abbreviation"))
_USUBJID = _c("USUBJID", "Unique Subject Identifier")


def _timing(prefix: str) -> tuple[Column, ...]:
    return (
        _c("VISITNUM", "Visit Number", "double"),
        _c("VISIT", "Visit Name"),
        _c(f"{prefix}DTC", "Date/Time of Tumor Measurement", "date"),
        _c(f"{prefix}DY", "Study Day of Tumor Measurement", "integer"),
    )


def _evaluator(prefix: str) -> tuple[Column, ...]:
    return (
        _c(f"{prefix}EVAL", "Evaluator"),
        _c(f"{prefix}EVALID", "Evaluator Identifier"),
        _c(f"{prefix}ACPTFL", "Accepted Record Flag"),
    )


DOMAINS: Final[Mapping[str, Domain]] = {
    "TU": Domain(
        name="TU",
        label="Tumor/Lesion Identification",
        columns=(
            *_HEAD,
            _USUBJID,
            _c("TUSEQ", "Sequence Number", "integer"),
            _c("TULNKID", "Link ID"),
            _c("TUTESTCD", "Tumor/Lesion ID Short Name"),
            _c("TUTEST", "Tumor/Lesion ID Test Name"),
            _c("TUORRES", "Tumor/Lesion ID Result"),
            _c("TUSTRESC", "Tumor/Lesion ID Result Std. Format"),
            _c("TULOC", "Location of the Tumor/Lesion"),
            _c("TUMETHOD", "Method of Identification"),
            *_evaluator("TU"),
            *_timing("TU"),
        ),
    ),
    "TR": Domain(
        name="TR",
        label="Tumor/Lesion Results",
        columns=(
            *_HEAD,
            _USUBJID,
            _c("TRSEQ", "Sequence Number", "integer"),
            _c("TRGRPID", "Group ID"),
            _c("TRLNKGRP", "Link Group ID"),
            _c("TRLNKID", "Link ID"),
            _c("TRTESTCD", "Tumor/Lesion Assessment Short Name"),
            _c("TRTEST", "Tumor/Lesion Assessment Test Name"),
            _c("TRORRES", "Result or Finding in Original Units"),
            _c("TRORRESU", "Original Units"),
            _c("TRSTRESC", "Character Result/Finding in Std Format"),
            _c("TRSTRESN", "Numeric Result/Finding in Standard Units", "double"),
            _c("TRSTRESU", "Standard Units"),
            _c("TRSTAT", "Completion Status"),
            _c("TRREASND", "Reason Not Done"),
            _c("TRMETHOD", "Method Used to Identify the Tumor/Lesion"),
            *_evaluator("TR"),
            _c("TRDRVFL", "Derived Flag"),
            *_timing("TR"),
        ),
    ),
    "RS": Domain(
        name="RS",
        label="Disease Response and Clin Classification",
        columns=(
            *_HEAD,
            _USUBJID,
            _c("RSSEQ", "Sequence Number", "integer"),
            _c("RSLNKGRP", "Link Group ID"),
            _c("RSTESTCD", "Assessment Short Name"),
            _c("RSTEST", "Assessment Name"),
            _c("RSCAT", "Category for Assessment"),
            _c("RSORRES", "Result or Finding in Original Units"),
            _c("RSSTRESC", "Character Result/Finding in Std Format"),
            _c("RSSTAT", "Completion Status"),
            _c("RSREASND", "Reason Not Done"),
            *_evaluator("RS"),
            _c("RSDRVFL", "Derived Flag"),
            _c("VISITNUM", "Visit Number", "double"),
            _c("VISIT", "Visit Name"),
            _c("RSDTC", "Date/Time of Assessment", "date"),
            _c("RSDY", "Study Day of Assessment", "integer"),
        ),
    ),
    "DM": Domain(
        name="DM",
        label="Demographics",
        columns=(
            *_HEAD,
            _USUBJID,
            _c("SUBJID", "Subject Identifier for the Study"),
            _c("RFSTDTC", "Subject Reference Start Date/Time", "date"),
            _c("SITEID", "Study Site Identifier"),
            _c("ARMCD", "Planned Arm Code"),
            _c("ARM", "Description of Planned Arm"),
        ),
    ),
}
