"""The API's JSON parser: stricter than DRF's, so that every malformed body
is a 4xx with a message, never a 500."""

import codecs
import json
import re

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self):
        limit = settings.API_MAX_BODY_BYTES
        super().__init__(
            f"The request body is larger than {limit} bytes. "
            "Send a smaller JSON object."
        )


class LengthRequired(exceptions.APIException):
    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_code = "length_required"
    default_detail = (
        "The request body was sent without a Content-Length (chunked). Send it "
        "with a Content-Length header."
    )


class _DuplicateKey(ValueError):
    pass


def _reject_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _check_media_type(media_type: str | None) -> None:
    """Raise UnsupportedMediaType unless the body is declared as
    application/json, without a charset or with a UTF-8 one.

    DRF also hands this parser bodies declared as ``*/*`` or
    ``application/*``, and the body is always decoded as UTF-8, so a body
    declared in another charset is rejected rather than misread.
    """
    main_type, params = parse_header_parameters(media_type or "")
    charset = params.get("charset")
    if main_type != "application/json" or (
        charset is not None and not _is_utf8(charset)
    ):
        raise exceptions.UnsupportedMediaType(media_type)


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name == "utf-8"
    except LookupError:
        return False


# After decoding, a surrogate pair such as \ud83d\ude00 is one character
# outside the BMP, so any surrogate left in a string was unpaired.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _find_lone_surrogate(data) -> str | None:
    """Return the first unpaired surrogate in any key or string of the parsed
    body, or None. Walks the value with a stack, not recursion, because the
    body may be nested as deep as the decoder allows."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and not value.isascii():
            match = _SURROGATE.search(value)
            if match:
                return match.group()
    return None


class StrictJSONParser(JSONParser):
    """Parse a UTF-8 JSON body of at most ``API_MAX_BODY_BYTES``.

    Rejects duplicate keys, NaN and Infinity, invalid UTF-8, unpaired
    surrogate escapes, nesting too deep for the decoder and a body shorter
    than its Content-Length, each with a 400 whose message names the fault.
    A Content-Type other than application/json, or a charset other than
    UTF-8, gets a 415.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        _check_media_type(media_type)
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = _declared_length(request) if request is not None else 0
        if declared > limit:
            raise PayloadTooLarge()
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge()
        if len(raw) < declared:
            # The client closed the connection early. The body received may
            # still be valid JSON, but it is not the body that was sent.
            raise exceptions.ParseError(
                f"The request body ended after {len(raw)} bytes, but its "
                f"Content-Length is {declared}. Send the whole body, with a "
                "Content-Length that matches it."
            )

        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise exceptions.ParseError(
                f"The request body is not valid UTF-8 (byte {error.start}). "
                "Send JSON encoded as UTF-8."
            ) from None
        try:
            data = json.loads(
                text,
                object_pairs_hook=_reject_duplicates,
                parse_constant=_reject_constant,
            )
        except _DuplicateKey as error:
            raise exceptions.ParseError(
                f"The JSON key {_shorten(str(error))} appears more than once. "
                "Send each field once."
            ) from None
        except json.JSONDecodeError as error:
            raise exceptions.ParseError(
                f"The request body is not valid JSON: {error.msg} at line "
                f"{error.lineno}, column {error.colno}."
            ) from None
        except RecursionError:
            raise exceptions.ParseError(
                "The request body is nested too deeply. Send a flat JSON object."
            ) from None
        except ValueError as error:
            # Numbers longer than Python's integer-string limit end up here.
            raise exceptions.ParseError(
                f"The request body is not valid JSON: {_shorten(str(error))}."
            ) from None

        # json.loads accepts an escaped lone surrogate, such as "\ud800".
        # Such a string cannot be encoded as UTF-8, so the database cannot
        # store it, and an error message that echoes it (an unknown field
        # name) fails when the response is rendered.
        surrogate = _find_lone_surrogate(data)
        if surrogate is not None:
            raise exceptions.ParseError(
                f"The request body contains \\u{ord(surrogate):04x}, an unpaired "
                "UTF-16 surrogate escape, which is not a character. Send valid "
                "Unicode text."
            )
        return data


def _shorten(text: str, limit: int = 64) -> str:
    """Quote untrusted text for an error message: escaped and cut short."""
    quoted = json.dumps(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + '…"'
