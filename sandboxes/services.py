"""Every change to an account's snapshot goes through this module: the API
view, the admin and the management commands all call it, and each change is
recorded in the snapshot history in the same transaction."""

import functools
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account, APIKey
from recoup.rows import concrete_attnames, model_from_row

from .models import AccountSnapshot, SnapshotHistory
from .validators import validate_github_repo, validate_snapshot_id


class _Unchanged:
    def __repr__(self):
        return "UNCHANGED"


# Passed for a field that the change leaves as it is; None clears a field.
UNCHANGED = _Unchanged()

TRACKED_FIELDS = ("snapshot_id", "github_repo", "expires_at")


@dataclass(frozen=True)
class Actor:
    """The maker of a change and its origin, as the snapshot history records them."""

    type: str
    name: str
    source: str = ""
    request_id: str = ""
    api_key: APIKey | None = None
    user_id: int | None = None

    @classmethod
    def for_api_key(cls, api_key: APIKey, *, source: str, request_id: str = ""):
        return cls(
            type=SnapshotHistory.ActorType.API_KEY,
            name=api_key.prefix,
            source=source,
            request_id=request_id,
            api_key=api_key,
        )

    @classmethod
    def for_staff(cls, user, *, source: str = "", request_id: str = ""):
        return cls(
            type=SnapshotHistory.ActorType.STAFF,
            name=user.get_username(),
            source=source,
            request_id=request_id,
            user_id=user.pk,
        )

    @classmethod
    def for_command(cls, command: str):
        return cls(
            type=SnapshotHistory.ActorType.COMMAND,
            name=command,
            source=socket.gethostname(),
        )


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
    """The result of a change: the record after it, and whether anything was
    written."""

    snapshot: AccountSnapshot
    written: bool


def update_snapshot(
    *,
    account: Account,
    actor: Actor,
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
    changes = {}
    if snapshot_id is not UNCHANGED:
        changes["snapshot_id"] = snapshot_id
        changes["expires_at"] = None if snapshot_id is None else now + snapshot_ttl()
    if github_repo is not UNCHANGED:
        changes["github_repo"] = github_repo
    return SnapshotChange(
        snapshot=_write(account, changes, actor=actor, now=now), written=True
    )


def extend_expiry(
    *, account: Account, actor: Actor, now: datetime | None = None
) -> SnapshotChange:
    """Push a pinned snapshot's expiry back by one TTL, counted from its
    current expiry or from now if that is later. A record without a snapshot
    ID is left alone."""
    now = now or timezone.now()
    with transaction.atomic():
        # Lock first, so that the new expiry is computed from the committed
        # state and a concurrent clear or extend cannot slip in between.
        current = (
            AccountSnapshot.objects.select_for_update().filter(account=account).first()
        )
        if current is None or current.snapshot_id is None:
            return SnapshotChange(
                snapshot=current or empty_snapshot(account), written=False
            )
        start = max(current.expires_at or now, now)
        snapshot = _write(
            account, {"expires_at": start + snapshot_ttl()}, actor=actor, now=now
        )
    return SnapshotChange(snapshot=snapshot, written=True)


class _CreatedConcurrently(Exception):
    """Another transaction created the record between our read and write."""


def _write(account: Account, changes: dict, *, actor: Actor, now: datetime):
    """Apply ``changes`` to the account's record and record them in the
    history, in one transaction.

    The history entry is written first, from the locked current row, so that
    its "before" values are exact under concurrency. A record that does not
    exist yet cannot be locked, so its creation is an upsert: if a concurrent
    request created it first, this attempt is rolled back and retried
    against the now-committed row.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return _write_once(account, changes, actor=actor, now=now)
        except _CreatedConcurrently:
            continue
    raise RuntimeError(f"Could not lock the snapshot record of account {account.pk}.")


def _write_once(account, changes, *, actor, now):
    recorded = _record_from_current_row(account, changes, actor=actor, now=now)
    after, inserted = _upsert(account, {**changes, "updated_at": now}, now)
    if not recorded:
        if not inserted:
            raise _CreatedConcurrently
        _record_creation(account, after, actor=actor, now=now)
    return after


def _actor_columns(account, actor: Actor, now: datetime) -> dict:
    """Return the history entry's values other than before and after, keyed
    by attribute name."""
    return {
        "account_id": account.pk,
        "changed_at": now,
        "actor_type": actor.type,
        "actor": actor.name[:255],
        "api_key_id": actor.api_key.pk if actor.api_key else None,
        "user_id": actor.user_id,
        "source": actor.source[:255],
        "request_id": actor.request_id[:128],
    }


@functools.cache
def _history_sql(changed: tuple[str, ...]) -> str:
    """Build the INSERT ... SELECT of ``_record_from_current_row`` for one set
    of changed tracked fields. Its parameters are the actor columns, the new
    value of each changed field, then the account id."""
    history = SnapshotHistory._meta
    snapshot = AccountSnapshot._meta
    quote = connection.ops.quote_name

    columns = [history.get_field(attname).column for attname in _ACTOR_ATTNAMES]
    expressions = ["%s"] * len(columns)
    for name in TRACKED_FIELDS:
        current = f"current.{quote(snapshot.get_field(name).column)}"
        columns.append(history.get_field(f"{name}_before").column)
        expressions.append(current)
        columns.append(history.get_field(f"{name}_after").column)
        expressions.append("%s" if name in changed else current)

    account_column = quote(snapshot.get_field("account").column)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    # Every identifier comes from the models' metadata, quoted, and every
    # value is a query parameter.
    return (
        f"INSERT INTO {quote(history.db_table)} "  # noqa: S608
        f"({', '.join(quote(column) for column in columns)}) "
        f"SELECT {', '.join(expressions)} FROM {quote(snapshot.db_table)} current "
        f"WHERE current.{account_column} = %s{lock}"
    )


_ACTOR_ATTNAMES = (
    "account_id",
    "changed_at",
    "actor_type",
    "actor",
    "api_key_id",
    "user_id",
    "source",
    "request_id",
)


def _record_from_current_row(account, changes, *, actor, now) -> bool:
    """Insert the history entry of this change, reading the "before" values
    from the account's current record and locking it (INSERT ... SELECT ...
    FOR UPDATE), in one statement. Return False, having written nothing, when
    the account has no record yet."""
    history = SnapshotHistory._meta
    snapshot = AccountSnapshot._meta
    actor_values = _actor_columns(account, actor, now)
    params = [
        history.get_field(attname).get_db_prep_value(actor_values[attname], connection)
        for attname in _ACTOR_ATTNAMES
    ]
    changed = tuple(name for name in TRACKED_FIELDS if name in changes)
    params += [
        snapshot.get_field(name).get_db_prep_value(changes[name], connection)
        for name in changed
    ]
    params.append(
        snapshot.get_field("account").get_db_prep_value(account.pk, connection)
    )
    with connection.cursor() as cursor:
        cursor.execute(_history_sql(changed), params)
        return cursor.rowcount == 1


_UPSERT_COLUMNS = (
    "account",
    "snapshot_id",
    "github_repo",
    "expires_at",
    "created_at",
    "updated_at",
)


@functools.cache
def _upsert_sql(update_fields: tuple[str, ...]) -> str:
    """Build the upsert of ``_upsert`` for one set of changed fields."""
    meta = AccountSnapshot._meta
    quote = connection.ops.quote_name
    columns = [quote(meta.get_field(name).column) for name in _UPSERT_COLUMNS]
    updates = [
        f"{quote(meta.get_field(name).column)} = "
        f"EXCLUDED.{quote(meta.get_field(name).column)}"
        for name in update_fields
    ]
    returned = [quote(field.column) for field in meta.concrete_fields]
    # Whether the statement inserted the row: in PostgreSQL a row version
    # that it inserted has xmax 0, one that it updated has not. SQLite has no
    # such column, but it runs one write transaction at a time, so no other
    # transaction can create the row between the history insert and this one.
    inserted = "(xmax = 0)" if connection.vendor == "postgresql" else "TRUE"
    return (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {', '.join(updates)} "
        f"RETURNING {', '.join(returned)}, {inserted}"
    )


def _upsert(
    account: Account, changes: dict, now: datetime
) -> tuple[AccountSnapshot, bool]:
    """Write the changes to the account's record in one statement, creating
    the record if it does not exist yet. Return the record and whether this
    statement created it.

    INSERT ... ON CONFLICT DO UPDATE never makes a second record. It returns
    every stored column (RETURNING), so the result is the row as written,
    including fields this change left alone. The statement is built once per
    set of changed fields, because building it with bulk_create on every
    request cost more CPU than the rest of the write.
    """
    meta = AccountSnapshot._meta
    values = {
        "account": account.pk,
        "snapshot_id": None,
        "github_repo": None,
        "expires_at": None,
        "created_at": now,
        **changes,
    }
    params = [
        meta.get_field(name).get_db_prep_value(values[name], connection)
        for name in _UPSERT_COLUMNS
    ]
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(tuple(changes)), params)
        row = cursor.fetchone()
    snapshot = model_from_row(
        AccountSnapshot, concrete_attnames(AccountSnapshot), row[:-1]
    )
    snapshot.account = account
    return snapshot, bool(row[-1])


def _record_creation(account, after, *, actor: Actor, now: datetime) -> None:
    entry = SnapshotHistory(**_actor_columns(account, actor, now))
    for field in TRACKED_FIELDS:
        setattr(entry, f"{field}_after", getattr(after, field))
    entry.save(force_insert=True)
