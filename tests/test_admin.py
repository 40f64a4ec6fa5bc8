import logging
import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import SUCCESS, WARNING, get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.keys import KEY_PATTERN, KeyRejected, issue_key, verify_key
from accounts.models import Account, APIKey, OrganizationMembership
from sandboxes import admin as sandboxes_admin
from sandboxes.models import AccountSnapshot, SnapshotHistory
from sandboxes.services import Actor, snapshot_ttl, update_snapshot

pytestmark = pytest.mark.django_db

# Queries of one changelist request: session, user, filtered count, full
# count, page of rows.
CHANGELIST_MAX_QUERIES = 5
# The history changelist adds the two queries of its date hierarchy: the range
# of changed_at, then the years or months or days to link.
HISTORY_CHANGELIST_MAX_QUERIES = CHANGELIST_MAX_QUERIES + 2
# Queries of a snapshot's change page: session, user, snapshot, its account,
# the model's content type, history entries.
CHANGE_PAGE_MAX_QUERIES = 6
REPO = "https://github.com/recoup/app"
SETUP_ACTOR = Actor(type=SnapshotHistory.ActorType.COMMAND, name="test setup")


def admin_url(model, view, *args):
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def listed(response):
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


def formset_data(prefix, rows=()):
    """Build the POST data of an inline formset: the management form and one
    set of fields per row. Rows with an "id" are existing objects and must
    come first."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(sum("id" in row for row in rows)),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for field, value in row.items():
            data[f"{prefix}-{index}-{field}"] = value
    return data


def account_data(name, *, organization=False, memberships=(), members=(), keys=()):
    """Build the POST data of the account form with its three inlines;
    ``keys`` are the account's existing keys."""
    data = {"name": name}
    if organization:
        data["is_organization"] = "on"
    data |= formset_data("memberships", memberships)
    data |= formset_data("member_links", members)
    data |= formset_data("api_keys", [{"id": key.pk} for key in keys])
    return data


def measure_changelist(
    client, url, django_assert_max_num_queries, max_queries=CHANGELIST_MAX_QUERIES
):
    with django_assert_max_num_queries(max_queries) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


def error_text(response):
    assert response.status_code == 200, "expected the form again, with errors"
    return response.content.decode()


# Accounts


def test_account_changelist_lists_accounts(admin_client, make_account):
    artist = make_account("Artist One")
    label = make_account("Label One", organization=True)

    response = admin_client.get(admin_url(artist, "changelist"))

    assert listed(response) == [artist, label]
    assert f'<td class="field-id">{label.pk}</td>' in response.content.decode()


def test_account_search_by_name(admin_client, make_account):
    artist = make_account("Artist One")
    make_account("Label One", organization=True)

    response = admin_client.get(admin_url(artist, "changelist"), {"q": "artist"})

    assert listed(response) == [artist]


@pytest.mark.parametrize("spelling", [str, lambda value: value.hex.upper()])
def test_account_search_by_exact_id(admin_client, make_account, spelling):
    artist = make_account("Artist One")
    make_account("Artist Two")

    response = admin_client.get(
        admin_url(artist, "changelist"), {"q": spelling(artist.pk)}
    )

    assert listed(response) == [artist]


def test_account_search_by_partial_id_finds_nothing(admin_client, make_account):
    artist = make_account("Artist One")

    response = admin_client.get(
        admin_url(artist, "changelist"), {"q": str(artist.pk)[:8]}
    )

    assert listed(response) == []


@pytest.mark.parametrize("kind", ["organization", "personal"])
def test_account_kind_filter(admin_client, make_account, kind):
    artist = make_account("Artist")
    label = make_account("Label", organization=True)
    expected = {"organization": [label], "personal": [artist]}[kind]

    response = admin_client.get(admin_url(artist, "changelist"), {"kind": kind})

    assert listed(response) == expected


def test_account_add_page(admin_client):
    response = admin_client.get(reverse("admin:accounts_account_add"))

    assert response.status_code == 200
    assert "is_organization" in response.context["adminform"].form.fields


def test_account_add_creates_account(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_account_add"),
        account_data("New Label", organization=True),
    )

    assert response.status_code == 302, response.content[:500]
    assert Account.objects.get(name="New Label").is_organization


def test_account_change_page_lists_keys_read_only(admin_client, account, make_key):
    make_key(account, name="Deploy")
    key = account.api_keys.get()

    response = admin_client.get(admin_url(account, "change", account.pk))

    content = response.content.decode()
    assert response.status_code == 200
    assert key.prefix in content
    assert admin_url(key, "change", key.pk) in content
    assert 'name="api_keys-0-name"' not in content
    (keys_inline,) = [
        formset
        for formset in response.context["inline_admin_formsets"]
        if formset.opts.model is APIKey
    ]
    assert not keys_inline.has_add_permission
    assert not keys_inline.has_change_permission
    assert not keys_inline.has_delete_permission


def test_account_change_leaves_keys_alone(admin_client, account, make_key):
    make_key(account, name="Deploy")
    key = account.api_keys.get()
    data = account_data("Renamed", keys=[key])

    response = admin_client.post(admin_url(account, "change", account.pk), data)

    assert response.status_code == 302, response.content[:500]
    account.refresh_from_db()
    assert account.name == "Renamed"
    unchanged = APIKey.objects.get()
    assert (unchanged.name, unchanged.digest) == ("Deploy", key.digest)
    assert unchanged.revoked_at is None


def test_account_changelist_queries_constant(
    admin_client, make_account, django_assert_max_num_queries
):
    url = reverse("admin:accounts_account_changelist")
    for index in range(3):
        make_account(f"Account {index:02}", organization=index % 2 == 0)
    few = measure_changelist(admin_client, url, django_assert_max_num_queries)

    for index in range(3, 30):
        make_account(f"Account {index:02}", organization=index % 2 == 0)
    many = measure_changelist(admin_client, url, django_assert_max_num_queries)

    assert few == many


# Memberships


@pytest.fixture
def label(make_account):
    return make_account("Label", organization=True)


def test_membership_changelist_and_search(
    admin_client, account, label, make_account, member_of
):
    membership = member_of(account, label)
    other = member_of(label, make_account("Umbrella", organization=True))
    url = reverse("admin:accounts_organizationmembership_changelist")

    assert set(listed(admin_client.get(url))) == {membership, other}
    assert listed(admin_client.get(url, {"q": "Caller"})) == [membership]
    assert listed(admin_client.get(url, {"q": str(account.pk)})) == [membership]
    assert set(listed(admin_client.get(url, {"q": str(label.pk)}))) == {
        membership,
        other,
    }


def test_membership_add_and_change_pages(admin_client, account, label, member_of):
    membership = member_of(account, label)

    add = admin_client.get(reverse("admin:accounts_organizationmembership_add"))
    change = admin_client.get(admin_url(membership, "change", membership.pk))

    assert add.status_code == 200
    assert change.status_code == 200
    fields = ["account", "organization", "role"]
    assert list(add.context["adminform"].form.fields) == fields
    assert list(change.context["adminform"].form.fields) == fields
    assert change.context["adminform"].form["organization"].value() == label.pk


def test_membership_add_creates_membership(admin_client, account, label):
    response = admin_client.post(
        reverse("admin:accounts_organizationmembership_add"),
        {"account": account.pk, "organization": label.pk, "role": "admin"},
    )

    assert response.status_code == 302, response.content[:500]
    membership = OrganizationMembership.objects.get()
    assert (membership.account, membership.organization) == (account, label)
    assert membership.role == "admin"


def test_membership_rejects_personal_organization(admin_client, account, make_account):
    personal = make_account("Friend")

    response = admin_client.post(
        reverse("admin:accounts_organizationmembership_add"),
        {"account": account.pk, "organization": personal.pk, "role": "member"},
    )

    assert "That account is not an organization." in error_text(response)
    assert not OrganizationMembership.objects.exists()


def test_membership_rejects_self(admin_client, label):
    response = admin_client.post(
        reverse("admin:accounts_organizationmembership_add"),
        {"account": label.pk, "organization": label.pk, "role": "member"},
    )

    assert "An account cannot be a member of itself." in error_text(response)
    assert not OrganizationMembership.objects.exists()


def test_membership_rejects_duplicate(admin_client, account, label, member_of):
    member_of(account, label)

    response = admin_client.post(
        reverse("admin:accounts_organizationmembership_add"),
        {"account": account.pk, "organization": label.pk, "role": "admin"},
    )

    assert "already exists" in error_text(response)
    assert OrganizationMembership.objects.get().role == "member"


def test_membership_inline_adds_organization(admin_client, account, label):
    data = account_data(account.name, memberships=[{"organization": label.pk}])
    data["memberships-0-role"] = "member"

    response = admin_client.post(admin_url(account, "change", account.pk), data)

    assert response.status_code == 302, response.content[:500]
    assert OrganizationMembership.objects.get().organization == label


def test_membership_inline_rejects_personal_organization(
    admin_client, account, make_account
):
    personal = make_account("Friend")
    data = account_data(
        account.name, memberships=[{"organization": personal.pk, "role": "member"}]
    )

    response = admin_client.post(admin_url(account, "change", account.pk), data)

    assert "That account is not an organization." in error_text(response)
    assert not OrganizationMembership.objects.exists()


def test_membership_inline_rejects_self(admin_client, label):
    data = account_data(
        label.name,
        organization=True,
        memberships=[{"organization": label.pk, "role": "member"}],
    )

    response = admin_client.post(admin_url(label, "change", label.pk), data)

    assert "An account cannot be a member of itself." in error_text(response)
    assert not OrganizationMembership.objects.exists()


def test_member_inline_adds_member(admin_client, account, label):
    data = account_data(
        label.name,
        organization=True,
        members=[{"account": account.pk, "role": "admin"}],
    )

    response = admin_client.post(admin_url(label, "change", label.pk), data)

    assert response.status_code == 302, response.content[:500]
    membership = OrganizationMembership.objects.get()
    assert (membership.account, membership.organization) == (account, label)


def test_member_inline_rejects_personal_account(admin_client, account, make_account):
    friend = make_account("Friend")
    data = account_data(
        account.name, members=[{"account": friend.pk, "role": "member"}]
    )

    response = admin_client.post(admin_url(account, "change", account.pk), data)

    assert "Only an organization can have members." in error_text(response)
    assert not OrganizationMembership.objects.exists()


def test_unmarking_organization_with_members_rejected(
    admin_client, account, label, member_of
):
    membership = member_of(account, label)
    data = account_data(
        label.name,
        organization=False,
        members=[
            {
                "id": membership.pk,
                "organization": label.pk,
                "account": account.pk,
                "role": "member",
            }
        ],
    )

    response = admin_client.post(admin_url(label, "change", label.pk), data)

    assert "Only an organization can have members." in error_text(response)
    label.refresh_from_db()
    assert label.is_organization


def autocomplete_ids(client, field_name, term):
    response = client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "accounts",
            "model_name": "organizationmembership",
            "field_name": field_name,
            "term": term,
        },
    )
    assert response.status_code == 200, response.content[:500]
    return [result["id"] for result in response.json()["results"]]


def test_organization_autocomplete_lists_only_organizations(
    admin_client, account, label
):
    assert autocomplete_ids(admin_client, "organization", "") == [str(label.pk)]
    assert autocomplete_ids(admin_client, "organization", str(label.pk)) == [
        str(label.pk)
    ]
    assert autocomplete_ids(admin_client, "organization", str(account.pk)) == []
    assert autocomplete_ids(admin_client, "account", str(account.pk)) == [
        str(account.pk)
    ]


def test_membership_changelist_queries_constant(
    admin_client, make_account, member_of, django_assert_max_num_queries
):
    url = reverse("admin:accounts_organizationmembership_changelist")
    label = make_account("Label", organization=True)

    def add_members(start, stop):
        for index in range(start, stop):
            member_of(make_account(f"Member {index:02}"), label)

    add_members(0, 3)
    few = measure_changelist(admin_client, url, django_assert_max_num_queries)
    add_members(3, 30)
    many = measure_changelist(admin_client, url, django_assert_max_num_queries)

    assert few == many


# API keys


def key_pages(key):
    """Return the URLs of every admin page that shows the key."""
    return [
        reverse("admin:accounts_apikey_changelist"),
        admin_url(key, "change", key.pk),
        admin_url(key, "history", key.pk),
        admin_url(key, "delete", key.pk),
        admin_url(key.account, "change", key.account.pk),
    ]


def test_key_changelist_and_search(admin_client, account, make_account, make_key):
    make_key(account, name="Deploy")
    make_key(make_account("Other"), name="Laptop")
    deploy = APIKey.objects.get(name="Deploy")
    url = reverse("admin:accounts_apikey_changelist")

    assert len(listed(admin_client.get(url))) == 2
    assert listed(admin_client.get(url, {"q": "deploy"})) == [deploy]
    assert listed(admin_client.get(url, {"q": deploy.prefix})) == [deploy]
    assert listed(admin_client.get(url, {"q": "Caller"})) == [deploy]
    assert listed(admin_client.get(url, {"q": str(account.pk)})) == [deploy]


def test_key_add_page_asks_account_name_expiry(admin_client):
    response = admin_client.get(reverse("admin:accounts_apikey_add"))

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.fields) == ["account", "name", "expires_at"]
    assert b'name="digest"' not in response.content


def test_key_add_shows_raw_key_once(admin_client, account):
    expires_at = timezone.now() + timedelta(days=30)

    response = admin_client.post(
        reverse("admin:accounts_apikey_add"),
        {
            "account": account.pk,
            "name": "Deploy",
            "expires_at_0": expires_at.strftime("%Y-%m-%d"),
            "expires_at_1": "12:00:00",
        },
    )

    assert response.status_code == 200, response.content[:500]
    assert "will not be shown again" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    (raw_key,) = KEY_PATTERN.findall(response.content.decode())
    key = APIKey.objects.get()
    assert verify_key(raw_key) == key
    assert (key.account, key.name) == (account, "Deploy")
    assert key.expires_at.date() == expires_at.date()
    assert admin_url(key, "change", key.pk) in response.content.decode()
    for url in key_pages(key):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert raw_key not in page.content.decode(), url


def test_key_raw_value_kept_out_of_storage(admin_client, account, caplog):
    caplog.set_level(logging.DEBUG)

    response = admin_client.post(
        reverse("admin:accounts_apikey_add"), {"account": account.pk, "name": ""}
    )

    (raw_key,) = KEY_PATTERN.findall(response.content.decode())
    key = APIKey.objects.get()
    assert list(get_messages(response.wsgi_request)) == []
    assert raw_key not in str(dict(admin_client.session))
    assert raw_key not in str(response.cookies)
    assert raw_key not in str(admin_client.cookies)
    assert raw_key not in caplog.text
    assert raw_key not in str(key)
    log_entry = LogEntry.objects.get()
    assert raw_key not in log_entry.object_repr
    assert raw_key not in log_entry.change_message


def test_key_digest_never_shown(admin_client, account):
    response = admin_client.post(
        reverse("admin:accounts_apikey_add"), {"account": account.pk, "name": "CI"}
    )
    key = APIKey.objects.get()

    assert key.digest not in response.content.decode()
    for url in key_pages(key):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert key.digest not in page.content.decode(), url


def test_key_add_rejects_past_expiry(admin_client, account):
    response = admin_client.post(
        reverse("admin:accounts_apikey_add"),
        {
            "account": account.pk,
            "name": "Old",
            "expires_at_0": "2001-01-01",
            "expires_at_1": "00:00:00",
        },
    )

    assert "This time is in the past." in error_text(response)
    assert not APIKey.objects.exists()


def test_key_change_edits_only_name_and_expiry(
    admin_client, account, make_account, make_key
):
    make_key(account, name="Deploy")
    key = APIKey.objects.get()
    url = admin_url(key, "change", key.pk)

    page = admin_client.get(url)
    response = admin_client.post(
        url,
        {
            "name": "Renamed",
            "expires_at_0": "2031-01-02",
            "expires_at_1": "03:04:05",
            "account": make_account("Other").pk,
            "prefix": "recoup_sk_forged",
            "digest": "0" * 64,
            "revoked_at_0": "2001-01-01",
            "revoked_at_1": "00:00:00",
        },
    )

    assert list(page.context["adminform"].form.fields) == ["name", "expires_at"]
    assert response.status_code == 302, response.content[:500]
    changed = APIKey.objects.get()
    assert changed.name == "Renamed"
    assert changed.expires_at.isoformat() == "2031-01-02T03:04:05+00:00"
    assert (changed.account, changed.prefix, changed.digest) == (
        account,
        key.prefix,
        key.digest,
    )
    assert changed.revoked_at is None


def test_key_revoke_action(admin_client, account, make_key):
    for name in ("first", "second", "old"):
        make_key(account, name=name)
    first, second, old = (
        APIKey.objects.get(name=n) for n in ("first", "second", "old")
    )
    revoked_at = timezone.now() - timedelta(days=1)
    APIKey.objects.filter(pk=old.pk).update(revoked_at=revoked_at)

    response = admin_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {
            "action": "revoke_selected",
            "_selected_action": [first.pk, second.pk, old.pk],
            "index": "0",
        },
        follow=True,
    )

    assert response.status_code == 200
    messages = [str(message) for message in response.context["messages"]]
    assert messages == ["Revoked 2 keys. 1 was already revoked."]
    for key in (first, second):
        key.refresh_from_db()
        assert key.revoked_at is not None
    old.refresh_from_db()
    assert old.revoked_at == revoked_at


def test_key_changelist_offers_revoke_action(admin_client):
    response = admin_client.get(reverse("admin:accounts_apikey_changelist"))

    choices = response.context["action_form"].fields["action"].choices
    assert ("revoke_selected", "Revoke selected keys") in choices


def test_key_revoke_button(admin_client, account, make_key):
    raw_key = make_key(account, name="Deploy")
    key = APIKey.objects.get()
    url = admin_url(key, "change", key.pk)
    assert b'name="_revoke"' in admin_client.get(url).content

    response = admin_client.post(
        url,
        {"name": "Deploy", "expires_at_0": "", "expires_at_1": "", "_revoke": "1"},
        follow=True,
    )

    assert response.redirect_chain == [(url, 302)]
    messages = [str(message) for message in response.context["messages"]]
    assert messages == [f"Revoked the key “{key}”."]
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert b'name="_revoke"' not in response.content
    with pytest.raises(KeyRejected, match="revoked"):
        verify_key(raw_key)


@pytest.fixture
def keys_by_state(account):
    now = timezone.now()
    active = issue_key(account=account, name="active").api_key
    unlimited = issue_key(account=account, name="unlimited").api_key
    APIKey.objects.filter(pk=active.pk).update(expires_at=now + timedelta(days=1))
    expired = issue_key(account=account, name="expired").api_key
    APIKey.objects.filter(pk=expired.pk).update(expires_at=now - timedelta(days=1))
    revoked = issue_key(account=account, name="revoked").api_key
    APIKey.objects.filter(pk=revoked.pk).update(
        revoked_at=now, expires_at=now - timedelta(days=1)
    )
    return {
        "active": {active, unlimited},
        "expired": {expired},
        "revoked": {revoked},
    }


@pytest.mark.parametrize("state", ["active", "expired", "revoked"])
def test_key_state_filter(admin_client, keys_by_state, state):
    response = admin_client.get(
        reverse("admin:accounts_apikey_changelist"), {"state": state}
    )

    assert set(listed(response)) == keys_by_state[state]


def test_key_changelist_queries_constant(
    admin_client, make_account, make_key, django_assert_max_num_queries
):
    url = reverse("admin:accounts_apikey_changelist")

    def add_keys(start, stop):
        for index in range(start, stop):
            make_key(make_account(f"Account {index:02}"), name=f"Key {index}")

    add_keys(0, 3)
    few = measure_changelist(admin_client, url, django_assert_max_num_queries)
    add_keys(3, 30)
    many = measure_changelist(admin_client, url, django_assert_max_num_queries)

    assert few == many


# Snapshots


def snapshot_data(snapshot_id="", github_repo=""):
    return {"snapshot_id": snapshot_id, "github_repo": github_repo}


def write_snapshot(account, **changes):
    return update_snapshot(account=account, actor=SETUP_ACTOR, **changes).snapshot


def assert_expires_in_ttl(snapshot, before, after):
    assert before + snapshot_ttl() <= snapshot.expires_at <= after + snapshot_ttl()


@pytest.fixture
def snapshot(account):
    """A snapshot written 30 days ago, so it has expired."""
    written_at = timezone.now() - timedelta(days=30)
    return write_snapshot(
        account, snapshot_id="snap_old", github_repo=REPO, now=written_at
    )


def test_snapshot_changelist_and_search(admin_client, snapshot, make_account):
    other = write_snapshot(make_account("Other"), snapshot_id="snap_other")
    url = reverse("admin:sandboxes_accountsnapshot_changelist")

    assert set(listed(admin_client.get(url))) == {snapshot, other}
    assert listed(admin_client.get(url, {"q": "Caller"})) == [snapshot]
    assert listed(admin_client.get(url, {"q": "snap_other"})) == [other]
    assert listed(admin_client.get(url, {"q": str(snapshot.account_id)})) == [snapshot]


def test_snapshot_add_page_renders_empty_fields(admin_client):
    response = admin_client.get(reverse("admin:sandboxes_accountsnapshot_add"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "DatabaseDefault" not in content
    form = response.context["adminform"].form
    assert form["snapshot_id"].value() is None
    assert form["github_repo"].value() is None


def test_snapshot_change_page(admin_client, snapshot):
    response = admin_client.get(admin_url(snapshot, "change", snapshot.pk))

    assert response.status_code == 200
    assert list(response.context["adminform"].form.fields) == [
        "snapshot_id",
        "github_repo",
    ]
    assert "snap_old" in response.content.decode()


def test_snapshot_add_sets_expiry(admin_client, account):
    before = timezone.now()
    response = admin_client.post(
        reverse("admin:sandboxes_accountsnapshot_add"),
        {"account": account.pk, **snapshot_data("snap_1", REPO)},
    )
    after = timezone.now()

    assert response.status_code == 302, response.content[:500]
    snapshot = AccountSnapshot.objects.get()
    assert (snapshot.account, snapshot.snapshot_id) == (account, "snap_1")
    assert snapshot.github_repo == REPO
    assert_expires_in_ttl(snapshot, before, after)
    assert response["Location"] == admin_url(snapshot, "changelist")


def test_snapshot_change_recorded_as_staff(admin_client, admin_user, snapshot):
    response = admin_client.post(
        admin_url(snapshot, "change", snapshot.pk),
        snapshot_data("snap_new", REPO),
        REMOTE_ADDR="127.0.0.7",
    )

    assert response.status_code == 302, response.content[:500]
    entry = SnapshotHistory.objects.exclude(actor=SETUP_ACTOR.name).get()
    assert entry.actor_type == SnapshotHistory.ActorType.STAFF
    assert (entry.user, entry.actor) == (admin_user, admin_user.username)
    assert entry.source == "127.0.0.7"
    assert entry.request_id == response["X-Request-ID"]
    assert (entry.snapshot_id_before, entry.snapshot_id_after) == (
        "snap_old",
        "snap_new",
    )


def test_snapshot_add_with_empty_fields_stores_nulls(admin_client, account):
    response = admin_client.post(
        reverse("admin:sandboxes_accountsnapshot_add"),
        {"account": account.pk, **snapshot_data()},
    )

    assert response.status_code == 302, response.content[:500]
    snapshot = AccountSnapshot.objects.get()
    assert (snapshot.snapshot_id, snapshot.github_repo) == (None, None)
    assert snapshot.expires_at is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("snapshot_id", "snap 1", "snapshotId contains whitespace"),
        ("snapshot_id", "snap_é", "snapshotId contains whitespace"),
        ("snapshot_id", "a" * 256, "at most 255"),
        ("github_repo", "github.com/recoup/app", "is not an absolute http"),
        ("github_repo", "https://user:pw@github.com/a/b", "contains a user name"),
    ],
)
def test_snapshot_add_rejects_invalid_value(
    admin_client, account, field, value, message
):
    data = {"account": account.pk, **snapshot_data("snap_1", REPO), field: value}

    response = admin_client.post(reverse("admin:sandboxes_accountsnapshot_add"), data)

    assert message in error_text(response)
    assert field in response.context["adminform"].form.errors
    assert not AccountSnapshot.objects.exists()


def test_snapshot_add_for_account_with_snapshot_rejected(
    admin_client, account, snapshot
):
    response = admin_client.post(
        reverse("admin:sandboxes_accountsnapshot_add"),
        {"account": account.pk, **snapshot_data("snap_new", REPO)},
    )

    assert "already exists" in error_text(response)
    assert AccountSnapshot.objects.get().snapshot_id == "snap_old"


def test_snapshot_change_repo_keeps_expiry(admin_client, snapshot):
    new_repo = "https://github.com/recoup/other"

    response = admin_client.post(
        admin_url(snapshot, "change", snapshot.pk),
        snapshot_data("snap_old", new_repo),
    )

    assert response.status_code == 302, response.content[:500]
    changed = AccountSnapshot.objects.get()
    assert changed.github_repo == new_repo
    assert changed.expires_at == snapshot.expires_at
    assert changed.updated_at > snapshot.updated_at


def test_snapshot_change_id_renews_expiry(admin_client, snapshot):
    before = timezone.now()
    response = admin_client.post(
        admin_url(snapshot, "change", snapshot.pk), snapshot_data("snap_new", REPO)
    )
    after = timezone.now()

    assert response.status_code == 302, response.content[:500]
    changed = AccountSnapshot.objects.get()
    assert changed.snapshot_id == "snap_new"
    assert_expires_in_ttl(changed, before, after)


def test_snapshot_clear_id_clears_expiry(admin_client, snapshot):
    response = admin_client.post(
        admin_url(snapshot, "change", snapshot.pk), snapshot_data("", REPO)
    )

    assert response.status_code == 302, response.content[:500]
    changed = AccountSnapshot.objects.get()
    assert changed.snapshot_id is None
    assert changed.expires_at is None
    assert changed.github_repo == REPO


@pytest.mark.parametrize(
    ("data", "changes"),
    [
        (snapshot_data("snap_old", REPO), None),
        (snapshot_data("snap_new", REPO), {"snapshot_id": "snap_new"}),
        (snapshot_data("snap_old", ""), {"github_repo": None}),
        (snapshot_data("", ""), {"snapshot_id": None, "github_repo": None}),
    ],
)
def test_snapshot_change_sends_only_changed_fields(
    admin_client, snapshot, data, changes
):
    with mock.patch.object(
        sandboxes_admin, "update_snapshot", wraps=update_snapshot
    ) as service:
        response = admin_client.post(admin_url(snapshot, "change", snapshot.pk), data)

    assert response.status_code == 302, response.content[:500]
    if changes is None:
        service.assert_not_called()
    else:
        service.assert_called_once_with(
            account=snapshot.account, actor=mock.ANY, **changes
        )


def test_snapshot_change_rejects_invalid_id(admin_client, snapshot):
    response = admin_client.post(
        admin_url(snapshot, "change", snapshot.pk), snapshot_data("snap id", REPO)
    )

    assert "snapshotId contains whitespace" in error_text(response)
    assert "snapshot_id" in response.context["adminform"].form.errors
    unchanged = AccountSnapshot.objects.get()
    assert unchanged.snapshot_id == "snap_old"
    assert unchanged.updated_at == snapshot.updated_at


def test_snapshot_delete_disabled(admin_client, snapshot):
    response = admin_client.get(admin_url(snapshot, "delete", snapshot.pk))

    assert response.status_code == 403
    assert AccountSnapshot.objects.exists()


@pytest.mark.parametrize("state", ["active", "expired"])
def test_snapshot_state_filter(admin_client, snapshot, make_account, state):
    active = write_snapshot(make_account("Other"), snapshot_id="snap_new")
    write_snapshot(make_account("Empty"), github_repo=REPO)
    expected = {"active": [active], "expired": [snapshot]}[state]

    response = admin_client.get(
        reverse("admin:sandboxes_accountsnapshot_changelist"), {"state": state}
    )

    assert listed(response) == expected


def test_snapshot_changelist_queries_constant(
    admin_client, make_account, django_assert_max_num_queries
):
    url = reverse("admin:sandboxes_accountsnapshot_changelist")

    def add_snapshots(start, stop):
        for index in range(start, stop):
            account = make_account(f"Account {index:02}")
            write_snapshot(account, snapshot_id=f"snap_{index}")

    add_snapshots(0, 3)
    few = measure_changelist(admin_client, url, django_assert_max_num_queries)
    add_snapshots(3, 30)
    many = measure_changelist(admin_client, url, django_assert_max_num_queries)

    assert few == many


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("snapshot_id", " snap_1 "),
        ("snapshot_id", "snap_1\t"),
        ("snapshot_id", " "),
        ("github_repo", f" {REPO}"),
        ("github_repo", f"{REPO}\n"),
    ],
)
def test_snapshot_add_rejects_padded_value(admin_client, account, field, value):
    data = {"account": account.pk, **snapshot_data("snap_1", REPO), field: value}

    response = admin_client.post(reverse("admin:sandboxes_accountsnapshot_add"), data)

    assert "contains whitespace" in error_text(response)
    assert field in response.context["adminform"].form.errors
    assert not AccountSnapshot.objects.exists()


def test_snapshot_change_rejects_padded_value(admin_client, snapshot):
    response = admin_client.post(
        admin_url(snapshot, "change", snapshot.pk), snapshot_data(" snap_new", REPO)
    )

    assert "snapshotId contains whitespace" in error_text(response)
    assert AccountSnapshot.objects.get().snapshot_id == "snap_old"


def test_snapshot_id_label(admin_client, snapshot):
    change = admin_client.get(admin_url(snapshot, "change", snapshot.pk))
    changelist = admin_client.get(admin_url(snapshot, "changelist"))

    assert 'for="id_snapshot_id">Snapshot ID:</label>' in change.content.decode()
    assert ">Snapshot ID</a>" in changelist.content.decode()


# Snapshot actions


def run_action(client, action, snapshots, **headers):
    """Post a changelist action for ``snapshots`` and follow the redirect."""
    response = client.post(
        reverse("admin:sandboxes_accountsnapshot_changelist"),
        {
            "action": action,
            "_selected_action": [snapshot.pk for snapshot in snapshots],
            "index": "0",
        },
        follow=True,
        **headers,
    )
    assert response.status_code == 200, response.content[:500]
    return response


def sent_messages(response):
    return [(message.level, str(message)) for message in response.context["messages"]]


def staff_entries():
    return SnapshotHistory.objects.filter(
        actor_type=SnapshotHistory.ActorType.STAFF
    ).order_by("account__name")


def assert_recorded_as(entry, user, request_id, source):
    assert entry.actor_type == SnapshotHistory.ActorType.STAFF
    assert entry.user == user
    assert entry.actor == user.username
    assert entry.request_id == request_id
    assert entry.source == source


@pytest.fixture
def three_snapshots(account, snapshot, make_account):
    """The expired ``snapshot`` of "Caller", an active one of "Current" and a
    record of "Repo only" without a snapshot ID."""
    active = write_snapshot(
        make_account("Current"), snapshot_id="snap_current", github_repo=REPO
    )
    repo_only = write_snapshot(make_account("Repo only"), github_repo=REPO)
    return snapshot, active, repo_only


def test_snapshot_changelist_offers_actions(admin_client):
    response = admin_client.get(reverse("admin:sandboxes_accountsnapshot_changelist"))

    choices = response.context["action_form"].fields["action"].choices
    assert (
        "extend_expiry_selected",
        "Extend the expiry of selected snapshots by the TTL",
    ) in choices
    assert ("clear_selected", "Clear selected snapshots") in choices


def test_snapshot_extend_action(admin_client, admin_user, three_snapshots):
    expired, active, repo_only = three_snapshots
    before = timezone.now()

    response = run_action(
        admin_client,
        "extend_expiry_selected",
        three_snapshots,
        REMOTE_ADDR="127.0.0.8",
        HTTP_X_REQUEST_ID="extend-1",
    )

    after = timezone.now()
    assert sent_messages(response) == [
        (
            SUCCESS,
            "Extended the expiry of 2 snapshots. Skipped 1 without a snapshot ID.",
        )
    ]
    expired_after = AccountSnapshot.objects.get(pk=expired.pk)
    assert_expires_in_ttl(expired_after, before, after)
    active_after = AccountSnapshot.objects.get(pk=active.pk)
    assert active_after.expires_at == active.expires_at + snapshot_ttl()
    assert active_after.snapshot_id == "snap_current"
    repo_only_after = AccountSnapshot.objects.get(pk=repo_only.pk)
    assert repo_only_after.expires_at is None
    assert repo_only_after.updated_at == repo_only.updated_at

    entries = list(staff_entries())
    assert [entry.account_id for entry in entries] == [
        expired.account_id,
        active.account_id,
    ]
    for entry in entries:
        assert_recorded_as(entry, admin_user, "extend-1", "127.0.0.8")
    assert entries[0].expires_at_before == expired.expires_at
    assert entries[0].expires_at_after == expired_after.expires_at
    assert entries[1].expires_at_before == active.expires_at
    assert entries[1].expires_at_after == active_after.expires_at


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            "extend_expiry_selected",
            "Extended the expiry of 0 snapshots. Skipped 1 without a snapshot ID.",
        ),
        ("clear_selected", "Cleared 0 snapshots. 1 had no snapshot ID."),
    ],
)
def test_snapshot_action_without_ids(admin_client, account, action, message):
    repo_only = write_snapshot(account, github_repo=REPO)

    response = run_action(admin_client, action, [repo_only])

    assert sent_messages(response) == [(WARNING, message)]
    assert AccountSnapshot.objects.get().updated_at == repo_only.updated_at
    assert not staff_entries().exists()


def test_snapshot_clear_action(admin_client, admin_user, three_snapshots):
    expired, active, repo_only = three_snapshots

    response = run_action(
        admin_client,
        "clear_selected",
        three_snapshots,
        REMOTE_ADDR="127.0.0.9",
        HTTP_X_REQUEST_ID="clear-1",
    )

    assert sent_messages(response) == [
        (SUCCESS, "Cleared 2 snapshots. 1 had no snapshot ID.")
    ]
    for snapshot in (expired, active):
        cleared = AccountSnapshot.objects.get(pk=snapshot.pk)
        assert cleared.snapshot_id is None
        assert cleared.expires_at is None
        assert cleared.github_repo == REPO
    repo_only_after = AccountSnapshot.objects.get(pk=repo_only.pk)
    assert repo_only_after.updated_at == repo_only.updated_at

    entries = list(staff_entries())
    assert [entry.account_id for entry in entries] == [
        expired.account_id,
        active.account_id,
    ]
    for entry, snapshot in zip(entries, (expired, active), strict=True):
        assert_recorded_as(entry, admin_user, "clear-1", "127.0.0.9")
        assert entry.snapshot_id_before == snapshot.snapshot_id
        assert entry.snapshot_id_after is None
        assert entry.expires_at_before == snapshot.expires_at
        assert entry.expires_at_after is None
        assert (entry.github_repo_before, entry.github_repo_after) == (REPO, REPO)


@pytest.mark.parametrize("action", ["extend_expiry_selected", "clear_selected"])
def test_snapshot_action_joins_accounts(rf, admin_user, make_account, action):
    for index in range(3):
        write_snapshot(make_account(f"Account {index}"), snapshot_id=f"snap_{index}")
    model_admin = django_admin.site._registry[AccountSnapshot]
    request = rf.post(reverse("admin:sandboxes_accountsnapshot_changelist"))
    request.user = admin_user

    with (
        mock.patch.object(model_admin, "message_user"),
        CaptureQueriesContext(connection) as captured,
    ):
        getattr(model_admin, action)(request, AccountSnapshot.objects.all())

    account_queries = [
        query["sql"] for query in captured if 'FROM "accounts_account"' in query["sql"]
    ]
    assert account_queries == []
    assert staff_entries().count() == 3


# Snapshot history


def history_entry(account, **values):
    """Create a history entry directly, with values that the service would
    not write."""
    values = {
        "actor_type": SnapshotHistory.ActorType.STAFF,
        "actor": "ops",
        **values,
    }
    return SnapshotHistory.objects.create(account=account, **values)


def history_rows(response):
    """Return the text of each row of the history table on a change page."""
    assert response.status_code == 200, response.content[:500]
    content = response.content.decode()
    table = content.split('<table class="snapshot-history">', 1)[1]
    body = table.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row.split("</tr>", 1)[0] for row in body.split("<tr>")[1:]]


def test_snapshot_change_page_shows_history(admin_client, admin_user, snapshot):
    admin_client.post(
        admin_url(snapshot, "change", snapshot.pk),
        snapshot_data("snap_new", REPO),
        REMOTE_ADDR="127.0.0.7",
        HTTP_X_REQUEST_ID="change-1",
    )

    response = admin_client.get(admin_url(snapshot, "change", snapshot.pk))

    newest, oldest = history_rows(response)
    assert f"<td>{admin_user.username} (Staff user)</td>" in newest
    assert "<td>127.0.0.7</td><td>change-1</td>" in newest
    assert "Snapshot ID: snap_old → snap_new<br>Expires at: " in newest
    assert "GitHub repository" not in newest
    assert "<td>test setup (Management command)</td>" in oldest
    assert "Snapshot ID: - → snap_old<br>GitHub repository: - → " + REPO in oldest


def test_snapshot_change_page_without_history(admin_client, account):
    snapshot = AccountSnapshot.objects.create(account=account, snapshot_id="snap_1")

    response = admin_client.get(admin_url(snapshot, "change", snapshot.pk))

    assert response.status_code == 200
    assert "No changes recorded." in response.content.decode()


def test_snapshot_add_page_has_no_history(admin_client):
    response = admin_client.get(reverse("admin:sandboxes_accountsnapshot_add"))

    assert response.status_code == 200
    assert "snapshot-history" not in response.content.decode()
    assert "No changes recorded." not in response.content.decode()


def test_snapshot_history_table_escapes_values(admin_client, snapshot):
    history_entry(
        snapshot.account,
        actor="<b>ops</b>",
        source="<i>10.0.0.1</i>",
        request_id="<script>alert(1)</script>",
        snapshot_id_before="<em>",
        snapshot_id_after="snap_&_co",
    )

    response = admin_client.get(admin_url(snapshot, "change", snapshot.pk))

    row = history_rows(response)[0]
    assert "<td>&lt;b&gt;ops&lt;/b&gt; (Staff user)</td>" in row
    assert "<td>&lt;i&gt;10.0.0.1&lt;/i&gt;</td>" in row
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in row
    assert "Snapshot ID: &lt;em&gt; → snap_&amp;_co" in row
    content = response.content.decode()
    for raw in ("<b>ops", "<i>10.0.0.1", "<script>alert(1)", "<em>"):
        assert raw not in content


def test_snapshot_history_table_shows_newest(admin_client, snapshot, monkeypatch):
    monkeypatch.setattr(sandboxes_admin, "HISTORY_ROWS_SHOWN", 3)
    for index in range(4):
        history_entry(snapshot.account, request_id=f"request-{index}")

    response = admin_client.get(admin_url(snapshot, "change", snapshot.pk))

    rows = history_rows(response)
    assert [row.count("request-") for row in rows] == [1, 1, 1]
    assert "request-3" in rows[0]
    assert "request-1" in rows[2]
    assert "<td>No change</td>" in rows[0]
    history_url = (
        reverse("admin:sandboxes_snapshothistory_changelist")
        + f"?account={snapshot.account_id}"
    )
    assert f'href="{history_url}"' in response.content.decode()
    assert len(listed(admin_client.get(history_url))) == 5


def test_history_link_only_when_truncated(admin_client, snapshot):
    response = admin_client.get(admin_url(snapshot, "change", snapshot.pk))

    assert len(history_rows(response)) == 1
    assert "?account=" not in response.content.decode()


def test_snapshot_change_page_queries_bounded(
    admin_client, snapshot, django_assert_max_num_queries
):
    url = admin_url(snapshot, "change", snapshot.pk)

    def measure():
        # The content type is cached per process once loaded, so clear it for
        # the same count whichever tests ran before.
        ContentType.objects.clear_cache()
        with django_assert_max_num_queries(CHANGE_PAGE_MAX_QUERIES) as captured:
            response = admin_client.get(url)
        return response, captured

    for index in range(2):
        history_entry(snapshot.account, request_id=f"request-{index}")
    few_response, few_queries = measure()
    for index in range(2, 29):
        history_entry(snapshot.account, request_id=f"request-{index}")
    many_response, many_queries = measure()

    assert len(history_rows(few_response)) == 3
    assert len(history_rows(many_response)) == 30
    assert len(few_queries) == len(many_queries)
    (history_query,) = [
        query["sql"]
        for query in many_queries
        if "sandboxes_snapshothistory" in query["sql"]
    ]
    assert f"LIMIT {sandboxes_admin.HISTORY_ROWS_SHOWN + 1}" in history_query


@pytest.fixture
def histories(account, snapshot, make_account):
    """The setup entry of ``snapshot`` and one staff entry of another account
    from 2020."""
    other = make_account("Other")
    staff = history_entry(
        other,
        request_id="req-staff-1",
        changed_at=datetime(2020, 6, 1, tzinfo=UTC),
    )
    return {"setup": snapshot.account.snapshot_history.get(), "staff": staff}


def test_history_changelist_and_search(admin_client, histories):
    setup, staff = histories["setup"], histories["staff"]
    url = reverse("admin:sandboxes_snapshothistory_changelist")

    # Newest first in the order the changes were made (id), not by changed_at.
    assert listed(admin_client.get(url)) == [staff, setup]
    assert listed(admin_client.get(url, {"q": "Caller"})) == [setup]
    assert listed(admin_client.get(url, {"q": str(staff.account_id)})) == [staff]
    assert listed(admin_client.get(url, {"q": "req-staff-1"})) == [staff]
    assert listed(admin_client.get(url, {"q": "req-staff"})) == []


@pytest.mark.parametrize(
    ("actor_type", "expected"),
    [("staff", "staff"), ("command", "setup"), ("api_key", None)],
)
def test_history_actor_type_filter(admin_client, histories, actor_type, expected):
    response = admin_client.get(
        reverse("admin:sandboxes_snapshothistory_changelist"),
        {"actor_type__exact": actor_type},
    )

    filters = [spec.title for spec in response.context["cl"].filter_specs]
    assert filters == ["actor type"]
    assert listed(response) == ([histories[expected]] if expected else [])


def test_history_date_hierarchy(admin_client, histories):
    url = reverse("admin:sandboxes_snapshothistory_changelist")

    page = admin_client.get(url)
    response = admin_client.get(url, {"changed_at__year": "2020"})

    assert '<nav class="toplinks">' in page.content.decode()
    assert "?changed_at__year=2020" in page.content.decode()
    assert listed(response) == [histories["staff"]]


def test_history_admin_read_only(admin_client, histories):
    entry = histories["staff"]
    changelist = admin_client.get(admin_url(entry, "changelist"))
    change_url = admin_url(entry, "change", entry.pk)

    assert admin_url(entry, "add") not in changelist.content.decode()
    assert changelist.context["action_form"] is None
    assert admin_client.get(admin_url(entry, "add")).status_code == 403
    assert admin_client.get(admin_url(entry, "delete", entry.pk)).status_code == 403
    view = admin_client.get(change_url)
    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert admin_url(entry, "delete", entry.pk) not in view.content.decode()
    assert "req-staff-1" in view.content.decode()
    response = admin_client.post(change_url, {"request_id": "forged"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert entry.request_id == "req-staff-1"
    assert SnapshotHistory.objects.count() == 2


def test_history_changelist_queries_constant(
    admin_client, make_account, django_assert_max_num_queries
):
    url = reverse("admin:sandboxes_snapshothistory_changelist")

    def add_entries(start, stop):
        for index in range(start, stop):
            write_snapshot(make_account(f"Account {index:02}"), snapshot_id="snap_1")

    add_entries(0, 3)
    few = measure_changelist(
        admin_client, url, django_assert_max_num_queries, HISTORY_CHANGELIST_MAX_QUERIES
    )
    add_entries(3, 30)
    many = measure_changelist(
        admin_client, url, django_assert_max_num_queries, HISTORY_CHANGELIST_MAX_QUERIES
    )

    assert few == many


# Account choices


@pytest.mark.parametrize(
    ("page", "select_name"),
    [
        ("membership add", "account"),
        ("membership add", "organization"),
        ("key add", "account"),
        ("snapshot add", "account"),
        ("account change", "memberships-__prefix__-organization"),
        ("account change", "member_links-__prefix__-account"),
    ],
)
def test_account_chosen_by_autocomplete(admin_client, account, page, select_name):
    url = {
        "membership add": reverse("admin:accounts_organizationmembership_add"),
        "key add": reverse("admin:accounts_apikey_add"),
        "snapshot add": reverse("admin:sandboxes_accountsnapshot_add"),
        "account change": admin_url(account, "change", account.pk),
    }[page]

    response = admin_client.get(url)

    assert response.status_code == 200
    match = re.search(
        rf'<select name="{re.escape(select_name)}"[^>]*>', response.content.decode()
    )
    assert match, f"no select named {select_name}"
    assert 'class="admin-autocomplete"' in match.group(0)
    assert f'data-ajax--url="{reverse("admin:autocomplete")}"' in match.group(0)


# Access


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:index",
        "admin:accounts_account_changelist",
        "admin:accounts_organizationmembership_changelist",
        "admin:accounts_apikey_changelist",
        "admin:accounts_apikey_add",
        "admin:sandboxes_accountsnapshot_changelist",
        "admin:sandboxes_accountsnapshot_add",
        "admin:sandboxes_snapshothistory_changelist",
    ],
)
def test_non_staff_redirected_to_login(client, django_user_model, url_name):
    user = django_user_model.objects.create_user(username="viewer", password="pw")
    client.force_login(user)
    url = reverse(url_name)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
