"""What the FHIR server already holds about a patient: the earlier forms, and the resources fhirnet
wrote, found by their business identifiers.

**Searches are filtered here again.** A server may ignore search parameters it does not know:
sekmet-fhir 0.1.1 answered ``QuestionnaireResponse?subject=Patient/a`` with every patient's forms
(it defines no search parameter for QuestionnaireResponse, ``fhirnet.fhir.identifiers``). So every
result is checked against what was asked (patient, form, status, identifier) before it is used;
the search parameters only make a capable server send less.

**One version per exam.** A form is keyed by its identifier (``services.forms.form_key``); when a
server holds several resources with the same identifier (written by an EHR before fhirnet, say),
the most recently updated one counts. Forms of other Questionnaires, forms that are not
``completed``/``amended`` (``entered-in-error``, ``in-progress``...) and forms without identifier
are left out.

**Read forms are remembered.** Every submission reads the patient's whole history back into
domain forms (:func:`~fhirnet.fhir.extract.extract_form`), the largest part of a submission's
cost with a long history. So each worker keeps the forms it has read (:class:`ReadForms`, a
small bounded LRU), keyed by the stored resource's ``id``, ``meta.versionId`` and
``meta.lastUpdated``, and hands one out again only when the resource's content equals the
content it was read from: a new version has another key, and a server (or another store in the
same process) that reuses a version id with other content is read afresh. Never stale.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import unquote

from fhirnet.errors import InvalidInputError
from fhirnet.fhir.extract import ExamForm, extract_form
from fhirnet.fhir.identifiers import Identifier, patient_id
from fhirnet.fhir.outcome import Issue, IssueType
from fhirnet.ports import FhirStore, Json
from fhirnet.services.forms import ACCEPTED_STATUSES, content_of, form_key

#: Results asked for per page: a patient has a few dozen forms at most.
PAGE_SIZE: Final = "100"
_OLDEST: Final = dt.datetime.min.replace(tzinfo=dt.UTC)
#: Forms a worker remembers (:class:`ReadForms`): the histories of a few dozen patients being
#: submitted at once. Small on purpose: each remembered form is about 100 objects the garbage
#: collector scans in every full collection; at 4,096 forms those pauses showed in the load
#: test's p99 and in the CPU of every request.
READ_FORMS: Final = 256


class ReadForms:
    """Stored forms already read into domain forms, by ``(id, versionId, lastUpdated)``; the
    least recently used go first beyond ``size``. Thread-safe (a worker's threads share it)."""

    def __init__(self, size: int = READ_FORMS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._forms: OrderedDict[tuple[str, str, str], tuple[Json, ExamForm]] = OrderedDict()

    def read(self, resource: Mapping[str, Any]) -> ExamForm:
        """The domain form of a stored QuestionnaireResponse: remembered when the same version
        with the same content was read before, else read now (and remembered).

        :raises InvalidInputError: the form cannot be read (not remembered).
        """
        content = content_of(resource)
        key = _version_key(resource)
        if key is not None:
            with self._lock:
                found = self._forms.get(key)
                if found is not None:
                    self._forms.move_to_end(key)
            if found is not None and found[0] == content:
                return found[1]
        form = extract_form(content)
        if key is not None:
            with self._lock:
                self._forms[key] = (content, form)
                self._forms.move_to_end(key)
                while len(self._forms) > self.size:
                    self._forms.popitem(last=False)
        return form

    def __len__(self) -> int:
        return len(self._forms)

    def clear(self) -> None:
        with self._lock:
            self._forms.clear()


def _version_key(resource: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """``(id, versionId, lastUpdated)`` of a stored resource; ``None`` when one is missing (a
    server that keeps no versions: nothing to key on, so nothing is remembered)."""
    meta = resource.get("meta")
    if not isinstance(meta, Mapping):
        return None
    key = (resource.get("id"), meta.get("versionId"), meta.get("lastUpdated"))
    if not all(isinstance(part, str) and part for part in key):
        return None
    return (str(key[0]), str(key[1]), str(key[2]))


#: This process's remembered forms (:func:`stored_forms`).
read_forms: Final = ReadForms()


def token(identifier: Identifier) -> str:
    """The ``identifier`` search value ``system|value`` with FHIR's search escaping, as a query
    parameter value (the store or the HTTP client encodes it for the URL)."""
    return unquote(identifier.search())


def stored_forms(
    store: FhirStore, *, patient: str, questionnaire: str
) -> tuple[list[ExamForm], list[Issue]]:
    """The patient's forms of ``questionnaire`` on the server, one per identifier.

    :param patient: the Patient id.
    :param questionnaire: the form's canonical URL, without version (any version counts).
    :returns: the forms (as read back, without id and server meta: :func:`content_of`) and a
        warning for each stored form that matches but cannot be read and is left out.
    """
    params = {
        "subject": f"Patient/{patient}",
        "status": ",".join(ACCEPTED_STATUSES),
        "_count": PAGE_SIZE,
    }
    newest: dict[str, tuple[dt.datetime, ExamForm]] = {}
    problems: list[Issue] = []
    for resource in store.search("QuestionnaireResponse", params):
        if not _is_form_of(resource, patient, questionnaire):
            continue
        try:
            form = read_forms.read(resource)
        except InvalidInputError as error:
            problems.append(
                Issue.warning(
                    IssueType.PROCESSING,
                    f"The patient's form QuestionnaireResponse/{resource.get('id')} on "
                    f"the FHIR server cannot be read and is left out of the assessment: {error}",
                )
            )
            continue
        if form.identifier is None:
            continue
        key, updated = form_key(form), _updated(resource)
        if key not in newest or updated >= newest[key][0]:
            newest[key] = (updated, form)
    return [form for _, form in newest.values()], problems


def _is_form_of(resource: Mapping[str, Any], patient: str, questionnaire: str) -> bool:
    if resource.get("resourceType") != "QuestionnaireResponse":
        return False
    if resource.get("status") not in ACCEPTED_STATUSES:
        return False
    canonical = resource.get("questionnaire")
    if not isinstance(canonical, str) or canonical.partition("|")[0] != questionnaire:
        return False
    return subject_patient(resource) == patient


def subject_patient(resource: Mapping[str, Any]) -> str | None:
    """The Patient id of a resource's ``subject`` reference, if it is one."""
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, Mapping) else None
    return patient_id(reference) if isinstance(reference, str) else None


def with_identifier(store: FhirStore, resource_type: str, identifier: Identifier) -> list[Json]:
    """The resources of ``resource_type`` carrying ``identifier``, newest first."""
    found = [
        resource
        # _count: a server that ignores `identifier` pages through everything; fewer pages.
        for resource in store.search(
            resource_type, {"identifier": token(identifier), "_count": PAGE_SIZE}
        )
        if resource.get("resourceType") == resource_type
        and identifier in set(_identifiers(resource.get("identifier")))
    ]
    return sorted(found, key=_updated, reverse=True)


def find(store: FhirStore, resource_type: str, identifier: Identifier) -> Json | None:
    """The newest resource of ``resource_type`` carrying ``identifier``, or ``None``."""
    found = with_identifier(store, resource_type, identifier)
    return found[0] if found else None


def _identifiers(value: object) -> Iterator[Identifier]:
    """The identifiers of an ``identifier`` element (one Identifier, or a list of them)."""
    values: Iterable[object] = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, Mapping):
            system, text = item.get("system"), item.get("value")
            if isinstance(system, str) and isinstance(text, str):
                yield Identifier(system=system, value=text)


def _updated(resource: Mapping[str, Any]) -> dt.datetime:
    meta = resource.get("meta")
    stamp = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    try:
        when = dt.datetime.fromisoformat(stamp) if isinstance(stamp, str) else _OLDEST
    except ValueError:
        return _OLDEST
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
