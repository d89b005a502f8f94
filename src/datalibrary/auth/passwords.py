"""Password hashing (argon2id) and the minimum password policy."""

from __future__ import annotations

import secrets
import string
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from datalibrary.errors import InvalidInput

MIN_LENGTH = 12
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so timing does not reveal user names.
    Made on first use, not at import: a hash costs ~0.1 s of CPU and 64 MiB, and every CLI
    command that imports the accounts module paid it."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    dummy = _dummy_hash()  # first, on both paths: the one-time cost reveals nothing either
    try:
        return _hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_policy(password: str, user_name: str = "") -> None:
    """Refuse passwords that are short, single-class or contain the user name."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"at least {MIN_LENGTH} characters")
    classes = sum(
        any(test(c) for c in password)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if classes < 3:
        problems.append("at least three of: lower case, upper case, digits, symbols")
    if user_name and user_name.lower() in password.lower():
        problems.append("not containing the user name")
    if problems:
        raise InvalidInput("password must have " + "; ".join(problems), field="password")


def generate_password(user_name: str = "") -> str:
    """A random password that satisfies the policy."""
    alphabet = string.ascii_letters + string.digits + "-_.!"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(20))
        try:
            check_policy(candidate, user_name)
            return candidate
        except InvalidInput:  # about 1 draw in 100 lacks a character class
            continue
