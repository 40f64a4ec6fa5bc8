"""The benchmark's own PostgreSQL databases: create, migrate, seed, drop, and
read the server's statistics counters.

Every function here changes only the database named by the caller (one of
the benchmark's ``recoup_bench_<keys>``). The admin connection, to the
``postgres`` database by default, only creates, drops and reads statistics.
"""

import hmac
import random
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from .paths import PROJECT_ROOT, VENV_PYTHON

KEY_PREFIX = "recoup_sk_"
# The service shows this many leading characters of a key (accounts.keys).
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6
SEEDED_AT = "2026-01-01 00:00:00+00"
MEMBERS_PER_ORGANIZATION = 9
# Rows per COPY write.
COPY_CHUNK_ROWS = 50_000
# Tables the seed fills, in the order of their foreign keys.
SEEDED_TABLES = (
    "accounts_account",
    "accounts_organizationmembership",
    "accounts_apikey",
    "sandboxes_accountsnapshot",
)


def database_url(admin_url: str, name: str) -> str:
    """Return ``admin_url`` with its database name replaced by ``name``."""
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}", query=""))


def recreate_database(admin_url: str, name: str) -> None:
    """Drop the database ``name`` if it exists, then create it empty."""
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def migrate(env: dict) -> None:
    """Run the service's migrations with the server environment ``env``."""
    subprocess.run(
        [str(VENV_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
    )


@dataclass
class Dataset:
    """The seeded accounts and raw API keys that the load generator needs.

    Accounts 0 to ``organizations - 1`` are organizations; every other
    account is a person and a member of organization ``person % organizations``.
    Each account has one API key, whose id is the account's index plus one.
    """

    keys: int
    organizations: int
    account_ids: list[uuid.UUID]
    raw_keys: list[str]

    @property
    def people(self) -> int:
        return self.keys - self.organizations

    def members_of(self, organization: int) -> range:
        return range(self.organizations + organization, self.keys, self.organizations)


def build_dataset(keys: int, rng: random.Random) -> Dataset:
    """Make the ids and raw API keys of ``keys`` accounts, one key each.

    One account in ten is an organization, with nine people as members.
    """
    if keys < MEMBERS_PER_ORGANIZATION + 1:
        raise ValueError(f"--keys must be at least 10, not {keys}.")
    organizations = keys // (MEMBERS_PER_ORGANIZATION + 1)
    account_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(keys)]
    # The keys themselves come from the secrets module, as the service's do.
    raw_keys = [KEY_PREFIX + secrets.token_urlsafe(32) for _ in range(keys)]
    return Dataset(
        keys=keys,
        organizations=organizations,
        account_ids=account_ids,
        raw_keys=raw_keys,
    )


def _copy_rows(cursor, table: str, columns: str, lines) -> None:
    """COPY tab-separated ``lines`` into ``table`` in chunks, with FREEZE.

    FREEZE writes the rows already visible to all, so the benchmark's first
    reads do not set hint bits. It needs the TRUNCATE in the same transaction.
    """
    statement = f"COPY {table} ({columns}) FROM STDIN WITH (FREEZE)"
    with cursor.copy(statement) as copy:
        chunk = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == COPY_CHUNK_ROWS:
                copy.write("".join(chunk))
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))


def seed(url: str, dataset: Dataset, hash_secret: str) -> float:
    """Fill the migrated database at ``url`` with ``dataset``; return seconds.

    Writes accounts, memberships, one API key per account (stored as the
    HMAC-SHA256 hex digest keyed with ``hash_secret``, as accounts.keys does)
    and a snapshot record for every person, so that a benchmark request
    updates an existing record.
    """
    started = time.perf_counter()
    secret = hash_secret.encode()
    ids = [str(account_id) for account_id in dataset.account_ids]
    organizations = dataset.organizations

    def accounts():
        for index, account_id in enumerate(ids):
            if index < organizations:
                yield f"{account_id}\tBench organization {index}\tt\t{SEEDED_AT}\n"
            else:
                yield f"{account_id}\tBench person {index}\tf\t{SEEDED_AT}\n"

    def memberships():
        for index in range(organizations, dataset.keys):
            organization = ids[index % organizations]
            yield f"{index}\t{ids[index]}\t{organization}\tmember\t{SEEDED_AT}\n"

    def api_keys():
        for index, raw_key in enumerate(dataset.raw_keys):
            digest = hmac.digest(secret, raw_key.encode(), "sha256").hex()
            prefix = raw_key[:DISPLAY_PREFIX_LENGTH]
            yield (
                f"{index + 1}\t{ids[index]}\tbench\t{prefix}\t{digest}\t"
                f"{SEEDED_AT}\t\\N\t\\N\t\\N\n"
            )

    def snapshots():
        for index in range(organizations, dataset.keys):
            yield (
                f"{index}\t{ids[index]}\tsnap_seed\t"
                f"https://github.com/recoup/seed\t\\N\t{SEEDED_AT}\t{SEEDED_AT}\n"
            )

    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        # The seed is consistent by construction, so it skips the per-row
        # foreign-key triggers.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "TRUNCATE "
            + ", ".join(SEEDED_TABLES)
            + ", sandboxes_snapshothistory RESTART IDENTITY"
        )
        _copy_rows(
            cursor,
            "accounts_account",
            "id, name, is_organization, created_at",
            accounts(),
        )
        _copy_rows(
            cursor,
            "accounts_organizationmembership",
            "id, account_id, organization_id, role, created_at",
            memberships(),
        )
        _copy_rows(
            cursor,
            "accounts_apikey",
            "id, account_id, name, prefix, digest, created_at, last_used_at, "
            "expires_at, revoked_at",
            api_keys(),
        )
        _copy_rows(
            cursor,
            "sandboxes_accountsnapshot",
            "id, account_id, snapshot_id, github_repo, expires_at, created_at, "
            "updated_at",
            snapshots(),
        )
        for table in SEEDED_TABLES[1:]:
            cursor.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                    "(SELECT max(id) FROM {}))"
                ).format(sql.Identifier(table)),
                [table],
            )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def mark_keys_used(url: str, key_ids: list[int]) -> None:
    """Set ``last_used_at`` of these keys to now.

    The service writes ``last_used_at`` at most once a minute per key, so for
    the next minute a request with one of these keys costs no such write.
    """
    with psycopg.connect(url) as connection:
        connection.execute(
            "UPDATE accounts_apikey SET last_used_at = now() WHERE id = ANY(%s)",
            [key_ids],
        )


CLIENTS_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = %s AND backend_type = 'client backend'
"""


def wait_for_no_clients(admin_url: str, name: str, timeout: float = 30.0) -> None:
    """Wait until no client is connected to the database ``name``.

    A backend flushes its statistics counters before it leaves
    pg_stat_activity, so after this the counters include all its work. The
    check runs on the admin connection, which adds nothing to the counters
    of ``name``.
    """
    deadline = time.monotonic() + timeout
    with psycopg.connect(admin_url, autocommit=True) as connection:
        while True:
            (clients,) = connection.execute(CLIENTS_SQL, [name]).fetchone()
            if clients == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{clients} clients are still connected to the database "
                    f"{name} after {timeout:.0f} s."
                )
            time.sleep(0.05)


DATABASE_COUNTERS_SQL = """
SELECT sessions, xact_commit, xact_rollback, tup_inserted, tup_updated,
       tup_deleted
FROM pg_stat_database WHERE datname = %s
"""
DATABASE_COUNTER_NAMES = (
    "sessions",
    "commits",
    "rollbacks",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
)


def read_counters(admin_url: str, url: str, name: str) -> dict[str, int]:
    """Return the server's cumulative counters of the database ``name`` at
    ``url``, and the updates of its accounts_apikey rows.

    The table counters are read first, on a connection to ``name``; once that
    connection has gone, the database counters are read on the admin
    connection. So each reading adds one session and one commit to the
    database's counters, and a difference of two readings is off by that.
    """
    with psycopg.connect(url, autocommit=True) as connection:
        (key_rows_updated,) = connection.execute(
            "SELECT n_tup_upd FROM pg_stat_user_tables "
            "WHERE relname = 'accounts_apikey'"
        ).fetchone()
    wait_for_no_clients(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as connection:
        row = connection.execute(DATABASE_COUNTERS_SQL, [name]).fetchone()
    counters = dict(zip(DATABASE_COUNTER_NAMES, row, strict=True))
    counters["key_rows_updated"] = key_rows_updated
    return counters


def postmaster_pid(url: str) -> int | None:
    """Return the pid of the PostgreSQL server process when it runs on this
    machine, or None."""
    with psycopg.connect(url, autocommit=True) as connection:
        (backend,) = connection.execute("SELECT pg_backend_pid()").fetchone()
        try:
            stat = Path(f"/proc/{backend}/stat").read_text()
        except FileNotFoundError:
            return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def write_key_file(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
