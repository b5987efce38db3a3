"""The console's doors over real HTTP: signing in and out with a session cookie, CSRF on every form, roles,
idle expiry, the first-run link, the overview and domain pages, and the page's live feed."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from conftest import activate
from console_support import PASSWORD, browser, sign_in, signed_in, user
from server_support import Api, serving
from walltrack_config import fields, principals
from walltrack_config.errors import InvalidTransition
from walltrack_config.server.console.setup import SetupLink


def sessions(db: str) -> int:
    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM walltrack_auth.api_tokens WHERE kind = 'session'").fetchone()
        return int(row[0]) if row else 0


def test_pages_need_a_session_and_come_back_after_signing_in(api: Api):
    guest = browser(api.base)
    assert guest.get("/").headers["location"] == "/login"
    assert guest.get("/domains/risk?x=1").headers["location"] == "/login?next=%2Fdomains%2Frisk%3Fx%3D1"
    user(api.db, "alice", "operator")
    answer = guest.submit("/login?next=/domains/risk", "/login",
                          {"name": "alice", "password": PASSWORD, "next": "/domains/risk"})
    assert answer.status_code == 303 and answer.headers["location"] == "/domains/risk"
    cookie = answer.headers["set-cookie"].lower()
    assert "wtc_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain HTTP here; under TLS it is Secure (test below)
    page = guest.get("/domains/risk")
    assert page.status_code == 200 and "max_order_attempts" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_a_wrong_password_signs_nobody_in_and_says_so(api: Api):
    user(api.db, "alice", "reader")
    guest = browser(api.base)
    answer = guest.submit("/login", "/login", {"name": "alice", "password": "not the password"})
    assert answer.status_code == 401 and "Wrong name or password" in answer.text
    assert "wtc_session" not in answer.headers.get("set-cookie", "")
    assert guest.get("/").status_code == 303 and sessions(api.db) == 0


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_signing_in_never_sends_you_off_site(api: Api, target: str):
    user(api.db, "alice", "reader")
    answer = browser(api.base).submit("/login", "/login", {"name": "alice", "password": PASSWORD, "next": target})
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_forms_without_their_token_or_from_another_site_are_refused_and_change_nothing(api: Api):
    user(api.db, "alice", "reader")
    guest = browser(api.base)
    guest.get("/login")  # the double-submit cookie
    assert guest.post("/login", data={"name": "alice", "password": PASSWORD}).status_code == 403
    assert guest.post("/login", data={"name": "alice", "password": PASSWORD, "csrf": "forged"}).status_code == 403
    assert sessions(api.db) == 0
    alice = sign_in(api.base, "alice")
    token = alice.csrf("/")
    assert alice.post("/logout", data={}).status_code == 403
    assert alice.post("/logout", data={"csrf": token}, headers={"origin": "http://evil.example"}).status_code == 403
    assert alice.get("/").status_code == 200  # still signed in: nothing was done
    with psycopg.connect(api.db) as conn:
        assert conn.execute("SELECT count(*) FROM walltrack_auth.api_tokens WHERE revoked_at IS NOT NULL"
                            ).fetchone() == (0,)


def test_signing_out_ends_the_session_for_good(api: Api):
    user(api.db, "alice", "reader")
    alice = sign_in(api.base, "alice")
    stolen = alice.cookies["wtc_session"]
    answer = alice.submit("/", "/logout")
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert alice.get("/").status_code == 303
    replay = browser(api.base)
    replay.cookies.set("wtc_session", stolen)
    assert replay.get("/").status_code == 303  # the cookie is worthless once signed out
    # the same session was a bearer token for the API too: ended there as well
    assert api.client().get("/whoami", headers={"Authorization": f"Bearer {stolen}"}).status_code == 401


def test_an_api_token_is_not_a_session(api: Api):
    guest = browser(api.base)
    guest.cookies.set("wtc_session", api.tokens["admin"])
    assert guest.get("/").status_code == 303


def test_failed_sign_ins_are_limited(migrated_db: str):
    with serving(migrated_db, roles=False, failures_per_name=3, failures_per_address=50) as api:
        user(api.db, "alice", "reader")
        guest = browser(api.base)
        codes = [guest.submit("/login", "/login", {"name": "alice", "password": "wrong one!"}).status_code
                 for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        refused = guest.submit("/login", "/login", {"name": "alice", "password": PASSWORD})
        assert refused.status_code == 429 and "try again in" in refused.text and sessions(api.db) == 0


def last_use(db: str, minutes_ago: float | None = None) -> Any:
    """The session's recorded last use (waiting for the server's asynchronous record of it); or set it back."""
    with psycopg.connect(db, autocommit=True) as conn:
        for _ in range(100):
            found = conn.execute("SELECT last_used_at FROM walltrack_auth.api_tokens WHERE kind = 'session'").fetchone()
            if found and found[0] is not None:
                break
            threading.Event().wait(0.05)
        if minutes_ago is not None:  # V12 lets only the last use (and revocation) of a token change
            conn.execute("UPDATE walltrack_auth.api_tokens SET last_used_at = now() - %s * interval '1 minute' "
                         "WHERE kind = 'session'", [minutes_ago])
        return conn.execute("SELECT last_used_at FROM walltrack_auth.api_tokens WHERE kind = 'session'").fetchone()


def test_a_session_left_idle_ends_and_one_in_use_does_not(api: Api):
    user(api.db, "alice", "reader")
    alice = sign_in(api.base, "alice")
    assert alice.get("/").status_code == 200
    before = last_use(api.db, minutes_ago=29)[0]
    # Another server (nothing remembered there): 29 minutes idle is within the 30 allowed, and this use counts.
    with serving(api.db, roles=False) as other:
        again = browser(other.base)
        again.cookies.set("wtc_session", alice.cookies["wtc_session"])
        assert again.get("/").status_code == 200
        for _ in range(100):
            if last_use(api.db)[0] > before:
                break
            threading.Event().wait(0.05)
        assert last_use(api.db)[0] > before
    last_use(api.db, minutes_ago=31)
    with serving(api.db, roles=False) as third:
        late = browser(third.base)
        late.cookies.set("wtc_session", alice.cookies["wtc_session"])
        assert late.get("/").status_code == 303 and late.get("/").headers["location"] == "/login"


def test_the_session_cookie_is_secure_under_tls(migrated_db: str):
    # The app behind TLS (settings.tls) marks its cookies Secure; httpx keeps the header for us to read.
    with serving(migrated_db, roles=False, tls=True) as api:
        user(api.db, "alice", "reader")
        guest = browser(api.base)
        form = guest.get("/login")
        assert "secure" in form.headers["set-cookie"].lower()


def test_the_session_cookie_is_secure_behind_a_trusted_tls_proxy_only(migrated_db: str):
    with serving(migrated_db, roles=False, forwarded="127.0.0.1") as api:
        user(api.db, "alice", "reader")
        proxied = browser(api.base).get("/login", headers={"x-forwarded-proto": "https"})
        assert "secure" in proxied.headers["set-cookie"].lower()
        plain = browser(api.base).get("/login", headers={"x-forwarded-proto": "http"})
        assert "secure" not in plain.headers["set-cookie"].lower()
    with serving(migrated_db, roles=False) as api:  # an untrusted client cannot claim https
        assert "secure" not in browser(api.base).get("/login", headers={"x-forwarded-proto": "https"}) \
            .headers["set-cookie"].lower()


def test_the_overview_shows_every_domain_its_active_row_and_the_buttons_the_role_may_use(api: Api):
    activate(api.db, "risk", max_order_attempts=7, reason="tighter")
    reader = signed_in(api, "reader")
    page = reader.get("/").text
    for domain in ("trading", "scoring", "discovery", "cluster", "risk", "exit", "api"):
        assert f'id="domain-{domain}"' in page
    assert "tighter" in page and "Admin</a>" not in page
    domain = reader.get("/domains/risk").text
    assert "New draft" not in domain and "Roll back" not in domain
    assert 'class="changed"' in domain  # max_order_attempts differs from its default
    for spec in fields.specs("risk"):
        assert f"<code>{spec.name}</code>" in domain and spec.unit in domain
    admin = signed_in(api, "admin")
    assert "Admin</a>" in admin.get("/").text
    assert "New draft" in admin.get("/domains/risk").text


def test_unknown_pages_and_domains_are_pages_not_tracebacks(api: Api):
    reader = signed_in(api, "reader")
    missing = reader.get("/domains/nope")
    assert missing.status_code == 404 and "risk" in missing.text and "<html" in missing.text
    assert reader.get("/static/../../etc/passwd").status_code == 404


def test_hand_made_urls_and_broken_forms_get_pages_not_problem_json(api: Api):
    reader = signed_in(api, "reader")
    too_long = reader.get("/domains/risk/diff", params={"a": "x" * 300})
    assert too_long.status_code == 422 and too_long.headers["content-type"].startswith("text/html")
    assert "a: String should have at most 200 characters" in too_long.text and "Nothing was changed" in too_long.text
    assert browser(api.base).get("/login", params={"next": "/" * 600}).headers["content-type"].startswith("text/html")
    # Forms the parser refuses (too many fields) or cannot read are refused by a page too, and sign nobody in.
    crowded = reader.post("/login", data={f"f{i}": "x" for i in range(500)}, headers={"origin": api.base})
    assert crowded.status_code == 400 and crowded.headers["content-type"].startswith("text/html"), crowded.text[:300]
    assert "Too many fields" in crowded.text
    broken = reader.post("/login", content=b"--x\r\nbroken", headers={
        "content-type": "multipart/form-data; boundary=x", "origin": api.base})
    assert broken.status_code == 403 and "Nothing was changed" in broken.text
    assert sessions(api.db) == 1  # the reader's own, nothing more


def test_an_open_page_follows_the_stream_signed_in_by_its_cookie(api: Api):
    reader = signed_in(api, "reader")
    assert browser(api.base).get("/events").status_code == 303
    with reader.stream("GET", "/events") as events:
        assert events.status_code == 200 and events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        first = next(line for line in lines if line.startswith("event:"))
        assert first == "event: snapshot"
        activate(api.db, "risk", max_order_attempts=8)
        assert next(line for line in lines if line.startswith("event:")) == "event: change"


def test_the_setup_link_works_once_from_loopback_only_and_not_when_stale():
    link = SetupLink("the-code", minutes=15)
    assert link.problem("wrong", "127.0.0.1") is not None
    assert "loopback" in (link.problem("the-code", "192.0.2.7") or "")
    assert link.problem("the-code", "::1") is None
    assert link.use("the-code", "127.0.0.1") is None
    assert "used already" in (link.use("the-code", "127.0.0.1") or "")
    link.give_back()  # the first admin could not be made: the link still works
    assert link.use("the-code", "127.0.0.1") is None
    stale = SetupLink("c", minutes=0)
    assert "expired" in (stale.problem("c", "127.0.0.1") or "")
    assert "sign in" in (SetupLink(None).problem("", "127.0.0.1") or "")
    assert "the-code" not in repr(link)  # only a digest is kept


def test_two_setups_racing_make_one_admin(migrated_db: str):
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def first(name: str) -> None:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            barrier.wait()
            try:
                results.append(principals.add_first_admin(conn, name, PASSWORD).name)
            except InvalidTransition as exc:
                results.append(exc)

    threads = [threading.Thread(target=first, args=(n,)) for n in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, InvalidTransition) for r in results) == 1
    with psycopg.connect(migrated_db) as conn:
        assert len(principals.users(conn)) == 1


def test_the_setup_page_refuses_a_bad_password_and_keeps_the_link(migrated_db: str):
    with serving(migrated_db, roles=False, setup_code="c0de") as api:
        guest = browser(api.base)
        page = guest.get("/setup?code=c0de")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        short = guest.post("/setup", data={"csrf": token, "code": "c0de", "name": "ann", "password": "short",
                                           "again": "short"})
        assert short.status_code == 422 and "password" in short.text
        differ = guest.post("/setup", data={"csrf": token, "code": "c0de", "name": "ann", "password": PASSWORD,
                                            "again": PASSWORD + "x"})
        assert differ.status_code == 422 and "differ" in differ.text
        with psycopg.connect(api.db) as conn:
            assert principals.users(conn) == []
        done = guest.post("/setup", data={"csrf": token, "code": "c0de", "name": "ann", "password": PASSWORD,
                                          "again": PASSWORD})
        assert done.status_code == 303 and guest.get("/").status_code == 200
