"""The API's request and response bodies, as its OpenAPI document describes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..domains import DomainName, RoleName, StatusName


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
    reason: str | None = Field(None, max_length=2000,
                               description="Why; required with `at` and with `break_glass`.")
    at: AwareDatetime | None = Field(None, description="Schedule instead: the draft goes live then (with a zone: "
                                                       "2026-12-01T22:00:00Z), if still at this version; 202 with "
                                                       "the schedule. At most 366 days ahead.")
    break_glass: bool = Field(False, description="Admin only: go live now without the approvals the domain's "
                                                 "policy requires; loudly recorded (a break_glass event), with "
                                                 "the reason.")


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


# -- the fleet (V13) ---------------------------------------------------------------


class FleetClientOut(BaseModel):
    id: str
    name: str
    host: str
    pid: int
    version: str
    transport: Literal["http", "database"]
    domains: list[str]
    heartbeat: float = Field(description="Seconds between its reports; 3 without one and it is stale.")
    started_at: datetime
    last_seen_at: datetime
    applied: dict[str, int] = Field(description="Domain -> the activation sequence it applied, callbacks done.")
    lag: dict[str, int] = Field(description="Domain -> how many activations of it came after the one applied.")
    stale: bool = Field(description="Not heard from for 3 heartbeats.")
    reported_by: str = Field(description="Who reports it: the token or user a server reported it for, else the "
                                         "database user. Only they may report or remove it.")
    db_user: str


class FleetOut(BaseModel):
    current: dict[str, int] = Field(description="Each domain's current activation sequence.")
    clients: list[FleetClientOut]


class AppliedOut(BaseModel):
    activation: int = Field(description="The activation waited for.")
    complete: bool = Field(description="Every live client following the domain applied it (or a later one).")
    waited: float = Field(description="Seconds waited.")
    live: int = Field(description="Live (non-stale) clients following the domain at the end.")
    missing: list[FleetClientOut] = Field(description="Live clients that had not applied it when the wait ended.")
    stale: list[FleetClientOut] = Field(description="Stale clients following the domain that had not applied it: "
                                                    "not waited for.")
    detail: str | None = Field(None, description="Why the wait ended early, if it did (the database went away).")


class GoneLiveOut(RowOut):
    applied: AppliedOut | None = Field(None, description="Only with ?wait_applied=: whether every live client "
                                                         "applied the change (it is committed either way).")


ActivationSeq = Annotated[int, Field(ge=0, le=2**63 - 1)]


class FleetReportIn(Strict):
    id: UUID = Field(description="The client's id: a UUID of its own, one per process.")
    name: str = Field(min_length=1, max_length=200, description="As the bot names itself (default host:pid).")
    host: str = Field(min_length=1, max_length=255)
    pid: int = Field(ge=1, le=2**31 - 1)
    version: str = Field(min_length=1, max_length=64, description="The walltrack-config version it runs.")
    transport: Literal["http", "database"]
    domains: list[DomainName] = Field(min_length=1, max_length=7, description="The domains it follows.")
    heartbeat: float = Field(ge=0.01, le=3600, allow_inf_nan=False, description="Seconds between its reports.")
    applied: dict[DomainName, ActivationSeq] = Field(
        default_factory=dict, description="Domain -> activation sequence applied, its callbacks done.")


# -- change management (V14): approvals, schedules, webhooks, events ------------------------------------------

EventKind = Literal["policy_changed", "request_created", "request_approved", "request_rejected", "request_voided",
                    "request_applied", "activated", "rolled_back", "break_glass", "schedule_created",
                    "schedule_cancelled", "schedule_executed", "schedule_failed", "schedule_missed", "client_stale"]
RequestStatus = Literal["pending", "rejected", "applied", "void"]
ScheduleStatus = Literal["pending", "done", "failed", "missed", "cancelled"]
DeliveryStatus = Literal["pending", "succeeded", "failed"]
WebhookFormat = Literal["json", "slack", "discord"]


class PolicyOut(BaseModel):
    domain: str
    approvals: int = Field(description="Approvals a draft of this domain needs before it goes live (0: none).")
    updated_by: str | None
    updated_at: datetime | None


class DecisionOut(BaseModel):
    approver: str
    decision: Literal["approve", "reject"]
    comment: str | None
    at: datetime
    db_user: str


class ChangeRequestOut(BaseModel):
    id: str
    domain: str
    config_id: str
    version: int = Field(description="The draft version it asks to make live; an edit voids the request.")
    settings_hash: str
    requested_by: str
    reason: str
    status: RequestStatus
    created_at: datetime
    decided_at: datetime | None
    decisions: list[DecisionOut]
    required: int = Field(description="Approvals the domain's policy requires now.")
    approved_by: list[str]
    missing: int = Field(description="Approvals still needed.")
    draft_name: str | None = Field(description="The draft's name now; null if it is gone.")
    current: bool = Field(description="The draft is still a draft at this version and these settings.")


class ScheduleOut(BaseModel):
    id: str
    domain: str
    config_id: str
    version: int
    run_at: datetime
    created_by: str
    reason: str
    status: ScheduleStatus
    outcome: str | None = Field(description="What happened: the error of a failed run, why it was cancelled, ...")
    created_at: datetime
    finished_at: datetime | None
    draft_name: str | None


class WebhookOut(BaseModel):
    id: str
    name: str
    url: str
    events: list[str] = Field(description="The event kinds it receives; '*' for all.")
    format: WebhookFormat
    enabled: bool
    created_by: str
    created_at: datetime


class NewWebhookOut(WebhookOut):
    secret: str = Field(description="The signing secret (X-Walltrack-Signature): in this answer only, never again.")


class DeliveryOut(BaseModel):
    id: int
    webhook: str
    kind: str
    event_seq: int
    status: DeliveryStatus
    attempts: int
    last_status: int | None = Field(description="The receiver's last HTTP status; null: no answer.")
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None


class EventOut(BaseModel):
    seq: int = Field(description="Grows with every event: pass the last one seen as ?after= for the next ones.")
    kind: str
    domain: str | None
    subject: str | None = Field(description="What it is about: a row, a request or a schedule id.")
    actor: str | None
    db_user: str | None
    at: datetime
    payload: dict[str, Any]


class PolicyIn(Strict):
    approvals: int = Field(ge=0, le=5, description="Approvals required before a draft goes live (0: none).")
    reason: str | None = Field(None, max_length=2000)


class RequestIn(Strict):
    expected_version: int | None = Field(None, ge=1, le=2**31 - 1,
                                         description="The draft version you reviewed (or send If-Match).")
    reason: str = Field(min_length=1, max_length=2000, description="Why it should go live.")


class ApproveIn(Strict):
    comment: str | None = Field(None, max_length=2000)


class RejectIn(Strict):
    comment: str = Field(min_length=1, max_length=2000, description="Why not: the requester reads it.")


class CancelIn(Strict):
    reason: str | None = Field(None, max_length=2000)


class WebhookIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2000, description="http:// or https://; receives a POST per event.")
    events: list[EventKind | Literal["*"]] = Field(min_length=1, max_length=32,
                                                   description="The event kinds to send; '*' for all.")
    format: WebhookFormat = "json"
    secret: str | None = Field(None, min_length=16, max_length=200,
                               description="The signing secret; omitted: one is made (and answered once).")
