import io
import json

import pytest
from django.core.management import call_command
from django.db import DatabaseError

from sandboxes import services
from sandboxes.models import AccountSnapshot, SnapshotHistory

pytestmark = pytest.mark.django_db

API_KEY = SnapshotHistory.ActorType.API_KEY


def test_api_change_recorded(patch, raw_key, account):
    response = patch(
        {"snapshotId": "snap_1"},
        raw_key,
        HTTP_X_REQUEST_ID="req-123",
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 200, response.content
    (entry,) = SnapshotHistory.objects.all()
    assert entry.account == account
    assert entry.actor_type == API_KEY
    assert entry.actor == raw_key[: len(entry.actor)]
    assert len(entry.actor) < 20
    assert entry.api_key.account == account
    assert entry.source == "203.0.113.7"
    assert entry.request_id == "req-123"
    assert entry.snapshot_id_before is None
    assert entry.snapshot_id_after == "snap_1"
    assert entry.expires_at_after == AccountSnapshot.objects.get().expires_at


def test_before_and_after_values(patch, raw_key):
    patch({"snapshotId": "snap_1", "github_repo": "https://g.io/a"}, raw_key)
    first_expiry = AccountSnapshot.objects.get().expires_at
    patch({"github_repo": "https://g.io/b"}, raw_key)
    patch({"snapshotId": None}, raw_key)

    _, second, third = SnapshotHistory.objects.order_by("id")
    assert (second.github_repo_before, second.github_repo_after) == (
        "https://g.io/a",
        "https://g.io/b",
    )
    assert second.snapshot_id_before == second.snapshot_id_after == "snap_1"
    assert second.expires_at_before == second.expires_at_after == first_expiry
    assert (third.snapshot_id_before, third.snapshot_id_after) == ("snap_1", None)
    assert (third.expires_at_before, third.expires_at_after) == (first_expiry, None)
    assert third.github_repo_after == "https://g.io/b"


def test_read_only_request_not_recorded(patch, raw_key):
    patch({}, raw_key)
    patch({"snapshotId": "s"}, raw_key)
    patch({}, raw_key)
    assert SnapshotHistory.objects.count() == 1


def test_rejected_request_not_recorded(patch, raw_key):
    patch({"snapshotId": ""}, raw_key)
    assert not SnapshotHistory.objects.exists()


def test_command_change_recorded(account):
    call_command(
        "set_snapshot",
        "--account",
        str(account.pk),
        "--snapshot-id",
        "snap_cli",
        stdout=io.StringIO(),
    )
    (entry,) = SnapshotHistory.objects.all()
    assert entry.actor_type == SnapshotHistory.ActorType.COMMAND
    assert entry.actor == "set_snapshot"
    assert entry.source


@pytest.mark.parametrize("failing", ["_upsert", "_record_creation"])
def test_history_and_change_share_transaction(account, monkeypatch, failing):
    def fail(*args, **kwargs):
        raise DatabaseError("simulated failure")

    monkeypatch.setattr(services, failing, fail)
    with pytest.raises(DatabaseError):
        services.update_snapshot(
            account=account, actor=services.Actor.for_command("test"), snapshot_id="s"
        )
    assert not AccountSnapshot.objects.exists()
    assert not SnapshotHistory.objects.exists()


def test_history_rolled_back_with_failed_update(account, monkeypatch):
    actor = services.Actor.for_command("test")
    services.update_snapshot(account=account, actor=actor, snapshot_id="s1")

    def fail(*args, **kwargs):
        raise DatabaseError("simulated failure")

    monkeypatch.setattr(services, "_upsert", fail)
    with pytest.raises(DatabaseError):
        services.update_snapshot(account=account, actor=actor, snapshot_id="s2")
    assert SnapshotHistory.objects.count() == 1
    assert AccountSnapshot.objects.get().snapshot_id == "s1"


def test_extend_expiry_recorded(account):
    actor = services.Actor.for_command("test")
    first = services.update_snapshot(account=account, actor=actor, snapshot_id="s")
    change = services.extend_expiry(account=account, actor=actor)
    assert change.written
    ttl = services.snapshot_ttl()
    assert change.snapshot.expires_at - first.snapshot.expires_at >= ttl - ttl / 100
    last = SnapshotHistory.objects.order_by("id").last()
    assert last.expires_at_before == first.snapshot.expires_at
    assert last.expires_at_after == change.snapshot.expires_at


def test_extend_expiry_skips_record_without_snapshot(account):
    actor = services.Actor.for_command("test")
    services.update_snapshot(account=account, actor=actor, github_repo="https://g.io/r")
    assert not services.extend_expiry(account=account, actor=actor).written
    assert SnapshotHistory.objects.count() == 1


def test_history_command_json(patch, raw_key, account):
    patch({"snapshotId": "snap_1"}, raw_key)
    patch({"snapshotId": "snap_2"}, raw_key)
    out = io.StringIO()
    call_command("snapshot_history", "--account", str(account.pk), "--json", stdout=out)
    entries = json.loads(out.getvalue())
    assert [e["after"]["snapshot_id"] for e in entries] == ["snap_1", "snap_2"]
    assert entries[1]["before"]["snapshot_id"] == "snap_1"
    assert entries[0]["actor_type"] == "api_key"
    assert entries[0]["account_id"] == str(account.pk)


def test_history_command_text(patch, raw_key, account):
    patch({"snapshotId": "snap_1"}, raw_key)
    out = io.StringIO()
    call_command("snapshot_history", "--account", str(account.pk), stdout=out)
    assert "snapshot_id: - -> snap_1" in out.getvalue()
    assert "API key" in out.getvalue()


def test_history_command_empty(account):
    out = io.StringIO()
    call_command("snapshot_history", "--account", str(account.pk), "--json", stdout=out)
    assert json.loads(out.getvalue()) == []


def test_history_command_unknown_account():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No account has the id"):
        call_command(
            "snapshot_history", "--account", "550e8400-e29b-41d4-a716-446655440000"
        )
