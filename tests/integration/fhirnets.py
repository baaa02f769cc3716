"""fhirnet as an EHR sees it, for the integration tests: in-process (Flask's test client) or
over HTTP, and the settings of a fhirnet writing to a given FHIR server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from flask.testing import FlaskClient
from requests.structures import CaseInsensitiveDict

FHIR_JSON = "application/fhir+json"
Json = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """fhirnet's answer to one request: status, headers (case-insensitive), JSON body."""

    status: int
    headers: Mapping[str, str]
    body: Any
    seconds: float

    def __str__(self) -> str:
        shown = json.dumps(self.body, indent=1)[:3000] if self.body is not None else "(no body)"
        wanted = ("Content-Type", "Location", "Retry-After")
        headers = {name: self.headers[name] for name in wanted if name in self.headers}
        return f"HTTP {self.status} after {self.seconds:.2f} s {headers}\n{shown}"


class Fhirnet:
    """fhirnet's FHIR API through Flask's test client (in-process) or over HTTP (a server)."""

    def __init__(self, client: FlaskClient | None = None, url: str | None = None) -> None:
        self._client = client
        self._url = url

    def submit(self, form: Json, *, prefer: str | None = None) -> Answer:
        """``POST /fhir/QuestionnaireResponse/$submit``, as an EHR that wants the results back
        submits a filled form: answered with the DiagnosticReport (a plain create answers with
        the stored form)."""
        return self.post("/fhir/QuestionnaireResponse/$submit", form, prefer=prefer)

    def submit_bundle(self, bundle: Json) -> Answer:
        """``POST /fhir`` with a transaction or batch Bundle of forms."""
        return self.post("/fhir", bundle)

    def post(self, path: str, body: Json, *, prefer: str | None = None) -> Answer:
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        if prefer:
            headers["Prefer"] = prefer
        return self._send("POST", path, json.dumps(body).encode(), headers)

    def get(self, path: str) -> Answer:
        """``GET`` of a path of fhirnet, e.g. a submission's status."""
        return self._send("GET", path, None, {"Accept": FHIR_JSON})

    def _send(
        self, method: str, path: str, data: bytes | None, headers: Mapping[str, str]
    ) -> Answer:
        started = time.monotonic()
        answer_headers: CaseInsensitiveDict[str]
        if self._client is not None:
            response = self._client.open(path, method=method, data=data, headers=dict(headers))
            status, content = response.status_code, response.data
            answer_headers = CaseInsensitiveDict(response.headers.items())
        else:
            url = f"{self._url}{path}"
            sent = requests.request(method, url, data=data, headers=headers, timeout=120)
            status, answer_headers, content = sent.status_code, sent.headers, sent.content
        seconds = time.monotonic() - started
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            parsed = {"(not JSON)": content[:500].decode(errors="replace")}
        return Answer(status, answer_headers, parsed, seconds)


def fhirnet_settings_environment(
    base_url: str, data_dir: Path, *, timeout: float | None
) -> dict[str, str]:
    """The ``FHIRNET_*`` variables of a fhirnet writing to ``base_url``; nothing else is read."""
    environment = {
        "FHIRNET_FHIR_BASE_URL": base_url,
        "FHIRNET_DATA_DIR": str(data_dir),
        "FHIRNET_AUTH": "none",
    }
    if timeout is not None:
        environment["FHIRNET_FHIR_TIMEOUT"] = f"{timeout:g}"
    return environment


MakeFhirnet = Callable[..., Fhirnet]
