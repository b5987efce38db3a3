"""The API's request and response bodies, as its OpenAPI document describes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..domains import RoleName, StatusName


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- responses ---------------------------------------------------------------------


class LiveRowOut(BaseModel):
    domain: str
    id: str | None
    name: str
    version: int
    activation: int = Field(description="The activation sequence: grows with every activation, in commit order.")
    activated_at: datetime | None
    actor: str | None
    reason: str | None
    settings: dict[str, Any]


class ConfigOut(BaseModel):
    activation: int = Field(description="The highest activation sequence among the domains: the ETag.")
    domains: dict[str, LiveRowOut]


class FieldProblemOut(BaseModel):
    field: str
    message: str


class RowOut(BaseModel):
    domain: str
    id: str
    name: str
    status: StatusName
    version: int
    description: str | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None
    settings: dict[str, Any]
    problems: list[FieldProblemOut] = Field(description="Why the models refuse a stored row; empty when readable.")


class ChangeOut(BaseModel):
    field: str
    old: Any
    new: Any


class RowRefOut(BaseModel):
    id: str
    name: str
    status: StatusName
    version: int


class DiffOut(BaseModel):
    domain: str
    from_: RowRefOut = Field(alias="from")
    to: RowRefOut
    changes: list[ChangeOut]

    model_config = ConfigDict(populate_by_name=True)


class HistoryEntryOut(BaseModel):
    id: int
    domain: str
    config_table: str
    config_id: str
    action: str
    changed_fields: list[str] | None
    changes: list[ChangeOut]
    reason: str | None
    performed_by: str
    performed_at: datetime
    db_user: str | None
    source_ip: str | None
    user_agent: str | None


class HistoryPage(BaseModel):
    entries: list[HistoryEntryOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page; null on the last.")


class ImportDomainOut(BaseModel):
    domain: str
    active: RowRefOut
    changes: list[ChangeOut]
    draft: RowOut | None = Field(description="The draft made (or reused), activated if asked; null on a dry run.")


class ImportOut(BaseModel):
    dry_run: bool
    activated: bool
    domains: list[ImportDomainOut]
    message: str


class HealthOut(BaseModel):
    status: str
    detail: str


class PrincipalOut(BaseModel):
    kind: str
    name: str
    role: RoleName
    actor: str = Field(description="What the audit trail records as performed_by for this principal.")
    expires_at: datetime | None


class SessionOut(BaseModel):
    token: str = Field(description="A bearer token for this session; shown once.")
    expires_at: datetime | None
    principal: PrincipalOut


# -- requests ----------------------------------------------------------------------


class DraftIn(Strict):
    from_: str = Field("active", alias="from", max_length=200,
                       description="active, default, archived, or a row: id, id prefix (6+) or name.")
    name: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=2000)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DraftPatchIn(Strict):
    settings: dict[str, Any] = Field(default_factory=dict, description="Settings to change, by field name.")
    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000)


class ActivateIn(Strict):
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1,
                                         description="The draft version you reviewed (or send If-Match).")
    reason: str | None = Field(None, max_length=2000)


class RollbackIn(Strict):
    reason: str | None = Field(None, max_length=2000)
    expected_id: str | None = Field(None, max_length=200, description="The row you reviewed as the rollback target.")


class RestoreIn(Strict):
    name: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=2000)


class DiscardIn(Strict):
    reason: str | None = Field(None, max_length=2000)


class LoginIn(Strict):
    name: str = Field(max_length=200)
    password: str = Field(max_length=1024)


# -- principals --------------------------------------------------------------------


class UserOut(BaseModel):
    id: str
    name: str
    role: RoleName
    disabled: bool
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    last_login_at: datetime | None


class TokenOut(BaseModel):
    id: str
    name: str
    kind: str
    role: RoleName | None
    user_name: str | None
    public_id: str = Field(description="The token's public part (it starts wtc_<public_id>_): not a secret.")
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool


class NewTokenOut(TokenOut):
    token: str = Field(description="The token itself: in this answer only, never again.")


class UserIn(Strict):
    name: str = Field(max_length=200)
    role: RoleName
    password: str = Field(max_length=1024)


class UserPatchIn(Strict):
    role: RoleName | None = None
    disabled: bool | None = None
    password: str | None = Field(None, max_length=1024)


class TokenIn(Strict):
    name: str = Field(max_length=200)
    role: RoleName
    expires: str | None = Field(None, max_length=20,
                                description="How long it lasts: 90d, 12h, 30m, 2w; none: no expiry.")
