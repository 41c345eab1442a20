"""Keys that follow the team: booking takes the booker's keys, a booker with none is refused, a
teammate's key joins a live lease, and a deleted key or a removed member's keys leave every live
lease on every node within one sweep (real HTTP to the simulated agent)."""

from collections.abc import Callable

import pytest

from accounts.models import AuditEntry, Organization, SshKey, User
from accounts.services.organizations import membership_remove
from accounts.services.ssh_keys import ssh_key_add, ssh_key_delete
from clusters.choices import LeaseState
from clusters.models import Lease
from clusters.services.lifecycle import leases_enforce
from tests.clusters.helpers import Fleet, gpus_of, lease_on, make_nodes, reserved
from tests.clusters.recording_agent import recording_agent
from tests.factories import MembershipFactory, public_key_for, ssh_key_for
from tests.races import held_open


def lines(path) -> set[str]:
    return set(path.read_text().splitlines())


def live_lease(gpus, *, organization: Organization, booked_by: User, keys: list[SshKey], **fields) -> Lease:
    """A lease on these GPUs holding these keys, as booking leaves it."""
    lease = lease_on(
        gpus, organization=organization, booked_by=booked_by, keys=[k.public_key for k in keys], **fields
    )
    lease.ssh_keys.set(keys)
    return lease


# --- Booking takes the booker's keys; none at all is refused


def test_booking_without_choosing_keys_installs_all_the_bookers_keys(api_as, fleet, alice) -> None:
    second = ssh_key_add(user=alice, name="desktop", public_key=public_key_for("alice@desktop"))
    response = api_as(alice).post("/api/v1/leases/", reserved(), format="json")
    assert response.status_code == 201
    lease = Lease.objects.get()
    assert set(lease.ssh_public_keys) == {ssh_key_for(alice).public_key, second.public_key}
    assert set(response.json()["ssh_key_ids"]) == {str(k.public_id) for k in alice.ssh_keys.all()}


def test_a_booker_without_any_key_is_refused_with_a_400_naming_ssh_keys(api_as, fleet, alice) -> None:
    SshKey.objects.filter(user=alice).delete()
    response = api_as(alice).post("/api/v1/leases/", reserved(), format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and "Add an SSH public key first" in body["fields"]["ssh_keys"][0]
    assert Lease.objects.count() == 0


def test_the_booking_page_ticks_the_bookers_keys(client_as, seeded_fleet, alice) -> None:
    key = ssh_key_for(alice)
    html = client_as("alice").get("/book/").content.decode()
    assert f'value="{key.public_id}"' in html
    box = html[html.index(f'value="{key.public_id}"') - 200 : html.index(f'value="{key.public_id}"') + 200]
    assert "checked" in box


def test_the_booking_page_without_a_key_says_how_to_add_one_and_refuses(
    client_as, seeded_fleet, alice
) -> None:
    SshKey.objects.filter(user=alice).delete()
    browser = client_as("alice")
    page = browser.get("/book/").content.decode()
    assert 'data-field="no-ssh-key"' in page and 'href="/account/ssh-keys/"' in page
    response = browser.post("/book/", {"region": "us-tx-1", "gpus": "8", "kind": "on_demand", "tz": "UTC"})
    assert response.status_code == 200
    assert "Add an SSH public key first" in response.context["form"].errors["ssh_keys"][0]
    assert 'data-error-for="ssh_keys"' in response.content.decode()
    assert Lease.objects.count() == 0


def test_the_booking_page_refuses_when_every_key_is_unticked(client_as, seeded_fleet, alice) -> None:
    response = client_as("alice").post(
        "/book/", {"region": "us-tx-1", "gpus": "8", "kind": "on_demand", "tz": "UTC"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["ssh_keys"] == [
        "Tick at least one key: it is how you log in to the lease's nodes."
    ]
    assert Lease.objects.count() == 0


# --- A teammate's key added to a live lease


@pytest.fixture
def alices_lease(fleet, acme: Organization, alice: User) -> Lease:
    return live_lease(gpus_of(fleet.nodes[0]), organization=acme, booked_by=alice, keys=[ssh_key_for(alice)])


def test_a_teammates_key_is_added_to_a_live_lease_through_the_api(api_as, alices_lease, alice, bob) -> None:
    bobs = ssh_key_for(bob)
    url = f"/api/v1/leases/{alices_lease.public_id}/ssh-keys/"
    response = api_as(alice).post(url, {"ssh_key_id": str(bobs.public_id)}, format="json")
    assert response.status_code == 200
    assert str(bobs.public_id) in response.json()["ssh_key_ids"]
    alices_lease.refresh_from_db()
    assert set(alices_lease.ssh_public_keys) == {ssh_key_for(alice).public_key, bobs.public_key}
    assert (
        AuditEntry.objects.filter(action="lease.ssh_key_add", object_id=str(alices_lease.public_id)).count()
        == 1
    )
    again = api_as(alice).post(url, {"ssh_key_id": str(bobs.public_id)}, format="json")
    assert again.status_code == 400 and "already on the lease" in again.json()["fields"]["ssh_key_id"][0]


def test_a_key_of_another_organization_is_refused_naming_the_field(
    api_as, alices_lease, alice, charlie
) -> None:
    url = f"/api/v1/leases/{alices_lease.public_id}/ssh-keys/"
    response = api_as(alice).post(url, {"ssh_key_id": str(ssh_key_for(charlie).public_id)}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["ssh_key_id"] == ["No member of your organization has this key."]
    alices_lease.refresh_from_db()
    assert alices_lease.ssh_public_keys == [ssh_key_for(alice).public_key]
    assert list(alices_lease.ssh_keys.all()) == [ssh_key_for(alice)]


@pytest.mark.parametrize("body", [{}, {"ssh_key_id": "not-a-uuid"}, {"ssh_key_id": 7}])
def test_a_malformed_key_id_is_a_400_naming_the_field(api_as, alices_lease, alice, body) -> None:
    response = api_as(alice).post(f"/api/v1/leases/{alices_lease.public_id}/ssh-keys/", body, format="json")
    assert response.status_code == 400 and "ssh_key_id" in response.json()["fields"]


def test_charlie_cannot_add_a_key_to_acmes_lease(api_as, alices_lease, charlie) -> None:
    url = f"/api/v1/leases/{alices_lease.public_id}/ssh-keys/"
    response = api_as(charlie).post(url, {"ssh_key_id": str(ssh_key_for(charlie).public_id)}, format="json")
    assert response.status_code == 404
    assert alices_lease.ssh_keys.count() == 1


def test_an_ended_lease_takes_no_new_key(api_as, alices_lease, alice, bob) -> None:
    Lease.objects.filter(pk=alices_lease.pk).update(state=LeaseState.ENDED)
    url = f"/api/v1/leases/{alices_lease.public_id}/ssh-keys/"
    response = api_as(alice).post(url, {"ssh_key_id": str(ssh_key_for(bob).public_id)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "invalid_state"
    assert alices_lease.ssh_keys.count() == 1


def test_the_lease_page_adds_a_teammates_key(client_as, alices_lease, alice, bob) -> None:
    bobs = ssh_key_for(bob)
    browser = client_as("alice")
    page = browser.get(f"/leases/{alices_lease.public_id}/").content.decode()
    assert 'id="add-key"' in page and f'<option value="{bobs.public_id}"' in page
    response = browser.post(f"/leases/{alices_lease.public_id}/ssh-keys/", {"ssh_key": str(bobs.public_id)})
    assert response.status_code == 302
    assert alices_lease.ssh_keys.filter(pk=bobs.pk).exists()
    page = browser.get(f"/leases/{alices_lease.public_id}/").content.decode()
    assert f'data-key="{bobs.fingerprint}"' in page and f'<option value="{bobs.public_id}"' not in page


# --- On the nodes, within one sweep


@pytest.fixture
def running(fleet_of: Callable[..., Fleet], acme: Organization, alice: User, bob: User):
    """A two-node lease holding Alice's and Bob's keys, started on the simulated agents."""
    fleet = fleet_of(2)
    lease = live_lease(
        [*gpus_of(fleet.nodes[0]), *gpus_of(fleet.nodes[1])],
        organization=acme,
        booked_by=alice,
        keys=[ssh_key_for(alice), ssh_key_for(bob)],
    )
    assert leases_enforce().started == 1
    for node in fleet.nodes:
        assert lines(fleet.keys_file(node, lease)) == {
            ssh_key_for(alice).public_key,
            ssh_key_for(bob).public_key,
        }
    return fleet, lease


def test_a_deleted_key_leaves_every_node_of_every_live_lease_within_one_sweep(running, alice, bob) -> None:
    fleet, lease = running
    ssh_key_delete(user=bob, key=ssh_key_for(bob))
    lease.refresh_from_db()
    assert lease.ssh_public_keys == [ssh_key_for(alice).public_key] and lease.keys_pending

    report = leases_enforce()

    assert report.keys_sent == 1
    for node in fleet.nodes:
        assert lines(fleet.keys_file(node, lease)) == {ssh_key_for(alice).public_key}
    lease.refresh_from_db()
    assert not lease.keys_pending and leases_enforce().keys_sent == 0


def test_removing_a_member_takes_their_keys_off_that_organizations_leases_only(
    running, fleet_of, alice, bob, globex, charlie
) -> None:
    fleet, lease = running
    MembershipFactory.create(user=bob, organization=globex)
    other = fleet_of(1, prefix="globex")
    globex_lease = live_lease(
        gpus_of(other.nodes[0]), organization=globex, booked_by=charlie, keys=[ssh_key_for(bob)]
    )
    leases_enforce()

    membership_remove(actor=alice, membership=bob.memberships.get(organization__slug="acme-ai"))
    leases_enforce()

    for node in fleet.nodes:
        assert lines(fleet.keys_file(node, lease)) == {ssh_key_for(alice).public_key}
    assert lines(other.keys_file(other.nodes[0], globex_lease)) == {public_key_for(bob.email)}
    assert SshKey.objects.filter(user=bob).count() == 1  # still his, for his other organizations


def test_a_teammates_key_added_reaches_the_running_nodes_within_one_sweep(
    fleet_of: Callable[..., Fleet], api_as, acme, alice, bob
) -> None:
    fleet = fleet_of(1)
    lease = live_lease(
        gpus_of(fleet.nodes[0], [0, 1]), organization=acme, booked_by=alice, keys=[ssh_key_for(alice)]
    )
    leases_enforce()
    url = f"/api/v1/leases/{lease.public_id}/ssh-keys/"
    assert (
        api_as(alice).post(url, {"ssh_key_id": str(ssh_key_for(bob).public_id)}, format="json").status_code
        == 200
    )
    assert leases_enforce().keys_sent == 1
    assert lines(fleet.keys_file(fleet.nodes[0], lease)) == {
        ssh_key_for(alice).public_key,
        ssh_key_for(bob).public_key,
    }


def test_a_node_that_misses_the_new_keys_gets_them_at_a_later_sweep(running, bob, settings) -> None:
    settings.LEASE_AGENT_TIMEOUT_MS = 300
    fleet, lease = running
    down = fleet.nodes[1]
    fleet.sim.set_fault(down.hostname, "refuse")
    ssh_key_delete(user=bob, key=ssh_key_for(bob))
    assert leases_enforce().keys_sent == 0
    lease.refresh_from_db()
    assert lease.keys_pending
    fleet.sim.clear_faults(down.hostname)
    assert leases_enforce().keys_sent == 1
    assert lines(fleet.keys_file(down, lease)) == {public_key_for("alice@acme.example")}


# --- Passwordless sudo for whole-node leases, when the organization enables it


def test_whole_node_leases_get_sudo_when_the_organization_enables_it_and_shared_ones_never(
    acme, globex, alice, charlie
) -> None:
    Organization.objects.filter(pk=acme.pk).update(whole_node_sudo=True)
    with recording_agent() as agent:
        whole, shared, other = make_nodes(3, agent.base_url, prefix="rec")
        keys = [ssh_key_for(alice)]
        leases = {
            "whole": live_lease(gpus_of(whole), organization=acme, booked_by=alice, keys=keys),
            "shared": live_lease(
                gpus_of(shared, [0, 1, 2, 3]), organization=acme, booked_by=alice, keys=keys
            ),
            "not enabled": live_lease(
                gpus_of(other), organization=globex, booked_by=charlie, keys=[ssh_key_for(charlie)]
            ),
        }
        assert leases_enforce().started == 3
    sent = {
        name: agent.last_put(node.hostname, leases[name].public_id)
        for name, node in (("whole", whole), ("shared", shared), ("not enabled", other))
    }
    assert {name: body["sudo"] for name, body in sent.items()} == {
        "whole": True,
        "shared": False,
        "not enabled": False,
    }
    assert sent["shared"]["gpu_indices"] == [0, 1, 2, 3]


def test_an_owner_turns_whole_node_sudo_on_from_the_organization_page(client_as, acme) -> None:
    response = client_as("alice").post("/organization/sudo/", {"whole_node_sudo": "on"})
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.whole_node_sudo
    assert AuditEntry.objects.filter(action="organization.whole_node_sudo", organization=acme).count() == 1
    client_as("alice").post("/organization/sudo/", {})
    acme.refresh_from_db()
    assert not acme.whole_node_sudo


def test_a_member_cannot_turn_sudo_on(client_as, acme) -> None:
    assert client_as("bob").post("/organization/sudo/", {"whole_node_sudo": "on"}).status_code == 403
    acme.refresh_from_db()
    assert not acme.whole_node_sudo


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_key_withdrawn_while_a_sweep_runs_is_not_lost(running, bob) -> None:
    fleet, lease = running
    bobs = ssh_key_for(bob)
    # The deletion holds the lease's row while the sweep runs: the sweep passes it by, and the
    # next one sends the keys without Bob's.
    with held_open(lambda: ssh_key_delete(user=bob, key=bobs), commit_after=1.0):
        assert leases_enforce().keys_sent == 0
    assert leases_enforce().keys_sent == 1
    for node in fleet.nodes:
        assert lines(fleet.keys_file(node, lease)) == {public_key_for("alice@acme.example")}
