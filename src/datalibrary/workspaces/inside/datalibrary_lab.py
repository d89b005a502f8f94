"""JupyterLab as the platform starts it in a workspace: ``python <sdk>/datalibrary_lab.py
<options>`` is ``python -m jupyterlab <options>`` without one slow step, and run by path so
that the user's home (the working directory) is not on the server's ``sys.path``.

At import, JupyterLab asks yarn for its npm registry (``node yarn.js config list``, for the
extension manager's npm source) whenever Node.js is on the PATH, as it is on any host with
``/usr/bin/node``: 0.36 s of every start measured here, on the path of every launch, start
and warm-pool refill. Workspaces never build JupyterLab (the environment is read-only) and
reach no npm registry, so the answer JupyterLab uses when Node.js is absent (no yarn
configuration) is the right one; Node.js itself stays available to the user.

Copied into the workspace next to the SDK (``paths.staged_sdk``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# While the server starts, Jupyter's configuration directory is this read-only one of the
# platform's, not ~/.jupyter: jupyter_server runs ~/.jupyter/jupyter_server_config.py (and
# jupyter_lab_config.py, jupyter_config.py) as code inside the server, and reads JSON there
# that switches its checks off. Once every configuration file has been read,
# datalibrary_jupyter puts the user's own back (USER_CONFIG), for what the server reads later
# (the lab's page configuration) and what kernels and terminals inherit.
PLATFORM_CONFIG = Path(__file__).resolve().parent / "jupyter-config"
USER_CONFIG = "DATALIBRARY_USER_JUPYTER_CONFIG_DIR"


def _no_yarn_configuration(logger: object) -> dict[str, dict[str, str]]:
    """What ``jupyterlab.commands._yarn_config`` answers when Node.js is not found."""
    return {"yarn config": {}, "npm config": {}}


def main() -> None:
    os.environ[USER_CONFIG] = os.environ.get("JUPYTER_CONFIG_DIR", "")
    os.environ["JUPYTER_CONFIG_DIR"] = str(PLATFORM_CONFIG)
    # first of all: take the proxy's secret out of the environment and make this process
    # non-dumpable, before anything else of this user's can read /proc/<this>/environ
    import datalibrary_jupyter  # noqa: F401
    import jupyterlab.commands

    if hasattr(jupyterlab.commands, "_yarn_config"):  # JupyterLab 3 and 4; harmless if gone
        jupyterlab.commands._yarn_config = _no_yarn_configuration
    from jupyterlab.labapp import main as start_jupyterlab

    sys.exit(start_jupyterlab())


if __name__ == "__main__":
    main()
