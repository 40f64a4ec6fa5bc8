from django.core.management.base import BaseCommand, CommandError

from accounts.keys import KEY_PREFIX, key_digest, revoke_keys
from accounts.models import APIKey


class Command(BaseCommand):
    help = "Revoke an API key, so that requests with it are rejected from now on."

    def add_arguments(self, parser):
        parser.add_argument(
            "key_id",
            metavar="KEY_ID",
            help="Primary key (a positive integer) of the API key, as in the "
            "admin or in the 'id' field of create_api_key --json; or the key "
            "itself.",
        )

    def handle(self, *args, **options):
        value = str(options["key_id"])
        keys = APIKey.objects.select_related("account")
        if value.startswith(KEY_PREFIX):
            # The key itself: found by its digest, and never echoed back.
            api_key = keys.filter(digest=key_digest(value)).first()
            if api_key is None:
                raise CommandError(
                    "No API key matches the key given. Check it, or give the "
                    "key's id instead."
                )
        else:
            key_id = parse_key_id(value)
            api_key = keys.filter(pk=key_id).first()
            if api_key is None:
                raise CommandError(
                    f"No API key has the id {key_id}. Check KEY_ID in the admin's "
                    "list of API keys."
                )
        name = f" {api_key.name!r}" if api_key.name else ""
        label = f"API key {api_key.pk}{name} ({api_key.prefix}…) of {api_key.account}"

        revoked = revoke_keys(APIKey.objects.filter(pk=api_key.pk))

        if revoked:
            self.stdout.write(f"Revoked {label}.")
        else:
            api_key.refresh_from_db(fields=["revoked_at"])
            self.stdout.write(
                f"{label} was already revoked at "
                f"{api_key.revoked_at.isoformat(timespec='seconds')}. Nothing changed."
            )


def parse_key_id(value) -> int:
    try:
        key_id = int(str(value))
    except ValueError:
        key_id = None
    if key_id is None or key_id < 1:
        raise CommandError(
            f"KEY_ID {value[:40]!r} is not an API key id. Give the key's id, a "
            "positive integer, as in the 'id' field of create_api_key --json."
        )
    return key_id
