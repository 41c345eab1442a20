"""The host backend on this machine, against a real OpenSSH server, proved with real ssh logins.

Runs as root (it makes and removes real Linux accounts); every account, group and file it makes
carries a prefix unique to the run and is removed even when a test fails.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator

import pytest

from nodeagent.host import processes
from nodeagent.protocol import account_for_lease
from tests.nodeagent.hosts import HostUnderTest, make_host

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the host backend makes Linux accounts: run as root"
)


@pytest.fixture(scope="module")
def host() -> Iterator[HostUnderTest]:
    """sshd with the shipped settings and the agent's host backend, for the whole module."""
    made = make_host(with_sshd=True)
    yield made
    made.close()


def start(host: HostUnderTest, gpus: list[int], *people: str) -> str:
    """A new lease on the host with the people's keys; its id."""
    lease_id = host.lease_id()
    response = host.put(lease_id, gpu_indices=gpus, ssh_public_keys=[host.public_key(p) for p in people])
    assert response.status_code == 200, response.text
    return lease_id


def test_the_leases_account_logs_in_with_its_key_and_no_other(host: HostUnderTest) -> None:
    lease = start(host, [0], "alice")
    account = pwd.getpwnam(account_for_lease(lease))
    login = host.ssh(lease, "alice", "id -un; echo $HOME; echo $CUDA_VISIBLE_DEVICES")
    assert login.returncode == 0, login.stderr
    assert login.stdout.split() == [account.pw_name, account.pw_dir, "0"]
    refused = host.ssh(lease, "bob", "id -un")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr
    assert refused.stdout == ""
    host.delete(lease)


def test_the_keys_file_and_home_have_the_modes_sshd_demands(host: HostUnderTest) -> None:
    lease = start(host, [1], "alice")
    account = pwd.getpwnam(account_for_lease(lease))
    home = host.settings.home_root / account.pw_name
    for path, mode in ((home, 0o700), (home / ".ssh", 0o700), (home / ".ssh" / "authorized_keys", 0o600)):
        info = os.lstat(path)
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (account.pw_uid, account.pw_gid, mode), (
            path
        )
    with open("/etc/shadow") as shadow:
        password = next(line.split(":")[1] for line in shadow if line.startswith(account.pw_name + ":"))
    assert password == "*"
    host.delete(lease)


def test_it_opens_its_own_gpus_and_not_another_leases_on_the_node(host: HostUnderTest) -> None:
    first, second = start(host, [2, 3], "alice"), start(host, [4], "bob")
    dev = host.device_dir
    opens = "; ".join(
        f"(: < {dev}/nvidia{i}) 2>/dev/null && echo {i}:yes || echo {i}:no" for i in (2, 3, 4, 7)
    )
    assert host.ssh(first, "alice", opens).stdout.split() == ["2:yes", "3:yes", "4:no", "7:no"]
    assert host.ssh(second, "bob", opens).stdout.split() == ["2:no", "3:no", "4:yes", "7:no"]
    host.delete(first)
    host.delete(second)


def test_a_second_lease_cannot_read_the_first_ones_home(host: HostUnderTest) -> None:
    first, second = start(host, [5], "alice"), start(host, [6], "bob")
    home = host.settings.home_root / account_for_lease(first)
    assert host.ssh(first, "alice", "echo secret > ~/notes.txt").returncode == 0
    snoop = host.ssh(second, "bob", f"cat {home}/notes.txt; ls {home}")
    assert snoop.returncode != 0
    assert "secret" not in snoop.stdout and "Permission denied" in snoop.stderr
    host.delete(first)
    host.delete(second)


def test_a_key_revoked_from_a_live_lease_stops_working(host: HostUnderTest) -> None:
    lease = start(host, [0], "alice", "bob")
    assert host.ssh(lease, "bob", "true").returncode == 0
    open_session = host.ssh_in_background(lease, "bob", "echo in; sleep 60")
    assert open_session.stdout.readline().strip() == "in"
    response = host.put(lease, gpu_indices=[0], ssh_public_keys=[host.public_key("alice")])
    assert response.status_code == 200
    assert (response.json()["changed"], response.json()["sessions_closed"]) == (True, 1)
    # Bob's open connection is closed too, not only his next log-in refused.
    assert open_session.wait(timeout=10) != 0
    assert host.ssh(lease, "bob", "true").returncode == 255
    assert host.ssh(lease, "alice", "true").returncode == 0
    host.delete(lease)


def test_after_the_end_nothing_of_the_lease_is_left(host: HostUnderTest) -> None:
    lease = start(host, [1], "alice")
    account = pwd.getpwnam(account_for_lease(lease))
    dev, tmp, spool = host.device_dir, host.settings.tmp_dirs[0], host.settings.spool_dirs[0]
    # One job that ends on TERM, one that ignores it (KILL after the grace), both holding the GPU.
    work = (
        f"setsid nohup sleep 300 < {dev}/nvidia1 > /dev/null 2>&1 & "
        f"setsid nohup bash -c 'trap \"\" TERM; exec sleep 300' < {dev}/nvidia1 > /dev/null 2>&1 & "
        f"echo x > {tmp}/left-behind; echo '* * * * * true' > {spool}/{account.pw_name}; "
        f"echo x > $HOME/../{account.pw_name}/.cache-file; sleep 0.3"
    )
    assert host.ssh(lease, "alice", work).returncode == 0
    assert len(host.nvml.holders(1)) == 2
    response = host.delete(lease)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["gpus_clean"], body["changed"]) == (True, True)
    assert body["processes_stopped"] >= 2
    assert host.ssh(lease, "alice", "true").returncode == 255
    assert processes.account_pids(account.pw_uid) == set() and host.nvml.holders(1) == []
    assert account.pw_name not in host.accounts() and account.pw_name not in host.groups()
    assert not (host.settings.home_root / account.pw_name).exists()
    assert not (host.settings.scratch_root / account.pw_name).exists()
    assert not (tmp / "left-behind").exists() and not (spool / account.pw_name).exists()
    assert host.device(1) == (0, 0, 0o600)
    again = host.delete(lease).json()
    assert (again["changed"], again["gpus_clean"], again["processes_stopped"]) == (False, True, 0)
