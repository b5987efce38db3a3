"""Every enumeration of the configuration in one place, free of dependencies: the command line's `--help`
reads them without importing the models, and a test holds them equal to the database's enum and tables."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Domain(StrEnum):
    """A config table, by the name operators use: `risk` is walltrack.risk_config."""

    TRADING = "trading"
    SCORING = "scoring"
    DISCOVERY = "discovery"
    CLUSTER = "cluster"
    RISK = "risk"
    EXIT = "exit"
    API = "api"

    @property
    def table(self) -> str:
        return f"{self.value}_config"


class Status(StrEnum):
    """walltrack.config_status: a row's place in the lifecycle."""

    DEFAULT = "default"
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class AuditAction(StrEnum):
    """walltrack.config_audit_log.action, as the audit trigger writes it."""

    CREATE = "create"
    UPDATE = "update"
    ACTIVATE = "activate"
    ARCHIVE = "archive"
    DELETE = "delete"
    RESTORE = "restore"


class Role(StrEnum):
    """What a principal (a user or an API token, V12) may do; each role may do all the ones before it too."""

    READER = "reader"  # read settings, rows, diffs, history, export; the stream
    EDITOR = "editor"  # + drafts: create, edit, discard, import as drafts
    OPERATOR = "operator"  # + activate, rollback, restore
    ADMIN = "admin"  # + users and tokens

    @property
    def rank(self) -> int:
        return ROLES.index(self.value)

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what `needed` may."""
        return self.rank >= needed.rank


class PrincipalAction(StrEnum):
    """walltrack_auth.principal_audit_log.action (V12), as the principals' trigger writes it."""

    CREATE = "create"
    UPDATE = "update"
    SET_ROLE = "set-role"
    SET_PASSWORD = "set-password"
    DISABLE = "disable"
    ENABLE = "enable"
    REVOKE = "revoke"
    DELETE = "delete"


DOMAINS: tuple[str, ...] = tuple(d.value for d in Domain)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
AUDIT_ACTIONS: tuple[str, ...] = tuple(a.value for a in AuditAction)
ROLES: tuple[str, ...] = tuple(r.value for r in Role)
PRINCIPAL_ACTIONS: tuple[str, ...] = tuple(a.value for a in PrincipalAction)

DomainName = Literal["trading", "scoring", "discovery", "cluster", "risk", "exit", "api"]
StatusName = Literal["default", "draft", "active", "archived"]
RoleName = Literal["reader", "editor", "operator", "admin"]
