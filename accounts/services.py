"""Changes of state for accounts and memberships, shared by the admin and the
management commands."""

from django.core.exceptions import ValidationError
from django.db import transaction

from .models import Account, OrganizationMembership


def create_account(*, name: str, is_organization: bool = False) -> Account:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "The account name is empty. Give it a name."})
    account = Account(name=name, is_organization=is_organization)
    account.full_clean()
    account.save()
    return account


@transaction.atomic
def add_member(
    *,
    organization: Account,
    account: Account,
    role: str = OrganizationMembership.Role.MEMBER,
) -> OrganizationMembership:
    """Make ``account`` a member of ``organization``, or change its role if it
    is one already."""
    if not organization.is_organization:
        raise ValidationError(
            {"organization": f"Account {organization.pk} is not an organization."}
        )
    if organization.pk == account.pk:
        raise ValidationError({"account": "An account cannot be a member of itself."})
    if role not in OrganizationMembership.Role.values:
        raise ValidationError(
            {
                "role": f"Role {role!r} is not one of: "
                f"{', '.join(OrganizationMembership.Role.values)}."
            }
        )
    membership, _ = OrganizationMembership.objects.update_or_create(
        organization=organization, account=account, defaults={"role": role}
    )
    return membership
