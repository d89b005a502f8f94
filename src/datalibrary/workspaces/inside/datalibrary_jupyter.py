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

import hmac
import os

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import default

SECRET_ENV = "DATALIBRARY_PROXY_SECRET"  # noqa: S105 - a name, not a secret
SECRET_HEADER = "X-DataLibrary-Proxy"  # noqa: S105 - a name, not a secret
VIA_HEADER = "X-DataLibrary-Via"
_SECRET = os.environ.pop(SECRET_ENV, "")
os.environ.pop("JUPYTER_TOKEN", None)


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
