"""Look-ups shared by the management commands."""

import uuid

from django.core.management.base import CommandError

from accounts.models import Account


def load_account(value, *, option: str) -> Account:
    """Return the account whose id is ``value``, or raise CommandError."""
    try:
        account_id = uuid.UUID(str(value))
    except ValueError:
        raise CommandError(
            f"{option} {value!r} is not a UUID. Give an account id, such as "
            "550e8400-e29b-41d4-a716-446655440000."
        ) from None
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise CommandError(
            f"No account has the id {account_id}. Check {option}. The "
            "create_account command prints the id of each new account."
        )
    return account
