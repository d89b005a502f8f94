"""Local accounts: the argon2id hash in DataLibrary's own database (``source = local``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from datalibrary.auth.authenticators import Authenticator
from datalibrary.auth.models import User
from datalibrary.auth.service import authenticate_password


class LocalAuthenticator(Authenticator):
    source = "local"
    method = "password"

    def authenticate(self, session: Session, name: str, password: str) -> User:
        """The same work and answer for an unknown name as for a wrong password."""
        return authenticate_password(session, name, password)
