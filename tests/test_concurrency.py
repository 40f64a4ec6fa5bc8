import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.keys import issue_key
from accounts.models import Account
from sandboxes.models import AccountSnapshot

from .conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def run_at_once(count, send):
    """Call ``send(n)`` from ``count`` threads released together; return the
    responses in order."""
    barrier = threading.Barrier(count)
    responses = [None] * count

    def work(n):
        try:
            barrier.wait(timeout=10)
            responses[n] = send(n)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
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
