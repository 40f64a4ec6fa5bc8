"""Whom an account may act for.

A caller C may act on a target account T when:

1. T is C;
2. C is an organization and T is one of its members;
3. C and T are both members of one organization;
4. C is an admin member of the organization T;
5. C is a member of the platform organization (``PLATFORM_ORGANIZATION_ID``):
   any account.
"""

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

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


def find_target(caller: Account, account_id) -> Account | None:
    """Load the account ``account_id`` annotated for the caller's access, or
    return None when no such account exists."""
    if account_id is None or account_id == caller.pk:
        return caller
    return with_access(Account.objects.filter(pk=account_id), caller).first()
