"""The console's admin page over real HTTP: users (add, role, disable, enable) and API tokens (shown once,
revoked), each refusal shown on the page with nothing written, and no admin page or action for anyone else."""

from __future__ import annotations

import html
import re

import httpx
import psycopg

from console_support import PASSWORD, browser, sign_in, signed_in, user
from server_support import Api
from walltrack_config import principals

NEW_TOKEN = re.compile(r'<code class="token" id="new-token">([^<]+)</code>')


def principal_state(db: str) -> tuple[list[tuple[str, str, bool]], list[tuple[str, bool]], int]:
    """Users (name, role, disabled), API tokens (name, live) and the principals' audit rows: what a refusal keeps."""
    with psycopg.connect(db, autocommit=True) as conn:
        users = [(u.name, u.role.value, u.disabled) for u in principals.users(conn)]
        tokens = [(t.name, t.active) for t in principals.tokens(conn, include_revoked=True)]
        return users, tokens, len(principals.audit(conn, limit=100_000))


def row(page: str, attribute: str, name: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(name)}".*?</tr>', page, re.S)
    assert found, f"no row for {name}"
    return found[0]


def config(api: Api, secret: str) -> int:
    with httpx.Client(base_url=api.base, timeout=30) as client:
        return client.get("/api/v1/config", headers={"authorization": f"Bearer {secret}"}).status_code


def test_an_admin_adds_a_user_changes_their_role_and_disables_and_enables_them(api: Api):
    admin = signed_in(api, "admin")
    page = admin.get("/admin")
    assert page.status_code == 200 and 'href="/admin"' in page.text and row(page.text, "data-user", "admin-user")
    for label in ("user-name", "user-role", "user-password", "token-name", "token-role", "token-lifetime"):
        assert f'<label for="{label}"' in page.text and f'id="{label}"' in page.text
    added = admin.submit("/admin", "/admin/users", {"name": "dana", "role": "editor", "password": PASSWORD})
    assert added.status_code == 303 and added.headers["location"] == "/admin?done=added&name=dana"
    page = admin.get(added.headers["location"])
    assert "User dana added." in page.text and '<option value="editor" selected>' in row(page.text, "data-user", "dana")
    dana = sign_in(api.base, "dana")
    assert dana.get("/").status_code == 200
    assert admin.submit("/admin", "/admin/users/dana/role", {"role": "operator"}).status_code == 303
    assert '<option value="operator" selected>' in row(admin.get("/admin").text, "data-user", "dana")
    assert admin.submit("/admin", "/admin/users/dana/disable").status_code == 303
    assert dana.get("/").status_code == 303  # her session ended with it
    assert "disabled" in row(admin.get("/admin").text, "data-user", "dana")
    assert browser(api.base).submit("/login", "/login", {"name": "dana", "password": PASSWORD}).status_code == 401
    assert admin.submit("/admin", "/admin/users/dana/enable").status_code == 303
    assert ">Disable</button>" in row(admin.get("/admin").text, "data-user", "dana")
    assert sign_in(api.base, "dana").get("/").status_code == 200
    assert principal_state(api.db)[0] == [("admin-user", "admin", False), ("dana", "operator", False)]


def test_refusals_show_on_the_admin_page_and_write_nothing(api: Api):
    admin = signed_in(api, "admin")
    user(api.db, "erin", "reader")
    before = principal_state(api.db)
    cases = [
        ("/admin/users", {"name": "erin", "role": "reader", "password": PASSWORD}, 409, "exists already"),
        ("/admin/users", {"name": "frank", "role": "reader", "password": "short"}, 422, "10 to 1024 characters"),
        ("/admin/users", {"name": "-bad name", "role": "boss", "password": PASSWORD}, 422, "one of reader"),
        ("/admin/users/admin-user/role", {"role": "operator"}, 409, "last enabled admin"),
        ("/admin/users/admin-user/disable", {}, 409, "last enabled admin"),
        ("/admin/users/nobody/enable", {}, 404, "no user named"),
        ("/admin/tokens", {"name": "reader-token", "role": "reader"}, 409, "exists already"),
        ("/admin/tokens", {"name": "bot", "role": "reader", "lifetime": "forever"}, 422, "as in 90d"),
        ("/admin/tokens/nothing/revoke", {}, 404, "no live API token"),
        ("/admin/tokens/" + "x" * 300 + "/revoke", {}, 404, "no live API token"),
    ]
    for action, data, status, says in cases:
        answer = admin.submit("/admin", action, data)
        assert answer.status_code == status, (action, data, answer.status_code)
        text = html.unescape(answer.text)
        assert says in text and "Nothing was changed" in text and '<table class="users">' in text, (action, data)
    kept = admin.submit("/admin", "/admin/users", {"name": "frank", "role": "editor", "password": "short"}).text
    assert 'id="user-name" name="name" required maxlength="64" autocomplete="off" value="frank"' in kept
    assert '<option value="editor" selected>' in kept.split('id="user-role"')[1].split("</select>")[0]
    assert "short" not in kept.split('id="user-password"')[1].split(">")[0]  # a password is never sent back
    assert admin.post("/admin/users", data={"name": "gus", "role": "reader", "password": PASSWORD},
                      headers={"origin": str(admin.base_url)}).status_code == 403  # no CSRF token
    assert principal_state(api.db) == before


def test_a_token_is_shown_once_works_until_revoked_and_then_the_api_refuses_it(api: Api):
    admin = signed_in(api, "admin")
    created = admin.submit("/admin", "/admin/tokens", {"name": "deploy-bot", "role": "reader", "lifetime": "90d"})
    assert created.status_code == 200 and "shown this once" in created.text
    found = NEW_TOKEN.search(created.text)
    assert found
    secret = found[1]
    assert config(api, secret) == 200
    page = admin.get("/admin").text
    assert secret not in page and "deploy-bot" in page
    listed = row(page, "data-token", "deploy-bot")
    assert "reader" in listed and "active" in listed and ">Revoke</button>" in listed
    revoked = admin.submit("/admin", "/admin/tokens/deploy-bot/revoke")
    assert revoked.status_code == 303
    assert "Token deploy-bot revoked" in admin.get(revoked.headers["location"]).text
    assert config(api, secret) == 401
    listed = row(admin.get("/admin").text, "data-token", "deploy-bot")
    assert "revoked" in listed and "Revoke</button>" not in listed
    assert principal_state(api.db)[1][-1] == ("deploy-bot", False)


def test_nobody_but_an_admin_sees_or_uses_the_admin_page(api: Api):
    user(api.db, "erin", "reader")
    clients = {role: signed_in(api, role) for role in ("reader", "editor", "operator")}
    before = principal_state(api.db)
    for role, client in clients.items():
        overview = client.get("/")
        assert overview.status_code == 200 and 'href="/admin"' not in overview.text
        assert client.get("/admin").status_code == 403
        posts = [("/admin/users", {"name": "mallory", "role": "admin", "password": PASSWORD}),
                 ("/admin/users/erin/role", {"role": "admin"}), ("/admin/users/erin/disable", {}),
                 ("/admin/users/erin/enable", {}), ("/admin/tokens", {"name": "mine", "role": "admin"}),
                 ("/admin/tokens/admin-token/revoke", {})]
        for action, data in posts:
            answer = client.submit("/", action, data)
            assert answer.status_code == 403 and "needs role admin" in answer.text, (role, action)
            assert NEW_TOKEN.search(answer.text) is None
    assert principal_state(api.db) == before
    assert config(api, api.tokens["admin"]) == 200
