"""A real OpenLDAP slapd for tests: generated slapd.conf (mdb backend, Debian's schemas), a
free loopback port, test entries loaded with ldap3, stopped at the end. Not a mock."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from ldap3 import MODIFY_DELETE, Connection, Server

SLAPD = "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-Secret-42"  # noqa: S105 - a throw-away test directory
READER_DN = f"cn=reader,ou=services,{SUFFIX}"
READER_PASSWORD = "reader-Secret-42"  # noqa: S105
USER_PASSWORD = "Ldap-Pass-2024!"  # noqa: S105

CONFIG = """
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/nis.schema
modulepath {modules}
moduleload back_mdb
moduleload memberof
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
database mdb
maxsize 16777216
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {root}/data
# memberOf on user entries, as Active Directory has it
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
access to attrs=userPassword
  by anonymous auth
  by self write
  by * none
access to *
  by users read
  by * none
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SlapdServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SlapdServer:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        conf = self.root / "slapd.conf"
        conf.write_text(
            CONFIG.format(
                schema=SCHEMA_DIR,
                modules=MODULE_DIR,
                root=self.root,
                suffix=SUFFIX,
                rootdn=ROOT_DN,
                rootpw=ROOT_PASSWORD,
            )
        )
        # -d 0 keeps slapd in the foreground, so the fixture owns the process.
        self.process = subprocess.Popen(
            [SLAPD, "-f", str(conf), "-h", f"{self.url}/", "-d", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"slapd exited: {self.process.stderr.read().decode()[-2000:]}"
                    ) from None  # type: ignore[union-attr]
                if time.monotonic() > deadline:
                    raise RuntimeError("slapd did not start within 15 s") from None
                time.sleep(0.05)
        self._load()
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root / "data", ignore_errors=True)

    def admin(self) -> Connection:
        return Connection(Server(self.url), ROOT_DN, ROOT_PASSWORD, auto_bind=True, raise_exceptions=True)

    def _load(self) -> None:
        with self.admin() as c:
            c.add(SUFFIX, ["dcObject", "organization"], {"o": "Example", "dc": "example"})
            for ou in ("people", "groups", "services"):
                c.add(f"ou={ou},{SUFFIX}", ["organizationalUnit"], {"ou": ou})
            c.add(
                READER_DN,
                ["organizationalRole", "simpleSecurityObject"],
                {"cn": "reader", "userPassword": READER_PASSWORD},
            )
            for uid, name in (("alice", "Alice Liddell"), ("bob", "Bob Builder"), ("carol", "Carol Danvers")):
                self.add_user(uid, name, connection=c)
            self.add_group("Data Scientists", ["alice"], connection=c)
            self.add_group("Auditors", ["carol"], connection=c)
            self.add_group("Canteen", ["bob", "alice"], connection=c)

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},ou=people,{SUFFIX}"

    def group_dn(self, cn: str) -> str:
        return f"cn={cn},ou=groups,{SUFFIX}"

    def add_user(self, uid: str, name: str, *, connection: Connection | None = None) -> None:
        c = connection or self.admin()
        c.add(
            self.user_dn(uid),
            ["inetOrgPerson"],
            {
                "uid": uid,
                "cn": name,
                "sn": name.split()[-1],
                "mail": f"{uid}@example.org",
                "userPassword": USER_PASSWORD,
            },
        )

    def add_group(self, cn: str, members: list[str], *, connection: Connection | None = None) -> None:
        c = connection or self.admin()
        c.add(self.group_dn(cn), ["groupOfNames"], {"cn": cn, "member": [self.user_dn(m) for m in members]})

    def remove_from_group(self, cn: str, uid: str) -> None:
        with self.admin() as c:
            c.modify(self.group_dn(cn), {"member": [(MODIFY_DELETE, [self.user_dn(uid)])]})

    def delete_user(self, uid: str) -> None:
        with self.admin() as c:
            c.delete(self.user_dn(uid))
