import json
from datetime import UTC, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.keys import issue_key
from accounts.management.lookup import load_account
from accounts.models import APIKey

NAME_MAX_LENGTH = APIKey._meta.get_field("name").max_length


class Command(BaseCommand):
    help = (
        "Create an API key for an account and print the key, which is shown only once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--account",
            required=True,
            metavar="ACCOUNT_ID",
            help="UUID of the account that the key authenticates as.",
        )
        parser.add_argument(
            "--name",
            default="",
            help=f"Label of the key, shown in the admin, of at most {NAME_MAX_LENGTH} "
            "characters. Empty by default.",
        )
        parser.add_argument(
            "--expires-in-days",
            type=int,
            metavar="N",
            help="Number of days, a positive whole number, until the key "
            "expires. Without it the key never expires.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print a JSON object with id, key, prefix, account_id and "
            "expires_at (ISO 8601 UTC, or null) instead of the key alone.",
        )

    def handle(self, *args, **options):
        account = load_account(options["account"], option="--account")
        name = options["name"]
        if len(name) > NAME_MAX_LENGTH:
            raise CommandError(
                f"--name is {len(name)} characters long. Give at most "
                f"{NAME_MAX_LENGTH}."
            )
        expires_at = expiry_time(options["expires_in_days"])

        issued = issue_key(account=account, name=name, expires_at=expires_at)

        if options["json"]:
            api_key = issued.api_key
            output = {
                "id": api_key.pk,
                "key": issued.raw_key,
                "prefix": api_key.prefix,
                "account_id": str(account.pk),
                "expires_at": format_utc(api_key.expires_at),
            }
            self.stdout.write(json.dumps(output))
        else:
            self.stdout.write(issued.raw_key)


def expiry_time(days):
    """Return the time ``days`` days from now, or None for no expiry."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise CommandError(
            f"--expires-in-days {days!r} is not a positive whole number. Give a "
            "number of days of at least 1, or leave the option out for a key "
            "that never expires."
        )
    try:
        return timezone.now() + timedelta(days=days)
    except OverflowError:
        raise CommandError(
            f"--expires-in-days {days} puts the expiry after the year 9999. Give "
            "fewer days, or leave the option out for a key that never expires."
        ) from None


def format_utc(moment):
    """Format a datetime as ISO 8601 in UTC with a Z suffix, as the API does."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
