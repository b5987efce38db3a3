"""Approvals, scheduled activations and webhooks from the command line (V14), on real PostgreSQL, in-process:
policy, request, requests, approve, reject, activate --at / --break-glass, schedule list|cancel|run, webhook."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import run_cli
from test_cli import assert_one_line_error
from webhook_receiver import receiving

SECRET = "s3cret-for-the-cli-tests-0123456789"


@pytest.fixture
def wtc(migrated_db):
    """walltrack-config against this test's database, as `actor` (default 'ops')."""

    def run(*args: str, actor: str = "ops", input: str = ""):
        return run_cli("--database-url", migrated_db, "--actor", actor, *args, input=input)

    run.url = migrated_db
    return run


def as_json(done) -> object:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def ok(done) -> str:
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout


def state(url: str) -> tuple:
    """Everything V14 and the config tables hold, to show a refused command wrote nothing."""
    with psycopg.connect(url) as conn:
        return tuple(
            conn.execute(f"SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]') FROM {table} t")
            .fetchone()[0]
            for table in ("walltrack.risk_config", "walltrack.trading_config", "walltrack.approval_policies",
                          "walltrack.change_requests", "walltrack.change_approvals",
                          "walltrack.activation_schedules", "walltrack.change_events",
                          "walltrack.webhook_deliveries", "walltrack_auth.webhooks")
        )


def edited_draft(wtc, domain: str = "risk", setting: str = "max_order_attempts=9") -> dict:
    draft = as_json(wtc("--json", "draft", domain))
    ok(wtc("set", domain, setting))
    return draft


def live(wtc, domain: str = "risk") -> dict:
    return as_json(wtc("--json", "show", domain))


# -- policy ----------------------------------------------------------------------------------------------------------


def test_policy_set_and_show(wtc):
    shown = as_json(wtc("--json", "policy", "show"))
    assert [(p["domain"], p["approvals"]) for p in shown] == [
        (d, 0) for d in ("trading", "scoring", "discovery", "cluster", "risk", "exit", "api")]
    said = ok(wtc("policy", "set", "risk", "2", "--reason", "four eyes"))
    assert "risk needs 2 approvals by someone other than the requester" in said and "(was 0)" in said
    risk = next(p for p in as_json(wtc("--json", "policy", "show")) if p["domain"] == "risk")
    assert (risk["approvals"], risk["updated_by"]) == (2, "ops") and risk["updated_at"]
    text = ok(wtc("policy", "show"))
    assert any(line.split()[:2] == ["risk", "2"] for line in text.splitlines())
    assert as_json(wtc("--json", "policy", "set", "risk", "0"))["approvals"] == 0
    assert "needs no approval" in ok(wtc("policy", "set", "risk", "0"))


def test_policy_set_refuses_bad_input_and_writes_nothing(wtc):
    before = state(wtc.url)
    for args in (["risk", "6"], ["risk", "-1"], ["risk", "two"], ["riks", "1"], ["risk"]):
        done = wtc("policy", "set", *args)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (args, done.stderr)
    assert state(wtc.url) == before


# -- request, approve, reject, activate ---------------------------------------------------------------------------


def test_request_then_approve_by_another_then_activate(wtc):
    ok(wtc("policy", "set", "risk", "1"))
    draft = edited_draft(wtc)
    said = ok(wtc("request", "risk", "--reason", "more order attempts"))
    request_id = said.split()[1]
    assert f"for risk draft '{draft['name']}' ({draft['id'][:8]}) v2 created" in said
    assert f"needs 1 more approval from someone other than ops: walltrack-config approve {request_id[:8]}" in said
    [pending] = as_json(wtc("--json", "requests"))
    assert (pending["id"], pending["status"], pending["missing"], pending["requested_by"]) == (
        request_id, "pending", 1, "ops")
    assert pending["config_id"] == draft["id"] and pending["version"] == 2 and pending["current"] is True
    assert "0/1" in ok(wtc("requests", "risk"))
    assert as_json(wtc("--json", "requests", "trading")) == []

    # The requester may not approve their own request.
    before = state(wtc.url)
    assert_one_line_error(wtc("approve", request_id), 1)
    assert state(wtc.url) == before

    approved = ok(wtc("approve", request_id[:8], "--comment", "looks right", actor="bob"))
    assert "max_order_attempts" in approved  # what was approved, shown
    assert "approved by bob: 1 of 1" in approved and f"walltrack-config activate risk --draft {draft['id'][:8]}" in (
        approved)
    again = as_json(wtc("--json", "approve", request_id, actor="bob"))  # a second approval changes nothing
    assert again["approved_by"] == ["bob"] and again["missing"] == 0

    done = as_json(wtc("--json", "activate", "risk", "--yes", "--reason", "approved"))
    assert (done["id"], done["status"], done["max_order_attempts"]) == (draft["id"], "active", 9)
    assert as_json(wtc("--json", "requests")) == []
    [applied] = as_json(wtc("--json", "requests", "--all"))
    assert applied["status"] == "applied" and applied["decisions"][0]["comment"] == "looks right"


def test_request_needs_a_reason_and_a_draft(wtc):
    before = state(wtc.url)
    assert wtc("request", "risk").returncode == 2
    assert wtc("request", "risk", "--reason", "  ").returncode == 2
    assert_one_line_error(wtc("request", "risk", "--reason", "go"), 1, "risk has no draft")
    assert_one_line_error(wtc("request", "risk", "nonesuch", "--reason", "go"), 1, "no row of risk is 'nonesuch'")
    assert wtc("request", "riks", "--reason", "go").returncode == 2
    assert state(wtc.url) == before


def test_request_by_name_under_policy_zero_says_no_approval_is_needed(wtc):
    draft = edited_draft(wtc)
    made = as_json(wtc("--json", "request", "risk", draft["name"], "--reason", "for the record"))
    assert (made["config_id"], made["required"], made["missing"]) == (draft["id"], 0, 0)
    edited_draft(wtc, "trading", "max_concurrent_positions=7")
    said = ok(wtc("request", "trading", "--reason", "for the record"))
    assert "trading needs no approval (policy 0): activate it at once with: walltrack-config activate trading" in said


def test_reject_closes_the_request_and_needs_a_comment(wtc):
    ok(wtc("policy", "set", "risk", "1"))
    edited_draft(wtc)
    request_id = as_json(wtc("--json", "request", "risk", "--reason", "try"))["id"]
    assert wtc("reject", request_id, actor="bob").returncode == 2
    said = ok(wtc("reject", request_id, "--comment", "not now", actor="bob"))
    assert "rejected by bob" in said
    [closed] = as_json(wtc("--json", "requests", "risk", "--all"))
    assert closed["status"] == "rejected" and closed["decisions"][0]["decision"] == "reject"
    assert_one_line_error(wtc("activate", "risk", "--yes"), 1, "walltrack-config request risk")


def test_activate_without_approval_is_refused_naming_the_command_and_changes_nothing(wtc):
    ok(wtc("policy", "set", "risk", "1"))
    draft = edited_draft(wtc)
    before = state(wtc.url)
    done = wtc("activate", "risk", "--yes")
    assert_one_line_error(done, 1, f"risk needs 1 approval before draft '{draft['name']}' ({draft['id'][:8]}) v2",
                          f"walltrack-config request risk {draft['id'][:8]} --reason",
                          "--break-glass")
    assert done.stdout == ""  # refused before the question: nothing shown to confirm
    assert state(wtc.url) == before

    request_id = as_json(wtc("--json", "request", "risk", "--reason", "please"))["id"]
    assert_one_line_error(wtc("activate", "risk", "--yes"), 1, "0 given",
                          f"request {request_id[:8]} by ops is pending",
                          f"walltrack-config approve {request_id[:8]}")
    assert live(wtc)["id"] != draft["id"]


def test_the_database_refusal_reads_the_same_when_the_check_before_the_question_is_passed(wtc, monkeypatch):
    from walltrack_config.cli import changes as cli_changes

    ok(wtc("policy", "set", "risk", "1"))
    draft = edited_draft(wtc)
    before = state(wtc.url)
    monkeypatch.setattr(cli_changes, "check_approved", lambda *args: None)  # as if approved, then voided meanwhile
    assert_one_line_error(wtc("activate", "risk", "--yes"), 1, "risk needs 1 approval",
                          f"walltrack-config request risk {draft['id'][:8]}")
    assert state(wtc.url) == before


def test_an_edit_voids_the_request(wtc):
    ok(wtc("policy", "set", "risk", "1"))
    edited_draft(wtc)
    request_id = as_json(wtc("--json", "request", "risk", "--reason", "first"))["id"]
    ok(wtc("approve", request_id, actor="bob"))
    ok(wtc("set", "risk", "max_order_attempts=8"))
    assert_one_line_error(wtc("activate", "risk", "--yes"), 1, "no request for v3 is pending")
    [voided] = as_json(wtc("--json", "requests", "--all"))
    assert voided["status"] == "void"


def test_approve_and_reject_unknown_requests(wtc):
    before = state(wtc.url)
    assert_one_line_error(wtc("approve", "00000000-0000-0000-0000-000000000000", actor="bob"), 1, "no change request")
    assert_one_line_error(wtc("approve", "zz", actor="bob"), 1, "no change request")
    assert_one_line_error(wtc("reject", "abcdef12", "--comment", "no", actor="bob"), 1, "no change request")
    assert state(wtc.url) == before


# -- break glass ---------------------------------------------------------------------------------------------------


def test_break_glass_activates_without_approval_loudly_and_the_history_says_so(wtc):
    ok(wtc("policy", "set", "risk", "2"))
    draft = edited_draft(wtc)
    before = state(wtc.url)
    assert wtc("activate", "risk", "--break-glass", "--yes").returncode == 2  # needs a reason
    declined = wtc("activate", "risk", "--break-glass", "--reason", "outage", input="n\n")
    assert declined.returncode == 1 and "BREAK GLASS" in declined.stderr and "not done" in declined.stderr
    assert state(wtc.url) == before
    done = wtc("activate", "risk", "--break-glass", "--reason", "exchange outage", input="y\n")
    ok(done)
    assert "BREAK GLASS" in done.stderr and "policy asks for 2" in done.stderr
    assert "activated (BREAK GLASS)" in done.stdout
    assert live(wtc)["id"] == draft["id"]
    assert "BREAK GLASS: exchange outage" in ok(wtc("history", "risk", "--limit", "2"))
    with psycopg.connect(wtc.url) as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM walltrack.change_events ORDER BY seq")]
    assert "break_glass" in kinds


def test_break_glass_and_at_do_not_mix(wtc):
    edited_draft(wtc)
    done = wtc("activate", "risk", "--break-glass", "--at", "2027-01-01T00:00:00Z", "--reason", "x", "--yes")
    assert done.returncode == 2 and "Traceback" not in done.stderr


# -- schedules -------------------------------------------------------------------------------------------------------


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_activate_at_schedules_and_schedule_run_makes_it_live_when_due(wtc):
    draft = edited_draft(wtc)
    ok(wtc("policy", "set", "trading", "1"))
    unapproved = edited_draft(wtc, "trading", "max_concurrent_positions=7")
    declined = wtc("activate", "risk", "--at", soon(60), "--reason", "tonight", input="n\n")
    assert declined.returncode == 1 and "nothing was scheduled" in declined.stderr
    assert "max_order_attempts" in declined.stdout  # the changes were shown before the question
    assert as_json(wtc("--json", "schedule", "list")) == []

    at = soon(3)
    said = wtc("activate", "risk", "--at", at, "--reason", "tonight", input="y\n")
    assert "schedule" in said.stderr and "scheduled: schedule " in ok(said)
    assert "walltrack-config schedule cancel" in said.stdout
    other = wtc("--json", "activate", "trading", "--at", at, "--reason", "tonight too", "--yes")
    trading_schedule = as_json(other)
    assert "warning: the schedule fails when it runs unless approved by then" in other.stderr
    assert f"walltrack-config request trading {unapproved['id'][:8]}" in other.stderr

    listed = as_json(wtc("--json", "schedule", "list"))
    assert {(s["domain"], s["config_id"], s["status"]) for s in listed} == {
        ("risk", draft["id"], "pending"), ("trading", unapproved["id"], "pending")}
    assert "tonight" in ok(wtc("schedule", "list"))
    nothing = wtc("--json", "schedule", "run")
    if datetime.now(UTC) >= datetime.fromisoformat(at):
        pytest.skip("this machine took longer than the 3 s lead between scheduling and the first run")
    assert as_json(nothing) == {"schedules": [], "stale": 0, "deliveries": 0, "errors": []}
    assert live(wtc)["id"] != draft["id"]

    time.sleep(max(0.0, (datetime.fromisoformat(at) - datetime.now(UTC)).total_seconds()) + 0.3)
    ran = wtc("schedule", "run")
    assert ran.returncode == 1 and "Traceback" not in ran.stderr  # trading's failed: no approval
    assert "(risk): done" in ran.stdout and f"schedule {trading_schedule['id']} (trading): failed" in ran.stdout
    assert "error: 1 scheduled activation(s) did not go live" in ran.stderr
    assert live(wtc)["id"] == draft["id"] and live(wtc, "trading")["id"] != unapproved["id"]
    assert as_json(wtc("--json", "schedule", "list")) == []
    finished = {s["domain"]: s for s in as_json(wtc("--json", "schedule", "list", "--all"))}
    assert (finished["risk"]["status"], finished["trading"]["status"]) == ("done", "failed")
    assert ok(wtc("schedule", "run")).startswith("no schedule was due;")


def test_schedule_cancel(wtc):
    draft = edited_draft(wtc)
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    made = as_json(wtc("--json", "activate", "risk", "--at", f"{day}T23:00:00+01:00", "--reason", "later", "--yes"))
    assert datetime.fromisoformat(made["run_at"]) == datetime.fromisoformat(f"{day}T22:00:00+00:00")
    assert made["config_id"] == draft["id"]
    said = ok(wtc("schedule", "cancel", made["id"][:8], "--reason", "changed my mind"))
    assert f"cancelled schedule {made['id']}" in said
    [cancelled] = as_json(wtc("--json", "schedule", "list", "--all"))
    assert cancelled["status"] == "cancelled"
    assert_one_line_error(wtc("schedule", "cancel", made["id"]), 1)  # not pending any more
    assert_one_line_error(wtc("schedule", "cancel", "abcdef12"), 1, "no schedule")


@pytest.mark.parametrize(
    ("at", "code", "needle"),
    [
        ("2099-12-01T22:00:00", 2, "no time zone"),
        ("tomorrow", 2, "not an ISO 8601 time"),
        ("2020-01-01T00:00:00Z", 1, "not in the future"),
        ("2999-01-01T00:00:00Z", 1, "more than 366 days ahead"),
        # At the ends of what Python's datetime holds, in UTC or in this machine's zone: refused, never a crash.
        ("0001-01-01T00:00+01:00", 2, "out of range"),
        ("9999-12-31T23:59-01:00", 2, "out of range"),
        ("9999-12-31T23:59:59+00:00", 1, "more than 366 days ahead"),
        ("0001-01-01T00:00:00Z", 1, "not in the future"),
    ],
)
def test_activate_at_refuses_a_time_without_zone_or_in_the_past(wtc, at, code, needle):
    edited_draft(wtc)
    before = state(wtc.url)
    done = wtc("activate", "risk", "--at", at, "--reason", "x", "--yes")
    if "time zone" in needle or "ISO 8601" in needle:  # a usage error: with the usage line, as click has it
        assert done.returncode == code and needle in done.stderr and "Traceback" not in done.stderr, done.stderr
    else:
        assert_one_line_error(done, code, needle)
    assert state(wtc.url) == before


@pytest.fixture
def east_of_utc(monkeypatch):
    """This process's local time zone UTC+14 (Kiritimati), where 9999-12-31T23:00Z is in year 10000."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_moment_shows_a_time_the_local_zone_cannot_hold_in_its_own(east_of_utc):
    from walltrack_config.cli.schedules import moment

    assert moment(datetime(2026, 12, 1, 10, 0, tzinfo=UTC)) == "2026-12-02T00:00:00+14:00"
    assert moment(datetime(9999, 12, 31, 23, 0, tzinfo=UTC)) == "9999-12-31T23:00:00+00:00"
    assert moment(None) == ""


def test_activate_at_the_end_of_time_is_refused_in_one_line_east_of_utc(wtc, east_of_utc):
    edited_draft(wtc)
    before = state(wtc.url)
    for at in ("9999-12-31T23:00:00Z", "9999-12-31T12:00:00-11:00"):
        done = wtc("activate", "risk", "--at", at, "--reason", "x", "--yes")
        assert_one_line_error(done, 1, "more than 366 days ahead", "9999-12-31T23:00:00")
    assert state(wtc.url) == before


def test_activate_at_needs_a_reason_and_no_wait(wtc):
    edited_draft(wtc)
    before = state(wtc.url)
    assert wtc("activate", "risk", "--at", "2027-01-01T00:00:00Z", "--yes").returncode == 2
    assert wtc("activate", "risk", "--at", "2027-01-01T00:00:00Z", "--reason", "x", "--yes",
               "--wait-applied").returncode == 2
    assert state(wtc.url) == before


@pytest.fixture
def runner_role(server, wtc):
    """A LOGIN role that may run risk's schedules (UPDATE on risk_config) but not send webhook deliveries (no
    EXECUTE on claim_deliveries: only the owner and whom it grants have it); its connection string."""
    name = f"wt_runner_{uuid.uuid4().hex[:12]}"
    role = sql.Identifier(name)
    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
    with psycopg.connect(wtc.url, autocommit=True) as owner:
        owner.execute(sql.SQL("GRANT USAGE ON SCHEMA walltrack, walltrack_auth TO {}").format(role))
        owner.execute(sql.SQL("GRANT SELECT, UPDATE ON walltrack.risk_config TO {}").format(role))
    yield make_conninfo(wtc.url, user=name)
    with psycopg.connect(wtc.url, autocommit=True) as owner:
        owner.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(role))
        owner.execute(sql.SQL("DROP OWNED BY {}").format(role))
    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def test_schedule_run_prints_what_ran_before_a_failure_to_send_the_deliveries(wtc, runner_role):
    draft = edited_draft(wtc)
    at = soon(3)
    made = as_json(wtc("--json", "activate", "risk", "--at", at, "--reason", "tonight", "--yes"))
    time.sleep(max(0.0, (datetime.fromisoformat(at) - datetime.now(UTC)).total_seconds()) + 0.3)
    ran = run_cli("--database-url", runner_role, "--actor", "cron", "schedule", "run")
    assert "Traceback" not in ran.stderr
    assert f"schedule {made['id']} (risk): done" in ran.stdout  # what ran, first
    assert "1 due schedule(s) run; 0 client(s) newly stale; 0 webhook deliveries attempted" in ran.stdout
    [said] = ran.stderr.strip().splitlines()
    assert said.startswith("error: sending webhook deliveries failed: database: ") and "claim_deliveries" in said
    assert ran.returncode == 2  # the database's refusal, as any command's
    assert live(wtc)["id"] == draft["id"]

    again = run_cli("--database-url", runner_role, "--json", "schedule", "run")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    reported = json.loads(again.stdout)
    assert (reported["schedules"], reported["stale"], reported["deliveries"]) == ([], 0, 0)
    [error] = reported["errors"]
    assert error.startswith("sending webhook deliveries failed: database: ") and "claim_deliveries" in error


def test_schedule_run_grace_is_checked(wtc):
    for grace in ("5", "five minutes", "8d"):
        done = wtc("schedule", "run", "--grace", grace)
        assert done.returncode == 2 and "--grace" in done.stderr and "Traceback" not in done.stderr
    assert as_json(wtc("--json", "schedule", "run", "--grace", "30s"))["schedules"] == []


# -- webhooks --------------------------------------------------------------------------------------------------------


def test_webhook_add_prints_the_secret_once_and_list_never_shows_it(wtc):
    done = wtc("webhook", "add", "ops-hook", "https://example.invalid/hook", "--events", "activated,request_created")
    secret = ok(done).strip()
    assert len(secret) >= 16 and "\n" not in secret and "shown this once" in done.stderr
    listed = ok(wtc("webhook", "list"))
    assert "ops-hook" in listed and "activated,request_created" in listed and secret not in listed
    [hook] = as_json(wtc("--json", "webhook", "list"))
    assert (hook["name"], hook["format"], hook["events"]) == ("ops-hook", "json", ["activated", "request_created"])
    assert "secret" not in hook and secret not in json.dumps(hook)
    with_json = as_json(wtc("--json", "webhook", "add", "chat", "https://example.invalid/slack", "--events", "*",
                            "--format", "slack"))
    assert with_json["format"] == "slack" and len(with_json["secret"]) >= 16
    given = wtc("webhook", "add", "mine", "http://127.0.0.1:1/x", "--events", "*", "--secret-stdin",
                input=SECRET + "\n")
    assert ok(given) == "" and SECRET not in given.stderr
    assert {h["name"] for h in as_json(wtc("--json", "webhook", "list"))} == {"ops-hook", "chat", "mine"}
    assert "webhook chat removed" in ok(wtc("webhook", "remove", "chat"))
    assert_one_line_error(wtc("webhook", "remove", "chat"), 1)


def test_webhook_add_refuses_bad_input_and_writes_nothing(wtc):
    before = state(wtc.url)
    assert_one_line_error(wtc("webhook", "add", "h", "https://x.invalid/", "--events", "nonesuch"), 1, "events")
    assert wtc("webhook", "add", "h", "https://x.invalid/", "--events", " , ").returncode == 2
    assert wtc("webhook", "add", "h", "https://x.invalid/", "--events", "*", "--format", "xml").returncode == 2
    assert wtc("webhook", "add", "h", "https://x.invalid/").returncode == 2  # --events is required
    short = wtc("webhook", "add", "h", "https://x.invalid/", "--events", "*", "--secret-stdin", input="short\n")
    assert_one_line_error(short, 1, "secret")
    assert "short" not in short.stderr.replace("secret", "")
    assert_one_line_error(wtc("webhook", "add", "h", "ftp://x.invalid/", "--events", "*"), 1)
    assert_one_line_error(wtc("webhook", "add", "bad name", "https://x.invalid/", "--events", "*"), 1)
    for url in ("http://[::1", "https:///token-in-a-path", "http://x.invalid/a b"):
        refused = wtc("webhook", "add", "h", url, "--events", "*")
        assert_one_line_error(refused, 1, "url")
        assert url not in refused.stderr  # never quoted: a webhook's URL may be a credential
    assert wtc("webhook", "add", "h", "--events", "*").returncode == 2  # no URL
    both = wtc("webhook", "add", "h", "https://x.invalid/", "--events", "*", "--url-stdin", input="https://y/\n")
    assert both.returncode == 2 and "--url-stdin" in both.stderr
    assert_one_line_error(wtc("webhook", "add", "h", "--events", "*", "--url-stdin", input=""), 1, "url")
    assert_one_line_error(wtc("webhook", "add", "h", "--events", "*", "--url-stdin", input="http://[::1\n"), 1, "url")
    assert state(wtc.url) == before


def test_webhook_add_reads_the_url_from_stdin_then_the_secret(wtc):
    token_url = "https://hooks.slack.example/services/T000/B000/credential-in-the-url"
    done = wtc("--json", "webhook", "add", "chat", "--events", "activated", "--format", "slack", "--url-stdin",
               input=token_url + "\n")
    hook = as_json(done)
    assert hook["url"] == token_url and len(hook["secret"]) >= 16
    assert "credential-in-the-url" not in done.stderr
    mine = wtc("webhook", "add", "mine", "--events", "*", "--url-stdin", "--secret-stdin",
               input=f"  http://127.0.0.1:1/x \r\n{SECRET}\n")
    assert ok(mine) == "" and SECRET not in mine.stderr
    listed = {h["name"]: h for h in as_json(wtc("--json", "webhook", "list"))}
    assert (listed["chat"]["url"], listed["mine"]["url"]) == (token_url, "http://127.0.0.1:1/x")
    with psycopg.connect(wtc.url) as conn:
        assert conn.execute("SELECT secret FROM walltrack_auth.webhooks WHERE name = 'mine'").fetchone() == (SECRET,)


def test_schedule_run_sends_the_deliveries_and_webhook_deliveries_lists_them(wtc):
    with receiving(SECRET) as receiver:
        ok(wtc("webhook", "add", "receiver", receiver.url, "--events", "policy_changed,activated", "--secret-stdin",
               input=SECRET + "\n"))
        ok(wtc("policy", "set", "risk", "1", "--reason", "four eyes"))
        [pending] = as_json(wtc("--json", "webhook", "deliveries"))
        assert (pending["webhook"], pending["kind"], pending["status"]) == ("receiver", "policy_changed", "pending")
        assert as_json(wtc("--json", "schedule", "run"))["deliveries"] == 1
    [got] = receiver.received
    assert got.signed and got.json["kind"] == "policy_changed"
    [sent] = as_json(wtc("--json", "webhook", "deliveries", "receiver", "--status", "succeeded"))
    assert (sent["id"], sent["attempts"], sent["last_status"]) == (pending["id"], 1, 200)
    assert as_json(wtc("--json", "webhook", "deliveries", "--status", "pending")) == []
    assert as_json(wtc("--json", "webhook", "deliveries", "nonesuch")) == []
    text = ok(wtc("webhook", "deliveries"))
    assert "receiver" in text and "policy_changed" in text and "succeeded" in text
    assert wtc("webhook", "deliveries", "--status", "lost").returncode == 2


def test_the_last_answer_says_the_status_once():
    from walltrack_config.cli.webhooks import _answer
    from walltrack_config.webhooks import Delivery

    def answered(status: int | None, error: str | None) -> str:
        return _answer(Delivery(1, "ops", "activated", 1, "pending", 1, status, error, datetime.now(UTC), None, None))

    assert answered(503, "HTTP 503") == "HTTP 503"
    assert answered(302, "HTTP 302 (redirects are not followed)") == "HTTP 302 (redirects are not followed)"
    assert answered(200, None) == "HTTP 200"
    assert answered(None, "ConnectError") == "ConnectError"
    assert answered(None, None) == ""


def test_commands_say_when_there_is_nothing(wtc):
    assert ok(wtc("requests")) == "no pending change requests\n"
    assert ok(wtc("requests", "--all")) == "no change requests\n"
    assert ok(wtc("schedule", "list")) == "no pending scheduled activations\n"
    assert ok(wtc("webhook", "list")) == "no webhooks\n"
    assert ok(wtc("webhook", "deliveries")) == "no webhook deliveries\n"


def test_the_new_commands_need_v14(db_at):
    url = db_at(13)
    for args in (["policy", "show"], ["requests"], ["schedule", "list"], ["webhook", "list"]):
        assert_one_line_error(run_cli("--database-url", url, *args), 2, "this command needs V14")
