"""Building a workspace environment with a private package index: its address (which may hold
credentials) reaches uv through the environment, never its command line (readable by every
user of the host in /proc), and an error shows it masked."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from datalibrary.errors import Unavailable
from datalibrary.workspaces import environments
from datalibrary.workspaces.products import Environment

INDEX = "https://builder:s3cret-Pa55@mirror.example:8443/simple/"
FAKE_UV = """#!/bin/sh
echo "$@" >> "{log}/argv"
echo "index=$UV_INDEX_URL" >> "{log}/env"
case "$1" in
  venv) mkdir -p "$6/bin"; exit 0 ;;
  pip) echo "error: Failed to fetch: $UV_INDEX_URL jupyterlab/" >&2; exit 2 ;;
esac
"""


def test_the_index_address_stays_off_the_command_line_and_out_of_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "uv"
    fake.write_text(FAKE_UV.format(log=tmp_path))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(Unavailable) as refused:
        environments.build(tmp_path / "envs", Environment(name="python"), python="python3", index_url=INDEX)
    assert "s3cret-Pa55" not in str(refused.value) and "****@mirror.example:8443" in str(refused.value)
    assert "s3cret" not in (tmp_path / "argv").read_text()
    assert f"index={INDEX}" in (tmp_path / "env").read_text().splitlines()
    # no build left behind half-made
    assert not environments.is_built(tmp_path / "envs", Environment(name="python"))
    assert [p.name for p in (tmp_path / "envs").iterdir() if not p.name.endswith(".lock")] == []


def test_masking_keeps_addresses_without_credentials() -> None:
    assert environments._masked("https://pypi.org/simple/") == "https://pypi.org/simple/"
    assert environments._masked("https://tok@host/simple") == "https://****@host/simple"
