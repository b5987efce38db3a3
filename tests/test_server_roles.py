"""Who may call what: every endpoint of the API (as its OpenAPI document lists them) against no token and each
role, on one server; a refusal writes nothing. Sessions follow their user's role, a disabled user, a revoked
or expired token are refused at once; failed sign-ins and token checks are rate limited; no secret is logged."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from server_support import Api, serving
from walltrack_config import changes, fleet, lifecycle, principals, schedules, webhooks

PROBLEM = "application/problem+json"
ROLES = ("reader", "editor", "operator", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
PUBLIC, ANY = "public", "any"  # no token needed; any valid token
PASSWORD = "correct horse battery"
# Every table a request could write to: a refused request must leave each as it was.
TABLES = (
    "walltrack.config_audit_log",
    "walltrack.config_activations",
    "walltrack_auth.principal_audit_log",
    "walltrack_auth.api_tokens",
    "walltrack_auth.users",
    "walltrack.fleet_clients",
    "walltrack.change_requests",
    "walltrack.change_approvals",
    "walltrack.activation_schedules",
    "walltrack.break_glass_grants",
    "walltrack_auth.webhooks",
)


def counts(url: str | psycopg.Connection) -> dict[str, int]:
    if isinstance(url, psycopg.Connection):
        return {t: url.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    with psycopg.connect(url) as conn:
        return counts(conn)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- the matrix ---------------------------------------------------------------------------------------------------

Request = tuple[str, dict[str, Any]]  # path under /api/v1, httpx keyword arguments
_serial = itertools.count(1)


@dataclass(frozen=True)
class Call:
    """One way to call an endpoint: the least role it needs, how to make a valid request, the status it answers."""

    needs: str  # a role, PUBLIC or ANY
    ok: int
    make: Callable[[psycopg.Connection, dict[str, Any]], Request]  # prepares what the request needs, returns it
    label: str = ""

    def expected(self, caller: str | None) -> int:
        if self.needs == PUBLIC:
            return self.ok
        if caller is None:
            return 401
        return self.ok if self.needs == ANY or RANK[caller] >= RANK[self.needs] else 403


def _draft(conn: psycopg.Connection, domain: str = "risk") -> lifecycle.ConfigRow:
    return lifecycle.clone(conn, domain, actor="tests", name=f"matrix-{next(_serial)}")


def _activated(conn: psycopg.Connection, domain: str) -> lifecycle.ConfigRow:
    """A new row made live in `domain`; returns the row it archived."""
    before = lifecycle.resolve(conn, domain, "active")
    draft = _draft(conn, domain)
    draft = lifecycle.edit(conn, domain, draft.id, draft.version, {"description": f"d{next(_serial)}"}, actor="tests")
    lifecycle.activate(conn, domain, draft.id, expected_version=draft.version, actor="tests")
    return before


def _import(document: dict[str, Any], **params: str) -> Request:
    changed = {**document, "domains": {"risk": {"settings": {"max_order_attempts": 10 + next(_serial)}}}}
    return "/import", {"json": changed, "params": params}


def _patch_draft(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    draft = _draft(conn)
    return f"/config/risk/drafts/{draft.id}", {
        "headers": {"If-Match": str(draft.version)},
        "json": {"settings": {"max_order_attempts": 4}, "reason": "matrix"},
    }


def _activate_draft(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    draft = _draft(conn, "exit")
    return f"/config/exit/drafts/{draft.id}/activate", {"json": {"expected_version": draft.version}}


def _restore(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    archived = _activated(conn, "cluster")
    return f"/config/cluster/rows/{archived.id}/restore", {"json": {"name": f"restored-{next(_serial)}"}}


def _rollback(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    _activated(conn, "trading")
    return "/config/trading/rollback", {"json": {"reason": "matrix"}}


def _patch_user(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    name = f"patched-{next(_serial)}"
    principals.add_user(conn, name, "reader", PASSWORD, actor="tests")
    return f"/users/{name}", {"json": {"role": "editor"}}


def _revoke_token(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    name = f"revoked-{next(_serial)}"
    principals.create_token(conn, name, "reader", actor="tests")
    return f"/tokens/{name}", {}


def _fleet_report(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    report = {
        "id": str(uuid.uuid4()),
        "name": f"bot-{next(_serial)}",
        "host": "h",
        "pid": 1,
        "version": "0.1.0",
        "transport": "http",
        "domains": ["risk"],
        "heartbeat": 15,
        "applied": {"risk": 1},
    }
    return "/fleet/report", {"json": report}


def _fleet_leave(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    """A client reported by the caller's token (only its reporter may remove it)."""
    client = fleet.ClientInfo(uuid.uuid4(), f"leaving-{next(_serial)}", "h", 1, "0.1.0", "http", ("risk",), 15)
    fleet.report(conn, client, {}, actor=f"token:{ctx['caller'] or 'nobody'}-token")
    return f"/fleet/{client.id}", {}


def _request(conn: psycopg.Connection) -> changes.ChangeRequest:
    draft = _draft(conn, "discovery")
    return changes.request(conn, "discovery", draft.id, draft.version, actor="tests", reason="matrix")


def _schedule(conn: psycopg.Connection) -> schedules.Schedule:
    draft = _draft(conn, "scoring")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    return schedules.schedule(conn, "scoring", draft.id, draft.version, tomorrow, actor="tests", reason="matrix")


def _schedule_draft(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    draft = _draft(conn, "exit")
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return f"/config/exit/drafts/{draft.id}/activate", {
        "json": {"expected_version": draft.version, "at": at, "reason": "matrix"}}


def _break_glass(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    draft = _draft(conn, "exit")
    return f"/config/exit/drafts/{draft.id}/activate", {
        "json": {"expected_version": draft.version, "break_glass": True, "reason": "matrix"}}


def _request_draft(conn: psycopg.Connection, ctx: dict[str, Any]) -> Request:
    draft = _draft(conn, "discovery")
    return f"/config/discovery/drafts/{draft.id}/requests", {
        "json": {"expected_version": draft.version, "reason": "matrix"}}


def _webhook(conn: psycopg.Connection) -> str:
    name = f"hook-{next(_serial)}"
    webhooks.add(conn, name, "http://127.0.0.1:9/matrix", events=["policy_changed"], actor="tests")
    return name


def _get(path: str, **kwargs: Any) -> Callable[[psycopg.Connection, dict[str, Any]], Request]:
    return lambda conn, ctx: (path, kwargs)


MATRIX: dict[tuple[str, str], list[Call]] = {
    ("GET", "/config"): [Call("reader", 200, _get("/config"))],
    ("GET", "/stream"): [Call("reader", 200, _get("/stream", params={"domains": "risk"}))],
    ("GET", "/config/{domain}"): [Call("reader", 200, _get("/config/risk"))],
    ("GET", "/config/{domain}/rows"): [Call("reader", 200, _get("/config/risk/rows"))],
    ("GET", "/config/{domain}/rows/{ref}"): [Call("reader", 200, _get("/config/risk/rows/active"))],
    ("GET", "/config/{domain}/diff"): [
        Call("reader", 200, _get("/config/risk/diff", params={"from": "default", "to": "active"}))
    ],
    ("POST", "/config/{domain}/drafts"): [
        Call("editor", 201, lambda conn, ctx: ("/config/scoring/drafts", {"json": {"name": f"new-{next(_serial)}"}}))
    ],
    ("PATCH", "/config/{domain}/drafts/{ref}"): [Call("editor", 200, _patch_draft)],
    ("DELETE", "/config/{domain}/drafts/{ref}"): [
        Call("editor", 204, lambda conn, ctx: (f"/config/risk/drafts/{_draft(conn).id}", {}))
    ],
    ("POST", "/config/{domain}/drafts/{ref}/activate"): [
        Call("operator", 200, _activate_draft),
        Call("operator", 202, _schedule_draft, "at"),
        Call("admin", 200, _break_glass, "break glass"),
    ],
    ("POST", "/config/{domain}/rollback"): [Call("operator", 200, _rollback)],
    ("POST", "/config/{domain}/rows/{ref}/restore"): [Call("operator", 201, _restore)],
    ("GET", "/history"): [Call("reader", 200, _get("/history", params={"limit": 5}))],
    ("GET", "/export"): [Call("reader", 200, _get("/export", params={"format": "json"}))],
    ("POST", "/import"): [
        Call("editor", 200, lambda conn, ctx: _import(ctx["document"]), "dry run"),
        Call("editor", 200, lambda conn, ctx: _import(ctx["document"], dry_run="false"), "as drafts"),
        Call("operator", 200, lambda conn, ctx: _import(ctx["document"], dry_run="false", activate="true"), "live"),
    ],
    ("POST", "/login"): [Call(PUBLIC, 200, _get("/login", json={"name": "matrix-user", "password": PASSWORD}))],
    # The matrix calls as API tokens, which have no session to end (409); sessions: see the logout test below.
    ("POST", "/logout"): [Call(ANY, 409, _get("/logout"))],
    ("GET", "/whoami"): [Call(ANY, 200, _get("/whoami"))],
    ("GET", "/users"): [Call("admin", 200, _get("/users"))],
    ("POST", "/users"): [
        Call(
            "admin",
            201,
            lambda conn, ctx: (
                "/users",
                {"json": {"name": f"made-{next(_serial)}", "role": "reader", "password": PASSWORD}},
            ),
        )
    ],
    ("PATCH", "/users/{name}"): [Call("admin", 200, _patch_user)],
    ("GET", "/tokens"): [Call("admin", 200, _get("/tokens"))],
    ("POST", "/tokens"): [
        Call("admin", 201, lambda conn, ctx: ("/tokens", {"json": {"name": f"tok-{next(_serial)}", "role": "reader"}}))
    ],
    ("DELETE", "/tokens/{name}"): [Call("admin", 200, _revoke_token)],
    ("GET", "/fleet"): [Call("reader", 200, _get("/fleet"))],
    ("POST", "/fleet/report"): [Call("reader", 204, _fleet_report)],
    ("DELETE", "/fleet/{client_id}"): [Call("reader", 204, _fleet_leave)],
    ("GET", "/policies"): [Call("reader", 200, _get("/policies"))],
    ("PUT", "/policies/{domain}"): [Call("admin", 200, _get("/policies/risk", json={"approvals": 0}))],
    ("POST", "/config/{domain}/drafts/{ref}/requests"): [Call("editor", 201, _request_draft)],
    ("GET", "/requests"): [Call("reader", 200, _get("/requests", params={"status": "all"}))],
    ("GET", "/requests/{request_id}"): [
        Call("reader", 200, lambda conn, ctx: (f"/requests/{_request(conn).id}", {}))
    ],
    ("POST", "/requests/{request_id}/approve"): [
        Call("operator", 200, lambda conn, ctx: (f"/requests/{_request(conn).id}/approve", {"json": {}}))
    ],
    ("POST", "/requests/{request_id}/reject"): [
        Call("operator", 200,
             lambda conn, ctx: (f"/requests/{_request(conn).id}/reject", {"json": {"comment": "matrix"}}))
    ],
    ("GET", "/schedules"): [Call("reader", 200, _get("/schedules"))],
    ("GET", "/schedules/{schedule_id}"): [
        Call("reader", 200, lambda conn, ctx: (f"/schedules/{_schedule(conn).id}", {}))
    ],
    ("DELETE", "/schedules/{schedule_id}"): [
        Call("operator", 200, lambda conn, ctx: (f"/schedules/{_schedule(conn).id}", {"json": {"reason": "matrix"}}))
    ],
    ("GET", "/webhooks"): [Call("admin", 200, _get("/webhooks"))],
    ("POST", "/webhooks"): [
        Call("admin", 201, lambda conn, ctx: ("/webhooks", {"json": {
            "name": f"made-hook-{next(_serial)}", "url": "http://127.0.0.1:9/matrix", "events": ["policy_changed"]}}))
    ],
    ("DELETE", "/webhooks/{name}"): [Call("admin", 204, lambda conn, ctx: (f"/webhooks/{_webhook(conn)}", {}))],
    ("GET", "/webhooks/deliveries"): [Call("admin", 200, _get("/webhooks/deliveries"))],
    ("GET", "/events"): [Call("reader", 200, _get("/events", params={"limit": 5}))],
    ("GET", "/healthz"): [Call(PUBLIC, 200, _get("/healthz"))],
    ("GET", "/readyz"): [Call(PUBLIC, 200, _get("/readyz"))],
}


def _call(http: httpx.Client, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
    """The answer, read whole; but an event stream never ends: its status, headers and first event only."""
    with http.stream(method, path, **kwargs) as answer:
        if answer.headers.get("content-type", "").startswith("text/event-stream"):
            first = next(answer.iter_lines())
            assert first.startswith("id: ") or first.startswith("event: "), first
        else:
            answer.read()
    return answer


def test_every_endpoint_against_every_role_and_refusals_write_nothing(api: Api):
    listed = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in api.app.openapi()["paths"].items()
        for method in operations
    }
    assert listed == set(MATRIX), f"endpoints without an entry: {listed - set(MATRIX)}; gone: {set(MATRIX) - listed}"
    with psycopg.connect(api.db, autocommit=True) as conn:
        principals.add_user(conn, "matrix-user", "reader", PASSWORD, actor="tests")
    with api.client("admin") as http:
        context = {"document": http.get("/export", params={"format": "json"}).json()}
    outcomes: dict[tuple[str, str, str, str | None], int] = {}
    clients = {caller: api.client(caller) for caller in (None, *ROLES)}
    with psycopg.connect(api.db, autocommit=True) as conn:
        for (method, template), calls in MATRIX.items():
            for call, caller in itertools.product(calls, clients):
                context["caller"] = caller
                path, kwargs = call.make(conn, context)
                expected = call.expected(caller)
                before = counts(conn)
                answer = _call(clients[caller], method, path, kwargs)
                where = (method, template, call.label, caller)
                outcomes[where] = answer.status_code
                assert answer.status_code == expected, (where, answer.text)
                if expected in (401, 403):
                    assert answer.headers["content-type"] == PROBLEM
                    assert answer.json()["error"] == ("AuthenticationFailed" if expected == 401 else "Forbidden")
                    assert counts(conn) == before, (where, "a refused request wrote something")
    for http in clients.values():
        http.close()
    # The role ladder, as the matrix saw it: each role may do all the ones before it could.
    for method, template, label, caller in outcomes:
        if caller in ROLES[:-1]:
            higher = ROLES[RANK[caller] + 1]
            if outcomes[(method, template, label, caller)] < 400:
                assert outcomes[(method, template, label, higher)] < 400, (method, template, label, caller)
    assert sum(code == 403 for code in outcomes.values()) >= 20


# -- sessions and tokens: what changes in the database applies at once ---------------------------------------------


def _login(api: Api, name: str, password: str = PASSWORD) -> str:
    with api.client() as http:
        answer = http.post("/login", json={"name": name, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def _as(api: Api, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{api.base}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_session_follows_its_users_role_and_ends_when_they_are_disabled(api: Api):
    with psycopg.connect(api.db, autocommit=True) as conn:
        principals.add_user(conn, "sam", "reader", PASSWORD, actor="tests")
    token = _login(api, "SAM")  # names are case-insensitive; the session is sam's
    with _as(api, token) as http:
        me = http.get("/whoami").json()
        assert (me["kind"], me["name"], me["role"], me["actor"]) == ("user", "sam", "reader", "sam")
        before = counts(api.db)
        refused = http.post("/config/risk/drafts", json={})
        assert refused.status_code == 403 and counts(api.db) == before  # remembered now, as a reader
        with psycopg.connect(api.db, autocommit=True) as other:
            principals.set_role(other, "sam", "editor", actor="tests")
        # Nothing in the server expires a remembered principal but the database's NOTIFY: the change shows at once.
        assert wait_until(lambda: http.get("/whoami").json()["role"] == "editor", timeout=3)
        made = http.post("/config/risk/drafts", json={"name": "by-sam"})
        assert made.status_code == 201, made.text
        with psycopg.connect(api.db) as conn:
            assert conn.execute(
                "SELECT performed_by FROM walltrack.config_audit_log ORDER BY id DESC LIMIT 1"
            ).fetchone() == ("sam",)
        with psycopg.connect(api.db, autocommit=True) as other:
            principals.disable_user(other, "sam", actor="tests")
        assert wait_until(lambda: http.get("/whoami").status_code == 401, timeout=3)
        before = counts(api.db)
        gone = http.post("/config/risk/drafts", json={})
        assert gone.status_code == 401 and gone.headers["content-type"] == PROBLEM
        assert counts(api.db) == before
    with api.client() as http:  # and cannot sign in again
        assert http.post("/login", json={"name": "sam", "password": PASSWORD}).status_code == 401


def test_a_revoked_token_is_refused_at_once_and_so_is_an_expired_one(api: Api):
    secret = api.token("short-lived", "reader")
    with _as(api, secret) as http:
        assert http.get("/config").status_code == 200  # remembered from here on
        with api.client("admin") as admin:
            revoked = admin.delete("/tokens/short-lived")
            assert revoked.status_code == 200 and revoked.json()["active"] is False
        assert http.get("/config").status_code == 401  # this server forgot it while answering the revocation
    # Revoked on the database, not through this server: the NOTIFY reaches it.
    other = api.token("revoked-elsewhere", "reader")
    with _as(api, other) as http:
        assert http.get("/config").status_code == 200
        with psycopg.connect(api.db, autocommit=True) as conn:
            principals.revoke_token(conn, "revoked-elsewhere", actor="tests")
        assert wait_until(lambda: http.get("/config").status_code == 401, timeout=3)
    with psycopg.connect(api.db, autocommit=True) as conn:
        token, expiring = principals.create_token(
            conn, "expiring", "reader", actor="tests", expires=timedelta(seconds=2)
        )
    assert token.expires_at is not None
    with _as(api, expiring) as http:
        assert http.get("/config").status_code == 200  # checked and remembered while still valid
        time.sleep(max(0.0, (token.expires_at - token.created_at).total_seconds()) + 0.2)
        expired = http.get("/config")
        assert expired.status_code == 401 and expired.json()["error"] == "AuthenticationFailed"
        assert http.get("/whoami").status_code == 401


def test_logout_ends_the_session_and_only_that_session(api: Api):
    with psycopg.connect(api.db, autocommit=True) as conn:
        principals.add_user(conn, "lee", "operator", PASSWORD, actor="tests")
    first, second = _login(api, "lee"), _login(api, "lee")
    with _as(api, first) as one, _as(api, second) as two:
        assert one.get("/whoami").json()["role"] == "operator"
        assert two.get("/whoami").status_code == 200
        assert one.post("/logout").status_code == 204
        assert one.get("/whoami").status_code == 401
        assert one.post("/logout").status_code == 401
        assert two.get("/whoami").status_code == 200
    with psycopg.connect(api.db) as conn:
        ended = conn.execute(
            "SELECT count(*) FILTER (WHERE revoked_at IS NOT NULL), count(*) FROM walltrack_auth.api_tokens t"
            " JOIN walltrack_auth.users u ON u.id = t.user_id WHERE u.name = 'lee'"
        ).fetchone()
    assert ended == (1, 2)


# -- rate limits ---------------------------------------------------------------------------------------------------


def _limited(answer: Any, window: float) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == PROBLEM and answer.json()["error"] == "RateLimited"
    retry = int(answer.headers["retry-after"])
    assert 1 <= retry <= window and answer.json()["retry_after"] == retry


def test_failed_sign_ins_are_limited_per_name_and_leave_other_names_alone(migrated_db):
    with serving(migrated_db, failures_per_name=3, failures_per_address=50) as api:
        with psycopg.connect(api.db, autocommit=True) as conn:
            principals.add_user(conn, "alice", "reader", PASSWORD, actor="tests")
            principals.add_user(conn, "bob", "reader", PASSWORD, actor="tests")
        before = counts(api.db)
        with api.client() as http:
            for _ in range(3):
                assert http.post("/login", json={"name": "alice", "password": "wrong password"}).status_code == 401
            # Over the limit: refused before the password is even checked, the right one too, in any case.
            _limited(http.post("/login", json={"name": "alice", "password": PASSWORD}), 60)
            _limited(http.post("/login", json={"name": "ALICE", "password": PASSWORD}), 60)
            assert counts(api.db) == before
            assert http.post("/login", json={"name": "bob", "password": PASSWORD}).status_code == 200
        # A token's public id is no secret (token list shows it): guesses at its 256-bit secret must not lock
        # the real token out, so token checks are limited per address only.
        public_id = api.tokens["reader"].split("_")[1]
        with _as(api, f"wtc_{public_id}_" + "A" * 43) as http:
            for _ in range(5):
                assert http.get("/config").status_code == 401
        with api.client("reader") as http:
            assert http.get("/config").status_code == 200


def test_failed_checks_are_limited_per_address_whatever_the_name(migrated_db):
    with serving(migrated_db, failures_per_name=100, failures_per_address=4) as api:
        with psycopg.connect(api.db, autocommit=True) as conn:
            principals.add_user(conn, "carol", "reader", PASSWORD, actor="tests")
        fresh = api.token("never-used", "reader")
        with api.client() as http:
            for n in range(2):
                assert http.post("/login", json={"name": f"nobody{n}", "password": "wrong password"}).status_code == 401
            for n in range(2):
                bad = {"Authorization": f"Bearer wtc_00000000000{n}_" + "B" * 43}
                assert http.get("/whoami", headers=bad).status_code == 401
            before = counts(api.db)
            _limited(http.post("/login", json={"name": "carol", "password": PASSWORD}), 60)
            _limited(http.get("/config", headers={"Authorization": f"Bearer {fresh}"}), 60)
            _limited(http.get("/config", headers={"Authorization": "Bearer wtc_999999999999_" + "C" * 43}), 60)
            assert counts(api.db) == before


def test_passwords_and_tokens_never_reach_the_log(migrated_db, caplog):
    secret_password, wrong_password = "s3cret-Passw0rd-in-logs?", "wr0ng-Passw0rd-in-logs?"
    with caplog.at_level(logging.DEBUG), serving(migrated_db) as api:
        for name in ("walltrack_config", "uvicorn", "uvicorn.error", "uvicorn.access", "psycopg", "httpx", "fastapi"):
            caplog.set_level(logging.DEBUG, logger=name)
        with psycopg.connect(api.db, autocommit=True) as conn:
            principals.add_user(conn, "dana", "editor", secret_password, actor="tests")
        with api.client() as http:
            failed = http.post("/login", json={"name": "dana", "password": wrong_password})
            assert failed.status_code == 401 and wrong_password not in failed.text
            session = http.post("/login", json={"name": "dana", "password": secret_password})
            assert session.status_code == 200 and secret_password not in session.text
            token = session.json()["token"]
            assert http.get("/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            bogus = "wtc_123456789012_" + "Z" * 43
            assert http.get("/whoami", headers={"Authorization": f"Bearer {bogus}"}).status_code == 401
            made = http.post(
                "/tokens",
                headers={"Authorization": f"Bearer {api.tokens['admin']}"},
                json={"name": "logged", "role": "reader"},
            )
            assert made.status_code == 201
            assert http.get("/config", headers={"Authorization": f"Bearer {made.json()['token']}"}).status_code == 200
        secrets = [secret_password, wrong_password, token, bogus, made.json()["token"], *api.tokens.values()]
    assert caplog.records, "nothing was logged at all: the capture did not work"
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for secret in secrets:
        assert secret not in logged
        parsed = principals.parse_token(secret)
        assert parsed is None or parsed[1] not in logged  # nor the secret part of a token alone


@pytest.mark.parametrize(
    "header",
    ["Bearer wtc_x", "Bearer " + "wtc_000000000000_" + "é" * 43, "Bearer wtc_000000000000_" + "A" * 43 + " trailing"],
)
def test_odd_credentials_are_refused_without_writing(api: Api, header: str):
    before = counts(api.db)
    with api.client() as http:
        answer = http.get("/config", headers={"Authorization": header.encode()})
    assert answer.status_code == 401 and answer.headers["content-type"] == PROBLEM
    assert counts(api.db) == before
