from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.management.lookup import load_account
from accounts.models import OrganizationMembership
from accounts.services import add_member

Role = OrganizationMembership.Role


class Command(BaseCommand):
    help = "Make an account a member of an organization, or change its role there."

    def add_arguments(self, parser):
        parser.add_argument(
            "--organization",
            required=True,
            metavar="ORG_ID",
            help="UUID of the organization account that gains the member.",
        )
        parser.add_argument(
            "--account",
            required=True,
            metavar="ACCOUNT_ID",
            help="UUID of the account that becomes a member.",
        )
        parser.add_argument(
            "--role",
            choices=Role.values,
            default=Role.MEMBER,
            help="Role of the member: 'member' (the default) or 'admin'. An admin "
            "may also act for the organization itself.",
        )

    def handle(self, *args, **options):
        organization = load_account(options["organization"], option="--organization")
        account = load_account(options["account"], option="--account")
        # The service rejects these two cases too; these messages name the
        # option to change.
        if not organization.is_organization:
            raise CommandError(
                f"--organization {organization.pk} is the account {organization}, "
                "which is not an organization. Give the id of an organization, "
                "as made by create_account --organization."
            )
        if organization.pk == account.pk:
            raise CommandError(
                f"--organization and --account are both {account.pk}. An account "
                "cannot be a member of itself, so give two different accounts."
            )
        previous_role = (
            OrganizationMembership.objects.filter(
                organization=organization, account=account
            )
            .values_list("role", flat=True)
            .first()
        )
        try:
            membership = add_member(
                organization=organization, account=account, role=options["role"]
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None

        member = f"{account} ({account.pk})"
        where = f"{organization} ({organization.pk})"
        role = membership.role
        if previous_role is None:
            message = f"{member} is now a member of {where} with the role {role}."
        elif previous_role == role:
            message = (
                f"{member} is already a member of {where} with the role {role}. "
                "Nothing changed."
            )
        else:
            message = (
                f"{member} was a {previous_role} of {where}. Its role is now {role}."
            )
        self.stdout.write(message)
