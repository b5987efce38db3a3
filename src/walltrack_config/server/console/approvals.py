"""What a draft's pages say about going live under a domain's approval policy: how many approvals it needs, the
request pending for it (and how far it got), and the schedules waiting to make it live. Data in, data out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ... import changes, schedules
from ...lifecycle import ConfigRow

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Approval:
    """A draft under its domain's policy: `required` approvals, and `request`, the one pending for this row."""

    domain: str
    row_id: str
    version: int
    required: int
    request: changes.ChangeRequest | None = None

    @property
    def needed(self) -> bool:
        return self.required > 0

    @property
    def current(self) -> changes.ChangeRequest | None:
        """The pending request, when it is for the draft as it is now (an edit voids the others)."""
        r = self.request
        return r if r is not None and r.current and r.version == self.version else None

    @property
    def ready(self) -> bool:
        """Nothing is missing: no policy, or a request for this version with enough approvals."""
        return not self.needed or (self.current is not None and self.current.missing == 0)

    @property
    def can_request(self) -> bool:
        """A new request makes sense: the policy asks for one and none is pending for this version."""
        return self.needed and self.current is None


def policy(conn: Conn, domain: str) -> int:
    """How many approvals `domain` needs before a draft goes live (0: none)."""
    return next((p.approvals for p in changes.policies(conn) if p.domain == domain), 0)


def for_row(conn: Conn, row: ConfigRow) -> Approval:
    required = policy(conn, row.domain)
    pending = None
    if row.status == "draft":
        pending = next((r for r in changes.requests(conn, domain=row.domain, status="pending")
                        if r.config_id == row.id), None)
    return Approval(row.domain, str(row.id), row.version, required, pending)


def scheduled(conn: Conn, row: ConfigRow) -> list[schedules.Schedule]:
    """The pending schedules that would make this row live."""
    if row.status != "draft":
        return []
    return [s for s in schedules.schedules(conn, domain=row.domain, status="pending") if s.config_id == row.id]
