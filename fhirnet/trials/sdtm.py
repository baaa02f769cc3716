"""CDISC SDTM tumour domains of one subject: TU, TR, RS and a minimal DM (``docs/trials.md``
"SDTM export"), as plain rows (variable name → value) from plain data; no I/O.

What is followed: the SDTMIG TU/TR/RS variable tables, the CDISC RECIST 1.1 disease-response
supplement (LDIAM for non-nodal and LPERP for nodal targets, TUMSTATE for non-targets, SUMDIAM
linked to RS through ``--LNKGRP``, "TOO SMALL TO MEASURE" kept as collected with 5 mm as the
standard value) and the shapes of pharmaversesdtm's ``tu_onco``, ``tr_onco`` and ``rs_onco``
(their variables, in their order, and their codelists).

Values fhirnet computed (the sum of diameters, every response) carry ``--DRVFL = "Y"`` (SDTMIG
findings-class Derived Flag); values the reader entered (sizes, states, lesions) do not.

The variable tables are in :mod:`fhirnet.trials.sdtm_domains`; the four row builders stay here
together (about 490 lines) because they share one subject's link ids, visit numbers and common
variables, and TR's ``SUMDIAM`` and RS must agree on their link groups.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

from fhirnet.criteria.models import Criteria, NonTargetStatus, Response
from fhirnet.trials.calendar import scheduled_visit, study_day
from fhirnet.trials.models import UNSCHEDULED, ScheduledVisit
from fhirnet.trials.sdtm_domains import DOMAINS

__all__ = [
    "INDEPENDENT_ASSESSOR",
    "INVESTIGATOR",
    "EvaluatorReads",
    "Exam",
    "NewLesionRead",
    "NonTargetRead",
    "Row",
    "SubjectData",
    "TargetRead",
    "domain_rows",
    "shifted",
    "visit_numbers",
    "without_dates",
]

#: A row: variable name → value (``""`` a missing character value, ``None`` a missing number).
Row = dict[str, str | int | float | None]

INVESTIGATOR: Final = "INVESTIGATOR"
INDEPENDENT_ASSESSOR: Final = "INDEPENDENT ASSESSOR"
#: The visit of the baseline scan (pharmaversesdtm ``tu_onco_recist``: SCREENING, VISITNUM 1).
BASELINE_VISIT: Final = "SCREENING"
#: The standard value of a target too small to measure (RECIST 1.1 §4.3.2; supplement row 30).
TOO_SMALL_MM: Final = Decimal(5)
TOO_SMALL_TEXT: Final = "TOO SMALL TO MEASURE"
#: XPT v5 holds at most 200 bytes per character value; every format gets the same values.
MAX_TEXT_BYTES: Final = 200

#: RSCAT (codelist C124298 where it has the criteria).
CATEGORIES: Final[Mapping[Criteria, str]] = {
    Criteria.RECIST_1_1: "RECIST 1.1",
    Criteria.IRECIST: "iRECIST",
    Criteria.CHOI: "CHOI",
    Criteria.PERCIST_1_0: "PERCIST",
}
_STATES: Final[Mapping[NonTargetStatus, str]] = {
    NonTargetStatus.PRESENT: "PRESENT",
    NonTargetStatus.ABSENT: "ABSENT",
    NonTargetStatus.PROGRESSION: "UNEQUIVOCAL PROGRESSION",
    NonTargetStatus.INCREASED: "INCREASED",
}


@dataclass(frozen=True, kw_only=True)
class TargetRead:
    """A target lesion as the reader measured it (``diameter_mm``: the short axis of a node)."""

    lesion_id: str
    location: str
    nodal: bool
    diameter_mm: Decimal | None
    too_small: bool = False


@dataclass(frozen=True, kw_only=True)
class NonTargetRead:
    lesion_id: str
    location: str
    status: NonTargetStatus


@dataclass(frozen=True, kw_only=True)
class NewLesionRead:
    lesion_id: str
    location: str
    equivocal: bool
    nodal: bool = False
    diameter_mm: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class Exam:
    """One evaluator's read of one exam: what the reader entered and what fhirnet computed
    (``sum_mm`` and the responses; all ``None`` when fhirnet wrote none)."""

    date: dt.date
    baseline: bool
    method: str
    targets: tuple[TargetRead, ...] = ()
    non_targets: tuple[NonTargetRead, ...] = ()
    new_lesions: tuple[NewLesionRead, ...] = ()
    sum_mm: Decimal | None = None
    overall: Response | None = None
    target_response: Response | None = None
    non_target_response: Response | None = None


@dataclass(frozen=True, kw_only=True)
class EvaluatorReads:
    """One evaluator's exams of the subject, in date order. ``evaluator_id`` is empty for the
    investigator; ``accepted`` is ``"Y"``/``"N"`` for central readers, empty otherwise."""

    evaluator: str
    evaluator_id: str
    accepted: str
    exams: tuple[Exam, ...]


@dataclass(frozen=True, kw_only=True)
class SubjectData:
    study_id: str
    subject_id: str
    site_id: str
    arm_code: str
    arm_name: str
    reference_date: dt.date
    criteria: Criteria
    schedule: tuple[ScheduledVisit, ...]
    reads: tuple[EvaluatorReads, ...]

    @property
    def usubjid(self) -> str:
        return f"{self.study_id}-{self.site_id}-{self.subject_id}"


def visit_numbers(
    baseline_dates: Sequence[dt.date],
    dates: Sequence[dt.date],
    reference_date: dt.date,
    schedule: Sequence[ScheduledVisit],
) -> dict[dt.date, tuple[float, str]]:
    """``VISITNUM`` and ``VISIT`` of each exam date: a baseline scan SCREENING (1), a date in
    a scheduled visit's window that visit (2, 3… in schedule order; the first date of a
    visit only), any other date unscheduled: the previous VISITNUM + .1, .2…
    ("UNSCHEDULED 2.1")."""
    found: dict[dt.date, tuple[float, str]] = {}
    used: set[str] = set()
    numbers = {entry.visit: index + 2 for index, entry in enumerate(schedule)}
    base, extra = 1, 0
    for date in sorted(set(dates) | set(baseline_dates)):
        if date in baseline_dates:
            found[date] = (1.0, BASELINE_VISIT)
            base, extra = 1, 0
            continue
        visit = scheduled_visit(study_day(date, reference_date), schedule)
        if visit != UNSCHEDULED and visit not in used:
            used.add(visit)
            base, extra = numbers[visit], 0
            found[date] = (float(base), visit)
            continue
        extra += 1
        number = f"{base}.{extra}"
        found[date] = (float(number), f"UNSCHEDULED {number}")
    return found


def _text(value: str) -> str:
    encoded = value.encode()
    if len(encoded) <= MAX_TEXT_BYTES:
        return value
    return encoded[:MAX_TEXT_BYTES].decode(errors="ignore")


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _link_ids(reads: EvaluatorReads) -> dict[tuple[str, str], str]:
    """``TULNKID`` of each (role, CRF lesion id): T01…, NT01…, NEW01… in order of first
    appearance in the evaluator's exams."""
    found: dict[tuple[str, str], str] = {}
    counts = {"T": 0, "NT": 0, "NEW": 0}

    def add(role: str, lesion_id: str) -> None:
        if (role, lesion_id) not in found:
            counts[role] += 1
            found[(role, lesion_id)] = f"{role}{counts[role]:02d}"

    for exam in reads.exams:
        for target in exam.targets:
            add("T", target.lesion_id)
        for non_target in exam.non_targets:
            add("NT", non_target.lesion_id)
        for new in exam.new_lesions:
            add("NEW", new.lesion_id)
    return found


def _link_group(reads: EvaluatorReads, number: int) -> str:
    """pharmaversesdtm's ``--LNKGRP``: ``A<n>`` for the investigator's n-th assessment,
    ``R<k>-A<n>`` for central reader k's (``RADIOLOGIST k``)."""
    if not reads.evaluator_id:
        return f"A{number}"
    last = reads.evaluator_id.rsplit(" ", 1)[-1]
    reader = f"R{last}" if last.isdigit() else reads.evaluator_id.replace(" ", "")
    return f"{reader}-A{number}"


class _Rows:
    """Rows of one domain of one subject, numbered ``--SEQ`` from 1."""

    def __init__(self, domain: str, subject: SubjectData) -> None:
        self.domain = DOMAINS[domain]
        self.subject = subject
        self.rows: list[Row] = []

    def add(self, values: Mapping[str, str | int | float | None]) -> None:
        row: Row = {}
        for column in self.domain.columns:
            value = values.get(column.name)
            if column.data_type in ("string", "date"):
                row[column.name] = _text(str(value)) if value is not None else ""
            else:
                row[column.name] = value
        row["STUDYID"] = self.subject.study_id
        row["DOMAIN"] = self.domain.name
        row["USUBJID"] = self.subject.usubjid
        row[f"{self.domain.name}SEQ"] = len(self.rows) + 1
        self.rows.append(row)


def _common(
    prefix: str,
    reads: EvaluatorReads,
    exam: Exam,
    visits: Mapping[dt.date, tuple[float, str]],
    reference: dt.date,
) -> dict[str, str | int | float | None]:
    number, visit = visits[exam.date]
    return {
        f"{prefix}EVAL": reads.evaluator,
        f"{prefix}EVALID": reads.evaluator_id,
        f"{prefix}ACPTFL": reads.accepted,
        "VISITNUM": number,
        "VISIT": visit,
        f"{prefix}DTC": exam.date.isoformat(),
        f"{prefix}DY": study_day(exam.date, reference),
    }


def _visits(subject: SubjectData) -> dict[dt.date, tuple[float, str]]:
    exams = [exam for reads in subject.reads for exam in reads.exams]
    return visit_numbers(
        [e.date for e in exams if e.baseline],
        [e.date for e in exams],
        subject.reference_date,
        subject.schedule,
    )


def tu_rows(subject: SubjectData) -> list[Row]:
    """One TUMIDENT row per lesion and evaluator, at the exam that first shows it."""
    out = _Rows("TU", subject)
    visits = _visits(subject)
    for reads in subject.reads:
        links = _link_ids(reads)
        seen: set[str] = set()
        for exam in reads.exams:
            lesions = [
                *(("T", "TARGET", t.lesion_id, t.location) for t in exam.targets),
                *(("NT", "NON-TARGET", n.lesion_id, n.location) for n in exam.non_targets),
                *(("NEW", "NEW", n.lesion_id, n.location) for n in exam.new_lesions),
            ]
            for role, result, lesion_id, location in lesions:
                link = links[(role, lesion_id)]
                if link in seen:
                    continue
                seen.add(link)
                out.add(
                    {
                        "TULNKID": link,
                        "TUTESTCD": "TUMIDENT",
                        "TUTEST": "Tumor Identification",
                        "TUORRES": result,
                        "TUSTRESC": result,
                        "TULOC": location,
                        "TUMETHOD": exam.method,
                        **_common("TU", reads, exam, visits, subject.reference_date),
                    }
                )
    return out.rows


def _size(value: Decimal | None, too_small: bool) -> dict[str, str | int | float | None]:
    if too_small:
        return {
            "TRORRES": TOO_SMALL_TEXT,
            "TRORRESU": "",
            "TRSTRESC": _number(TOO_SMALL_MM),
            "TRSTRESN": float(TOO_SMALL_MM),
            "TRSTRESU": "mm",
        }
    if value is None:
        return {"TRSTAT": "NOT DONE", "TRREASND": "NOT EVALUABLE"}
    return {
        "TRORRES": _number(value),
        "TRORRESU": "mm",
        "TRSTRESC": _number(value),
        "TRSTRESN": float(value),
        "TRSTRESU": "mm",
    }


def _state(status: NonTargetStatus) -> dict[str, str | int | float | None]:
    state = _STATES.get(status)
    if state is None:  # not evaluated
        return {"TRSTAT": "NOT DONE", "TRREASND": "NOT EVALUABLE"}
    return {"TRORRES": state, "TRSTRESC": state}


def tr_rows(subject: SubjectData) -> list[Row]:
    """Per evaluator and exam: each target's LDIAM (non-nodal) or LPERP (nodal), each
    non-target's and new lesion's TUMSTATE (and a new lesion's size when measured), and the
    SUMDIAM fhirnet computed (``TRDRVFL = "Y"``); all rows of an exam share ``TRLNKGRP``."""
    out = _Rows("TR", subject)
    visits = _visits(subject)
    for reads in subject.reads:
        links = _link_ids(reads)
        for number, exam in enumerate(reads.exams, start=1):
            common = {
                **_common("TR", reads, exam, visits, subject.reference_date),
                "TRLNKGRP": _link_group(reads, number),
                "TRMETHOD": exam.method,
            }
            for target in exam.targets:
                code, name = (
                    ("LPERP", "Longest Perpendicular")
                    if target.nodal
                    else ("LDIAM", "Longest Diameter")
                )
                out.add(
                    {
                        **common,
                        "TRGRPID": "TARGET",
                        "TRLNKID": links[("T", target.lesion_id)],
                        "TRTESTCD": code,
                        "TRTEST": name,
                        **_size(target.diameter_mm, target.too_small),
                    }
                )
            for non_target in exam.non_targets:
                out.add(
                    {
                        **common,
                        "TRGRPID": "NON-TARGET",
                        "TRLNKID": links[("NT", non_target.lesion_id)],
                        "TRTESTCD": "TUMSTATE",
                        "TRTEST": "Tumor State",
                        **_state(non_target.status),
                    }
                )
            for new in exam.new_lesions:
                link = links[("NEW", new.lesion_id)]
                state = "EQUIVOCAL" if new.equivocal else "UNEQUIVOCAL"
                out.add(
                    {
                        **common,
                        "TRGRPID": "NEW",
                        "TRLNKID": link,
                        "TRTESTCD": "TUMSTATE",
                        "TRTEST": "Tumor State",
                        "TRORRES": state,
                        "TRSTRESC": state,
                    }
                )
                if new.diameter_mm is not None:
                    code, name = (
                        ("LPERP", "Longest Perpendicular")
                        if new.nodal
                        else ("LDIAM", "Longest Diameter")
                    )
                    out.add(
                        {
                            **common,
                            "TRGRPID": "NEW",
                            "TRLNKID": link,
                            "TRTESTCD": code,
                            "TRTEST": name,
                            **_size(new.diameter_mm, False),
                        }
                    )
            if exam.targets:
                out.add(
                    {
                        **common,
                        "TRGRPID": "TARGET",
                        "TRTESTCD": "SUMDIAM",
                        "TRTEST": "Sum of Diameter",
                        "TRDRVFL": "Y",
                        **_size(exam.sum_mm, False),
                    }
                )
    return out.rows


_RS_TESTS: Final = (
    ("TRGRESP", "Target Response"),
    ("NTRGRESP", "Non-target Response"),
    ("NEWLIND", "New Lesion Indicator"),
    ("NEWLPROG", "New Lesion Progression"),
    ("OVRLRESP", "Overall Response"),
)


def rs_rows(subject: SubjectData) -> list[Row]:
    """Per evaluator and follow-up exam fhirnet assessed: TRGRESP, NTRGRESP, under iRECIST
    NEWLIND (Y/N, as pharmaversesdtm ``rs_onco_irecist``), NEWLPROG (when the reader recorded
    new lesions: UNEQUIVOCAL or EQUIVOCAL) and OVRLRESP, all computed by
    fhirnet (``RSDRVFL = "Y"``), ``RSCAT`` the study's criteria, ``RSLNKGRP`` = the exam's
    ``TRLNKGRP``."""
    out = _Rows("RS", subject)
    visits = _visits(subject)
    category = CATEGORIES[subject.criteria]
    for reads in subject.reads:
        for number, exam in enumerate(reads.exams, start=1):
            if exam.overall is None:
                continue
            new: str | None = None
            if exam.new_lesions:
                equivocal = all(n.equivocal for n in exam.new_lesions)
                new = "EQUIVOCAL" if equivocal else "UNEQUIVOCAL"
            values: dict[str, str | None] = {
                "TRGRESP": exam.target_response,
                "NTRGRESP": exam.non_target_response,
                "NEWLIND": (
                    ("Y" if exam.new_lesions else "N")
                    if subject.criteria is Criteria.IRECIST
                    else None
                ),
                "NEWLPROG": new,
                "OVRLRESP": exam.overall,
            }
            common = {
                **_common("RS", reads, exam, visits, subject.reference_date),
                "RSLNKGRP": _link_group(reads, number),
                "RSCAT": category,
                "RSDRVFL": "Y",
            }
            for code, name in _RS_TESTS:
                value = values[code]
                if value is None:
                    continue
                out.add(
                    {
                        **common,
                        "RSTESTCD": code,
                        "RSTEST": name,
                        "RSORRES": str(value),
                        "RSSTRESC": str(value),
                    }
                )
    return out.rows


def dm_rows(subject: SubjectData) -> list[Row]:
    """The subject's DM row: identifiers, site, planned arm, reference start date."""
    row: Row = {
        "STUDYID": subject.study_id,
        "DOMAIN": "DM",
        "USUBJID": subject.usubjid,
        "SUBJID": subject.subject_id,
        "RFSTDTC": subject.reference_date.isoformat(),
        "SITEID": subject.site_id,
        "ARMCD": subject.arm_code,
        "ARM": _text(subject.arm_name),
    }
    return [row]


_BUILDERS: Final = {"TU": tu_rows, "TR": tr_rows, "RS": rs_rows, "DM": dm_rows}


def shifted(subject: SubjectData, days: int) -> SubjectData:
    """The subject with its reference date and every exam date moved by ``days``: every
    ``--DTC`` and ``RFSTDTC`` moves by the same days, so every ``--DY``, visit and interval is
    unchanged (the pseudonymized export's one offset per patient, ``docs/trials.md``)."""
    delta = dt.timedelta(days=days)
    return replace(
        subject,
        reference_date=subject.reference_date + delta,
        reads=tuple(
            replace(reads, exams=tuple(replace(e, date=e.date + delta) for e in reads.exams))
            for reads in subject.reads
        ),
    )


def without_dates(row: Row) -> Row:
    """The row with its dates (``--DTC``, ``RFSTDTC``) emptied; ``--DY`` stays (the study-day
    regime: the study day is the only time left)."""
    return {name: "" if name.endswith("DTC") else value for name, value in row.items()}


def domain_rows(domain: str, subjects: Iterator[SubjectData]) -> Iterator[Row]:
    """The rows of ``domain`` for each subject in turn (one subject's data at a time)."""
    build = _BUILDERS[domain]
    for subject in subjects:
        yield from build(subject)
