"""A signed-in browser session over plain HTTP, for the console's page tests (the browser tests use Chromium)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import psycopg

from walltrack_config import principals

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]*)"')


class Browser(httpx.Client):
    """Cookies kept, redirects not followed (a test looks at them), forms posted with the page's CSRF token."""

    def csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:500])
        found = CSRF.search(page.text)
        assert found, f"no csrf field on {path}"
        return found[1]

    def submit(self, page: str, action: str, data: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """Open `page`, then post `data` to `action` with that page's CSRF token, as the browser would."""
        token = self.csrf(page)
        return self.post(action, data={"csrf": token, **(data or {})}, headers={"origin": str(self.base_url)},
                         **kwargs)


def user(db: str, name: str, role: str, password: str = PASSWORD) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        principals.add_user(conn, name, role, password, actor="tests")


def browser(base: str) -> Browser:
    return Browser(base_url=base, follow_redirects=False, timeout=30)


def sign_in(base: str, name: str, password: str = PASSWORD) -> Browser:
    client = browser(base)
    answer = client.submit("/login", "/login", {"name": name, "password": password})
    assert answer.status_code == 303, answer.text[:500]
    return client


def signed_in(api: Any, role: str, name: str | None = None) -> Browser:
    """A user of that role (named after it unless told), created in the API's database, signed in."""
    name = name or f"{role}-user"
    user(api.db, name, role)
    return sign_in(api.base, name)
