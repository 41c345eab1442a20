"""Linux accounts and groups of leases, made and removed with shadow-utils (useradd, userdel)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from nodeagent.host.errors import host_failed, run

# useradd/groupadd: "name already in use"; userdel/groupdel: "does not exist".
EXISTS = 9
MISSING = 6


@dataclass(frozen=True)
class Account:
    """A lease's Linux account as the system knows it."""

    name: str
    uid: int
    gid: int
    home: Path


def lookup(name: str) -> Account | None:
    """The account of this name, or None."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def group_exists(name: str) -> bool:
    """Whether a group of this name exists."""
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def ensure_group(name: str) -> bool:
    """Make the group unless it exists; whether it was made."""
    if group_exists(name):
        return False
    # Another agent run (or a test) may make it between the check and here: exit 9 is fine.
    return run(["groupadd", name], ok_codes=(0, EXISTS)) == 0


def create(name: str, *, home: Path, shell: str, tenants_group: str) -> tuple[Account, bool]:
    """The lease's group and account, made unless they exist: home 0700, no password to log in with."""
    made = ensure_group(name)
    if lookup(name) is None:
        run(
            [
                "useradd",
                "--gid", name,
                "--groups", tenants_group,
                "--home-dir", str(home),
                "--create-home",
                "--shell", shell,
                # '*' matches no password, yet is not a locked account ('!'): sshd still takes keys.
                "--password", "*",
                "--comment", "Voltpark lease",
                name,
            ]
        )  # fmt: skip
        made = True
    account = lookup(name)
    if account is None:
        raise host_failed(f"useradd reported success but there is no account {name}.")
    if os.stat(account.home).st_mode & 0o777 != 0o700:
        # Another lease on the node must not read this one's files.
        os.chmod(account.home, 0o700)
        made = True
    return account, made


def lock(name: str) -> None:
    """Expire the account: sshd refuses it from now on, whatever keys are left."""
    run(["usermod", "--expiredate", "1", name])


def remove(name: str) -> bool:
    """Remove the account and its group (the home is deleted by the caller); whether anything went."""
    removed = False
    if lookup(name) is not None:
        run(["userdel", name], ok_codes=(0, MISSING))
        removed = True
    if group_exists(name):
        run(["groupdel", name], ok_codes=(0, MISSING))
        removed = True
    return removed


def delete_tree(path: Path, *, parent: Path) -> bool:
    """Delete a folder the agent made for a lease (home, scratch) without following any link in it."""
    if path.parent != parent or path.is_symlink() or not path.exists():
        return False
    # rmtree opens each folder by descriptor (avoids_symlink_attacks on Linux): a link a tenant left
    # inside is removed, never followed.
    shutil.rmtree(path)
    return True
