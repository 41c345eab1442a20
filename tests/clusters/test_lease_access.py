"""SSH you can reach: each node's connection details in the API, the `ssh -J` command and the
`~/.ssh/config` block on the lease page, read back by the real OpenSSH client (`ssh -G`)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from accounts.models import Organization, User
from clusters.choices import LeaseKind, LeaseState
from clusters.models import Lease, Node, Region
from clusters.services.fleet import fleet_seed
from nodeagent.protocol import account_for_lease
from tests.clusters.helpers import gpus_of, lease_on

GATEWAY = "ssh.us-tx-1.voltpark.example"


@pytest.fixture
def lease(seeded_fleet, acme: Organization, alice: User) -> Lease:
    """Alice's 16-GPU lease on both Texas nodes (behind the region's gateway)."""
    tx = [node for node in seeded_fleet if node.hostname.startswith("tx1")]
    return lease_on(
        [*gpus_of(tx[0]), *gpus_of(tx[1])],
        organization=acme,
        booked_by=alice,
        kind=LeaseKind.ON_DEMAND,
        end=None,
        state=LeaseState.ACTIVE,
    )


def resolved(*args: str) -> dict[str, str]:
    """What OpenSSH makes of a command line or config (`ssh -G`: resolve, print, connect nowhere)."""
    ssh = shutil.which("ssh")
    assert ssh, "the OpenSSH client is needed (Debian: openssh-client)"
    out = subprocess.run([ssh, "-G", *args], capture_output=True, text=True, check=True, timeout=10).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_the_api_gives_each_node_its_user_host_port_and_jump_host(api_as, alice, lease) -> None:
    body = api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()
    account = account_for_lease(str(lease.public_id))
    first = body["nodes"][0]
    assert first["ssh"] == {
        "user": account,
        "host": first["hostname"],
        "port": 22,
        "jump_host": {"user": account, "host": GATEWAY, "port": 2222},
    }
    assert first["ssh_command"] == f"ssh -J {account}@{GATEWAY}:2222 {account}@{first['hostname']}"
    assert body["ssh_config"].count("ProxyJump") == 2


def test_the_command_names_what_openssh_then_connects_to(api_as, alice, lease) -> None:
    node = api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()["nodes"][1]
    words = node["ssh_command"].split()
    assert words[0] == "ssh"
    seen = resolved(*words[1:])
    account = account_for_lease(str(lease.public_id))
    assert (seen["user"], seen["hostname"], seen["port"]) == (account, node["hostname"], "22")
    assert seen["proxyjump"] == f"{account}@{GATEWAY}:2222"


def test_the_config_block_is_read_by_openssh_as_the_command_means(
    api_as, alice, lease, tmp_path: Path
) -> None:
    body = api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()
    config = tmp_path / "config"
    config.write_text(body["ssh_config"])
    account = account_for_lease(str(lease.public_id))
    for node in body["nodes"]:
        seen = resolved("-F", str(config), f"voltpark-{node['hostname']}")
        assert (seen["user"], seen["hostname"]) == (account, node["hostname"])
        assert seen["proxyjump"] == f"{account}@{GATEWAY}:2222"


def test_a_node_with_a_public_address_is_reached_directly(api_as, alice, acme, seeded_fleet) -> None:
    node = Node.objects.get(hostname="wa1-c01-n001")
    assert node.public_address == "198.51.100.1"  # the seed gives one cluster public addresses
    lease = lease_on(gpus_of(node, [0, 1]), organization=acme, booked_by=alice, state=LeaseState.ACTIVE)
    [shown] = api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()["nodes"]
    account = account_for_lease(str(lease.public_id))
    assert shown["ssh"] == {"user": account, "host": "198.51.100.1", "port": 22, "jump_host": None}
    assert shown["ssh_command"] == f"ssh {account}@198.51.100.1"


def test_a_gateway_staff_change_is_what_the_next_answer_names(api_as, alice, lease) -> None:
    Region.objects.filter(code="us-tx-1").update(ssh_gateway_host="jump.tx.example", ssh_gateway_port=22)
    node = api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()["nodes"][0]
    account = account_for_lease(str(lease.public_id))
    assert node["ssh_command"] == f"ssh -J {account}@jump.tx.example {account}@{node['hostname']}"


def test_the_lease_page_shows_the_command_and_the_config_block(client_as, lease) -> None:
    html = client_as("bob").get(f"/leases/{lease.public_id}/").content.decode()
    account = account_for_lease(str(lease.public_id))
    host = lease.allocations.order_by("node__hostname").first().node.hostname
    assert (
        f'<span class="nowrap">-J</span> <span class="nowrap">{account}@</span><wbr>'
        f'<span class="nowrap">{GATEWAY}:2222</span> <span class="nowrap">{account}@{host}</span>'
    ) in html
    assert f"Host voltpark-{host}\n    HostName {host}\n    User {account}\n    ProxyJump" in html
    assert 'data-copy="#ssh-config"' in html


def test_an_ended_lease_shows_no_command(client_as, api_as, alice, lease) -> None:
    Lease.objects.filter(pk=lease.pk).update(state=LeaseState.ENDED)
    html = client_as("alice").get(f"/leases/{lease.public_id}/").content.decode()
    assert "data-ssh-command" not in html and 'id="ssh-config"' not in html
    assert "The lease is over: its account is gone." in html
    body = api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()
    assert body["ssh_config"] is None
    assert {(node["ssh"], node["ssh_command"]) for node in body["nodes"]} == {(None, None)}


def test_the_seed_gives_every_region_a_gateway_and_every_node_a_private_address(db) -> None:
    fleet_seed(nodes=9)
    assert set(Region.objects.values_list("ssh_gateway_host", "ssh_gateway_port")) == {
        (f"ssh.{code}.voltpark.example", 2222) for code in ("us-tx-1", "us-va-1", "us-wa-1")
    }
    assert Node.objects.get(hostname="va1-c01-n002").private_address == "10.2.1.2"
    assert not Node.objects.filter(private_address__isnull=True).exists()
    Region.objects.filter(code="us-tx-1").update(ssh_gateway_host="staff.example")
    fleet_seed(nodes=9)
    assert Region.objects.get(code="us-tx-1").ssh_gateway_host == "staff.example"  # staff's value kept
