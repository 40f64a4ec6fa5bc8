from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from sandboxes.models import AccountSnapshot

pytestmark = pytest.mark.django_db

RESPONSE_FIELDS = {
    "account_id",
    "snapshot_id",
    "expires_at",
    "github_repo",
    "created_at",
}


def parse_time(value):
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def test_set_snapshot(patch, raw_key, account, settings):
    before = timezone.now()
    response = patch({"snapshotId": "snap_abc123def456"}, raw_key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == RESPONSE_FIELDS
    assert body["account_id"] == str(account.pk)
    assert body["snapshot_id"] == "snap_abc123def456"
    assert body["github_repo"] is None
    expires_at = parse_time(body["expires_at"])
    ttl = timedelta(days=settings.SNAPSHOT_TTL_DAYS)
    assert before + ttl <= expires_at <= timezone.now() + ttl
    assert parse_time(body["created_at"]) >= before
    assert (
        AccountSnapshot.objects.get(account=account).snapshot_id == "snap_abc123def456"
    )


def test_ttl_setting_applies(patch, raw_key, settings):
    settings.SNAPSHOT_TTL_DAYS = 30
    body = patch({"snapshotId": "snap_1"}, raw_key).json()
    lifetime = parse_time(body["expires_at"]) - parse_time(body["created_at"])
    assert timedelta(days=30) <= lifetime < timedelta(days=30, seconds=5)


def test_same_snapshot_renews_expiry(patch, raw_key, account):
    patch({"snapshotId": "snap_1"}, raw_key)
    old = timezone.now() - timedelta(days=3)
    AccountSnapshot.objects.update(expires_at=old)
    body = patch({"snapshotId": "snap_1"}, raw_key).json()
    assert parse_time(body["expires_at"]) > old + timedelta(days=3)


def test_repo_alone_keeps_expiry(patch, raw_key):
    first = patch({"snapshotId": "snap_1"}, raw_key).json()
    body = patch({"github_repo": "https://github.com/org/repo"}, raw_key).json()
    assert body["github_repo"] == "https://github.com/org/repo"
    assert body["snapshot_id"] == "snap_1"
    assert body["expires_at"] == first["expires_at"]
    assert body["created_at"] == first["created_at"]


def test_repo_alone_on_new_record(patch, raw_key):
    body = patch({"github_repo": "https://github.com/org/repo"}, raw_key).json()
    assert body["github_repo"] == "https://github.com/org/repo"
    assert body["snapshot_id"] is None
    assert body["expires_at"] is None
    assert body["created_at"] is not None


def test_snapshot_keeps_repo(patch, raw_key):
    patch({"github_repo": "https://github.com/org/repo"}, raw_key)
    body = patch({"snapshotId": "snap_2"}, raw_key).json()
    assert body["github_repo"] == "https://github.com/org/repo"
    assert body["snapshot_id"] == "snap_2"


def test_both_fields_at_once(patch, raw_key):
    body = patch(
        {"snapshotId": "snap_1", "github_repo": "http://example.com/r"}, raw_key
    ).json()
    assert body["snapshot_id"] == "snap_1"
    assert body["github_repo"] == "http://example.com/r"
    assert body["expires_at"] is not None


def test_null_snapshot_clears_it_and_expiry(patch, raw_key, account):
    patch({"snapshotId": "snap_1", "github_repo": "https://github.com/o/r"}, raw_key)
    body = patch({"snapshotId": None}, raw_key).json()
    assert body["snapshot_id"] is None
    assert body["expires_at"] is None
    assert body["github_repo"] == "https://github.com/o/r"
    stored = AccountSnapshot.objects.get(account=account)
    assert stored.snapshot_id is None
    assert stored.expires_at is None


def test_null_repo_clears_it(patch, raw_key):
    first = patch({"snapshotId": "s", "github_repo": "https://github.com/o/r"}, raw_key)
    body = patch({"github_repo": None}, raw_key).json()
    assert body["github_repo"] is None
    assert body["expires_at"] == first.json()["expires_at"]


def test_empty_object_returns_nulls(patch, raw_key, account):
    response = patch({}, raw_key)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "account_id": str(account.pk),
        "snapshot_id": None,
        "expires_at": None,
        "github_repo": None,
        "created_at": None,
    }
    assert not AccountSnapshot.objects.exists()


def test_empty_object_returns_state_unchanged(patch, raw_key, account):
    first = patch({"snapshotId": "snap_1"}, raw_key).json()
    updated_at = AccountSnapshot.objects.get().updated_at
    assert patch({}, raw_key).json() == first
    assert AccountSnapshot.objects.get().updated_at == updated_at


def test_only_account_id_writes_nothing(patch, raw_key, account):
    response = patch({"account_id": str(account.pk)}, raw_key)
    assert response.status_code == 200
    assert not AccountSnapshot.objects.exists()


def test_one_record_per_account(patch, raw_key):
    for n in range(3):
        patch({"snapshotId": f"snap_{n}"}, raw_key)
    assert AccountSnapshot.objects.count() == 1


def test_timestamps_are_utc_iso(patch, raw_key):
    body = patch({"snapshotId": "snap_1"}, raw_key).json()
    for name in ("expires_at", "created_at"):
        assert parse_time(body[name]).utcoffset() == timedelta(0)
        assert parse_time(body[name]).tzinfo is not None
    assert parse_time(body["created_at"]).astimezone(UTC)


@pytest.mark.parametrize(
    "snapshot_id",
    ["a", "snap_abc123", "x" * 255, "!~", "sn@p:1/2#3"],
)
def test_valid_snapshot_ids(patch, raw_key, snapshot_id):
    response = patch({"snapshotId": snapshot_id}, raw_key)
    assert response.status_code == 200, response.content
    assert response.json()["snapshot_id"] == snapshot_id


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo",
        "http://github.com/org/repo.git",
        "https://github.example.com:8443/a/b?x=1#frag",
        "https://" + "a" * 60 + ".com/" + "p" * (2048 - 73),
    ],
)
def test_valid_repos(patch, raw_key, url):
    response = patch({"github_repo": url}, raw_key)
    assert response.status_code == 200, response.content
    assert response.json()["github_repo"] == url
