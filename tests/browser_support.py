"""The console in a real browser: Debian's Chromium driven by Playwright (sync API), the app on a real socket.

Playwright cannot download its own browsers here, so the tests launch the system's Chromium
(`/usr/bin/chromium`, or `$WALLTRACK_CHROMIUM`); where there is none the browser tests skip and say how to get
it. One browser per pytest worker (session scope); each test gets its own server, database and browser
contexts, and fails when any page logged an error to the browser's console or threw.

Screenshots go to `$WALLTRACK_SCREENSHOTS` (default: the test's tmp_path). Pointed at the repository's
`docs/screenshots`, only the README's images are written (overview.png, editor.png at 1280 px, light):

    WALLTRACK_SCREENSHOTS=docs/screenshots .venv/bin/python -m pytest -n 0 tests/test_console_browser.py -k screenshots

Playwright's sync API keeps its event loop marked as running in the worker's main thread for as long as the
browser lives (the session): a test that calls asyncio.run() in the main thread after a browser test on the same
worker must do it in a thread of its own.

A test module uses the fixtures by importing them: `from browser_support import console_fixture, …`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import urlsplit

import pytest

from console_support import PASSWORD, user
from server_support import Api, serving
from walltrack_config import principals

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

REPO = Path(__file__).resolve().parents[1]
README_SHOTS = REPO / "docs" / "screenshots"
README_NAMES = frozenset({"overview", "editor"})  # the images the README shows
HOW = ("no Chromium found at /usr/bin/chromium (or $WALLTRACK_CHROMIUM): install Debian's package "
       "(sudo apt-get install chromium) to run the console's browser tests; .ci/run installs it")
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000
LOAD_FAILED = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


_hashed: str | None = None  # PASSWORD's hash, for every user the browser tests make


def chromium_path() -> str | None:
    """The system's Chromium, or None."""
    given = os.environ.get("WALLTRACK_CHROMIUM")
    for candidate in (given, "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session", name="chromium")
def chromium_fixture() -> Iterator[Browser]:
    """One headless Chromium per worker."""
    path = chromium_path()
    if path is None:
        pytest.skip(HOW)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is missing: .venv/bin/pip install '.[test]'")
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded CI machine: the default 5 s is short for a page and its stream
    with sync_playwright() as p:
        # Chromium's sandbox needs user namespaces, which root in a container does not get.
        browser = p.chromium.launch(executable_path=path, headless=True,
                                    args=["--no-sandbox"] if os.geteuid() == 0 else [])
        yield browser
        browser.close()


@dataclass
class Console:
    """A served console and the browser contexts a test opened on it (closed, and checked, at the end)."""

    browser: Browser
    api: Api
    shots: Path
    contexts: list[BrowserContext] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # console errors and uncaught exceptions, from every page
    allowed: set[int] = field(default_factory=set)  # HTTP statuses a page may answer with in this test

    @property
    def base(self) -> str:
        return self.api.base

    def url(self, path: str) -> str:
        return self.api.base + path

    def page(self, *, viewport: Any = WIDE, color_scheme: Any = "light", like: Page | None = None) -> Page:
        """A fresh browser context (its own cookies: another person, unless `like` another page's, signed in
        as that one) and a page in it, watched for errors."""
        state = like.context.storage_state() if like is not None else None
        context = self.browser.new_context(base_url=self.api.base, viewport=viewport, color_scheme=color_scheme,
                                           storage_state=state)
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        self.watch(page)
        return page

    def watch(self, page: Page) -> None:
        def logged(message: ConsoleMessage) -> None:
            status = LOAD_FAILED.match(message.text)
            where = urlsplit(message.location.get("url", "")).path
            if status and int(status[1]) in self.allowed and not where.startswith(("/static/", "/events")):
                return  # Chromium's note on a page answered with an error status the test asked for (a 422 editor)
            if message.type == "error":
                self.problems.append(f"{page.url}: console error: {message.text} ({message.location})")

        page.on("console", logged)
        page.on("pageerror", lambda exc: self.problems.append(f"{page.url}: uncaught: {exc}"))

    def allow(self, *statuses: int) -> None:
        """Pages (not their scripts, styles or stream) may answer with these statuses: the test checks them."""
        self.allowed.update(statuses)

    def user(self, name: str, role: str) -> str:
        """A user with console_support.PASSWORD; its argon2 hash computed once per worker (a sign-in still
        verifies it for real: only the time to make it again for each user is saved)."""
        global _hashed
        if _hashed is None:
            _hashed = principals.hash_password(PASSWORD)
        known = _hashed
        with mock.patch.object(principals, "hash_password", lambda password: known):
            user(self.api.db, name, role)
        return name

    def signed_in(self, role: str, name: str | None = None, **page_options: Any) -> Page:
        """A new person of that role (named after it unless told), signed in through the form; on the overview."""
        name = self.user(name or f"{role}-user", role)
        page = self.page(**page_options)
        sign_in(page, name)
        return page

    def shot(self, page: Page, name: str) -> Path | None:
        """A PNG of the whole page; in docs/screenshots only the README's images are written."""
        target = self.shots
        if target.resolve() == README_SHOTS.resolve() and name not in README_NAMES:
            return None
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def no_problems(self) -> None:
        found, self.problems[:] = list(self.problems), []
        assert not found, "the browser logged errors:\n" + "\n".join(found)

    def close(self) -> None:
        for context in self.contexts:
            context.close()  # before the server stops: open event streams would hold its shutdown up
        self.contexts.clear()


def sign_in(page: Page, name: str, password: str = PASSWORD) -> None:
    from playwright.sync_api import expect

    page.goto("/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))


def screenshots_dir(tmp_path: Path) -> Path:
    given = os.environ.get("WALLTRACK_SCREENSHOTS")
    return Path(given) if given else tmp_path / "screenshots"


@pytest.fixture(name="open_console")
def open_console_fixture(chromium: Browser, migrated_db: str, tmp_path: Path) -> Iterator[Callable[..., Console]]:
    """Serve the console (settings as for server_support.serving) on this test's database; call once."""
    with ExitStack() as stack:
        opened: list[Console] = []

        def start(**settings: Any) -> Console:
            api = stack.enter_context(serving(migrated_db, **settings))
            console = Console(chromium, api, screenshots_dir(tmp_path))
            stack.callback(console.close)
            opened.append(console)
            return console

        yield start
        for console in opened:
            console.no_problems()


@pytest.fixture(name="console")
def console_fixture(open_console: Callable[..., Console]) -> Console:
    return open_console()
