"""Schemathesis tests of ``PATCH /api/sandboxes`` against the schema it serves.

The schema is loaded from ``/api/schema/`` through the WSGI application, and
every request goes to that application in process, never over the network.
Each case runs with a real API key and every Schemathesis check, in positive
and negative generation modes. The checks include ``ignored_auth``, which
repeats each successful request without a key and with an invalid one.
"""

import re
import uuid
from collections import Counter

import pytest
import schemathesis
from django.core.cache import cache
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from accounts.keys import issue_key
from accounts.models import Account, OrganizationMembership
from recoup.wsgi import application

Role = OrganizationMembership.Role

# Fixed ids, so that the body hook below can name real accounts before the
# test database exists.
ORGANIZATION_ID = uuid.UUID("0b5f0f4e-8c0a-4d1e-9a51-6f3c2d7a1e01")
CALLER_ID = uuid.UUID("0b5f0f4e-8c0a-4d1e-9a51-6f3c2d7a1e02")
MEMBER_ID = uuid.UUID("0b5f0f4e-8c0a-4d1e-9a51-6f3c2d7a1e03")
OUTSIDER_ID = uuid.UUID("0b5f0f4e-8c0a-4d1e-9a51-6f3c2d7a1e04")
PLATFORM_ID = uuid.UUID("0b5f0f4e-8c0a-4d1e-9a51-6f3c2d7a1e05")
STAFF_ID = uuid.UUID("0b5f0f4e-8c0a-4d1e-9a51-6f3c2d7a1e06")
TARGET_IDS = [str(pk) for pk in (ORGANIZATION_ID, CALLER_ID, MEMBER_ID, OUTSIDER_ID)]
# The account_id values the serializer and the schema's "format: uuid" accept.
UUID_TEXT = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


class RecordingApp:
    """A WSGI wrapper that counts the responses of ``PATCH /api/sandboxes``
    by the credentials the request carried: "valid", "invalid" or "none"."""

    def __init__(self, app):
        self.app = app
        self.valid_keys = set()
        self.outcomes = Counter()

    def __call__(self, environ, start_response):
        def record(status, headers, exc_info=None):
            if environ["PATH_INFO"] == "/api/sandboxes":
                credentials = self._credentials(environ)
                self.outcomes[credentials, int(status.split()[0])] += 1
            return start_response(status, headers, exc_info)

        return self.app(environ, record)

    def _credentials(self, environ):
        key = environ.get("HTTP_X_API_KEY")
        authorization = environ.get("HTTP_AUTHORIZATION")
        if key is None and authorization is None:
            return "none"
        if authorization is None and key in self.valid_keys:
            return "valid"
        return "invalid"


recording_app = RecordingApp(application)

schema = schemathesis.openapi.from_wsgi(
    "/api/schema/?format=json",
    recording_app,
    config=schemathesis.Config.from_dict(
        {
            # 100 fuzzing examples, each drawn in positive or negative mode.
            "generation": {
                "mode": "all",
                "max-examples": 100,
                # Otherwise Schemathesis generates its own x-api-key and
                # Authorization values next to the real key, and the API
                # rejects every request with both headers with 401. The
                # ignored_auth check still sends each successful request
                # again without a key and with an invalid one.
                "with-security-parameters": False,
            },
            "checks": {"enabled": True},
            # The coverage phase's positive cases include github_repo values
            # of exactly maxLength that match its pattern, which Schemathesis
            # 4.32 took about 30 s of CPU to find on a 2-core machine.
            # Positive cases come from the examples and fuzzing phases.
            "phases": {"coverage": {"generation": {"mode": "negative"}}},
        }
    ),
)


@schema.hook
def flatmap_body(context, body):
    """Half the time, swap a well-formed account_id for the id of a real
    account, so that requests reach existing accounts and not only ids that
    exist nowhere.

    Only a UUID is swapped for another UUID, so the body stays as valid or
    as invalid as Schemathesis generated it.
    """
    account_id = body.get("account_id") if isinstance(body, dict) else None
    if not isinstance(account_id, str) or not UUID_TEXT.fullmatch(account_id):
        return st.just(body)
    return st.one_of(
        st.just(body),
        st.sampled_from(TARGET_IDS).map(lambda target: {**body, "account_id": target}),
    )


@pytest.fixture
def world(transactional_db, settings):
    """Accounts and API keys: an admin member of an organization with one
    other member, an outsider, and a member of the platform organization.

    Each request commits, as in production. Inside the ``db`` fixture's
    transaction, Django's request_started handler (close_old_connections)
    would close the PostgreSQL connection, because it is not in autocommit
    mode, and with it the transaction. Django's test Client disconnects that
    handler, but Schemathesis calls the WSGI application directly.
    """
    settings.PLATFORM_ORGANIZATION_ID = PLATFORM_ID
    organization = Account.objects.create(
        id=ORGANIZATION_ID, name="Label", is_organization=True
    )
    platform = Account.objects.create(
        id=PLATFORM_ID, name="Platform", is_organization=True
    )
    caller = Account.objects.create(id=CALLER_ID, name="Caller")
    member = Account.objects.create(id=MEMBER_ID, name="Member")
    Account.objects.create(id=OUTSIDER_ID, name="Outsider")
    staff = Account.objects.create(id=STAFF_ID, name="Staff")
    OrganizationMembership.objects.create(
        account=caller, organization=organization, role=Role.ADMIN
    )
    OrganizationMembership.objects.create(account=member, organization=organization)
    OrganizationMembership.objects.create(account=staff, organization=platform)
    return {
        "admin member": issue_key(account=caller).raw_key,
        "platform staff": issue_key(account=staff).raw_key,
    }


# The status each caller gets for an account_id it may not use: 403 for an
# ordinary caller, 404 for platform staff when the account does not exist.
DENIED_STATUS = {"admin member": 403, "platform staff": 404}


@pytest.fixture(params=list(DENIED_STATUS))
def api_key(request, world):
    """Yield the key of one caller, then check that the run tested something.

    Requests with the key must have reached the view and its access rules,
    and the coverage phase must have sent other methods and media types. The
    ignored_auth probes without a key and with an invalid key must have got
    401.
    """
    key = world[request.param]
    recording_app.valid_keys = {key}
    recording_app.outcomes.clear()
    yield key

    outcomes = recording_app.outcomes
    for status in (200, 400, DENIED_STATUS[request.param], 405, 415):
        assert outcomes["valid", status] > 0, (status, outcomes)
    assert outcomes["none", 401] > 0, outcomes
    assert outcomes["invalid", 401] > 0, outcomes


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_update_snapshot_conforms(case, api_key):
    # Each case starts with empty rate-limit counters. The ignored_auth
    # probes fail authentication on purpose, and AUTH_FAILURE_RATE_LIMIT
    # (20 a minute by default) would otherwise block the client address
    # with 429 for the rest of the run.
    cache.clear()
    case.call_and_validate(headers={"x-api-key": api_key})
