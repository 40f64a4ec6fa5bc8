from django.core.management.base import BaseCommand

from accounts.management.lookup import load_account
from sandboxes.management.output import CHUNK_SIZE, write_json_array
from sandboxes.models import SnapshotHistory
from sandboxes.serializers import SnapshotHistorySerializer

EMPTY = "-"


class Command(BaseCommand):
    help = "Print the history of an account's snapshot changes, oldest first."

    def add_arguments(self, parser):
        parser.add_argument(
            "--account", required=True, help="The id (UUID) of the account."
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON array of changes instead of a table.",
        )

    def handle(self, *args, **options):
        account = load_account(options["account"], option="--account")
        entries = SnapshotHistory.objects.filter(account=account).order_by("id")
        if options["json"]:
            write_json_array(self.stdout, entries, SnapshotHistorySerializer())
            return

        count = 0
        for entry in entries.iterator(chunk_size=CHUNK_SIZE):
            count += 1
            self.stdout.write(
                f"{entry.changed_at.isoformat()}  {entry.get_actor_type_display()} "
                f"{entry.actor} from {entry.source or EMPTY}"
            )
            for field in ("snapshot_id", "github_repo", "expires_at"):
                before = getattr(entry, f"{field}_before")
                after = getattr(entry, f"{field}_after")
                if before != after:
                    self.stdout.write(f"    {field}: {_text(before)} -> {_text(after)}")
        if not count:
            self.stdout.write(f"No snapshot changes for account {account.pk}.")


def _text(value):
    if value is None:
        return EMPTY
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
