"""Request bodies, read whole and never past the size limit (``MAX_CONTENT_LENGTH``)."""

from __future__ import annotations

import codecs
from typing import Final

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


#: Byte order marks: the UTF-32 ones first, since UTF-32 LE starts with UTF-16 LE's.
BOMS: Final = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
    codecs.BOM_UTF8,
)
#: Why a body that :func:`is_plain_utf8` refuses is refused (415).
NOT_PLAIN_UTF8: Final = (
    "The body must be UTF-8 without a byte order mark; UTF-16, UTF-32 and BOMs are not accepted."
)


def is_plain_utf8(raw: bytes) -> bool:
    """Whether a JSON body may be UTF-8, the only encoding JSON exchanged between systems has
    (RFC 8259 §8.1): no byte order mark (UTF-8's included: senders must not add one) and no NUL
    byte, which UTF-8 JSON never holds unescaped and UTF-16/32 JSON always does. ``json.loads``
    on bytes guesses UTF-16 and UTF-32 and skips a BOM; a body it reads that way is refused with
    415 (the representation is the problem), before any decoding. Whether the bytes are valid
    UTF-8 is the parser's to say (malformed content)."""
    return not raw.startswith(BOMS) and b"\x00" not in raw
