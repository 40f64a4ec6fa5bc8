import json
import shlex
import sys
import uuid
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator
from django.db import transaction

from accounts.keys import issue_key
from accounts.models import Account, OrganizationMembership
from accounts.services import add_member

# Fixed ids, so that a second run finds the accounts of the first.
ORGANIZATION_ID = uuid.uuid5(uuid.NAMESPACE_URL, "urn:recoup:seed-demo:organization")
MEMBER_ID = uuid.uuid5(uuid.NAMESPACE_URL, "urn:recoup:seed-demo:member")
ORGANIZATION_NAME = "Recoup Demo Label"
MEMBER_NAME = "Demo Artist"
KEY_NAME = "Demo key"
DEMO_SNAPSHOT_ID = "snap_demo"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = (
        "Create a demo organization with one member and an API key, once, and "
        "print curl commands that call the snapshot API with them."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            metavar="URL",
            help="Scheme, host and port of the running service, used in the "
            f"printed curl commands. Default: {DEFAULT_BASE_URL}.",
        )

    def handle(self, *args, **options):
        endpoint = sandboxes_endpoint(options["base_url"])

        # Output is written only after the transaction commits, so that a
        # failed run never prints a key that was rolled back.
        with transaction.atomic():
            organization, organization_created = Account.objects.get_or_create(
                pk=ORGANIZATION_ID,
                defaults={"name": ORGANIZATION_NAME, "is_organization": True},
            )
            member, member_created = Account.objects.get_or_create(
                pk=MEMBER_ID, defaults={"name": MEMBER_NAME}
            )
            try:
                add_member(
                    organization=organization,
                    account=member,
                    role=OrganizationMembership.Role.MEMBER,
                )
            except ValidationError as error:
                raise CommandError(
                    "Could not set up the demo accounts "
                    f"{ORGANIZATION_ID} and {MEMBER_ID}. "
                    f"{' '.join(error.messages)} Delete them and run seed_demo "
                    "again."
                ) from None
            issued = None
            if organization_created:
                issued = issue_key(account=organization, name=KEY_NAME)

        self.write_accounts(organization, organization_created, member, member_created)
        if issued is not None:
            key_header = f"x-api-key: {issued.raw_key}"
            self.stdout.write(
                f"\nAPI key of {organization}, shown only now:\n{issued.raw_key}"
            )
        else:
            key_header = "x-api-key: $KEY"
            self.stdout.write(
                f"\nThe API key of {organization} was shown when the organization "
                "was created. Make another with:\n"
                f"KEY=$({sys.executable} manage.py create_api_key "
                f"--account {organization.pk})"
            )

        self.stdout.write(f"\nSet the snapshot of {organization}:")
        self.stdout.write(
            curl_command(endpoint, key_header, {"snapshotId": DEMO_SNAPSHOT_ID})
        )
        self.stdout.write(f"\nSet the snapshot of its member {member}:")
        self.stdout.write(
            curl_command(
                endpoint,
                key_header,
                {"snapshotId": DEMO_SNAPSHOT_ID, "account_id": str(member.pk)},
            )
        )

    def write_accounts(
        self, organization, organization_created, member, member_created
    ):
        if not (organization_created or member_created):
            self.stdout.write("The demo accounts exist already. Nothing was created.")
        organization_note = ", created now" if organization_created else ""
        member_note = ", created now" if member_created else ""
        self.stdout.write(
            f"Organization: {organization} ({organization.pk}){organization_note}"
        )
        self.stdout.write(f"Member: {member} ({member.pk}), role member{member_note}")


def sandboxes_endpoint(base_url: str) -> str:
    base_url = base_url.rstrip("/")
    if not is_base_url(base_url):
        raise CommandError(
            f"--base-url {base_url!r} is not an http or https URL without a query "
            f"or fragment. Give one such as {DEFAULT_BASE_URL}."
        )
    return f"{base_url}/api/sandboxes"


def is_base_url(value: str) -> bool:
    try:
        URLValidator(schemes=["http", "https"])(value)
        parts = urlsplit(value)
    except (ValidationError, ValueError):
        return False
    return not (parts.query or parts.fragment)


def curl_command(endpoint: str, key_header: str, body: dict) -> str:
    # The header is in double quotes so that a $KEY in it expands.
    return (
        f"curl -X PATCH {shlex.quote(endpoint)} \\\n"
        f'  -H "{key_header}" \\\n'
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(body))}"
    )
