"""The console's drafts over real HTTP: the editor, saving (refusals keep what was typed, a stale version shows
the other change), the diff, activation, rollback, restore and discard; roles and CSRF; 404s that stay pages.

Forms are posted as a browser would post them: every field of the page's own form (html.parser reads them),
with the changes a person would type on top.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from html.parser import HTMLParser

import httpx
import psycopg

from conftest import activate
from console_support import Browser, signed_in
from server_support import Api
from walltrack_config import audit, fields, fleet, lifecycle
from walltrack_config.domains import DOMAINS
from walltrack_config.errors import NotFound

DRAFT = re.compile(r"^/domains/(?P<domain>[a-z]+)/drafts/(?P<id>[0-9a-f-]{36})$")
TIERS = "drawdown_reduction_tiers"


class FormReader(HTMLParser):
    """The fields one form (by its action) would post: inputs, ticked boxes, selected options, textareas."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside = action, False
        self.fields: dict[str, str] = {}
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        elif not self.inside or "name" not in a:
            return
        elif tag == "input" and (a.get("type") != "checkbox" or "checked" in a):
            self.fields[a["name"]] = a.get("value", "on" if a.get("type") == "checkbox" else "")
        elif tag == "select":
            self.select = a["name"]
        elif tag == "textarea":
            self.textarea = a["name"]
            self.fields[a["name"]] = ""

    def handle_endtag(self, tag: str) -> None:
        self.inside = self.inside and tag != "form"
        self.select = None if tag == "select" else self.select
        self.textarea = None if tag == "textarea" else self.textarea

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.fields[self.textarea] += data

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


class OptionReader(FormReader):
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "option" and self.inside and self.select and ("selected" in a or self.select not in self.fields):
            self.fields[self.select] = a.get("value", "")
        else:
            super().handle_starttag(tag, attrs)


def form_of(page: str, action: str) -> dict[str, str]:
    reader = OptionReader(action)
    reader.feed(page)
    assert reader.fields, f"no form posting to {action}"
    return reader.fields


def post_form(client: Browser, page: httpx.Response, action: str, changes: Mapping[str, str | None]) -> httpx.Response:
    """Post the page's form to `action` with `changes` typed in (None: an unticked box or a cleared row)."""
    data: dict[str, str | None] = {**form_of(page.text, action), **changes}
    return client.post(action, data={k: v for k, v in data.items() if v is not None},
                       headers={"origin": str(client.base_url)})


def new_draft(client: Browser, domain: str) -> str:
    answer = client.submit(f"/domains/{domain}", f"/domains/{domain}/drafts")
    assert answer.status_code == 303, answer.text[:300]
    found = DRAFT.match(answer.headers["location"])
    assert found and found["domain"] == domain
    return found["id"]


def row(api: Api, domain: str, row_id: str) -> lifecycle.ConfigRow:
    with psycopg.connect(api.db, autocommit=True) as conn:
        return lifecycle.get(conn, domain, row_id)


def written(api: Api) -> tuple[object, int]:
    """Everything a refused post must leave as it was: every row's status and version, the audit log's length."""
    with psycopg.connect(api.db, autocommit=True) as conn:
        rows = tuple((d, r.id, r.status, r.version) for d in DOMAINS for r in lifecycle.rows(conn, d))
        return rows, len(audit.entries(conn, limit=10_000))


def error_under(page: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="field-{name}-error">([^<]*)</span>', page)
    assert found, f"no error slot for {name}"
    return html.unescape(found[1])


def diff_cells(page: str, name: str) -> tuple[str, str]:
    found = re.search(rf'<tr data-field="{name}">\s*<th scope="row"><code>{name}</code></th>\s*'
                      rf'<td class="old num">([^<]*)</td>\s*<td class="new num">([^<]*)</td>', page)
    assert found, f"no diff row for {name}"
    return found[1].strip(), found[2].strip()


# -- the editor ----------------------------------------------------------------------------------------------------


def test_a_new_draft_opens_an_editor_with_every_setting_its_label_unit_and_bounds(api: Api) -> None:
    operator = signed_in(api, "operator")
    draft = new_draft(operator, "trading")
    page = operator.get(f"/domains/trading/drafts/{draft}")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    text = page.text
    assert f'<form class="editor" method="post" action="/domains/trading/drafts/{draft}">' in text
    assert '<input type="hidden" name="version" value="1">' in text
    for spec in fields.specs("trading"):
        assert f'id="field-{spec.name}"' in text, spec.name
        assert f'id="field-{spec.name}-error"' in text and f'id="field-{spec.name}-client-error"' in text
        if spec.kind == "tiers":
            continue
        assert f'<label for="field-{spec.name}"><code>{spec.name}</code></label>' in text, spec.name
        tag = re.search(rf'<(input|select)[^>]*id="field-{spec.name}"[^>]*>', text, re.S)
        assert tag, spec.name
        if spec.kind in ("integer", "decimal"):
            assert 'type="number"' in tag[0] and f'step="{spec.step}"' in tag[0], tag[0]
            assert f'min="{spec.input_min}"' in tag[0] and f'max="{spec.input_max}"' in tag[0], tag[0]
        assert spec.unit in text
    assert re.search(r'<input type="checkbox" id="field-daily_loss_limit_enabled" name="daily_loss_limit_enabled"'
                     r' checked', text)
    assert '<option value="risk_based" selected>' in text and '<option value="fixed">' in text
    assert '<tbody id="tiers-body">' in text and 'data-add-tier="#tiers-body"' in text
    assert f'name="{TIERS}-0-threshold_pct"' in text
    assert f'<label class="sr-only" for="{TIERS}-3-size_reduction_pct"' in text
    assert "Save draft" in text and "Discard draft" in text and "% of capital" in text
    assert f'href="/domains/trading/diff?a=active&amp;b={draft}">Diff with active' in text
    assert f'href="/domains/trading/drafts/{draft}/activate">Activate…' in text
    assert " style=" not in text and " onclick" not in text and "<script>" not in text

    exit_draft = new_draft(operator, "exit")  # the one domain with strategy ids
    exit_page = operator.get(f"/domains/exit/drafts/{exit_draft}").text
    assert re.search(r'<input type="text" id="field-default_strategy_standard_id" name="default_strategy_standard_id"'
                     r' value=""', exit_page)

    # A reader sees the draft, read-only; a signed-out browser is sent to sign in.
    reader = signed_in(api, "reader").get(f"/domains/trading/drafts/{draft}").text
    assert "Save draft" not in reader and "Discard draft" not in reader and "Activate…" not in reader
    assert '<fieldset class="settings-fields" disabled>' in reader
    signed_out = httpx.get(f"{api.base}/domains/trading/drafts/{draft}")
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login?next=")


def test_saving_stores_decimals_a_box_a_choice_and_the_tier_table(api: Api) -> None:
    editor = signed_in(api, "editor", "eddie")
    draft = new_draft(editor, "trading")
    path = f"/domains/trading/drafts/{draft}"
    answer = post_form(editor, editor.get(path), path, {
        "name": "breakout sizing", "base_position_pct": "2.5", "daily_loss_limit_enabled": None,
        "sizing_mode": "fixed", f"{TIERS}-0-threshold_pct": "4", f"{TIERS}-1-size_reduction_pct": "30",
        f"{TIERS}-3-threshold_pct": "", f"{TIERS}-3-size_reduction_pct": "",  # the last tier removed
    })
    assert answer.status_code == 303 and answer.headers["location"] == f"{path}?saved=2"
    saved = editor.get(answer.headers["location"]).text
    assert '<p class="notice" role="status">Saved: version 2</p>' in saved
    stored = row(api, "trading", draft)
    s = stored.settings
    assert (stored.name, stored.version, s.base_position_pct, s.daily_loss_limit_enabled, s.sizing_mode) == (
        "breakout sizing", 2, Decimal("2.5"), False, "fixed")
    assert [(t.threshold_pct, t.size_reduction_pct) for t in s.drawdown_reduction_tiers] == [(4, 0), (10, 30), (15, 50)]
    assert 'value="2.5"' in saved and f'name="{TIERS}-3-threshold_pct" value=""' in saved  # one empty row to add
    with psycopg.connect(api.db, autocommit=True) as conn:
        assert audit.entries(conn, domain="trading", limit=1)[0].performed_by == "eddie"

    # The same form again (nothing changed) writes nothing.
    again = post_form(editor, editor.get(path), path, {})
    assert again.status_code == 303 and row(api, "trading", draft).version == 2


def test_a_refused_value_is_shown_under_its_field_keeping_what_was_typed_and_nothing_is_written(api: Api) -> None:
    editor = signed_in(api, "editor")
    draft = new_draft(editor, "trading")
    path = f"/domains/trading/drafts/{draft}"
    before = written(api)

    out_of_range = post_form(editor, editor.get(path), path, {"base_position_pct": "150", "sizing_mode": "fixed"})
    assert out_of_range.status_code == 422
    assert "less than or equal to 100" in error_under(out_of_range.text, "base_position_pct")
    assert '<div class="error" role="alert" id="errors">' in out_of_range.text
    assert 'href="#field-base_position_pct"' in out_of_range.text
    assert re.search(r'id="field-base_position_pct" name="base_position_pct" value="150"', out_of_range.text)
    assert '<option value="fixed" selected>' in out_of_range.text  # the other typed values are kept too
    assert error_under(out_of_range.text, "max_position_sol") == ""

    crossed = post_form(editor, editor.get(path), path, {"min_position_sol": "5"})
    assert crossed.status_code == 422
    for name in ("min_position_sol", "max_position_sol"):  # a rule over two fields, said under both
        assert "must not exceed" in error_under(crossed.text, name)

    tiers = post_form(editor, editor.get(path), path, {f"{TIERS}-1-threshold_pct": "2"})
    assert tiers.status_code == 422 and "rising thresholds" in error_under(tiers.text, TIERS)
    assert f'name="{TIERS}-1-threshold_pct" value="2"' in tiers.text
    one_tier = post_form(editor, editor.get(path), path, {f"{TIERS}-1-size_reduction_pct": "150"})
    assert one_tier.status_code == 422
    assert error_under(one_tier.text, TIERS) == "tier 2 size_reduction_pct: Input should be less than or equal to 100"

    blank_name = post_form(editor, editor.get(path), path, {"name": " "})
    assert blank_name.status_code == 422 and "visible character" in error_under(blank_name.text, "name")
    assert written(api) == before and row(api, "trading", draft).version == 1


def test_a_stale_save_names_the_other_change_writes_nothing_and_keeps_what_was_typed(api: Api) -> None:
    ann = signed_in(api, "editor", "ann")
    draft = new_draft(ann, "trading")
    path = f"/domains/trading/drafts/{draft}"
    opened = ann.get(path)  # ann's form is at version 1
    with psycopg.connect(api.db, autocommit=True) as conn:
        lifecycle.edit(conn, "trading", draft, 1, {"max_position_sol": "2"}, actor="bob")
    before = written(api)

    stale = post_form(ann, opened, path, {"base_position_pct": "3"})
    assert stale.status_code == 409
    text = stale.text
    assert '<div class="error" role="alert" id="conflict">' in text and "<strong>bob</strong>" in text
    assert "version 2" in text and "you opened version 1" in text
    assert diff_cells(text, "max_position_sol") == ("1", "2")  # their change, your version -> now
    assert '<input type="hidden" name="version" value="2">' in text
    assert re.search(r'id="field-base_position_pct" name="base_position_pct" value="3"', text)  # ann's, kept
    assert re.search(r'id="field-max_position_sol" name="max_position_sol" value="2"', text)  # bob's, shown
    assert written(api) == before

    # Saving the page she now sees keeps bob's change and adds hers.
    again = post_form(ann, stale, path, {})
    assert again.status_code == 303 and again.headers["location"] == f"{path}?saved=3"
    s = row(api, "trading", draft).settings
    assert (s.base_position_pct, s.max_position_sol) == (Decimal("3"), Decimal("2"))


def test_the_diff_page(api: Api) -> None:
    reader = signed_in(api, "reader")
    with psycopg.connect(api.db, autocommit=True) as conn:
        draft = lifecycle.clone(conn, "trading", actor="tests")
        lifecycle.edit(conn, "trading", draft.id, 1, {"min_position_sol": "0.5", "sizing_mode": "fixed"}, actor="t")
    page = reader.get(f"/domains/trading/diff?a=active&b={draft.id}")
    assert page.status_code == 200
    assert diff_cells(page.text, "min_position_sol") == ("0.05", "0.5")
    assert diff_cells(page.text, "sizing_mode") == ("risk_based", "fixed")
    assert re.search(r'<tr data-field="min_position_sol">.*?<td>SOL</td>', page.text, re.S)
    assert 'data-field="max_position_sol"' not in page.text
    same = reader.get("/domains/trading/diff?a=active&b=active")
    assert same.status_code == 200 and "No difference." in same.text and "<table class=\"diff\">" not in same.text
    assert reader.get("/domains/trading/diff?a=active&b=nothing-like-it").status_code == 404


# -- going live ----------------------------------------------------------------------------------------------------


def test_activation_needs_a_reason_and_the_reviewed_version_then_follows_the_fleet(api: Api) -> None:
    olga = signed_in(api, "operator", "olga")
    draft = new_draft(olga, "risk")
    path = f"/domains/risk/drafts/{draft}"
    assert post_form(olga, olga.get(path), path, {"max_order_attempts": "5"}).status_code == 303
    confirm = olga.get(f"{path}/activate")
    assert confirm.status_code == 200
    assert '<textarea id="reason" name="reason"' in confirm.text and " required>" in confirm.text
    assert "Activate version 2" in confirm.text and diff_cells(confirm.text, "max_order_attempts") == ("3", "5")
    before = written(api)

    no_reason = post_form(olga, confirm, f"{path}/activate", {"reason": "  "})
    assert no_reason.status_code == 422 and "Say why" in no_reason.text
    with psycopg.connect(api.db, autocommit=True) as conn:
        lifecycle.edit(conn, "risk", draft, 2, {"max_order_attempts": "6"}, actor="bob")
    stale = post_form(olga, confirm, f"{path}/activate", {"reason": "fewer retries"})
    assert stale.status_code == 409 and "bob saved this draft (version 3)" in stale.text
    assert diff_cells(stale.text, "max_order_attempts") == ("3", "6") and "Activate version 3" in stale.text
    assert row(api, "risk", draft).status == "draft" and written(api)[1] == before[1] + 1  # bob's edit only

    with psycopg.connect(api.db, autocommit=True) as conn:
        fleet.report(conn, fleet.info_for("bot-alpha", domains=["risk"]), fleet.current(conn, ["risk"]))
    done = post_form(olga, stale, f"{path}/activate", {"reason": "fewer retries"})
    assert done.status_code == 303
    found = re.fullmatch(r"/domains/risk/activated\?seq=(\d+)", done.headers["location"])
    assert found
    live = row(api, "risk", draft)
    assert (live.status, live.settings.max_order_attempts) == ("active", 6)
    with psycopg.connect(api.db, autocommit=True) as conn:
        entry = next(e for e in audit.entries(conn, domain="risk") if e.action == "activate")
        assert (entry.reason, entry.performed_by) == ("fewer retries", "olga")
        assert lifecycle.last_activation(conn, "risk", live.id).seq == int(found[1])  # type: ignore[union-attr]
    page = olga.get(done.headers["location"]).text
    assert f"<h1>Live: {live.name} v4</h1>" in page and "It was v3 before going live." in page
    assert 'data-poll-seconds="1"' in page and "data-refresh" in page
    assert "bot-alpha" in page and "0 of 1 live clients" in page and "behind (waiting)" in page


def test_rollback_then_restore_the_row_it_archived(api: Api) -> None:
    made, _ = activate(api.db, "risk", actor="alice", max_order_attempts=7)
    olga = signed_in(api, "operator", "olga")
    confirm = olga.get("/domains/risk/rollback")
    assert confirm.status_code == 200 and diff_cells(confirm.text, "max_order_attempts") == ("7", "3")
    assert ">Roll back</button>" in confirm.text
    before = written(api)
    for wrong in ({"reason": ""}, {"reason": "oops", "target": str(made.id)}):
        refused = post_form(olga, confirm, "/domains/risk/rollback", wrong)
        assert refused.status_code in (409, 422), refused.text[:300]
    assert written(api) == before

    back = post_form(olga, confirm, "/domains/risk/rollback", {"reason": "7 was too many"})
    assert back.status_code == 303 and back.headers["location"].startswith("/domains/risk/activated?seq=")
    with psycopg.connect(api.db, autocommit=True) as conn:
        assert lifecycle.active_row(conn, "risk").settings.max_order_attempts == 3
        assert audit.entries(conn, domain="risk", limit=1)[0].reason == "7 was too many"

    restore = f"/domains/risk/rows/{made.id}/restore"
    page = olga.get(restore)
    assert page.status_code == 200 and diff_cells(page.text, "max_order_attempts") == ("3", "7")
    assert "Restore as a draft" in page.text and " required>" not in page.text  # the reason is optional here
    answer = post_form(olga, page, restore, {"reason": "try 7 again later"})
    found = DRAFT.match(answer.headers.get("location", ""))
    assert answer.status_code == 303 and found
    restored = row(api, "risk", found["id"])
    assert (restored.status, restored.settings.max_order_attempts) == ("draft", 7)
    assert olga.get(f"/domains/risk/rows/{restored.id}/restore").status_code == 409  # a draft is not restored


def test_discard_at_the_version_shown(api: Api) -> None:
    editor = signed_in(api, "editor")
    draft = new_draft(editor, "trading")
    path = f"/domains/trading/drafts/{draft}"
    opened = editor.get(path)
    with psycopg.connect(api.db, autocommit=True) as conn:
        lifecycle.edit(conn, "trading", draft, 1, {"max_position_sol": "2"}, actor="bob")
    before = written(api)
    stale = post_form(editor, opened, f"{path}/discard", {})
    assert stale.status_code == 409 and "bob saved this draft (version 2)" in html.unescape(stale.text)
    assert written(api) == before
    gone = post_form(editor, editor.get(path), f"{path}/discard", {})
    assert gone.status_code == 303 and gone.headers["location"] == "/domains/trading"
    with psycopg.connect(api.db, autocommit=True) as conn:
        try:
            lifecycle.get(conn, "trading", draft)
            raise AssertionError("the draft is still there")
        except NotFound:
            pass


# -- refusals --------------------------------------------------------------------------------------------------------


def test_roles_are_refused_by_the_server_not_only_hidden(api: Api) -> None:
    activate(api.db, "risk", max_order_attempts=7)  # something to roll back to
    editor, reader = signed_in(api, "editor", "eddie"), signed_in(api, "reader", "rita")
    draft = new_draft(editor, "risk")
    path = f"/domains/risk/drafts/{draft}"
    page = editor.get(path)
    assert "Save draft" in page.text and "Activate" not in page.text and "/activate" not in page.text
    before = written(api)
    token = editor.csrf(path)
    origin = {"origin": str(editor.base_url)}
    assert editor.get(f"{path}/activate").status_code == 403
    for action, data in ((f"{path}/activate", {"version": "1", "reason": "I am no operator"}),
                         ("/domains/risk/rollback", {"reason": "nor this"}),
                         (f"/domains/risk/rows/{draft}/restore", {})):
        refused = editor.post(action, data={"csrf": token, **data}, headers=origin)
        assert refused.status_code == 403 and "text/html" in refused.headers["content-type"], action
    assert editor.get("/domains/risk/rollback").status_code == 403

    reader_token = reader.csrf(path)
    for action, data in ((path, form_of(page.text, path) | {"max_order_attempts": "9"}),
                         ("/domains/risk/drafts", {}), (f"{path}/discard", {"version": "1"})):
        refused = reader.post(action, data={**data, "csrf": reader_token}, headers=origin)
        assert refused.status_code == 403, action
    assert written(api) == before


def test_posts_without_this_sessions_csrf_token_are_refused(api: Api) -> None:
    editor = signed_in(api, "editor")
    draft = new_draft(editor, "trading")
    path = f"/domains/trading/drafts/{draft}"
    fields_ = form_of(editor.get(path).text, path) | {"base_position_pct": "3"}
    before = written(api)
    origin = {"origin": str(editor.base_url)}
    without = {k: v for k, v in fields_.items() if k != "csrf"}
    for data, headers in ((without, origin), (without | {"csrf": "0" * 40}, origin),
                          (fields_, {"origin": "https://evil.example"})):
        for action in (path, f"{path}/discard", "/domains/trading/drafts"):
            answer = editor.post(action, data=data, headers=headers)
            assert answer.status_code == 403 and "Form refused" in answer.text, (action, answer.status_code)
    assert written(api) == before


def test_unknown_domains_rows_and_ids_are_404_pages(api: Api) -> None:
    operator = signed_in(api, "operator")
    nobody = uuid.uuid4()
    token = operator.csrf("/")
    gets = [f"/domains/nope/drafts/{nobody}", f"/domains/trading/drafts/{nobody}", "/domains/trading/drafts/xyz",
            f"/domains/trading/drafts/{nobody}/activate", "/domains/trading/drafts/%00/activate",
            "/domains/trading/diff?a=zzz&b=active", "/domains/nope/diff", "/domains/nope/rollback",
            "/domains/trading/rows/1234/restore", f"/domains/trading/rows/{nobody}/restore", "/domains/nope/activated"]
    for path in gets:
        answer = operator.get(path)
        assert answer.status_code == 404 and "text/html" in answer.headers["content-type"], (path, answer.status_code)
    origin = {"origin": str(operator.base_url)}
    posts = [(f"/domains/trading/drafts/{nobody}", {"version": "1"}), ("/domains/trading/drafts/xyz", {"version": "1"}),
             ("/domains/nope/drafts", {}),
             (f"/domains/trading/drafts/{nobody}/activate", {"version": "1", "reason": "x"}),
             (f"/domains/trading/drafts/{nobody}/discard", {"version": "1"}),
             ("/domains/nope/rollback", {"reason": "x"}), (f"/domains/trading/rows/{nobody}/restore", {})]
    for path, data in posts:
        answer = operator.post(path, data={"csrf": token, **data}, headers=origin)
        assert answer.status_code == 404 and "text/html" in answer.headers["content-type"], (path, answer.status_code)
    # A version that is not a number is a page too, not a crash.
    draft = new_draft(operator, "trading")
    odd = operator.post(f"/domains/trading/drafts/{draft}", data={"csrf": token, "version": "v1"}, headers=origin)
    assert odd.status_code == 422 and "reload the page" in odd.text
    assert operator.get("/domains/trading/activated?seq=abc").status_code == 200
