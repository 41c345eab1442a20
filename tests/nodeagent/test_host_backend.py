"""The host backend's refusals, repeats, crashes and files, on this machine's real accounts (as root).

No sshd here (tests/nodeagent/test_host_accounts.py logs in); each refusal is checked on the host:
the accounts, groups and files before and after are the same.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pynvml
import pytest

from nodeagent.backends.nvml import NvmlBackend
from nodeagent.host import accounts, devices, processes
from nodeagent.host.backend import HostBackend
from nodeagent.host.journal import REVOKING
from nodeagent.protocol import account_for_lease
from tests.nodeagent.hosts import HostUnderTest, make_host
from tests.races import race

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the host backend makes Linux accounts: run as root"
)


@pytest.fixture(scope="module")
def host() -> Iterator[HostUnderTest]:
    """The agent's host backend over HTTP on folders of its own, for the whole module."""
    made = make_host(with_sshd=False)
    yield made
    made.close()


@pytest.fixture
def key(host: HostUnderTest) -> str:
    return host.public_key("alice")


def restarted(host: HostUnderTest) -> HostBackend:
    """A new backend on the same host, as after the agent was restarted."""
    return HostBackend(NvmlBackend("host-test-node", host.root / "unused", nvml=host.nvml), host.settings)


def peer(hostname: str = "n1", address: str = "10.0.0.3", slots: int = 8) -> dict[str, object]:
    """One peer of a multi-node lease, as the platform sends it."""
    return {"hostname": hostname, "address": address, "slots": slots}


def home(host: HostUnderTest, lease_id: str) -> Path:
    return host.settings.home_root / account_for_lease(lease_id)


def assert_refused(
    host: HostUnderTest, lease_id: str, body: dict[str, object], status: int, field: str
) -> None:
    """The PUT is refused naming `field`, and nothing on the host changed."""
    before = host.state()
    response = host.put(lease_id, **body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert host.state() == before


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        (lambda k: [f'command="/bin/sh" {k}'], "ssh_public_keys[0]"),
        (lambda k: [k, "ssh-dss AAAAB3NzaC1kc3MAAACBAP alice@old"], "ssh_public_keys[1]"),
        (
            lambda k: [
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----"
            ],
            "ssh_public_keys[0]",
        ),
        (lambda k: [f"{k}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA mallory"], "ssh_public_keys[0]"),
        (lambda k: [k.rsplit(" ", 1)[0] + " alicé@laptop"], "ssh_public_keys[0]"),
        (lambda k: "not a list", "ssh_public_keys"),
    ],
    ids=["options", "unknown-type", "private-key", "comment-newline", "comment-non-ascii", "not-a-list"],
)
def test_it_refuses_a_bad_key_and_changes_nothing(
    host: HostUnderTest, key: str, keys: Callable[[str], object], field: str
) -> None:
    assert_refused(host, host.lease_id(), {"gpu_indices": [0], "ssh_public_keys": keys(key)}, 400, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"gpu_indices": [8]}, "gpu_indices"),
        ({"gpu_indices": [0, 0]}, "gpu_indices"),
        ({"gpu_indices": [0, 1], "sudo": True}, "sudo"),
        ({"gpu_indices": list(range(8)), "sudo": "yes"}, "sudo"),
        ({"gpu_indices": [0], "peers": [peer(address="10.0.0.300")]}, "peers[0].address"),
        ({"gpu_indices": [0], "peers": [peer(hostname="n1\n10.0.0.9 evil")]}, "peers[0].hostname"),
        ({"gpu_indices": [0], "peers": [peer(), peer(slots=0)]}, "peers[1].slots"),
        ({"gpu_indices": [0], "peers": [peer(), peer()]}, "peers"),
        ({"gpu_indices": [0], "peers": {"n1": "10.0.0.3"}}, "peers"),
    ],
    ids=["gpu-the-node-lacks", "gpu-twice", "sudo-on-part-of-a-node", "sudo-not-bool", "peer-address",
         "peer-hostname-with-newline", "peer-slots", "peer-twice", "peers-not-a-list"],
)  # fmt: skip
def test_it_refuses_a_bad_body_and_changes_nothing(
    host: HostUnderTest, key: str, body: dict[str, object], field: str
) -> None:
    assert_refused(host, host.lease_id(), {"ssh_public_keys": [key], **body}, 400, field)


def test_it_refuses_a_lease_id_that_names_no_account(host: HostUnderTest, key: str) -> None:
    assert_refused(host, "---", {"gpu_indices": [0], "ssh_public_keys": [key]}, 400, "lease_id")


def test_it_will_not_take_over_an_account_it_did_not_make(host: HostUnderTest, key: str) -> None:
    lease_id = host.lease_id()
    name = account_for_lease(lease_id)
    subprocess.run(["useradd", "--no-create-home", name], check=True)
    uid = pwd.getpwnam(name).pw_uid
    assert_refused(host, lease_id, {"gpu_indices": [0], "ssh_public_keys": [key]}, 409, "lease_id")
    response = host.delete(lease_id)
    assert (response.status_code, response.json()["error"]) == (404, "unknown_lease")
    assert pwd.getpwnam(name).pw_uid == uid


def test_it_refuses_a_gpu_another_lease_holds(host: HostUnderTest, key: str) -> None:
    first = host.lease_id()
    assert host.put(first, gpu_indices=[3], ssh_public_keys=[key]).status_code == 200
    assert_refused(
        host, host.lease_id(), {"gpu_indices": [2, 3], "ssh_public_keys": [key]}, 409, "gpu_indices"
    )
    host.delete(first)


def test_a_repeated_put_changes_nothing(host: HostUnderTest, key: str) -> None:
    lease_id = host.lease_id()
    assert host.put(lease_id, gpu_indices=[1], ssh_public_keys=[key]).json()["changed"] is True
    before = host.state()
    again = host.put(lease_id, gpu_indices=[1], ssh_public_keys=[key])
    assert (again.status_code, again.json()["changed"]) == (200, False)
    assert host.state() == before
    host.delete(lease_id)


def test_a_start_cut_short_by_a_crash_completes_on_the_next_put(
    host: HostUnderTest, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease_id = host.lease_id()
    monkeypatch.setattr(devices, "give", _crash)
    assert host.put(lease_id, gpu_indices=[4], ssh_public_keys=[key]).status_code == 500
    monkeypatch.undo()
    agent = restarted(host)
    account = accounts.lookup(account_for_lease(lease_id))
    assert account is not None and agent.journal.get(account.name).uid == account.uid
    result = agent.install_lease(lease_id, (4,), (key,))
    assert result.changed is True
    assert host.device(4) == (0, account.gid, 0o660)
    assert agent.revoke_lease(lease_id).gpus_clean is True
    assert accounts.lookup(account.name) is None and host.device(4) == (0, 0, 0o600)


def test_an_end_cut_short_by_a_crash_completes_on_the_next_delete(
    host: HostUnderTest, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease_id = host.lease_id()
    assert host.put(lease_id, gpu_indices=[5], ssh_public_keys=[key]).status_code == 200
    name = account_for_lease(lease_id)
    monkeypatch.setattr(accounts, "remove", _crash)
    assert host.delete(lease_id).status_code == 500
    monkeypatch.undo()
    agent = restarted(host)
    assert agent.journal.get(name).phase == REVOKING
    assert not home(host, lease_id).exists() and accounts.lookup(name) is not None
    # The account is half gone; a PUT of the ended lease must not bring it back.
    assert host.put(lease_id, gpu_indices=[5], ssh_public_keys=[key]).status_code == 409
    result = agent.revoke_lease(lease_id)
    assert (result.changed, result.gpus_clean) == (True, True)
    assert accounts.lookup(name) is None and name not in host.groups()


def test_an_ended_lease_comes_back_only_for_a_later_placement(host: HostUnderTest, key: str) -> None:
    lease_id = host.lease_id()
    name = account_for_lease(lease_id)
    assert host.put(lease_id, gpu_indices=[6], ssh_public_keys=[key], placement=40).status_code == 200
    assert host.delete(lease_id).status_code == 200
    before = host.state()
    for late_retry in ({}, {"placement": 40}, {"placement": 39}):
        again = host.put(lease_id, gpu_indices=[6], ssh_public_keys=[key], **late_retry)
        assert (again.status_code, again.json()["error"]) == (409, "lease_revoked")
    assert host.state() == before and accounts.lookup(name) is None

    # Moved off this node before it started, and placed back onto it later: a new start.
    placed_again = host.put(lease_id, gpu_indices=[6], ssh_public_keys=[key], placement=41)

    assert (placed_again.status_code, placed_again.json()["changed"]) == (200, True)
    account = accounts.lookup(name)
    assert account is not None and host.device(6) == (0, account.gid, 0o660)
    assert (home(host, lease_id) / ".ssh" / "authorized_keys").read_text() == f"{key}\n"
    assert host.delete(lease_id).status_code == 200 and accounts.lookup(name) is None


def test_at_start_it_gives_the_device_files_back_to_their_leases(host: HostUnderTest, key: str) -> None:
    lease_id = host.lease_id()
    assert host.put(lease_id, gpu_indices=[6], ssh_public_keys=[key]).status_code == 200
    for index in range(8):
        os.chmod(host.device_dir / f"nvidia{index}", 0o666)  # as the driver makes them at boot
    restarted(host).recover()
    gid = pwd.getpwnam(account_for_lease(lease_id)).pw_gid
    assert [host.device(i) for i in (5, 6, 7)] == [(0, 0, 0o600), (0, gid, 0o660), (0, 0, 0o600)]
    host.delete(lease_id)


def test_gpus_with_memory_still_in_use_are_not_reported_clean(host: HostUnderTest, key: str) -> None:
    lease_id = host.lease_id()
    assert host.put(lease_id, gpu_indices=[0], ssh_public_keys=[key]).status_code == 200
    host.nvml.leaked[0] = 5 * 1024**3
    try:
        assert host.delete(lease_id).json()["gpus_clean"] is False
    finally:
        host.nvml.leaked.clear()
    assert host.delete(lease_id).json()["gpus_clean"] is True


def test_it_never_follows_a_link_the_tenant_put_in_its_home(host: HostUnderTest, key: str) -> None:
    lease_id = host.lease_id()
    assert host.put(lease_id, gpu_indices=[1], ssh_public_keys=[key]).status_code == 200
    victim = host.root / "victim"
    victim.mkdir(mode=0o700)
    ssh = home(host, lease_id) / ".ssh"
    subprocess.run(["rm", "-rf", str(ssh)], check=True)
    ssh.symlink_to(victim)
    other = host.public_key("bob")
    assert host.put(lease_id, gpu_indices=[1], ssh_public_keys=[other]).status_code == 200
    assert list(victim.iterdir()) == []
    assert not ssh.is_symlink() and (ssh / "authorized_keys").read_text() == other + "\n"
    host.delete(lease_id)


def test_a_multi_node_lease_gets_its_hostfile_hosts_and_nccl_environment(
    host: HostUnderTest, key: str
) -> None:
    lease_id = host.lease_id()
    peers = [
        {"hostname": "tx1-c01-n001", "address": "10.1.0.11", "slots": 8},
        {"hostname": "tx1-c01-n002", "address": "10.1.0.12", "slots": 8},
    ]
    assert (
        host.put(lease_id, gpu_indices=list(range(8)), ssh_public_keys=[key], peers=peers).status_code == 200
    )
    folder = home(host, lease_id) / ".voltpark"
    assert (folder / "hostfile").read_text() == "tx1-c01-n001 slots=8\ntx1-c01-n002 slots=8\n"
    assert (folder / "hosts").read_text() == "10.1.0.11 tx1-c01-n001\n10.1.0.12 tx1-c01-n002\n"
    env = _sourced(home(host, lease_id))
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert (env["NCCL_IB_HCA"], env["MASTER_ADDR"], env["VOLTPARK_NODES"]) == ("mlx5", "10.1.0.11", "2")
    assert env["VOLTPARK_HOSTFILE"] == str(folder / "hostfile")
    assert (folder / "hostfile").stat().st_uid == pwd.getpwnam(account_for_lease(lease_id)).pw_uid
    assert host.put(lease_id, gpu_indices=list(range(8)), ssh_public_keys=[key]).json()["changed"] is True
    assert not (folder / "hostfile").exists() and "MASTER_ADDR" not in _sourced(home(host, lease_id))
    host.delete(lease_id)


def test_only_a_whole_node_lease_that_asks_gets_sudo(host: HostUnderTest, key: str) -> None:
    whole = host.lease_id()
    assert host.put(whole, gpu_indices=list(range(8)), ssh_public_keys=[key], sudo=True).status_code == 200
    rule = host.settings.sudoers_dir / account_for_lease(whole)
    assert rule.read_text().splitlines()[-1] == f"{account_for_lease(whole)} ALL=(ALL:ALL) NOPASSWD: ALL"
    assert rule.stat().st_mode & 0o777 == 0o440
    assert host.put(whole, gpu_indices=list(range(8)), ssh_public_keys=[key]).status_code == 200
    assert not rule.exists()
    host.delete(whole)


def test_a_partial_lease_gets_a_device_drop_in_on_its_slice_until_the_end(
    host: HostUnderTest, key: str
) -> None:
    lease_id = host.lease_id()
    assert host.put(lease_id, gpu_indices=[2, 3], ssh_public_keys=[key]).status_code == 200
    uid = pwd.getpwnam(account_for_lease(lease_id)).pw_uid
    drop_in = host.settings.systemd_dir / f"user-{uid}.slice.d" / devices.DROP_IN
    allowed = [line for line in drop_in.read_text().splitlines() if line.startswith("DeviceAllow=")]
    gpus = [line for line in allowed if "/nvidia" in line and line.split("nvidia")[1][:1].isdigit()]
    assert gpus == [f"DeviceAllow={host.device_dir}/nvidia2 rw", f"DeviceAllow={host.device_dir}/nvidia3 rw"]
    assert "DevicePolicy=closed" in drop_in.read_text()
    host.delete(lease_id)
    assert not drop_in.exists()


def _crash(*args: object, **kwargs: object) -> bool:
    raise RuntimeError("the agent died here")


def _sourced(home_dir: Path) -> dict[str, str]:
    """The environment a login shell of the lease gets from its env file."""
    out = subprocess.run(
        ["env", "-i", f"HOME={home_dir}", "bash", "-c", f". {home_dir}/.voltpark/env.sh && env"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.mark.slow
def test_of_leases_racing_for_one_gpu_exactly_one_gets_it(host: HostUnderTest, key: str) -> None:
    leases = [host.lease_id() for _ in range(4)]
    answers = race(
        [lambda lease=lease: host.put(lease, gpu_indices=[7], ssh_public_keys=[key]) for lease in leases]
    )
    won = [lease for lease, answer in zip(leases, answers, strict=True) if answer.status_code == 200]
    assert len(won) == 1, [answer.text for answer in answers]
    assert sorted(answer.json().get("error", "") for answer in answers) == [
        "",
        "gpu_in_use",
        "gpu_in_use",
        "gpu_in_use",
    ]
    assert [name for name in host.accounts() if name in map(account_for_lease, leases)] == [
        account_for_lease(won[0])
    ]
    assert host.device(7) == (0, pwd.getpwnam(account_for_lease(won[0])).pw_gid, 0o660)
    host.delete(won[0])


def test_a_key_change_cut_short_still_closes_the_sessions_on_the_next_put(
    host: HostUnderTest, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease_id, other = host.lease_id(), host.public_key("bob")
    assert host.put(lease_id, gpu_indices=[2], ssh_public_keys=[key, other]).status_code == 200
    monkeypatch.setattr(processes, "close_ssh_sessions", _crash)
    assert host.put(lease_id, gpu_indices=[2], ssh_public_keys=[key]).status_code == 500
    closed: list[int] = []

    def close(uid: int) -> int:
        closed.append(uid)
        return 0

    monkeypatch.setattr(processes, "close_ssh_sessions", close)
    agent = restarted(host)
    agent.install_lease(lease_id, (2,), (key,))
    assert closed == [pwd.getpwnam(account_for_lease(lease_id)).pw_uid]
    assert agent.journal.get(account_for_lease(lease_id)).dropped_keys == ()
    agent.install_lease(lease_id, (2,), (key,))
    assert len(closed) == 1
    host.delete(lease_id)


def test_a_key_is_taken_away_even_while_nvml_is_down(host: HostUnderTest, key: str) -> None:
    lease_id = host.lease_id()
    assert (
        host.put(lease_id, gpu_indices=[3], ssh_public_keys=[key, host.public_key("bob")]).status_code == 200
    )
    host.nvml.driver_error = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    try:
        assert host.client.get(f"{host.url}/v1/gpus").json()["degraded"] is True
        response = host.put(lease_id, gpu_indices=[3], ssh_public_keys=[key])
    finally:
        host.nvml.driver_error = None
    assert response.status_code == 200, response.text
    assert (home(host, lease_id) / ".ssh" / "authorized_keys").read_text() == key + "\n"
    host.delete(lease_id)
