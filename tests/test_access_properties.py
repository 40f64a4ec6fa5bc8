"""Property tests of the access rules in ``accounts.access``.

Hypothesis draws random graphs of accounts, organizations and memberships,
and optionally a platform organization. A reference model of the five rules,
written with plain sets, must agree with ``may_act_for`` on every pair of
accounts, and the API must allow exactly the pairs that the model allows.
"""

import uuid
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts.access import find_target, may_act_for
from accounts.keys import issue_key
from accounts.models import Account, OrganizationMembership
from sandboxes.models import AccountSnapshot, SnapshotHistory

pytestmark = pytest.mark.django_db

MEMBER = OrganizationMembership.Role.MEMBER
ADMIN = OrganizationMembership.Role.ADMIN

# Each example builds its graph inside a savepoint and rolls it back at the
# end, so the function-scoped ``db`` fixture is safe to share across examples.
PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@dataclass(frozen=True)
class Graph:
    """Accounts as indices. ``memberships`` maps (member, organization) to a
    role, and ``platform`` is the index of the platform organization, or None
    when PLATFORM_ORGANIZATION_ID is unset."""

    size: int
    organizations: frozenset
    memberships: dict
    platform: int | None


@st.composite
def graphs(draw):
    size = draw(st.integers(min_value=1, max_value=7))
    organizations = frozenset(index for index in range(size) if draw(st.booleans()))
    # Memberships point only at organizations and never at the member itself.
    candidate_pairs = [
        (member, organization)
        for organization in sorted(organizations)
        for member in range(size)
        if member != organization
    ]
    chosen = draw(
        st.lists(st.sampled_from(candidate_pairs), unique=True)
        if candidate_pairs
        else st.just([])
    )
    memberships = {pair: draw(st.sampled_from([MEMBER, ADMIN])) for pair in chosen}
    # Any account, or none. A platform account that is not an organization
    # has no members, so then no account is platform staff.
    platform = draw(st.none() | st.integers(min_value=0, max_value=size - 1))
    return Graph(size, organizations, memberships, platform)


def model_may_act(graph: Graph, caller: int, target: int) -> bool:
    """The five rules of ``accounts.access``, over plain sets."""
    organizations_of = {
        account: {o for (m, o) in graph.memberships if m == account}
        for account in range(graph.size)
    }
    if caller == target:  # 1. itself
        return True
    if caller in graph.organizations and (target, caller) in graph.memberships:
        return True  # 2. an organization acts for its members
    if organizations_of[caller] & organizations_of[target]:
        return True  # 3. members of one organization
    if graph.memberships.get((caller, target)) == ADMIN:
        return True  # 4. an admin acts for its organization
    # 5. members of the platform organization act for anyone
    return graph.platform is not None and graph.platform in organizations_of[caller]


def model_is_platform_staff(graph: Graph, caller: int) -> bool:
    return graph.platform is not None and (caller, graph.platform) in graph.memberships


def build(graph: Graph) -> list[Account]:
    accounts = [
        Account.objects.create(
            name=f"Account {index}", is_organization=index in graph.organizations
        )
        for index in range(graph.size)
    ]
    OrganizationMembership.objects.bulk_create(
        OrganizationMembership(
            account=accounts[member], organization=accounts[organization], role=role
        )
        for (member, organization), role in graph.memberships.items()
    )
    return accounts


def platform_setting(graph: Graph, accounts: list[Account]):
    return None if graph.platform is None else accounts[graph.platform].pk


class RolledBack(Exception):
    """Raised to leave the savepoint of an example, rolling it back."""


def run_rolled_back(check):
    """Run ``check`` in a savepoint that is always rolled back, so that each
    example starts from the empty database that the ``db`` fixture gives."""
    cache.clear()
    try:
        with transaction.atomic():
            check()
            raise RolledBack
    except RolledBack:
        pass


@PROPERTY_SETTINGS
@given(graph=graphs())
def test_may_act_for_matches_model(db, graph):
    def check():
        accounts = build(graph)
        with override_settings(
            PLATFORM_ORGANIZATION_ID=platform_setting(graph, accounts)
        ):
            for caller in range(graph.size):
                for target in range(graph.size):
                    expected = model_may_act(graph, caller, target)
                    # A fresh object, so may_act_for runs its own query.
                    fresh = Account.objects.get(pk=accounts[target].pk)
                    assert may_act_for(accounts[caller], fresh) is expected, (
                        caller,
                        target,
                    )
                    # The annotated object that the view uses.
                    annotated = find_target(accounts[caller], accounts[target].pk)
                    assert may_act_for(accounts[caller], annotated) is expected, (
                        caller,
                        target,
                    )

    run_rolled_back(check)


@PROPERTY_SETTINGS
@given(graph=graphs())
def test_api_allows_exactly_model(db, graph):
    def check():
        accounts = build(graph)
        keys = [issue_key(account=account).raw_key for account in accounts]
        client = APIClient()
        with override_settings(
            PLATFORM_ORGANIZATION_ID=platform_setting(graph, accounts)
        ):
            for caller in range(graph.size):
                for target in range(graph.size):
                    check_pair(client, graph, accounts, keys, caller, target)
                check_unknown_target(client, graph, keys, caller)

    run_rolled_back(check)


def check_pair(client, graph, accounts, keys, caller, target):
    target_account = accounts[target]
    history_before = SnapshotHistory.objects.filter(account=target_account).count()
    snapshot_id = f"snap_{caller}_{target}"
    response = client.patch(
        "/api/sandboxes",
        {"snapshotId": snapshot_id, "account_id": str(target_account.pk)},
        format="json",
        HTTP_X_API_KEY=keys[caller],
    )
    history = SnapshotHistory.objects.filter(account=target_account)
    if model_may_act(graph, caller, target):
        assert response.status_code == 200, (caller, target, response.content)
        assert response.json()["account_id"] == str(target_account.pk)
        record = AccountSnapshot.objects.get(account=target_account)
        assert record.snapshot_id == snapshot_id
        assert history.count() == history_before + 1
        assert history.latest("id").api_key.account_id == accounts[caller].pk
    else:
        assert response.status_code == 403, (caller, target, response.content)
        assert "may not act for that account_id" in response.json()["error"]
        assert not AccountSnapshot.objects.filter(snapshot_id=snapshot_id).exists()
        assert history.count() == history_before


def check_unknown_target(client, graph, keys, caller):
    missing = uuid.uuid4()
    response = client.patch(
        "/api/sandboxes",
        {"snapshotId": "snap_missing", "account_id": str(missing)},
        format="json",
        HTTP_X_API_KEY=keys[caller],
    )
    expected = 404 if model_is_platform_staff(graph, caller) else 403
    assert response.status_code == expected, (caller, response.content)
    assert not AccountSnapshot.objects.filter(snapshot_id="snap_missing").exists()
    assert not SnapshotHistory.objects.filter(account_id=missing).exists()


def test_model_matches_fixed_cases():
    """The reference model itself, on cases the rules spell out."""
    label, artist, bandmate, manager, outsider, platform, staff = range(7)
    graph = Graph(
        size=7,
        organizations=frozenset({label, platform}),
        memberships={
            (artist, label): MEMBER,
            (bandmate, label): MEMBER,
            (manager, label): ADMIN,
            (staff, platform): MEMBER,
        },
        platform=platform,
    )
    assert model_may_act(graph, artist, artist)
    assert model_may_act(graph, label, artist)
    assert model_may_act(graph, artist, bandmate)
    assert model_may_act(graph, manager, label)
    assert model_may_act(graph, staff, outsider)
    assert not model_may_act(graph, artist, label)
    assert not model_may_act(graph, outsider, artist)
    assert not model_may_act(graph, platform, outsider)
    assert not model_may_act(graph, label, platform)
