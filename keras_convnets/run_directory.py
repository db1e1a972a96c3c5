"""One run per output directory: ``OUT/.lock`` names the process that owns it (pid and host).

The lock file is written in full under a temporary name and hard-linked into place, so it exists only complete and
only one process can create it (``link`` fails when the name exists). A lock whose owner is a process of this host
that no longer exists is stale (the owner was killed) and is taken over; a lock of another host cannot be checked
from here, so it is refused with the file's path to delete by hand.
"""

import contextlib
import json
import os
import socket
import time

LOCK_FILE = ".lock"


class RunLockedError(ValueError):
    """Another live process is running into the same output directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _owner(path):
    try:
        with open(path) as f:
            owner = json.load(f)
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def acquire(out: str) -> str:
    """Takes ``out``'s lock for this process (taking over a stale one) and returns its path; a
    :class:`RunLockedError` naming the owner when a live process holds it."""
    path = os.path.join(out, LOCK_FILE)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    tmp = f"{path}.{me['pid']}.tmp"
    with open(tmp, "w") as f:
        json.dump(me, f)
    try:
        for _ in range(2):
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                owner = _owner(path)
                pid, host = owner.get("pid"), owner.get("host")
                if host == me["host"] and isinstance(pid, int) and not _alive(pid):
                    print(f"Removing the stale lock of process {pid} (no longer running): {path}", flush=True)
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path)
                    continue
                who = f"process {pid} on {host}" if pid else "another process"
                raise RunLockedError(f"{out} is in use by {who} (lock {path}); wait for it, choose another --out, or "
                                     "delete the lock if that run is gone") from None
        raise RunLockedError(f"{out}: could not take the lock {path}; retry")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def release(path: str) -> None:
    """Removes a lock taken by :func:`acquire` if this process still owns it."""
    if _owner(path).get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def held(out: str):
    """``out``'s lock for the duration of a ``with`` block."""
    path = acquire(out)
    try:
        yield path
    finally:
        release(path)
