"""Per-arm summaries: objective response and disease control rates with exact intervals.

ORR counts subjects whose best overall response is CR or PR — the confirmed one when the
subject's options require confirmation, else the unconfirmed one (RECIST 1.1 §4.4.3, §4.6.1);
DCR counts CR, PR, SD or NON-CR/NON-PD (SD and NON-CR/NON-PD at least ``sdMinDays`` after the
reference date). Each is given with its Clopper-Pearson interval (``docs/trials.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from fhirnet.trials.intervals import DEFAULT_CONFIDENCE, clopper_pearson
from fhirnet.trials.models import ArmSubject, ArmSummary


def summarize_arms(
    subjects: Iterable[ArmSubject], confidence: Decimal = DEFAULT_CONFIDENCE
) -> tuple[ArmSummary, ...]:
    """One summary per (arm, evaluator), in order of first appearance.

    :param subjects: each subject's endpoints with its arm and evaluator; every subject counts in
        the denominator of its arm (an NE best response is a non-responder, as RECIST 1.1 §4.4.3
        and admiralonco's ``RSP`` derivation count it).
    :param confidence: the two-sided level of the intervals.
    """
    groups: dict[tuple[str, str], list[ArmSubject]] = {}
    for subject in subjects:
        groups.setdefault((subject.arm, subject.evaluator), []).append(subject)
    summaries = []
    for (arm, evaluator), members in groups.items():
        n = len(members)
        responders = sum(member.endpoints.objective_response for member in members)
        controlled = sum(member.endpoints.disease_control for member in members)
        summaries.append(
            ArmSummary(
                arm=arm,
                evaluator=evaluator,
                n=n,
                objective_response=clopper_pearson(responders, n, confidence),
                disease_control=clopper_pearson(controlled, n, confidence),
            )
        )
    return tuple(summaries)
