"""Two patients' first forms with one identifier, submitted at the same moment (finding 3 of the
security review): the check that the identifier is not another patient's ran under the
submitting patient's lock only, so both found nothing and both were written, the second
replacing the first patient's form. Now the identifier is locked from the check to the write:
one is accepted, the other refused with 422, and the stored form is the winner's.

The race is made certain here: the store holds each identifier search until both submissions
have made theirs (or a second has passed, when they cannot both get there: the fix).
``tests/integration/test_identifier_race.py`` runs it for real against ``fhirnet serve``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace

from fhirnet.adapters.locks import FileLocks
from fhirnet.fhir.outcome import UnprocessableResourceError
from fhirnet.ports import Json, SearchParams
from fhirnet.services import Context, Submission, submit
from tests.submissions import CHOI, RECIST, RecordingStore, form


class RendezvousStore(RecordingStore):
    """Holds every QuestionnaireResponse identifier search at a barrier of two, for a second."""

    def __init__(self, inner: RecordingStore) -> None:
        super().__init__(inner.inner)
        self.barrier = threading.Barrier(2)

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        if resource_type == "QuestionnaireResponse" and "identifier" in params:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait(timeout=1.0)
        return super().search(resource_type, params)


def test_two_patients_first_forms_with_one_identifier_at_once_one_is_refused(
    context: Context, store: RecordingStore
) -> None:
    racing = RendezvousStore(store)
    shared = form(RECIST, 1)["identifier"]
    forms = {RECIST: form(RECIST, 1), CHOI: form(CHOI, 1)}
    forms[CHOI]["identifier"] = dict(shared)
    answers: dict[str, Submission | Exception] = {}

    def send(patient: str) -> None:
        # Each thread opens its own lock files, as separate worker processes do.
        locks = context.locks
        assert isinstance(locks, FileLocks)
        own = replace(context, store=racing, locks=FileLocks(locks.directory, timeout=10))
        try:
            answers[patient] = submit(forms[patient], own)
        except Exception as error:  # the loser's answer
            answers[patient] = error

    threads = [threading.Thread(target=send, args=(patient,)) for patient in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    accepted = [p for p, a in answers.items() if isinstance(a, Submission)]
    refused = [a for a in answers.values() if isinstance(a, UnprocessableResourceError)]
    assert len(accepted) == 1, answers
    assert len(refused) == 1, answers
    (issue,) = refused[0].issues
    assert issue.expression == "QuestionnaireResponse.identifier"
    stored = list(
        store.search(
            "QuestionnaireResponse", {"identifier": f"{shared['system']}|{shared['value']}"}
        )
    )
    assert [answer["subject"]["reference"] for answer in stored] == [f"Patient/{accepted[0]}"]
