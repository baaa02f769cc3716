"""The pure SDTM row mapping (``fhirnet.trials.sdtm``) on cases the trial scenario lacks: a
target too small to measure, non-target states, a measured new lesion, iRECIST, visit numbers of
unscheduled scans, the 200-byte cut and the XPT v5 name and label limits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fhirnet.criteria.models import Criteria, NonTargetStatus, Response
from fhirnet.trials.models import ScheduledVisit
from fhirnet.trials.sdtm import (
    EvaluatorReads,
    Exam,
    NewLesionRead,
    NonTargetRead,
    SubjectData,
    TargetRead,
    domain_rows,
    shifted,
    visit_numbers,
    without_dates,
)
from fhirnet.trials.sdtm_domains import DOMAINS

REFERENCE = dt.date(2025, 1, 14)
SCHEDULE = (
    ScheduledVisit(visit="WEEK 8", day=57, window_days=7),
    ScheduledVisit(visit="WEEK 16", day=113, window_days=7),
)


def subject(*exams: Exam, criteria: Criteria = Criteria.IRECIST) -> SubjectData:
    reads = EvaluatorReads(
        evaluator="INDEPENDENT ASSESSOR", evaluator_id="RADIOLOGIST 2", accepted="Y", exams=exams
    )
    return SubjectData(
        study_id="S1",
        subject_id="0001",
        site_id="010",
        arm_code="A",
        arm_name="x" * 300,
        reference_date=REFERENCE,
        criteria=criteria,
        schedule=SCHEDULE,
        reads=(reads,),
    )


BASELINE = Exam(
    date=dt.date(2025, 1, 10),
    baseline=True,
    method="MRI",
    targets=(
        TargetRead(lesion_id="L7", location="LIVER", nodal=False, diameter_mm=Decimal("12.5")),
        TargetRead(lesion_id="N1", location="LYMPH NODE", nodal=True, diameter_mm=Decimal(16)),
    ),
    non_targets=(NonTargetRead(lesion_id="B1", location="BONE", status=NonTargetStatus.PRESENT),),
    sum_mm=Decimal("28.5"),
)
FOLLOW_UP = Exam(
    date=dt.date(2025, 4, 1),  # day 78: no visit's window
    baseline=False,
    method="MRI",
    targets=(
        TargetRead(lesion_id="L7", location="LIVER", nodal=False, diameter_mm=None, too_small=True),
        TargetRead(lesion_id="N1", location="LYMPH NODE", nodal=True, diameter_mm=Decimal(9)),
    ),
    non_targets=(NonTargetRead(lesion_id="B1", location="BONE", status=NonTargetStatus.INCREASED),),
    new_lesions=(
        NewLesionRead(lesion_id="X", location="LUNG", equivocal=False, diameter_mm=Decimal(11)),
    ),
    sum_mm=Decimal(14),
    overall=Response.IUPD,
    target_response=Response.IPR,
    non_target_response=Response.NON_ICR_NON_IUPD,
)


def test_too_small_keeps_the_text_with_5_mm_and_nodes_are_lperp() -> None:
    rows = list(domain_rows("TR", iter([subject(BASELINE, FOLLOW_UP)])))
    small = next(r for r in rows if r["TRORRES"] == "TOO SMALL TO MEASURE")
    assert (small["TRTESTCD"], small["TRSTRESC"], small["TRSTRESN"]) == ("LDIAM", "5", 5.0)
    assert small["TRSTRESU"] == "mm"
    assert small["TRLNKID"] == "T01"
    node = [r for r in rows if r["TRLNKID"] == "T02"]
    assert [(r["TRTESTCD"], r["TRORRES"]) for r in node] == [("LPERP", "16"), ("LPERP", "9")]
    first = next(r for r in rows if r["TRLNKID"] == "T01")
    assert first["TRORRES"] == "12.5"
    increased = [r["TRORRES"] for r in rows if r["TRLNKID"] == "NT01"]
    assert increased == ["PRESENT", "INCREASED"]
    new = [(r["TRTESTCD"], r["TRORRES"]) for r in rows if r["TRLNKID"] == "NEW01"]
    assert new == [("TUMSTATE", "UNEQUIVOCAL"), ("LDIAM", "11")]
    sums = [
        (r["TRSTRESN"], r["TRDRVFL"], r["TRLNKGRP"]) for r in rows if r["TRTESTCD"] == "SUMDIAM"
    ]
    assert sums == [(28.5, "Y", "R2-A1"), (14.0, "Y", "R2-A2")]
    assert {r["TRMETHOD"] for r in rows} == {"MRI"}


def test_irecist_responses_and_the_unscheduled_visit() -> None:
    rows = list(domain_rows("RS", iter([subject(BASELINE, FOLLOW_UP)])))
    assert [(r["RSTESTCD"], r["RSORRES"]) for r in rows] == [
        ("TRGRESP", "iPR"),
        ("NTRGRESP", "NON-iCR/NON-iUPD"),
        ("NEWLIND", "Y"),
        ("NEWLPROG", "UNEQUIVOCAL"),
        ("OVRLRESP", "iUPD"),
    ]
    assert {(r["RSCAT"], r["VISITNUM"], r["VISIT"], r["RSDY"]) for r in rows} == {
        ("iRECIST", 1.1, "UNSCHEDULED 1.1", 78)
    }
    assert [r["RSSEQ"] for r in rows] == [1, 2, 3, 4, 5]


def test_tu_rows_and_the_200_byte_cut() -> None:
    data = subject(BASELINE, FOLLOW_UP)
    rows = list(domain_rows("TU", iter([data])))
    assert [(r["TULNKID"], r["TUORRES"], r["VISIT"], r["TUDY"]) for r in rows] == [
        ("T01", "TARGET", "SCREENING", -4),
        ("T02", "TARGET", "SCREENING", -4),
        ("NT01", "NON-TARGET", "SCREENING", -4),
        ("NEW01", "NEW", "UNSCHEDULED 1.1", 78),
    ]
    (dm,) = domain_rows("DM", iter([data]))
    assert dm["USUBJID"] == "S1-010-0001"
    assert len(str(dm["ARM"]).encode()) == 200


def test_visit_numbers_count_unscheduled_scans_after_the_previous_visit() -> None:
    dates = [dt.date(2025, 1, 13), dt.date(2025, 3, 11), dt.date(2025, 3, 12), dt.date(2025, 4, 1)]
    found = visit_numbers([dates[0]], dates, REFERENCE, SCHEDULE)
    assert [found[d] for d in dates] == [
        (1.0, "SCREENING"),
        (2.0, "WEEK 8"),
        (2.1, "UNSCHEDULED 2.1"),  # in WEEK 8's window, but WEEK 8 has its scan
        (2.2, "UNSCHEDULED 2.2"),
    ]


def test_names_and_labels_fit_sas_xport_version_5() -> None:
    for domain in DOMAINS.values():
        for column in domain.columns:
            assert len(column.name) <= 8, column
            assert len(column.label) <= 40, column


def test_a_shifted_subject_moves_every_date_by_the_same_days_and_keeps_every_study_day() -> None:
    before = subject(BASELINE, FOLLOW_UP)
    after = shifted(before, -123)
    for domain in DOMAINS:
        rows_before = list(domain_rows(domain, iter([before])))
        rows_after = list(domain_rows(domain, iter([after])))
        assert len(rows_before) == len(rows_after) > 0
        for old, new in zip(rows_before, rows_after, strict=True):
            for name, value in old.items():
                if name.endswith("DTC"):
                    moved = dt.date.fromisoformat(str(value)) - dt.timedelta(days=123)
                    assert new[name] == moved.isoformat()
                else:
                    assert new[name] == value, name  # --DY, VISIT, VISITNUM unchanged


def test_without_dates_empties_dtc_and_keeps_dy() -> None:
    (row,) = [r for r in domain_rows("TR", iter([subject(BASELINE)])) if r["TRTESTCD"] == "SUMDIAM"]
    blank = without_dates(row)
    assert blank["TRDTC"] == ""
    assert blank["TRDY"] == row["TRDY"] == -4
    (dm,) = domain_rows("DM", iter([subject(BASELINE)]))
    assert without_dates(dm)["RFSTDTC"] == ""
