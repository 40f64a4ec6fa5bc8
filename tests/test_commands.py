import io
import json
import re
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.keys import (
    KEY_PATTERN,
    REVOKED,
    KeyRejected,
    issue_key,
    key_digest,
    verify_key,
)
from accounts.models import Account, APIKey, OrganizationMembership
from sandboxes.management.commands.seed_demo import MEMBER_ID, ORGANIZATION_ID
from sandboxes.models import AccountSnapshot, SnapshotHistory
from sandboxes.serializers import SnapshotSerializer
from sandboxes.services import Actor, update_snapshot

pytestmark = pytest.mark.django_db

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def run(*args, **options):
    """Run a management command and return what it wrote to stdout."""
    stdout = io.StringIO()
    call_command(*args, stdout=stdout, **options)
    return stdout.getvalue()


def parse_time(text):
    return datetime.fromisoformat(text)


def set_up_snapshot(account, **changes):
    """Write a snapshot record through the service, as a command would."""
    return update_snapshot(
        account=account, actor=Actor.for_command("tests"), **changes
    ).snapshot


# create_account


def test_create_account_prints_id():
    output = run("create_account", "--name", "Nova")

    account = Account.objects.get()
    assert output == f"{account.pk}\n"
    assert account.name == "Nova"
    assert account.is_organization is False


def test_create_account_json():
    output = run("create_account", "--name", "  Label  ", "--organization", "--json")

    data = json.loads(output)
    account = Account.objects.get()
    assert data == {"id": str(account.pk), "name": "Label", "is_organization": True}
    assert account.is_organization is True


@pytest.mark.parametrize(
    ("name", "expected"), [("   ", "name is empty"), ("x" * 256, "at most 255")]
)
def test_create_account_invalid_name(name, expected):
    with pytest.raises(CommandError, match=expected) as raised:
        run("create_account", "--name", name)

    assert "--name" in str(raised.value)
    assert not Account.objects.exists()


def test_create_account_requires_name():
    with pytest.raises(CommandError, match="--name"):
        run("create_account")


# add_member


def test_add_member_default_role(make_account):
    organization = make_account("Label", organization=True)
    artist = make_account("Nova")

    output = run(
        "add_member",
        "--organization",
        str(organization.pk),
        "--account",
        str(artist.pk),
    )

    membership = OrganizationMembership.objects.get()
    assert membership.organization == organization
    assert membership.account == artist
    assert membership.role == OrganizationMembership.Role.MEMBER
    assert str(artist.pk) in output
    assert str(organization.pk) in output
    assert output.count("\n") == 1


def test_add_member_changes_role(make_account, member_of):
    organization = make_account("Label", organization=True)
    artist = make_account("Nova")
    member_of(artist, organization)

    output = run(
        "add_member",
        "--organization",
        str(organization.pk),
        "--account",
        str(artist.pk),
        "--role",
        "admin",
    )

    membership = OrganizationMembership.objects.get()
    assert membership.role == OrganizationMembership.Role.ADMIN
    assert "was a member" in output
    assert "Its role is now admin." in output


def test_add_member_again_changes_nothing(make_account, member_of):
    organization = make_account("Label", organization=True)
    artist = make_account("Nova")
    member_of(artist, organization)
    ids = ["--organization", str(organization.pk), "--account", str(artist.pk)]

    output = run("add_member", *ids)

    assert OrganizationMembership.objects.count() == 1
    assert "is already a member" in output
    assert "Nothing changed." in output


@pytest.mark.parametrize("option", ["--organization", "--account"])
def test_add_member_malformed_uuid(make_account, option):
    organization = make_account("Label", organization=True)
    artist = make_account("Nova")
    ids = {"--organization": str(organization.pk), "--account": str(artist.pk)}
    ids[option] = "not-a-uuid"

    with pytest.raises(CommandError, match=f"{option} 'not-a-uuid' is not a UUID"):
        run("add_member", *[part for pair in ids.items() for part in pair])

    assert not OrganizationMembership.objects.exists()


@pytest.mark.parametrize("option", ["--organization", "--account"])
def test_add_member_unknown_account(make_account, option):
    organization = make_account("Label", organization=True)
    artist = make_account("Nova")
    ids = {"--organization": str(organization.pk), "--account": str(artist.pk)}
    ids[option] = UNKNOWN_ID

    with pytest.raises(CommandError, match=f"No account has the id {UNKNOWN_ID}"):
        run("add_member", *[part for pair in ids.items() for part in pair])

    assert not OrganizationMembership.objects.exists()


def test_add_member_not_organization(make_account):
    person = make_account("Person")
    artist = make_account("Nova")

    with pytest.raises(CommandError, match=f"{person.pk}.*not an organization"):
        run("add_member", "--organization", str(person.pk), "--account", str(artist.pk))

    assert not OrganizationMembership.objects.exists()


def test_add_member_self(make_account):
    organization = make_account("Label", organization=True)

    with pytest.raises(CommandError, match="member of itself") as raised:
        run(
            "add_member",
            "--organization",
            str(organization.pk),
            "--account",
            str(organization.pk),
        )

    assert str(organization.pk) in str(raised.value)
    assert not OrganizationMembership.objects.exists()


def test_add_member_bad_role_argument(make_account):
    organization = make_account("Label", organization=True)
    artist = make_account("Nova")

    with pytest.raises(CommandError, match="invalid choice: 'owner'"):
        run(
            "add_member",
            "--organization",
            str(organization.pk),
            "--account",
            str(artist.pk),
            "--role",
            "owner",
        )

    assert not OrganizationMembership.objects.exists()


def test_add_member_bad_role_keyword(make_account):
    organization = make_account("Label", organization=True)
    artist = make_account("Nova")

    # Keyword options of call_command() skip argparse's choices, so the
    # service's check must turn into a CommandError.
    with pytest.raises(CommandError, match="'owner' is not one of"):
        run(
            "add_member",
            organization=str(organization.pk),
            account=str(artist.pk),
            role="owner",
        )

    assert not OrganizationMembership.objects.exists()


# create_api_key


def test_create_api_key_prints_key(account):
    output = run("create_api_key", "--account", str(account.pk))

    raw_key = output.removesuffix("\n")
    assert output.count("\n") == 1
    assert KEY_PATTERN.fullmatch(raw_key)
    api_key = verify_key(raw_key)
    assert api_key.account == account
    assert api_key.expires_at is None
    assert api_key.name == ""


def test_create_api_key_not_stored(account):
    raw_key = run("create_api_key", "--account", str(account.pk)).strip()

    dump = run("dumpdata")
    assert key_digest(raw_key) in dump
    assert raw_key not in dump
    assert APIKey.objects.get().prefix in dump


def test_create_api_key_json(account):
    before = timezone.now()
    output = run(
        "create_api_key",
        "--account",
        str(account.pk),
        "--name",
        "deploy",
        "--expires-in-days",
        "30",
        "--json",
    )
    after = timezone.now()

    data = json.loads(output)
    api_key = APIKey.objects.get()
    assert set(data) == {"id", "key", "prefix", "account_id", "expires_at"}
    assert data["id"] == api_key.pk
    assert data["account_id"] == str(account.pk)
    assert data["prefix"] == api_key.prefix
    assert data["key"].startswith(data["prefix"])
    assert verify_key(data["key"]) == api_key
    assert api_key.name == "deploy"
    assert data["expires_at"].endswith("Z")
    assert parse_time(data["expires_at"]) == api_key.expires_at
    assert before + timedelta(days=30) <= api_key.expires_at
    assert api_key.expires_at <= after + timedelta(days=30)


def test_create_api_key_json_no_expiry(account):
    data = json.loads(run("create_api_key", "--account", str(account.pk), "--json"))

    assert data["expires_at"] is None


@pytest.mark.parametrize("days", ["0", "-3"])
def test_create_api_key_days_not_positive(account, days):
    with pytest.raises(CommandError, match=f"--expires-in-days {days} is not"):
        run("create_api_key", "--account", str(account.pk), "--expires-in-days", days)

    assert not APIKey.objects.exists()


def test_create_api_key_days_not_integer(account):
    with pytest.raises(CommandError, match="invalid int value: 'soon'"):
        run("create_api_key", "--account", str(account.pk), "--expires-in-days", "soon")

    assert not APIKey.objects.exists()


def test_create_api_key_days_too_many(account):
    with pytest.raises(CommandError, match="99999999 puts the expiry after"):
        run(
            "create_api_key",
            "--account",
            str(account.pk),
            "--expires-in-days",
            "99999999",
        )

    assert not APIKey.objects.exists()


def test_create_api_key_name_too_long(account):
    with pytest.raises(CommandError, match="--name is 101 characters long"):
        run("create_api_key", "--account", str(account.pk), "--name", "k" * 101)

    assert not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("account_id", "expected"),
    [
        ("12345", "'12345' is not a UUID"),
        (UNKNOWN_ID, f"No account has the id {UNKNOWN_ID}"),
    ],
)
def test_create_api_key_bad_account(db, account_id, expected):
    with pytest.raises(CommandError, match=expected):
        run("create_api_key", "--account", account_id)

    assert not APIKey.objects.exists()


# revoke_api_key


def test_revoke_api_key(account, make_key):
    raw_key = make_key(account)
    other_key = make_key(account)
    api_key = verify_key(raw_key)

    output = run("revoke_api_key", str(api_key.pk))

    assert output.startswith(f"Revoked API key {api_key.pk} ")
    with pytest.raises(KeyRejected) as rejected:
        verify_key(raw_key)
    assert rejected.value.reason == REVOKED
    assert verify_key(other_key).revoked_at is None


def test_revoke_api_key_already_revoked(account, make_key):
    api_key = verify_key(make_key(account))
    run("revoke_api_key", str(api_key.pk))
    api_key.refresh_from_db()
    first_revoked_at = api_key.revoked_at

    output = run("revoke_api_key", str(api_key.pk))

    api_key.refresh_from_db()
    assert "was already revoked" in output
    assert api_key.revoked_at == first_revoked_at


def test_revoke_api_key_not_found(db):
    with pytest.raises(CommandError, match="No API key has the id 4242"):
        run("revoke_api_key", "4242")


@pytest.mark.parametrize("key_id", ["abc", "0", "-3", "1.5"])
def test_revoke_api_key_malformed_id(account, make_key, key_id):
    make_key(account)

    with pytest.raises(CommandError, match=f"KEY_ID '{key_id}' is not an API key id"):
        run("revoke_api_key", key_id)

    assert APIKey.objects.get().revoked_at is None


def test_revoke_api_key_id_out_of_range(db):
    # The id is larger than any 64-bit primary key. The lookup must find
    # nothing rather than fail in the database.
    with pytest.raises(CommandError, match="No API key has the id"):
        run("revoke_api_key", str(2**70))


# set_snapshot


def test_set_snapshot_json_matches_api(settings, account, raw_key, patch):
    settings.SNAPSHOT_TTL_DAYS = 3
    before = timezone.now()
    output = run(
        "set_snapshot",
        "--account",
        str(account.pk),
        "--snapshot-id",
        "snap_abc123",
        "--github-repo",
        "https://github.com/recoup/app",
        "--json",
    )
    after = timezone.now()

    data = json.loads(output)
    snapshot = AccountSnapshot.objects.get(account=account)
    assert data == json.loads(json.dumps(SnapshotSerializer(snapshot).data))
    assert data["snapshot_id"] == "snap_abc123"
    assert data["github_repo"] == "https://github.com/recoup/app"
    assert before + timedelta(days=3) <= snapshot.expires_at
    assert snapshot.expires_at <= after + timedelta(days=3)

    # An empty PATCH reads the state back through the API.
    response = patch({}, key=raw_key)
    assert response.status_code == 200, response.content
    assert response.json() == data


def test_set_snapshot_text(account):
    output = run("set_snapshot", "--account", str(account.pk), "--snapshot-id", "s1")

    assert str(account.pk) in output
    assert "s1" in output
    assert AccountSnapshot.objects.get(account=account).snapshot_id == "s1"


def test_set_snapshot_records_history(account):
    run("set_snapshot", "--account", str(account.pk), "--snapshot-id", "s1")

    entry = SnapshotHistory.objects.get(account=account)
    assert entry.actor_type == SnapshotHistory.ActorType.COMMAND
    assert entry.actor == "set_snapshot"
    assert entry.snapshot_id_before is None
    assert entry.snapshot_id_after == "s1"


def test_set_snapshot_repo_keeps_expiry(account):
    past = timezone.now() - timedelta(days=1)
    set_up_snapshot(account, snapshot_id="s1", now=past)
    expires_at = AccountSnapshot.objects.get().expires_at

    run(
        "set_snapshot",
        "--account",
        str(account.pk),
        "--github-repo",
        "https://github.com/recoup/app",
    )

    snapshot = AccountSnapshot.objects.get()
    assert snapshot.github_repo == "https://github.com/recoup/app"
    assert snapshot.snapshot_id == "s1"
    assert snapshot.expires_at == expires_at


def test_set_snapshot_clear_snapshot(account):
    set_up_snapshot(account, snapshot_id="s1", github_repo="https://github.com/a/b")

    data = json.loads(
        run("set_snapshot", "--account", str(account.pk), "--clear-snapshot", "--json")
    )

    snapshot = AccountSnapshot.objects.get()
    assert snapshot.snapshot_id is None
    assert snapshot.expires_at is None
    assert snapshot.github_repo == "https://github.com/a/b"
    assert data["snapshot_id"] is None


def test_set_snapshot_clear_github_repo(account):
    set_up_snapshot(account, snapshot_id="s1", github_repo="https://github.com/a/b")

    run("set_snapshot", "--account", str(account.pk), "--clear-github-repo")

    snapshot = AccountSnapshot.objects.get()
    assert snapshot.github_repo is None
    assert snapshot.snapshot_id == "s1"


def test_set_snapshot_no_change(account):
    output = run("set_snapshot", "--account", str(account.pk))

    assert "Nothing changed" in output
    assert not AccountSnapshot.objects.exists()


@pytest.mark.parametrize("snapshot_id", ["snap abc", "", "s" * 256])
def test_set_snapshot_invalid_id_writes_nothing(account, snapshot_id):
    set_up_snapshot(account, snapshot_id="s1")
    stored = AccountSnapshot.objects.values().get()

    with pytest.raises(CommandError, match="--snapshot-id") as raised:
        run(
            "set_snapshot",
            "--account",
            str(account.pk),
            "--snapshot-id",
            snapshot_id,
            "--github-repo",
            "https://github.com/recoup/app",
        )

    assert repr(snapshot_id)[:40] in str(raised.value)
    assert AccountSnapshot.objects.values().get() == stored


def test_set_snapshot_invalid_id_creates_nothing(account):
    with pytest.raises(CommandError, match="'snap abc'"):
        run("set_snapshot", "--account", str(account.pk), "--snapshot-id", "snap abc")

    assert not AccountSnapshot.objects.exists()


def test_set_snapshot_invalid_repo(account):
    with pytest.raises(CommandError, match="--github-repo 'ftp://example' is invalid"):
        run(
            "set_snapshot",
            "--account",
            str(account.pk),
            "--github-repo",
            "ftp://example",
        )

    assert not AccountSnapshot.objects.exists()


@pytest.mark.parametrize(
    "options",
    [
        ["--snapshot-id", "s1", "--clear-snapshot"],
        ["--github-repo", "https://github.com/a/b", "--clear-github-repo"],
    ],
)
def test_set_snapshot_exclusive_arguments(account, options):
    with pytest.raises(CommandError, match="not allowed with argument"):
        run("set_snapshot", "--account", str(account.pk), *options)

    assert not AccountSnapshot.objects.exists()


@pytest.mark.parametrize(
    "options",
    [
        {"snapshot_id": "s1", "clear_snapshot": True},
        {"github_repo": "https://github.com/a/b", "clear_github_repo": True},
    ],
)
def test_set_snapshot_exclusive_keywords(account, options):
    with pytest.raises(CommandError, match="were both given"):
        run("set_snapshot", account=str(account.pk), **options)

    assert not AccountSnapshot.objects.exists()


@pytest.mark.parametrize(
    ("account_id", "expected"),
    [
        ("nope", "'nope' is not a UUID"),
        (UNKNOWN_ID, f"No account has the id {UNKNOWN_ID}"),
    ],
)
def test_set_snapshot_bad_account(db, account_id, expected):
    with pytest.raises(CommandError, match=expected):
        run("set_snapshot", "--account", account_id, "--snapshot-id", "s1")

    assert not AccountSnapshot.objects.exists()


# list_snapshots


@pytest.fixture
def snapshots(make_account):
    """Create an active, an expired and a repository-only snapshot record."""
    active = make_account("Active")
    expired = make_account("Expired")
    repo_only = make_account("Repo only")
    set_up_snapshot(active, snapshot_id="snap_active")
    set_up_snapshot(
        expired,
        snapshot_id="snap_expired",
        now=timezone.now() - timedelta(days=30),
    )
    set_up_snapshot(repo_only, github_repo="https://github.com/recoup/repo")
    return {"active": active, "expired": expired, "repo_only": repo_only}


def listed_ids(output):
    return [item["account_id"] for item in json.loads(output)]


def test_list_snapshots_json(snapshots):
    output = run("list_snapshots", "--json")

    data = json.loads(output)
    expected = SnapshotSerializer(
        AccountSnapshot.objects.order_by("account__name"), many=True
    ).data
    assert isinstance(data, list)
    assert data == json.loads(json.dumps(expected))
    assert len(data) == 3


@pytest.mark.parametrize(
    ("option", "name"), [("--expired", "expired"), ("--active", "active")]
)
def test_list_snapshots_filter_json(snapshots, option, name):
    output = run("list_snapshots", option, "--json")

    assert listed_ids(output) == [str(snapshots[name].pk)]


def test_list_snapshots_table(snapshots):
    output = run("list_snapshots")

    lines = output.splitlines()
    assert re.split(r"  +", lines[0]) == [
        "ACCOUNT ID",
        "ACCOUNT NAME",
        "SNAPSHOT ID",
        "GITHUB REPO",
        "EXPIRES AT",
    ]
    assert len(lines) == 4
    rows = {}
    for name, account in snapshots.items():
        (rows[name],) = [line for line in lines if str(account.pk) in line]
    assert rows["expired"].endswith("expired")
    assert not rows["active"].endswith("expired")
    assert "snap_active" in rows["active"]
    assert "https://github.com/recoup/repo" in rows["repo_only"]
    # Every column starts at the same offset on every line.
    for header in ("SNAPSHOT ID", "GITHUB REPO", "EXPIRES AT"):
        offset = lines[0].index(header)
        assert all(line[offset - 2 : offset] == "  " for line in lines)
        assert all(line[offset] != " " for line in lines)


def test_list_snapshots_table_filter(snapshots):
    output = run("list_snapshots", "--expired")

    assert str(snapshots["expired"].pk) in output
    assert str(snapshots["active"].pk) not in output
    assert str(snapshots["repo_only"].pk) not in output


@pytest.mark.parametrize(
    ("options", "expected"), [([], "No snapshots.\n"), (["--json"], "[]\n")]
)
def test_list_snapshots_empty(db, options, expected):
    output = run("list_snapshots", *options)

    assert output == expected


def test_list_snapshots_filter_empty(make_account):
    set_up_snapshot(make_account("Active"), snapshot_id="snap_active")

    assert run("list_snapshots", "--expired", "--json") == "[]\n"
    assert run("list_snapshots", "--expired") == "No snapshots.\n"


@pytest.mark.parametrize(("options", "queries"), [(["--json"], 1), ([], 2)])
def test_list_snapshots_query_count(
    make_account, django_assert_num_queries, options, queries
):
    accounts = [make_account(f"Artist {number}") for number in range(5)]
    for account in accounts:
        set_up_snapshot(account, snapshot_id="s1")

    with django_assert_num_queries(queries):
        output = run("list_snapshots", *options)

    for account in accounts:
        assert str(account.pk) in output


def test_list_snapshots_exclusive(db):
    with pytest.raises(CommandError, match="not allowed with argument"):
        run("list_snapshots", "--expired", "--active")
    with pytest.raises(CommandError, match="were both given"):
        run("list_snapshots", expired=True, active=True)


# seed_demo


def curl_bodies(output):
    return [json.loads(body) for body in re.findall(r"-d '(\{.*\})'", output)]


def test_seed_demo_twice_creates_once(db):
    first = run("seed_demo")
    second = run("seed_demo")

    assert Account.objects.filter(pk__in=[ORGANIZATION_ID, MEMBER_ID]).count() == 2
    assert Account.objects.count() == 2
    assert (
        OrganizationMembership.objects.get().role == OrganizationMembership.Role.MEMBER
    )
    assert APIKey.objects.get().account_id == ORGANIZATION_ID
    assert KEY_PATTERN.search(first)
    assert not KEY_PATTERN.search(second)
    assert "Nothing was created" in second
    assert f"create_api_key --account {ORGANIZATION_ID}" in second
    assert str(MEMBER_ID) in second


def test_seed_demo_accounts(db):
    run("seed_demo")

    organization = Account.objects.get(pk=ORGANIZATION_ID)
    member = Account.objects.get(pk=MEMBER_ID)
    assert organization.name == "Recoup Demo Label"
    assert organization.is_organization is True
    assert member.name == "Demo Artist"
    assert member.is_organization is False
    assert OrganizationMembership.objects.filter(
        organization=organization, account=member
    ).exists()


def test_seed_demo_curl_works(db, patch):
    output = run("seed_demo")

    raw_keys = set(KEY_PATTERN.findall(output))
    assert len(raw_keys) == 1
    (raw_key,) = raw_keys
    assert verify_key(raw_key).account_id == ORGANIZATION_ID
    assert output.count("curl -X PATCH http://127.0.0.1:8000/api/sandboxes ") == 2
    assert output.count(f'-H "x-api-key: {raw_key}"') == 2

    own, for_member = curl_bodies(output)
    assert "account_id" not in own
    assert for_member["account_id"] == str(MEMBER_ID)
    for body in (own, for_member):
        response = patch(body, key=raw_key)
        assert response.status_code == 200, response.content
    assert (
        AccountSnapshot.objects.filter(
            account_id__in=[ORGANIZATION_ID, MEMBER_ID], snapshot_id=own["snapshotId"]
        ).count()
        == 2
    )


def test_seed_demo_second_run_curl(db):
    run("seed_demo")

    output = run("seed_demo")

    assert output.count('-H "x-api-key: $KEY"') == 2
    assert len(curl_bodies(output)) == 2


def test_seed_demo_base_url(db):
    output = run("seed_demo", "--base-url", "http://localhost:9000/")

    assert output.count("curl -X PATCH http://localhost:9000/api/sandboxes ") == 2


@pytest.mark.parametrize(
    "base_url", ["ftp://127.0.0.1", "localhost:8000", "http://x/?a=1"]
)
def test_seed_demo_bad_base_url(db, base_url):
    with pytest.raises(CommandError, match=re.escape(f"--base-url '{base_url}'")):
        run("seed_demo", "--base-url", base_url)

    assert not Account.objects.exists()


def test_seed_demo_atomic(db, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("key store unavailable")

    monkeypatch.setattr("sandboxes.management.commands.seed_demo.issue_key", fail)

    with pytest.raises(RuntimeError):
        run("seed_demo")

    assert not Account.objects.exists()
    assert not OrganizationMembership.objects.exists()


def test_seed_demo_id_not_organization(db):
    Account.objects.create(pk=ORGANIZATION_ID, name="Taken", is_organization=False)

    with pytest.raises(CommandError, match=str(ORGANIZATION_ID)):
        run("seed_demo")

    assert not Account.objects.filter(pk=MEMBER_ID).exists()
    assert not APIKey.objects.exists()


# Output streams


@pytest.mark.parametrize(
    "command",
    [
        ["create_account", "--name", "Nova"],
        ["list_snapshots"],
        ["list_snapshots", "--json"],
        ["seed_demo"],
    ],
)
def test_commands_write_to_given_streams(db, capsys, command):
    stdout = io.StringIO()
    stderr = io.StringIO()

    call_command(*command, stdout=stdout, stderr=stderr)

    captured = capsys.readouterr()
    assert stdout.getvalue()
    assert captured.out == ""
    assert captured.err == ""


def test_account_commands_write_to_given_streams(capsys, account, make_account):
    organization = make_account("Label", organization=True)
    api_key = verify_key(issue_key(account=account).raw_key)
    commands = [
        [
            "add_member",
            "--organization",
            str(organization.pk),
            "--account",
            str(account.pk),
        ],
        ["create_api_key", "--account", str(account.pk)],
        ["revoke_api_key", str(api_key.pk)],
        ["set_snapshot", "--account", str(account.pk), "--snapshot-id", "s1"],
    ]

    for command in commands:
        stdout = io.StringIO()
        call_command(*command, stdout=stdout, stderr=io.StringIO())
        assert stdout.getvalue(), command

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_revoke_api_key_by_raw_key(account):
    issued = issue_key(account=account)
    out = io.StringIO()
    call_command("revoke_api_key", issued.raw_key, stdout=out)
    issued.api_key.refresh_from_db()
    assert issued.api_key.revoked_at is not None
    assert issued.raw_key not in out.getvalue()


def test_revoke_api_key_unknown_raw_key_not_echoed():
    raw = "recoup_sk_" + "Q" * 43
    with pytest.raises(CommandError) as error:
        call_command("revoke_api_key", raw)
    assert raw not in str(error.value)
    assert "No API key matches" in str(error.value)
