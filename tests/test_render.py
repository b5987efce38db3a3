"""Text from the database reaches the operator's terminal only as visible characters.

A description, an actor or a reason may hold anything (archived rows predate every check), and a terminal
obeys what it is sent: ESC starts a command (clear the screen, retitle the window, rewrite the clipboard),
U+009B is a one-character CSI, and the bidi overrides make text read as something it is not. Everything
printed for a person shows such characters escaped; JSON escapes them itself.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess

import psycopg
import pytest

from conftest import CLI, run_cli
from walltrack_config.cli import render
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner

ESC_CLEAR = "\x1b[2Jboom"
TITLE = "\x1b]0;pwned\x07"  # OSC: sets the window title, ended by BEL
CSI_C1 = "\x9b31m"  # the 8-bit CSI: red text on terminals that take C1 controls
RLO = "\u202eevil\u202c"  # right-to-left override, then pop
UNSAFE = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))]


@pytest.fixture
def wtc(migrated_db, tmp_path):
    def run(*args: str, actor: str = "ops", env: dict[str, str] | None = None):
        return run_cli("--database-url", migrated_db, "--actor", actor, *args, env=env)

    run.url = migrated_db
    return run


def hostile_draft(wtc) -> None:
    """A risk draft whose description, actor and reason carry terminal commands and a bidi override."""
    assert wtc("draft", "risk").returncode == 0
    done = wtc(
        "set",
        "risk",
        f"description={ESC_CLEAR} {CSI_C1} {RLO}\nsecond line",
        "max_order_attempts=5",
        "--reason",
        f"why{TITLE}",
        actor=f"mallory{TITLE}",
    )
    assert done.returncode == 0, done.stderr


def assert_visible(text: str) -> None:
    raw = [hex(ord(ch)) for ch in text if ch in UNSAFE and ch != "\n"]
    assert not raw, (raw, text)


# -- the pure functions ---------------------------------------------------------------------------


def test_visible_escapes_controls_and_bidi_and_nothing_else():
    assert render.visible("\x1b[2J\x9b\x7f\x00\t\r\u202e\u2066x") == "\\x1b[2J\\x9b\\x7f\\x00\\t\\r\\u202e\\u2066x"
    assert render.visible("a\nb") == "a\\nb"
    assert render.visible("a\nb", keep_newlines=True) == "a\nb"
    assert render.visible("plain: é, 日本, [bold], \\x1b, \u200b") == "plain: é, 日本, [bold], \\x1b, \u200b"
    for ch in UNSAFE:
        assert_visible(render.visible(ch))


def test_value_and_lines_show_controls_escaped(capsys):
    assert render.value(ESC_CLEAR) == "\\x1b[2Jboom"
    assert render.value({"k": "\x1b\u202e"}) == '{"k": "\\u001b\\u202e"}'
    render.lines(f"a{TITLE}\nb")
    render.table(("h",), [[ESC_CLEAR], [RLO]], title=f"t{CSI_C1}")
    render.changes_table([type("C", (), {"field": "description", "old": None, "new": ESC_CLEAR})()])
    out = capsys.readouterr().out
    assert_visible(out)
    assert out.startswith("a\\x1b]0;pwned\\x07\nb\n") and "t\\x9b31m" in out and "\\u202eevil\\u202c" in out


# -- through the installed command line ------------------------------------------------------------


def test_show_history_list_and_diff_print_no_terminal_commands(wtc):
    hostile_draft(wtc)
    for args in (("show", "risk", "--status", "draft"), ("history", "risk"), ("list", "risk"), ("diff", "risk")):
        done = wtc(*args)
        assert done.returncode == 0, (args, done.stderr)
        assert_visible(done.stdout)
        # list shows who changed a row, not its description
        assert ("mallory\\x1b]0;" if args[0] == "list" else "\\x1b[2Jboom") in done.stdout, (args, done.stdout)
    shown = wtc("show", "risk", "--status", "draft").stdout
    # a newline in a description is a line break on its own line, and escaped in a cell or a value
    assert "description: \\x1b[2Jboom \\x9b31m \\u202eevil\\u202c\nsecond line" in shown
    assert "changed by mallory\\x1b]0;pwned\\x07" in shown
    history = wtc("history", "risk").stdout
    assert "  mallory\\x1b]0;pwned\\x07 " in history and "  (why\\x1b]0;pwned\\x07)\n" in history
    assert " -> \\x1b[2Jboom \\x9b31m \\u202eevil\\u202c\\nsecond line" in history
    assert "mallory\\x1b]0;pwned\\x07" in wtc("list", "risk").stdout


def test_json_output_keeps_the_exact_text_escaped_by_json(wtc):
    hostile_draft(wtc)
    description = f"{ESC_CLEAR} {CSI_C1} {RLO}\nsecond line"
    for args in (("show", "risk", "--status", "draft"), ("list", "risk"), ("history", "risk")):
        done = wtc("--json", *args)
        assert done.returncode == 0, (args, done.stderr)
        assert_visible(done.stdout.replace("\n", ""))
        assert "\\u001b[2Jboom" in done.stdout
    row = json.loads(wtc("--json", "show", "risk", "--status", "draft").stdout)
    assert (row["description"], row["updated_by"]) == (description, f"mallory{TITLE}")
    entry = json.loads(wtc("--json", "history", "risk").stdout)[0]
    assert (entry["reason"], entry["new_values"]["description"]) == (f"why{TITLE}", description)


def test_a_name_written_before_v11_is_shown_escaped(db_at):
    """V11 checks names only from then on: an archived row from before may hold any text; it is shown, not obeyed."""
    url = db_at(10)
    hostile = f"Old{TITLE} {RLO}"
    with psycopg.connect(url, autocommit=True) as conn:
        (active,) = conn.execute("SELECT id FROM walltrack.risk_config WHERE status = 'active'").fetchone()
        (old,) = conn.execute("SELECT walltrack.clone_config('risk', %s, %s)", [active, hostile]).fetchone()
        conn.execute("SELECT walltrack.activate_config('risk', %s)", [old])
        (new,) = conn.execute("SELECT walltrack.clone_config('risk', %s, 'Clean')", [old]).fetchone()
        conn.execute("SELECT walltrack.activate_config('risk', %s)", [new])  # the hostile row is archived now
        runner.migrate(conn, migrations.discover(), "tests")
    for args in (("show", "risk", "--status", "archived"), ("list", "risk"), ("history", "risk")):
        done = run_cli("--database-url", url, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert_visible(done.stdout)
        assert "Old\\x1b]0;pwned\\x07 \\u202eevil\\u202c" in done.stdout, (args, done.stdout)
    code, out, err = on_terminal("--database-url", url, "list", "risk")
    assert code == 0 and "Traceback" not in err, err
    assert "\x1b]" not in out and "\x07" not in out and "Old\\x1b]0;pwned\\x07" in out


def on_terminal(*args: str) -> tuple[int, str, str]:
    """The installed command with its stdout on a pseudo-terminal, as an operator sees it (rich tables)."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "WALLTRACK_DATABASE_URL"} | {
        "TERM": "xterm-256color",
        "COLUMNS": "300",
        "LINES": "50",
    }
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([str(CLI), *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                proc.kill()
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return proc.wait(timeout=120), out.decode(), err


def test_rich_tables_on_a_terminal_escape_controls_and_take_no_markup(wtc):
    """rich reads '[link=…]' as markup (it would emit an OSC 8 hyperlink) and fails on a stray '[/x]'."""
    hostile_draft(wtc)
    name = "[/x] [link=https://evil.example]click[/link]"
    assert wtc("set", "risk", f"name={name}", actor=f"mallory{TITLE}").returncode == 0
    with psycopg.connect(wtc.url) as conn:
        (row_id,) = conn.execute("SELECT id FROM walltrack.risk_config WHERE status = 'draft'").fetchone()
    for args in (("show", "risk", "--id", str(row_id)), ("list", "risk")):
        code, out, err = on_terminal("--database-url", wtc.url, *args)
        assert code == 0 and "Traceback" not in err, (args, err)
        assert "\x1b[" in out  # it is a terminal: rich styles its headers
        assert "\x1b]" not in out and "\x1b[2J" not in out and "\x07" not in out and "\u202e" not in out, out
        assert name in out, out
    code, out, _ = on_terminal("--database-url", wtc.url, "list", "risk")
    assert "mallory\\x1b]0;pwned\\x07" in out
