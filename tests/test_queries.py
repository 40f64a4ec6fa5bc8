"""Query counts of the snapshot endpoint, pinned.

The tests run outside a test transaction, as requests do in production. A
write is one transaction, and Django counts its BEGIN and COMMIT as queries.
"""

import uuid

import pytest

from accounts.keys import verify_key
from accounts.models import APIKey

pytestmark = pytest.mark.django_db(transaction=True)

# BEGIN and COMMIT around a write.
TRANSACTION = 2


@pytest.fixture
def organization(make_account, member_of, account):
    label = make_account("Label", organization=True)
    member_of(account, label)
    return label


@pytest.fixture
def used_key(raw_key, patch):
    """A key that has set a snapshot already, within the last minute."""
    patch({"snapshotId": "snap_0"}, raw_key)
    return raw_key


def test_own_account(patch, used_key, django_assert_num_queries):
    # Key lookup; history entry from the locked record; upsert.
    with django_assert_num_queries(3 + TRANSACTION):
        response = patch(
            {"snapshotId": "snap_1", "github_repo": "https://x.io/r"}, used_key
        )
    assert response.status_code == 200, response.content


def test_own_account_first_record(patch, raw_key, django_assert_num_queries):
    verify_key(raw_key)
    # No record to lock yet: the history entry is written after the upsert.
    with django_assert_num_queries(4 + TRANSACTION):
        response = patch({"snapshotId": "snap_1"}, raw_key)
    assert response.status_code == 200, response.content


def test_key_last_used_adds_one_write(patch, used_key, django_assert_num_queries):
    APIKey.objects.update(last_used_at=None)
    with django_assert_num_queries(4 + TRANSACTION):
        response = patch({"snapshotId": "snap_1"}, used_key)
    assert response.status_code == 200, response.content


def test_read_only_request(patch, used_key, django_assert_num_queries):
    with django_assert_num_queries(2):
        assert patch({}, used_key).status_code == 200


def test_other_account(
    patch, make_key, organization, make_account, member_of, django_assert_num_queries
):
    artist = make_account("Artist")
    member_of(artist, organization)
    key = make_key(organization)
    body = {"snapshotId": "snap_1", "account_id": str(artist.pk)}
    patch(body, key)
    # Key lookup; target with access; history entry; upsert.
    with django_assert_num_queries(4 + TRANSACTION):
        response = patch(body, key)
    assert response.status_code == 200, response.content


def test_other_account_first_record(
    patch, make_key, organization, make_account, member_of, django_assert_num_queries
):
    artist = make_account("Artist")
    member_of(artist, organization)
    key = make_key(organization)
    verify_key(key)
    with django_assert_num_queries(5 + TRANSACTION):
        response = patch({"snapshotId": "snap_1", "account_id": str(artist.pk)}, key)
    assert response.status_code == 200, response.content


def test_other_account_denied(patch, used_key, make_account, django_assert_num_queries):
    stranger = make_account("Stranger")
    with django_assert_num_queries(2):
        response = patch({"snapshotId": "s", "account_id": str(stranger.pk)}, used_key)
    assert response.status_code == 403


def test_unknown_key(patch, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = patch({}, "recoup_sk_" + "A" * 43)
    assert response.status_code == 401


def test_malformed_key_no_query(patch, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = patch({}, "not-a-key")
    assert response.status_code == 401


def test_key_lookup_joins_account(raw_key, django_assert_num_queries):
    with django_assert_num_queries(2) as captured:
        api_key = verify_key(raw_key)
        assert api_key.account.name == "Caller"
    assert "JOIN" in captured.captured_queries[0]["sql"]


@pytest.mark.parametrize("target", ["missing", "forbidden"])
def test_denials_cost_the_same(
    patch, used_key, make_account, settings, django_assert_num_queries, target
):
    settings.PLATFORM_ORGANIZATION_ID = make_account("Staff", organization=True).pk
    account_id = uuid.uuid4() if target == "missing" else make_account("Stranger").pk
    # Key lookup; target with access; the platform staff check, run for both
    # denials so that their timing does not tell whether an account exists.
    with django_assert_num_queries(3):
        response = patch({"account_id": str(account_id)}, used_key)
    assert response.status_code == 403
