import threading
import time

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.keys import issue_key
from accounts.models import Account
from sandboxes import services
from sandboxes.models import AccountSnapshot, SnapshotHistory
from sandboxes.services import TRACKED_FIELDS, Actor

from .conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

REPO = "https://github.com/recoup/artist"


def run_at_once(count, send, *, threads=None):
    """Call ``send(n)`` for n in range(count) from ``threads`` threads (one per
    call by default) released together; return the responses in order."""
    threads = threads or count
    barrier = threading.Barrier(threads)
    responses = [None] * count

    def work(first):
        try:
            barrier.wait(timeout=10)
            for n in range(first, count, threads):
                responses[n] = send(n)
        finally:
            connection.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return responses


def test_concurrent_first_writes_make_one_record():
    account = Account.objects.create(name="New artist")
    key = issue_key(account=account).raw_key

    def send(n):
        body = (
            {"snapshotId": f"snap_{n}"}
            if n % 2
            else {"github_repo": f"https://g.io/{n}"}
        )
        return APIClient().patch(
            "/api/sandboxes", body, format="json", HTTP_X_API_KEY=key
        )

    responses = run_at_once(20, send)

    assert [r.status_code for r in responses] == [200] * 20, [
        r.content for r in responses if r.status_code != 200
    ]
    assert AccountSnapshot.objects.filter(account=account).count() == 1
    stored = AccountSnapshot.objects.get(account=account)
    assert stored.snapshot_id in {f"snap_{n}" for n in range(1, 20, 2)}
    assert stored.github_repo in {f"https://g.io/{n}" for n in range(0, 20, 2)}
    created = {r.json()["created_at"] for r in responses}
    assert len(created) == 1


def test_concurrent_writes_keep_history_exact():
    accounts = [Account.objects.create(name=f"Artist {n}") for n in range(10)]
    keys = [issue_key(account=account).raw_key for account in accounts]

    def send(n):
        if n % 3 == 0:
            body = {"snapshotId": f"snap_{n}"}
        elif n % 3 == 1:
            body = {"github_repo": f"https://g.io/{n}"}
        else:
            body = {"snapshotId": f"snap_{n}", "github_repo": f"https://g.io/{n}"}
        return APIClient().patch(
            "/api/sandboxes", body, format="json", HTTP_X_API_KEY=keys[n % 10]
        )

    # Each thread keeps a database connection open, and PostgreSQL allows 100 by
    # default, so 40 threads send the 100 requests.
    responses = run_at_once(100, send, threads=40)

    assert [r.status_code for r in responses] == [200] * 100
    for account in accounts:
        assert AccountSnapshot.objects.filter(account=account).count() == 1
        history = list(SnapshotHistory.objects.filter(account=account).order_by("id"))
        assert len(history) == 10
        # Each change starts from the state the previous one left.
        previous = {field: None for field in TRACKED_FIELDS}
        for entry in history:
            assert {
                f: getattr(entry, f"{f}_before") for f in TRACKED_FIELDS
            } == previous
            previous = {f: getattr(entry, f"{f}_after") for f in TRACKED_FIELDS}
        stored = AccountSnapshot.objects.get(account=account)
        assert {f: getattr(stored, f) for f in TRACKED_FIELDS} == previous


def _wait_for_lock_wait(timeout=10):
    """Wait until another backend of this database waits for a row lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.01)
    pytest.fail("No request waited for the record's lock.")


def test_first_write_losing_creation_race_records_before(monkeypatch):
    """Two first writes at the same instant: the second cannot see the
    first's uncommitted record, then its upsert waits for it and updates it.
    Its history entry must show the first write as its before values."""
    account = Account.objects.create(name="New artist")
    now = timezone.now()
    created = threading.Event()
    release = threading.Event()
    record_creation = services._record_creation

    def record_creation_then_wait(*args, **kwargs):
        record_creation(*args, **kwargs)
        if threading.current_thread().name == "first":
            created.set()
            release.wait(10)

    monkeypatch.setattr(services, "_record_creation", record_creation_then_wait)

    def write(name, **change):
        try:
            services.update_snapshot(
                account=account, actor=Actor.for_command(name), now=now, **change
            )
        finally:
            connection.close()

    first = threading.Thread(
        name="first", target=write, args=("first",), kwargs={"github_repo": REPO}
    )
    second = threading.Thread(
        name="second", target=write, args=("second",), kwargs={"snapshot_id": "s"}
    )
    first.start()
    assert created.wait(10)
    second.start()
    _wait_for_lock_wait()
    release.set()
    first.join(30)
    second.join(30)

    entries = list(SnapshotHistory.objects.filter(account=account).order_by("id"))
    assert [entry.actor for entry in entries] == ["first", "second"]
    creation, change = entries
    assert creation.github_repo_before is None
    assert creation.github_repo_after == REPO
    assert change.github_repo_before == REPO
    assert change.github_repo_after == REPO
    assert change.snapshot_id_before is None
    assert change.snapshot_id_after == "s"
