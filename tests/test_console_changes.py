"""The console's change management over real HTTP (issue 13): approval policies on /admin, "Request approval" on the
draft editor, /requests (the diff, who asked and why, approve and reject for other operators only), the activate
page saying what is missing and scheduling instead, /schedules (cancel), /admin/webhooks (the secret shown once,
the delivery log). Every refusal, by role, by rule or for a missing CSRF token, writes nothing.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from console_support import Browser, signed_in
from server_support import Api, serving
from test_console_drafts import diff_cells, form_of, new_draft, post_form, row
from walltrack_config import audit, changes, lifecycle, schedules, webhooks
from walltrack_config.domains import DOMAINS

REQUEST = re.compile(r"^/requests/(?P<id>[0-9a-f-]{36})\?done=requested$")
SCHEDULED = re.compile(r"^/schedules\?done=scheduled&id=(?P<id>[0-9a-f-]{36})$")
SECRET = re.compile(r'<code class="token" id="new-secret">([^<]+)</code>')


def connect(api: Api) -> psycopg.Connection[Any]:
    return psycopg.connect(api.db, autocommit=True)


def written(api: Api) -> tuple[object, ...]:
    """What a refused post must leave as it was: the config rows, the audit log, policies, requests and their
    decisions, schedules, webhooks, events."""
    with connect(api) as conn:
        rows = tuple((d, r.id, r.status, r.version) for d in DOMAINS for r in lifecycle.rows(conn, d))
        requests = tuple((r.id, r.status, r.decisions) for r in changes.requests(conn, status=None, limit=1000))
        plans = tuple((s.id, s.status) for s in schedules.schedules(conn, status=None, limit=1000))
        hooks = tuple(h.name for h in webhooks.webhooks(conn))
        events = conn.execute("SELECT count(*) FROM walltrack.change_events").fetchone()
        return (rows, len(audit.entries(conn, limit=10_000)), tuple(p.approvals for p in changes.policies(conn)),
                requests, plans, hooks, events)


def set_policy(api: Api, domain: str, approvals: int) -> None:
    with connect(api) as conn:
        changes.set_policy(conn, domain, approvals, actor="tests")


def no_inline_code(page: str) -> None:
    assert " style=" not in page and " onclick" not in page and "<script>" not in page


def labelled(page: str) -> None:
    """Every visible input, select and textarea has a <label for> (or sits in one)."""
    for tag in re.finditer(r"<(input|select|textarea)\b[^>]*>", page):
        text = tag[0]
        if 'type="hidden"' in text:
            continue
        found = re.search(r'\bid="([^"]+)"', text)
        assert found, f"an input without an id: {text}"
        before = page[:tag.start()]
        inside = before.rfind("<label") > before.rfind("</label>")
        assert inside or f'<label for="{found[1]}"' in page or f'<label class="sr-only" for="{found[1]}"' in page, text


def request_of(api: Api, request_id: str) -> changes.ChangeRequest:
    with connect(api) as conn:
        return changes.get(conn, request_id)


def ask(client: Browser, domain: str, draft: str, reason: str = "needs a look") -> str:
    """Request approval of the draft from its editor page, as the button does; the request's id."""
    path = f"/domains/{domain}/drafts/{draft}"
    answer = post_form(client, client.get(path), f"{path}/request", {"reason": reason})
    found = REQUEST.match(answer.headers.get("location", ""))
    assert answer.status_code == 303 and found, (answer.status_code, answer.text[:500])
    return found["id"]


def edited_draft(client: Browser, domain: str = "risk", **values: str) -> str:
    draft = new_draft(client, domain)
    path = f"/domains/{domain}/drafts/{draft}"
    if values:
        assert post_form(client, client.get(path), path, values).status_code == 303
    return draft


# -- navigation ---------------------------------------------------------------------------------------------------


def test_every_signed_in_user_sees_requests_and_schedules_and_only_admins_webhooks(api: Api) -> None:
    reader, admin = signed_in(api, "reader"), signed_in(api, "admin")
    for client, admin_links in ((reader, False), (admin, True)):
        page = client.get("/").text
        assert '<a href="/requests">Requests</a>' in page and '<a href="/schedules">Schedules</a>' in page
        assert ('<a href="/admin/webhooks">Webhooks</a>' in page) is admin_links
    for path in ("/requests", "/requests?show=all", "/schedules"):
        page = reader.get(path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"], path
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert 'aria-current="page"' in page.text
        no_inline_code(page.text)
    assert 'data-poll-seconds="2"' in reader.get("/schedules").text
    assert "<div data-refresh>" in reader.get("/requests").text and "No request is pending." in reader.get(
        "/requests").text
    for path in ("/admin/webhooks", "/requests", "/schedules"):
        signed_out = Browser(base_url=api.base, follow_redirects=False).get(path)
        assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login?next="), path
    assert reader.get("/admin/webhooks").status_code == 403
    assert reader.get(f"/requests/{uuid.uuid4()}").status_code == 404
    assert reader.get("/requests/zz").status_code == 404


# -- policies ------------------------------------------------------------------------------------------------------


def test_an_admin_sets_a_domains_policy_on_the_admin_page(api: Api) -> None:
    admin = signed_in(api, "admin", "ada")
    page = admin.get("/admin").text
    for domain in DOMAINS:
        assert f'<label class="sr-only" for="policy-{domain}">' in page
        assert re.search(rf'id="policy-{domain}" name="approvals" type="number" min="0" max="5"[^>]*value="0"', page)
    labelled(page)
    done = admin.submit("/admin", "/admin/policies/risk", {"approvals": "2", "reason": "two eyes"})
    assert done.status_code == 303 and done.headers["location"] == "/admin?done=policy&name=risk"
    shown = admin.get(done.headers["location"]).text
    assert "The approval policy of risk changed." in shown
    assert re.search(r'id="policy-risk"[^>]*value="2"', shown) and "by ada" in shown
    with connect(api) as conn:
        risk = next(p for p in changes.policies(conn) if p.domain == "risk")
        assert (risk.approvals, risk.updated_by) == (2, "ada")
    assert "risk: 2" in admin.get("/requests").text

    before = written(api)
    for action, data, status in (("/admin/policies/risk", {"approvals": "6"}, 422),
                                 ("/admin/policies/risk", {"approvals": "one"}, 422),
                                 ("/admin/policies/risk", {"approvals": "-1"}, 422),
                                 ("/admin/policies/nope", {"approvals": "1"}, 404)):
        answer = admin.submit("/admin", action, data)
        assert answer.status_code == status, (action, data, answer.status_code, answer.text[:300])
        assert "Nothing was changed." in answer.text
    typed = admin.submit("/admin", "/admin/policies/trading", {"approvals": "9"}).text
    assert re.search(r'id="policy-trading"[^>]*value="9"', typed)  # what was typed, kept
    operator = signed_in(api, "operator")
    token = operator.csrf("/")
    refused = operator.post("/admin/policies/risk", data={"csrf": token, "approvals": "0"},
                            headers={"origin": api.base})
    assert refused.status_code == 403
    without = admin.post("/admin/policies/risk", data={"approvals": "0"}, headers={"origin": api.base})
    assert without.status_code == 403 and "Form refused" in without.text
    assert written(api) == before


# -- requests ------------------------------------------------------------------------------------------------------


def test_an_editor_requests_approval_from_the_editor_when_the_policy_asks_for_it(api: Api) -> None:
    set_policy(api, "risk", 1)
    eddie = signed_in(api, "editor", "eddie")
    free = new_draft(eddie, "trading")  # trading needs no approval: no form
    assert 'id="request-approval"' not in eddie.get(f"/domains/trading/drafts/{free}").text

    draft = edited_draft(eddie, "risk", max_order_attempts="5")
    path = f"/domains/risk/drafts/{draft}"
    page = eddie.get(path).text
    assert "risk needs 1 approval</strong> before a draft goes live" in page and "no request for v2 yet" in page
    assert f'<form class="stack request-approval" id="request-approval" method="post" action="{path}/request">' in page
    assert '<textarea id="request-reason" name="reason" rows="2" maxlength="2000" required' in page
    assert "Request approval</button>" in page
    labelled(page)
    no_inline_code(page)
    assert "Schedule…" not in page  # an editor neither activates nor schedules

    before = written(api)
    blank = post_form(eddie, eddie.get(path), f"{path}/request", {"reason": "   "})
    assert blank.status_code == 422 and 'id="request-error"' in blank.text and "nothing was requested" in blank.text
    stale = post_form(eddie, eddie.get(path), f"{path}/request", {"reason": "x", "version": "1"})
    assert stale.status_code == 412 and "Nothing was requested" in stale.text
    reader = signed_in(api, "reader")
    refused = reader.post(f"{path}/request", data={"csrf": reader.csrf("/"), "version": "2", "reason": "me too"},
                          headers={"origin": api.base})
    assert refused.status_code == 403
    no_csrf = eddie.post(f"{path}/request", data={"version": "2", "reason": "no token"}, headers={"origin": api.base})
    assert no_csrf.status_code == 403 and "Form refused" in no_csrf.text
    assert written(api) == before

    request_id = ask(eddie, "risk", draft, "fewer retries, reviewed with ops")
    made = request_of(api, request_id)
    assert (made.requested_by, made.version, made.status, made.reason) == (
        "eddie", 2, "pending", "fewer retries, reviewed with ops")
    shown = eddie.get(f"/requests/{request_id}?done=requested").text
    assert "Approval requested." in shown and "fewer retries, reviewed with ops" in shown
    assert "You asked for this" in shown
    page = eddie.get(path).text
    assert 'id="request-approval"' not in page  # one pending request per draft
    assert "1 more approval needed</strong> before v2 goes live" in page and f'href="/requests/{request_id}"' in page

    # Saving the draft again voids the request: the editor offers a new one.
    assert post_form(eddie, eddie.get(path), path, {"max_order_attempts": "6"}).status_code == 303
    assert request_of(api, request_id).status == "void"
    assert 'id="request-approval"' in eddie.get(path).text


def test_requests_show_the_diff_and_only_other_operators_may_decide(api: Api) -> None:
    set_policy(api, "risk", 1)
    olga, otto = signed_in(api, "operator", "olga"), signed_in(api, "operator", "otto")
    eddie, rita = signed_in(api, "editor", "eddie"), signed_in(api, "reader", "rita")
    draft = edited_draft(olga, "risk", max_order_attempts="5")
    request_id = ask(olga, "risk", draft, "five tries")
    approve, reject = f"/requests/{request_id}/approve", f"/requests/{request_id}/reject"

    listed = otto.get("/requests").text
    assert f'data-request="{request_id}"' in listed and "five tries" in listed and ">olga</strong>" in listed
    assert diff_cells(listed, "max_order_attempts") == ("3", "5")
    assert "0 of 1 approval: 1 more needed, from operators other than olga" in html.unescape(listed)
    assert f'action="{approve}"' in listed and f'action="{reject}"' in listed
    assert f'<textarea id="reject-{request_id}" name="comment" rows="2" maxlength="2000" required>' in listed
    labelled(listed)
    no_inline_code(listed)
    for client in (olga, eddie, rita):  # the requester, and those who may not approve, see no form
        page = client.get("/requests").text
        assert f'data-request="{request_id}"' in page and f'action="{approve}"' not in page
        assert f'action="{reject}"' not in page
    assert "You asked for this" in olga.get("/requests").text

    before = written(api)
    own = olga.submit("/requests", approve, {"comment": "looks fine to me"})
    assert own.status_code == 409 and 'role="alert"' in own.text and "Request for risk" in own.text
    for client in (eddie, rita):
        assert client.submit("/requests", approve, {}).status_code == 403
        assert client.submit("/requests", reject, {"comment": "no"}).status_code == 403
    no_comment = otto.submit("/requests", reject, {"comment": "  "})
    assert no_comment.status_code == 422 and "Say why it is rejected" in no_comment.text
    for data, headers in (({}, {"origin": api.base}), ({"csrf": "0" * 40}, {"origin": api.base})):
        assert otto.post(approve, data=data, headers=headers).status_code == 403
    assert otto.post(approve, data={"csrf": otto.csrf("/")}, headers={"origin": "https://evil.example"}
                     ).status_code == 403
    assert written(api) == before

    # Activating before the approval is refused, and the page says what is missing.
    confirm = olga.get(f"/domains/risk/drafts/{draft}/activate")
    assert "1 more approval needed</strong> before v2 goes live" in confirm.text
    assert f'<a href="/requests/{request_id}">See the request</a>' in confirm.text
    early = post_form(olga, confirm, f"/domains/risk/drafts/{draft}/activate", {"reason": "go"})
    assert early.status_code == 409 and "Not activated:" in early.text and "needs 1 approval" in early.text
    assert row(api, "risk", draft).status == "draft"

    approved = otto.submit("/requests", approve, {"comment": "ok for tonight"})
    assert approved.status_code == 303 and approved.headers["location"] == f"/requests/{request_id}?done=approved"
    page = otto.get(approved.headers["location"]).text
    assert "Approved." in page and ">otto</strong>" in page and "ok for tonight" in page
    assert "1 of 1 approval: enough to go live" in page and "You have decided on this request." in page
    assert f'href="/domains/risk/drafts/{draft}/activate">Activate…' in page
    assert f'action="{approve}"' not in page
    assert request_of(api, request_id).approved_by == ("otto",)
    ready = olga.get(f"/domains/risk/drafts/{draft}/activate").text
    assert "<strong>Approved</strong> by otto" in ready and "Activating is refused" not in ready

    live = post_form(olga, olga.get(f"/domains/risk/drafts/{draft}/activate"), f"/domains/risk/drafts/{draft}/activate",
                     {"reason": "approved by otto"})
    assert live.status_code == 303 and live.headers["location"].startswith("/domains/risk/activated?seq=")
    assert row(api, "risk", draft).status == "active" and request_of(api, request_id).status == "applied"
    assert f'data-request="{request_id}"' not in otto.get("/requests").text
    everything = otto.get("/requests?show=all").text
    assert f'data-request="{request_id}"' in everything and '<span class="badge applied">applied</span>' in everything


def test_a_rejection_needs_a_comment_closes_the_request_and_a_new_one_can_be_made(api: Api) -> None:
    set_policy(api, "exit", 2)
    eddie, otto = signed_in(api, "editor", "eddie"), signed_in(api, "operator", "otto")
    draft = edited_draft(eddie, "exit", stagnation_hours="7")
    request_id = ask(eddie, "exit", draft)
    assert "0 of 2 approvals: 2 more needed" in otto.get(f"/requests/{request_id}").text
    done = otto.submit(f"/requests/{request_id}", f"/requests/{request_id}/reject", {"comment": "not before Monday"})
    assert done.status_code == 303 and done.headers["location"] == f"/requests/{request_id}?done=rejected"
    page = otto.get(done.headers["location"]).text
    assert "Rejected: the request is closed." in page and '<span class="badge rejected">rejected</span>' in page
    assert "not before Monday" in page and f'action="/requests/{request_id}/approve"' not in page
    assert request_of(api, request_id).status == "rejected"
    again = otto.submit(f"/requests/{request_id}", f"/requests/{request_id}/approve", {})
    assert again.status_code == 409 and 'role="alert"' in again.text
    assert request_of(api, request_id).status == "rejected"
    assert 'id="request-approval"' in eddie.get(f"/domains/exit/drafts/{draft}").text
    assert ask(eddie, "exit", draft, "Monday then") != request_id


# -- the activate page: approvals missing, scheduling ----------------------------------------------------------------


def test_the_activate_page_explains_missing_approvals_and_links_to_the_request_form(api: Api) -> None:
    set_policy(api, "trading", 1)
    olga = signed_in(api, "operator", "olga")
    draft = edited_draft(olga, "trading", max_position_sol="2")
    path = f"/domains/trading/drafts/{draft}"
    confirm = olga.get(f"{path}/activate")
    assert confirm.status_code == 200
    assert "trading needs 1 approval</strong> before a draft goes live" in confirm.text
    assert f'<a href="{path}#request-approval">Request approval</a>' in confirm.text
    before = written(api)
    refused = post_form(olga, confirm, f"{path}/activate", {"reason": "now please"})
    assert refused.status_code == 409 and "Not activated:" in refused.text
    assert "no approved request" in refused.text or "needs 1 approval" in refused.text
    assert written(api) == before
    editor = olga.get(path).text
    assert 'id="request-approval"' in editor and f'href="{path}/activate#schedule">Schedule…' in editor

    set_policy(api, "trading", 0)
    plain = olga.get(f"{path}/activate").text
    assert 'class="approval' not in plain and "Request approval" not in plain


def test_an_operator_schedules_a_draft_from_the_activate_page_and_cancels_it(api: Api) -> None:
    olga, rita, eddie = (signed_in(api, "operator", "olga"), signed_in(api, "reader", "rita"),
                         signed_in(api, "editor", "eddie"))
    draft = edited_draft(olga, "risk", max_order_attempts="4")
    path = f"/domains/risk/drafts/{draft}"
    confirm = olga.get(f"{path}/activate")
    text = confirm.text
    assert '<section class="schedule" id="schedule" aria-labelledby="schedule-heading">' in text
    assert re.search(r'<input type="datetime-local" id="run-at" name="run_at" step="1" min="[0-9T:-]{16}" required',
                     text)
    assert '<label for="run-at">Schedule for (UTC)</label>' in text and "Schedule version 2</button>" in text
    labelled(text)
    no_inline_code(text)
    action = f"{path}/schedule"
    assert form_of(text, action)["version"] == "2"

    later = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    minute = later.strftime("%Y-%m-%dT%H:%M")
    before = written(api)
    for typed, status, says in (
            ({"run_at": "", "reason": "x"}, 422, "Give the date and time"),
            ({"run_at": "tomorrow", "reason": "x"}, 422, "Give the date and time"),
            ({"run_at": minute, "reason": " "}, 422, "Say why"),
            ({"run_at": "2001-01-01T00:00", "reason": "too late"}, 422, "Nothing was scheduled"),
            # At the ends of what Python's datetime holds: refused on the page, never a 500.
            ({"run_at": "0001-01-01T00:00+01:00", "reason": "x"}, 422, "Give the date and time"),
            ({"run_at": "9999-12-31T23:59-01:00", "reason": "x"}, 422, "Give the date and time"),
            ({"run_at": "9999-12-31T23:59", "reason": "x"}, 422, "Nothing was scheduled"),
            ({"run_at": "0001-01-01T00:00", "reason": "x"}, 422, "Nothing was scheduled"),
            ({"run_at": minute, "reason": "x", "version": "1"}, 409, "nothing was scheduled")):
        answer = post_form(olga, confirm, action, typed)
        assert answer.status_code == status, (typed, answer.status_code, answer.text[:400])
        assert 'id="schedule-error"' in answer.text and says in html.unescape(answer.text), (typed, says)
        if typed["run_at"] and typed["run_at"] != "tomorrow":
            assert f'value="{typed["run_at"]}"' in answer.text  # what was typed is kept
    for client in (rita, eddie):
        refused = client.post(action, data={"csrf": client.csrf("/"), "version": "2", "reason": "x",
                                            "run_at": later.strftime("%Y-%m-%dT%H:%M")}, headers={"origin": api.base})
        assert refused.status_code == 403
    assert olga.post(action, data={"version": "2", "reason": "x", "run_at": later.strftime("%Y-%m-%dT%H:%M")},
                     headers={"origin": api.base}).status_code == 403
    assert written(api) == before

    done = post_form(olga, confirm, action, {"run_at": later.strftime("%Y-%m-%dT%H:%M:%S"),
                                             "reason": "the quiet hour"})
    found = SCHEDULED.match(done.headers.get("location", ""))
    assert done.status_code == 303 and found, (done.status_code, done.text[:400])
    with connect(api) as conn:
        made = schedules.get(conn, found["id"])
    assert (made.run_at, made.version, made.created_by, made.status) == (later, 2, "olga", "pending")
    page = olga.get(done.headers["location"]).text
    assert "Scheduled: risk" in page and later.strftime("%Y-%m-%d %H:%M:%S UTC") in page
    assert f'<tr data-schedule="{made.id}" class="highlight">' in page and "the quiet hour" in page
    assert f'action="/schedules/{made.id}/cancel"' in page
    labelled(page)
    no_inline_code(page)
    assert "Already scheduled:" in olga.get(f"{path}/activate").text
    assert f'action="/schedules/{made.id}/cancel"' not in rita.get("/schedules").text

    before = written(api)
    for client in (rita, eddie):
        assert client.submit("/schedules", f"/schedules/{made.id}/cancel", {}).status_code == 403
    assert olga.post(f"/schedules/{made.id}/cancel", data={}, headers={"origin": api.base}).status_code == 403
    assert written(api) == before
    cancelled = olga.submit("/schedules", f"/schedules/{made.id}/cancel", {"reason": "not tonight"})
    assert cancelled.status_code == 303 and cancelled.headers["location"] == f"/schedules?done=cancelled&id={made.id}"
    page = olga.get(cancelled.headers["location"]).text
    assert "Cancelled: risk" in page and '<span class="badge cancelled">cancelled</span>' in page
    assert "Nothing is scheduled." in page
    again = olga.submit("/schedules", f"/schedules/{made.id}/cancel", {})
    assert again.status_code == 409 and "Nothing was cancelled" in again.text
    assert "data-poll-seconds" not in again.text and "data-refresh" not in again.text  # drawn at the form's address
    assert olga.submit("/schedules", f"/schedules/{uuid.uuid4()}/cancel", {}).status_code == 404
    assert row(api, "risk", draft).status == "draft"


def test_a_schedule_runs_and_the_schedules_page_shows_it_done(api: Api) -> None:
    olga = signed_in(api, "operator", "olga")
    draft = edited_draft(olga, "risk", max_order_attempts="8")
    path = f"/domains/risk/drafts/{draft}"
    soon = datetime.now(UTC) + timedelta(seconds=2)
    done = post_form(olga, olga.get(f"{path}/activate"), f"{path}/schedule",
                     {"run_at": soon.strftime("%Y-%m-%dT%H:%M:%S"), "reason": "in two seconds"})
    found = SCHEDULED.match(done.headers.get("location", ""))
    assert done.status_code == 303 and found
    deadline = time.monotonic() + 20
    while row(api, "risk", draft).status != "active":  # the server's background loop runs it
        assert time.monotonic() < deadline, "the schedule did not run"
        time.sleep(0.2)
    page = olga.get("/schedules").text
    assert f'data-schedule="{found["id"]}"' in page and '<span class="badge done">done</span>' in page
    assert "in two seconds" in page and "Nothing is scheduled." in page


# -- webhooks ------------------------------------------------------------------------------------------------------


def test_an_admin_adds_a_webhook_sees_its_secret_once_reads_its_deliveries_and_removes_it(migrated_db: str) -> None:
    with serving(migrated_db, webhook_retry_base=0.05) as api:
        admin = signed_in(api, "admin", "ada")
        page = admin.get("/admin/webhooks")
        assert page.status_code == 200 and "No webhook yet." in page.text and "Nothing delivered yet." in page.text
        for kind in webhooks.KINDS:
            assert f'<input type="checkbox" id="event-{kind}" name="event-{kind}">' in page.text
        labelled(page.text)
        no_inline_code(page.text)

        before = written(api)
        for data, status, says in (
                ({"name": "ops", "url": "https://hooks.example/x", "format": "json"}, 422, "choose at least one"),
                ({"name": "ops", "url": "ftp://hooks.example/x", "format": "json", "event-*": "on"}, 422, "url"),
                ({"name": "ops", "url": "https://hooks.example/x", "format": "xml", "event-*": "on"}, 422, "format"),
                ({"name": "-ops", "url": "https://hooks.example/x", "format": "json", "event-*": "on"}, 422, "name")):
            answer = admin.submit("/admin/webhooks", "/admin/webhooks", data)
            assert answer.status_code == status, (data, answer.status_code, answer.text[:400])
            assert says in answer.text and "Nothing was changed." in answer.text, (data, says)
        kept = admin.submit("/admin/webhooks", "/admin/webhooks", {
            "name": "ops", "url": "ftp://hooks.example/x", "format": "slack", "event-activated": "on"}).text
        assert 'value="ops"' in kept and 'value="ftp://hooks.example/x"' in kept  # what was typed, kept
        assert '<option value="slack" selected>' in kept
        assert '<input type="checkbox" id="event-activated" name="event-activated" checked>' in kept
        operator = signed_in(api, "operator")
        assert operator.get("/admin/webhooks").status_code == 403
        refused = operator.post("/admin/webhooks", data={"csrf": operator.csrf("/"), "name": "ops", "event-*": "on",
                                                         "url": "https://hooks.example/x", "format": "json"},
                                headers={"origin": api.base})
        assert refused.status_code == 403
        assert admin.post("/admin/webhooks", data={"name": "ops", "url": "https://hooks.example/x", "event-*": "on"},
                          headers={"origin": api.base}).status_code == 403
        assert written(api) == before

        # Nothing listens on port 9: each delivery fails, and the log says so.
        made = admin.submit("/admin/webhooks", "/admin/webhooks", {
            "name": "ops-alerts", "url": "http://127.0.0.1:9/hook", "format": "json",
            "event-request_created": "on", "event-activated": "on", "event-bogus": "on"})
        assert made.status_code == 200, made.text[:400]
        secret = SECRET.search(made.text)
        assert secret and len(html.unescape(secret[1])) >= 16 and "shown this once" in made.text
        with connect(api) as conn:
            (hook,) = webhooks.webhooks(conn)
        assert (hook.name, hook.url, set(hook.events), hook.format, hook.created_by) == (
            "ops-alerts", "http://127.0.0.1:9/hook", {"request_created", "activated"}, "json", "ada")
        listed = admin.get("/admin/webhooks").text
        assert 'data-webhook="ops-alerts"' in listed and html.unescape(secret[1]) not in listed
        taken = admin.submit("/admin/webhooks", "/admin/webhooks", {
            "name": "ops-alerts", "url": "https://hooks.example/y", "format": "json", "event-*": "on"})
        assert taken.status_code == 409 and "exists already" in taken.text

        with connect(api) as conn:
            draft = lifecycle.clone(conn, "risk", actor="tests")
            lifecycle.activate(conn, "risk", draft.id, expected_version=draft.version, actor="tests", reason="ping")
        deadline = time.monotonic() + 20
        while True:
            with connect(api) as conn:
                tried = [d for d in webhooks.deliveries(conn) if d.attempts >= 1]
            if tried:
                break
            assert time.monotonic() < deadline, "the delivery was not tried"
            time.sleep(0.2)
        log = admin.get("/admin/webhooks").text
        assert f'data-delivery="{tried[0].id}"' in log and "<code>activated</code>" in log
        assert 'class="delivery-error"' in log

        gone = admin.submit("/admin/webhooks", "/admin/webhooks/ops-alerts/remove")
        assert gone.status_code == 303 and gone.headers["location"] == "/admin/webhooks?done=removed&name=ops-alerts"
        after = admin.get(gone.headers["location"]).text
        assert "Webhook ops-alerts removed" in after and 'data-webhook="ops-alerts"' not in after
        assert f'data-delivery="{tried[0].id}"' in after  # its deliveries stay in the log
        missing = admin.submit("/admin/webhooks", "/admin/webhooks/ops-alerts/remove")
        assert missing.status_code == 404
