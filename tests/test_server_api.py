"""The REST API over real HTTP and real PostgreSQL: reads from memory with ETags, the draft → edit →
activate → rollback flow as an authenticated principal, preconditions, refusals that write nothing."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from server_support import serving
from walltrack_config import lifecycle

PROBLEM = "application/problem+json"


def audit_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_health_readiness_and_security_headers(api):
    with api.client() as http:
        for path in ("/healthz", "/readyz"):
            answer = http.get(path)
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in answer.headers["content-security-policy"]
            assert answer.headers["cache-control"] == "no-store"
        assert http.get(f"{api.base}/readyz").json()["status"] == "ready"  # where probes usually look, too
        assert "strict-transport-security" not in http.get("/healthz").headers  # only under TLS


def test_every_read_needs_a_valid_bearer_token(api):
    with api.client() as http:
        for headers in (
            {},
            {"Authorization": "Basic YWRtaW46YWRtaW4="},
            {"Authorization": "Bearer"},
            {"Authorization": "Token abc"},
            {"Authorization": "Bearer wtc_000000000000_" + "A" * 43},
            {"Authorization": "Bearer " + "x" * 5000},
        ):
            answer = http.get("/config", headers=headers)
            assert answer.status_code == 401, (headers, answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert answer.json()["error"] == "AuthenticationFailed"
        token = api.tokens["reader"]
        assert http.get("/config", params={"access_token": token}).status_code == 401  # never from the URL


def test_active_settings_come_with_an_etag_and_304_then_change_on_activation(api):
    with api.client("reader") as http:
        first = http.get("/config")
        assert first.status_code == 200
        body = first.json()
        assert set(body["domains"]) == {"trading", "scoring", "discovery", "cluster", "risk", "exit", "api"}
        assert first.headers["etag"] == f'"a{body["activation"]}"'
        assert http.get("/config", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        risk = http.get("/config/risk")
        assert risk.json()["settings"]["max_drawdown_pct"] == body["domains"]["risk"]["settings"]["max_drawdown_pct"]
        same = http.get("/config/risk", headers={"If-None-Match": f'W/{risk.headers["etag"]}, "other"'})
        assert same.status_code == 304 and same.content == b""
        with psycopg.connect(api.db, autocommit=True) as conn:  # someone else, straight on the database
            draft = lifecycle.clone(conn, "risk", actor="psql-user")
            draft = lifecycle.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": 7}, actor="psql-user")
            lifecycle.activate(conn, "risk", draft.id, expected_version=draft.version, actor="psql-user")
        assert wait_until(
            lambda: http.get("/config/risk", headers={"If-None-Match": risk.headers["etag"]}).status_code == 200
        )
        after = http.get("/config/risk").json()
        assert after["settings"]["max_order_attempts"] == 7 and after["actor"] == "psql-user"
        assert http.get("/config", headers={"If-None-Match": first.headers["etag"]}).status_code == 200
        assert http.get("/config/nonsense").status_code == 404


def test_draft_edit_activate_rollback_as_the_authenticated_principal(api):
    with api.client("operator") as http:
        made = http.post("/config/risk/drafts", json={"name": "Tighter", "reason": "drawdown"})
        assert made.status_code == 201, made.text
        draft = made.json()
        assert draft["status"] == "draft" and made.headers["etag"] == f'"{draft["version"]}"'
        assert made.headers["location"].endswith(f"/api/v1/config/risk/rows/{draft['id']}")
        edited = http.patch(
            f"/config/risk/drafts/{draft['id'][:8]}",
            headers={"If-Match": made.headers["etag"]},
            json={"settings": {"max_drawdown_pct": 15}, "reason": "tighter"},
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["settings"]["max_drawdown_pct"] == 15
        diff = http.get("/config/risk/diff", params={"from": "active", "to": "Tighter"}).json()
        assert [c["field"] for c in diff["changes"]] == ["name", "max_drawdown_pct"]
        live = http.post(
            "/config/risk/drafts/Tighter/activate", json={"expected_version": edited.json()["version"], "reason": "go"}
        )
        assert live.status_code == 200, live.text
        assert live.json()["status"] == "active"
        # Read your writes: this server already serves what it just made live.
        assert http.get("/config/risk").json()["settings"]["max_drawdown_pct"] == 15
        back = http.post("/config/risk/rollback", json={"reason": "too tight"})
        assert back.status_code == 200, back.text
        assert http.get("/config/risk").json()["settings"]["max_drawdown_pct"] != 15
        restored = http.post(f"/config/risk/rows/{draft['id']}/restore", json={"name": "Again"})
        assert restored.status_code == 201 and restored.json()["status"] == "draft"
        gone = http.request("DELETE", f"/config/risk/drafts/{restored.json()['id']}", json={"reason": "no"})
        assert gone.status_code == 204
    with psycopg.connect(api.db) as conn:
        actors = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT performed_by FROM walltrack.config_audit_log WHERE config_table = 'risk_config'"
                " AND performed_at > now() - interval '1 minute'"
            )
        }
        assert actors == {"token:operator-token"}
        assert conn.execute(
            "SELECT performed_by, reason FROM walltrack.config_activations ORDER BY seq DESC LIMIT 2"
        ).fetchall() == [("token:operator-token", "too tight"), ("token:operator-token", "go")]


def test_a_client_cannot_choose_who_the_audit_trail_names(api):
    with api.client("editor") as http:
        forged = http.post(
            "/config/risk/drafts", json={"name": "x", "performed_by": "alice"}, headers={"X-Actor": "alice"}
        )
        assert forged.status_code == 422 and forged.json()["field"] == "performed_by"
        made = http.post("/config/risk/drafts", json={"name": "y"}, headers={"X-Actor": "alice"})
        assert made.status_code == 201
    with psycopg.connect(api.db) as conn:
        assert conn.execute(
            "SELECT performed_by FROM walltrack.config_audit_log ORDER BY id DESC LIMIT 1"
        ).fetchone() == ("token:editor-token",)


def test_if_match_is_required_and_a_stale_version_is_refused_without_writing(api):
    with api.client("operator") as http:
        draft = http.post("/config/risk/drafts", json={}).json()
        path = f"/config/risk/drafts/{draft['id']}"
        before = audit_count(api.db)
        missing = http.patch(path, json={"settings": {"max_order_attempts": 4}})
        assert missing.status_code == 428 and missing.headers["content-type"] == PROBLEM
        assert (
            http.patch(path, headers={"If-Match": "nonsense"}, json={"settings": {"max_order_attempts": 4}}).status_code
            == 422
        )
        ok = http.patch(path, headers={"If-Match": str(draft["version"])}, json={"settings": {"max_order_attempts": 4}})
        assert ok.status_code == 200
        after_one = audit_count(api.db)
        stale = http.patch(
            path, headers={"If-Match": f'"{draft["version"]}"'}, json={"settings": {"max_order_attempts": 5}}
        )
        assert stale.status_code == 412, stale.text
        assert stale.json()["error"] == "StaleVersion"
        assert http.post(f"{path}/activate", json={"reason": "no version"}).status_code == 428
        old = http.post(f"{path}/activate", json={"expected_version": draft["version"]})
        assert old.status_code == 412
        assert audit_count(api.db) == after_one == before + 1
        assert http.get(f"/config/risk/rows/{draft['id']}").json()["settings"]["max_order_attempts"] == 4


def test_bad_values_and_unknown_fields_name_the_field_and_write_nothing(api):
    with api.client("editor") as http:
        draft = http.post("/config/risk/drafts", json={}).json()
        path, match = f"/config/risk/drafts/{draft['id']}", {"If-Match": str(draft["version"])}
        before = audit_count(api.db)
        bad = http.patch(path, headers=match, json={"settings": {"max_drawdown_pct": 1000}})
        assert bad.status_code == 422 and bad.json()["field"] == "max_drawdown_pct", bad.text
        unknown = http.patch(path, headers=match, json={"settings": {"max_drawdown_pc": 10}})
        assert unknown.status_code == 422 and "max_drawdown_pct" in unknown.json()["detail"]
        nan = http.patch(
            path,
            headers=match,
            content=b'{"settings": {"max_drawdown_pct": NaN}}',
        )
        assert nan.status_code in (400, 422)
        empty = http.patch(path, headers=match, json={})
        assert empty.status_code == 422
        not_json = http.patch(path, headers={**match, "Content-Type": "application/json"}, content=b"{oops")
        assert not_json.status_code == 400
        deep = http.patch(
            path,
            headers={**match, "Content-Type": "application/json"},
            content=b'{"settings": {"drawdown_reduction_tiers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        )
        assert deep.status_code in (400, 422), deep.text
        nul = http.patch(path, headers=match, json={"settings": {"max_order_attempts": 4}, "reason": "a\u0000b"})
        assert nul.status_code == 400
        active = http.get("/config/risk/rows/active").json()
        not_a_draft = http.patch(
            f"/config/risk/drafts/{active['id']}",
            headers={"If-Match": str(active["version"])},
            json={"settings": {"max_order_attempts": 4}},
        )
        assert not_a_draft.status_code == 409
        assert audit_count(api.db) == before


def test_rows_by_reference_and_their_refusals(api):
    with api.client("reader") as http:
        rows = http.get("/config/risk/rows").json()
        assert {r["status"] for r in rows} == {"default", "active"}
        assert [r["status"] for r in http.get("/config/risk/rows", params={"status": "default"}).json()] == ["default"]
        assert http.get("/config/risk/rows", params={"status": "bogus"}).status_code == 422
        active = http.get("/config/risk/rows/active")
        assert active.headers["etag"] == f'"{active.json()["version"]}"'
        assert http.get(f"/config/risk/rows/{active.json()['id'][:6]}").json()["id"] == active.json()["id"]
        assert http.get("/config/risk/rows/Active Configuration").json()["id"] == active.json()["id"]
        assert http.get("/config/risk/rows/nope").status_code == 404
        assert http.get("/config/risk/rows/draft").status_code == 404
        assert http.get("/config/bogus/rows").status_code == 404
        assert http.get("/config/risk/rows/a%00b").status_code in (400, 404)


def test_two_operators_racing_to_activate_one_draft_one_wins_the_other_is_told(api):
    with api.client("operator") as http:
        draft = http.post("/config/risk/drafts", json={}).json()
    results: list[int] = []
    barrier = threading.Barrier(6)

    def go() -> None:
        with api.client("operator") as mine:
            barrier.wait()
            results.append(
                mine.post(
                    f"/config/risk/drafts/{draft['id']}/activate",
                    json={"expected_version": draft["version"], "reason": "race"},
                ).status_code
            )

    threads = [threading.Thread(target=go) for _ in range(6)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert sorted(results)[0] == 200 and results.count(200) == 1, results
    assert all(code in (409, 412) for code in results if code != 200), results
    with psycopg.connect(api.db) as conn:
        assert (
            conn.execute("SELECT count(*) FROM walltrack.config_activations WHERE reason = 'race'").fetchone()[0] == 1
        )


def test_two_operators_activating_different_drafts_both_land_in_commit_order(api):
    with api.client("operator") as http:
        drafts = [http.post("/config/exit/drafts", json={"name": f"d{i}"}).json() for i in range(2)]
    codes: list[int] = []

    def go(d) -> None:
        with api.client("operator") as mine:
            codes.append(
                mine.post(
                    f"/config/exit/drafts/{d['id']}/activate", json={"expected_version": d["version"]}
                ).status_code
            )

    threads = [threading.Thread(target=go, args=(d,)) for d in drafts]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert codes == [200, 200]
    with psycopg.connect(api.db) as conn:
        last = conn.execute(
            "SELECT config_id::text FROM walltrack.config_activations WHERE config_table = 'exit_config'"
            " ORDER BY seq DESC LIMIT 1"
        ).fetchone()[0]
    with api.client("reader") as http:
        assert wait_until(lambda: http.get("/config/exit").json()["id"] == last)


def test_history_pages_by_cursor_and_filters(api):
    with api.client("editor") as http:
        draft = http.post("/config/discovery/drafts", json={}).json()
        version = draft["version"]
        for n in range(5):
            answer = http.patch(
                f"/config/discovery/drafts/{draft['id']}",
                headers={"If-Match": str(version)},
                json={"settings": {"min_trades": 11 + n}, "reason": f"step {n}"},
            )
            version = answer.json()["version"]
    with api.client("reader") as http:
        seen, cursor = [], None
        while True:
            page = http.get(
                "/history", params={"domain": "discovery", "limit": 2, **({"cursor": cursor} if cursor else {})}
            )
            assert page.status_code == 200, page.text
            body = page.json()
            seen += body["entries"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        ids = [e["id"] for e in seen]
        assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids)) == 6  # create + 5 updates
        assert seen[0]["changes"] == [{"field": "min_trades", "old": 14, "new": 15}]
        assert seen[0]["reason"] == "step 4" and seen[0]["performed_by"] == "token:editor-token"
        mine = http.get("/history", params={"actor": "token:editor-token"}).json()["entries"]
        assert len(mine) == 6
        assert http.get("/history", params={"actor": "nobody"}).json() == {"entries": [], "next_cursor": None}
        assert http.get("/history", params={"since": "2999-01-01T00:00:00Z"}).json()["entries"] == []
        assert len(http.get("/history", params={"until": "2999-01-01T00:00:00Z", "limit": 500}).json()["entries"]) >= 6
        for bad in (
            {"cursor": "abc"},
            {"limit": 0},
            {"limit": 501},
            {"since": "yesterday"},
            {"domain": "bogus"},
            {"since": "2026-01-01T00:00:00"},
        ):
            answer = http.get("/history", params=bad)
            assert answer.status_code in (404, 422), (bad, answer.text)
            assert answer.headers["content-type"] == PROBLEM


def test_export_then_import_dry_run_then_drafts_then_activation_by_role(api):
    import yaml

    with api.client("reader") as http:
        exported = http.get("/export")
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/yaml")
        document = yaml.safe_load(exported.text)
        assert http.get("/export", params={"format": "json"}).json()["format"] == document["format"]
    document["domains"]["risk"]["settings"]["max_order_attempts"] = 9
    document["domains"]["exit"]["settings"]["stagnation_hours"] = 30
    body = yaml.safe_dump(document).encode()
    before = audit_count(api.db)
    with api.client("editor") as http:
        dry = http.post("/import", content=body, headers={"Content-Type": "application/yaml"})
        assert dry.status_code == 200, dry.text
        assert {d["domain"]: [c["field"] for c in d["changes"]] for d in dry.json()["domains"]} == {
            "risk": ["max_order_attempts"],
            "exit": ["stagnation_hours"],
        }
        assert audit_count(api.db) == before
        broken = dict(
            document, domains={"risk": {"settings": {"max_drawdown_pct": 500, "bogus": 1}}, "nope": {"settings": {}}}
        )
        refused = http.post("/import", params={"dry_run": "false"}, json=broken)
        assert refused.status_code == 400, refused.text
        assert len(refused.json()["errors"]) == 3
        assert http.post("/import", params={"dry_run": "false", "activate": "true"}, content=body).status_code == 403
        assert audit_count(api.db) == before
        drafted = http.post("/import", params={"dry_run": "false"}, content=body)
        assert drafted.status_code == 200, drafted.text
        assert {d["draft"]["status"] for d in drafted.json()["domains"]} == {"draft"}
    with api.client("operator") as http:
        live = http.post("/import", params={"dry_run": "false", "activate": "true"}, content=body)
        assert live.status_code == 200, live.text
        assert http.get("/config/risk").json()["settings"]["max_order_attempts"] == 9
        again = http.post("/import", params={"dry_run": "false"}, content=body)
        assert again.status_code == 200 and again.json()["domains"] == []


def test_a_body_over_the_limit_is_refused_before_anything_is_written(migrated_db):
    with serving(migrated_db, body_limit=4096) as api, api.client("editor") as http:
        before = audit_count(api.db)
        big = http.post("/import", params={"dry_run": "false"}, content=b"domains: {}\n" + b"#" * 10_000)
        assert big.status_code == 413 and big.headers["content-type"] == PROBLEM
        assert big.headers["x-content-type-options"] == "nosniff"

        def chunks():
            yield b'{"name": "'
            yield b"x" * 10_000
            yield b'"}'

        streamed = http.post("/config/risk/drafts", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        assert audit_count(api.db) == before


@pytest.mark.parametrize("path", ["/config", "/nothing-here", "/config/risk/rows/x/y/z"])
def test_unknown_routes_and_methods_are_problems_too(api, path):
    with api.client("reader") as http:
        answer = http.put(path, json={})
        assert answer.status_code in (404, 405)
        assert answer.headers["content-type"] == PROBLEM


def test_the_stream_refuses_like_every_other_route(api):
    with api.client() as http:
        assert http.get("/stream").status_code == 401
    with api.client("reader") as http:
        for params, status in (({"domains": "risk,bogus"}, 404), ({"domains": "x" * 500}, 422)):
            answer = http.get("/stream", params=params)
            assert answer.status_code == status and answer.headers["content-type"] == PROBLEM, answer.text
