"""The benchmark's baseline: ``PATCH /api/sandboxes`` as a plain Django view,
without DRF or the ORM, sending the service's statements by hand.

For a request that sets ``snapshotId`` and ``github_repo`` it sends what the
service sends. First comes the key lookup joined with its account, then the
access check when ``account_id`` names another account. One transaction then
writes the history entry from the locked record and upserts the record. The
view checks the key and the values with the service's own rules
(accounts.keys, sandboxes.validators) and logs one line per request, as the
service does. So what differs from the service is DRF, the serializers and
the ORM.

NOTE: it has none of the service's concurrency retry. When two requests create
one account's first record at once, the second one gets a 500. The benchmark
seeds every record first, so its requests never take that path.
"""

import hmac
import json
import logging
import time
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.keys import KEY_PATTERN, LAST_USED_RESOLUTION
from sandboxes.services import snapshot_ttl
from sandboxes.validators import validate_github_repo, validate_snapshot_id

logger = logging.getLogger(__name__)

KEY_SQL = """
SELECT k.id, k.prefix, k.revoked_at, k.expires_at, k.last_used_at,
       a.id, a.is_organization
FROM accounts_apikey k JOIN accounts_account a ON a.id = k.account_id
WHERE k.digest = %s
"""

LAST_USED_SQL = "UPDATE accounts_apikey SET last_used_at = %s WHERE id = %s"

# Rules 3, 4, 2 and 5 of accounts.access, in the order the service checks them.
ACCESS_SQL = """
SELECT a.id, (
    EXISTS (SELECT 1 FROM accounts_organizationmembership m
            WHERE m.account_id = a.id AND m.organization_id IN (
                SELECT organization_id FROM accounts_organizationmembership
                WHERE account_id = %(caller)s))
    OR EXISTS (SELECT 1 FROM accounts_organizationmembership m
               WHERE m.account_id = %(caller)s AND m.organization_id = a.id
               AND m.role = 'admin')
    OR (%(caller_is_organization)s AND EXISTS (
        SELECT 1 FROM accounts_organizationmembership m
        WHERE m.account_id = a.id AND m.organization_id = %(caller)s))
    {platform_rule}
)
FROM accounts_account a WHERE a.id = %(target)s
"""
# Rule 5, only when PLATFORM_ORGANIZATION_ID is set, as in accounts.access.
PLATFORM_RULE = """OR EXISTS (SELECT 1 FROM accounts_organizationmembership m
               WHERE m.account_id = %(caller)s
               AND m.organization_id = %(platform)s)"""

HISTORY_FROM_RECORD_SQL = """
INSERT INTO sandboxes_snapshothistory (
    account_id, changed_at, actor_type, actor, api_key_id, user_id, source,
    request_id, snapshot_id_before, snapshot_id_after, github_repo_before,
    github_repo_after, expires_at_before, expires_at_after)
SELECT %(account)s, %(now)s, 'api_key', %(actor)s, %(key)s, NULL, %(source)s,
       %(request_id)s, current.snapshot_id, %(snapshot_id)s, current.github_repo,
       %(github_repo)s, current.expires_at, %(expires_at)s
FROM sandboxes_accountsnapshot current
WHERE current.account_id = %(account)s FOR UPDATE
"""

HISTORY_OF_CREATION_SQL = """
INSERT INTO sandboxes_snapshothistory (
    account_id, changed_at, actor_type, actor, api_key_id, user_id, source,
    request_id, snapshot_id_after, github_repo_after, expires_at_after)
VALUES (%(account)s, %(now)s, 'api_key', %(actor)s, %(key)s, NULL, %(source)s,
        %(request_id)s, %(snapshot_id)s, %(github_repo)s, %(expires_at)s)
"""

UPSERT_SQL = """
INSERT INTO sandboxes_accountsnapshot (
    account_id, snapshot_id, github_repo, expires_at, created_at, updated_at)
VALUES (%(account)s, %(snapshot_id)s, %(github_repo)s, %(expires_at)s, %(now)s,
        %(now)s)
ON CONFLICT (account_id) DO UPDATE SET
    snapshot_id = EXCLUDED.snapshot_id, expires_at = EXCLUDED.expires_at,
    github_repo = EXCLUDED.github_repo, updated_at = EXCLUDED.updated_at
RETURNING snapshot_id, github_repo, expires_at, created_at
"""


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _iso(value) -> str | None:
    """Format a datetime as DRF's DateTimeField does: ISO 8601, UTC as Z."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _parse_body(request) -> dict:
    """Return the validated body; raise ValueError with the message for a 400."""
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ValueError("The request body must be a JSON object.")
    unknown = set(body) - {"snapshotId", "github_repo", "account_id"}
    if unknown:
        raise ValueError(f"Unknown fields: {sorted(unknown)}.")
    if not isinstance(body.get("snapshotId"), str) or not isinstance(
        body.get("github_repo"), str
    ):
        raise ValueError("The baseline needs both snapshotId and github_repo.")
    validate_snapshot_id(body["snapshotId"])
    validate_github_repo(body["github_repo"])
    if "account_id" in body:
        body["account_id"] = uuid.UUID(body["account_id"])
    return body


def _authenticate(request, now):
    """Return the key's row or an error response, as accounts.keys.verify_key."""
    raw_key = request.headers.get("x-api-key", "").strip()
    if not KEY_PATTERN.fullmatch(raw_key):
        return None, _error(401, "The API key is not valid.")
    digest = hmac.digest(
        settings.API_KEY_HASH_SECRET.encode(), raw_key.encode(), "sha256"
    ).hex()
    with connection.cursor() as cursor:
        cursor.execute(KEY_SQL, [digest])
        row = cursor.fetchone()
    if row is None:
        return None, _error(401, "The API key is not valid.")
    key_id, _, revoked_at, expires_at, last_used_at, _, _ = row
    if revoked_at is not None or (expires_at is not None and expires_at <= now):
        return None, _error(401, "The API key has been revoked or has expired.")
    if last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION:
        with connection.cursor() as cursor:
            cursor.execute(LAST_USED_SQL, [now, key_id])
    return row, None


def _may_act_for(caller_id, caller_is_organization, target_id) -> bool | None:
    """Return whether the caller may act for the target, or None when the
    target does not exist."""
    platform_rule = PLATFORM_RULE if settings.PLATFORM_ORGANIZATION_ID else ""
    with connection.cursor() as cursor:
        cursor.execute(
            ACCESS_SQL.replace("{platform_rule}", platform_rule),
            {
                "caller": caller_id,
                "caller_is_organization": caller_is_organization,
                "platform": settings.PLATFORM_ORGANIZATION_ID,
                "target": target_id,
            },
        )
        row = cursor.fetchone()
    return None if row is None else row[1]


def _write(params: dict):
    """Record the change and upsert the record in one transaction, as
    sandboxes.services._write_once does; return the stored row."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(HISTORY_FROM_RECORD_SQL, params)
        recorded = cursor.rowcount == 1
        cursor.execute(UPSERT_SQL, params)
        after = cursor.fetchone()
        if not recorded:
            cursor.execute(HISTORY_OF_CREATION_SQL, params)
    return after


@csrf_exempt
def patch_snapshot(request):
    started = time.perf_counter()
    if request.method != "PATCH":
        return _error(405, f"Method {request.method} is not allowed. Send PATCH.")
    now = timezone.now()
    key, failure = _authenticate(request, now)
    if failure is not None:
        return failure
    key_id, prefix, _, _, _, caller_id, caller_is_organization = key
    try:
        body = _parse_body(request)
    except ValidationError as error:
        return _error(400, " ".join(error.messages))
    except (ValueError, TypeError, AttributeError) as error:
        return _error(400, str(error))

    target_id = body.get("account_id", caller_id)
    if target_id != caller_id:
        allowed = _may_act_for(caller_id, caller_is_organization, target_id)
        if not allowed:
            return _error(403, "This API key may not act for that account_id.")

    after = _write(
        {
            "account": target_id,
            "now": now,
            "actor": prefix,
            "key": key_id,
            "source": request.META.get("REMOTE_ADDR", ""),
            "request_id": getattr(request, "request_id", ""),
            "snapshot_id": body["snapshotId"],
            "github_repo": body["github_repo"],
            "expires_at": now + snapshot_ttl(),
        }
    )
    snapshot_id, github_repo, expires_at, created_at = after
    logger.info(
        "PATCH /api/sandboxes caller=%s target=%s key=%s status=200 duration_ms=%.1f",
        caller_id,
        target_id,
        prefix,
        (time.perf_counter() - started) * 1000,
    )
    return JsonResponse(
        {
            "account_id": str(target_id),
            "snapshot_id": snapshot_id,
            "expires_at": _iso(expires_at),
            "github_repo": github_repo,
            "created_at": _iso(created_at),
        }
    )
