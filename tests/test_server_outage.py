"""The database going away under a running API server, and coming back: reads keep being served from memory,
writes and readiness say 503 (as problems, quickly), liveness stays 200; after the restart it is ready again,
writes work and changes made meanwhile on the database are served."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from conftest import start_server, stop_server
from server_support import serving
from walltrack_config import lifecycle

PROBLEM = "application/problem+json"


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _problem(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["status"] == status and body["detail"]
    return body


def test_reads_survive_an_outage_writes_say_503_and_all_comes_back(own_server):
    url = own_server.get_uri()
    with serving(url, pool_timeout=0.5) as api, api.client("operator") as http:
        assert http.get("/readyz").status_code == 200
        draft = http.post("/config/risk/drafts", json={"name": "before the outage"}).json()
        before = http.get("/config")
        risk_before = http.get("/config/risk")
        assert before.status_code == risk_before.status_code == 200  # the operator's token is remembered now

        stop_server(own_server)
        assert wait_until(lambda: http.get("/readyz").status_code == 503, timeout=10)
        not_ready = _problem(http.get("/readyz"), 503)
        assert not_ready["error"] == "NotReady" and "database" in not_ready["detail"]
        assert http.get(f"{api.base}/readyz").status_code == 503  # where probes usually look, too
        assert http.get("/healthz").status_code == 200

        # Reads of the active settings come from memory: the same answer, the same ETag.
        during = http.get("/config")
        assert (during.status_code, during.content, during.headers["etag"]) == (
            200,
            before.content,
            before.headers["etag"],
        )
        assert http.get("/config/risk").content == risk_before.content
        assert http.get("/config", headers={"If-None-Match": before.headers["etag"]}).status_code == 304

        # Writes answer 503, as problems saying why, within the pool's timeout (never hang, never 500).
        writes = [
            (
                "PATCH",
                f"/config/risk/drafts/{draft['id']}",
                {"headers": {"If-Match": str(draft["version"])}, "json": {"settings": {"max_order_attempts": 6}}},
            ),
            ("POST", "/config/risk/drafts", {"json": {"name": "during the outage"}}),
            ("POST", f"/config/risk/drafts/{draft['id']}/activate", {"json": {"expected_version": draft["version"]}}),
            ("GET", "/config/risk/rows", {}),
        ]
        for method, path, kwargs in writes:
            started = time.monotonic()
            body = _problem(http.request(method, path, **kwargs), 503)
            assert time.monotonic() - started < 5, (method, path)
            assert body["error"] == "DatabaseUnavailable" and "database" in body["detail"], body
        with api.client("editor") as other:  # a token not checked before: cannot be checked now, and says so
            assert _problem(other.get("/config"), 503)["error"] == "DatabaseUnavailable"

        start_server(own_server)
        assert wait_until(lambda: http.get("/readyz").status_code == 200, timeout=10)
        assert http.get("/readyz").json()["status"] == "ready"
        edited = http.patch(
            f"/config/risk/drafts/{draft['id']}",
            headers={"If-Match": str(draft["version"])},
            json={"settings": {"max_order_attempts": 6}, "reason": "after the outage"},
        )
        assert edited.status_code == 200, edited.text
        # A change made straight on the database is served again: the listener is back.
        with psycopg.connect(url, autocommit=True) as conn:
            fresh = lifecycle.clone(conn, "exit", actor="psql-user")
            fresh = lifecycle.edit(conn, "exit", fresh.id, fresh.version, {"stagnation_hours": 31}, actor="psql-user")
            lifecycle.activate(conn, "exit", fresh.id, expected_version=fresh.version, actor="psql-user")
        assert wait_until(lambda: http.get("/config/exit").json()["settings"]["stagnation_hours"] == 31, timeout=10)
        assert http.get("/config").headers["etag"] != before.headers["etag"]
