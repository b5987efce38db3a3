"""Webhooks (V14): the pure wire (sign, verify, render, backoff), then real deliveries to a receiver on localhost:
retried with backoff until it answers 2xx, signed every time, recorded; a receiver that is down, slow or
redirecting never raises out of send_due and leaves the delivery pending with the reason; one that drips its
answer is cut off at the attempt's deadline; a stopping sender stops at once; secrets are shown once and never
listed, logged or put in an error, and what is recorded of a failure is only its kind."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from walltrack_config import changes, webhooks
from walltrack_config.errors import AlreadyExists, InvalidValue, NotFound
from webhook_receiver import closed_port, receiving

SECRET = "whsec_0123456789abcdef"
AT = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


# -- the wire, pure ------------------------------------------------------------------------------------------------


def test_sign_is_hmac_sha256_of_timestamp_dot_body():
    # printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_0123456789abcdef
    expected = "sha256=9f5e37cdc7ea587c7c02062d93283cad000d66a831b2a1676418696db47ed6c2"
    assert webhooks.sign(SECRET, 1700000000, b'{"a":1}') == expected


def test_verify_takes_the_signature_and_refuses_any_change():
    body, signature = b'{"a":1}', webhooks.sign(SECRET, 1700000000, b'{"a":1}')
    assert webhooks.verify(SECRET, 1700000000, body, signature)
    assert webhooks.verify(SECRET, "1700000000", body, signature)  # as the header carries it
    assert not webhooks.verify(SECRET, 1700000000, b'{"a":2}', signature)
    assert not webhooks.verify(SECRET, 1700000001, body, signature)
    assert not webhooks.verify(SECRET + "x", 1700000000, body, signature)
    assert not webhooks.verify(SECRET, 1700000000, body, signature.removeprefix("sha256="))
    assert not webhooks.verify(SECRET, "soon", body, signature)
    assert not webhooks.verify(SECRET, 1700000000, body, "")


def test_render_json_is_the_event():
    payload = {"domain": "risk", "id": "9f0e1234-0000-0000-0000-000000000000", "version": 3}
    assert webhooks.render("json", "activated", payload, AT, seq=7) == {
        "kind": "activated", "seq": 7, "at": "2026-12-01T22:00:00+00:00", "domain": "risk", "payload": payload}


def test_render_slack_and_discord_say_it_in_one_line_that_cannot_ping():
    payload = {"domain": "risk", "id": "9f0e1234-aaaa-bbbb-cccc-000000000000", "name": "tight", "version": 3,
               "reason": "<!channel> fees & risk @everyone", "activation": 12}
    slack = webhooks.render("slack", "activated", payload, AT)["text"]
    assert slack == "walltrack risk: activated 'tight' v3 (9f0e1234): &lt;!channel&gt; fees &amp; risk @everyone"
    discord = webhooks.render("discord", "activated", payload, AT)
    assert discord["content"] == "walltrack risk: activated 'tight' v3 (9f0e1234): <!channel> fees & risk @everyone"
    assert discord["allowed_mentions"] == {"parse": []}
    approved = {"domain": "risk", "request": "5c2d7e1f-0000-0000-0000-000000000000", "id": payload["id"],
                "version": 3, "approver": "bob", "approvals": 1, "required": 2, "comment": "looks right"}
    assert webhooks.render("slack", "request_approved", approved, AT)["text"] == (
        "walltrack risk: request approved v3 (9f0e1234, request 5c2d7e1f) by bob 1/2 approvals: looks right")
    policy = {"domain": "exit", "approvals": 2, "previous": 0, "reason": None}
    assert webhooks.render("slack", "policy_changed", policy, AT)["text"] == (
        "walltrack exit: policy changed to 2 approvals (was 0)")
    assert webhooks.render("slack", "client_stale", {"domain": None}, AT) == {"text": "walltrack: client stale"}


def test_render_caps_the_text_and_refuses_an_unknown_format():
    long = webhooks.render("discord", "request_created", {"reason": "x" * 5000}, AT)["content"]
    assert len(long) == webhooks.MAX_TEXT and long.endswith("…")
    with pytest.raises(ValueError, match="format"):
        webhooks.render("teams", "activated", {}, AT)


def test_render_says_which_webhook_was_added_or_removed_never_its_url():
    # As V14 records them: the name, the host of the URL (the rest may hold a token), the events, the format.
    payload = {"domain": None, "webhook": "7a1b2c3d-0000-0000-0000-000000000000", "name": "chat",
               "host": "hooks.slack.example", "events": ["activated", "*"], "format": "slack",
               "url": "https://hooks.slack.example/services/T0/B0/token-in-the-url"}  # never recorded; never said
    added = webhooks.summary("webhook_added", payload)
    assert added == ("walltrack: webhook added 'chat' (webhook 7a1b2c3d) to hooks.slack.example (slack) hearing "
                     "activated, every event")
    assert "token-in-the-url" not in added
    assert webhooks.render("slack", "webhook_removed", {"domain": None, "name": "chat"}, AT) == {
        "text": "walltrack: webhook removed 'chat'"}
    assert {"webhook_added", "webhook_removed"} <= set(webhooks.KINDS)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://[::1", "not a valid URL"),
        ("ftp://hooks.example/x", "http:// or https://"),
        ("hooks.example/x", "http:// or https://"),
        ("https://", "must name a host"),
        ("https:///just/a/path", "must name a host"),
        ("https://hooks.example/a b", "no spaces"),
        ("https://hooks.example/\x00", "no spaces"),
        ("https://hooks.example/" + "x" * 2000, "at most 2000 characters"),
        ("", "required"),
    ],
)
def test_check_url_refuses_what_cannot_be_posted_to_without_quoting_it(url, says):
    said = webhooks.check_url(url)
    assert said is not None and says in said
    assert len(url) <= len("https://") or url not in said


def test_check_url_takes_http_and_https_addresses():
    for url in ("https://hooks.slack.com/services/T0/B0/XyZ", "http://127.0.0.1:9/hook?token=abc",
                "https://[::1]:8443/walltrack", "HTTPS://Hooks.Example/x"):
        assert webhooks.check_url(url) is None, url


def test_backoff_doubles_from_the_base_up_to_five_minutes():
    assert [webhooks.backoff(n).total_seconds() for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert [webhooks.backoff(n, 0.05).total_seconds() for n in (1, 2, 3)] == pytest.approx([0.05, 0.1, 0.2])
    assert webhooks.backoff(10_000) == timedelta(seconds=300)


# -- managing --------------------------------------------------------------------------------------------------------


def test_add_returns_the_generated_secret_once_and_listing_never_shows_it(conn):
    hook, secret = webhooks.add(conn, "ops", "https://example.invalid/hook", events=["activated", "break_glass"],
                                actor="root")
    assert len(secret) >= 40
    assert (hook.name, hook.url, hook.events, hook.format, hook.enabled, hook.created_by) == (
        "ops", "https://example.invalid/hook", ("activated", "break_glass"), "json", True, "root")
    listed = webhooks.webhooks(conn)
    assert listed == [hook]
    assert secret not in repr(listed) and secret not in json.dumps([w.json() for w in listed])
    _, given = webhooks.add(conn, "chat", "https://example.invalid/chat", events="*", secret=SECRET,
                            format="slack", actor="root")
    assert given == SECRET and [w.name for w in webhooks.webhooks(conn)] == ["chat", "ops"]


def test_add_refuses_bad_arguments_without_quoting_the_secret(conn):
    with pytest.raises(AlreadyExists):
        for _ in range(2):
            webhooks.add(conn, "ops", "https://example.invalid/hook", events=["*"], actor="root")
    for events, format in ((["activated", "nope"], "json"), ([], "json"), (["*"], "teams")):
        with pytest.raises(InvalidValue):
            webhooks.add(conn, "other", "https://example.invalid/hook", events=events, format=format, actor="root")
    with pytest.raises(InvalidValue) as err:
        webhooks.add(conn, "other", "https://example.invalid/hook", events=["*"], secret="short-secret", actor="r")
    assert "short-secret" not in str(err.value)
    with pytest.raises(InvalidValue):
        webhooks.add(conn, "other", "ftp://example.invalid/hook", events=["*"], actor="root")
    with pytest.raises(InvalidValue) as err:
        webhooks.add(conn, "other", "http://[::1", events=["*"], actor="root")
    assert err.value.fields == ["url"] and "[::1" not in str(err.value)
    assert [w.name for w in webhooks.webhooks(conn)] == ["ops"]


def test_the_kinds_are_the_databases(conn):
    """webhooks.KINDS (what the console offers, what add checks first) is the list V14's events are made of."""
    found = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                         " WHERE conname = 'chk_change_events_kind'").fetchone()
    assert found is not None
    assert set(re.findall(r"'([a-z_]+)'", found[0])) == set(webhooks.KINDS)


def test_remove_keeps_the_deliveries_under_the_name(conn):
    webhooks.add(conn, "ops", "https://example.invalid/hook", events=["*"], actor="root")
    changes.set_policy(conn, "risk", 1, actor="root")
    webhooks.remove(conn, "ops", actor="root")
    assert webhooks.webhooks(conn) == []
    [kept] = webhooks.deliveries(conn)
    assert (kept.webhook, kept.kind, kept.status) == ("ops", "policy_changed", "failed")  # never to be sent
    assert kept.last_error == "the webhook was removed by root"
    with pytest.raises(NotFound):
        webhooks.remove(conn, "ops", actor="root")


# -- sending ---------------------------------------------------------------------------------------------------------


def sender(url: str, **options: Any) -> webhooks.Sender:
    return webhooks.Sender(lambda: psycopg.connect(url, autocommit=True), **options)


def send_until_settled(send: webhooks.Sender, conn: psycopg.Connection, deadline: float = 10.0) -> None:
    """send_due again and again until no delivery is pending (the retries are due within the test's base)."""
    end = time.monotonic() + deadline
    while any(d.status == "pending" for d in webhooks.deliveries(conn)):
        assert time.monotonic() < end, webhooks.deliveries(conn)
        send.send_due()
        time.sleep(0.02)


def test_a_receiver_failing_twice_gets_one_delivery_after_three_signed_attempts(conn, migrated_db):
    with receiving(SECRET, [500, 500]) as receiver, sender(migrated_db, retry_base=0.05) as send:
        webhooks.add(conn, "ops", receiver.url, events=["policy_changed"], secret=SECRET, actor="root")
        changes.set_policy(conn, "risk", 1, actor="root", reason="four eyes")
        send_until_settled(send, conn)
    [delivery] = webhooks.deliveries(conn)
    assert (delivery.webhook, delivery.kind, delivery.status, delivery.last_status) == (
        "ops", "policy_changed", "succeeded", 200)
    assert delivery.attempts == 3 and delivery.delivered_at is not None
    assert len(receiver.received) == 3 and all(r.signed for r in receiver.received)
    first = receiver.received[0]
    assert {r.headers["X-Walltrack-Delivery"] for r in receiver.received} == {str(delivery.id)}
    assert first.headers["X-Walltrack-Event"] == "policy_changed"
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["User-Agent"].startswith("walltrack-config/")
    assert abs(int(first.headers["X-Walltrack-Timestamp"]) - time.time()) < 60
    assert first.json["kind"] == "policy_changed" and first.json["domain"] == "risk"
    assert first.json["seq"] == delivery.event_seq


def test_httpx_logs_a_webhooks_origin_never_its_path(conn, migrated_db, caplog):
    # Slack's and Discord's URLs carry their token in the path: a log at INFO must not hold it.
    caplog.set_level(logging.INFO, logger="httpx")
    with receiving(SECRET) as receiver, sender(migrated_db) as send:
        url = receiver.url.replace("/hook", "/services/T000/B000/token-in-the-path")
        webhooks.add(conn, "ops", url, events=["*"], secret=SECRET, actor="root")
        changes.set_policy(conn, "risk", 1, actor="root")
        assert send.send_due() >= 1
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("HTTP Request: POST http://127.0.0.1/…" in m for m in logged), logged
    assert not any("token-in-the-path" in m for m in logged), logged
    assert all(SECRET not in m for m in logged)


def test_a_slack_webhook_gets_text_signed_too_sent_over_a_pool(conn, migrated_db):
    from psycopg_pool import ConnectionPool

    # A pool's connections are not in autocommit: claims and outcomes must be committed all the same.
    with (receiving(SECRET) as receiver, ConnectionPool(migrated_db, min_size=1, max_size=1, open=True) as pool,
          webhooks.Sender(pool.connection) as send):
        webhooks.add(conn, "chat", receiver.url, events=["*"], secret=SECRET, format="slack", actor="root")
        changes.set_policy(conn, "exit", 2, actor="root")
        assert send.send_due() == 1
        assert send.send_due() == 0
    assert [d.status for d in webhooks.deliveries(conn)] == ["succeeded"]
    [got] = receiver.received
    assert got.signed and list(got.json) == ["text"] and got.json["text"].startswith("walltrack exit: policy changed")


def test_a_receiver_that_is_down_leaves_the_delivery_pending_with_the_reason(conn, migrated_db):
    url = f"http://127.0.0.1:{closed_port()}/hook?token=in-the-url"
    webhooks.add(conn, "ops", url, events=["*"], secret=SECRET, actor="root")
    changes.set_policy(conn, "risk", 1, actor="root")
    with sender(migrated_db, retry_base=30) as send:
        assert send.send_due() == 1
        assert send.send_due() == 0  # not due again before its backoff
    [delivery] = webhooks.deliveries(conn, status="pending")
    assert delivery.attempts == 1 and delivery.last_status is None
    assert delivery.last_error == "ConnectError"  # its kind only: never the message, which may quote the URL
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > datetime.now(UTC) + timedelta(seconds=20)


def test_a_slow_receiver_times_out_and_a_redirect_is_not_followed(conn, migrated_db):
    with receiving(SECRET, delay=1.0) as slow, receiving(SECRET, [302]) as moved:
        webhooks.add(conn, "slow", slow.url, events=["policy_changed"], secret=SECRET, actor="root")
        webhooks.add(conn, "moved", moved.url, events=["policy_changed"], secret=SECRET, actor="root")
        changes.set_policy(conn, "risk", 1, actor="root")
        with sender(migrated_db, timeout=0.2, retry_base=30) as send:
            assert send.send_due() == 2
    found = {d.webhook: d for d in webhooks.deliveries(conn)}
    # The read's own timeout or the attempt's deadline, whichever noticed first: both are 0.2 s.
    assert found["slow"].status == "pending" and found["slow"].last_error in ("ReadTimeout", "DeadlineExceeded")
    assert (found["moved"].status, found["moved"].last_status) == ("pending", 302)
    assert found["moved"].last_error == "HTTP 302 (redirects are not followed)"
    assert len(moved.received) == 1


@contextmanager
def dripping(gap: float = 0.05) -> Iterator[dict[str, Any]]:
    """A receiver that reads a request, then answers one byte every `gap` seconds and never ends its headers:
    each byte comes well within any read timeout, so only a deadline on the whole attempt ends it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    seen: dict[str, Any] = {"url": f"http://127.0.0.1:{server.getsockname()[1]}/hook", "connections": 0}
    done = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while not done.is_set():
                    conn.sendall(b"X")
                    time.sleep(gap)
            except OSError:  # the sender hung up
                pass

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            seen["connections"] += 1
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(5)
        server.close()


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_deadline(conn, migrated_db):
    with dripping() as receiver:
        webhooks.add(conn, "drip", receiver["url"], events=["*"], secret=SECRET, actor="root")
        changes.set_policy(conn, "risk", 1, actor="root")
        with sender(migrated_db, timeout=0.5, retry_base=30) as send:
            started = time.monotonic()
            assert send.send_due() == 1
            took = time.monotonic() - started
    assert took < 2.0, took  # 0.5 s and the database's round trips; httpx's read timeout alone never ends it
    [delivery] = webhooks.deliveries(conn)
    assert (delivery.status, delivery.attempts, delivery.last_status, delivery.last_error) == (
        "pending", 1, None, "DeadlineExceeded")


def test_a_stopping_sender_claims_nothing_and_cuts_the_attempt_under_way_off_uncounted(conn, migrated_db):
    with dripping() as receiver:
        webhooks.add(conn, "drip", receiver["url"], events=["*"], secret=SECRET, actor="root")
        for domain in ("risk", "exit", "trading"):
            changes.set_policy(conn, domain, 1, actor="root")
        stop = threading.Event()
        stop.set()
        with sender(migrated_db, timeout=30) as send:
            assert send.send_due(stop=stop) == 0
            assert send.send_due(stop=lambda: True) == 0
            assert receiver["connections"] == 0
            due = webhooks.deliveries(conn)
            assert [(d.status, d.attempts) for d in due] == [("pending", 0)] * 3
            assert all(d.next_attempt_at and d.next_attempt_at <= datetime.now(UTC) for d in due)  # not claimed

            stop.clear()
            threading.Timer(0.3, stop.set).start()
            started = time.monotonic()
            assert send.send_due(stop=stop) == 0  # the first attempt cut off, the others never begun
            took = time.monotonic() - started
    assert took < 2.0, took  # not the 30 s deadline, nor three of them
    assert receiver["connections"] == 1
    assert [(d.status, d.attempts, d.last_error) for d in webhooks.deliveries(conn)] == [("pending", 0, None)] * 3


def test_a_delivery_fails_for_good_after_eight_attempts(conn, migrated_db):
    with receiving(SECRET, [503] * 20) as receiver, sender(migrated_db, retry_base=0.001) as send:
        webhooks.add(conn, "ops", receiver.url, events=["*"], secret=SECRET, actor="root")
        changes.set_policy(conn, "risk", 1, actor="root")
        send_until_settled(send, conn)
    [delivery] = webhooks.deliveries(conn)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("failed", 8, 503)
    assert len(receiver.received) == 8


def test_deliveries_are_listed_newest_first_by_webhook_and_status(conn, migrated_db):
    with receiving(SECRET) as receiver, sender(migrated_db) as send:
        webhooks.add(conn, "policies", f"http://127.0.0.1:{closed_port()}/", events=["policy_changed"],
                     secret=SECRET, actor="root")
        webhooks.add(conn, "all", receiver.url, events=["*"], secret=SECRET, actor="root")  # after: no webhook_added
        changes.set_policy(conn, "risk", 1, actor="root")
        changes.set_policy(conn, "exit", 1, actor="root")
        assert send.send_due() == 4
    listed = webhooks.deliveries(conn)
    assert [d.id for d in listed] == sorted((d.id for d in listed), reverse=True)
    assert {(d.webhook, d.status) for d in listed} == {("all", "succeeded"), ("policies", "pending")}
    assert [d.webhook for d in webhooks.deliveries(conn, webhook="policies")] == ["policies", "policies"]
    assert [d.webhook for d in webhooks.deliveries(conn, status="succeeded", limit=1)] == ["all"]
    assert json.dumps([d.json() for d in listed])
    with pytest.raises(InvalidValue):
        webhooks.deliveries(conn, status="sent")


def test_senders_at_once_send_a_delivery_once(conn, migrated_db):
    with receiving(SECRET, delay=0.3) as receiver:
        webhooks.add(conn, "ops", receiver.url, events=["*"], secret=SECRET, actor="root")
        changes.set_policy(conn, "risk", 1, actor="root")
        start, sent = threading.Barrier(3), []

        def send() -> None:
            with sender(migrated_db) as own:
                start.wait()
                sent.append(own.send_due())

        threads = [threading.Thread(target=send) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(sent) == [0, 0, 1] and len(receiver.received) == 1
    assert [d.status for d in webhooks.deliveries(conn)] == ["succeeded"]
