"""The ``sandbox`` provisioner: JupyterLab in a bubblewrap sandbox inside its own cgroup.

The sandbox has its own mount, PID, IPC, UTS, user and network namespaces; the network
namespace has only loopback, so nothing outside is reachable (the platform's TCP port
included). The file system is built from scratch: the host's /usr and /etc read-only (with
/etc/shadow hidden), the shared environment and the SDK read-only, the persistent home,
a private /tmp, the directory where JupyterLab's socket lives, and the directory of the
platform's API socket. Nothing else of the host (other homes, the state directory, the lake,
the database) exists inside. The cgroup carries the instance type's CPU quota and memory
limit and is frozen to pause.

The sandbox never runs as host root: bubblewrap itself runs as the workspace's own
unprivileged host uid (``workspaces.sandbox_uid_base`` + workspace id), so its user namespace
maps the sandbox user to that uid and every file it creates belongs to it. Bubblewrap opens
its bind sources as that uid, and they live under the 0700 state directory; so each launch
first gets a private mount namespace in which root bind-mounts exactly those sources onto a
fresh tmpfs at ``STAGE_DIR`` (nothing appears on the host), then drops to the uid and starts
bubblewrap from there. The home and run directories are owned by the uid.

The sandbox does not die with the platform: after a restart, ``load_state`` + ``poll``
re-adopt it through its cgroup.

A warm-pool member (``spec.pooled``) starts the same way but with an empty tmpfs as its home
and none of the user's variables: nothing of anyone is inside. When a launch takes it,
``start`` finds it running and assigns it: the workspace's home is mounted over that tmpfs
inside the running sandbox (``homebind``) and the token reaches JupyterLab over its socket
(``jupyter.assign``); both work once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from datalibrary.workspaces import homebind, jupyter, platform_services, procs
from datalibrary.workspaces.cgroups import CGroup, CGroupV1, CGroupV2, cgroup_for
from datalibrary.workspaces.provisioners import Capabilities, Provisioner, Status

HOME = "/home/jovyan"
RUN = "/run/workspace"
API = "/run/datalibrary"
ENV = "/opt/datalibrary/env"
SDK = "/opt/datalibrary/sdk"
UID = 1000
HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
HIDDEN_DIRS = ("/etc/ssl/private",)
JOIN_CGROUP = (
    'IFS=:; for f in $DL_CGROUP_PROCS; do echo $$ > "$f"; done; unset DL_CGROUP_PROCS IFS; exec "$@"'
)
POOL_HOME_BYTES = 64 * 1024 * 1024  # the placeholder home of an unassigned pool member
STAGE_DIR = Path("/run/datalibrary-sandbox")  # an empty mount point on the host
# Run in a private mount namespace as root: $0 is STAGE_DIR, then NAME SOURCE pairs, --, command.
STAGE = (
    'mount -t tmpfs -o mode=0755,size=1m dl-stage "$0" || exit 1; '
    'while [ "$1" != -- ]; do t="$0/$1"; if [ -d "$2" ]; then mkdir "$t"; else : > "$t"; fi; '
    'mount --bind "$2" "$t" || exit 1; shift 2; done; shift; exec "$@"'
)


class SandboxProvisioner(Provisioner):
    name = "sandbox"
    capabilities = Capabilities(memory=True, cpu=True, network_isolation=True)
    isolated = True

    def __init__(self, spec) -> None:  # type: ignore[no-untyped-def]
        super().__init__(spec)
        self.cgroup_name = f"{spec.installation}-ws-{spec.workspace_id}"
        self.cgroup_version: int | None = None
        self.pid: int | None = None
        self.pool: str | None = None  # "waiting": a pool member not assigned yet

    # --- state ----------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"cgroup": self.cgroup_name}
        if self.cgroup_version:
            state["cgroup_version"] = self.cgroup_version
        if self.pid:
            state["pid"] = self.pid
        if self.pool:
            state["pool"] = self.pool
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.cgroup_name = state.get("cgroup", self.cgroup_name)
        self.cgroup_version = state.get("cgroup_version")
        self.pid = state.get("pid")
        self.pool = state.get("pool")

    @property
    def cgroup(self) -> CGroup:
        if self.cgroup_version == 1:
            return CGroupV1(self.cgroup_name)
        if self.cgroup_version == 2:
            return CGroupV2(self.cgroup_name)
        group = cgroup_for(self.cgroup_name)
        self.cgroup_version = group.version
        return group

    def _alive(self) -> bool:
        if self.pid:
            procs.reap(self.pid)
        return bool(self.cgroup.exists() and self.cgroup.pids())

    async def poll(self) -> Status:
        group = self.cgroup
        if not (group.exists() and group.pids()):
            return Status.STOPPED
        return Status.PAUSED if group.is_frozen() else Status.RUNNING

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        spec = self.spec
        if self._alive():  # already running (a repeated start): just wait until it answers
            if self.pool == "waiting" and not spec.pooled:
                await self._assign()
            await jupyter.wait_ready(spec.socket_path, spec.base_url, spec.jupyter_token, 60, self._alive)
            return
        for directory in (spec.run_dir,) if spec.pooled else (spec.home_dir, spec.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        spec.socket_path.unlink(missing_ok=True)
        group = self.cgroup
        group.kill_all()
        group.create(spec.cpus, spec.memory_bytes, spec.max_processes)
        sources = self._sources()
        log_path = spec.run_dir.parent / f"{spec.run_dir.name}.log"
        env = {"DL_CGROUP_PROCS": ":".join(str(p) for p in group.procs_files()), "PATH": "/usr/bin:/bin"}
        # the sandbox's variables (the proxy secret, the token) reach bubblewrap through a file
        # descriptor (--args), never its command line: /proc/<pid>/cmdline is readable by every
        # user of the host, and inside the sandbox by user code (bubblewrap is its pid 1)
        variables = os.memfd_create("dl-sandbox-env", 0)
        try:
            os.write(variables, self._env_args())
            os.lseek(variables, 0, os.SEEK_SET)
            command = ["/bin/sh", "-c", JOIN_CGROUP, "sh", *self._as_host_uid(sources, variables)]
            with open(log_path, "ab") as log:
                process = subprocess.Popen(  # noqa: S603
                    command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, pass_fds=(variables,),
                )  # fmt: skip
        finally:
            os.close(variables)
        self.pid = process.pid
        self.pool = "waiting" if spec.pooled else None
        await jupyter.wait_ready(
            spec.socket_path, spec.base_url, spec.jupyter_token, 60, self._launching(process), log_path
        )

    async def _assign(self) -> None:
        """Bind this waiting pool sandbox to its workspace: the home, then the token."""
        spec = self.spec
        if spec.host_uid is not None and os.geteuid() == 0:
            own_tree(spec.home_dir, spec.host_uid)
        else:
            spec.home_dir.mkdir(parents=True, exist_ok=True)
        pid = homebind.inner_pid(self.cgroup.pids())
        await asyncio.to_thread(homebind.bind, spec.home_dir, pid, HOME)
        self.pool = "assigning"  # the home is in: never mount a second one
        token_env = platform_services.token_env(spec.env.get("DATALIBRARY_TOKEN"))
        await jupyter.assign(spec.socket_path, spec.base_url, spec.jupyter_token, token_env)
        self.pool = None

    def _launching(self, process: subprocess.Popen[bytes]):  # type: ignore[no-untyped-def]
        def alive() -> bool:
            return process.poll() is None

        return alive

    async def stop(self) -> None:
        group = self.cgroup
        if group.exists():
            if group.is_frozen():
                group.freeze(False)
            for pid in group.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            for _ in range(50):  # up to 1 s for JupyterLab to shut its kernels down
                if not group.pids():
                    break
                await asyncio.sleep(0.02)
            await asyncio.to_thread(group.kill_all)
            group.remove()
        if self.pid:
            procs.reap(self.pid)
        self.pid = None
        self.pool = None
        self.spec.socket_path.unlink(missing_ok=True)

    async def pause(self) -> None:
        self.cgroup.freeze(True)

    async def resume(self) -> None:
        self.cgroup.freeze(False)

    def cpu_seconds(self) -> float | None:
        group = self.cgroup
        return group.cpu_seconds() if group.exists() else None

    def memory_bytes(self) -> int | None:
        group = self.cgroup
        return group.memory_bytes() if group.exists() else None

    # --- the sandbox ------------------------------------------------------------------

    def _sources(self) -> dict[str, Path]:
        """What the sandbox mounts from the host, by name."""
        spec = self.spec
        passwd, group = self._identity_files()
        sources = {
            "passwd": passwd,
            "group": group,
            "run": spec.run_dir,
            "env": spec.environment_dir,
            "sdk": spec.sdk_dir,
        }
        if not spec.pooled:  # a pool member has no home until it is assigned
            sources["home"] = spec.home_dir
        if spec.api_socket_dir.is_dir():
            sources["api"] = spec.api_socket_dir
        return sources

    def _as_host_uid(self, sources: dict[str, Path], variables: int) -> list[str]:
        """The bubblewrap command, run as the workspace's host uid from staged sources."""
        uid = self.spec.host_uid
        if uid is None or os.geteuid() != 0:
            return self.bwrap_args(sources, variables)
        for name in ("home", "run"):
            if name in sources:
                own_tree(sources[name], uid)
        STAGE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        pairs = [item for name, path in sources.items() for item in (name, str(path))]
        staged = {name: STAGE_DIR / name for name in sources}
        return [
            "unshare", "--mount", "--propagation", "private",
            "/bin/sh", "-c", STAGE, str(STAGE_DIR), *pairs, "--",
            "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            *self.bwrap_args(staged, variables),
        ]  # fmt: skip

    def _identity_files(self) -> tuple[Path, Path]:
        """/etc/passwd and /etc/group naming the sandbox user (the host's stay hidden)."""
        directory = self.spec.run_dir.parent / f"{self.spec.run_dir.name}.etc"
        directory.mkdir(parents=True, exist_ok=True)
        passwd = directory / "passwd"
        passwd.write_text(f"root:x:0:0:root:/root:/bin/sh\njovyan:x:{UID}:{UID}:jovyan:{HOME}:/bin/bash\n")
        group = directory / "group"
        group.write_text(f"root:x:0:\njovyan:x:{UID}:\n")
        return passwd, group

    def bwrap_args(self, sources: dict[str, Path], variables: int) -> list[str]:
        """Every writable mount (home, run directory, tmpfs) is nosuid,nodev: bubblewrap mounts
        binds and tmpfs that way (the attack tests read /proc/self/mountinfo to prove it)."""
        spec = self.spec
        if "home" in sources:
            home = ["--bind", str(sources["home"]), HOME]
        else:  # an unassigned pool member: an empty placeholder, the real home comes later
            home = ["--size", str(POOL_HOME_BYTES), "--tmpfs", HOME]
        args = [
            "bwrap",
            "--unshare-user", "--uid", str(UID), "--gid", str(UID),
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", f"workspace-{spec.workspace_id}",
            "--new-session",
            "--cap-drop", "ALL",
            "--ro-bind", "/usr", "/usr",
        ]  # fmt: skip
        for name in ("bin", "lib", "lib64", "sbin"):
            path = Path("/") / name
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), f"/{name}"]
            elif path.is_dir():
                args += ["--ro-bind", str(path), f"/{name}"]
        args += ["--ro-bind", "/etc", "/etc"]
        for hidden in HIDDEN_FILES:
            if Path(hidden).exists():
                args += ["--ro-bind", "/dev/null", hidden]
        for hidden in HIDDEN_DIRS:
            if Path(hidden).is_dir():
                args += ["--tmpfs", hidden]
        args += [
            "--ro-bind", str(sources["passwd"]), "/etc/passwd",
            "--ro-bind", str(sources["group"]), "/etc/group",
            "--proc", "/proc",
            "--dev", "/dev",
            "--tmpfs", "/tmp",  # noqa: S108
            "--tmpfs", "/dev/shm",  # noqa: S108
            *home,
            "--bind", str(sources["run"]), RUN,
            "--ro-bind", str(sources["env"]), ENV,
            "--ro-bind", str(sources["sdk"]), SDK,
        ]  # fmt: skip
        if "api" in sources:
            args += ["--ro-bind", str(sources["api"]), API]
        args += ["--chdir", HOME, "--clearenv", "--args", str(variables)]  # then _env_args
        args += [
            "--",
            *platform_services.wrap(
                jupyter.jupyter_command(
                    f"{ENV}/venv/bin/python", f"{RUN}/jupyter.sock", spec.base_url, HOME, SDK
                ),
                f"{ENV}/venv/bin/python",
                SDK,
            ),
        ]
        return args

    def _env_args(self) -> bytes:
        """The sandbox's environment as bubblewrap's NUL-separated ``--setenv`` arguments."""
        spec = self.spec
        env = {
            "HOME": HOME,
            "USER": "jovyan",
            "SHELL": "/bin/bash",
            "PATH": f"{ENV}/venv/bin:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": SDK,
            "R_LIBS": f"{SDK}/rlib",  # library(datalibrary); R_LIBS_USER is the home library
            # kernels' connection files: private, and not under a home a pool member gets later
            "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",  # noqa: S108 - the sandbox's private /tmp
            jupyter.SECRET_ENV: spec.jupyter_token,
            **spec.env,
            # inside, the SDK reaches the platform through the mounted socket
            "DATALIBRARY_URL": f"unix://{API}/api.sock",
        }
        if spec.pooled:
            env[jupyter.POOL_ENV] = "waiting"
        env = platform_services.extend(env, spec, run=RUN, home=HOME, env_dir=ENV)
        return b"".join(f"--setenv\0{key}\0{value}\0".encode() for key, value in env.items())


def own_tree(directory: Path, uid: int) -> None:
    """Give ``directory`` and everything in it to ``uid`` (symbolic links themselves, never
    their targets); a tree already owned by it is left alone after one check of the top."""
    directory.mkdir(parents=True, exist_ok=True)
    top = directory.stat()
    if top.st_uid == uid and top.st_gid == uid:
        return
    for parent, directories, files in os.walk(directory):
        for name in (*directories, *files):
            os.lchown(os.path.join(parent, name), uid, uid)
    os.chown(directory, uid, uid)
