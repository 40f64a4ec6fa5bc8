"""The API's JSON parser: stricter than DRF's, so that every malformed body
is a 4xx with a message, never a 500."""

import json

from django.conf import settings
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


class StrictJSONParser(JSONParser):
    """Parse a UTF-8 JSON body of at most ``API_MAX_BODY_BYTES``.

    Rejects duplicate keys, NaN and Infinity, invalid UTF-8 and nesting too deep
    for the decoder, each with a 400 that says so.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        if request is not None and _declared_length(request) > limit:
            raise PayloadTooLarge()
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge()

        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise exceptions.ParseError(
                f"The request body is not valid UTF-8 (byte {error.start}). "
                "Send JSON encoded as UTF-8."
            ) from None
        try:
            return json.loads(
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


def _shorten(text: str, limit: int = 64) -> str:
    """Quote untrusted text for an error message: escaped and cut short."""
    quoted = json.dumps(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 4] + '…"'
