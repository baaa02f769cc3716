"""HTTP client of the external FHIR R4 server: the :class:`~fhirnet.ports.FhirStore` adapter and
the only module of fhirnet that imports ``requests`` (``style.md`` P1, P9). It is one job kept
whole: every call, token requests included, goes through one ``_request`` that applies the policy
below, and the retry and token code send through it, so they stay beside it.

Policy, in one place:

* **One session, timeouts always set.** Every request, including token requests, carries the
  ``(connect, read)`` timeout given to the constructor; redirects are not followed, so a bearer
  token never travels to a host nobody configured.
* **Errors** (``style.md`` P7): 4xx → :class:`FhirServerRejectedError` carrying the server's
  OperationOutcome; 5xx, 429, timeouts and connection failures →
  :class:`FhirServerUnavailableError`; a 2xx answer that is not the FHIR JSON asked for →
  :class:`FhirServerError`. Messages name the method and the URL *path* only: search queries can
  hold patient identifiers, and messages end up in logs.
* **Retries** only for idempotent requests (GET: read, search pages, SMART discovery) and only on
  429/502/503/504, timeouts and connection failures, with exponential backoff and jitter. A
  ``Retry-After`` (seconds or HTTP-date) is honoured exactly; one longer than
  :attr:`RetryPolicy.max_retry_after`, or beyond the call's sleep budget, ends the retries at once
  rather than hammering a server that asked for a pause. POSTs (transactions, token requests) are
  **never** retried here: a timeout does not tell whether the server committed, and the pipeline
  makes its transactions idempotent with conditional creates (``ifNoneExist``) and retries at its
  own level.
* **Auth**: nothing, a static bearer token, or SMART Backend Services (client credentials with a
  signed JWT assertion, :mod:`fhirnet.adapters.smart`): the access token is cached until shortly
  before it expires, and a 401 from the FHIR server drops it and repeats the request once with a
  fresh one (the request was not processed, so this is safe for POSTs too).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from fhirnet.adapters.smart import ASSERTION_TYPE, SmartCredentials
from fhirnet.backoff import equal_jitter
from fhirnet.errors import FhirServerError, FhirServerRejectedError, FhirServerUnavailableError
from fhirnet.ports import Json, SearchParams

__all__ = ["FHIR_JSON", "FhirClient", "RetryPolicy"]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
#: Statuses that say "try again later" rather than "this request is wrong".
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: FHIR R4 id and resource-type syntax (http://hl7.org/fhir/R4/datatypes.html#id); checking them
#: keeps a caller's value from rewriting the request path.
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
#: A token is renewed this long before the server says it expires, so it does not expire in flight.
TOKEN_EXPIRY_MARGIN_SECONDS = 60.0
#: The spec requires ``expires_in``; when a server leaves it out, assume the spec's recommended
#: maximum lifetime (five minutes) instead of keeping the token forever.
DEFAULT_TOKEN_LIFETIME_SECONDS = 300.0
#: Longest piece of a non-FHIR error body quoted in an error message (proxies send HTML pages).
_SNIPPET = 200


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How idempotent requests are retried; ``RetryPolicy(attempts=1)`` turns retries off.

    The worst case of one call is bounded: ``attempts`` times the timeout, plus at most ``budget``
    seconds of sleeping between attempts.
    """

    #: Tries in all, the first included.
    attempts: int = 4
    #: Delay before the first retry; it doubles on each following one, up to ``max_backoff``. The
    #: actual delay is drawn between half and all of it (jitter), so that many workers failing
    #: together do not come back together.
    backoff: float = 0.5
    max_backoff: float = 8.0
    #: A ``Retry-After`` longer than this is not waited for: the call fails at once.
    max_retry_after: float = 30.0
    #: Total seconds one call may spend sleeping between attempts.
    budget: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if min(self.backoff, self.max_backoff, self.max_retry_after, self.budget) < 0:
            raise ValueError("RetryPolicy delays must not be negative")


class FhirClient:
    """A FHIR R4 server over HTTP: ``read``, ``search`` (all pages) and ``transaction``.

    Build one per application (it holds a connection pool and the cached access token) and share
    it; ``close()`` it, or use it as a context manager, when it owns its session.

    :param base_url: the server's base, e.g. ``https://fhir.example.org/r4``; http(s) only.
    :param timeout: seconds, for connecting and for reading each response, or a
        ``(connect, read)`` pair. Always applied: requests' default is to wait forever.
    :param bearer_token: a static access token sent as ``Authorization: Bearer``.
    :param smart: SMART Backend Services credentials; exclusive with ``bearer_token``.
    :param retry: the retry policy of idempotent requests.
    :param session: a session to use (and not close); by default the client makes its own.
    :param sleep: waits between retries; tests pass a recorder instead of sleeping.
    :param jitter: returns a float in [0, 1) that spreads backoff delays.
    :param clock: seconds since the epoch; dates ``Retry-After`` and token expiry.
    :raises ValueError: an argument is unusable (bad URL, non-positive timeout, two auth modes).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        bearer_token: str | None = None,
        smart: SmartCredentials | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"FHIR base URL must be an http(s) URL without a query: {base_url!r}")
        timeouts = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        if len(timeouts) != 2 or min(timeouts) <= 0:
            raise ValueError(f"FHIR timeout must be positive seconds, got {timeout!r}")
        if bearer_token is not None and smart is not None:
            raise ValueError("use either a static bearer token or SMART credentials, not both")
        if bearer_token is not None and not bearer_token.strip():
            raise ValueError("the FHIR bearer token must not be empty")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc)
        self._timeout = timeouts
        self._bearer = bearer_token
        self._smart = smart
        self._retry = retry or RetryPolicy()
        self._owns_session = session is None
        self._session = session or requests.Session()
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_url: str | None = smart.token_url if smart else None

    # -- the FhirStore port ------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Json | None:
        """The current version of ``resource_type/resource_id``; ``None`` on 404 or 410.

        :raises ValueError: the type or id is not valid FHIR syntax.
        :raises FhirServerRejectedError: any other 4xx.
        :raises FhirServerUnavailableError: 5xx/429, timeout or connection failure (after retries).
        """
        url = f"{self._type_url(resource_type)}/{_checked(_ID, resource_id, 'id')}"
        try:
            response = self._request("GET", url, idempotent=True)
        except FhirServerRejectedError as error:
            if error.status in (404, 410):
                return None
            raise
        resource = _json_body(response, "GET", url)
        if resource.get("resourceType") != resource_type:
            found = resource.get("resourceType")
            raise FhirServerError(f"GET {_path(url)} answered a {found!r}, not a {resource_type}")
        return resource

    def search(self, resource_type: str, params: SearchParams) -> Iterator[Json]:
        """Every resource a type-level search returns (``search.mode`` match or include), page by
        page through ``Bundle.link[next]``; pages are fetched as the iterator is consumed.

        A parameter given a sequence is repeated (FHIR's AND). Only the first request carries
        ``params``: a next link is the server's own, complete, URL. Next links must stay on the
        base URL's scheme and host, so credentials never go elsewhere.

        :raises ValueError: the resource type is not valid FHIR syntax (raised at once).
        :raises FhirServerRejectedError: a 4xx, e.g. a parameter the server does not support.
        :raises FhirServerError: a page is not a Bundle, or the next links go in a circle.
        """
        url = self._type_url(resource_type)
        query: list[tuple[str, str]] = []
        for name, value in params.items():
            values = [value] if isinstance(value, str) else list(value)
            query += [(name, item) for item in values]
        return self._pages(url, query)

    def transaction(self, bundle: Json) -> Json:
        """POST a ``transaction`` Bundle; returns the ``transaction-response`` Bundle.

        Not retried (see the module docstring): make it idempotent with conditional entries
        (``request.ifNoneExist``) and retry the whole call if it must survive outages.

        :raises ValueError: ``bundle`` is not a transaction Bundle.
        :raises FhirServerRejectedError: refused (4xx); a conformant server wrote nothing.
        :raises FhirServerUnavailableError: 5xx, timeout or connection failure; whether anything
            was written is unknown.
        """
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            raise ValueError("transaction() takes a Bundle of type 'transaction'")
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        body = json.dumps(bundle, ensure_ascii=False, allow_nan=False).encode()
        response = self._request(
            "POST", self.base_url, idempotent=False, headers=headers, data=body
        )
        result = _json_body(response, "POST", self.base_url)
        if result.get("resourceType") != "Bundle" or result.get("type") != "transaction-response":
            raise FhirServerError(
                f"POST {_path(self.base_url)} answered {result.get('resourceType')!r} of type "
                f"{result.get('type')!r}, not a transaction-response Bundle"
            )
        return result

    def capabilities(self) -> Json:
        """The server's CapabilityStatement (``GET [base]/metadata``), retried like a read.

        :raises FhirServerRejectedError: a 4xx.
        :raises FhirServerUnavailableError: 5xx/429, timeout or connection failure (after retries).
        :raises FhirServerError: the answer is not a CapabilityStatement.
        """
        url = f"{self.base_url}/metadata"
        statement = _json_body(self._request("GET", url, idempotent=True), "GET", url)
        if statement.get("resourceType") != "CapabilityStatement":
            found = statement.get("resourceType")
            raise FhirServerError(
                f"GET {_path(url)} answered a {found!r}, not a CapabilityStatement"
            )
        return statement

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the session's connections, if the client made the session itself."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _type_url(self, resource_type: str) -> str:
        return f"{self.base_url}/{_checked(_RESOURCE_TYPE, resource_type, 'resource type')}"

    def _pages(self, url: str, query: list[tuple[str, str]]) -> Iterator[Json]:
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            response = self._request("GET", next_url, idempotent=True, params=query or None)
            bundle = _json_body(response, "GET", next_url)
            if bundle.get("resourceType") != "Bundle":
                raise FhirServerError(
                    f"GET {_path(next_url)} answered {bundle.get('resourceType')!r}, not a Bundle"
                )
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource")
                mode = (entry.get("search") or {}).get("mode", "match")
                if isinstance(resource, dict) and mode in ("match", "include"):
                    yield resource
            seen.add(response.url)
            link = _next_link(bundle)
            next_url, query = (self._follow(response.url, link, seen) if link else None), []

    def _follow(self, current: str, link: str, seen: set[str]) -> str:
        """The absolute URL of a next link, if it is safe and new to follow."""
        target = urljoin(current, link)
        parts = urlsplit(target)
        if (parts.scheme, parts.netloc) != self._origin:
            # A server behind a proxy, or misconfigured, may link to its internal name; following
            # it would send the access token to a host nobody configured.
            raise FhirServerError(
                f"the server's next link leaves {self.base_url}: {parts.scheme}://{parts.netloc}; "
                "configure the FHIR server's public base URL"
            )
        if target in seen:
            raise FhirServerError(f"the server's next links go in a circle at {_path(target)}")
        return target

    def _request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        params: list[tuple[str, str]] | None = None,
        data: bytes | Mapping[str, str] | None = None,
        authenticate: bool = True,
        accept: str = FHIR_JSON,
    ) -> requests.Response:
        """Send one request under the retry, auth and error policy of the module docstring.

        :returns: a response with a status below 400 (redirects are below 400 but not followed;
            callers see them as bodies that are not FHIR JSON).
        """
        attempt = 0
        slept = 0.0
        reauthenticated = False
        while True:
            attempt += 1
            sent_headers = {"Accept": accept, **(headers or {})}
            if authenticate:
                sent_headers.update(self._auth_headers())
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=sent_headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as error:
                failure: FhirServerError = FhirServerUnavailableError(
                    f"{method} {_path(url)} failed: {type(error).__name__}: {error}"
                )
                delay = self._backoff(attempt) if idempotent and _transient(error) else None
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status == 401 and authenticate and self._smart and not reauthenticated:
                    # The cached token was revoked or expired early: get a new one, once.
                    reauthenticated = True
                    self._drop_token()
                    attempt -= 1
                    continue
                failure = _error(method, url, response, now=self._clock())
                delay = (
                    self._retry_delay(response, attempt)
                    if idempotent and status in RETRYABLE_STATUSES
                    else None
                )
            budget_left = self._retry.budget - slept
            if delay is None or attempt >= self._retry.attempts or delay > budget_left:
                raise failure
            # Only what cannot carry patient data: no server text, no query string (ids).
            log.warning(
                "%s %s failed (%s); retry %d in %.1f s",
                method,
                _path(url),
                failure.status or type(failure).__name__,
                attempt,
                delay,
            )
            self._sleep(delay)
            slept += delay

    def _backoff(self, attempt: int) -> float:
        retry = self._retry
        return equal_jitter(
            attempt, initial=retry.backoff, maximum=retry.max_backoff, draw=self._jitter()
        )

    def _retry_delay(self, response: requests.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying ``response``, or ``None`` to give up now."""
        retry_after = _retry_after(response.headers.get("Retry-After"), self._clock())
        if retry_after is None:
            return self._backoff(attempt)
        return retry_after if retry_after <= self._retry.max_retry_after else None

    def _auth_headers(self) -> dict[str, str]:
        if self._bearer is not None:
            return {"Authorization": f"Bearer {self._bearer}"}
        if self._smart is not None:
            return {"Authorization": f"Bearer {self._access_token(self._smart)}"}
        return {}

    def _drop_token(self) -> None:
        with self._token_lock:
            self._token = None

    def _access_token(self, smart: SmartCredentials) -> str:
        """The cached SMART access token, or a new one when none is cached or it is about to
        expire (SMART Backend Services, "Obtain access token")."""
        with self._token_lock:
            if self._token is None or self._clock() >= self._token_expires:
                self._token, self._token_expires = self._request_token(smart)
            return self._token

    def _request_token(self, smart: SmartCredentials) -> tuple[str, float]:
        token_url = self._token_url or self._discover_token_url()
        self._token_url = token_url
        now = self._clock()
        form = {
            "grant_type": "client_credentials",
            "scope": smart.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": smart.client_assertion(
                audience=token_url, now=now, jti=uuid.uuid4().hex
            ),
        }
        response = self._request(
            "POST",
            token_url,
            idempotent=False,
            data=form,
            authenticate=False,
            accept="application/json",
        )
        body = _json_body(response, "POST", token_url)
        token = body.get("access_token")
        bearer = str(body.get("token_type")).lower() == "bearer"
        if not isinstance(token, str) or not token or not bearer:
            raise FhirServerError(f"POST {_path(token_url)} answered without a bearer access_token")
        expires_in = body.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else DEFAULT_TOKEN_LIFETIME_SECONDS
        )
        # Short-lived tokens get half their life as margin, so they are still used at all.
        margin = min(TOKEN_EXPIRY_MARGIN_SECONDS, lifetime / 2)
        return token, now + lifetime - margin

    def _discover_token_url(self) -> str:
        url = f"{self.base_url}/.well-known/smart-configuration"
        response = self._request(
            "GET", url, idempotent=True, authenticate=False, accept="application/json"
        )
        token_url = _json_body(response, "GET", url).get("token_endpoint")
        if not isinstance(token_url, str) or urlsplit(token_url).scheme not in ("http", "https"):
            raise FhirServerError(f"GET {_path(url)} names no token_endpoint URL")
        return token_url


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"not a FHIR {what}: {value!r}")
    return value


def _transient(error: requests.RequestException) -> bool:
    """A failure of the connection, not of the request: worth another try for idempotent calls."""
    return isinstance(
        error,
        requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError,
    )


def _next_link(bundle: Json) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _path(url: str) -> str:
    """The URL without its query, which may carry patient identifiers."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _json_body(response: requests.Response, method: str, url: str) -> Json:
    """The JSON object of a successful response; anything else is the server's fault."""
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise FhirServerError(
            f"{method} {_path(url)} answered {response.status_code} "
            f"({response.headers.get('Content-Type', 'no content type')}) "
            "without the JSON object expected",
            status=response.status_code,
        )
    return body


def _error(method: str, url: str, response: requests.Response, *, now: float) -> FhirServerError:
    """The exception for a 4xx/5xx answer, with the OperationOutcome when the server sent one and
    the server's ``Retry-After`` in seconds (from ``now``) when it gave one."""
    status = response.status_code
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        body = None
    is_outcome = isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"
    outcome: Json | None = body if is_outcome else None
    if outcome is not None:
        detail = _describe_outcome(outcome)
    elif isinstance(body, dict) and isinstance(body.get("error"), str):  # OAuth (RFC 6749 §5.2)
        detail = ": ".join(
            str(body[key]) for key in ("error", "error_description") if body.get(key)
        )
    else:
        detail = " ".join(response.text.split())[:_SNIPPET]
    message = f"{method} {_path(url)} answered {status} {response.reason or ''}".rstrip()
    if detail:
        message += f": {detail}"
    kind = FhirServerUnavailableError if status >= 500 or status == 429 else FhirServerRejectedError
    retry_after = _retry_after(response.headers.get("Retry-After"), now)
    return kind(message, status=status, outcome=outcome, retry_after=retry_after)


def _describe_outcome(outcome: Json) -> str:
    """The issues of an OperationOutcome in one line: ``severity code: text`` each."""
    parts = []
    for issue in outcome.get("issue") or []:
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
        parts.append(f"{issue.get('severity', '?')} {issue.get('code', '?')}: {text}".rstrip(": "))
    return "; ".join(parts)


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3: delay-seconds or an
    HTTP-date), or ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT, whatever the parser makes of "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
