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


DOMAINS: tuple[str, ...] = tuple(d.value for d in Domain)
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
AUDIT_ACTIONS: tuple[str, ...] = tuple(a.value for a in AuditAction)

DomainName = Literal["trading", "scoring", "discovery", "cluster", "risk", "exit", "api"]
StatusName = Literal["default", "draft", "active", "archived"]
