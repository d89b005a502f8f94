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

import sys

import jupyterlab.commands


def _no_yarn_configuration(logger: object) -> dict[str, dict[str, str]]:
    """What ``jupyterlab.commands._yarn_config`` answers when Node.js is not found."""
    return {"yarn config": {}, "npm config": {}}


def main() -> None:
    if hasattr(jupyterlab.commands, "_yarn_config"):  # JupyterLab 3 and 4; harmless if gone
        jupyterlab.commands._yarn_config = _no_yarn_configuration
    from jupyterlab.labapp import main as start_jupyterlab

    sys.exit(start_jupyterlab())


if __name__ == "__main__":
    main()
