"""Every change to an account's snapshot goes through this module: the API
view, the admin and the management commands all call ``update_snapshot``."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Account

from .models import AccountSnapshot
from .validators import validate_github_repo, validate_snapshot_id


class _Unchanged:
    def __repr__(self):
        return "UNCHANGED"


# Passed for a field that the change leaves as it is; None clears a field.
UNCHANGED = _Unchanged()


def snapshot_ttl() -> timedelta:
    return timedelta(days=settings.SNAPSHOT_TTL_DAYS)


def empty_snapshot(account: Account) -> AccountSnapshot:
    """Return an unsaved record with nulls, for an account that has none."""
    return AccountSnapshot(
        account=account,
        snapshot_id=None,
        github_repo=None,
        expires_at=None,
        created_at=None,
        updated_at=None,
    )


def get_snapshot(account: Account) -> AccountSnapshot:
    """Return the account's snapshot record, or an unsaved empty one."""
    snapshot = AccountSnapshot.objects.filter(account=account).first()
    return snapshot or empty_snapshot(account)


def _validate(snapshot_id, github_repo) -> None:
    errors = {}
    for field, value, validator in (
        ("snapshot_id", snapshot_id, validate_snapshot_id),
        ("github_repo", github_repo, validate_github_repo),
    ):
        if value is UNCHANGED or value is None:
            continue
        try:
            validator(value)
        except ValidationError as error:
            errors[field] = error.messages
    if errors:
        raise ValidationError(errors)


@dataclass(frozen=True)
class SnapshotChange:
    """The result of ``update_snapshot``: the record after the change, and
    whether anything was written."""

    snapshot: AccountSnapshot
    written: bool


def update_snapshot(
    *,
    account: Account,
    snapshot_id: str | _Unchanged | None = UNCHANGED,
    github_repo: str | _Unchanged | None = UNCHANGED,
    now: datetime | None = None,
) -> SnapshotChange:
    """Set or clear an account's snapshot ID and repository, atomically.

    A snapshot ID sets ``expires_at`` to now plus ``SNAPSHOT_TTL_DAYS``, every
    time. Clearing the snapshot ID clears ``expires_at``. The repository alone
    leaves ``expires_at`` as it is. With neither field nothing is written.
    Raises ValidationError, keyed by field name, for an invalid value.
    """
    _validate(snapshot_id, github_repo)
    if snapshot_id is UNCHANGED and github_repo is UNCHANGED:
        return SnapshotChange(snapshot=get_snapshot(account), written=False)

    now = now or timezone.now()
    changes = {"updated_at": now}
    if snapshot_id is not UNCHANGED:
        changes["snapshot_id"] = snapshot_id
        changes["expires_at"] = None if snapshot_id is None else now + snapshot_ttl()
    if github_repo is not UNCHANGED:
        changes["github_repo"] = github_repo

    return SnapshotChange(snapshot=_upsert(account, changes, now), written=True)


def _upsert(account: Account, changes: dict, now: datetime) -> AccountSnapshot:
    """Write the changes to the account's record in one statement, creating
    the record if it does not exist yet.

    INSERT ... ON CONFLICT DO UPDATE is atomic, so concurrent first requests
    for one account never make a second record. The model's db_default
    columns make the database return every stored value (RETURNING), so the
    result is the row as written, including fields this change left alone.
    """
    snapshot = empty_snapshot(account)
    snapshot.created_at = now
    for field, value in changes.items():
        setattr(snapshot, field, value)
    (snapshot,) = AccountSnapshot.objects.bulk_create(
        [snapshot],
        update_conflicts=True,
        unique_fields=["account"],
        update_fields=list(changes),
    )
    return snapshot
