from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.keys import KEY_PREFIX, LAST_USED_RESOLUTION, issue_key, key_digest
from accounts.models import APIKey

pytestmark = pytest.mark.django_db


def assert_unauthorized(response, phrase):
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert phrase in response.json()["error"]


def test_x_api_key_accepted(patch, raw_key, account):
    response = patch({}, raw_key)
    assert response.status_code == 200, response.content
    assert response.json()["account_id"] == str(account.pk)


def test_bearer_token_accepted(patch, raw_key, account):
    response = patch({}, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert response.status_code == 200, response.content
    assert response.json()["account_id"] == str(account.pk)


def test_bearer_scheme_case_insensitive(patch, raw_key):
    response = patch({}, HTTP_AUTHORIZATION=f"bearer {raw_key}")
    assert response.status_code == 200, response.content


def test_missing_key_rejected(patch):
    assert_unauthorized(patch({}), "No API key was sent")


def test_empty_header_counts_as_missing(patch):
    assert_unauthorized(patch({}, HTTP_X_API_KEY=""), "No API key was sent")


def test_both_credentials_rejected(patch, raw_key):
    response = patch({}, raw_key, HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert_unauthorized(response, "Send only one of them")


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "Bearer a b"],
)
def test_malformed_authorization_rejected(patch, authorization):
    response = patch({}, HTTP_AUTHORIZATION=authorization)
    assert_unauthorized(response, "is not 'Bearer <key>'")


@pytest.mark.parametrize(
    "key",
    [
        KEY_PREFIX + "A" * 43,
        "not-a-key",
        KEY_PREFIX + "A" * 42,
        "recoup_sk_" + "é" * 43,
    ],
)
def test_unknown_key_rejected(patch, key):
    response = patch({}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert_unauthorized(response, "not valid")


def test_revoked_key_rejected(patch, raw_key):
    APIKey.objects.update(revoked_at=timezone.now())
    assert_unauthorized(patch({}, raw_key), "revoked")


def test_expired_key_rejected(patch, account):
    raw = issue_key(account=account, expires_at=timezone.now() - timedelta(seconds=1))
    assert_unauthorized(patch({}, raw.raw_key), "expired")


def test_key_before_expiry_accepted(patch, account):
    raw = issue_key(account=account, expires_at=timezone.now() + timedelta(hours=1))
    assert patch({}, raw.raw_key).status_code == 200


def test_authentication_before_body(api_client):
    response = api_client.generic(
        "PATCH", "/api/sandboxes", b"{broken", content_type="application/json"
    )
    assert response.status_code == 401, response.content


def test_bad_key_with_broken_body_is_401(api_client):
    response = api_client.generic(
        "PATCH",
        "/api/sandboxes",
        b"[[[",
        content_type="text/plain",
        HTTP_X_API_KEY="wrong",
    )
    assert response.status_code == 401, response.content


def test_session_login_not_accepted(client, django_user_model, account):
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(user)
    response = client.patch("/api/sandboxes", b"{}", content_type="application/json")
    assert response.status_code == 401, response.content


def test_only_digest_stored(account):
    issued = issue_key(account=account)
    stored = APIKey.objects.get(pk=issued.api_key.pk)
    assert stored.digest == key_digest(issued.raw_key)
    assert issued.raw_key not in stored.digest
    assert issued.raw_key not in str(stored)
    assert stored.prefix == issued.raw_key[: len(stored.prefix)]
    assert len(stored.prefix) < 20


def test_key_format(account):
    raw = issue_key(account=account).raw_key
    assert raw.startswith(KEY_PREFIX)
    assert len(raw) == len(KEY_PREFIX) + 43


def test_digest_is_hmac_sha256(settings):
    settings.API_KEY_HASH_SECRET = "secret"
    # HMAC-SHA256("secret", "recoup_sk_x"), computed independently with openssl.
    assert key_digest("recoup_sk_x") == (
        "c93a95fe19f0c1781ca067004e0dc9f05e6f90506f381ca106c18476254104ce"
    )


def test_last_used_written_once_a_minute(patch, raw_key):
    patch({}, raw_key)
    first = APIKey.objects.get().last_used_at
    assert first is not None

    patch({}, raw_key)
    assert APIKey.objects.get().last_used_at == first

    APIKey.objects.update(last_used_at=first - LAST_USED_RESOLUTION)
    patch({}, raw_key)
    assert APIKey.objects.get().last_used_at > first - LAST_USED_RESOLUTION
