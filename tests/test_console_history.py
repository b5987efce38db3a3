"""The console's history page over real HTTP: the timeline, its filters, and paging by entry id."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import psycopg

from console_support import signed_in
from server_support import Api
from walltrack_config import audit, lifecycle

ENTRY = re.compile(r'<li class="entry card" data-action="([a-z]+)" data-entry="(\d+)">')
OLDER = re.compile(r'href="/history\?([^"]*)" rel="next">Older</a>')


def older_link(page: str) -> str | None:
    found = OLDER.search(page)
    return None if found is None else html.unescape(found[1])


def entries(html: str) -> list[tuple[str, int]]:
    return [(action, int(ident)) for action, ident in ENTRY.findall(html)]


def busy_history(db: str) -> list[int]:
    """60 edits of one risk draft by alice, then bob activates a trading draft: the ids, newest first."""
    with psycopg.connect(db, autocommit=True) as conn:
        draft = lifecycle.clone(conn, "risk", actor="alice")
        with conn.transaction():  # one commit for the 60: cheap
            for n in range(60):
                draft = lifecycle.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": 4 + n % 2},
                                       actor="alice", reason=f"try {n}")
        other = lifecycle.clone(conn, "trading", actor="bob")
        lifecycle.activate(conn, "trading", other.id, expected_version=other.version, actor="bob",
                           reason="same settings, new name")
        return [e.id for e in audit.entries(conn, limit=500)]


def test_the_timeline_pages_by_id_newest_first_with_each_change_and_why(api: Api):
    ids = busy_history(api.db)
    assert len(ids) == 64  # 2 creates, 60 updates, an archive and an activation
    reader = signed_in(api, "reader")
    first = reader.get("/history")
    assert first.status_code == 200
    shown = entries(first.text)
    assert [i for _, i in shown] == ids[:50]
    assert [a for a, _ in shown[:4]] == ["activate", "archive", "create", "update"]
    assert "same settings, new name" in first.text and "by <span class=\"actor\">bob</span>" in first.text
    # an edit: the field, old → new, its unit, and the reason
    edit = first.text[first.text.index(f'data-entry="{ids[3]}"'):first.text.index(f'data-entry="{ids[4]}"')]
    assert '<tr data-field="max_order_attempts">' in edit and "attempts" in edit and "try 59" in edit
    assert re.search(r'class="old num">4</td>\s*<td class="new num"><span class="sr-only">→ </span>5</td>', edit)
    older = older_link(first.text)
    assert older == f"before={ids[49]}"
    second = reader.get(f"/history?{older}")
    assert [i for _, i in entries(second.text)] == ids[50:]
    assert older_link(second.text) is None and "Back to the newest" in second.text
    # new entries arriving on top do not shift a page already being read
    with psycopg.connect(api.db, autocommit=True) as conn:
        draft = lifecycle.drafts(conn, "risk")[0]
        lifecycle.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": 6}, actor="carol")
    assert [i for _, i in entries(reader.get(f"/history?{older}").text)] == ids[50:]


def test_filters_by_domain_actor_and_utc_dates_and_the_older_link_keeps_them(api: Api):
    ids = busy_history(api.db)
    reader = signed_in(api, "reader")
    trading = entries(reader.get("/history?domain=trading").text)
    assert [a for a, _ in trading] == ["activate", "archive", "create"]
    bob = reader.get("/history?actor=bob")
    assert len(entries(bob.text)) == 3 and 'value="bob"' in bob.text
    alice = reader.get("/history?actor=alice&domain=risk")
    older = older_link(alice.text)
    assert len(entries(alice.text)) == 50 and older is not None
    assert "actor=alice" in older and "domain=risk" in older
    assert len(entries(reader.get(f"/history?{older}").text)) == 11
    today = datetime.now(UTC).date()
    assert len(entries(reader.get(f"/history?since={today}&until={today}").text)) == 50
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    none = reader.get(f"/history?since={tomorrow}")
    assert none.status_code == 200 and entries(none.text) == [] and "No change matches these filters" in none.text
    assert entries(reader.get(f"/history?until={yesterday}").text) == []
    for bad, field in (("since=12/31/2024", "since"), ("domain=nope", "domain"), ("before=abc", "before"),
                       (f"since={today}&until={yesterday}", "until")):
        refused = reader.get(f"/history?{bad}")
        assert refused.status_code == 422 and f"<code>{field}</code>" in refused.text, bad
        assert entries(refused.text) == []
    assert len(ids) == 64
