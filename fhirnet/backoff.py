"""Exponential backoff with "equal jitter": the one formula behind every wait between attempts,
the HTTP client's retries (:mod:`fhirnet.adapters.fhir_client`) and the outbox's deliveries
(:mod:`fhirnet.services.delivery`).

The delay before the ``n``-th retry has a ceiling of ``initial`` doubled ``n - 1`` times, capped
at ``maximum``; the delay taken is half the ceiling plus a random part of the other half, so that
callers failing together do not come back together, yet none comes back at once (AWS
Architecture Blog, "Exponential Backoff and Jitter", 2015). Pure: the random draw is a parameter.
"""

from __future__ import annotations

from typing import Final

__all__ = ["equal_jitter"]

#: Doublings beyond this cannot raise a ceiling any more (``maximum`` caps it long before), and
#: ``2.0 ** n`` overflows near ``n = 1024``.
_MAX_DOUBLINGS: Final = 64


def equal_jitter(failures: int, *, initial: float, maximum: float, draw: float) -> float:
    """Seconds to wait after the ``failures``-th failed attempt.

    :param failures: the failed attempts so far (1, 2, ...).
    :param initial: the ceiling after the first failure.
    :param maximum: the ceiling no delay exceeds.
    :param draw: a random number in [0, 1): where in the upper half of the ceiling the delay is.
    :returns: a delay between half the ceiling and the ceiling.
    """
    ceiling = min(maximum, initial * 2.0 ** min(failures - 1, _MAX_DOUBLINGS))
    return ceiling / 2 + draw * ceiling / 2
