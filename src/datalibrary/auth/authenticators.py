"""Who proves a sign-in password (JupyterHub's ``Authenticator``): one backend per kind of
account, entry points in group ``datalibrary.authenticators`` (pyproject.toml lists ``local``
and ``ldap``; an installed package adds its own), chosen in order by ``auth.authenticators``.

Light on purpose: the settings check the names when they load, without importing a backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from datalibrary import plugins
from datalibrary.config import Settings, SettingsError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from datalibrary.auth.models import User

ENTRY_POINTS = plugins.AUTHENTICATORS
# The one answer to every refused sign-in (unknown name, wrong password, disabled account, not
# in a mapped group): an answer that differed would tell a guesser which names exist.
WRONG = "wrong user name or password"


class Authenticator(ABC):
    """Proves a name and password and returns the account they sign in.

    ``source`` is the ``User.source`` of the accounts it owns: an existing account signs in
    through the authenticator of its source only (a directory user never takes over the local
    ``admin``); a name without an account is offered to each enabled authenticator in turn,
    which may create it (LDAP mirrors the directory's user). ``method`` is what the audit log
    records as how the password was proven. Throttling, audit and the session are the caller's
    (``auth.login``), the same for every backend."""

    source: ClassVar[str]
    method: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        """Whether its own settings switch it on once ``auth.authenticators`` lists it (LDAP
        also needs ``auth.ldap.enabled``)."""
        return True

    @abstractmethod
    def authenticate(self, session: Session, name: str, password: str) -> User:
        """The account ``name`` signs in, or ``NotAuthenticated(WRONG)`` (a ``reason`` for the
        audit log may ride along); ``Unavailable`` when the backend cannot be asked."""


def installed() -> list[str]:
    """The names of the installed authenticators (the package's own and any plugin's)."""
    return sorted(plugins.installed(ENTRY_POINTS))


def authenticator_class(name: str) -> type[Authenticator]:
    """The backend ``name`` names, refused with a message naming what is installed."""
    try:
        found = plugins.load(ENTRY_POINTS, name, Authenticator)
    except LookupError as exc:
        raise SettingsError(f"unknown authenticator '{name}' in auth.authenticators; {exc}") from exc
    except TypeError as exc:
        raise SettingsError(f"authenticator {exc}") from exc
    except ImportError as exc:
        raise SettingsError(
            f"authenticator '{name}' cannot be loaded ({exc}); install what it names"
        ) from exc
    if not all(isinstance(getattr(found, key, None), str) for key in ("source", "method")):
        raise SettingsError(f"authenticator '{name}' names no source or method (class attributes)")
    return found


def chain(settings: Settings) -> list[Authenticator]:
    """The enabled authenticators, in the order ``auth.authenticators`` lists them. Two that
    own the same ``source`` are refused: which one an account signs in through must be clear."""
    classes = [authenticator_class(name) for name in settings.auth.authenticators]
    enabled = [cls for cls in classes if cls.enabled(settings)]
    sources = [cls.source for cls in enabled]
    clash = sorted({source for source in sources if sources.count(source) > 1})
    if clash:
        raise SettingsError(f"auth.authenticators: more than one authenticator owns the accounts of {clash}")
    return [cls(settings) for cls in enabled]
