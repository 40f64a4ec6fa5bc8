"""Whom an account may act for.

A caller C may act on a target account T when:

1. T is C;
2. C is an organization and T is one of its members;
3. C and T are both members of one organization;
4. C is an admin member of the organization T;
5. C is a member of the platform organization (``PLATFORM_ORGANIZATION_ID``):
   any account.
"""

import functools

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from recoup.rows import concrete_attnames, model_from_row

from .models import Account, OrganizationMembership

Role = OrganizationMembership.Role


def is_platform_staff(caller: Account) -> bool:
    """Return whether the caller is a member of the platform organization."""
    platform_id = settings.PLATFORM_ORGANIZATION_ID
    if platform_id is None or caller.pk == platform_id:
        return False
    return OrganizationMembership.objects.filter(
        account=caller, organization_id=platform_id
    ).exists()


def _reachable_condition(caller: Account) -> Q | Exists:
    """Build the condition, on an Account queryset, for rules 2 to 5."""
    memberships = OrganizationMembership.objects
    condition = Exists(
        # Rule 3: a shared organization.
        memberships.filter(
            account=OuterRef("pk"),
            organization__in=memberships.filter(account=caller).values("organization"),
        )
    ) | Exists(
        # Rule 4: the caller is an admin of the target organization.
        memberships.filter(organization=OuterRef("pk"), account=caller, role=Role.ADMIN)
    )
    if caller.is_organization:
        # Rule 2: the target is a member of the calling organization.
        condition |= Exists(
            memberships.filter(organization=caller, account=OuterRef("pk"))
        )
    platform_id = settings.PLATFORM_ORGANIZATION_ID
    if platform_id is not None:
        # Rule 5: platform staff may act for any account.
        condition |= Exists(
            memberships.filter(account=caller, organization_id=platform_id)
        )
    return condition


def with_access(queryset: QuerySet, caller: Account) -> QuerySet:
    """Annotate each account with ``caller_may_act``, True when the caller
    may act for it, in the same query that loads it."""
    return queryset.annotate(
        caller_may_act=Q(pk=caller.pk) | _reachable_condition(caller)
    )


def may_act_for(caller: Account, target: Account) -> bool:
    """Return whether ``caller`` may act on ``target`` under the rules above.

    Uses ``target.caller_may_act`` when the target was loaded through
    ``with_access`` for this caller, and one query otherwise.
    """
    if target.pk == caller.pk:
        return True
    annotated = getattr(target, "caller_may_act", None)
    if annotated is not None:
        return annotated
    return (
        with_access(Account.objects.filter(pk=target.pk), caller)
        .filter(caller_may_act=True)
        .exists()
    )


@functools.cache
def _target_sql(caller_is_organization: bool, platform_rule: bool) -> str:
    """Build the SELECT of find_target: rules 2 to 5 as with_access builds
    them, written once instead of compiled by the ORM on every request.

    Every identifier comes from the models' metadata, quoted, and every value
    is a query parameter.
    """
    quote = connection.ops.quote_name
    account = quote(Account._meta.db_table)
    membership = quote(OrganizationMembership._meta.db_table)
    columns = ", ".join(
        f"target.{quote(field.column)}" for field in Account._meta.concrete_fields
    )
    rules = [
        # Rule 3: a shared organization.
        f"EXISTS (SELECT 1 FROM {membership} target_link"  # noqa: S608
        f" JOIN {membership} caller_link"
        f" ON caller_link.organization_id = target_link.organization_id"
        f" WHERE target_link.account_id = target.id"
        f" AND caller_link.account_id = %(caller)s)",
        # Rule 4: the caller is an admin of the target organization.
        f"EXISTS (SELECT 1 FROM {membership} link"  # noqa: S608
        f" WHERE link.organization_id = target.id AND link.account_id = %(caller)s"
        f" AND link.role = %(admin)s)",
    ]
    if caller_is_organization:
        # Rule 2: the target is a member of the calling organization.
        rules.append(
            f"EXISTS (SELECT 1 FROM {membership} link"  # noqa: S608
            f" WHERE link.organization_id = %(caller)s"
            f" AND link.account_id = target.id)"
        )
    if platform_rule:
        # Rule 5: platform staff may act for any account.
        rules.append(
            f"EXISTS (SELECT 1 FROM {membership} link"  # noqa: S608
            f" WHERE link.account_id = %(caller)s"
            f" AND link.organization_id = %(platform)s)"
        )
    return (
        f"SELECT {columns}, ({' OR '.join(rules)}) AS caller_may_act"  # noqa: S608
        f" FROM {account} target WHERE target.id = %(target)s"
    )


def find_target(caller: Account, account_id) -> Account | None:
    """Load the account ``account_id`` annotated for the caller's access, or
    return None when no such account exists. Costs one query."""
    if account_id is None or account_id == caller.pk:
        return caller
    platform_id = settings.PLATFORM_ORGANIZATION_ID
    prepare = Account._meta.pk.get_db_prep_value
    sql = _target_sql(caller.is_organization, platform_id is not None)
    params = {
        "caller": prepare(caller.pk, connection),
        "target": prepare(account_id, connection),
        "platform": prepare(platform_id, connection),
        "admin": Role.ADMIN.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    target = model_from_row(Account, concrete_attnames(Account), row[:-1])
    # SQLite returns EXISTS as 0 or 1.
    target.caller_may_act = bool(row[-1])
    return target
