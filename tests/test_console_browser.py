"""The operator's console in a real browser (Debian's Chromium through Playwright): what a person does, end to end.

Each test has its own database and server; a page that logs an error to the browser's console, or throws, fails
its test (browser_support.Console). Screenshots of the main pages go to $WALLTRACK_SCREENSHOTS (default: the
test's tmp_path); `WALLTRACK_SCREENSHOTS=docs/screenshots` regenerates the README's images.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import yaml
from playwright.sync_api import Page, expect

from browser_support import (  # noqa: F401 (the fixtures: pytest finds them here)
    NARROW,
    Console,
    chromium_fixture,
    console_fixture,
    open_console_fixture,
    sign_in,
)
from conftest import run_cli
from console_support import PASSWORD
from walltrack_config import audit, changes, fleet, lifecycle, principals, schedules, webhooks
from walltrack_config.domains import DOMAINS

DRAFT_URL = re.compile(r"/domains/([a-z]+)/drafts/([0-9a-f-]{36})(\?.*)?$")  # JavaScript's syntax too


# -- helpers ------------------------------------------------------------------------------------------------------


def db(console: Console) -> psycopg.Connection[Any]:
    return psycopg.connect(console.api.db, autocommit=True)


def active(console: Console, domain: str) -> lifecycle.ConfigRow:
    with db(console) as conn:
        return lifecycle.active_row(conn, domain)


def written(console: Console) -> tuple[object, ...]:
    """Everything a refused action must leave as it was: every domain's rows, and the audit log's length."""
    with db(console) as conn:
        rows = tuple((d, r.id, r.status, r.version) for d in DOMAINS for r in lifecycle.rows(conn, d))
        return rows, len(audit.entries(conn, limit=1000))


def brightness(css_colour: str) -> float:
    """0 (black) to 255 (white): an `rgb(…)` colour's perceived brightness."""
    r, g, b = (int(x) for x in re.findall(r"\d+", css_colour)[:3])
    return 0.299 * r + 0.587 * g + 0.114 * b


def setting_cell(page: Page, name: str) -> Any:
    """The value cell of a setting on a domain page."""
    row = page.locator("table.settings tbody tr").filter(has=page.locator("th code", has_text=re.compile(f"^{name}$")))
    return row.locator("td").first


def diff_row(page: Page, name: str) -> Any:
    return page.locator(f"table.diff tr[data-field='{name}']")


def new_draft_from_domain_page(page: Page, domain: str) -> str:
    page.goto(f"/domains/{domain}")
    page.get_by_role("button", name="New draft from the active settings").click()
    expect(page).to_have_url(DRAFT_URL)
    return page.url


def draft_id_of(url: str) -> str:
    found = DRAFT_URL.search(url)
    assert found, url
    return found[2]


def save(page: Page) -> None:
    page.locator("form.editor").get_by_role("button", name="Save draft").click()


# -- signing in ------------------------------------------------------------------------------------------------------


def test_sign_in_a_wrong_password_and_sign_out(console: Console) -> None:
    console.user("olga", "operator")
    console.allow(401)
    page = console.page()
    page.goto("/domains/risk")  # signed out: the sign-in form, coming back here afterwards
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fdomains%2Frisk$"))
    expect(page).to_have_title(re.compile("Sign in"))

    page.get_by_label("Name").fill("olga")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong name or password")
    expect(page.get_by_label("Name")).to_have_value("olga")
    assert "wtc_session" not in {c["name"] for c in page.context.cookies()}
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))

    page.goto("/login?next=%2Fdomains%2Frisk")
    page.get_by_label("Name").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/domains/risk$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("risk")
    expect(page.locator("header")).to_contain_text("olga · operator")
    session = next(c for c in page.context.cookies() if c["name"] == "wtc_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    assert "wtc_session" not in {c["name"] for c in page.context.cookies()}
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    # The ended session is ended on the server too, not only forgotten by this browser.
    page.context.add_cookies([{**session, "sameSite": "Strict"}])
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_the_sign_in_form_works_with_the_keyboard_alone(console: Console) -> None:
    console.user("kim", "reader")
    page = console.page()
    page.goto("/login")
    expect(page.get_by_label("Name")).to_be_focused()  # autofocus: no pointer needed to start
    page.keyboard.type("kim")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    # And from the top of a page, Tab reaches the skip link first, which leads to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_the_domain_page_marks_exactly_the_settings_that_differ_from_the_default(console: Console) -> None:
    with db(console) as conn:
        draft = lifecycle.clone(conn, "risk", actor="tests")
        draft = lifecycle.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": 4}, actor="tests")
        lifecycle.activate(conn, "risk", draft.id, expected_version=draft.version, actor="tests")
    page = console.signed_in("reader")
    for domain in ("risk", "trading"):
        settings = active(console, domain).settings
        differ = {name for name, info in type(settings).model_fields.items()
                  if getattr(settings, name) != info.get_default(call_default_factory=True)}
        page.goto(f"/domains/{domain}")
        marked = set(page.locator("table.settings tbody tr:has(.badge.changed) th code").all_inner_texts())
        assert marked == differ, f"{domain}: marked {sorted(marked)}, differing from the default {sorted(differ)}"
        assert domain != "risk" or "max_order_attempts" in differ


def test_first_run_setup_link_makes_the_first_admin_once(open_console: Any) -> None:
    code = "first-run-setup-code-0123456789"
    console = open_console(setup_code=code, roles=False)
    console.allow(403)
    page = console.page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(f"/setup?code={code}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("first admin")
    page.get_by_label("Name").fill("root")
    page.get_by_label("Password", exact=True).fill("a long first password")
    page.get_by_label("Password, again").fill("a long first password")
    page.get_by_role("button", name="Create the admin and sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("header")).to_contain_text("root · admin")
    expect(page.get_by_role("link", name="Admin")).to_be_visible()
    with db(console) as conn:
        assert [(u.name, u.role) for u in principals.users(conn)] == [("root", "admin")]

    again = console.page()
    answer = again.goto(f"/setup?code={code}")
    assert answer is not None and answer.status == 403
    expect(again.get_by_role("heading", level=1)).to_have_text("No setup here")
    expect(again.get_by_role("alert")).to_contain_text("used already")
    expect(again.get_by_label("Password, again")).to_have_count(0)
    sign_in(again, "root", "a long first password")  # the admin it made can sign in anywhere
    with db(console) as conn:
        assert len(principals.users(conn)) == 1


# -- roles -----------------------------------------------------------------------------------------------------------


def test_an_editor_cannot_activate(console: Console) -> None:
    console.allow(403)
    page = console.signed_in("editor", "eddie")
    draft = new_draft_from_domain_page(page, "risk")
    expect(page.locator("form.editor").get_by_role("button", name="Save draft")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Activate"))).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Activate"))).to_have_count(0)
    expect(page.get_by_role("link", name="Diff with active")).to_be_visible()
    page.goto("/domains/risk")
    expect(page.get_by_role("link", name=re.compile("Roll back"))).to_have_count(0)
    before = written(console)

    # The server refuses anyway: the confirm page, and a post carrying this session's own CSRF token.
    page.goto(draft)
    csrf = page.locator("form.editor input[name=csrf]").input_value()
    version = page.locator("form.editor input[name=version]").input_value()
    shown = page.goto(draft.split("?")[0] + "/activate")
    assert shown is not None and shown.status == 403
    answer = page.request.post(draft.split("?")[0] + "/activate", headers={"origin": console.base},
                               form={"csrf": csrf, "version": version, "reason": "I am no operator"})
    assert answer.status == 403, answer.text()[:300]
    back = page.request.post("/domains/risk/rollback", headers={"origin": console.base},
                             form={"csrf": csrf, "reason": "nor this"})
    assert back.status == 403
    assert written(console) == before
    assert active(console, "risk").status == "active" and str(active(console, "risk").id) not in draft


def test_the_editor_labels_every_input(console: Console) -> None:
    page = console.signed_in("editor")
    for domain in ("trading", "exit"):  # every kind of input: numbers, box, choice, tiers, uuid
        new_draft_from_domain_page(page, domain)
        unlabelled = page.evaluate("""() => [...document.querySelectorAll(
                'form.editor input:not([type=hidden]), form.editor select, form.editor textarea')]
            .filter(e => ![...e.labels].some(l => l.textContent.trim())
                         && !(e.getAttribute('aria-label') || '').trim() && !e.getAttribute('aria-labelledby'))
            .map(e => e.name || e.id)""")
        assert unlabelled == [], f"{domain}: inputs without a label: {unlabelled}"
        inputs = page.locator("form.editor input:not([type=hidden]), form.editor select")
        assert inputs.count() > 5
        for i in range(inputs.count()):
            element = inputs.nth(i)
            name = element.get_attribute("name") or ""
            label = element.evaluate("e => e.labels.length ? e.labels[0].textContent : e.getAttribute('aria-label')")
            # What a screen reader announces finds this very input.
            found = page.get_by_label(label.strip(), exact=True)
            assert found.count() >= 1, (domain, name, label)
            assert any(found.nth(k).get_attribute("name") == name for k in range(found.count())), (domain, name, label)
        # Each setting says what is wrong under it, by id, linked for assistive technology.
        assert page.locator("form.editor [aria-describedby]").count() >= 5


# -- the whole flow ---------------------------------------------------------------------------------------------------


def test_draft_edit_refused_fix_diff_activate_history_rollback(console: Console) -> None:
    console.allow(422)
    page = console.signed_in("operator", "olga")
    before = active(console, "trading")
    assert (before.settings.min_position_sol, before.settings.max_position_sol) == (Decimal("0.05"), Decimal("1.0"))

    # overview -> domain -> new draft
    page.get_by_role("link", name="trading", exact=True).click()
    expect(page).to_have_url(re.compile(r"/domains/trading$"))
    expect(setting_cell(page, "min_position_sol")).to_have_text("0.05")
    page.get_by_role("button", name="New draft from the active settings").click()
    expect(page).to_have_url(DRAFT_URL)
    draft_id = draft_id_of(page.url)

    # A value the browser takes (in bounds) that the database refuses: smallest position above the largest.
    smallest = page.locator("#field-min_position_sol")
    smallest.fill("2")
    expect(page.locator("#field-min_position_sol-client-error")).to_have_text("")
    save(page)
    expect(page.locator("div.error[role=alert]")).to_be_visible()
    expect(page.locator("#field-min_position_sol-error")).to_contain_text("max_position_sol")
    expect(smallest).to_have_value("2")  # what was typed is kept
    assert "field-min_position_sol-error" in (smallest.get_attribute("aria-describedby") or "")
    console.shot(page, "editor-refused")
    with db(console) as conn:
        assert lifecycle.get(conn, "trading", draft_id).settings.min_position_sol == Decimal("0.05")

    # A value the browser itself refuses says so under the field as it is typed.
    page.locator("#field-max_position_sol").fill("-1")
    expect(page.locator("#field-max_position_sol-client-error")).not_to_have_text("")
    page.locator("#field-max_position_sol").fill("3")
    expect(page.locator("#field-max_position_sol-client-error")).to_have_text("")
    save(page)
    expect(page.locator("p.notice")).to_contain_text("Saved: version 2")
    expect(page.locator("#field-min_position_sol")).to_have_value(re.compile(r"^2(\.0*)?$"))
    with db(console) as conn:
        saved = lifecycle.get(conn, "trading", draft_id)
    assert (saved.settings.min_position_sol, saved.settings.max_position_sol, saved.version) == (2, 3, 2)

    # diff with the active row
    page.get_by_role("link", name="Diff with active").click()
    expect(page).to_have_url(re.compile(rf"/domains/trading/diff\?a=active&b={draft_id}$"))
    expect(diff_row(page, "min_position_sol").locator("td.old")).to_have_text("0.05")
    expect(diff_row(page, "min_position_sol").locator("td.new")).to_have_text(re.compile(r"^\s*2\s*$"))
    expect(diff_row(page, "max_position_sol").locator("td.new")).to_have_text(re.compile(r"^\s*3\s*$"))
    expect(diff_row(page, "min_position_sol")).to_contain_text("SOL")
    expect(diff_row(page, "base_position_pct")).to_have_count(0)  # unchanged fields are not listed

    # activate, with a reason
    page.goto(f"/domains/trading/drafts/{draft_id}")
    page.get_by_role("link", name="Activate…").click()
    expect(page).to_have_url(re.compile(rf"/domains/trading/drafts/{draft_id}/activate$"))
    expect(diff_row(page, "min_position_sol").locator("td.new")).to_have_text(re.compile(r"^\s*2\s*$"))
    reason = page.get_by_label(re.compile("Reason"))
    expect(reason).to_have_attribute("required", "")
    reason.fill("bigger positions for the breakout")
    page.get_by_role("button", name="Activate version 2").click()
    expect(page).to_have_url(re.compile(r"/domains/trading/activated\?seq=\d+$"))
    live = active(console, "trading")
    assert (str(live.id), live.settings.min_position_sol) == (draft_id, 2)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Live: {live.name} v{live.version}")
    expect(page.locator("main")).to_contain_text("bigger positions for the breakout")

    # the history shows it: who, why, and the value old -> new
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    activated = page.locator("li.entry[data-action=activate]").first
    expect(activated).to_contain_text("bigger positions for the breakout")
    expect(activated).to_contain_text("olga")
    expect(activated).to_contain_text("trading")
    edited = page.locator("li.entry").filter(has=page.locator("tr[data-field=min_position_sol]")).first
    expect(edited.locator("tr[data-field=min_position_sol] td.old")).to_have_text("0.05")
    expect(edited.locator("tr[data-field=min_position_sol] td.new")).to_have_text(re.compile(r"^\D*2(\.0+)?\s*$"))

    # roll back, with a reason: the old value is live again
    page.goto("/domains/trading")
    expect(setting_cell(page, "min_position_sol")).to_have_text("2")
    page.get_by_role("link", name="Roll back…").click()
    expect(page).to_have_url(re.compile(r"/domains/trading/rollback$"))
    expect(diff_row(page, "min_position_sol").locator("td.new")).to_have_text("0.05")
    page.get_by_label(re.compile("Reason")).fill("too big after all")
    page.get_by_role("button", name="Roll back").click()
    expect(page).to_have_url(re.compile(r"/domains/trading/activated\?seq=\d+$"))
    page.goto("/domains/trading")
    expect(setting_cell(page, "min_position_sol")).to_have_text("0.05")
    expect(setting_cell(page, "max_position_sol")).to_have_text("1")
    assert active(console, "trading").settings.min_position_sol == Decimal("0.05")
    page.goto("/history?domain=trading")
    expect(page.locator("li.entry").first).to_contain_text("too big after all")


def test_a_conflicting_edit_from_a_second_browser(console: Console) -> None:
    console.allow(409)
    ann = console.signed_in("editor", "ann")
    draft = new_draft_from_domain_page(ann, "risk")
    bob = console.signed_in("editor", "bob")
    bob.goto(draft)

    ann.locator("#field-max_order_attempts").fill("5")
    save(ann)
    expect(ann.locator("p.notice")).to_contain_text("Saved: version 2")

    bob.locator("#field-max_order_attempts").fill("7")
    bob.locator("#field-retry_delay_base_seconds").fill("9")
    save(bob)
    message = bob.locator("div.error[role=alert], .warning[role=alert]").first
    expect(message).to_be_visible()
    expect(message).to_contain_text("ann")
    expect(message).to_contain_text("2")
    # their change is shown: max_order_attempts 3 -> 5
    theirs = bob.locator("tr[data-field=max_order_attempts]")
    expect(theirs.locator("td.old")).to_have_text("3")
    expect(theirs.locator("td.new")).to_have_text("5")
    expect(bob.locator("#field-retry_delay_base_seconds")).to_have_value("9")  # what bob typed is kept
    expect(bob.locator("form.editor input[name=version]")).to_have_value("2")
    console.shot(bob, "editor-conflict")
    with db(console) as conn:
        row = lifecycle.get(conn, "risk", draft_id_of(draft))
    assert (row.version, row.settings.max_order_attempts, row.settings.retry_delay_base_seconds) == (2, 5, 5)

    # Having seen it, bob saves again on top of ann's version.
    save(bob)
    expect(bob.locator("p.notice")).to_contain_text("Saved: version 3")


# -- live ---------------------------------------------------------------------------------------------------------


def test_open_pages_follow_an_activation_from_the_command_line(console: Console) -> None:
    page = console.signed_in("reader")
    card = page.locator("#domain-risk")
    expect(card).to_contain_text(active(console, "risk").name)
    other = page.context.new_page()
    console.watch(other)
    other.goto("/domains/risk")
    expect(setting_cell(other, "max_order_attempts")).to_have_text("3")
    for p in (page, other):
        p.evaluate("window.notReloaded = true")

    url = console.api.db
    cli = ("--database-url", url, "--actor", "terminal-tom")
    for args in (("draft", "risk", "--name", "fewer retries"), ("set", "risk", "max_order_attempts=9"),
                 ("activate", "risk", "--yes", "--reason", "from the terminal")):
        done = run_cli(*cli, *args)
        assert done.returncode == 0, done.stderr

    expect(card).to_contain_text("fewer retries", timeout=10_000)
    expect(card).to_contain_text("terminal-tom")
    expect(card).to_contain_text("from the terminal")
    expect(setting_cell(other, "max_order_attempts")).to_have_text("9", timeout=10_000)
    expect(page.locator("#live-status")).to_contain_text("fewer retries")
    for p in (page, other):
        assert p.evaluate("window.notReloaded === true"), "the page was reloaded"


def test_the_overview_shows_a_bot_falling_behind_and_catching_up_without_a_reload(console: Console) -> None:
    page = console.signed_in("reader")
    with db(console) as conn:
        bot = fleet.info_for("bot-gamma")
        fleet.report(conn, bot, fleet.current(conn))
    row = page.locator("table.fleet tr", has_text="bot-gamma")
    expect(row).to_contain_text("current", timeout=10_000)  # reported after the page was drawn: the page looked again
    page.evaluate("window.notReloaded = true")

    cli = ("--database-url", console.api.db, "--actor", "terminal-tom")
    for args in (("draft", "risk", "--name", "behind"), ("activate", "risk", "--yes", "--reason", "bots lag")):
        assert run_cli(*cli, *args).returncode == 0
    expect(row).to_contain_text("risk 1 behind", timeout=10_000)
    expect(page.locator("#domain-risk")).to_contain_text("0 of 1 clients on the current version")
    with db(console) as conn:
        fleet.report(conn, bot, fleet.current(conn))
    expect(row).not_to_contain_text("behind", timeout=10_000)
    expect(page.locator("#domain-risk")).to_contain_text("1 of 1 clients on the current version")
    assert page.evaluate("window.notReloaded === true"), "the page was reloaded"


# -- import / export ---------------------------------------------------------------------------------------------------


def test_an_import_with_errors_lists_them_and_writes_nothing(console: Console, tmp_path: Any) -> None:
    console.allow(422, 400)
    page = console.signed_in("operator")
    page.get_by_role("link", name="Import / export").click()
    expect(page).to_have_url(re.compile(r"/exchange$"))
    console.shot(page, "exchange")
    with page.expect_download() as got:
        page.get_by_role("link", name="Download active settings (YAML)").click()
    download = got.value
    assert download.suggested_filename == "walltrack-config.yaml"
    document = yaml.safe_load(download.path().read_text(encoding="utf-8"))
    assert document["domains"]["risk"]["settings"]["max_order_attempts"] == 3

    document["domains"]["risk"]["settings"]["max_order_attempts"] = 0
    document["domains"]["trading"]["settings"]["min_position_sol"] = "5"  # above max_position_sol
    document["domains"]["exit"]["settings"]["stagnation_hourz"] = 3
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(document), encoding="utf-8")
    before = written(console)

    page.get_by_label("Settings file").set_input_files(str(file))
    page.get_by_role("button", name=re.compile("Preview")).click()
    errors = page.locator("ul.errors li")
    expect(errors.first).to_be_visible()
    texts = errors.all_inner_texts()
    for domain, field in (("risk", "max_order_attempts"), ("trading", "min_position_sol"),
                          ("exit", "stagnation_hourz")):
        assert any(domain in t and field in t for t in texts), (domain, field, texts)
    expect(page.get_by_role("button", name="Create drafts")).to_have_count(0)
    expect(page.get_by_role("button", name="Activate all")).to_have_count(0)
    console.shot(page, "import-errors")
    assert written(console) == before


# -- admin ---------------------------------------------------------------------------------------------------------


def test_the_admin_creates_a_token_shown_once_then_revokes_it(console: Console) -> None:
    page = console.signed_in("admin", "ada")
    page.get_by_role("link", name="Admin").click()
    expect(page).to_have_url(re.compile(r"/admin$"))
    form = page.locator("form[action='/admin/tokens']")
    form.get_by_label(re.compile("Name", re.I)).fill("grafana-bot")
    form.get_by_label(re.compile("Role", re.I)).select_option("reader")
    lifetime = form.get_by_label(re.compile("lifetime|expires", re.I))
    if lifetime.count():
        lifetime.fill("90d")
    form.get_by_role("button").click()
    shown = page.locator("code.token#new-token")
    expect(shown).to_be_visible()
    secret = shown.inner_text().strip()
    assert len(secret) >= 20
    expect(page.locator("main")).to_contain_text(re.compile("not be shown again|only once|once", re.I))
    with console.api.client() as api:
        assert api.get("/config/risk", headers={"authorization": f"Bearer {secret}"}).status_code == 200

    page.goto("/admin")
    row = page.locator("tr", has_text="grafana-bot")
    expect(row).to_be_visible()
    assert secret not in page.content()  # never shown again
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("tr", has_text="grafana-bot")).to_contain_text(re.compile("revoked", re.I))
    with console.api.client() as api:
        assert api.get("/config/risk", headers={"authorization": f"Bearer {secret}"}).status_code == 401


# -- screenshots ---------------------------------------------------------------------------------------------------


WIDER_THAN_ITS_BOX = """() => [...document.querySelectorAll('.scroll')]
    .filter(box => box.scrollWidth > box.clientWidth + 1)
    .map(box => `${(box.querySelector('table') || box).className}: ${box.scrollWidth} px in ${box.clientWidth}`)"""
WIDER_THAN_THE_WINDOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def test_screenshots_of_every_main_page(console: Console) -> None:
    """A PNG of each main page at 1280 px; the overview and the editor at 390 px and in the dark scheme too.
    Then how they lay out: at 1280 px no table needs scrolling sideways, at 390 px no page is wider than the window,
    and the dark scheme is light text on a dark ground."""
    with db(console) as conn:
        for name in ("bot-alpha", "bot-beta"):
            fleet.report(conn, fleet.info_for(name), fleet.current(conn))
        first = lifecycle.clone(conn, "risk", actor="olga", name="calmer breaker")
        first = lifecycle.edit(conn, "risk", first.id, first.version,
                               {"circuit_breaker_loss_threshold": "8", "max_order_attempts": 4}, actor="olga")
        lifecycle.activate(conn, "risk", first.id, expected_version=first.version, actor="olga",
                           reason="fewer losses before the breaker trips")
        alpha = next(c for c in fleet.clients(conn) if c.name == "bot-alpha")
        fleet.report(conn, alpha, fleet.current(conn))  # bot-beta stays one activation behind on risk
        draft = lifecycle.clone(conn, "trading", actor="olga", name="breakout sizing")
        draft = lifecycle.edit(conn, "trading", draft.id, draft.version,
                               {"max_position_sol": "2.5", "score_threshold": "0.75"}, actor="olga")
    editor = f"/domains/trading/drafts/{draft.id}"
    pages = {"overview": "/", "domain": "/domains/risk", "editor": editor,
             "diff": f"/domains/trading/diff?a=active&b={draft.id}", "activate": f"{editor}/activate",
             "history": "/history", "exchange": "/exchange", "admin": "/admin", "fleet": "/fleet"}
    shots = []
    layout: list[str] = []

    login = console.page()
    login.goto("/login")
    shots.append(console.shot(login, "login"))
    page = console.signed_in("admin", "olga")
    for name, path in pages.items():
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        shots.append(console.shot(page, name))
        layout += [f"{path} at 1280 px: {wide}" for wide in page.evaluate(WIDER_THAN_ITS_BOX)]
    page.goto("/")
    expect(page.locator("#domain-risk")).to_contain_text("calmer breaker")

    narrow = console.page(viewport=NARROW, like=page)
    for name, path in pages.items():
        if name not in ("overview", "editor", "domain", "history", "diff"):
            continue
        narrow.goto(path)
        if name in ("overview", "editor"):
            shots.append(console.shot(narrow, f"{name}-390"))
        overflow = narrow.evaluate(WIDER_THAN_THE_WINDOW)
        if overflow > 0:
            layout.append(f"{path} at 390 px: the page is {overflow} px wider than the window")

    dark = console.page(color_scheme="dark", like=page)
    dark.goto("/")
    shots.append(console.shot(dark, "overview-dark"))
    dark.goto(editor)
    shots.append(console.shot(dark, "editor-dark"))
    colours = dark.evaluate("""() => [document.documentElement, document.querySelector('main')]
        .map(e => getComputedStyle(e)).map(s => [s.backgroundColor, s.color])""")
    (ground, _), (_, text) = colours
    if not brightness(ground) < 80 < 180 < brightness(text):
        layout.append(f"dark scheme: text {text} on {ground}")

    assert all(shot.stat().st_size > 5_000 for shot in shots if shot is not None)
    assert layout == [], "\n".join(layout)


def test_pages_answer_fast(console: Console) -> None:
    """Pages render well under the issue's 200 ms on the embedded server (bound generously for a loaded CI)."""
    page = console.signed_in("reader")
    for path in ("/", "/domains/trading", "/history", "/exchange", "/fleet"):
        page.goto(path)
        timing = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
                                          return n.responseEnd - n.requestStart; }""")
        assert timing < 1000, f"{path} took {timing:.0f} ms"


# -- approvals, schedules, webhooks (issue 13) -----------------------------------------------------------------------


def utc_input(moment: datetime) -> str:
    """A datetime-local input's value for a UTC time (Chromium drops ":00" seconds, which fill() would refuse)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


def test_an_editor_requests_approval_another_operator_approves_and_it_goes_live(console: Console) -> None:
    with db(console) as conn:
        changes.set_policy(conn, "risk", 1, actor="tests")
    eddie = console.signed_in("editor", "eddie")
    draft = new_draft_from_domain_page(eddie, "risk")
    eddie.locator("#field-max_order_attempts").fill("5")
    save(eddie)
    expect(eddie.locator("p.notice")).to_contain_text("Saved: version 2")
    expect(eddie.locator("#approval")).to_contain_text("risk needs 1 approval")
    eddie.get_by_label("Why should v2 go live?").fill("five tries for the slow venue")
    eddie.get_by_role("button", name="Request approval").click()
    expect(eddie).to_have_url(re.compile(r"/requests/[0-9a-f-]{36}\?done=requested$"))
    request_url = eddie.url.split("?")[0]
    expect(eddie.locator("p.notice")).to_contain_text("Approval requested")
    expect(eddie.locator("main")).to_contain_text("You asked for this")
    expect(eddie.get_by_role("button", name="Approve")).to_have_count(0)
    eddie.goto(draft)  # the editor now says how far the request got, and offers no second one
    expect(eddie.locator("#approval")).to_contain_text("1 more approval needed")
    expect(eddie.get_by_role("button", name="Request approval")).to_have_count(0)

    olga = console.signed_in("operator", "olga")
    olga.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    expect(olga).to_have_url(re.compile(r"/requests$"))
    card = olga.locator("article.request").filter(has_text="five tries for the slow venue")
    expect(card.locator("tr[data-field=max_order_attempts] td.old")).to_have_text("3")
    expect(card.locator("tr[data-field=max_order_attempts] td.new")).to_have_text("5")
    expect(card.locator(".requester")).to_have_text("eddie")
    expect(card).to_contain_text("0 of 1 approval")
    console.shot(olga, "requests")
    card.get_by_label("Comment").fill("fine by me")
    card.get_by_role("button", name="Approve").click()
    expect(olga).to_have_url(re.compile(r"/requests/[0-9a-f-]{36}\?done=approved$"))
    expect(olga.locator("main")).to_contain_text("1 of 1 approval: enough to go live")
    expect(olga.locator("ul.decisions")).to_contain_text("fine by me")
    console.shot(olga, "request-approved")

    olga.get_by_role("link", name="Activate…").click()
    expect(olga).to_have_url(re.compile(rf"/domains/risk/drafts/{draft_id_of(draft)}/activate$"))
    expect(olga.locator("#approval")).to_contain_text("Approved by olga")
    olga.get_by_label(re.compile("Reason")).fill("approved: five tries")
    olga.get_by_role("button", name="Activate version 2").click()
    expect(olga).to_have_url(re.compile(r"/domains/risk/activated\?seq=\d+$"))
    live = active(console, "risk")
    assert (str(live.id), live.settings.max_order_attempts) == (draft_id_of(draft), 5)

    # The requester's page: the request applied, and still no button for them.
    eddie.goto(request_url)
    expect(eddie.locator("article.request .badge.applied").first).to_have_text("applied")
    expect(eddie.get_by_role("button", name="Approve")).to_have_count(0)
    expect(eddie.get_by_role("button", name="Reject")).to_have_count(0)


def test_a_schedule_fires_while_the_schedules_page_is_open(console: Console) -> None:
    page = console.signed_in("operator", "olga")
    new_draft_from_domain_page(page, "risk")
    page.locator("#field-max_order_attempts").fill("6")
    save(page)
    expect(page.locator("p.notice")).to_contain_text("Saved: version 2")
    page.get_by_role("link", name="Schedule…").click()
    expect(page).to_have_url(re.compile(r"/activate#schedule$"))
    expect(page.get_by_role("heading", name="Or schedule it")).to_be_visible()
    page.get_by_label("Schedule for (UTC)").fill(utc_input(datetime.now(UTC) + timedelta(seconds=3)))
    page.get_by_label("Scheduling reason").fill("at the quiet hour")
    page.get_by_role("button", name="Schedule version 2").click()
    expect(page).to_have_url(re.compile(r"/schedules\?done=scheduled&id=[0-9a-f-]{36}$"))
    expect(page.locator("p.notice")).to_contain_text("Scheduled: risk")
    pending = page.locator("table.schedules.pending tr", has_text="at the quiet hour")
    expect(pending).to_contain_text("pending")
    expect(pending.get_by_role("button", name="Cancel")).to_be_visible()
    console.shot(page, "schedules-pending")
    page.evaluate("window.notReloaded = true")

    done = page.locator("table.schedules.recent tr", has_text="at the quiet hour")
    expect(done.locator(".badge")).to_have_text("done", timeout=15_000)
    expect(page.locator("table.schedules.pending")).to_have_count(0)
    assert page.evaluate("window.notReloaded === true"), "the page was reloaded"
    assert active(console, "risk").settings.max_order_attempts == 6
    console.shot(page, "schedules-done")


UNLABELLED = """() => [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]
    .filter(e => ![...e.labels].some(l => l.textContent.trim())
                 && !(e.getAttribute('aria-label') || '').trim() && !e.getAttribute('aria-labelledby'))
    .map(e => e.name || e.id)"""


def test_screenshots_of_the_change_management_pages(console: Console) -> None:
    """The new pages at 1280 px, at 390 px and dark: labelled inputs, no table cut at 1280 px, no page wider than
    a phone's window."""
    with db(console) as conn:
        changes.set_policy(conn, "risk", 1, actor="ada")
        changes.set_policy(conn, "exit", 2, actor="ada")
        asked = lifecycle.clone(conn, "risk", actor="eddie", name="slow venue")
        asked = lifecycle.edit(conn, "risk", asked.id, asked.version,
                               {"max_order_attempts": 5, "circuit_breaker_loss_threshold": "8"}, actor="eddie")
        made = changes.request(conn, "risk", asked.id, asked.version, actor="eddie",
                               reason="five tries for the slow venue, reviewed with ops on Monday")
        later = lifecycle.clone(conn, "trading", actor="olga", name="breakout sizing")
        later = lifecycle.edit(conn, "trading", later.id, later.version, {"max_position_sol": "2.5"}, actor="olga")
        schedules.schedule(conn, "trading", later.id, later.version, datetime.now(UTC) + timedelta(days=1),
                           actor="olga", reason="after the weekly review")
        gone = schedules.schedule(conn, "trading", later.id, later.version, datetime.now(UTC) + timedelta(hours=2),
                                  actor="olga", reason="too early")
        schedules.cancel(conn, gone.id, actor="olga", reason="after the review instead")
        unapproved = lifecycle.clone(conn, "exit", actor="olga", name="patient exits")
        schedules.schedule(conn, "exit", unapproved.id, unapproved.version, datetime.now(UTC) + timedelta(seconds=1),
                           actor="olga", reason="without approval: fails")
        webhooks.add(conn, "ops-alerts", "http://127.0.0.1:9/hook", events=["*"], format="slack", actor="ada")
        changes.set_policy(conn, "api", 1, actor="ada")  # an event for the webhook
    deadline = time.monotonic() + 20
    while True:  # the server's background loop: the exit schedule fails, the webhook is tried
        with db(console) as conn:
            failed = schedules.schedules(conn, status="failed")
            tried = [d for d in webhooks.deliveries(conn) if d.attempts]
        if failed and tried:
            break
        assert time.monotonic() < deadline, "the background loop did not run"
        time.sleep(0.2)

    draft = f"/domains/risk/drafts/{asked.id}"
    pages = {"requests": "/requests", "request": f"/requests/{made.id}", "schedules": "/schedules",
             "webhooks": "/admin/webhooks", "admin-policies": "/admin", "editor-approval": draft,
             "activate-approval": f"{draft}/activate", "requests-all": "/requests?show=all"}
    page = console.signed_in("admin", "ada")
    layout: list[str] = []
    for name, path in pages.items():
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        console.shot(page, name)
        layout += [f"{path}: unlabelled {x}" for x in page.evaluate(UNLABELLED)]
        layout += [f"{path} at 1280 px: {wide}" for wide in page.evaluate(WIDER_THAN_ITS_BOX)]
    page.goto("/schedules")
    expect(page.locator("table.schedules.recent")).to_contain_text("failed")
    expect(page.locator("table.schedules.recent")).to_contain_text("cancelled")
    page.goto("/admin/webhooks")
    expect(page.locator("table.deliveries .delivery-error").first).to_be_visible()

    narrow = console.page(viewport=NARROW, like=page)
    for name, path in pages.items():
        narrow.goto(path)
        if name in ("requests", "schedules", "webhooks", "activate-approval"):
            console.shot(narrow, f"{name}-390")
        overflow = narrow.evaluate(WIDER_THAN_THE_WINDOW)
        if overflow > 0:
            layout.append(f"{path} at 390 px: the page is {overflow} px wider than the window")
    dark = console.page(color_scheme="dark", like=page)
    for name in ("requests", "schedules", "webhooks"):
        dark.goto(pages[name])
        console.shot(dark, f"{name}-dark")
    assert layout == [], "\n".join(layout)

