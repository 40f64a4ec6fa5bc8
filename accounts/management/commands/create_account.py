import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.services import create_account


class Command(BaseCommand):
    help = "Create an account, or an organization, and print its id."

    def add_arguments(self, parser):
        parser.add_argument(
            "--name",
            required=True,
            help="Display name of the new account, 1 to 255 characters.",
        )
        parser.add_argument(
            "--organization",
            action="store_true",
            help="Create an organization, which can have other accounts as members.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print a JSON object with id, name and is_organization instead "
            "of the id alone.",
        )

    def handle(self, *args, **options):
        try:
            account = create_account(
                name=options["name"], is_organization=options["organization"]
            )
        except ValidationError as error:
            raise CommandError(
                f"--name is invalid: {' '.join(error.messages)}"
            ) from None

        if options["json"]:
            output = {
                "id": str(account.pk),
                "name": account.name,
                "is_organization": account.is_organization,
            }
            self.stdout.write(json.dumps(output))
        else:
            self.stdout.write(str(account.pk))
