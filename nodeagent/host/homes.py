"""Files the agent writes into a lease's home, which the tenant controls: never follow their links.

A tenant can replace ~/.ssh with a link to /root/.ssh; written by path, root would then put the
tenant's keys into root's authorized_keys. Every step below opens folders by descriptor with
O_NOFOLLOW, replaces whatever is not a folder of the account, and writes through a temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from nodeagent.host.accounts import Account

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def write(account: Account, parts: tuple[str, ...], text: str, mode: int = 0o600) -> bool:
    """Write home/<parts> as the account's own file; whether its content or mode changed."""
    fd = _folder(account, parts[:-1])
    try:
        name, data = parts[-1], text.encode()
        if _current(fd, name) == (data, mode, account.uid):
            return False
        tmp = f".{name}.voltpark-new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=fd)
        out = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd
        )
        try:
            os.write(out, data)
            os.fchown(out, account.uid, account.gid)
            os.fchmod(out, mode)
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        return True
    finally:
        os.close(fd)


def read(account: Account, parts: tuple[str, ...]) -> bytes | None:
    """The content of home/<parts> when it is a regular file, else None (never through a link)."""
    try:
        fd = _folder(account, parts[:-1], make=False)
    except FileNotFoundError:
        return None
    try:
        current = _current(fd, parts[-1])
        return None if current is None else current[0]
    finally:
        os.close(fd)


def remove(account: Account, parts: tuple[str, ...]) -> bool:
    """Remove home/<parts> (a file) if it is there; whether it was."""
    try:
        fd = _folder(account, parts[:-1], make=False)
    except FileNotFoundError:
        return False
    try:
        os.unlink(parts[-1], dir_fd=fd)
        return True
    except (FileNotFoundError, IsADirectoryError):
        return False
    finally:
        os.close(fd)


def _folder(account: Account, parts: tuple[str, ...], *, make: bool = True) -> int:
    """A descriptor of home/<parts>, each folder the account's own and 0700 (made when missing)."""
    fd = os.open(account.home, DIR_FLAGS)
    try:
        for part in parts:
            child = _subfolder(fd, part, account, make)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _subfolder(parent: int, name: str, account: Account, make: bool) -> int:
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError as error:
        if error.errno == errno.ENOENT and not make:
            raise FileNotFoundError(name) from None
        if error.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            raise
        # Missing, or a link or file where the folder should be: put the folder there.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent)
        os.mkdir(name, 0o700, dir_fd=parent)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    os.fchown(fd, account.uid, account.gid)
    os.fchmod(fd, 0o700)
    return fd


def _current(folder: int, name: str) -> tuple[bytes, int, int] | None:
    """Content, mode and owner of a regular file in the folder; None for anything else."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 1 << 20:
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(), stat.S_IMODE(info.st_mode), info.st_uid
    finally:
        os.close(fd)
