"""JupyterLab's identity inside a DataLibrary workspace: trust only the platform's proxy.

The platform authenticates the person (console grant, SameSite=strict cookie on the
workspace's own origin, or a personal API token) and adds a secret header that only it
knows. JupyterLab therefore has no token of its own: nothing secret is written into the page
config, the browser never sends ``Authorization: token ...``, and Jupyter's own XSRF and
Origin checks stay on for browser requests (they are skipped only for API-token callers,
which carry no cookie). The secret is removed from the environment at start so kernels and
terminals never inherit it.

Copied into the workspace next to the SDK and loaded with
``--ServerApp.identity_provider_class=datalibrary_jupyter.ProxyIdentityProvider``.
"""

from __future__ import annotations

import contextlib
import hmac
import os

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import default

SECRET_ENV = "DATALIBRARY_PROXY_SECRET"  # noqa: S105 - a name, not a secret
SECRET_HEADER = "X-DataLibrary-Proxy"  # noqa: S105 - a name, not a secret
VIA_HEADER = "X-DataLibrary-Via"
_SECRET = os.environ.pop(SECRET_ENV, "")
os.environ.pop("JUPYTER_TOKEN", None)


def _not_dumpable() -> None:
    """Popping a variable leaves the process's original environment block in
    /proc/<pid>/environ, readable by kernels (same uid); a non-dumpable process's /proc files
    are not. Kernels are separate programs (exec), so they are dumpable again."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


_not_dumpable()


class ProxyIdentityProvider(IdentityProvider):
    """A request is the workspace's user when the platform's proxy vouches for it."""

    @default("token")
    def _no_token(self) -> str:  # no Jupyter token at all: nothing to leak
        return ""

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False

    @property
    def logout_available(self) -> bool:
        return False

    def get_user(self, handler):  # type: ignore[no-untyped-def]
        given = handler.request.headers.get(SECRET_HEADER, "")
        if not _SECRET or not hmac.compare_digest(given.encode(), _SECRET.encode()):
            return None
        if handler.request.headers.get(VIA_HEADER) == "token":
            # an API client holding a personal token: no cookie, so no XSRF exposure
            handler._token_authenticated = True
        return User(username="jovyan", name="jovyan", display_name="jovyan")

    def validate_security(self, app, ssl_options=None) -> None:  # type: ignore[no-untyped-def]
        if not _SECRET:
            raise SystemExit(f"{SECRET_ENV} is not set: refusing to start without the proxy secret")


# --- warm pool: the workspace's token arrives at assignment -------------------------------
# A pool sandbox starts with DATALIBRARY_POOL=waiting and without the user's token. When a
# launch takes it, the platform (over the Unix socket, with the secret and "Via: platform",
# which its proxy never forwards from a browser or API client) posts the variables that carry
# the token; kernels and terminals started afterwards inherit them. It works once.
POOL_ENV = "DATALIBRARY_POOL"
ASSIGN_KEYS = frozenset({"DATALIBRARY_TOKEN", "PIP_INDEX_URL", "UV_DEFAULT_INDEX", "DATALIBRARY_CRAN_URL"})
_pool_waiting = os.environ.pop(POOL_ENV, "") == "waiting"


def _jupyter_server_extension_points():  # type: ignore[no-untyped-def]
    return [{"module": "datalibrary_jupyter"}]


def _give_back_the_users_configuration() -> None:
    """Every configuration file has been read (extensions load after all of them): from now
    on Jupyter's configuration directory is the user's own again (see datalibrary_lab.py)."""
    user_config = os.environ.pop("DATALIBRARY_USER_JUPYTER_CONFIG_DIR", None)
    if user_config is None:  # not started by datalibrary_lab.py
        return
    if user_config:
        os.environ["JUPYTER_CONFIG_DIR"] = user_config
    else:
        os.environ.pop("JUPYTER_CONFIG_DIR", None)


def _load_jupyter_server_extension(serverapp):  # type: ignore[no-untyped-def]
    import json

    _give_back_the_users_configuration()

    from jupyter_server.utils import url_path_join
    from tornado import web

    class AssignHandler(web.RequestHandler):
        def check_xsrf_cookie(self) -> None:  # authenticated by the secret header, no cookie
            return None

        def post(self) -> None:
            global _pool_waiting
            given = self.request.headers.get(SECRET_HEADER, "")
            platform = self.request.headers.get(VIA_HEADER) == "platform"
            if not _SECRET or not platform or not hmac.compare_digest(given.encode(), _SECRET.encode()):
                raise web.HTTPError(403)
            if not _pool_waiting:
                raise web.HTTPError(409, "not a waiting pool member (already assigned)")
            env = json.loads(self.request.body or b"{}").get("env", {})
            if not isinstance(env, dict) or set(env) - ASSIGN_KEYS:
                raise web.HTTPError(400, "unexpected variables")
            os.environ.update({str(k): str(v) for k, v in env.items()})
            # the home was mounted over the placeholder this process started in: move onto it,
            # so kernels and terminals (which inherit the working directory) start in the home
            os.chdir(os.environ.get("HOME", "/"))
            # what JupyterLab made under the placeholder at start (its data and config
            # directories: the notebook signatures, lab settings) must exist in the real home
            from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir

            for directory in (jupyter_data_dir(), jupyter_config_dir()):
                os.makedirs(directory, mode=0o700, exist_ok=True)
            _pool_waiting = False
            self.set_status(204)

    # The environment is built by the platform and read-only: nothing to build, so the front
    # end need not ask (GET lab/api/build costs the server most of a second at every page load).
    page_config = serverapp.web_app.settings.setdefault("page_config_data", {})
    page_config["buildCheck"] = False
    page_config["buildAvailable"] = False
    pattern = url_path_join(serverapp.base_url, "_dl/assign")
    serverapp.web_app.add_handlers(".*$", [(pattern, AssignHandler)])
