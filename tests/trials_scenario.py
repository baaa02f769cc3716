"""A multicenter trial, end to end, as one table: the study, its eight subjects and each reader's
scans, what the endpoints must say about them (worked by hand, below), and :func:`run` which
plays it through fhirnet's HTTP API on whichever store the app works on (the embedded store in
``tests/web/test_trial_scenario.py``, the real FHIR server in
``tests/integration/test_trial_scenario.py``).

**The study.** RECIST 1.1, confirmation required (``confirmationMinDays`` 28), SD at least 42
days after the reference date (``sdMinDays``), at most one NE between a response and its
confirmation (``maxNeBetween``). Two arms (A 177Lu-DOTATATE, B everolimus), two sites (001
Uppsala, 002 Berlin). Readers: two central radiologists (``RADIOLOGIST 1``, ``RADIOLOGIST 2``) and
an adjudicator. The site's reads are authored by the site radiologist
``Practitioner/reader-nuclear-radiology`` (the examples' author), whom the study does not name:
they are the ``INVESTIGATOR``'s reads.

**Every subject**: reference date (study day 1) 2025-01-14, baseline scan 2025-01-13 (day -1);
follow-ups on the schedule's WEEK 8 2025-03-11 (day 57: 17 days left of January + 28 + 11 = 56
days after the reference date, + 1), WEEK 16 2025-05-06 (day 113: 56 + 17 + 30 + 6 = 112, + 1) and
WEEK 24 2025-07-01 (day 169: 112 + 25 + 31 = 168, + 1); one subject has an early scan on
2025-02-11 (day 29: 17 + 11 = 28, + 1).

**A scan** is the sizes of the three targets of the RECIST example (T1 liver, T2 liver, T3 a
lymph node's short axis, mm; ``None``: not measured), its two non-targets present, and
optionally an unequivocal new liver lesion. The form is the example's baseline or follow-up form
with these answers, without the reader's own conclusion. RECIST 1.1 §4.3.1: PR is a sum at
least 30 % below the baseline's; PD a sum at least 20 % and 5 mm above the nadir (the smallest
sum so far, the baseline included), or a new lesion; a target not measured makes the target
response, and so the visit, NE (§4.3.4).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flask.testing import FlaskClient

from fhirnet.ports import FhirStore, Json
from tests.submissions import RECIST, bundle_of, form, items, set_answer, target

SITE_READER = "Practitioner/reader-nuclear-radiology"
CENTRAL_1 = "Practitioner/central-reader-1"
CENTRAL_2 = "Practitioner/central-reader-2"
ADJUDICATOR = "Practitioner/adjudicator-1"
REFERENCE_DATE = "2025-01-14"
BASELINE = "2025-01-13"
DAY_29 = "2025-02-11"
WEEK_8 = "2025-03-11"
WEEK_16 = "2025-05-06"
WEEK_24 = "2025-07-01"
WITHDRAWAL = "2025-06-01"

STUDY: Json = {
    "title": "NET multicenter trial scenario",
    "criteria": "recist-1.1",
    "options": {
        "confirmationRequired": True,
        "confirmationMinDays": 28,
        "sdMinDays": 42,
        "maxNeBetween": 1,
    },
    "arms": [{"code": "A", "name": "177Lu-DOTATATE"}, {"code": "B", "name": "Everolimus"}],
    "sites": [{"id": "001", "name": "Uppsala"}, {"id": "002", "name": "Berlin"}],
    "readers": [
        {"reference": CENTRAL_1, "role": "central", "label": "RADIOLOGIST 1"},
        {"reference": CENTRAL_2, "role": "central", "label": "RADIOLOGIST 2"},
        {"reference": ADJUDICATOR, "role": "adjudicator", "label": "ADJUDICATOR 1"},
    ],
    "schedule": [
        {"visit": "WEEK 8", "day": 57, "windowDays": 7},
        {"visit": "WEEK 16", "day": 113, "windowDays": 7},
        {"visit": "WEEK 24", "day": 169, "windowDays": 7},
    ],
}


@dataclass(frozen=True)
class Scan:
    """One reader's measurements of one exam."""

    date: str
    sizes: tuple[float | None, float | None, float | None]
    new_lesion: bool = False

    @property
    def total(self) -> float:
        return sum(s for s in self.sizes if s is not None)


def scan(
    date: str, t1: float | None, t2: float | None, t3: float | None, *, new: bool = False
) -> Scan:
    return Scan(date, (t1, t2, t3), new)


#: The common baseline: 50 + 30 + 20 = 100 mm.
BL = scan(BASELINE, 50, 30, 20)


@dataclass(frozen=True)
class Expected:
    """What one evaluation of a subject must say (``None``: no date / not applicable)."""

    bor: str
    confirmed_bor: str
    confirmed_bor_date: str | None
    progression: str | None
    pfs_days: int
    pfs_event: bool
    censoring: str | None


@dataclass(frozen=True)
class Subject:
    number: str
    story: str
    site: str
    arm: str
    #: The reads of each reader: the site's, RADIOLOGIST 1's, RADIOLOGIST 2's; the baseline first.
    site_reads: tuple[Scan, ...]
    central_1: tuple[Scan, ...]
    central_2: tuple[Scan, ...]
    #: Per evaluator (INVESTIGATOR, RADIOLOGIST 1, RADIOLOGIST 2, CENTRAL).
    expected: Mapping[str, Expected]
    central_basis: str = "AGREEMENT"
    withdrawn: str | None = None
    adjudicate: str | None = None  # the label the adjudicator accepts

    @property
    def readers(self) -> tuple[tuple[str, tuple[Scan, ...]], ...]:
        return (
            (SITE_READER, self.site_reads),
            (CENTRAL_1, self.central_1),
            (CENTRAL_2, self.central_2),
        )


def same(expected: Expected) -> dict[str, Expected]:
    """The same endpoints for every evaluator."""
    return dict.fromkeys(("INVESTIGATOR", "RADIOLOGIST 1", "RADIOLOGIST 2", "CENTRAL"), expected)


# -- the subjects ------------------------------------------------------------------------------

CONFIRMED_PR_READS = (BL, scan(WEEK_8, 30, 20, 15), scan(WEEK_16, 28, 18, 14))

SUBJECTS: tuple[Subject, ...] = (
    Subject(
        number="001-01",
        story="Confirmed PR, censored PFS: every reader sees 100 -> 65 (-35 %, PR) -> 60 (-40 %, "
        "PR). The PR of WEEK 8 is confirmed by the PR 56 days later (>= 28). No progression: PFS "
        "censored at the last adequate assessment 2025-05-06, day 113.",
        site="001",
        arm="A",
        site_reads=CONFIRMED_PR_READS,
        central_1=CONFIRMED_PR_READS,
        central_2=CONFIRMED_PR_READS,
        expected=same(Expected("PR", "PR", WEEK_8, None, 113, False, "LAST ADEQUATE ASSESSMENT")),
    ),
    Subject(
        number="001-02",
        story="Unconfirmed PR: 100 -> 65 (PR) -> 80 (+15 mm = +23 % over the 65 mm nadir: PD). "
        "The PR is never confirmed: BOR PR, confirmed BOR SD (the PR at day 57 >= 42 counts as "
        "SD). PFS event at 2025-05-06: day 113.",
        site="001",
        arm="A",
        site_reads=(BL, scan(WEEK_8, 30, 20, 15), scan(WEEK_16, 40, 25, 15)),
        central_1=(BL, scan(WEEK_8, 30, 20, 15), scan(WEEK_16, 40, 25, 15)),
        central_2=(BL, scan(WEEK_8, 30, 20, 15), scan(WEEK_16, 40, 25, 15)),
        expected=same(Expected("PR", "SD", WEEK_8, WEEK_16, 113, True, None)),
    ),
    Subject(
        number="002-01",
        story="PR confirmed across one NE: 100 -> 65 (PR) -> T2 not measured (NE) -> 60 (PR, "
        "112 days later). One NE between (maxNeBetween 1): confirmed PR of WEEK 8. PFS censored "
        "at the last adequate assessment 2025-07-01, day 169.",
        site="002",
        arm="A",
        site_reads=(
            BL,
            scan(WEEK_8, 30, 20, 15),
            scan(WEEK_16, 30, None, 15),
            scan(WEEK_24, 28, 18, 14),
        ),
        central_1=(
            BL,
            scan(WEEK_8, 30, 20, 15),
            scan(WEEK_16, 30, None, 15),
            scan(WEEK_24, 28, 18, 14),
        ),
        central_2=(
            BL,
            scan(WEEK_8, 30, 20, 15),
            scan(WEEK_16, 30, None, 15),
            scan(WEEK_24, 28, 18, 14),
        ),
        expected=same(Expected("PR", "PR", WEEK_8, None, 169, False, "LAST ADEQUATE ASSESSMENT")),
    ),
    Subject(
        number="002-02",
        story="SD too early: the only follow-up, 2025-02-11 (day 29), is 92 mm (-8 %, SD) but SD "
        "needs day >= 42: BOR NE, no disease control (a non-responder in the denominator). PFS "
        "censored at that adequate assessment: day 29.",
        site="002",
        arm="A",
        site_reads=(BL, scan(DAY_29, 45, 28, 19)),
        central_1=(BL, scan(DAY_29, 45, 28, 19)),
        central_2=(BL, scan(DAY_29, 45, 28, 19)),
        expected=same(Expected("NE", "NE", None, None, 29, False, "LAST ADEQUATE ASSESSMENT")),
    ),
    Subject(
        number="001-03",
        story="PD by a new lesion: 100 -> 92 (SD, day 57) -> 92 with a new liver lesion (PD). "
        "BOR SD, progression 2025-05-06: PFS event, day 113.",
        site="001",
        arm="B",
        site_reads=(BL, scan(WEEK_8, 45, 28, 19), scan(WEEK_16, 45, 28, 19, new=True)),
        central_1=(BL, scan(WEEK_8, 45, 28, 19), scan(WEEK_16, 45, 28, 19, new=True)),
        central_2=(BL, scan(WEEK_8, 45, 28, 19), scan(WEEK_16, 45, 28, 19, new=True)),
        expected=same(Expected("SD", "SD", WEEK_8, WEEK_16, 113, True, None)),
    ),
    Subject(
        number="001-04",
        story="The central readers disagree, adjudicated: RADIOLOGIST 1 (and the site) 100 -> 65 "
        "-> 60, confirmed PR; RADIOLOGIST 2 100 -> 84 (-16 %) -> 80 (-20 %), SD. The adjudicator "
        "accepts RADIOLOGIST 1: CENTRAL is a confirmed PR. PFS censored at day 113.",
        site="001",
        arm="B",
        site_reads=CONFIRMED_PR_READS,
        central_1=CONFIRMED_PR_READS,
        central_2=(BL, scan(WEEK_8, 40, 26, 18), scan(WEEK_16, 38, 25, 17)),
        expected={
            "INVESTIGATOR": Expected(
                "PR", "PR", WEEK_8, None, 113, False, "LAST ADEQUATE ASSESSMENT"
            ),
            "RADIOLOGIST 1": Expected(
                "PR", "PR", WEEK_8, None, 113, False, "LAST ADEQUATE ASSESSMENT"
            ),
            "RADIOLOGIST 2": Expected(
                "SD", "SD", WEEK_8, None, 113, False, "LAST ADEQUATE ASSESSMENT"
            ),
            "CENTRAL": Expected("PR", "PR", WEEK_8, None, 113, False, "LAST ADEQUATE ASSESSMENT"),
        },
        central_basis="ADJUDICATION",
        adjudicate="RADIOLOGIST 1",
    ),
    Subject(
        number="002-03",
        story="Withdrawn mid-study on 2025-06-01: 100 -> 92 (SD) -> 90 (SD); the site's WEEK 24 "
        "scan (110 mm, PD) is after the withdrawal and ignored. BOR SD; PFS censored at "
        "withdrawal, at the last adequate assessment before it, 2025-05-06: day 113.",
        site="002",
        arm="B",
        site_reads=(
            BL,
            scan(WEEK_8, 45, 28, 19),
            scan(WEEK_16, 44, 27, 19),
            scan(WEEK_24, 60, 30, 20),
        ),
        central_1=(BL, scan(WEEK_8, 45, 28, 19), scan(WEEK_16, 44, 27, 19)),
        central_2=(BL, scan(WEEK_8, 45, 28, 19), scan(WEEK_16, 44, 27, 19)),
        expected=same(Expected("SD", "SD", WEEK_8, None, 113, False, "WITHDRAWAL")),
        withdrawn=WITHDRAWAL,
    ),
    Subject(
        number="002-04",
        story="Early PD centrally, later at the site: the central readers see 100 -> 122 (+22 %, "
        "+22 mm: PD at day 57, PFS event day 57); the site read 114 (+14 %, SD) then 126 (+26 %: "
        "PD at day 113). Independent streams: neither changes the other.",
        site="002",
        arm="B",
        site_reads=(BL, scan(WEEK_8, 58, 34, 22), scan(WEEK_16, 64, 38, 24)),
        central_1=(BL, scan(WEEK_8, 62, 36, 24)),
        central_2=(BL, scan(WEEK_8, 62, 36, 24)),
        expected={
            "INVESTIGATOR": Expected("SD", "SD", WEEK_8, WEEK_16, 113, True, None),
            "RADIOLOGIST 1": Expected("PD", "PD", WEEK_8, WEEK_8, 57, True, None),
            "RADIOLOGIST 2": Expected("PD", "PD", WEEK_8, WEEK_8, 57, True, None),
            "CENTRAL": Expected("PD", "PD", WEEK_8, WEEK_8, 57, True, None),
        },
    ),
)

# -- the per-arm summaries -----------------------------------------------------------------------
#
# Counts per arm and evaluator (the confirmed BOR drives them):
#   arm A (001-01 PR, 001-02 SD, 002-01 PR, 002-02 NE), every evaluator: ORR 2/4, DCR 3/4.
#   arm B (001-03 SD, 001-04, 002-03 SD, 002-04):
#     INVESTIGATOR  001-04 PR, 002-04 SD:  ORR 1/4, DCR 4/4
#     RADIOLOGIST 1 001-04 PR, 002-04 PD:  ORR 1/4, DCR 3/4
#     RADIOLOGIST 2 001-04 SD, 002-04 PD:  ORR 0/4, DCR 3/4
#     CENTRAL       001-04 PR (adjudicated), 002-04 PD: ORR 1/4, DCR 3/4
#
# Clopper-Pearson 95 %, n = 4 (limits rounded outward to 4 decimals):
#   0/4: lower 0; upper = 1 - 0.025^(1/4) = 1 - 0.397635 = 0.602365 -> 0.6024
#   1/4: lower = 1 - 0.975^(1/4) = 1 - exp(ln(0.975)/4) = 1 - 0.993690 = 0.006310 -> 0.0063;
#        upper = 1 - (the 3/4 lower) = 1 - 0.194120 = 0.805880 -> 0.8059
#   2/4: lower = Beta^-1(0.025; 2, 3): 1 - (1-x)^4 - 4x(1-x)^3 = 0.025 at x = 0.067586 -> 0.0675;
#        upper = 1 - 0.067586 = 0.932414 -> 0.9325
#   3/4: lower = Beta^-1(0.025; 3, 2): 4x^3 - 3x^4 = 0.025 at x = 0.194120 -> 0.1941;
#        upper = 0.975^(1/4) = 0.993690 -> 0.9937
#   4/4: lower = 0.025^(1/4) = 0.397635 -> 0.3976; upper 1
CP_4: dict[int, tuple[float, float]] = {
    0: (0.0, 0.6024),
    1: (0.0063, 0.8059),
    2: (0.0675, 0.9325),
    3: (0.1941, 0.9937),
    4: (0.3976, 1.0),
}
#: (arm, evaluator) -> (ORR count, DCR count), n = 4 everywhere.
SUMMARIES: dict[tuple[str, str], tuple[int, int]] = {
    **{("A", e): (2, 3) for e in ("INVESTIGATOR", "RADIOLOGIST 1", "RADIOLOGIST 2", "CENTRAL")},
    ("B", "INVESTIGATOR"): (1, 4),
    ("B", "RADIOLOGIST 1"): (1, 3),
    ("B", "RADIOLOGIST 2"): (0, 3),
    ("B", "CENTRAL"): (1, 3),
}


def proportion(count: int, n: int = 4) -> Json:
    lower, upper = CP_4[count]
    return {
        "count": count,
        "n": n,
        "rate": round(count / n, 4),
        "lower": lower,
        "upper": upper,
        "confidence": 0.95,
    }


# -- the forms -----------------------------------------------------------------------------------


def scan_form(prefix: str, subject: Subject, author: str, number: int, read: Scan) -> Json:
    """The form of one read: the RECIST example's baseline (number 0) or its 2025-07-14 follow-up
    (CT + SSTR-PET, as the baseline) with the scan's answers, for the subject's patient."""
    baseline = number == 0
    resource = form(RECIST, 1 if baseline else 3)
    resource.pop("id", None)
    reader = author.rsplit("/", 1)[-1]
    resource["identifier"]["value"] = f"{prefix}-{subject.number}-{reader}-{number}"
    resource["subject"] = {"reference": patient(prefix, subject)}
    resource["author"] = {"reference": author}
    resource["authored"] = f"{read.date}T17:00:00+02:00"
    for item in resource["item"]:
        if item["linkId"] == "imaging-date":
            item["answer"] = [{"valueDate": read.date}]
        elif item["linkId"] == "baseline-date":
            item["answer"] = [{"valueDate": BASELINE}]
    for lesion, size in zip(("T1", "T2", "T3"), read.sizes, strict=True):
        group = target(resource, lesion)
        if size is None:
            group["item"] = [i for i in group["item"] if i["linkId"] != "lesion-size"]
        else:
            set_answer(group, "lesion-size", "valueDecimal", size)
    # The reader's own conclusion is not what this scenario is about.
    resource["item"] = [
        i
        for i in resource["item"]
        if i["linkId"] not in ("response-vs-baseline", "response-vs-nadir", "nadir-date")
    ]
    if read.new_lesion:
        (new,) = items(form(RECIST, 6), "new-lesion")
        new = copy.deepcopy(new)
        set_answer(new, "lesion-equivocal", "valueBoolean", False)
        resource["item"].append(new)
    return resource


def patient(prefix: str, subject: Subject) -> str:
    return f"Patient/{prefix}-{subject.number}"


def forms_of(prefix: str, subject: Subject) -> list[Json]:
    """Every read of the subject, in date order (each reader's baseline before its follow-ups)."""
    found = [
        (read.date, index, scan_form(prefix, subject, author, number, read))
        for index, (author, reads) in enumerate(subject.readers)
        for number, read in enumerate(reads)
    ]
    return [resource for _, _, resource in sorted(found, key=lambda f: (f[0], f[1]))]


# -- playing it ----------------------------------------------------------------------------------


def enrolment(prefix: str, subject: Subject) -> Json:
    return {
        "patient": patient(prefix, subject),
        "site": subject.site,
        "arm": subject.arm,
        "referenceDate": REFERENCE_DATE,
    }


def run(client: FlaskClient, study_id: str, prefix: str) -> Json:
    """Define the study, enrol the subjects, submit every read (one transaction Bundle per
    subject), adjudicate, withdraw; answer the endpoints' JSON."""
    url = f"/api/v1/studies/{study_id}"
    answer = client.put(url, json=STUDY)
    assert answer.status_code == 201, answer.get_json()
    for subject in SUBJECTS:
        answer = client.put(f"{url}/subjects/{subject.number}", json=enrolment(prefix, subject))
        assert answer.status_code == 201, answer.get_json()
    for subject in SUBJECTS:
        answer = client.post(
            "/fhir",
            data=json.dumps(bundle_of(*forms_of(prefix, subject))),
            content_type="application/fhir+json",
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)
    for subject in SUBJECTS:
        if subject.adjudicate is not None:
            answer = client.put(
                f"{url}/subjects/{subject.number}/adjudication",
                json={"accept": subject.adjudicate, "by": ADJUDICATOR},
            )
            assert answer.status_code in (200, 201), answer.get_json()
        if subject.withdrawn is not None:
            answer = client.delete(f"{url}/subjects/{subject.number}?date={subject.withdrawn}")
            assert answer.status_code == 200, answer.get_json()
    answer = client.get(f"{url}/endpoints")
    assert answer.status_code == 200, answer.get_json()
    body: Json = answer.get_json()
    return body


def check_endpoints(body: Json) -> None:
    """Assert the endpoints' answer against the table."""
    assert body["confirmationRequired"] is True
    # Subjects come in subject-number order.
    assert [s["subjectId"] for s in body["subjects"]] == sorted(s.number for s in SUBJECTS)
    found = {s["subjectId"]: s for s in body["subjects"]}
    for subject in SUBJECTS:
        got = found[subject.number]
        assert (got["site"], got["arm"]) == (subject.site, subject.arm), subject.number
        assert got["referenceDate"] == REFERENCE_DATE
        assert got["status"] == ("withdrawn" if subject.withdrawn else "on-study"), subject.number
        assert got["withdrawalDate"] == subject.withdrawn, subject.number
        # The flag says the readers disagree; the adjudication settles it.
        assert got["adjudicationNeeded"] is (subject.adjudicate is not None), subject.number
        accepted = got["adjudication"] and got["adjudication"]["accepted"]
        assert accepted == subject.adjudicate, subject.number
        evaluations = {e["evaluator"]: e for e in got["evaluations"]}
        assert list(evaluations) == ["INVESTIGATOR", "RADIOLOGIST 1", "RADIOLOGIST 2", "CENTRAL"]
        assert evaluations["CENTRAL"]["basis"] == subject.central_basis, subject.number
        for evaluator, expected in subject.expected.items():
            assert summary(evaluations[evaluator]["endpoints"]) == expected, (
                subject.number,
                evaluator,
                evaluations[evaluator]["endpoints"]["reasons"],
            )
    # The visits of the withdrawn subject's site read: study days and visit names (dates at the
    # top of the module), the scan after the withdrawal listed and ignored.
    site_read = found["002-03"]["evaluations"][0]["endpoints"]
    assert [
        (v["date"], v["studyDay"], v["visit"], v["role"], v["overallResponse"])
        for v in site_read["visits"]
    ] == [
        (BASELINE, -1, "UNSCHEDULED", "baseline", None),
        (WEEK_8, 57, "WEEK 8", "follow-up", "SD"),
        (WEEK_16, 113, "WEEK 16", "follow-up", "SD"),
        (WEEK_24, 169, "WEEK 24", "after-withdrawal", "PD"),
    ]
    # 001-01's response lasts from 2025-03-11 to the censoring at 2025-05-06: 56 days, + 1.
    confirmed_pr = found["001-01"]["evaluations"][3]["endpoints"]
    assert confirmed_pr["firstResponseDate"] == WEEK_8
    assert confirmed_pr["durationOfResponse"]["days"] == 57
    # 002-01's NE visit is WEEK 16.
    ne = found["002-01"]["evaluations"][3]["endpoints"]["visits"]
    assert [v["overallResponse"] for v in ne] == [None, "PR", "NE", "PR"]
    summaries = {(s["arm"], s["evaluator"]): s for s in body["summaries"]}
    assert list(summaries) == list(SUMMARIES)
    for key, (orr, dcr) in SUMMARIES.items():
        assert summaries[key]["n"] == 4, key
        assert summaries[key]["objectiveResponse"] == proportion(orr), key
        assert summaries[key]["diseaseControl"] == proportion(dcr), key


def summary(endpoints: Json) -> Expected:
    pfs = endpoints["progressionFreeSurvival"]
    confirmed = endpoints["confirmedBestOverallResponse"]
    return Expected(
        bor=endpoints["bestOverallResponse"]["response"],
        confirmed_bor=confirmed["response"],
        confirmed_bor_date=confirmed["date"],
        progression=endpoints["progressionDate"],
        pfs_days=pfs["days"],
        pfs_event=pfs["event"],
        censoring=pfs.get("censoringReason"),
    )


def counts(store: FhirStore, types: Sequence[str]) -> dict[str, int]:
    """How many resources of each type the store holds (paging through the searches)."""
    return {kind: sum(1 for _ in store.search(kind, {})) for kind in types}


#: Everything a study and its forms consist of (not AuditEvent: refusals are audited).
WRITTEN_TYPES = (
    "ResearchStudy",
    "ResearchSubject",
    "Group",
    "QuestionnaireResponse",
    "BodyStructure",
    "Observation",
    "DiagnosticReport",
    "Provenance",
)


def versions(store: FhirStore, types: Sequence[str] = WRITTEN_TYPES) -> dict[str, str]:
    """Every stored resource of ``types`` with its version: equal before and after a refusal
    means nothing was written, not even a new version of a resource."""
    return {
        f"{kind}/{resource['id']}": resource["meta"]["versionId"]
        for kind in types
        for resource in store.search(kind, {})
    }
