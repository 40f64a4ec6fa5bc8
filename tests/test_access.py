"""The access matrix: every rule that lets one account act for another, and
the denials beside each."""

import uuid

import pytest

from accounts.access import may_act_for
from accounts.models import OrganizationMembership
from sandboxes.models import AccountSnapshot

pytestmark = pytest.mark.django_db

ADMIN = OrganizationMembership.Role.ADMIN


@pytest.fixture
def world(make_account, member_of):
    """Two labels with members, an outsider and platform staff."""
    accounts = {
        "label": make_account("Label", organization=True),
        "other_label": make_account("Other label", organization=True),
        "parent": make_account("Parent label", organization=True),
        "platform": make_account("Recoup staff", organization=True),
        "artist": make_account("Artist"),
        "bandmate": make_account("Bandmate"),
        "manager": make_account("Manager"),
        "stranger": make_account("Stranger"),
        "loner": make_account("Loner"),
        "staff": make_account("Support engineer"),
    }
    member_of(accounts["artist"], accounts["label"])
    member_of(accounts["bandmate"], accounts["label"])
    member_of(accounts["manager"], accounts["label"], role=ADMIN)
    member_of(accounts["stranger"], accounts["other_label"])
    member_of(accounts["label"], accounts["parent"])
    member_of(accounts["staff"], accounts["platform"])
    return accounts


@pytest.fixture
def platform(settings, world):
    settings.PLATFORM_ORGANIZATION_ID = world["platform"].pk
    return world["platform"]


ALLOWED = [
    ("artist", "artist"),  # rule 1: itself
    ("label", "label"),  # rule 1: an organization itself
    ("label", "artist"),  # rule 2: an organization acts for its member
    ("label", "manager"),  # rule 2: whatever the member's role
    ("parent", "label"),  # rule 2: an organization that is a member
    ("artist", "bandmate"),  # rule 3: members of one organization
    ("artist", "manager"),  # rule 3: whatever the other's role
    ("manager", "artist"),  # rule 3
    ("manager", "label"),  # rule 4: an admin acts for its organization
]

DENIED = [
    ("artist", "label"),  # rule 4 needs the admin role
    ("stranger", "label"),  # rule 4: a member of another organization
    ("other_label", "artist"),  # rule 2: not its member
    ("parent", "artist"),  # rule 2 is not transitive
    ("artist", "stranger"),  # rule 3: no shared organization
    ("stranger", "artist"),  # rule 3
    ("loner", "artist"),  # no membership at all
    ("artist", "loner"),
    ("artist", "parent"),  # rule 3 needs both to be members
    ("label", "other_label"),
    ("staff", "loner"),  # rule 5 needs PLATFORM_ORGANIZATION_ID set
]


@pytest.mark.parametrize(("caller", "target"), ALLOWED)
def test_rule_allows(world, caller, target):
    assert may_act_for(world[caller], world[target])


@pytest.mark.parametrize(("caller", "target"), DENIED)
def test_rule_denies(world, caller, target):
    assert not may_act_for(world[caller], world[target])


@pytest.mark.parametrize(("caller", "target"), ALLOWED)
def test_api_allows(world, make_key, patch, caller, target):
    response = patch(
        {"snapshotId": "snap_1", "account_id": str(world[target].pk)},
        make_key(world[caller]),
    )
    assert response.status_code == 200, response.content
    assert response.json()["account_id"] == str(world[target].pk)
    assert AccountSnapshot.objects.get(account=world[target]).snapshot_id == "snap_1"


@pytest.mark.parametrize(("caller", "target"), DENIED)
def test_api_denies_and_writes_nothing(world, make_key, patch, caller, target):
    response = patch(
        {"snapshotId": "snap_1", "account_id": str(world[target].pk)},
        make_key(world[caller]),
    )
    assert response.status_code == 403, response.content
    assert "may not act for that account_id" in response.json()["error"]
    assert not AccountSnapshot.objects.exists()


def test_platform_staff_reach_any_account(world, platform, make_key, patch):
    for target in ("loner", "stranger", "other_label", "label"):
        response = patch(
            {"snapshotId": "snap_1", "account_id": str(world[target].pk)},
            make_key(world["staff"]),
        )
        assert response.status_code == 200, response.content


def test_platform_org_itself_not_staff(world, platform):
    assert not may_act_for(world["platform"], world["loner"])


def test_platform_staff_rule_needs_membership(world, platform):
    assert not may_act_for(world["loner"], world["artist"])
    assert may_act_for(world["staff"], world["loner"])


def test_unknown_account_same_as_forbidden(world, make_key, patch):
    key = make_key(world["artist"])
    unknown = patch({"account_id": str(uuid.uuid4())}, key)
    forbidden = patch({"account_id": str(world["stranger"].pk)}, key)
    assert unknown.status_code == 403
    assert unknown.json() == forbidden.json()


def test_unknown_account_404_for_staff(world, platform, make_key, patch):
    missing = uuid.uuid4()
    response = patch({"account_id": str(missing)}, make_key(world["staff"]))
    assert response.status_code == 404, response.content
    assert str(missing) in response.json()["error"]


def test_own_account_id_allowed(world, make_key, patch):
    artist = world["artist"]
    response = patch({"account_id": str(artist.pk)}, make_key(artist))
    assert response.status_code == 200, response.content
    assert response.json()["account_id"] == str(artist.pk)
