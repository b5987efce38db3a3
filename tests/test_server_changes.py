"""Change management over the REST API (V14), real HTTP and real PostgreSQL: approval policies, change requests
approved by someone other than the requester, activation refused without them, break glass (admin only, audited),
scheduled activation run by the servers' background rounds (exactly once with three servers on one database),
webhooks signed and retried, the events feed; each endpoint's roles. The background rounds themselves: a failing
step never ends them, and they stop with the server."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from server_support import Api, serving
from walltrack_config import changes, lifecycle, schedules, webhooks
from walltrack_config.server.background import Background
from walltrack_config.server.settings import ServerSettings
from webhook_receiver import closed_port, receiving

PROBLEM = "application/problem+json"
EDITOR, OPERATOR, ADMIN = "token:editor-token", "token:operator-token", "token:admin-token"


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(step)


def db_now(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        now = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    assert isinstance(now, datetime)
    return now


def scalar(url: str, query: str, params: list[Any] | None = None) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def make_draft(api: Api, domain: str = "risk", role: str = "editor", **settings: Any) -> dict[str, Any]:
    """A draft made over HTTP (changed from the active row, so that it differs), at its version."""
    with api.client(role) as http:
        made = http.post(f"/config/{domain}/drafts", json={"name": f"d-{uuid.uuid4().hex[:8]}"})
        assert made.status_code == 201, made.text
        row = made.json()
        if settings:
            edited = http.patch(f"/config/{domain}/drafts/{row['id']}", headers={"If-Match": str(row["version"])},
                                json={"settings": settings})
            assert edited.status_code == 200, edited.text
            row = edited.json()
    return row


def active_id(api: Api, domain: str) -> str:
    with api.client("reader") as http:
        return str(http.get(f"/config/{domain}/rows/active").json()["id"])


def problem(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["error"] == error, body
    return body


def set_policy(api: Api, domain: str, approvals: int) -> dict[str, Any]:
    with api.client("admin") as http:
        answer = http.put(f"/policies/{domain}", json={"approvals": approvals, "reason": "tests"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# -- approvals ------------------------------------------------------------------------------------------------------


def test_a_request_approved_by_another_principal_then_goes_live(api: Api):
    policy = set_policy(api, "risk", 1)
    assert (policy["domain"], policy["approvals"], policy["updated_by"]) == ("risk", 1, ADMIN)
    with api.client("reader") as http:
        listed = http.get("/policies").json()
    assert [p["domain"] for p in listed] == ["trading", "scoring", "discovery", "cluster", "risk", "exit", "api"]
    assert {p["domain"]: p["approvals"] for p in listed}["risk"] == 1
    draft = make_draft(api, max_order_attempts=4)

    with api.client("editor") as http:
        made = http.post(f"/config/risk/drafts/{draft['id']}/requests",
                         json={"expected_version": draft["version"], "reason": "fewer retries"})
    assert made.status_code == 201, made.text
    request = made.json()
    assert made.headers["location"].endswith(f"/api/v1/requests/{request['id']}")
    assert (request["status"], request["requested_by"], request["reason"]) == ("pending", EDITOR, "fewer retries")
    assert (request["required"], request["missing"], request["approved_by"]) == (1, 1, [])
    assert request["current"] is True and request["config_id"] == draft["id"]
    assert request["version"] == draft["version"] and request["draft_name"] == draft["name"]

    with api.client("reader") as http:
        assert [r["id"] for r in http.get("/requests").json()] == [request["id"]]
        assert http.get("/requests", params={"status": "applied"}).json() == []
        assert http.get(f"/requests/{request['id'][:8]}").json()["id"] == request["id"]
        problem(http.get("/requests/00000000-0000-0000-0000-000000000000"), 404, "NotFound")

    with api.client("operator") as http:
        approved = http.post(f"/requests/{request['id']}/approve", json={"comment": "looks right"})
        assert approved.status_code == 200, approved.text
        assert (approved.json()["approved_by"], approved.json()["missing"]) == ([OPERATOR], 0)
        decision = approved.json()["decisions"][0]
        assert (decision["approver"], decision["decision"], decision["comment"]) == (OPERATOR, "approve",
                                                                                     "looks right")
        live = http.post(f"/config/risk/drafts/{draft['id']}/activate",
                         json={"expected_version": draft["version"], "reason": "approved"})
        assert live.status_code == 200, live.text
        assert live.json()["status"] == "active" and live.json()["settings"]["max_order_attempts"] == 4
    assert active_id(api, "risk") == draft["id"]

    with api.client("reader") as http:
        after = http.get(f"/requests/{request['id']}").json()
        assert after["status"] == "applied" and after["decided_at"] is not None
        kinds = [(e["kind"], e["actor"]) for e in http.get("/events", params={"domain": "risk"}).json()]
    assert ("policy_changed", ADMIN) in kinds
    assert ("request_created", EDITOR) in kinds and ("request_approved", OPERATOR) in kinds
    assert ("activated", OPERATOR) in kinds
    assert [k for k, _ in kinds].index("request_created") < [k for k, _ in kinds].index("activated")


def test_the_requester_cannot_approve_their_own_request(api: Api):
    set_policy(api, "exit", 1)
    draft = make_draft(api, "exit", role="operator")
    with api.client("operator") as http:
        made = http.post(f"/config/exit/drafts/{draft['id']}/requests", headers={"If-Match": str(draft["version"])},
                         json={"reason": "mine"})
        assert made.status_code == 201, made.text
        request = made.json()
        assert request["requested_by"] == OPERATOR
        own = problem(http.post(f"/requests/{request['id']}/approve", json={}), 409, "InvalidTransition")
        assert "request" in own["detail"].lower() and OPERATOR in own["detail"], own
        assert http.get(f"/requests/{request['id']}").json()["approved_by"] == []
        # Nor does the database let it through any other way: the activation is refused for want of approval.
        refused = problem(http.post(f"/config/exit/drafts/{draft['id']}/activate",
                                    json={"expected_version": draft["version"]}), 409, "ApprovalRequired")
        assert "1 approval" in refused["detail"]
    with api.client("admin") as http:
        first = http.post(f"/requests/{request['id']}/approve")  # no body: no comment
        assert first.status_code == 200 and first.json()["approved_by"] == [ADMIN]
        again = http.post(f"/requests/{request['id']}/approve", json={"comment": "twice"})
        assert again.status_code == 200 and again.json()["approved_by"] == [ADMIN]  # counted once


def test_a_rejection_needs_a_comment_and_closes_the_request(api: Api):
    set_policy(api, "cluster", 1)
    draft = make_draft(api, "cluster")
    with api.client("editor") as http:
        request = http.post(f"/config/cluster/drafts/{draft['id']}/requests",
                            json={"expected_version": draft["version"], "reason": "try"}).json()
        problem(http.post(f"/requests/{request['id']}/reject", json={"comment": "no"}), 403, "Forbidden")
    with api.client("operator") as http:
        problem(http.post(f"/requests/{request['id']}/reject", json={}), 422, "InvalidRequest")
        rejected = http.post(f"/requests/{request['id']}/reject", json={"comment": "not now"})
        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["status"] == "rejected"
        assert rejected.json()["decisions"][0]["decision"] == "reject"
        problem(http.post(f"/requests/{request['id']}/approve", json={}), 409, "InvalidTransition")
        assert http.get("/requests", params={"status": "rejected", "domain": "cluster"}).json()[0]["id"] == \
            request["id"]
        assert request["id"] in {r["id"] for r in http.get("/requests", params={"status": "all"}).json()}


def test_activating_without_the_required_approvals_is_refused_and_changes_nothing(api: Api):
    set_policy(api, "trading", 2)
    draft = make_draft(api, "trading")
    before = active_id(api, "trading")
    activations = scalar(api.db, "SELECT count(*) FROM walltrack.config_activations")
    with api.client("operator") as http:
        refused = problem(http.post(f"/config/trading/drafts/{draft['id']}/activate",
                                    json={"expected_version": draft["version"], "reason": "now"}),
                          409, "ApprovalRequired")
        assert "2 approval" in refused["detail"] and "trading" in refused["detail"], refused
        assert refused.get("hint"), refused
        assert (refused["required"], refused["given"], refused.get("request_id")) == (2, 0, None)
    with api.client("editor") as http:
        request = http.post(f"/config/trading/drafts/{draft['id']}/requests",
                            json={"expected_version": draft["version"], "reason": "two needed"}).json()
    with api.client("operator") as http:
        assert http.post(f"/requests/{request['id']}/approve").json()["missing"] == 1
        still = problem(http.post(f"/config/trading/drafts/{draft['id']}/activate",
                                  json={"expected_version": draft["version"]}), 409, "ApprovalRequired")
        assert "1 given" in still["detail"], still
        assert (still["required"], still["given"], still["request_id"]) == (2, 1, request["id"])
    assert active_id(api, "trading") == before
    assert scalar(api.db, "SELECT count(*) FROM walltrack.config_activations") == activations
    with api.client("reader") as http:
        assert http.get(f"/requests/{request['id']}").json()["status"] == "pending"


def test_an_edit_voids_the_request_for_the_version_before(api: Api):
    set_policy(api, "scoring", 1)
    draft = make_draft(api, "scoring")
    with api.client("editor") as http:
        request = http.post(f"/config/scoring/drafts/{draft['id']}/requests",
                            json={"expected_version": draft["version"], "reason": "v1"}).json()
        edited = http.patch(f"/config/scoring/drafts/{draft['id']}", headers={"If-Match": str(draft["version"])},
                            json={"description": "changed after the request"})
        assert edited.status_code == 200
        voided = http.get(f"/requests/{request['id']}").json()
        assert voided["status"] == "void" and voided["current"] is False
        stale = http.post(f"/config/scoring/drafts/{draft['id']}/requests",
                          json={"expected_version": draft["version"], "reason": "old version"})
        assert stale.status_code == 412, stale.text
        problem(http.post(f"/config/scoring/drafts/{draft['id']}/requests", json={"reason": "no version"}),
                428, "PreconditionRequired")


# -- break glass ----------------------------------------------------------------------------------------------------


def test_break_glass_is_for_admins_only_needs_a_reason_and_is_audited(api: Api):
    set_policy(api, "api", 3)
    draft = make_draft(api, "api")
    before = active_id(api, "api")
    glass = {"expected_version": draft["version"], "break_glass": True, "reason": "exchange is down"}
    with api.client("operator") as http:
        problem(http.post(f"/config/api/drafts/{draft['id']}/activate", json=glass), 403, "Forbidden")
    with api.client("editor") as http:
        problem(http.post(f"/config/api/drafts/{draft['id']}/activate", json=glass), 403, "Forbidden")
    assert active_id(api, "api") == before
    assert scalar(api.db, "SELECT count(*) FROM walltrack.break_glass_grants") == 0
    with api.client("admin") as http:
        for reason in (None, "   "):
            blank = problem(http.post(f"/config/api/drafts/{draft['id']}/activate",
                                      json={**glass, "reason": reason}), 422, "InvalidValue")
            assert blank["field"] == "reason"
        both = problem(http.post(f"/config/api/drafts/{draft['id']}/activate",
                                 json={**glass, "at": "2099-01-01T00:00:00Z"}), 422, "InvalidValue")
        assert "break_glass" in {e["field"] for e in both["errors"]}
        live = http.post(f"/config/api/drafts/{draft['id']}/activate", json=glass)
        assert live.status_code == 200, live.text
        assert live.json()["id"] == draft["id"] and live.json()["status"] == "active"
        events = http.get("/events", params={"kind": "break_glass"}).json()
    assert active_id(api, "api") == draft["id"]
    assert [(e["actor"], e["domain"]) for e in events] == [(ADMIN, "api")]
    with psycopg.connect(api.db) as conn:
        audit = conn.execute("SELECT performed_by, reason FROM walltrack.config_audit_log WHERE config_id = %s"
                             " AND action = 'activate'", [draft["id"]]).fetchone()
        grant = conn.execute("SELECT actor, reason, config_id::text FROM walltrack.break_glass_grants").fetchall()
    assert audit == (ADMIN, "BREAK GLASS: exchange is down")
    assert grant == [(ADMIN, "exchange is down", draft["id"])]


# -- scheduled activation -------------------------------------------------------------------------------------------


def test_a_scheduled_activation_runs_within_two_seconds_of_its_time(api: Api):
    draft = make_draft(api, "discovery")
    before = active_id(api, "discovery")
    run_at = db_now(api.db) + timedelta(seconds=1.5)
    body = {"expected_version": draft["version"], "at": run_at.isoformat(), "reason": "at night"}
    with api.client("editor") as http:
        problem(http.post(f"/config/discovery/drafts/{draft['id']}/activate", json=body), 403, "Forbidden")
    with api.client("operator") as http:
        naive = http.post(f"/config/discovery/drafts/{draft['id']}/activate",
                          json={**body, "at": run_at.replace(tzinfo=None).isoformat()})
        problem(naive, 422, "InvalidRequest")
        problem(http.post(f"/config/discovery/drafts/{draft['id']}/activate", json={**body, "reason": ""}),
                422, "InvalidValue")
        problem(http.post(f"/config/discovery/drafts/{draft['id']}/activate", params={"wait_applied": 1},
                          json=body), 422, "InvalidValue")
        made = http.post(f"/config/discovery/drafts/{draft['id']}/activate", json=body)
    assert made.status_code == 202, made.text
    schedule = made.json()
    assert made.headers["location"].endswith(f"/api/v1/schedules/{schedule['id']}")
    assert (schedule["status"], schedule["created_by"], schedule["reason"]) == ("pending", OPERATOR, "at night")
    assert schedule["config_id"] == draft["id"] and schedule["draft_name"] == draft["name"]
    assert datetime.fromisoformat(schedule["run_at"]) == run_at
    assert active_id(api, "discovery") == before  # not yet
    with api.client("reader") as http:
        assert schedule["id"] in [s["id"] for s in http.get("/schedules").json()]
        assert wait_until(lambda: active_id(api, "discovery") == draft["id"], timeout=6), "it never ran"
        done = http.get(f"/schedules/{schedule['id']}").json()
        assert done["status"] == "done" and done["finished_at"] is not None
        assert http.get("/schedules").json() == []
        assert [s["id"] for s in http.get("/schedules", params={"status": "done"}).json()] == [schedule["id"]]
    with psycopg.connect(api.db) as conn:
        activated_at, by, reason = conn.execute(
            "SELECT activated_at, performed_by, reason FROM walltrack.config_activations WHERE config_id = %s",
            [draft["id"]]).fetchone()
    assert run_at <= activated_at <= run_at + timedelta(seconds=2), (run_at, activated_at)
    assert by == OPERATOR and "at night" in (reason or "")


def test_a_schedule_is_cancelled_by_an_operator_and_only_while_pending(api: Api):
    draft = make_draft(api, "exit")
    run_at = db_now(api.db) + timedelta(days=1)
    with api.client("operator") as http:
        schedule = http.post(f"/config/exit/drafts/{draft['id']}/activate",
                             json={"expected_version": draft["version"], "at": run_at.isoformat(),
                                   "reason": "tomorrow"}).json()
    with api.client("editor") as http:
        problem(http.request("DELETE", f"/schedules/{schedule['id']}", json={"reason": "no"}), 403, "Forbidden")
    with api.client("operator") as http:
        cancelled = http.request("DELETE", f"/schedules/{schedule['id'][:8]}", json={"reason": "not needed"})
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        problem(http.delete(f"/schedules/{schedule['id']}"), 409, "InvalidTransition")
        problem(http.delete("/schedules/abcdef12"), 404, "NotFound")
        assert http.get("/schedules", params={"status": "cancelled"}).json()[0]["id"] == schedule["id"]
    far = db_now(api.db) + timedelta(days=400)
    with api.client("operator") as http:
        too_far = http.post(f"/config/exit/drafts/{draft['id']}/activate",
                            json={"expected_version": draft["version"], "at": far.isoformat(), "reason": "later"})
        assert problem(too_far, 422, "InvalidValue")["field"] == "at"


def test_a_schedule_runs_exactly_once_with_three_servers_on_one_database(migrated_db: str):
    with ExitStack() as stack:
        first = stack.enter_context(serving(migrated_db))
        for _ in range(2):
            stack.enter_context(serving(migrated_db, roles=False))
        run_at = db_now(migrated_db) + timedelta(seconds=1)
        made = []
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            for domain in ("trading", "scoring", "risk", "exit"):
                draft = lifecycle.clone(conn, domain, actor="tests", name=f"thrice-{domain}")
                made.append(schedules.schedule(conn, domain, draft.id, draft.version, run_at, actor="tests",
                                               reason="three servers"))

        def finished() -> bool:
            with psycopg.connect(migrated_db) as conn:
                return all(schedules.get(conn, s.id).status != "pending" for s in made)

        assert wait_until(finished, timeout=8)
        time.sleep(1.2)  # two more rounds of each server: nothing runs twice
        with psycopg.connect(migrated_db) as conn:
            for schedule in made:
                assert schedules.get(conn, schedule.id).status == "done"
                runs = conn.execute("SELECT count(*) FROM walltrack.config_activations WHERE config_id = %s",
                                    [schedule.config_id]).fetchone()[0]
                kinds = [k for (k,) in conn.execute("SELECT kind FROM walltrack.change_events WHERE subject = %s"
                                                    " OR payload->>'schedule_id' = %s::text ORDER BY seq",
                                                    [schedule.id, schedule.id])]
                assert runs == 1
                assert kinds.count("schedule_executed") == 1 and "schedule_failed" not in kinds, kinds
        assert first.app.state.server.background.running


def test_at_start_the_server_runs_what_came_due_and_marks_what_it_missed(migrated_db: str):
    start = db_now(migrated_db)
    made = {}
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        for domain, ahead in (("cluster", 0.3), ("api", 2.6)):
            draft = lifecycle.clone(conn, domain, actor="tests", name=f"while-down-{domain}")
            made[domain] = schedules.schedule(conn, domain, draft.id, draft.version, start + timedelta(seconds=ahead),
                                              actor="tests", reason="while no server ran")
    time.sleep(max(0.0, (start + timedelta(seconds=3.0) - db_now(migrated_db)).total_seconds()))
    # Now the cluster one is 2.7 s late, past the grace; the api one 0.4 s. The rounds' interval is long: what
    # happens within it happened in the first round, at start.
    with serving(migrated_db, roles=False, background_interval=60.0, schedule_grace=timedelta(seconds=2)):
        def settled() -> dict[str, str] | None:
            with psycopg.connect(migrated_db) as conn:
                found = {d: schedules.get(conn, s.id).status for d, s in made.items()}
            return found if "pending" not in found.values() else None

        assert wait_until(settled, timeout=3) == {"cluster": "missed", "api": "done"}


# -- webhooks -------------------------------------------------------------------------------------------------------


def test_webhooks_are_managed_by_admins_and_receive_signed_events(migrated_db: str):
    secret = "s3cret-" + uuid.uuid4().hex
    # The rounds' interval is long: a delivery sent at once was woken by the database's NOTIFY.
    with receiving(secret) as receiver, serving(migrated_db, background_interval=30.0) as api:
        for role in ("reader", "editor", "operator"):
            with api.client(role) as http:
                problem(http.get("/webhooks"), 403, "Forbidden")
                problem(http.post("/webhooks", json={"name": "x", "url": receiver.url, "events": ["*"]}),
                        403, "Forbidden")
                problem(http.get("/webhooks/deliveries"), 403, "Forbidden")
                problem(http.delete("/webhooks/nobody"), 403, "Forbidden")
        with api.client("admin") as http:
            made = http.post("/webhooks", json={"name": "ops-feed", "url": receiver.url, "events": ["activated"],
                                                "secret": secret})
            assert made.status_code == 201, made.text
            assert made.json()["secret"] == secret and made.json()["created_by"] == ADMIN
            generated = http.post("/webhooks", json={"name": "chat", "url": f"http://127.0.0.1:{closed_port()}/x",
                                                     "events": ["policy_changed"], "format": "slack"})
            assert generated.status_code == 201, generated.text
            assert len(generated.json()["secret"]) >= 16
            problem(http.post("/webhooks", json={"name": "ops-feed", "url": receiver.url, "events": ["*"]}),
                    409, "AlreadyExists")
            problem(http.post("/webhooks", json={"name": "bad", "url": "ftp://example.com", "events": ["*"]}),
                    422, "InvalidValue")
            problem(http.post("/webhooks", json={"name": "bad", "url": receiver.url, "events": ["nothing"]}),
                    422, "InvalidRequest")
            listed = http.get("/webhooks")
            assert [(w["name"], w["events"], w["format"]) for w in listed.json()] == [
                ("chat", ["policy_changed"], "slack"), ("ops-feed", ["activated"], "json")]
            assert secret not in listed.text and generated.json()["secret"] not in listed.text
            assert all("secret" not in w for w in listed.json())

        draft = make_draft(api, "risk")
        with api.client("operator") as http:
            started = time.monotonic()
            live = http.post(f"/config/risk/drafts/{draft['id']}/activate",
                             json={"expected_version": draft["version"], "reason": "hooked"})
            assert live.status_code == 200, live.text
        assert wait_until(lambda: receiver.received, timeout=5), "nothing was delivered"
        assert time.monotonic() - started < 5  # not the interval's 30 s: NOTIFY woke the rounds
        got = receiver.received[0]
        assert got.signed
        assert webhooks.verify(secret, got.headers["X-Walltrack-Timestamp"], got.body,
                               got.headers["X-Walltrack-Signature"])
        assert not webhooks.verify("another secret, wrong", got.headers["X-Walltrack-Timestamp"], got.body,
                                   got.headers["X-Walltrack-Signature"])
        assert got.headers["X-Walltrack-Event"] == "activated"
        assert got.json["kind"] == "activated" and got.json["payload"]["domain"] == "risk"
        assert got.json["payload"]["id"] == draft["id"] and got.json["payload"]["reason"] == "hooked"

        with api.client("admin") as http:
            def succeeded() -> list[dict[str, Any]]:
                found = http.get("/webhooks/deliveries", params={"webhook": "ops-feed"}).json()
                return [d for d in found if d["status"] == "succeeded"]

            delivered = wait_until(succeeded, timeout=3)
            assert delivered and delivered[0]["attempts"] == 1 and delivered[0]["last_status"] == 200
            assert str(delivered[0]["id"]) == got.headers["X-Walltrack-Delivery"]
            assert http.get("/webhooks/deliveries", params={"status": "failed"}).json() == []
            gone = http.delete("/webhooks/ops-feed")
            assert gone.status_code == 204
            problem(http.delete("/webhooks/ops-feed"), 404, "NotFound")
            assert [w["name"] for w in http.get("/webhooks").json()] == ["chat"]
            kept = http.get("/webhooks/deliveries", params={"webhook": "ops-feed"}).json()
            assert [d["id"] for d in kept] == [delivered[0]["id"]]  # its deliveries stay


def test_a_failed_delivery_is_retried_with_backoff_until_it_succeeds(migrated_db: str):
    secret = "retry-" + uuid.uuid4().hex
    with receiving(secret, [500, 503]) as receiver, \
            serving(migrated_db, webhook_retry_base=0.05, background_interval=0.1) as api:
        with api.client("admin") as http:
            made = http.post("/webhooks", json={"name": "flaky", "url": receiver.url, "events": ["policy_changed"],
                                                "secret": secret})
            assert made.status_code == 201, made.text
        set_policy(api, "risk", 1)
        assert wait_until(lambda: len(receiver.received) >= 3, timeout=5), len(receiver.received)
        with api.client("admin") as http:
            delivered = wait_until(lambda: [d for d in http.get("/webhooks/deliveries").json()
                                            if d["status"] == "succeeded"], timeout=3)
        assert delivered[0]["attempts"] == 3 and delivered[0]["last_status"] == 200
        assert all(r.signed for r in receiver.received)
        assert len({r.headers["X-Walltrack-Delivery"] for r in receiver.received}) == 1


# -- events ---------------------------------------------------------------------------------------------------------


def test_events_follow_with_a_cursor_and_filter_by_kind(api: Api):
    with api.client("reader") as http:
        start = http.get("/events").json()
        cursor = start[-1]["seq"] if start else 0
        set_policy(api, "exit", 1)
        set_policy(api, "exit", 0)
        since = http.get("/events", params={"after": cursor}).json()
        assert [(e["kind"], e["domain"], e["actor"]) for e in since] == [("policy_changed", "exit", ADMIN)] * 2
        assert since[0]["seq"] < since[1]["seq"]
        assert http.get("/events", params={"after": since[-1]["seq"]}).json() == []
        assert http.get("/events", params={"after": cursor, "limit": 1}).json() == since[:1]
        assert http.get("/events", params={"after": cursor, "kind": "activated"}).json() == []
        two = http.get("/events", params=[("after", cursor), ("kind", "activated"), ("kind", "policy_changed")])
        assert two.json() == since
        problem(http.get("/events", params={"kind": "nonsense"}), 422, "InvalidRequest")
        problem(http.get("/events", params={"after": -1}), 422, "InvalidRequest")
    with api.client() as http:
        problem(http.get("/events"), 401, "AuthenticationFailed")


def test_each_endpoint_answers_only_the_roles_it_should(api: Api):
    """A quick look, role by role (test_server_roles calls every endpoint with every role)."""
    draft = make_draft(api, "cluster")
    with psycopg.connect(api.db, autocommit=True) as conn:
        request = changes.request(conn, "cluster", uuid.UUID(draft["id"]), draft["version"], actor="tests",
                                  reason="roles")
    calls: list[tuple[str, str, dict[str, Any], str]] = [
        ("GET", "/policies", {}, "reader"),
        ("PUT", "/policies/cluster", {"json": {"approvals": 0}}, "admin"),
        ("GET", "/requests", {}, "reader"),
        ("GET", f"/requests/{request.id}", {}, "reader"),
        ("GET", "/schedules", {}, "reader"),
        ("GET", "/events", {}, "reader"),
        ("GET", "/webhooks", {}, "admin"),
        ("GET", "/webhooks/deliveries", {}, "admin"),
    ]
    ranks = ["reader", "editor", "operator", "admin"]
    for method, path, kwargs, needs in calls:
        for role in ranks:
            with api.client(role) as http:
                answer = http.request(method, path, **kwargs)
            expected = 200 if ranks.index(role) >= ranks.index(needs) else 403
            assert answer.status_code == expected, (method, path, role, answer.text)
        with api.client() as http:
            assert http.request(method, path, **kwargs).status_code == 401
    for role in ("reader", "editor"):  # approving and rejecting need operator
        with api.client(role) as http:
            problem(http.post(f"/requests/{request.id}/approve"), 403, "Forbidden")
    with api.client("reader") as http:  # requesting needs editor
        problem(http.post(f"/config/cluster/drafts/{draft['id']}/requests",
                          json={"expected_version": draft["version"], "reason": "r"}), 403, "Forbidden")
    with api.client("operator") as http:  # the policy needs admin
        problem(http.put("/policies/cluster", json={"approvals": 2}), 403, "Forbidden")


# -- the background rounds ------------------------------------------------------------------------------------------


def test_the_background_rounds_survive_failing_steps_and_stop_cleanly(caplog: pytest.LogCaptureFixture):
    def broken() -> Iterator[Any]:
        raise psycopg.OperationalError("connection refused (simulated)")

    from contextlib import contextmanager

    rounds = Background(contextmanager(broken), ServerSettings(url="postgresql://nowhere", background_interval=0.01),
                        runner="tests")
    with caplog.at_level(logging.DEBUG, logger="walltrack_config.server"):
        rounds.start()
        assert wait_until(lambda: min(rounds.rounds.values()) >= 5, timeout=5), rounds.rounds
        assert rounds.running
        rounds.stop()
    assert not rounds.running
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Each failing step warned once, however many rounds it failed in; the rest went to debug.
    assert len(warnings) == 3, warnings
    assert all(w.startswith("background: ") and "connection refused (simulated)" in w for w in warnings), warnings
    assert {w.split(" failed")[0] for w in warnings} == {
        "background: running due schedules", "background: noting stale clients",
        "background: sending webhook deliveries"}
    assert any(r.levelno == logging.DEBUG and "failed again" in r.getMessage() for r in caplog.records)


def test_the_rounds_stop_with_the_server(migrated_db: str):
    with serving(migrated_db, roles=False) as api:
        background = api.app.state.server.background
        assert wait_until(lambda: background.running and min(background.rounds.values()) >= 1, timeout=5)
    assert not background.running


def test_a_stopping_server_cuts_off_the_delivery_under_way_and_begins_no_other(migrated_db: str):
    secret = "stop-" + uuid.uuid4().hex
    with receiving(secret, delay=3.0) as receiver:  # each answer 3 s late: 15 s for a batch of five
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            webhooks.add(conn, "slow", receiver.url, events=["policy_changed"], secret=secret, actor="tests")
            for domain in ("risk", "exit", "trading", "cluster", "api"):
                changes.set_policy(conn, domain, 1, actor="tests")
        rounds = Background(lambda: psycopg.connect(migrated_db, autocommit=True),
                            ServerSettings(url=migrated_db, background_interval=30.0), runner="tests")
        rounds.start()
        assert wait_until(lambda: receiver.received, timeout=5), "nothing was sent"
        started = time.monotonic()
        rounds.stop()
        took = time.monotonic() - started
    assert not rounds.running
    assert took < 1.5, took  # not the 3 s of the answer under way, nor the 10 s stop() waits at most
    assert len(receiver.received) == 1
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        # The one cut off is not counted: it and the four never begun come due again for the next server.
        assert sorted((d.status, d.attempts) for d in webhooks.deliveries(conn)) == [("pending", 0)] * 5
