"""The console's export and import over real HTTP: the download, the preview listing every problem of a hostile
file (nothing written), and applying an import as drafts (editor) or live (operator, with a reason)."""

from __future__ import annotations

import codecs
import html
import re
from typing import Any

import httpx
import psycopg
import yaml

from console_support import Browser, signed_in
from server_support import Api
from walltrack_config import audit, exchange, lifecycle
from walltrack_config.domains import DOMAINS

PROBLEM = re.compile(r'<li data-domain="([^"]*)" data-field="([^"]*)">')


def footprint(db: str) -> tuple[int, int, list[tuple[str, int]]]:
    """Rows, audit entries, and each domain's live row and version: what an import that writes nothing keeps."""
    with psycopg.connect(db, autocommit=True) as conn:
        rows = sum(len(lifecycle.rows(conn, d)) for d in DOMAINS)
        live = [(lifecycle.active_row(conn, d).name, lifecycle.active_row(conn, d).version) for d in DOMAINS]
        return rows, len(audit.entries(conn, limit=100_000)), live


def upload(client: Browser, content: str | bytes, name: str = "x.yaml", **kwargs: Any) -> httpx.Response:
    csrf = client.csrf("/exchange")
    return client.post("/import", files={"file": (name, content, "application/yaml")}, data={"csrf": csrf},
                       headers={"origin": str(client.base_url)}, **kwargs)


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} field"
    return html.unescape(found[1])


def apply(client: Browser, preview: str, mode: str, **more: str) -> httpx.Response:
    """The preview's apply form as a browser posts it: multipart, its line breaks made CRLF."""
    data = {"csrf": client.csrf("/exchange"), "document": hidden(preview, "document").replace("\n", "\r\n"),
            "reviewed": hidden(preview, "reviewed"), "mode": mode, **more}
    return client.post("/import/apply", files={k: (None, v) for k, v in data.items()},
                       headers={"origin": str(client.base_url)})


def exported(client: Browser) -> dict[str, Any]:
    answer = client.get("/export")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/yaml")
    assert answer.headers["content-disposition"] == 'attachment; filename="walltrack-config.yaml"'
    document: dict[str, Any] = exchange.loads(answer.text, "download")
    return document


def test_a_reader_downloads_the_active_settings_and_may_not_import(api: Api):
    reader = signed_in(api, "reader")
    page = reader.get("/exchange")
    assert page.status_code == 200 and 'href="/export"' in page.text and "Download active settings (YAML)" in page.text
    assert 'type="file"' not in page.text
    document = exported(reader)
    assert document["format"] == exchange.FORMAT and list(document["domains"]) == list(DOMAINS)
    assert document["domains"]["risk"]["settings"]["max_order_attempts"] == 3
    before = footprint(api.db)
    document["domains"]["risk"]["settings"]["max_order_attempts"] = 5
    refused = upload(reader, yaml.safe_dump(document))
    assert refused.status_code == 403 and footprint(api.db) == before


def test_a_hostile_file_gets_a_page_naming_each_problem_and_nothing_is_written(api: Api):
    editor = signed_in(api, "editor")
    before = footprint(api.db)
    several = ("domains:\n  risk:\n    settings:\n      max_order_attempts: -1\n      max_drawdown: 5\n"
               "  riks:\n    settings: {}\n  trading:\n    settings: 3\n")
    page = upload(editor, several)
    assert page.status_code == 422 and "Nothing was written" in page.text
    listed = set(PROBLEM.findall(page.text))
    assert {("risk", "max_order_attempts"), ("risk", "max_drawdown"), ("", "domains"), ("trading", "")} <= listed
    assert "did you mean risk?" in html.unescape(page.text) and 'action="/import/apply"' not in page.text
    bomb = "a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\ndomains: {risk: {settings: {}}}\n"
    deep = "{" + '"domains": ' * 1 + "[" * 200 + "]" * 200 + "}"
    hostile: dict[str, str | bytes] = {
        "alias": bomb,
        "nested too deeply": deep,
        "looks like UTF-16": codecs.BOM_UTF16_LE + "domains: {}\n".encode("utf-16-le"),
        "is not UTF-8": b"domains:\n  risk: {settings: {name: caf\xe9}}\n",
        "given twice": "domains:\n  risk: {settings: {}}\n  risk: {settings: {}}\n",
        "expected a mapping": "- just\n- a list\n",
        "too large": b"#" * (exchange.MAX_FILE_BYTES + 1),
        "not valid YAML or JSON": "domains: [unclosed\n",
        "no file was chosen": b"",
    }
    for says, content in hostile.items():
        answer = upload(editor, content, name="" if says.startswith("no file") else "x.yaml")
        assert answer.status_code == 422, (says, answer.status_code, answer.text[:300])
        assert says in html.unescape(answer.text) and '<ul class="errors">' in answer.text, says
    assert footprint(api.db) == before
    # a form that did not come from the console's own page: refused before the file is even read
    token = editor.csrf("/exchange")
    for data, origin in (({}, str(editor.base_url)), ({"csrf": token}, "https://evil.example")):
        refused = editor.post("/import", files={"file": ("x.yaml", several)}, data=data, headers={"origin": origin})
        assert refused.status_code == 403 and "Form refused" in refused.text
    assert footprint(api.db) == before


def test_an_editor_imports_as_drafts_and_may_not_activate(api: Api):
    editor = signed_in(api, "editor")
    document = exported(editor)
    document["domains"]["risk"]["settings"]["max_order_attempts"] = 5
    document["domains"]["exit"]["name"] = "from git"
    unchanged = footprint(api.db)
    preview = upload(editor, exchange.dumps(document))
    assert preview.status_code == 200 and footprint(api.db) == unchanged
    assert '<section class="card import-domain" data-domain="risk">' in preview.text
    assert 'data-domain="exit"' not in preview.text  # a new name alone changes no setting
    assert re.search(r'<tr data-field="max_order_attempts">.*?class="old num">3</td><td class="new num">5</td>'
                     r"<td>attempts</td>", preview.text)
    assert ">Create drafts</button>" in preview.text and "Activate all" not in preview.text
    assert 'name="reason"' not in preview.text
    refused = apply(editor, preview.text, "activate", reason="sneaky")
    assert refused.status_code == 403 and footprint(api.db) == unchanged
    forged = editor.post("/import/apply", data={"document": hidden(preview.text, "document"), "mode": "drafts",
                                                "reviewed": hidden(preview.text, "reviewed")},
                         headers={"origin": str(editor.base_url)})
    assert forged.status_code == 403 and "Form refused" in forged.text and footprint(api.db) == unchanged
    done = apply(editor, preview.text, "drafts")
    assert done.status_code == 200 and "Imported as drafts" in done.text
    with psycopg.connect(api.db, autocommit=True) as conn:
        drafts = lifecycle.drafts(conn, "risk")
        assert len(drafts) == 1 and drafts[0].settings.max_order_attempts == 5
        assert lifecycle.active_row(conn, "risk").settings.max_order_attempts == 3
    assert f'href="/domains/risk/drafts/{drafts[0].id}"' in done.text
    # the same file again: the draft already holds it, so nothing new is written
    rows = footprint(api.db)
    assert apply(editor, preview.text, "drafts").status_code == 200 and footprint(api.db) == rows


def test_an_operator_activates_an_import_with_a_reason_reviewed_against_the_live_rows(api: Api):
    operator = signed_in(api, "operator")
    document = exported(operator)
    document["domains"]["risk"]["settings"]["max_order_attempts"] = 5
    document["domains"]["trading"]["settings"]["max_concurrent_positions"] = 7
    preview = upload(operator, exchange.dumps(document, "json"), name="x.json")
    assert preview.status_code == 200 and "Activate all" in preview.text and 'name="reason"' in preview.text
    unchanged = footprint(api.db)
    no_reason = apply(operator, preview.text, "activate", reason="  ")
    assert no_reason.status_code == 422 and "needs a reason" in no_reason.text and footprint(api.db) == unchanged
    # someone makes risk live in between: the reviewed preview no longer holds, so it is shown again
    with psycopg.connect(api.db, autocommit=True) as conn:
        other = lifecycle.clone(conn, "risk", actor="bob")
        other = lifecycle.edit(conn, "risk", other.id, other.version, {"max_order_attempts": 4}, actor="bob")
        lifecycle.activate(conn, "risk", other.id, expected_version=other.version, actor="bob", reason="mine")
    moved = footprint(api.db)
    stale = apply(operator, preview.text, "activate", reason="from git")
    assert stale.status_code == 409 and "changed since you reviewed" in stale.text and footprint(api.db) == moved
    assert re.search(r'data-field="max_order_attempts">.*?class="old num">4</td>', stale.text)
    done = apply(operator, stale.text, "activate", reason="from git")
    assert done.status_code == 200 and "Imported and activated" in done.text
    with psycopg.connect(api.db, autocommit=True) as conn:
        assert lifecycle.active_row(conn, "risk").settings.max_order_attempts == 5
        assert lifecycle.active_row(conn, "trading").settings.max_concurrent_positions == 7
        reasons = {e.reason for e in audit.entries(conn, actor="operator-user", limit=50)}
    assert reasons == {"from git"}
    again = apply(operator, stale.text, "activate", reason="from git")
    assert again.status_code == 409 and "nothing to import" in again.text
