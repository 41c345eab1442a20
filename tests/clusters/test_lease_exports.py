"""Multi-node leases: the peers each node is sent, and the hostfile, the torchrun example and the
downloads of the lease as a dstack SSH fleet and SkyPilot SSH node pools, read back by dstack's and
SkyPilot's own configuration code (in their venv, .venv-nodetools, made by `make install`)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from accounts.models import Organization, User
from clusters.choices import LeaseKind, LeaseState
from clusters.models import Lease
from clusters.services.lifecycle import leases_enforce
from nodeagent.protocol import account_for_lease
from tests.clusters.helpers import gpus_of, lease_on, make_nodes
from tests.clusters.recording_agent import recording_agent
from tests.factories import ssh_key_for

NODETOOLS = Path(os.environ.get("NODETOOLS_PYTHON", Path(__file__).parents[2] / ".venv-nodetools/bin/python"))
GATEWAY = "ssh.us-tx-1.voltpark.example"


def nodetools(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run `script` with dstack and SkyPilot importable; its standard output."""
    if not NODETOOLS.exists():
        pytest.skip("dstack and SkyPilot are not installed (make install makes .venv-nodetools)")
    done = subprocess.run(
        [str(NODETOOLS), "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def lease(seeded_fleet, acme: Organization, alice: User) -> Lease:
    """Alice's 16-GPU lease on both Texas nodes."""
    tx = sorted((node for node in seeded_fleet if node.hostname.startswith("tx1")), key=lambda n: n.hostname)
    return lease_on(
        [*gpus_of(tx[0]), *gpus_of(tx[1])],
        organization=acme,
        booked_by=alice,
        kind=LeaseKind.ON_DEMAND,
        end=None,
        state=LeaseState.ACTIVE,
    )


def test_the_page_offers_the_hostfile_torchrun_and_the_downloads(client_as, lease) -> None:
    html = client_as("alice").get(f"/leases/{lease.public_id}/").content.decode()
    assert "tx1-c01-n001 slots=8\ntx1-c01-n002 slots=8\n" in html
    assert "torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d" in html
    assert "--rdzv_endpoint=tx1-c01-n001:29500" in html
    for name in ("fleet.dstack.yml", "ssh_node_pools.yaml"):
        assert f'href="/leases/{lease.public_id}/export/{name}"' in html


def test_a_single_node_lease_has_no_training_section(client_as, acme, alice, seeded_fleet) -> None:
    node = next(node for node in seeded_fleet if node.hostname.startswith("va1"))
    single = lease_on(gpus_of(node, [0, 1]), organization=acme, booked_by=alice, state=LeaseState.ACTIVE)
    html = client_as("alice").get(f"/leases/{single.public_id}/").content.decode()
    assert 'id="hostfile"' not in html and 'id="ssh-config"' in html


def download(client, lease: Lease, name: str) -> str:
    response = client.get(f"/leases/{lease.public_id}/export/{name}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    return response.content.decode()


DSTACK_READ = """
import sys, yaml
from dstack._internal.core.models.configurations import parse_apply_configuration
configuration = parse_apply_configuration(yaml.safe_load(open(sys.argv[1])))
print(configuration.json())
"""


def test_the_dstack_fleet_is_a_valid_dstack_ssh_fleet_of_the_leases_nodes(client_as, lease, tmp_path) -> None:
    path = tmp_path / "fleet.dstack.yml"
    path.write_text(download(client_as("alice"), lease, "fleet.dstack.yml"))
    fleet = json.loads(nodetools(DSTACK_READ, str(path)))
    account = account_for_lease(str(lease.public_id))
    assert (fleet["type"], fleet["placement"]) == ("fleet", "cluster")
    ssh = fleet["ssh_config"]
    assert ssh["user"] == account
    hosts = [
        (h["hostname"], h["internal_ip"], h["proxy_jump"]["hostname"], h["proxy_jump"]["port"])
        for h in ssh["hosts"]
    ]
    assert hosts == [("tx1-c01-n001", "10.1.1.1", GATEWAY, 2222), ("tx1-c01-n002", "10.1.1.2", GATEWAY, 2222)]
    assert {h["proxy_jump"]["user"] for h in ssh["hosts"]} == {account}


def test_dstack_refuses_what_it_should(tmp_path) -> None:
    # The reader is not a formality: a fleet whose hosts are missing is refused by dstack.
    path = tmp_path / "fleet.dstack.yml"
    path.write_text(yaml.safe_dump({"type": "fleet", "name": "x", "ssh_config": {"user": "u"}}))
    if not NODETOOLS.exists():
        pytest.skip("dstack and SkyPilot are not installed (make install makes .venv-nodetools)")
    done = subprocess.run(
        [str(NODETOOLS), "-c", DSTACK_READ, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "hosts" in done.stderr


SKYPILOT_READ = """
import json, sys
from sky.ssh_node_pools import core, utils
targets = utils.load_ssh_targets(sys.argv[1])
pools = {}
for name, config in utils.get_cluster_config(targets, file_path=sys.argv[1]).items():
    core.SSHNodePoolManager()._validate_pool_config(config)
    pools[name] = utils.prepare_hosts_info(name, config)
print(json.dumps(pools))
"""


def test_the_skypilot_pools_name_the_config_blocks_hosts_and_skypilot_reads_them(
    client_as, api_as, alice, lease, tmp_path
) -> None:
    config = tmp_path / "config"
    config.write_text(api_as(alice).get(f"/api/v1/leases/{lease.public_id}/").json()["ssh_config"])
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh/id_ed25519").write_text("not a real key\n")  # SkyPilot checks the file is there
    path = tmp_path / "ssh_node_pools.yaml"
    path.write_text(download(client_as("alice"), lease, "ssh_node_pools.yaml"))

    pools = json.loads(nodetools(SKYPILOT_READ, str(path), env={"HOME": str(home)}))

    [(name, hosts)] = pools.items()
    assert name == f"voltpark-{str(lease.public_id)[:8]}"
    aliases = [h["ip"] for h in hosts]
    assert aliases == ["voltpark-tx1-c01-n001", "voltpark-tx1-c01-n002"]
    # SkyPilot reaches a host named by a ~/.ssh/config Host through OpenSSH, which reads the user's
    # own ~/.ssh/config (not $HOME's, so not checkable by SkyPilot here): OpenSSH is asked directly.
    account = account_for_lease(str(lease.public_id))
    for alias in aliases:
        out = subprocess.run(
            ["ssh", "-G", "-F", str(config), alias], capture_output=True, text=True, check=True, timeout=10
        ).stdout
        assert (
            f"proxyjump {account}@{GATEWAY}:2222" in out
            and f"hostname {alias.removeprefix('voltpark-')}" in out
        )


@pytest.mark.parametrize("name", ["fleet.dstack.yml", "ssh_node_pools.yaml"])
def test_an_ended_lease_has_no_downloads(client_as, lease, name) -> None:
    Lease.objects.filter(pk=lease.pk).update(state=LeaseState.ENDED)
    assert client_as("alice").get(f"/leases/{lease.public_id}/export/{name}").status_code == 404


def test_an_unknown_download_and_another_organizations_lease_are_404(client_as, lease) -> None:
    assert client_as("alice").get(f"/leases/{lease.public_id}/export/hosts.txt").status_code == 404
    assert client_as("charlie").get(f"/leases/{lease.public_id}/export/fleet.dstack.yml").status_code == 404


def test_each_node_of_a_multi_node_lease_is_sent_its_peers(acme, alice) -> None:
    with recording_agent() as agent:
        a, b, c = make_nodes(3, agent.base_url, prefix="peers")
        for number, node in enumerate((a, b, c), start=1):
            node.private_address = f"10.9.0.{number}"
            node.save(update_fields=["private_address"])
        keys = [ssh_key_for(alice)]
        pair = lease_on(
            [*gpus_of(a), *gpus_of(b)], organization=acme, booked_by=alice, keys=[k.public_key for k in keys]
        )
        single = lease_on(gpus_of(c, [0]), organization=acme, booked_by=alice)
        assert leases_enforce().started == 2
    expected = [
        {"hostname": a.hostname, "address": "10.9.0.1", "slots": 8},
        {"hostname": b.hostname, "address": "10.9.0.2", "slots": 8},
    ]
    assert agent.last_put(a.hostname, pair.public_id)["peers"] == expected
    assert agent.last_put(b.hostname, pair.public_id)["peers"] == expected
    assert "peers" not in agent.last_put(c.hostname, single.public_id)


def test_a_lease_with_a_node_of_unknown_address_is_sent_no_peers(acme, alice) -> None:
    with recording_agent() as agent:
        a, b = make_nodes(2, agent.base_url, prefix="nopeer")
        a.private_address = "10.9.1.1"
        a.save(update_fields=["private_address"])  # b's is not recorded
        pair = lease_on([*gpus_of(a), *gpus_of(b)], organization=acme, booked_by=alice)
        assert leases_enforce().started == 1
    assert "peers" not in agent.last_put(a.hostname, pair.public_id)
    assert "peers" not in agent.last_put(b.hostname, pair.public_id)
