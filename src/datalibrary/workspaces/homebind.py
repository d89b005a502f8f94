"""Mount a home into a sandbox that is already running (a warm-pool member being assigned).

A pool sandbox starts with an empty tmpfs as its home, so nobody's files are inside before a
launch takes it. At assignment the workspace's home directory is cloned as a detached mount
(``open_tree``), made ``nosuid,nodev`` (``mount_setattr``), and attached on top of the
sandbox's home (``setns`` into the sandbox's mount namespace, then ``move_mount``). Nothing
appears in the host's mount table, and the sandbox's processes see the home at the same path.

``setns`` into a mount namespace needs a single-threaded process, so the work runs in a
short-lived helper (``python -I``, standard library only, no platform code imported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from datalibrary.errors import Unavailable

# x86_64 and aarch64 share these numbers (the "new mount API", Linux >= 5.12 for mount_setattr).
HELPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
OPEN_TREE, MOVE_MOUNT, MOUNT_SETATTR = 428, 429, 442
AT_FDCWD, AT_EMPTY_PATH, AT_RECURSIVE = -100, 0x1000, 0x8000
OPEN_TREE_CLONE, MOVE_MOUNT_F_EMPTY_PATH, CLONE_NEWNS = 1, 4, 0x00020000
NOSUID, NODEV = 0x2, 0x4
class Attr(ctypes.Structure):
    _fields_ = [("set", ctypes.c_uint64), ("clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]
def check(result, what):
    if result < 0:
        err = ctypes.get_errno()
        sys.exit(f"{what}: {os.strerror(err)}")
    return result
source, namespace, target = sys.argv[1], sys.argv[2], sys.argv[3]
tree = check(libc.syscall(OPEN_TREE, AT_FDCWD, source.encode(), OPEN_TREE_CLONE | os.O_CLOEXEC), "open_tree")
attr = Attr(NOSUID | NODEV, 0, 0, 0)
size = ctypes.sizeof(attr)
check(libc.syscall(MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr), size), "mount_setattr")
ns = os.open(namespace, os.O_RDONLY | os.O_CLOEXEC)
check(libc.setns(ns, CLONE_NEWNS), "setns")
check(libc.syscall(MOVE_MOUNT, tree, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH), "move_mount")
"""


def _namespace(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def inner_pid(pids: Iterable[int]) -> int:
    """A process inside the sandbox proper: in a user namespace other than the platform's
    (bubblewrap's outer process stays in ours; the sandbox's own processes do not)."""
    ours = _namespace(os.getpid(), "user")
    for pid in sorted(pids):
        theirs = _namespace(pid, "user")
        if theirs is not None and theirs != ours:
            return pid
    raise Unavailable("the pool sandbox has no process inside its namespaces; it is discarded")


def bind(source: Path, pid: int, target: str) -> None:
    """Mount ``source`` (a host directory) at ``target`` inside the mount namespace of ``pid``."""
    namespace = f"/proc/{pid}/ns/mnt"
    result = subprocess.run(  # noqa: S603 - fixed program, arguments are paths
        [sys.executable, "-I", "-c", HELPER, str(source), namespace, target],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise Unavailable(f"could not mount the home into the sandbox: {result.stderr.strip()[-300:]}")
