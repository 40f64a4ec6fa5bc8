"""Every kind of bad request body gets a 4xx JSON error and writes nothing."""

import pytest

from accounts.models import APIKey
from sandboxes.models import AccountSnapshot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def nothing_written():
    yield
    assert not AccountSnapshot.objects.exists()


def assert_error(response, status, *phrases, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["error"], str)
    for phrase in phrases:
        assert phrase in body["error"]
    if field is not None:
        assert field in body["fields"]
    return body


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("", "empty"),
        ("x" * 256, "256 characters"),
        ("snap abc", "whitespace"),
        ("snap\tabc", "whitespace"),
        ("snap\x00abc", "control"),
        ("snap\x7f", "control"),
        ("snäp", "non-ASCII"),
        (" snap", "whitespace"),
        (123, "must be a string"),
        (True, "must be a string"),
        (["snap"], "must be a string"),
        ({"id": "snap"}, "must be a string"),
    ],
)
def test_invalid_snapshot_id(patch, raw_key, value, phrase):
    body = assert_error(
        patch({"snapshotId": value}, raw_key),
        400,
        "snapshotId",
        phrase,
        field="snapshotId",
    )
    assert body["fields"]["snapshotId"]


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("github.com/org/repo", "absolute http or https URL"),
        ("/org/repo", "absolute http or https URL"),
        ("ftp://github.com/org/repo", "absolute http or https URL"),
        ("javascript:alert(1)", "absolute http or https URL"),
        ("https://", "absolute http or https URL"),
        ("https://user:secret@github.com/org/repo", "user name or password"),
        ("https://token@github.com/org/repo", "user name or password"),
        ("https://github.com/org repo", "whitespace"),
        ("https://github.com/\x00", "control"),
        ("https://gïthub.com/org", "non-ASCII"),
        ("https://github.com/" + "a" * 2030, "2049 characters"),
        ("", "absolute http or https URL"),
        (42, "must be a string"),
        (["https://github.com/o/r"], "must be a string"),
    ],
)
def test_invalid_github_repo(patch, raw_key, value, phrase):
    assert_error(
        patch({"github_repo": value}, raw_key),
        400,
        "github_repo",
        phrase,
        field="github_repo",
    )


@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        "",
        12345,
        None,
        ["550e8400-e29b-41d4-a716-446655440000"],
        "550e8400e29b41d4a716446655440000x",
        "{550e8400-e29b-41d4-a716-446655440000}",
    ],
)
def test_invalid_account_id(patch, raw_key, value):
    assert_error(
        patch({"account_id": value, "snapshotId": "s"}, raw_key),
        400,
        "account_id",
        "not a UUID",
        field="account_id",
    )


def test_invalid_fields_reported_together(patch, raw_key):
    body = assert_error(patch({"snapshotId": "", "github_repo": "nope"}, raw_key), 400)
    assert set(body["fields"]) == {"snapshotId", "github_repo"}


def test_valid_field_not_written_beside_invalid(patch, raw_key):
    assert_error(
        patch({"snapshotId": "snap_ok", "github_repo": "nope"}, raw_key),
        400,
        field="github_repo",
    )


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("snapshot_id", "snapshotId"),
        ("SnapshotID", "snapshotId"),
        ("snapshotid", "snapshotId"),
        ("githubRepo", "github_repo"),
        ("github_rep", "github_repo"),
        ("accountId", "account_id"),
    ],
)
def test_near_miss_key_names_field(patch, raw_key, key, meant):
    body = assert_error(patch({key: "x"}, raw_key), 400, key, meant)
    assert key in body["fields"]


def test_unknown_key_rejected(patch, raw_key):
    assert_error(
        patch({"snapshotId": "s", "color": "blue"}, raw_key),
        400,
        '"color"',
        "snapshotId, github_repo and account_id",
        field="color",
    )


def test_long_key_shortened_in_message(patch, raw_key):
    body = assert_error(patch({"k" * 10000: 1}, raw_key), 400, "Unknown field")
    assert len(body["error"]) < 200


def test_confusable_key_escaped(patch, raw_key):
    body = assert_error(patch({"snapshot\u0406d": "s"}, raw_key), 400, "Unknown field")
    assert "\\u0406" in body["error"]


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (b"[]", "JSON array"),
        (b'"snap"', "JSON string"),
        (b"42", "JSON number"),
        (b"null", "JSON null"),
        (b"true", "JSON boolean"),
    ],
)
def test_body_not_object(api_client, raw_key, body, phrase):
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        body,
        content_type="application/json",
        HTTP_X_API_KEY=raw_key,
    )
    assert_error(response, 400, phrase, "JSON object")


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        (b"{", "not valid JSON"),
        (b'{"snapshotId": "a",}', "not valid JSON"),
        (b"{'snapshotId': 'a'}", "not valid JSON"),
        (b'{"snapshotId": NaN}', "not valid JSON"),
        (b'{"snapshotId": Infinity}', "not valid JSON"),
        (b'{"a": 1, "a": 2}', "more than once"),
        (b'{"snapshotId": "\xff"}', "not valid UTF-8"),
        (b'{"snapshotId": "\xc0\xaf"}', "not valid UTF-8"),
        (b"[" * 20000 + b"]" * 20000, "nested too deeply"),
        (b'{"snapshotId": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_malformed_json(api_client, raw_key, body, phrase):
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        body,
        content_type="application/json",
        HTTP_X_API_KEY=raw_key,
    )
    assert_error(response, 400, phrase)


def test_empty_body(api_client, raw_key):
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        b"",
        content_type="application/json",
        HTTP_X_API_KEY=raw_key,
    )
    assert_error(response, 400, "empty")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "", "application/xml"],
)
def test_wrong_content_type(api_client, raw_key, content_type):
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        b'{"snapshotId": "s"}',
        content_type=content_type,
        HTTP_X_API_KEY=raw_key,
    )
    assert_error(response, 415, "application/json")


def test_body_over_limit(api_client, raw_key, settings):
    body = b'{"snapshotId": "' + b"a" * settings.API_MAX_BODY_BYTES + b'"}'
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        body,
        content_type="application/json",
        HTTP_X_API_KEY=raw_key,
    )
    assert_error(response, 413, "larger than 65536 bytes")


def test_body_at_limit_parsed(api_client, raw_key, settings):
    padding = settings.API_MAX_BODY_BYTES - len(b'{"snapshotId": "s"}')
    body = b'{"snapshotId": "s"' + b" " * padding + b"}"
    assert len(body) == settings.API_MAX_BODY_BYTES
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        body,
        content_type="application/json",
        HTTP_X_API_KEY=raw_key,
    )
    assert response.status_code == 200, response.content
    AccountSnapshot.objects.all().delete()


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_other_methods_405(api_client, raw_key, method):
    response = getattr(api_client, method)("/api/sandboxes", HTTP_X_API_KEY=raw_key)
    assert_error(response, 405, "Use PATCH")


def test_unknown_api_path_404(api_client, raw_key):
    response = api_client.get("/api/nothing-here", HTTP_X_API_KEY=raw_key)
    assert_error(response, 404, "/api/nothing-here")


def test_unknown_api_path_404_with_debug(client, settings):
    settings.DEBUG = True
    response = client.get("/api/")
    assert_error(response, 404, "PATCH /api/sandboxes")


def test_failed_request_leaves_key_usable(patch, raw_key):
    assert_error(patch({"snapshotId": ""}, raw_key), 400)
    assert APIKey.objects.get().revoked_at is None


def test_chunked_body_needs_length(api_client, raw_key):
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        b"",
        content_type="application/json",
        HTTP_X_API_KEY=raw_key,
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert_error(response, 411, "Content-Length")


def test_unknown_format_parameter(api_client, raw_key):
    response = api_client.patch(
        "/api/sandboxes?format=xml", {}, format="json", HTTP_X_API_KEY=raw_key
    )
    assert_error(response, 404)


def test_unknown_format_parameter_without_key(api_client):
    response = api_client.patch("/api/sandboxes?format=xml", {}, format="json")
    assert response.status_code in (401, 404)
    assert response.json()["error"]


def test_deeply_nested_account_id(patch, raw_key):
    value = 1
    for _ in range(100):
        value = [value]
    body = assert_error(patch({"account_id": value}, raw_key), 400, "account_id")
    assert "JSON array" in body["error"]


def test_many_unknown_fields_reported_briefly(patch, raw_key):
    body = assert_error(patch({f"field{n}": n for n in range(2000)}, raw_key), 400)
    assert len(body["fields"]) == 5
    assert "2000 unknown fields" in body["error"]


@pytest.mark.parametrize("method", ["patch", "post"])
def test_unrouted_api_path_is_json_404(api_client, method):
    response = getattr(api_client, method)("/api/sandboxes/", {}, format="json")
    assert_error(response, 404, "PATCH /api/sandboxes")


def test_repo_port_out_of_range(patch, raw_key):
    assert_error(
        patch({"github_repo": "http://github.com:99999/o/r"}, raw_key),
        400,
        field="github_repo",
    )
