"""admiralonco's published test cases for best overall response, fed through fhirnet.

Source: pharmaverse/admiralonco at commit 83370b1289b211126a0493430ad3174691224fa9,
``tests/testthat/test-derive_param_bor.R`` and ``tests/testthat/test-derive_param_confirmed_bor.R``.
Only their inputs (ADSL ``TRTSDT``, ADRS ``OVR`` records) and expected ``BOR``/``CBOR`` values and
dates are transcribed here, per subject, with the R file and ``test_that`` name. Where fhirnet's
answer differs, the row asserts fhirnet's answer and says why; ``docs/trials.md`` lists the
differences ("Compared with admiralonco's tests").

The differences come from four rules, each a decision of fhirnet:

- BASELINE: fhirnet's baseline is the last assessment on or before the reference date, and only
  later assessments are follow-ups; admiralonco's derivations count every ``OVR`` record the
  ``filter_source`` keeps, including one dated on or before ``TRTSDT``.
- PROGRESSION-ENDS-BOR: ``criteria.md`` §6.2: assessments after the first progression never change
  the best overall response, also without a separate progression source (admiralonco only cuts
  them off when ``source_pd`` is given).
- NO-MISSING-CODE: fhirnet has no ``MISSING`` or ``ND`` code: a subject without follow-up
  assessments has best overall response NE (``criteria.md`` §6.3 rule 7), and an assessment not
  done is left out (``ND`` is a 422).
- NE-DATE: an NE best overall response has no date in fhirnet (``criteria.md`` §6.3 "Output");
  admiralonco dates it at the first NE-ranked record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from fhirnet.criteria.models import Criteria, Response
from fhirnet.errors import InvalidInputError
from fhirnet.trials import EndpointOptions, SubjectRequest, VisitResponse, derive_endpoints

BOR_FILE = "tests/testthat/test-derive_param_bor.R"
CBOR_FILE = "tests/testthat/test-derive_param_confirmed_bor.R"

#: ``adsl``: USUBJID → TRTSDT (both files; subject 9 only in the confirmed-BOR file).
TRTSDT = {
    "1": "2020-01-01",
    "2": "2019-12-12",
    "3": "2019-11-11",
    "4": "2019-12-30",
    "5": "2020-01-01",
    "6": "2020-02-02",
    "7": "2020-02-02",
    "8": "2020-04-01",
    "9": "2020-02-01",
}

#: ``adrs`` OVR records: USUBJID → (ADT, AVALC); subject 8 has none; subject 9 only in the
#: confirmed-BOR file.
OVR: dict[str, list[tuple[str, str]]] = {
    "1": [
        ("2020-01-01", "PR"),
        ("2020-02-01", "CR"),
        ("2020-02-16", "NE"),
        ("2020-03-01", "CR"),
        ("2020-04-01", "SD"),
    ],
    "2": [("2020-01-01", "SD"), ("2020-02-01", "PR"), ("2020-03-01", "SD"), ("2020-03-13", "CR")],
    "3": [("2019-11-12", "CR"), ("2019-12-02", "CR"), ("2020-01-01", "SD")],
    "4": [
        ("2020-01-01", "PR"),
        ("2020-03-01", "SD"),
        ("2020-04-01", "SD"),
        ("2020-05-01", "PR"),
        ("2020-05-15", "NON-CR/NON-PD"),
    ],
    "5": [
        ("2020-01-01", "PR"),
        ("2020-01-10", "SD"),
        ("2020-01-20", "PR"),
        ("2020-05-15", "NON-CR/NON-PD"),
    ],
    "6": [("2020-02-06", "PR"), ("2020-02-16", "CR"), ("2020-03-30", "PR")],
    "7": [("2020-02-06", "PR"), ("2020-02-16", "CR"), ("2020-04-01", "NE")],
    "8": [],
    "9": [("2020-02-16", "PD"), ("2020-03-06", "SD")],
}


# Options of each test_that: ref_start_window = sdMinDays, ref_confirm = confirmationMinDays,
# max_nr_ne = maxNeBetween, accept_sd = acceptSdBetween.
BOR_28 = EndpointOptions(sd_min_days=28)
CBOR_T1 = EndpointOptions(sd_min_days=28, confirmation_min_days=28, confirmation_required=True)
CBOR_T2 = EndpointOptions(
    sd_min_days=28,
    confirmation_min_days=14,
    max_ne_between=0,
    accept_sd_between=True,
    confirmation_required=True,
)


@dataclass(frozen=True, kw_only=True)
class Case:
    """One subject of one admiralonco ``test_that``: its expectation and fhirnet's answer."""

    file: str
    test: str
    subject: str
    admiralonco: tuple[str, str | None]  # (AVALC, ADT) of the BOR / CBOR record
    fhirnet: tuple[str, str | None] | None = None  # None: the same as admiralonco
    why: str = ""  # the rule behind a difference (module docstring)
    visits: list[tuple[str, str]] | None = None  # None: OVR[subject]
    options: EndpointOptions = field(default_factory=lambda: BOR_28)


BOR_T1 = "derive_param_bor Test 1: No source_pd"
BOR_T2 = "derive_param_bor Test 2: With source_pd"
CBOR_1 = "derive_param_confirmed_bor Test 1: default confirmed BOR"
CBOR_2 = "derive_param_confirmed_bor Test 2: accept SD, ND handling, missing as NE"
CBOR_4 = "derive_param_confirmed_bor Test 4: No source_pd"

UNCONFIRMED = [
    Case(file=BOR_FILE, test=BOR_T1, subject="1", admiralonco=("CR", "2020-02-01")),
    Case(file=BOR_FILE, test=BOR_T1, subject="2", admiralonco=("CR", "2020-03-13")),
    Case(file=BOR_FILE, test=BOR_T1, subject="3", admiralonco=("CR", "2019-11-12")),
    Case(file=BOR_FILE, test=BOR_T1, subject="4", admiralonco=("PR", "2020-01-01")),
    Case(
        file=BOR_FILE,
        test=BOR_T1,
        subject="5",
        admiralonco=("PR", "2020-01-01"),
        fhirnet=("PR", "2020-01-20"),
        why="BASELINE: the PR of 2020-01-01 is on the reference date, so it is the baseline",
    ),
    Case(file=BOR_FILE, test=BOR_T1, subject="6", admiralonco=("CR", "2020-02-16")),
    Case(file=BOR_FILE, test=BOR_T1, subject="7", admiralonco=("CR", "2020-02-16")),
    Case(
        file=BOR_FILE,
        test=BOR_T1,
        subject="8",
        admiralonco=("MISSING", None),
        fhirnet=("NE", None),
        why="NO-MISSING-CODE: no assessment at all",
    ),
    # "Subjects only have records less than reference date (PR/CR)": subject 7's three records
    # moved to 2020-01-01..03, all before TRTSDT 2020-02-02.
    Case(
        file=BOR_FILE,
        test=BOR_T1 + " / records before the reference date (PR/CR)",
        subject="7",
        visits=[("2020-01-01", "PR"), ("2020-01-02", "CR"), ("2020-01-03", "NE")],
        admiralonco=("CR", "2020-01-02"),
        fhirnet=("NE", None),
        why="BASELINE: pre-treatment assessments are not follow-ups; NE-DATE",
    ),
    # "Subjects only have records less than reference date (SD)": the same, all SD.
    Case(
        file=BOR_FILE,
        test=BOR_T1 + " / records before the reference date (SD)",
        subject="7",
        visits=[("2020-01-01", "SD"), ("2020-01-02", "SD"), ("2020-01-03", "SD")],
        admiralonco=("NE", "2020-01-01"),
        fhirnet=("NE", None),
        why="NE-DATE (the category agrees)",
    ),
    # Test 2 adds PD records (PARAMCD PD) as source_pd: subject 2 on 2020-03-01, subject 6 on
    # 2020-02-05. fhirnet reads progression from the overall responses, so the PD becomes the
    # overall response of that date (subject 2: in place of the SD; subject 6: a new visit).
    Case(
        file=BOR_FILE,
        test=BOR_T2,
        subject="2",
        visits=[
            ("2020-01-01", "SD"),
            ("2020-02-01", "PR"),
            ("2020-03-01", "PD"),
            ("2020-03-13", "CR"),
        ],
        admiralonco=("PR", "2020-02-01"),
    ),
    Case(
        file=BOR_FILE,
        test=BOR_T2,
        subject="6",
        visits=[("2020-02-05", "PD"), *OVR["6"]],
        admiralonco=("MISSING", None),
        fhirnet=("PD", "2020-02-05"),
        why="NO-MISSING-CODE: the progression is itself an assessment, so BOR is PD",
    ),
]
UNCONFIRMED += [
    Case(
        file=BOR_FILE,
        test=BOR_T2,
        subject=case.subject,
        admiralonco=case.admiralonco,
        fhirnet=case.fhirnet,
        why=case.why,
    )
    for case in UNCONFIRMED[:8]
    if case.subject not in ("2", "6")
]

CONFIRMED = [
    *(
        Case(file=CBOR_FILE, test=test, subject=subject, admiralonco=expected, options=CBOR_T1)
        for test in (CBOR_1, CBOR_4)
        for subject, expected in [
            ("1", ("CR", "2020-02-01")),
            ("2", ("SD", "2020-02-01")),
            ("3", ("SD", "2020-01-01")),
            ("4", ("SD", "2020-03-01")),
            ("5", ("NON-CR/NON-PD", "2020-05-15")),
            ("6", ("SD", "2020-03-30")),
        ]
    ),
    *(
        Case(
            file=CBOR_FILE,
            test=test,
            subject="7",
            admiralonco=("NE", "2020-02-06"),
            fhirnet=("NE", None),
            why="NE-DATE (the category agrees)",
            options=CBOR_T1,
        )
        for test in (CBOR_1, CBOR_4)
    ),
    *(
        Case(
            file=CBOR_FILE,
            test=test,
            subject="8",
            admiralonco=("MISSING", None),
            fhirnet=("NE", None),
            why="NO-MISSING-CODE: no assessment at all",
            options=CBOR_T1,
        )
        for test in (CBOR_1, CBOR_4)
    ),
    Case(
        file=CBOR_FILE,
        test=CBOR_1,
        subject="9",
        admiralonco=("PD", "2020-02-16"),
        options=CBOR_T1,
    ),
    Case(
        file=CBOR_FILE,
        test=CBOR_4,
        subject="9",
        admiralonco=("SD", "2020-03-06"),
        fhirnet=("PD", "2020-02-16"),
        why="PROGRESSION-ENDS-BOR: the SD of 2020-03-06 follows the PD of 2020-02-16",
        options=CBOR_T1,
    ),
    Case(
        file=CBOR_FILE,
        test=CBOR_2,
        subject="1",
        admiralonco=("PR", "2020-01-01"),
        fhirnet=("SD", "2020-02-01"),
        why="BASELINE: the PR of 2020-01-01 is the baseline; the CR of 2020-02-01 is not "
        "confirmed (an NE before the next CR, maxNeBetween 0), but counts as SD at day 32",
        options=CBOR_T2,
    ),
    Case(
        file=CBOR_FILE, test=CBOR_2, subject="2", admiralonco=("PR", "2020-02-01"), options=CBOR_T2
    ),
    Case(
        file=CBOR_FILE, test=CBOR_2, subject="3", admiralonco=("CR", "2019-11-12"), options=CBOR_T2
    ),
    Case(
        file=CBOR_FILE, test=CBOR_2, subject="4", admiralonco=("SD", "2020-03-01"), options=CBOR_T2
    ),
    Case(
        file=CBOR_FILE,
        test=CBOR_2,
        subject="5",
        admiralonco=("PR", "2020-01-01"),
        fhirnet=("NON-CR/NON-PD", "2020-05-15"),
        why="BASELINE: the PR of 2020-01-01 is the baseline; the PR of 2020-01-20 has no "
        "confirmation",
        options=CBOR_T2,
    ),
    Case(
        file=CBOR_FILE, test=CBOR_2, subject="6", admiralonco=("SD", "2020-03-30"), options=CBOR_T2
    ),
    # Subject 7's records replaced by one ND on 2020-04-02; fhirnet has no ND: not done is no
    # assessment (test_an_nd_code_is_refused shows the 422).
    Case(
        file=CBOR_FILE,
        test=CBOR_2,
        subject="7",
        visits=[],
        admiralonco=("ND", "2020-04-02"),
        fhirnet=("NE", None),
        why="NO-MISSING-CODE: an assessment not done is left out",
        options=CBOR_T2,
    ),
    # missing_as_ne = TRUE: the subject without assessments is NE, as in fhirnet.
    Case(file=CBOR_FILE, test=CBOR_2, subject="8", admiralonco=("NE", None), options=CBOR_T2),
    Case(
        file=CBOR_FILE, test=CBOR_2, subject="9", admiralonco=("PD", "2020-02-16"), options=CBOR_T2
    ),
]


def _derive(case: Case) -> tuple[str, str | None, str, str | None]:
    visits = OVR[case.subject] if case.visits is None else case.visits
    request = SubjectRequest(
        criteria=Criteria.RECIST_1_1,
        reference_date=dt.date.fromisoformat(TRTSDT[case.subject]),
        visits=tuple(
            VisitResponse(date=dt.date.fromisoformat(date), overall_response=Response(code))
            for date, code in visits
        ),
        options=case.options,
    )
    result = derive_endpoints(request)
    unconfirmed, confirmed = result.best_overall_response, result.confirmed_best_overall_response

    def iso(date: dt.date | None) -> str | None:
        return None if date is None else date.isoformat()

    return (
        str(unconfirmed.response),
        iso(unconfirmed.date),
        str(confirmed.response),
        iso(confirmed.date),
    )


def _id(case: Case) -> str:
    return f"{case.test} / subject {case.subject}"


@pytest.mark.parametrize("case", UNCONFIRMED, ids=_id)
def test_best_overall_response_matches_admiralonco_or_a_documented_difference(case: Case) -> None:
    response, date, _, _ = _derive(case)
    expected = case.fhirnet or case.admiralonco
    assert (response, date) == expected, f"{case.file} {case.test!r}: {case.why}"
    assert (case.fhirnet is None) == (not case.why), "a difference must say why"


@pytest.mark.parametrize("case", CONFIRMED, ids=_id)
def test_confirmed_best_overall_response_matches_admiralonco_or_a_documented_difference(
    case: Case,
) -> None:
    _, _, response, date = _derive(case)
    expected = case.fhirnet or case.admiralonco
    assert (response, date) == expected, f"{case.file} {case.test!r}: {case.why}"
    assert (case.fhirnet is None) == (not case.why), "a difference must say why"


def test_a_code_of_another_criteria_is_refused_like_admiralonco_refuses_icr() -> None:
    # test-derive_param_confirmed_bor.R, "derive_param_confirmed_bor Test 3: error if invalid
    # response values": an iCR among RECIST 1.1 records is an error (a 422 in the API).
    visits = [("2020-01-01", "PR"), ("2020-02-01", "CR"), ("2020-03-01", "iCR")]
    request = SubjectRequest(
        criteria=Criteria.RECIST_1_1,
        reference_date=dt.date(2020, 1, 1),
        visits=tuple(
            VisitResponse(date=dt.date.fromisoformat(d), overall_response=Response(c))
            for d, c in visits
        ),
    )
    with pytest.raises(InvalidInputError) as raised:
        derive_endpoints(request)
    assert [error.path for error in raised.value.errors] == [("visits", 2, "overallResponse")]
