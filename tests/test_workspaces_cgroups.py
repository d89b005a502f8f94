"""cgroup v1/v2 behind one interface. The real host hierarchy (v1 here) is exercised by the
sandbox tests; v2 is checked on a *fake* hierarchy in a temporary directory (plain files, no
kernel) for the values it writes, since this host cannot mount a v2 tree with controllers."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalibrary.workspaces import cgroups


def test_fake_v2_hierarchy_gets_limits_and_freeze(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "ROOT", tmp_path)
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    assert cgroups.host_version() == 2
    group = cgroups.cgroup_for("dltest-ws-1")
    assert isinstance(group, cgroups.CGroupV2)
    group.create(cpus=1.5, memory_bytes=512 * 2**20)
    directory = tmp_path / "datalibrary" / "dltest-ws-1"
    assert (directory / "memory.max").read_text() == str(512 * 2**20)
    assert (directory / "cpu.max").read_text() == "150000 100000"
    assert "+memory" in (tmp_path / "datalibrary" / "cgroup.subtree_control").read_text()
    (directory / "cgroup.events").write_text("populated 1\nfrozen 1\n")  # what the kernel would report
    group.freeze(True)
    assert (directory / "cgroup.freeze").read_text() == "1" and group.is_frozen()
    (directory / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    assert group.cpu_seconds() == 2.5
    assert [str(p) for p in group.procs_files()] == [str(directory / "cgroup.procs")]


def test_no_hierarchy_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datalibrary.errors import Unavailable

    monkeypatch.setattr(cgroups, "ROOT", tmp_path)
    assert cgroups.host_version() is None
    with pytest.raises(Unavailable, match="process"):
        cgroups.cgroup_for("x")


def test_the_host_hierarchy_is_detected() -> None:
    version = cgroups.host_version()
    if version is None:
        pytest.skip("no writable cgroup hierarchy on this host")
    assert version in (1, 2)
