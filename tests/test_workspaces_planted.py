"""Files a workspace plants in the directories it owns never steer what the platform (root)
writes or changes on the host: symbolic links are replaced or changed themselves, never
followed."""

from __future__ import annotations

import os
from pathlib import Path

from datalibrary.workspaces import platform_services
from datalibrary.workspaces.provisioners import WorkspaceSpec
from datalibrary.workspaces.sandbox import own_tree


def _spec(tmp_path: Path) -> WorkspaceSpec:
    return WorkspaceSpec(
        workspace_id=7,
        owner="1",
        cpus=1,
        memory_bytes=512 << 20,
        environment_dir=tmp_path / "env",
        home_dir=tmp_path / "home",
        run_dir=tmp_path / "run",
        sdk_dir=tmp_path / "sdk",
        api_socket_dir=tmp_path / "api",
        base_url="/workspaces/7/",
        jupyter_token="t",
        env={"DATALIBRARY_TOKEN": "dl_ws_x"},
    )


def test_config_files_replace_planted_links_instead_of_writing_their_targets(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    spec.run_dir.mkdir()
    victims = {}
    for name in ("gitconfig", "uv.toml"):
        victim = tmp_path / f"host-{name}"
        victim.write_text("host file\n")
        (spec.run_dir / name).symlink_to(victim)
        victims[name] = victim
    platform_services.prepare(spec, run="/run/workspace", home="/home/jovyan", env_dir="/opt/env")
    for name, victim in victims.items():
        assert victim.read_text() == "host file\n", f"{name}: the planted link's target was written"
        written = spec.run_dir / name
        assert not written.is_symlink() and written.is_file() and written.stat().st_size > 0
    assert [p.name for p in spec.run_dir.iterdir() if p.name.startswith(".dl-")] == []


def test_giving_a_home_to_the_sandbox_uid_changes_links_not_their_targets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "sub").mkdir(parents=True)
    (home / "sub" / "notebook.ipynb").write_text("{}")
    victim = tmp_path / "host-secret"
    victim.write_text("root's\n")
    (home / "sub" / "link").symlink_to(victim)
    (home / "dirlink").symlink_to(tmp_path)
    uid = 200_123
    own_tree(home, uid)
    assert victim.stat().st_uid == os.geteuid() and tmp_path.stat().st_uid == os.geteuid()
    sub = home / "sub"
    for path in (home, sub, sub / "notebook.ipynb", sub / "link", home / "dirlink"):
        assert path.lstat().st_uid == uid, path
