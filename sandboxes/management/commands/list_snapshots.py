from datetime import UTC

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Max
from django.db.models.functions import Length
from django.utils import timezone

from sandboxes.management.output import CHUNK_SIZE, write_json_array
from sandboxes.models import AccountSnapshot
from sandboxes.serializers import SnapshotSerializer

HEADERS = ("ACCOUNT ID", "ACCOUNT NAME", "SNAPSHOT ID", "GITHUB REPO", "EXPIRES AT")
# Width of an expiry time as format_expiry writes it, such as 2025-01-31T12:00:00Z.
EXPIRY_WIDTH = 20
ACCOUNT_ID_WIDTH = 36
EMPTY = "-"


class Command(BaseCommand):
    help = "List the accounts' snapshot records, with their expiry times."

    def add_arguments(self, parser):
        state = parser.add_mutually_exclusive_group()
        state.add_argument(
            "--expired",
            action="store_true",
            help="List only records whose snapshot has expired. Records without "
            "a snapshot ID are in neither this list nor --active.",
        )
        state.add_argument(
            "--active",
            action="store_true",
            help="List only records whose snapshot has not expired yet.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON array of snapshots, each shaped as the API "
            "returns it, instead of a table.",
        )

    def handle(self, *args, **options):
        # argparse rejects both options together on the command line, but
        # call_command() with keyword arguments bypasses the parser.
        if options["expired"] and options["active"]:
            raise CommandError("--expired and --active were both given. Give one.")
        now = timezone.now()
        snapshots = AccountSnapshot.objects.select_related("account").order_by(
            "account__name", "account__id"
        )
        if options["expired"]:
            snapshots = snapshots.expired(now)
        elif options["active"]:
            snapshots = snapshots.active(now)

        if options["json"]:
            self.write_json(snapshots)
        else:
            self.write_table(snapshots, now)

    def write_json(self, snapshots):
        write_json_array(self.stdout, snapshots, SnapshotSerializer())

    def write_table(self, snapshots, now):
        # One query for the column widths, so that rows can be written as
        # they are fetched.
        sizes = snapshots.aggregate(
            rows=Count("pk"),
            name=Max(Length("account__name")),
            snapshot_id=Max(Length("snapshot_id")),
            github_repo=Max(Length("github_repo")),
        )
        if not sizes["rows"]:
            self.stdout.write("No snapshots.")
            return

        widths = [
            ACCOUNT_ID_WIDTH,
            max(len(HEADERS[1]), sizes["name"] or 0),
            max(len(HEADERS[2]), sizes["snapshot_id"] or 0, len(EMPTY)),
            max(len(HEADERS[3]), sizes["github_repo"] or 0, len(EMPTY)),
            EXPIRY_WIDTH,
        ]
        self.stdout.write(format_row(HEADERS, widths))
        for snapshot in snapshots.iterator(chunk_size=CHUNK_SIZE):
            cells = (
                str(snapshot.account_id),
                snapshot.account.name,
                snapshot.snapshot_id or EMPTY,
                snapshot.github_repo or EMPTY,
                format_expiry(snapshot.expires_at),
            )
            marker = "expired" if snapshot.is_expired(now) else ""
            self.stdout.write(format_row(cells, widths, marker))


def format_row(cells, widths, marker=""):
    padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
    return "  ".join([*padded, marker]).rstrip()


def format_expiry(moment):
    if moment is None:
        return EMPTY
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
