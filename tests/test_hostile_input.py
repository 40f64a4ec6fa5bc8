"""A corpus of hostile requests to ``PATCH /api/sandboxes``.

Each hostile request must get a 4xx JSON error, ``{"error": "..."}``, and
write no snapshot record and no history entry. The exceptions are marked
where they occur: gunicorn rejects some raw requests with its own HTML page,
and a few valid requests beside the hostile ones must still succeed.

The first part goes through Django's test client. The second part sends raw
bytes over a socket to a gunicorn server on loopback, for what only a real
HTTP server handles: Content-Length that disagrees with the body, chunked
bodies and line breaks in headers.
"""

import contextlib
import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from sandboxes.models import AccountSnapshot, SnapshotHistory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
MEGABYTE = 1024 * 1024
TEN_MEGABYTES = 10 * MEGABYTE
# A bound on the length of error messages, which quote client values cut short.
ERROR_MAX_LENGTH = 500
SOME_UUID = "550e8400-e29b-41d4-a716-446655440000"
OTHER_UUID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"

CONTROL_CHARACTERS = [chr(code) for code in [*range(0x20), 0x7F]]
CONTROL_IDS = [f"U+{ord(character):04X}" for character in CONTROL_CHARACTERS]

# A valid value of each field, so that one inserted character is the only fault.
VALID_VALUES = {
    "snapshotId": "snap_abc123",
    "github_repo": "https://github.com/org/repo",
    "account_id": SOME_UUID,
}
POSITIONS = ["start", "middle", "end"]


def insert(text, character, position):
    index = {"start": 0, "middle": len(text) // 2, "end": len(text)}[position]
    return text[:index] + character + text[index:]


def send(api_client, body, key, content_type="application/json", **extra):
    """Send raw bytes as the body of PATCH /api/sandboxes."""
    return api_client.generic(
        "PATCH",
        "/api/sandboxes",
        body,
        content_type=content_type,
        HTTP_X_API_KEY=key,
        **extra,
    )


def send_json(api_client, value, key):
    """Send ``value`` encoded by json.dumps, which escapes every control
    character and lone surrogate as \\uXXXX."""
    return send(api_client, json.dumps(value).encode(), key)


def assert_nothing_written():
    assert not AccountSnapshot.objects.exists()
    assert not SnapshotHistory.objects.exists()


def assert_rejected(response, status=None, phrase=None, field=None):
    """Check that the response is a 4xx JSON error and that nothing was
    written; return the decoded body."""
    assert 400 <= response.status_code < 500, response.content[:500]
    if status is not None:
        assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content.decode("utf-8"))
    assert isinstance(body["error"], str)
    assert len(body["error"]) <= ERROR_MAX_LENGTH
    assert "Traceback" not in response.content.decode("utf-8")
    if phrase is not None:
        assert phrase in body["error"]
    if field is not None:
        assert field in body["fields"]
    assert_nothing_written()
    return body


# Control characters


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=CONTROL_IDS)
@pytest.mark.parametrize("field", list(VALID_VALUES))
def test_control_character_in_value(api_client, raw_key, field, character, position):
    value = insert(VALID_VALUES[field], character, position)
    response = send_json(api_client, {field: value}, raw_key)
    assert_rejected(response, 400, field=field)


@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=CONTROL_IDS)
def test_unescaped_control_character_in_string(api_client, raw_key, character):
    # JSON requires 0x00-0x1F to be escaped inside strings. 0x7F may appear
    # as is, and the snapshotId check rejects it.
    body = b'{"snapshotId": "snap' + character.encode() + b'abc"}'
    assert_rejected(send(api_client, body, raw_key), 400)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("character", CONTROL_CHARACTERS, ids=CONTROL_IDS)
@pytest.mark.parametrize("name", ["snapshotId", "account_id"])
def test_control_character_in_key(api_client, raw_key, name, character, position):
    key = insert(name, character, position)
    response = send_json(api_client, {key: "snap_abc"}, raw_key)
    body = assert_rejected(response, 400, "Unknown field")
    assert list(body["fields"]) == [key]
    assert body["error"].replace("\u2026", "").isascii()


# Every control character around or inside an API key, except a space or tab
# at either end, which is optional whitespace that HTTP allows around a value.
API_KEY_CASES = [
    (character, position)
    for character in CONTROL_CHARACTERS
    for position in POSITIONS
    if not (character == "\t" and position != "middle")
]


@pytest.mark.parametrize(
    ("character", "position"),
    API_KEY_CASES,
    ids=[f"U+{ord(c):04X}-{p}" for c, p in API_KEY_CASES],
)
@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_control_character_in_api_key(api_client, raw_key, header, character, position):
    sent = insert(raw_key, character, position)
    if header == "x-api-key":
        extra = {"HTTP_X_API_KEY": sent}
    else:
        extra = {"HTTP_AUTHORIZATION": f"Bearer {sent}"}
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        b'{"snapshotId": "snap_abc"}',
        content_type="application/json",
        **extra,
    )
    assert_rejected(response, 401)


@pytest.mark.parametrize("character", [" ", "\t", "\xa0", "\x85", "\u2028"], ids=repr)
def test_api_key_strips_only_space_tab(api_client, raw_key, character):
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        b"{}",
        content_type="application/json",
        HTTP_X_API_KEY=character + raw_key + character,
    )
    if character in " \t":
        assert response.status_code == 200, response.content
        assert_nothing_written()
    else:
        assert_rejected(response, 401)


# Invalid UTF-8

INVALID_UTF8 = {
    "overlong_nul_2_bytes": b"\xc0\x80",
    "overlong_slash_2_bytes": b"\xc0\xaf",
    "overlong_slash_3_bytes": b"\xe0\x80\xaf",
    "overlong_slash_4_bytes": b"\xf0\x80\x80\xaf",
    "five_byte_sequence": b"\xf8\x88\x80\x80\xaf",
    "encoded_surrogate_d800": b"\xed\xa0\x80",
    "encoded_surrogate_dfff": b"\xed\xbf\xbf",
    "encoded_surrogate_pair": b"\xed\xa0\xbd\xed\xb8\x80",
    "above_u10ffff": b"\xf4\x90\x80\x80",
    "lone_continuation": b"\x80",
    "lone_continuation_bf": b"\xbf",
    "byte_fe": b"\xfe",
    "byte_ff": b"\xff",
    "truncated_3_byte": b"\xe2\x82",
    "truncated_2_byte": b"\xc3",
    "latin1_e_acute": b"\xe9",
}

UTF8_PLACES = {
    "snapshot_id": b'{"snapshotId": "snap%sabc"}',
    "github_repo": b'{"github_repo": "https://github.com/%s"}',
    "account_id": b'{"account_id": "550e8400%s-e29b-41d4-a716-446655440000"}',
    "key": b'{"snapshot%sId": "snap_abc"}',
    "outside_string": b'{"snapshotId": "snap_abc" %s}',
}


@pytest.mark.parametrize("place", list(UTF8_PLACES))
@pytest.mark.parametrize("sequence", list(INVALID_UTF8.values()), ids=INVALID_UTF8)
def test_invalid_utf8(api_client, raw_key, place, sequence):
    body = UTF8_PLACES[place] % sequence
    assert_rejected(send(api_client, body, raw_key), 400, "not valid UTF-8")


OTHER_ENCODINGS = {
    "utf8_bom": b'\xef\xbb\xbf{"snapshotId": "snap_abc"}',
    "utf16_le_bom": '\ufeff{"snapshotId": "snap_abc"}'.encode("utf-16-le"),
    "utf16_be": '{"snapshotId": "snap_abc"}'.encode("utf-16-be"),
    "utf32": '{"snapshotId": "snap_abc"}'.encode("utf-32"),
}


@pytest.mark.parametrize("body", list(OTHER_ENCODINGS.values()), ids=OTHER_ENCODINGS)
def test_body_in_other_encoding(api_client, raw_key, body):
    assert_rejected(send(api_client, body, raw_key), 400)


# Lone surrogates, as JSON escapes: json.loads accepts them, but no UTF-8
# text can contain them.

LONE_SURROGATES = {
    "high_d800": r"\ud800",
    "high_dbff": r"\udbff",
    "low_dc00": r"\udc00",
    "low_dfff": r"\udfff",
    "pair_reversed": r"\ude00\ud83d",
    "high_then_letter": r"\ud83dx",
    "high_then_escaped_letter": r"\ud83d\u0041",
    "two_highs": r"\ud83d\ud83d",
}

SURROGATE_PLACES = {
    "snapshot_id": '{"snapshotId": "snap%s"}',
    "github_repo": '{"github_repo": "https://github.com/%s"}',
    "account_id": '{"account_id": "%s"}',
    "key": '{"snapshot%sId": "snap_abc"}',
    "key_alone": '{"%s": 1}',
    "array_item": '{"snapshotId": ["%s"]}',
    "nested_key": '{"snapshotId": {"%s": 1}}',
}


@pytest.mark.parametrize("place", list(SURROGATE_PLACES))
@pytest.mark.parametrize(
    "escape", list(LONE_SURROGATES.values()), ids=list(LONE_SURROGATES)
)
def test_lone_surrogate_escape(api_client, raw_key, place, escape):
    body = (SURROGATE_PLACES[place] % escape).encode()
    response = send(api_client, body, raw_key)
    assert_rejected(response, 400, "unpaired UTF-16 surrogate")


def test_surrogate_pair_key_decoded(api_client, raw_key):
    body = rb'{"snapshot\ud83d\ude00Id": "snap_abc"}'
    response = assert_rejected(send(api_client, body, raw_key), 400, "Unknown field")
    assert list(response["fields"]) == ["snapshot\U0001f600Id"]


def test_surrogate_pair_value_non_ascii(api_client, raw_key):
    body = rb'{"snapshotId": "snap\ud83d\ude00"}'
    assert_rejected(send(api_client, body, raw_key), 400, "non-ASCII")


# Deep nesting

DEPTH = 10_000
NESTED_BODIES = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "mixed": b'[{"a":' * (DEPTH // 2) + b"1" + b"}]" * (DEPTH // 2),
    "arrays_in_snapshot_id": b'{"snapshotId": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
    "objects_in_account_id": b'{"account_id": '
    + b'{"a":' * DEPTH
    + b"1"
    + b"}" * DEPTH
    + b"}",
    "arrays_in_key_value": b'{"x": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
}


@pytest.mark.parametrize("body", list(NESTED_BODIES.values()), ids=NESTED_BODIES)
def test_nested_10000_deep(api_client, raw_key, body):
    assert_rejected(send(api_client, body, raw_key), 400, "nested too deeply")


def test_unclosed_nesting(api_client, raw_key):
    assert_rejected(send(api_client, b"[" * DEPTH, raw_key), 400)


def test_nesting_within_decoder_limit(api_client, raw_key):
    body = b'{"snapshotId": ' + b"[" * 100 + b"]" * 100 + b"}"
    assert_rejected(send(api_client, body, raw_key), 400, field="snapshotId")


# Numbers

HUGE_NUMBERS = {
    "1e400": "1e400",
    "minus_1e400": "-1e400",
    "1e-400": "1e-400",
    "minus_zero": "-0",
    "minus_zero_float": "-0.0",
    "exponent_99999": "1E+99999",
    "ten_to_5000": "1" + "0" * 5000,
    "minus_5000_nines": "-" + "9" * 5000,
    "5000_digit_fraction": "0." + "0" * 5000 + "1",
    "4000_digits": "1" + "0" * 3999,
    "max_uint64_plus_one": str(2**64),
}


@pytest.mark.parametrize("field", list(VALID_VALUES))
@pytest.mark.parametrize("number", list(HUGE_NUMBERS.values()), ids=HUGE_NUMBERS)
def test_huge_number(api_client, raw_key, field, number):
    body = f'{{"{field}": {number}}}'.encode()
    response = send(api_client, body, raw_key)
    body = assert_rejected(response, 400)
    if "fields" in body:
        assert list(body["fields"]) == [field]


@pytest.mark.parametrize("number", list(HUGE_NUMBERS.values()), ids=HUGE_NUMBERS)
def test_huge_number_as_body(api_client, raw_key, number):
    assert_rejected(send(api_client, number.encode(), raw_key), 400)


# Duplicate keys

DUPLICATE_KEYS = {
    "same_spelling": '{"snapshotId": "a", "snapshotId": "b"}',
    "escaped_spelling": '{"snapshotId": "a", "snapshot\\u0049d": "b"}',
    "all_escaped": '{"\\u0073napshotId": "a", "snapshotI\\u0064": "b"}',
    "then_null": '{"snapshotId": "a", "snapshotId": null}',
    "account_id_twice": f'{{"account_id": "{SOME_UUID}", "account_id": '
    f'"{OTHER_UUID}", "snapshotId": "a"}}',
    "nested": '{"snapshotId": {"a": 1, "a": 2}}',
    "unknown_key": '{"color": 1, "color": 1}',
    "nul_key": '{"\\u0000": 1, "\\u0000": 2}',
    "empty_key": '{"": 1, "": 2}',
}


@pytest.mark.parametrize("body", list(DUPLICATE_KEYS.values()), ids=DUPLICATE_KEYS)
def test_duplicate_keys(api_client, raw_key, body):
    response = send(api_client, body.encode(), raw_key)
    assert_rejected(response, 400, "more than once")


# Body size and Content-Length, through the test client

BIG_BODY = b'{"snapshotId": "' + b"a" * TEN_MEGABYTES + b'"}'
SMALL_BODY = b'{"snapshotId": "snap_abc"}'


def test_body_of_10_megabytes(api_client, raw_key):
    response = send(api_client, BIG_BODY, raw_key)
    assert_rejected(response, 413, "larger than")


def test_content_length_shorter_than_big_body(api_client, raw_key):
    response = send(api_client, BIG_BODY, raw_key, CONTENT_LENGTH="16")
    assert_rejected(response, 400, "not valid JSON")


def test_short_content_length_bounds_body(api_client, raw_key):
    # Only the declared bytes are the body. The rest, which would write a
    # snapshot if it were parsed, is not part of this request.
    body = b'{}{"snapshotId": "snap_abc"}'
    response = send(api_client, body, raw_key, CONTENT_LENGTH="2")
    assert response.status_code == 200, response.content
    assert response.json()["snapshot_id"] is None
    assert_nothing_written()


def test_content_length_over_limit_on_small_body(api_client, raw_key):
    response = send(api_client, SMALL_BODY, raw_key, CONTENT_LENGTH=str(TEN_MEGABYTES))
    assert_rejected(response, 413, "larger than")


def test_content_length_longer_than_body(api_client, raw_key):
    # A real server's input stream ends early when the client stops sending.
    # The test client's own stream would fail on the short read instead.
    response = send(
        api_client,
        SMALL_BODY,
        raw_key,
        CONTENT_LENGTH=str(len(SMALL_BODY) + 100),
        **{"wsgi.input": io.BytesIO(SMALL_BODY)},
    )
    assert_rejected(response, 400, "Content-Length")


@pytest.mark.parametrize("length", ["0", "-1", "abc", "1e3", "0x10", " ", "٣"])
def test_malformed_content_length(api_client, raw_key, length):
    response = send(api_client, SMALL_BODY, raw_key, CONTENT_LENGTH=length)
    assert_rejected(response, 400)


# Content types

FORM_BODY = b"snapshotId=snap_abc"
MULTIPART_BODY = (
    b"--boundary\r\n"
    b'Content-Disposition: form-data; name="snapshotId"\r\n\r\n'
    b"snap_abc\r\n"
    b"--boundary--\r\n"
)

CONTENT_TYPES = {
    "multipart_form": ("multipart/form-data; boundary=boundary", MULTIPART_BODY),
    "urlencoded_form": ("application/x-www-form-urlencoded", FORM_BODY),
    "text_plain_utf8": ("text/plain; charset=utf-8", SMALL_BODY),
    "json_bogus_charset": ("application/json; charset=bogus", SMALL_BODY),
    "json_empty_charset": ("application/json; charset=", SMALL_BODY),
    "json_utf16_charset": ("application/json; charset=utf-16", SMALL_BODY),
    "json_latin1_charset": ("application/json; charset=iso-8859-1", SMALL_BODY),
    "wildcard": ("*/*", SMALL_BODY),
    "application_wildcard": ("application/*", SMALL_BODY),
    "text_json": ("text/json", SMALL_BODY),
    "json_seq": ("application/json-seq", SMALL_BODY),
    "problem_json": ("application/problem+json", SMALL_BODY),
    "octet_stream": ("application/octet-stream", SMALL_BODY),
    "json_with_nul": ("application/json\x00", SMALL_BODY),
    "very_long": ("application/" + "x" * 10_000, SMALL_BODY),
}


@pytest.mark.parametrize(
    ("content_type", "body"), list(CONTENT_TYPES.values()), ids=CONTENT_TYPES
)
def test_unsupported_content_type(api_client, raw_key, content_type, body):
    response = send(api_client, body, raw_key, content_type=content_type)
    assert_rejected(response, 415, "application/json")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=UTF-8",
        'application/json; charset="utf-8"',
        "Application/JSON; Charset=utf8",
    ],
)
def test_json_content_type_accepted(api_client, raw_key, content_type):
    response = send(api_client, b"{}", raw_key, content_type=content_type)
    assert response.status_code == 200, response.content
    assert_nothing_written()


# Wrong JSON types

WRONG_TYPES = {
    "zero": 0,
    "one": 1,
    "negative": -1,
    "float": 1.5,
    "true": True,
    "false": False,
    "empty_array": [],
    "array_of_string": ["snap_abc"],
    "empty_object": {},
    "object": {"snapshotId": "snap_abc"},
}


@pytest.mark.parametrize("value", list(WRONG_TYPES.values()), ids=WRONG_TYPES)
@pytest.mark.parametrize("field", list(VALID_VALUES))
def test_wrong_json_type(api_client, raw_key, field, value):
    response = send_json(api_client, {field: value}, raw_key)
    body = assert_rejected(response, 400, field=field)
    assert list(body["fields"]) == [field]


def test_null_account_id(api_client, raw_key):
    response = send_json(api_client, {"account_id": None, "snapshotId": "s"}, raw_key)
    assert_rejected(response, 400, "not a UUID", field="account_id")


# Long and confusable keys


def test_key_of_100_kilobytes(api_client, raw_key):
    response = send_json(api_client, {"k" * 100 * 1024: "snap_abc"}, raw_key)
    assert_rejected(response, 413)


def test_key_just_under_body_limit(api_client, raw_key, settings):
    key = "k" * (settings.API_MAX_BODY_BYTES - 100)
    body = assert_rejected(send_json(api_client, {key: 1}, raw_key), 400)
    assert list(body["fields"]) == [key]


def test_many_unknown_keys(api_client, raw_key):
    value = {f"k{index}": 0 for index in range(4000)}
    body = assert_rejected(send_json(api_client, value, raw_key), 400)
    # Only the first few are named, so the error stays small.
    assert len(body["fields"]) == 5
    assert "4000 unknown fields" in body["error"]


CONFUSABLE_KEYS = {
    "cyrillic_dze_s": "\u0455napshotId",
    "cyrillic_a": "sn\u0430pshotId",
    "greek_omicron": "snapsh\u03bftId",
    "all_cyrillic_lookalikes": "\u0455n\u0430\u0440\u0455h\u043et\u0406d",
    "cyrillic_e_in_repo": "github_r\u0435po",
    "cyrillic_a_in_account": "\u0430ccount_id",
    "cyrillic_i_in_account": "account_\u0456d",
    "fullwidth_snapshot_id": "\uff53\uff4e\uff41\uff50\uff53"
    "\uff48\uff4f\uff54\uff29\uff44",
    "fullwidth_one_letter": "snapshot\uff29d",
    "fullwidth_account_id": "\uff41\uff43\uff43\uff4f\uff55"
    "\uff4e\uff54\uff3f\uff49\uff44",
    "math_bold": "\U0001d42c\U0001d427\U0001d41a\U0001d429\U0001d42c\U0001d421"
    "\U0001d428\U0001d42d\U0001d408\U0001d41d",
    "zero_width_joiner": "snapshot\u200dId",
    "zero_width_space": "\u200bsnapshotId",
    "zero_width_non_joiner": "snapshotId\u200c",
    "word_joiner": "snapshot\u2060Id",
    "byte_order_mark": "\ufeffsnapshotId",
    "right_to_left_override": "\u202esnapshotId",
    "override_reversed_account_id": "\u202edi_tnuocca",
    "pop_directional": "snapshotId\u202c",
    "directional_isolates": "\u2066snapshotId\u2069",
    "combining_dot": "snapshotI\u0307d",
    "dotted_capital_i": "snapshot\u0130d",
    "long_s": "\u017fnapshotId",
    "no_break_space": "snapshotId\u00a0",
    "soft_hyphen": "github\u00ad_repo",
}


@pytest.mark.parametrize("key", list(CONFUSABLE_KEYS.values()), ids=CONFUSABLE_KEYS)
def test_confusable_key(api_client, raw_key, key):
    response = send_json(api_client, {key: "snap_abc"}, raw_key)
    body = assert_rejected(response, 400, "Unknown field")
    # The key comes back exactly as sent, not normalized into a field name,
    # and the message escapes it, so invisible and bidi characters show. A
    # shortened key ends in an ellipsis, the message's only non-ASCII text.
    assert list(body["fields"]) == [key]
    assert body["error"].replace("\u2026", "").isascii()


CONFUSABLE_VALUES = {
    "account_id_fullwidth_digits": (
        "account_id",
        SOME_UUID.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}),
    ),
    "account_id_arabic_digits": (
        "account_id",
        SOME_UUID.translate({ord(d): 0x0660 + int(d) for d in "0123456789"}),
    ),
    "account_id_cyrillic_a": ("account_id", SOME_UUID.replace("a", "\u0430")),
    "account_id_urn": ("account_id", f"urn:uuid:{SOME_UUID}"),
    "account_id_trailing_newline": ("account_id", SOME_UUID + "\n"),
    "snapshot_id_cyrillic": ("snapshotId", "\u0455nap_abc"),
    "snapshot_id_fullwidth": ("snapshotId", "\uff53nap_abc"),
    "snapshot_id_zero_width": ("snapshotId", "snap\u200b_abc"),
    "repo_cyrillic_host": ("github_repo", "https://g\u0456thub.com/org/repo"),
    "repo_right_to_left": ("github_repo", "https://github.com/\u202eorg/repo"),
}


@pytest.mark.parametrize(
    ("field", "value"), list(CONFUSABLE_VALUES.values()), ids=CONFUSABLE_VALUES
)
def test_confusable_value(api_client, raw_key, field, value):
    response = send_json(api_client, {field: value}, raw_key)
    assert_rejected(response, 400, field=field)


@pytest.mark.parametrize(
    "request_id",
    ["id\r\nSet-Cookie: a=b", "id\nX-Injected: 1", "id\x00", "x" * 129, "\u202eid"],
    ids=["crlf", "lf", "nul", "too_long", "bidi"],
)
def test_hostile_request_id_replaced(api_client, raw_key, request_id):
    response = send(
        api_client, b'{"snapshotId": ""}', raw_key, HTTP_X_REQUEST_ID=request_id
    )
    assert_rejected(response, 400)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


@pytest.mark.parametrize(
    "forwarded_for",
    ["\x00", "1.2.3.4\x00", "not-an-address", "a" * 300],
    ids=["nul", "address_then_nul", "not_an_address", "300_characters"],
)
def test_forwarded_for_garbage_not_stored(api_client, raw_key, settings, forwarded_for):
    # NOTE: only reachable when NUM_PROXIES is more than the proxies that
    # really rewrite X-Forwarded-For, so that the client controls the entry.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    response = send(
        api_client,
        b'{"snapshotId": "snap_abc"}',
        raw_key,
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )
    assert response.status_code == 200, response.content
    assert SnapshotHistory.objects.get().source == "127.0.0.1"


# Real HTTP: raw bytes to a gunicorn server on loopback


def run_manage(env, *args):
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def wait_for_port(log_path, process, timeout=30):
    """Return the port gunicorn logs that it listens on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(
            r"Listening at: http://127\.0\.0\.1:(\d+)", log_path.read_text()
        )
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start: {log_path.read_text()[-2000:]}")


class Server:
    """A gunicorn server on a temporary SQLite database, with two accounts:
    one that only hostile requests use, and a control account."""

    def __init__(self, port, database, hostile, control):
        self.port = port
        self.database = database
        self.hostile_key, self.hostile_account = hostile
        self.control_key, self.control_account = control

    def rows(self, account_id):
        """Return the number of snapshot records and history entries of an
        account in the server's database."""
        with contextlib.closing(sqlite3.connect(self.database)) as connection:
            counts = [
                connection.execute(
                    f"SELECT COUNT(*) FROM {table} WHERE account_id = ?",  # noqa: S608
                    [uuid.UUID(account_id).hex],
                ).fetchone()[0]
                for table in ("sandboxes_accountsnapshot", "sandboxes_snapshothistory")
            ]
        return tuple(counts)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gunicorn")
    database = directory / "db.sqlite3"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "recoup.settings",
        "DEBUG": "false",
        "SECRET_KEY": "hostile-input-test-secret-key-long-enough-for-django-checks",
        "API_KEY_HASH_SECRET": "hostile-input-test-hash-secret",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{database}",
        "API_RATE_LIMIT": "",
        "AUTH_FAILURE_RATE_LIMIT": "",
        "GUNICORN_ACCESS_LOG": os.devnull,
    }
    run_manage(env, "migrate", "--noinput")
    accounts = []
    for name in ("Hostile", "Control"):
        account_id = run_manage(env, "create_account", "--name", name).strip()
        key = run_manage(env, "create_api_key", "--account", account_id).strip()
        accounts.append((key, account_id))

    log_path = directory / "gunicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "gunicorn.conf.py",
                "--bind",
                "127.0.0.1:0",
                "--workers",
                "1",
                "--timeout",
                "30",
                "recoup.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        port = wait_for_port(log_path, process)
        yield Server(port, database, *accounts)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def exchange(port, data, timeout=30):
    """Send ``data`` on a new connection, close the sending side, and return
    everything the server sent back.

    The bytes are sent from a second thread while this one reads, because
    the server may respond and close before it has read a large body. The
    reset that follows such a close ends the reading, with the response
    already read.
    """
    connection = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received = bytearray()

    def send_all():
        with contextlib.suppress(OSError):
            connection.sendall(data)
            connection.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send_all)
    sender.start()
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        sender.join(timeout)
        connection.close()
    return bytes(received)


def parse_response(raw):
    """Split a raw HTTP/1.1 response into (status, headers, body)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ")[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def request_bytes(headers, body=b""):
    """Build a PATCH /api/sandboxes request from header lines given as bytes,
    sent exactly as written."""
    lines = [
        b"PATCH /api/sandboxes HTTP/1.1",
        b"Host: 127.0.0.1",
        # The service expects a TLS proxy in front of it, and without this
        # header it redirects to HTTPS.
        b"X-Forwarded-Proto: https",
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(body, size=65536):
    chunks = [body[index : index + size] for index in range(0, len(body), size)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return encoded + b"0\r\n\r\n"


JSON_TYPE = b"Content-Type: application/json"


def length(body):
    return b"Content-Length: %d" % len(body)


# Each builder takes the hostile account's key and returns the raw request,
# and the expected status. ``json`` is False where gunicorn itself rejects
# the request, with its own HTML page, before the application receives it.
RAW_CASES = {
    "body_10_megabytes": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, JSON_TYPE, length(BIG_BODY)], BIG_BODY
        ),
        413,
        True,
    ),
    "content_length_shorter_than_body": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, JSON_TYPE, b"Content-Length: 16"], BIG_BODY
        ),
        400,
        True,
    ),
    "content_length_longer_than_body": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, JSON_TYPE, b"Content-Length: 1000"], SMALL_BODY
        ),
        400,
        True,
    ),
    "content_length_over_limit_on_small_body": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, JSON_TYPE, b"Content-Length: %d" % TEN_MEGABYTES],
            SMALL_BODY,
        ),
        413,
        True,
    ),
    "chunked_without_content_length": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, JSON_TYPE, b"Transfer-Encoding: chunked"],
            chunked(SMALL_BODY),
        ),
        411,
        True,
    ),
    "chunked_10_megabytes": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, JSON_TYPE, b"Transfer-Encoding: chunked"],
            chunked(BIG_BODY),
        ),
        411,
        True,
    ),
    "chunked_and_content_length": (
        lambda key: request_bytes(
            [
                b"x-api-key: " + key,
                JSON_TYPE,
                b"Transfer-Encoding: chunked",
                length(SMALL_BODY),
            ],
            chunked(SMALL_BODY),
        ),
        400,
        False,
    ),
    "content_length_twice": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, JSON_TYPE, length(SMALL_BODY), length(SMALL_BODY)],
            SMALL_BODY,
        ),
        400,
        False,
    ),
    "content_length_negative": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, JSON_TYPE, b"Content-Length: -1"], SMALL_BODY
        ),
        400,
        False,
    ),
    "no_content_type": (
        lambda key: request_bytes(
            [b"x-api-key: " + key, length(SMALL_BODY)], SMALL_BODY
        ),
        415,
        True,
    ),
    "json_bogus_charset": (
        lambda key: request_bytes(
            [
                b"x-api-key: " + key,
                b"Content-Type: application/json; charset=bogus",
                length(SMALL_BODY),
            ],
            SMALL_BODY,
        ),
        415,
        True,
    ),
    # Django cannot build a request whose charset contains NUL, but gunicorn
    # rejects NUL in any header first.
    "json_charset_nul": (
        lambda key: request_bytes(
            [
                b"x-api-key: " + key,
                b"Content-Type: application/json; charset=utf-8\x00",
                length(SMALL_BODY),
            ],
            SMALL_BODY,
        ),
        400,
        False,
    ),
}

# gunicorn 26 and later reject these control bytes in a header value with
# their own HTML 400; older versions pass them on, and the service returns 401.
SERVER_OR_SERVICE = (400, 401)

# Line breaks and other control bytes in the two credential headers.
HEADER_VALUE_CASES = {
    "bare_cr": (lambda key: key + b"\rX-Other: 1", 400, False),
    "bare_lf": (lambda key: key + b"\nX-Other: 1", 400, False),
    "cr_at_end": (lambda key: key + b"\r", 400, False),
    "obsolete_line_folding": (lambda key: key + b"\r\n continued", 400, False),
    "nul": (lambda key: key + b"\x00", 400, False),
    "unit_separator": (lambda key: key + b"\x1f", SERVER_OR_SERVICE, True),
    "vertical_tab": (lambda key: key + b"\x0b", SERVER_OR_SERVICE, True),
    "form_feed": (lambda key: key + b"\x0c", SERVER_OR_SERVICE, True),
    "delete": (lambda key: key + b"\x7f", SERVER_OR_SERVICE, True),
    "latin1_no_break_space": (lambda key: key + b"\xa0", 401, True),
    "latin1_next_line": (lambda key: key + b"\x85", 401, True),
    "utf8_line_separator": (lambda key: key + "\u2028".encode(), 401, True),
}

for name, (value, status, is_json) in HEADER_VALUE_CASES.items():
    RAW_CASES[f"x_api_key_{name}"] = (
        lambda key, value=value: request_bytes(
            [b"x-api-key: " + value(key), JSON_TYPE, length(SMALL_BODY)], SMALL_BODY
        ),
        status,
        is_json,
    )
    RAW_CASES[f"authorization_{name}"] = (
        lambda key, value=value: request_bytes(
            [b"Authorization: Bearer " + value(key), JSON_TYPE, length(SMALL_BODY)],
            SMALL_BODY,
        ),
        status,
        is_json,
    )

# A line break that starts a new header: the request then carries two
# credentials, and neither is used.
RAW_CASES["x_api_key_crlf_adds_second_key"] = (
    lambda key: request_bytes(
        [
            b"x-api-key: " + key + b"\r\nx-api-key: " + key,
            JSON_TYPE,
            length(SMALL_BODY),
        ],
        SMALL_BODY,
    ),
    401,
    True,
)
RAW_CASES["authorization_crlf_adds_x_api_key"] = (
    lambda key: request_bytes(
        [
            b"Authorization: Bearer recoup_sk_wrong\r\nx-api-key: " + key,
            JSON_TYPE,
            length(SMALL_BODY),
        ],
        SMALL_BODY,
    ),
    401,
    True,
)


def test_server_accepts_valid_request(server):
    body = b'{"snapshotId": "snap_control"}'
    raw = exchange(
        server.port,
        request_bytes(
            [b"x-api-key: " + server.control_key.encode(), JSON_TYPE, length(body)],
            body,
        ),
    )
    status, _, response_body = parse_response(raw)
    assert status == 200, raw[:1000]
    assert json.loads(response_body)["snapshot_id"] == "snap_control"
    assert server.rows(server.control_account) == (1, 1)


@pytest.mark.parametrize(
    ("build", "status", "is_json"), RAW_CASES.values(), ids=RAW_CASES
)
def test_raw_request(server, build, status, is_json):
    # Compared with the count before, so that one failing case does not fail
    # the cases after it.
    rows_before = server.rows(server.hostile_account)
    raw = exchange(server.port, build(server.hostile_key.encode()))
    assert raw, "the server closed the connection without a response"
    got_status, headers, body = parse_response(raw)
    if status == SERVER_OR_SERVICE:
        assert got_status in status, raw[:1000]
        # Only the service's own response is JSON.
        is_json = got_status == 401
    else:
        assert got_status == status, raw[:1000]
    if is_json:
        assert headers["content-type"] == "application/json"
        assert isinstance(json.loads(body)["error"], str)
    assert b"Traceback" not in raw
    assert server.rows(server.hostile_account) == rows_before
