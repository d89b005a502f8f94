"""Identity: users, passwords, API tokens, console sessions, roles and permission checks."""

from datalibrary.auth.permissions import ROLES, Permission, Principal, require

__all__ = ["ROLES", "Permission", "Principal", "require"]
