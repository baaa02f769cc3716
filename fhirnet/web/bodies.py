"""Request bodies, read whole and never past the size limit (``MAX_CONTENT_LENGTH``)."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream


def body_within_limit() -> bytes:
    """The raw body of the current request, at most ``request.max_content_length`` bytes.

    ``request.get_data()`` stops silently at the limit when the body has no Content-Length
    (chunked HTTP/1.1, most HTTP/2 uploads), so a truncated body would be parsed as if whole.
    Reading up to one byte more tells "at the limit" from "over it". A declared Content-Length
    over the limit is refused before anything is read.

    :returns: the body as sent.
    :raises RequestEntityTooLarge: the body is longer than the limit (413).
    """
    limit = request.max_content_length
    if limit is None:
        return request.get_data(cache=False)
    data: bytes = get_input_stream(request.environ, max_content_length=limit + 1).read()
    if len(data) > limit:
        raise RequestEntityTooLarge()
    return data
