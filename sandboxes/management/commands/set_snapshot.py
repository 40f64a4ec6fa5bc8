import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.management.lookup import load_account
from sandboxes.serializers import SnapshotSerializer
from sandboxes.services import UNCHANGED, Actor, update_snapshot

# The command-line option for each field that update_snapshot validates.
OPTION_OF_FIELD = {"snapshot_id": "--snapshot-id", "github_repo": "--github-repo"}


class Command(BaseCommand):
    help = (
        "Set or clear an account's sandbox snapshot ID and GitHub repository, "
        "as PATCH /api/sandboxes does."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--account",
            required=True,
            metavar="ACCOUNT_ID",
            help="UUID of the account whose snapshot is set.",
        )
        snapshot = parser.add_mutually_exclusive_group()
        snapshot.add_argument(
            "--snapshot-id",
            metavar="ID",
            help="Snapshot ID to set, 1 to 255 printable ASCII characters. It "
            f"expires in SNAPSHOT_TTL_DAYS ({settings.SNAPSHOT_TTL_DAYS}) days.",
        )
        snapshot.add_argument(
            "--clear-snapshot",
            action="store_true",
            help="Clear the snapshot ID and its expiry time.",
        )
        repo = parser.add_mutually_exclusive_group()
        repo.add_argument(
            "--github-repo",
            metavar="URL",
            help="Repository URL to set, an absolute http or https URL of at "
            "most 2048 characters. The expiry time stays as it is.",
        )
        repo.add_argument(
            "--clear-github-repo",
            action="store_true",
            help="Clear the repository URL.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the snapshot as the API returns it, as a JSON object.",
        )

    def handle(self, *args, **options):
        account = load_account(options["account"], option="--account")
        changes = {
            "snapshot_id": choose_value(
                options, "snapshot_id", "--snapshot-id", "--clear-snapshot"
            ),
            "github_repo": choose_value(
                options, "github_repo", "--github-repo", "--clear-github-repo"
            ),
        }
        try:
            change = update_snapshot(
                account=account, actor=Actor.for_command("set_snapshot"), **changes
            )
        except ValidationError as error:
            raise CommandError(describe_errors(error, changes)) from None

        data = SnapshotSerializer(change.snapshot).data
        if options["json"]:
            self.stdout.write(json.dumps(data))
            return
        if not change.written:
            self.stdout.write(
                "Nothing changed, because none of --snapshot-id, --clear-snapshot, "
                "--github-repo and --clear-github-repo was given."
            )
        self.stdout.write(
            f"Account {account} ({account.pk}): "
            f"snapshot {data['snapshot_id'] or '(none)'}, "
            f"expires {data['expires_at'] or '(never)'}, "
            f"repository {data['github_repo'] or '(none)'}."
        )


def choose_value(options, field, set_option, clear_option):
    """Return the new value of ``field``, which is a string, None to clear
    the field, or UNCHANGED when neither option was given."""
    value = options[field]
    clear = options[clear_option.lstrip("-").replace("-", "_")]
    # argparse rejects both options together on the command line, but
    # call_command() with keyword arguments bypasses the parser.
    if value is not None and clear:
        raise CommandError(
            f"{set_option} and {clear_option} were both given. Give only one."
        )
    if clear:
        return None
    return UNCHANGED if value is None else value


def describe_errors(error: ValidationError, changes: dict) -> str:
    """Return one message naming each invalid option, its value and the rule."""
    parts = []
    for field, messages in error.message_dict.items():
        quoted_value = repr(changes.get(field))
        if len(quoted_value) > 80:
            quoted_value = quoted_value[:76] + "...'"
        option = OPTION_OF_FIELD.get(field, field)
        parts.append(f"{option} {quoted_value} is invalid: {' '.join(messages)}")
    return " ".join(parts)
