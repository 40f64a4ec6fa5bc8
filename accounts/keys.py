"""API keys: how they are made, stored and checked.

A key is ``recoup_sk_`` followed by 43 base64url characters (32 random bytes).
Only its HMAC-SHA256 hex digest, keyed with ``API_KEY_HASH_SECRET``, is
stored, so digests made by another service with the same secret import as
they are.
"""

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from recoup.rows import concrete_attnames, model_from_row

from .models import Account, APIKey

KEY_PREFIX = "recoup_sk_"
KEY_PATTERN = re.compile(r"recoup_sk_[A-Za-z0-9_-]{43}")
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6

# last_used_at is written at most this often per key, so that verifying a key
# is a read in the common case.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def key_digest(raw_key: str) -> str:
    """Return the stored form of a key: its HMAC-SHA256 hex digest."""
    return hmac.new(
        settings.API_KEY_HASH_SECRET.encode(), raw_key.encode(), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    """A new key together with its raw value, which exists only here."""

    api_key: APIKey
    raw_key: str


def issue_key(
    *, account: Account, name: str = "", expires_at: datetime | None = None
) -> IssuedKey:
    """Create an API key for an account and return it with its raw value."""
    raw_key = generate_raw_key()
    api_key = APIKey(account=account, name=name, expires_at=expires_at)
    set_key_value(api_key, raw_key)
    api_key.save()
    return IssuedKey(api_key=api_key, raw_key=raw_key)


def generate_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def set_key_value(api_key: APIKey, raw_key: str) -> None:
    """Store the digest and display prefix of ``raw_key`` on an unsaved key."""
    api_key.digest = key_digest(raw_key)
    api_key.prefix = raw_key[:DISPLAY_PREFIX_LENGTH]


class KeyRejected(Exception):
    """The presented key is unknown, revoked or expired, as ``reason`` names."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


UNKNOWN = "unknown"
REVOKED = "revoked"
EXPIRED = "expired"


def verify_key(raw_key: str, *, now: datetime | None = None) -> APIKey:
    """Return the active key whose value is ``raw_key``, with its account.

    Costs one indexed query, plus one write at most once a minute per key to
    record when it was last used. Raises KeyRejected otherwise.
    """
    if not KEY_PATTERN.fullmatch(raw_key):
        raise KeyRejected(UNKNOWN)
    now = now or timezone.now()
    api_key = _find_key(key_digest(raw_key))
    if api_key is None:
        raise KeyRejected(UNKNOWN)
    if api_key.revoked_at is not None:
        raise KeyRejected(REVOKED)
    if api_key.is_expired(now):
        raise KeyRejected(EXPIRED)
    if (
        api_key.last_used_at is None
        or now - api_key.last_used_at >= LAST_USED_RESOLUTION
    ):
        APIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


@functools.cache
def _key_sql() -> str:
    """Build the key lookup: the key by digest, joined with its account."""
    quote = connection.ops.quote_name
    key_meta, account_meta = APIKey._meta, Account._meta
    columns = [f"api_key.{quote(field.column)}" for field in key_meta.concrete_fields]
    columns += [
        f"account.{quote(field.column)}" for field in account_meta.concrete_fields
    ]
    return (
        f"SELECT {', '.join(columns)} FROM {quote(key_meta.db_table)} api_key "  # noqa: S608
        f"JOIN {quote(account_meta.db_table)} account "
        f"ON account.{quote(account_meta.pk.column)} = "
        f"api_key.{quote(key_meta.get_field('account').column)} "
        f"WHERE api_key.{quote(key_meta.get_field('digest').column)} = %s"
    )


def _find_key(digest: str) -> APIKey | None:
    """Return the key with this digest and its account, in one query.

    The same query as ``APIKey.objects.select_related("account")``, written
    once instead of compiled by the ORM on every request.
    """
    with connection.cursor() as cursor:
        cursor.execute(_key_sql(), [digest])
        row = cursor.fetchone()
    if row is None:
        return None
    key_attnames = concrete_attnames(APIKey)
    api_key = model_from_row(APIKey, key_attnames, row[: len(key_attnames)])
    api_key.account = model_from_row(
        Account, concrete_attnames(Account), row[len(key_attnames) :]
    )
    return api_key


def revoke_keys(keys, *, now: datetime | None = None) -> int:
    """Revoke the given keys that are not revoked yet; return how many were."""
    now = now or timezone.now()
    with transaction.atomic():
        return keys.filter(revoked_at__isnull=True).update(revoked_at=now)
