"""Security properties: revoked and expired keys, writes across accounts,
the admin's staff check, session cookies on the API, and where raw keys and
their digests may appear."""

import io
import json
import logging
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.keys import KEY_PATTERN, issue_key, key_digest, revoke_keys
from accounts.models import Account, APIKey, OrganizationMembership
from sandboxes.models import AccountSnapshot, SnapshotHistory

pytestmark = pytest.mark.django_db

ADMIN = OrganizationMembership.Role.ADMIN


def send(client, body, key=None, **headers):
    """PATCH /api/sandboxes with a JSON body, and the key as x-api-key."""
    if key is not None:
        headers.setdefault("HTTP_X_API_KEY", key)
    return client.patch(
        "/api/sandboxes",
        json.dumps(body),
        content_type="application/json",
        **headers,
    )


def key_headers(form, raw_key):
    if form == "x-api-key":
        return {"HTTP_X_API_KEY": raw_key}
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


# Revoked and expired keys


def revoke_with_function(api_key, admin_client):
    revoke_keys(APIKey.objects.filter(pk=api_key.pk))


def revoke_with_command(api_key, admin_client):
    call_command("revoke_api_key", str(api_key.pk), stdout=io.StringIO())


def revoke_with_admin_action(api_key, admin_client):
    response = admin_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [api_key.pk]},
    )
    assert response.status_code == 302, response.content[:500]


def revoke_with_admin_button(api_key, admin_client):
    url = reverse("admin:accounts_apikey_change", args=[api_key.pk])
    response = admin_client.post(
        url,
        {"name": api_key.name, "expires_at_0": "", "expires_at_1": "", "_revoke": "1"},
    )
    assert response.status_code == 302, response.content[:500]


REVOKERS = {
    "revoke_keys": revoke_with_function,
    "command": revoke_with_command,
    "admin_action": revoke_with_admin_action,
    "admin_button": revoke_with_admin_button,
}


@pytest.mark.parametrize("form", ["x-api-key", "bearer"])
@pytest.mark.parametrize("revoke", list(REVOKERS.values()), ids=REVOKERS)
def test_revoked_key_rejected_right_after_use(
    client, admin_client, account, form, revoke
):
    issued = issue_key(account=account)
    headers = key_headers(form, issued.raw_key)
    assert send(client, {}, **headers).status_code == 200
    used_at = APIKey.objects.get(pk=issued.api_key.pk).last_used_at
    assert used_at is not None

    revoke(issued.api_key, admin_client)
    response = send(client, {"snapshotId": "snap_after_revoke"}, **headers)

    assert response.status_code == 401, response.content
    assert "revoked" in response.json()["error"]
    assert not AccountSnapshot.objects.exists()
    assert not SnapshotHistory.objects.exists()
    # A rejected key is not marked as used.
    assert APIKey.objects.get(pk=issued.api_key.pk).last_used_at == used_at


@pytest.mark.parametrize("form", ["x-api-key", "bearer"])
@pytest.mark.parametrize(
    "after_expiry", [timedelta(0), timedelta(microseconds=1), timedelta(seconds=30)]
)
def test_expired_key_rejected_within_last_used_window(
    client, account, monkeypatch, form, after_expiry
):
    start = timezone.now()
    expires_at = start + timedelta(seconds=10)
    issued = issue_key(account=account, expires_at=expires_at)
    headers = key_headers(form, issued.raw_key)

    monkeypatch.setattr(timezone, "now", lambda: start)
    assert send(client, {}, **headers).status_code == 200
    assert APIKey.objects.get(pk=issued.api_key.pk).last_used_at == start

    # Still within a minute of the last use, so no last_used_at write is due.
    monkeypatch.setattr(timezone, "now", lambda: expires_at + after_expiry)
    response = send(client, {"snapshotId": "snap_after_expiry"}, **headers)

    assert response.status_code == 401, response.content
    assert "expired" in response.json()["error"]
    assert not AccountSnapshot.objects.exists()
    assert APIKey.objects.get(pk=issued.api_key.pk).last_used_at == start


def test_key_expired_by_edit_rejected_after_use(client, account):
    issued = issue_key(account=account, expires_at=timezone.now() + timedelta(days=1))
    assert send(client, {}, issued.raw_key).status_code == 200

    APIKey.objects.filter(pk=issued.api_key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = send(client, {"snapshotId": "snap_after_expiry"}, issued.raw_key)

    assert response.status_code == 401, response.content
    assert not AccountSnapshot.objects.exists()


def test_revoking_one_key_leaves_other_keys(client, account):
    revoked = issue_key(account=account)
    active = issue_key(account=account)
    revoke_keys(APIKey.objects.filter(pk=revoked.api_key.pk))

    assert send(client, {}, revoked.raw_key).status_code == 401
    assert send(client, {}, active.raw_key).status_code == 200


def test_revoked_key_stays_rejected(client, account):
    issued = issue_key(account=account)
    revoke_keys(APIKey.objects.filter(pk=issued.api_key.pk))
    for _ in range(3):
        assert send(client, {}, issued.raw_key).status_code == 401


# Writes across accounts


@pytest.fixture
def world(make_account, member_of):
    """Accounts in two labels, an organization that is a member of one of
    them, and an account with no memberships."""
    accounts = {
        "label": make_account("Label", organization=True),
        "other_label": make_account("Other label", organization=True),
        "parent": make_account("Parent", organization=True),
        "artist": make_account("Artist"),
        "bandmate": make_account("Bandmate"),
        "manager": make_account("Manager"),
        "stranger": make_account("Stranger"),
        "loner": make_account("Loner"),
    }
    member_of(accounts["artist"], accounts["label"])
    member_of(accounts["bandmate"], accounts["label"])
    member_of(accounts["manager"], accounts["label"], role=ADMIN)
    member_of(accounts["stranger"], accounts["other_label"])
    member_of(accounts["label"], accounts["parent"])
    return accounts


# Every pair (caller, target) of different accounts in ``world`` that the
# rules allow. The API must reject every other pair.
ALLOWED_OTHERS = {
    ("label", "artist"),
    ("label", "bandmate"),
    ("label", "manager"),
    ("other_label", "stranger"),
    ("parent", "label"),
    ("artist", "bandmate"),
    ("artist", "manager"),
    ("bandmate", "artist"),
    ("bandmate", "manager"),
    ("manager", "artist"),
    ("manager", "bandmate"),
    ("manager", "label"),
}


def denied_pairs():
    names = [
        "label",
        "other_label",
        "parent",
        "artist",
        "bandmate",
        "manager",
        "stranger",
        "loner",
    ]
    return [
        (caller, target)
        for caller in names
        for target in names
        if caller != target and (caller, target) not in ALLOWED_OTHERS
    ]


@pytest.mark.parametrize("account_id_form", ["lower", "upper"])
def test_key_cannot_write_other_accounts(
    client, world, make_key, settings, account_id_form
):
    settings.PLATFORM_ORGANIZATION_ID = None
    keys = {name: make_key(account) for name, account in world.items()}
    for caller, target in denied_pairs():
        account_id = str(world[target].pk)
        if account_id_form == "upper":
            account_id = account_id.upper()
        response = send(
            client,
            {"snapshotId": f"snap_{caller}", "account_id": account_id},
            keys[caller],
        )
        assert response.status_code == 403, (caller, target, response.content)
    assert not AccountSnapshot.objects.exists()
    assert not SnapshotHistory.objects.exists()


def test_denied_and_unknown_targets_look_alike(client, world, make_key):
    key = make_key(world["loner"])
    targets = [account.pk for name, account in world.items() if name != "loner"]
    responses = [
        send(client, {"account_id": str(account_id)}, key)
        for account_id in [*targets, uuid.uuid4()]
    ]
    bodies = {response.content for response in responses}
    assert {response.status_code for response in responses} == {403}
    assert len(bodies) == 1


@pytest.mark.parametrize(
    ("where", "extra"),
    [
        ("query_string", lambda target: {"QUERY_STRING": f"account_id={target}"}),
        ("header", lambda target: {"HTTP_ACCOUNT_ID": target}),
        ("header_x", lambda target: {"HTTP_X_ACCOUNT_ID": target}),
    ],
)
def test_account_id_outside_body_ignored(client, world, make_key, where, extra):
    target = str(world["stranger"].pk)
    response = send(
        client, {"snapshotId": "snap_own"}, make_key(world["loner"]), **extra(target)
    )
    assert response.status_code == 200, response.content
    assert response.json()["account_id"] == str(world["loner"].pk)
    assert not AccountSnapshot.objects.filter(account=world["stranger"]).exists()
    assert not SnapshotHistory.objects.filter(account=world["stranger"]).exists()


# The admin


def admin_pages():
    """Return the name and URL of the admin index, and of the changelist and
    add pages of every registered model."""
    pages = [("index", reverse("admin:index"))]
    for model in admin.site._registry:
        opts = model._meta
        for view in ("changelist", "add"):
            name = f"{opts.app_label}_{opts.model_name}_{view}"
            pages.append((name, reverse(f"admin:{name}")))
    return pages


@pytest.fixture
def object_pages(account, make_key):
    """Return the change, history and delete pages of one object of each
    registered model."""
    make_key(account)
    OrganizationMembership.objects.create(
        account=account,
        organization=Account.objects.create(name="Label", is_organization=True),
    )
    AccountSnapshot.objects.create(account=account, snapshot_id="snap_existing")
    pages = []
    for model in admin.site._registry:
        instance = model._default_manager.first()
        if instance is None:
            continue
        opts = model._meta
        for view in ("change", "history", "delete"):
            name = f"{opts.app_label}_{opts.model_name}_{view}"
            pages.append(reverse(f"admin:{name}", args=[instance.pk]))
    return pages


def assert_sent_to_login(response, url):
    assert response.status_code == 302, (url, response.status_code)
    assert response["Location"].startswith(reverse("admin:login")), url


@pytest.fixture(
    params=["anonymous", "non_staff", "inactive_superuser"],
)
def outsider_client(request, client, django_user_model):
    if request.param == "non_staff":
        user = django_user_model.objects.create_user("viewer", password="pw")
        client.force_login(user)
    elif request.param == "inactive_superuser":
        user = django_user_model.objects.create_superuser(
            "former", "former@example.com", "pw"
        )
        user.is_active = False
        user.save()
        client.force_login(user)
    return client


def test_admin_pages_send_outsiders_to_login(outsider_client, object_pages):
    for _, url in admin_pages():
        assert_sent_to_login(outsider_client.get(url), url)
    for url in object_pages:
        assert_sent_to_login(outsider_client.get(url), url)


def test_admin_registers_every_model():
    registered = {model._meta.label for model in admin.site._registry}
    assert {
        "accounts.Account",
        "accounts.OrganizationMembership",
        "accounts.APIKey",
        "sandboxes.AccountSnapshot",
    } <= registered


def test_admin_add_by_outsider_creates_nothing(outsider_client, account):
    key_count = APIKey.objects.count()
    posts = {
        "accounts_apikey_add": {"account": account.pk, "name": "stolen"},
        "accounts_account_add": {"name": "Intruder"},
        "sandboxes_accountsnapshot_add": {
            "account": account.pk,
            "snapshot_id": "snap_intruder",
        },
    }
    for name, data in posts.items():
        url = reverse(f"admin:{name}")
        response = outsider_client.post(url, data)
        assert_sent_to_login(response, url)
        assert not KEY_PATTERN.search(response.content.decode())
    assert APIKey.objects.count() == key_count
    assert not Account.objects.filter(name="Intruder").exists()
    assert not AccountSnapshot.objects.exists()


def test_admin_staff_without_permissions_rejected(client, django_user_model):
    user = django_user_model.objects.create_user("intern", password="pw", is_staff=True)
    client.force_login(user)
    for name, url in admin_pages():
        if name == "index":
            continue
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)


# Session cookies on the API


@pytest.fixture
def superuser_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(user)
    assert client.cookies["sessionid"].value
    return client


def test_session_cookie_without_key_rejected(superuser_client, account):
    response = send(superuser_client, {"snapshotId": "snap_session"})
    assert response.status_code == 401, response.content
    response = send(
        superuser_client,
        {"snapshotId": "snap_session", "account_id": str(account.pk)},
    )
    assert response.status_code == 401, response.content
    assert not AccountSnapshot.objects.exists()
    assert not SnapshotHistory.objects.exists()


def test_session_cookie_with_key_acts_as_key(superuser_client, world, make_key):
    key = make_key(world["loner"])
    denied = send(
        superuser_client,
        {"snapshotId": "snap_other", "account_id": str(world["artist"].pk)},
        key,
    )
    assert denied.status_code == 403, denied.content
    assert not AccountSnapshot.objects.exists()

    own = send(superuser_client, {"snapshotId": "snap_own"}, key)
    assert own.status_code == 200, own.content
    assert own.json()["account_id"] == str(world["loner"].pk)
    entry = SnapshotHistory.objects.get()
    assert entry.account == world["loner"]
    assert entry.actor_type == SnapshotHistory.ActorType.API_KEY
    assert entry.user_id is None


def test_api_sets_no_cookies(superuser_client, raw_key):
    response = send(superuser_client, {"snapshotId": "snap_cookie"}, raw_key)
    assert response.status_code == 200, response.content
    assert not response.cookies


# Where raw keys and digests may appear


@pytest.fixture
def all_logs(caplog):
    """Capture every logger at DEBUG, including loggers that do not
    propagate to the root logger."""
    caplog.set_level(logging.DEBUG)
    attached = []
    for name in list(logging.root.manager.loggerDict):
        logger = logging.getLogger(name)
        caplog.set_level(logging.DEBUG, logger=name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            attached.append(logger)
    yield caplog
    for logger in attached:
        logger.removeHandler(caplog.handler)


def record_text(record):
    """Return a log record's message and every extra attribute, as the JSON
    log format would write them."""
    return record.getMessage() + " " + " ".join(map(str, vars(record).values()))


def leak_paths(world, make_key, settings):
    """Return (name, status, raw key, request keyword arguments) for requests
    that succeed or fail in each way the API can."""
    platform = world["parent"]
    settings.PLATFORM_ORGANIZATION_ID = platform.pk
    staff = Account.objects.create(name="Staff")
    OrganizationMembership.objects.create(account=staff, organization=platform)

    artist_key = make_key(world["artist"])
    staff_key = make_key(staff)
    revoked_key = make_key(world["bandmate"])
    revoke_keys(APIKey.objects.filter(account=world["bandmate"]))
    expired = issue_key(
        account=world["manager"], expires_at=timezone.now() - timedelta(seconds=1)
    ).raw_key
    unknown = "recoup_sk_" + "A" * 43

    def body(value):
        return {"data": json.dumps(value), "content_type": "application/json"}

    return [
        ("own", 200, artist_key, body({"snapshotId": "snap_1"})),
        (
            "other",
            200,
            artist_key,
            body({"snapshotId": "snap_2", "account_id": str(world["bandmate"].pk)}),
        ),
        ("read_only", 200, artist_key, body({})),
        ("invalid_value", 400, artist_key, body({"snapshotId": ""})),
        ("unknown_field", 400, artist_key, body({"color": "blue"})),
        ("key_as_value", 400, artist_key, body({"snapshotId": artist_key + " "})),
        (
            "malformed_json",
            400,
            artist_key,
            {"data": b"{" + artist_key.encode(), "content_type": "application/json"},
        ),
        ("revoked", 401, revoked_key, body({})),
        ("expired", 401, expired, body({})),
        ("unknown", 401, unknown, body({})),
        ("key_with_suffix", 401, artist_key + "x", body({})),
        (
            "forbidden",
            403,
            artist_key,
            body({"account_id": str(world["stranger"].pk)}),
        ),
        ("staff_unknown_id", 404, staff_key, body({"account_id": str(uuid.uuid4())})),
        (
            "unsupported_type",
            415,
            artist_key,
            {"data": artist_key, "content_type": "text/plain"},
        ),
        (
            "too_large",
            413,
            artist_key,
            {"data": b"{" + b" " * 70_000 + b"}", "content_type": "application/json"},
        ),
    ]


def secrets_of(raw_key):
    """Return the texts that must not leak: the key and its digest, and for a
    key with a suffix, the real key within it."""
    texts = {raw_key, key_digest(raw_key)}
    match = KEY_PATTERN.search(raw_key)
    if match:
        texts |= {match.group(), key_digest(match.group())}
    return texts


@pytest.mark.parametrize("form", ["x-api-key", "bearer"])
def test_no_key_or_digest_in_responses_or_logs(
    client, world, make_key, settings, all_logs, form
):
    paths = leak_paths(world, make_key, settings)
    for name, status, raw_key, kwargs in paths:
        all_logs.clear()
        response = client.generic(
            "PATCH", "/api/sandboxes", **kwargs, **key_headers(form, raw_key)
        )
        assert response.status_code == status, (name, response.content)
        assert all_logs.records, name
        headers = " ".join(f"{key}: {value}" for key, value in response.items())
        logs = " ".join(record_text(record) for record in all_logs.records)
        for secret in secrets_of(raw_key):
            assert secret not in response.content.decode(), name
            assert secret not in headers, name
            assert secret not in logs, name


def test_no_key_in_logs_of_key_commands(account, all_logs):
    output = io.StringIO()
    call_command("create_api_key", "--account", str(account.pk), stdout=output)
    raw_key = output.getvalue().strip()
    assert KEY_PATTERN.fullmatch(raw_key)
    call_command("revoke_api_key", str(APIKey.objects.get().pk), stdout=io.StringIO())

    logs = " ".join(record_text(record) for record in all_logs.records)
    assert raw_key not in logs
    assert key_digest(raw_key) not in logs


def dump_database():
    """Return (table, column, text) for every value in every table."""
    cells = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted}")  # noqa: S608
            columns = [column[0] for column in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, memoryview | bytes):
                        value = bytes(value).decode("utf-8", "replace")
                    cells.append((table, column, str(value)))
    for session in Session.objects.all():
        cells.append(("django_session", "decoded", str(session.get_decoded())))
    return cells


def test_raw_keys_stored_only_as_digests(admin_client, client, world, make_key):
    raw_keys = [make_key(world["artist"])]

    output = io.StringIO()
    call_command("create_api_key", "--account", str(world["loner"].pk), stdout=output)
    raw_keys.append(output.getvalue().strip())

    response = admin_client.post(
        reverse("admin:accounts_apikey_add"),
        {"account": world["manager"].pk, "name": "From the admin"},
    )
    assert response.status_code == 200, response.content[:500]
    (admin_key,) = KEY_PATTERN.findall(response.content.decode())
    raw_keys.append(admin_key)

    # Use each key on success and failure paths, then revoke one.
    for raw_key in raw_keys:
        assert send(client, {"snapshotId": "snap_1"}, raw_key).status_code == 200
        assert send(client, {"snapshotId": ""}, raw_key).status_code == 400
        other = {"account_id": str(world["stranger"].pk)}
        assert send(client, other, raw_key).status_code == 403
    revoke_keys(APIKey.objects.filter(account=world["loner"]))
    assert send(client, {}, raw_keys[1]).status_code == 401

    cells = dump_database()
    assert len(raw_keys) == APIKey.objects.count()
    for raw_key in raw_keys:
        digest = key_digest(raw_key)
        assert not [cell for cell in cells if raw_key in cell[2]]
        holders = {(table, column) for table, column, text in cells if digest in text}
        assert holders == {(APIKey._meta.db_table, "digest")}


def test_prefix_is_too_short_to_use(account):
    issued = issue_key(account=account)
    assert issued.api_key.prefix != issued.raw_key
    assert len(issued.api_key.prefix) <= 16
    assert re.fullmatch(r"recoup_sk_[A-Za-z0-9_-]{6}", issued.api_key.prefix)
