"""The fleet over the REST API: HTTP clients report and leave as their token, readers list the fleet, and
activate/rollback with ?wait_applied= answer once every live client applied the change, or say which did not
(200 with `applied.complete` false and X-Applied: incomplete: the change is committed). Refusals write nothing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg

from server_support import Api, serving
from walltrack_config import fleet, lifecycle

PROBLEM = "application/problem+json"


def body(name: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "host": "bot-host",
        "pid": 77,
        "version": "0.1.0",
        "transport": "http",
        "domains": ["risk", "exit"],
        "heartbeat": 30,
        "applied": {},
        **changes,
    }


def fleet_rows(url: str) -> list[Any]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_jsonb(f) FROM walltrack.fleet_clients f ORDER BY id").fetchall()


def draft(url: str, domain: str = "risk") -> lifecycle.ConfigRow:
    with psycopg.connect(url, autocommit=True) as conn:
        return lifecycle.clone(conn, domain, actor="tests", name=f"api-fleet-{uuid.uuid4().hex[:6]}")


@contextmanager
def http_bot(api: Api, report: dict[str, Any], domain: str = "risk") -> Iterator[None]:
    """A client over HTTP that applies each new activation of `domain`: it sees it, then reports it applied."""
    with psycopg.connect(api.db, autocommit=True) as conn:
        start = fleet.current(conn)[domain]
    stop = threading.Event()
    with api.client("reader") as http:
        assert http.post("/fleet/report", json={**report, "applied": {domain: start}}).status_code == 204

    def run() -> None:
        applied = start
        with psycopg.connect(api.db, autocommit=True) as conn, api.client("reader") as http:
            while not stop.is_set():
                now = fleet.current(conn)[domain]
                if now != applied:
                    time.sleep(0.05)
                    answer = http.post("/fleet/report", json={**report, "applied": {domain: now}})
                    assert answer.status_code == 204, answer.text
                    applied = now
                stop.wait(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def test_clients_report_and_leave_as_their_token_and_readers_list_them(api: Api):
    mine = body("bot-1", applied={"risk": 1})
    with api.client("reader") as http:
        assert http.post("/fleet/report", json=mine).status_code == 204
        listed = http.get("/fleet")
        assert listed.status_code == 200
        document = listed.json()
        assert set(document["current"]) == {"trading", "scoring", "discovery", "cluster", "risk", "exit", "api"}
        (client,) = document["clients"]
        assert {k: client[k] for k in ("id", "name", "host", "pid", "transport", "domains", "heartbeat")} == {
            k: mine[k] for k in ("id", "name", "host", "pid", "transport", "domains", "heartbeat")
        }
        assert client["applied"] == {"risk": 1} and client["reported_by"] == "token:reader-token"
        assert client["stale"] is False and client["lag"]["risk"] >= 0
    before = fleet_rows(api.db)
    with api.client("admin") as other:  # another token: neither overwrites nor removes it
        refused = other.post("/fleet/report", json={**mine, "applied": {"risk": 99}})
        assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
        assert refused.json()["error"] == "InvalidTransition" and "token:reader-token" in refused.json()["detail"]
        assert other.delete(f"/fleet/{mine['id']}").status_code == 409
    assert fleet_rows(api.db) == before
    with api.client("reader") as http:
        assert http.delete(f"/fleet/{mine['id']}").status_code == 204
        gone = http.delete(f"/fleet/{mine['id']}")
        assert gone.status_code == 404 and gone.json()["error"] == "NotFound"
        assert http.get("/fleet").json()["clients"] == []
    with api.client() as anonymous:
        assert anonymous.post("/fleet/report", json=body("nobody")).status_code == 401
        assert anonymous.get("/fleet").status_code == 401
    assert fleet_rows(api.db) == []


def test_bad_reports_are_refused_naming_the_field_and_write_nothing(api: Api):
    with api.client("reader") as http:
        assert http.post("/fleet/report", json=body("kept")).status_code == 204
        before = fleet_rows(api.db)
        for bad, field in (
            (body("x", heartbeat=0), "heartbeat"),
            (body("x", pid=0), "pid"),
            (body("x", transport="smoke"), "transport"),
            (body("x", domains=["moon"]), "domains.0"),
            (body("x", applied={"risk": -1}), "applied.risk"),
            ({**body("x"), "name": ""}, "name"),
            ({**body("x"), "performed_by": "me"}, "performed_by"),
        ):
            answer = http.post("/fleet/report", json=bad)
            assert answer.status_code == 422 and answer.json()["field"] == field, (field, answer.text)
        for bad, field, words in (  # what only V13 knows
            (body("x", domains=["risk", "risk"]), "domains", "distinct"),
            (body("x", applied={"trading": 3}), "applied", "not one of the client's domains"),
            (body("bot\x1b[2J"), "name", "printable"),
            (body("x", host="\u202e"), "host", "printable"),
        ):
            answer = http.post("/fleet/report", json=bad)
            assert answer.status_code == 422, answer.text
            problem = answer.json()
            assert problem["error"] == "InvalidValue" and problem["field"] == field and words in problem["detail"]
        assert http.post("/fleet/report", json=body("nul\x00")).status_code == 422
        assert http.delete("/fleet/not-a-uuid").status_code == 422
    assert fleet_rows(api.db) == before


def test_activate_waits_until_every_live_client_applied(api: Api):
    row = draft(api.db)
    with http_bot(api, body("bot-a")), http_bot(api, body("bot-b")), api.client("operator") as http:
        answer = http.post(
            f"/config/risk/drafts/{row.id}/activate",
            params={"wait_applied": 10},
            json={"expected_version": row.version},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-applied"] == "complete"
    done = answer.json()
    applied = done.pop("applied")
    assert done["id"] == str(row.id) and done["status"] == "active"
    with psycopg.connect(api.db) as conn:
        made = lifecycle.last_activation(conn, "risk", row.id)
    assert made is not None
    assert applied["activation"] == made.seq and applied["complete"] is True and applied["live"] == 2
    assert applied["missing"] == [] and applied["waited"] < 10


def test_a_laggard_is_named_and_the_change_stays_committed(api: Api):
    row = draft(api.db)
    never = body("never-applies")
    with api.client("reader") as http:
        assert http.post("/fleet/report", json=never).status_code == 204
    with http_bot(api, body("keeps-up")), api.client("operator") as http:
        started = time.monotonic()
        answer = http.post(
            f"/config/risk/drafts/{row.id}/activate", params={"wait_applied": 1}, json={"expected_version": row.version}
        )
        assert 1 <= time.monotonic() - started < 8
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-applied"] == "incomplete"
    applied = answer.json()["applied"]
    assert applied["complete"] is False and applied["live"] == 2
    assert [(c["name"], c["host"], c["pid"], c["id"]) for c in applied["missing"]] == [
        ("never-applies", "bot-host", 77, never["id"])
    ]
    with psycopg.connect(api.db) as conn:
        assert lifecycle.active_row(conn, "risk").id == row.id


def test_rollback_waits_too_and_without_wait_applied_nothing_changes(api: Api):
    row = draft(api.db)
    with api.client("operator") as http:
        plain = http.post(f"/config/risk/drafts/{row.id}/activate", json={"expected_version": row.version})
        assert plain.status_code == 200 and "applied" not in plain.json() and "x-applied" not in plain.headers
        with http_bot(api, body("bot-a", domains=["risk"])):
            back = http.post("/config/risk/rollback", params={"wait_applied": 10}, json={"reason": "back"})
        assert back.status_code == 200, back.text
        assert back.json()["applied"]["complete"] is True and back.headers["x-applied"] == "complete"
        assert back.json()["status"] == "active" and back.json()["id"] != str(row.id)


def test_a_wait_out_of_range_is_refused_before_anything_is_written(api: Api):
    row = draft(api.db)
    with api.client("operator") as http:
        for value in ("121", "-1", "soon", "nan"):
            answer = http.post(
                f"/config/risk/drafts/{row.id}/activate",
                params={"wait_applied": value},
                json={"expected_version": row.version},
            )
            assert answer.status_code == 422 and answer.json()["field"] == "wait_applied", answer.text
    with psycopg.connect(api.db) as conn:
        assert lifecycle.get(conn, "risk", row.id).status == "draft"


def test_a_wait_holds_no_pooled_connection(migrated_db):
    """With one pooled connection, other requests are answered while an activation waits for the fleet."""
    with serving(migrated_db, pool_size=1) as api:
        row = draft(api.db)
        with api.client("reader") as http:
            assert http.post("/fleet/report", json=body("never")).status_code == 204
        result: dict[str, httpx.Response] = {}

        def wait() -> None:
            with api.client("operator") as http:
                result["answer"] = http.post(
                    f"/config/risk/drafts/{row.id}/activate",
                    params={"wait_applied": 3},
                    json={"expected_version": row.version},
                )

        waiting = threading.Thread(target=wait)
        waiting.start()
        time.sleep(1)
        with api.client("reader") as http:
            started = time.monotonic()
            assert http.get("/config/risk/rows").status_code == 200
            assert http.get("/fleet").status_code == 200
            assert time.monotonic() - started < 1.5  # the pool's wait is 3 s: nobody held its one connection
        waiting.join(15)
        assert result["answer"].status_code == 200 and result["answer"].json()["applied"]["complete"] is False
