"""Query counts of the snapshot endpoint, pinned."""

import pytest

from accounts.models import APIKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def organization(make_account, member_of, account):
    label = make_account("Label", organization=True)
    member_of(account, label)
    return label


def test_own_account_first_use(patch, raw_key, django_assert_num_queries):
    # Key lookup, last_used_at, upsert.
    with django_assert_num_queries(3):
        response = patch({"snapshotId": "snap_1"}, raw_key)
    assert response.status_code == 200, response.content


def test_own_account_repeat(patch, raw_key, django_assert_num_queries):
    patch({"snapshotId": "snap_1"}, raw_key)
    # Key lookup and upsert: last_used_at was written under a minute ago.
    with django_assert_num_queries(2):
        response = patch(
            {"snapshotId": "snap_2", "github_repo": "https://x.io/r"}, raw_key
        )
    assert response.status_code == 200, response.content


def test_read_only_request(patch, raw_key, django_assert_num_queries):
    patch({}, raw_key)
    with django_assert_num_queries(2):
        assert patch({}, raw_key).status_code == 200


def test_other_account(
    patch, make_key, organization, make_account, member_of, django_assert_num_queries
):
    artist = make_account("Artist")
    member_of(artist, organization)
    key = make_key(organization)
    # Key lookup, last_used_at, target with access, upsert.
    with django_assert_num_queries(4):
        response = patch({"snapshotId": "snap_1", "account_id": str(artist.pk)}, key)
    assert response.status_code == 200, response.content


def test_other_account_denied(patch, raw_key, make_account, django_assert_num_queries):
    stranger = make_account("Stranger")
    with django_assert_num_queries(3):
        response = patch({"snapshotId": "s", "account_id": str(stranger.pk)}, raw_key)
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
    from accounts.keys import verify_key

    APIKey.objects.update(last_used_at=None)
    with django_assert_num_queries(2) as captured:
        api_key = verify_key(raw_key)
        assert api_key.account.name == "Caller"
    assert "JOIN" in captured.captured_queries[0]["sql"]
