import socket
import time

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from accounts.keys import issue_key
from accounts.models import Account, OrganizationMembership


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def make_account(db):
    def make(name="Artist", *, organization=False):
        return Account.objects.create(name=name, is_organization=organization)

    return make


@pytest.fixture
def make_key(db):
    """Return a function that issues a key for an account and returns its
    raw value."""

    def make(account, **kwargs):
        return issue_key(account=account, **kwargs).raw_key

    return make


@pytest.fixture
def member_of(db):
    def add(account, organization, role=OrganizationMembership.Role.MEMBER):
        return OrganizationMembership.objects.create(
            account=account, organization=organization, role=role
        )

    return add


@pytest.fixture
def account(make_account):
    return make_account("Caller")


@pytest.fixture
def raw_key(account, make_key):
    return make_key(account)


@pytest.fixture
def patch(api_client):
    """Send ``PATCH /api/sandboxes`` with a JSON body and an API key."""

    def send(body, key=None, **headers):
        if key is not None:
            headers.setdefault("HTTP_X_API_KEY", key)
        return api_client.patch("/api/sandboxes", body, format="json", **headers)

    return send


requires_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL"
)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Start each test with empty rate-limit counters."""
    cache.clear()


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(port: int, timeout: float = 30) -> bool:
    """Wait until something accepts connections on ``port`` of 127.0.0.1;
    return False if nothing does within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False
