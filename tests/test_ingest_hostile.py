"""Hostile deliveries (issue 22): the landing folder, resource limits, fan-out, structure.

Each test reproduces an attack and checks the promised outcome: a clear quarantine reason,
nothing partial, nothing changed outside the state directory, the server unharmed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from datalibrary.ingest.watch import LandingWatcher
from datalibrary.ingest.worker import run_pending
from tests.helpers import Platform
from tests.lake_helpers import add_policy
from tests.test_ingest_api import csv_bytes


def _age(path: Path) -> None:
    old = time.time() - 60
    os.utime(path, (old, old), follow_symlinks=False)


def _landing(platform: Platform, namespace: str = "site1", table: str = "vitals") -> Path:
    folder = platform.settings.home / "landing" / namespace / table
    folder.mkdir(parents=True)
    (folder / "POLICY").write_text("keep-all\n")
    return folder


def test_landing_folder_never_follows_symlinks(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    add_policy(platform)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.csv"
    victim.write_bytes(csv_bytes({"ID": ["a"], "V": [1]}))
    victim.chmod(0o644)
    folder = _landing(platform)
    (folder / "linked.csv").symlink_to(victim)
    linked_dir = outside / "tree"
    (linked_dir / "t").mkdir(parents=True)
    inside_linked = linked_dir / "t" / "x.csv"
    inside_linked.write_bytes(csv_bytes({"ID": ["b"], "V": [2]}))
    (linked_dir / "t" / "POLICY").write_text("keep-all\n")
    (platform.settings.home / "landing" / "evil").symlink_to(linked_dir)
    (folder.parent / "linkedtable").symlink_to(linked_dir / "t")
    for path in (folder / "linked.csv", inside_linked):
        _age(path)
    _age(victim)
    watcher = LandingWatcher(platform.settings, platform.db)
    assert watcher.scan() == [] and watcher.scan() == []
    assert victim.exists() and (victim.stat().st_mode & 0o777) == 0o644, "the target is untouched"
    assert inside_linked.exists(), "files of a linked folder are not moved out"
    assert (folder / "linked.csv").is_symlink()
    assert run_pending(platform.settings, platform.db) == []


def test_landing_refuses_a_link_swapped_in_after_the_scan(sqlite_platform: Platform, tmp_path: Path) -> None:
    from datalibrary.ingest import landing

    platform = sqlite_platform
    victim = tmp_path / "victim.csv"
    victim.write_bytes(b"ID\na\n")
    victim.chmod(0o644)
    link = tmp_path / "drop.csv"
    link.symlink_to(victim)
    try:
        landing.land(platform.settings, "j1", link, "drop.csv", move=True)
        raise AssertionError("a symbolic link was taken over")
    except landing.NotOurs:
        pass
    assert (victim.stat().st_mode & 0o777) == 0o644 and link.is_symlink()
