"""Live configuration for running processes: pushed by PostgreSQL, read from memory, kept through outages.

    live = LiveConfig(url).start()
    live.risk.max_drawdown_pct          # from memory: no I/O, no lock
    live.subscribe("risk", lambda old, new: ...)

A listener thread LISTENs on `walltrack_config` (V10 notifies it when a config goes live), reads the new
active row and swaps it in whole. When its connection drops it reconnects with backoff and reloads every
domain, because notifications sent while it was away are lost. The last good settings are saved under
WALLTRACK_HOME, so a process can start while the database is down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any
from uuid import UUID

from .. import db, lifecycle
from ..errors import ConfigError, DatabaseError, LiveConfigUnavailable, SchemaOutdated
from ..models import DOMAINS, MODELS, Settings, plain

CHANNEL = "walltrack_config"
log = logging.getLogger("walltrack_config.live")

Callback = Callable[["LiveRow", "LiveRow"], Any]
ConnectionCallback = Callable[[bool, "str | None"], Any]


@dataclass(frozen=True)
class LiveRow:
    """One domain's active row as a running process holds it, with the activation that made it live."""

    domain: str
    id: UUID | None  # None: the built-in defaults
    version: int
    settings: Settings
    name: str = "built-in defaults"
    activated_at: datetime | None = None
    activation: int = 0  # the activation sequence (V11): grows with every activation, in commit order
    actor: str | None = None
    reason: str | None = None
    source: str = "database"  # or 'saved' (the file under WALLTRACK_HOME) or 'defaults'

    @property
    def key(self) -> tuple[UUID | None, int, int]:
        """What tells two live states apart: the same row may go live twice (a rollback)."""
        return self.id, self.version, self.activation


@dataclass(frozen=True)
class Health:
    connected: bool
    source: str  # 'database', 'saved' (the file under WALLTRACK_HOME), 'defaults', or 'mixed' (see sources)
    age: float  # seconds since the settings were last known to be current
    last_error: str | None  # the connection's, or a stored row the models refuse (kept on the last good one)
    versions: Mapping[str, int]
    ids: Mapping[str, UUID | None]  # each domain's live row
    activations: Mapping[str, int]  # each domain's activation sequence
    sources: Mapping[str, str]  # where each domain's settings come from


class LiveConfig:
    """The active settings of every domain, kept current by PostgreSQL's notifications."""

    def __init__(self, url: str | None = None, *, domains: Iterable[str] = DOMAINS, allow_defaults: bool = False,
                 state_dir: Path | None = None, max_backoff: float = 1.0, poll: float = 0.5):
        self._url = db.resolve_url(url)
        self._domains = tuple(domains)
        for domain in self._domains:
            lifecycle.model_of(domain)
        self._allow_defaults, self._max_backoff, self._poll = allow_defaults, max_backoff, poll
        self._state = (state_dir or db.home() / "live") / f"{hashlib.sha256(db.describe(self._url).encode()).hexdigest()[:16]}.json"
        self._rows: Mapping[str, LiveRow] = MappingProxyType({})
        self._handled = self._rows  # what wait_for sees: _rows once its callbacks have run
        self._subscribers: dict[str, list[Callback]] = {d: [] for d in self._domains}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected, self._source, self._synced, self._error = False, "database", 0.0, None
        self._unreadable: dict[str, str] = {}  # domain -> why its stored active row is refused
        self._reported: set[tuple[str, object, int]] = set()  # each unreadable row is logged once
        self._on_connection: list[ConnectionCallback] = []
        self._changed = threading.Condition()

    # -- reading: memory only ------------------------------------------------------

    def get(self, domain: str) -> Settings:
        return self._rows[domain].settings

    def row(self, domain: str) -> LiveRow:
        return self._rows[domain]

    def snapshot(self) -> Mapping[str, LiveRow]:
        """Every domain at one instant: read several domains from one snapshot for a consistent view."""
        return self._rows

    @property
    def trading(self): return self._rows["trading"].settings  # noqa: E704 (seven one-line doors)

    @property
    def scoring(self): return self._rows["scoring"].settings  # noqa: E704

    @property
    def discovery(self): return self._rows["discovery"].settings  # noqa: E704

    @property
    def cluster(self): return self._rows["cluster"].settings  # noqa: E704

    @property
    def risk(self): return self._rows["risk"].settings  # noqa: E704

    @property
    def exit(self): return self._rows["exit"].settings  # noqa: E704

    @property
    def api(self): return self._rows["api"].settings  # noqa: E704

    def health(self) -> Health:
        age = 0.0 if self._connected else max(0.0, time.time() - self._synced)
        rows = self._rows
        sources = {r.source for r in rows.values()}
        return Health(self._connected, sources.pop() if len(sources) == 1 else "mixed" if sources else self._source,
                      age, self._error,
                      MappingProxyType({d: r.version for d, r in rows.items()}),
                      MappingProxyType({d: r.id for d, r in rows.items()}),
                      MappingProxyType({d: r.activation for d, r in rows.items()}),
                      MappingProxyType({d: r.source for d, r in rows.items()}))

    # -- subscribing -----------------------------------------------------------------

    def subscribe(self, domain: str, callback: Callback) -> Callable[[], None]:
        """Call `callback(old, new)` with the old and new LiveRow after each change of a domain.

        Returns a function that unsubscribes.
        """
        self._subscribers[domain].append(callback)
        return lambda: self._subscribers[domain].remove(callback)

    def on_connection(self, callback: ConnectionCallback) -> None:
        """Call `callback(connected, error)` when the database connection is lost or comes back."""
        self._on_connection.append(callback)

    def wait_for(self, domain: str, row_id: UUID, version: int | None = None, timeout: float = 5.0) -> bool:
        """Block until the domain's live row is `row_id` (at `version`, if given); for tests and tools only.

        Versions count the changes of one row, so only the id (and its version) says which settings are live.
        """
        def arrived() -> bool:
            row = self._handled.get(domain)
            return row is not None and row.id == row_id and (version is None or row.version >= version)

        with self._changed:
            return self._changed.wait_for(arrived, timeout)

    # -- running ---------------------------------------------------------------------

    def start(self) -> LiveConfig:
        """Listen and load every domain (database, else saved settings, else defaults if allowed)."""
        import psycopg

        conn = None
        try:
            conn = self._open()  # once started, changes are heard: the thread goes on with this connection
        except (psycopg.OperationalError, DatabaseError) as exc:
            self._error = " ".join(str(exc).split())
            self._fall_back(exc)
        self._thread = threading.Thread(target=self._listen, args=(conn,), name="walltrack-live", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._poll + 5)

    def __enter__(self) -> LiveConfig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _fall_back(self, exc: ConfigError) -> None:
        if isinstance(exc, LiveConfigUnavailable):
            raise exc  # the database answered, but nothing usable was found for some domain
        saved = self._read_saved()
        if saved is not None:
            self._swap(saved, notify=False)
            self._source = "saved"
            log.warning("database unreachable (%s); running on the settings saved at %s", exc,
                        datetime.fromtimestamp(self._synced, timezone.utc).isoformat(timespec="seconds"))
        elif isinstance(exc, SchemaOutdated):
            raise exc  # what to do is migrate, not start on defaults
        elif self._allow_defaults:
            self._swap(self._defaults(self._domains), notify=False)
            self._source, self._synced = "defaults", time.time()
            log.warning("database unreachable (%s) and no saved settings; running on the built-in defaults", exc)
        else:
            raise LiveConfigUnavailable(f"{exc}; no saved settings in {self._state} (pass allow_defaults=True "
                                        "to start on the built-in defaults)") from None

    def _defaults(self, domains: Iterable[str]) -> dict[str, LiveRow]:
        return {d: LiveRow(d, None, 0, MODELS[d](), source="defaults") for d in domains}

    def _open(self):
        """A connection that LISTENs, then every domain loaded through it: nothing committed in between is missed."""
        from .. import schema

        conn = db.connect(self._url, application_name="walltrack-live")
        try:
            schema.require(conn)
            conn.execute(f"LISTEN {CHANNEL}")
            self._load(conn, self._domains)
        except BaseException:
            conn.close()
            raise
        self._connected, self._source = True, "database"
        self._error = next(iter(self._unreadable.values()), None)
        return conn

    def _listen(self, conn) -> None:
        import psycopg

        delay = 0.05
        while not self._stop.is_set():
            try:
                lost = conn is None
                with conn if conn is not None else self._open() as listening:
                    delay = 0.05
                    log.info("listening for configuration changes")
                    if lost:
                        self._tell_connection(True, None)
                    while not self._stop.is_set():
                        # Back at the first notification; psycopg keeps the ones that come during _load for us.
                        # Read them all first: the generator holds the connection's lock while it is open.
                        notes = list(listening.notifies(timeout=self._poll, stop_after=1))
                        domains = {d for d in map(self._domain_of, notes) if d is not None}
                        self._synced = time.time()
                        if domains:
                            self._load(listening, sorted(domains))
            except (psycopg.OperationalError, DatabaseError) as exc:
                self._error = " ".join(str(exc).split())
                if self._connected:
                    log.warning("lost the database (%s); keeping the last good settings and reconnecting", self._error)
                    self._tell_connection(False, self._error)
            except Exception:  # a bug must not end the listener: log it and start over
                log.exception("configuration listener failed; restarting it")
            conn = None
            if self._connected:
                self._synced = time.time()
            self._connected = False
            self._stop.wait(delay)
            delay = min(delay * 2, self._max_backoff)

    def _domain_of(self, note: Any) -> str | None:
        """The domain a notification names; anything else (any role may NOTIFY this channel) is ignored."""
        try:
            domain = json.loads(note.payload)["domain"] if len(note.payload) < 1000 else None
        except Exception:  # malformed, or nested deep enough to exhaust the parser
            domain = None
        if isinstance(domain, str) and domain in DOMAINS:
            return domain if domain in self._subscribers else None  # another process's domains: not news here
        log.warning("ignored a malformed notification: %.200r", note.payload)
        return None

    def _tell_connection(self, connected: bool, error: str | None) -> None:
        for callback in list(self._on_connection):
            try:
                callback(connected, error)
            except Exception:
                log.exception("a connection callback failed")

    def _load(self, conn, domains: Iterable[str]) -> None:
        fresh = {}
        for domain in domains:
            row = lifecycle.active_row(conn, domain)
            activation = lifecycle.last_activation(conn, domain, row.id)
            if row.problems:
                self._refuse(domain, row, activation.seq if activation else 0)
                continue
            self._unreadable.pop(domain, None)
            fresh[domain] = LiveRow(domain, row.id, row.version, row.settings, row.name,
                                    activation.activated_at if activation else row.updated_at,
                                    activation.seq if activation else 0,
                                    activation.performed_by if activation else row.updated_by,
                                    activation.reason if activation else None)
        missing = [d for d in self._unreadable if d not in self._rows and d not in fresh]
        if missing:
            fresh |= self._stand_ins(missing)
        self._error = next(iter(self._unreadable.values()), None)
        self._swap(fresh, notify=True)
        self._synced = time.time()
        self._save()

    def _refuse(self, domain: str, row: lifecycle.ConfigRow, activation: int) -> None:
        """A live row the models refuse: keep the last good settings, say why once per change."""
        try:
            row.readable()
        except ConfigError as exc:
            self._unreadable[domain] = " ".join(str(exc).split())
        if (domain, row.id, activation) not in self._reported:
            self._reported.add((domain, row.id, activation))
            log.error("%s; keeping the last good %s settings", self._unreadable[domain], domain)

    def _stand_ins(self, domains: list[str]) -> dict[str, LiveRow]:
        """For domains with no good settings yet: the saved ones, else the defaults if allowed."""
        saved = self._read_saved(require_all=False) or {}
        if all(d in saved for d in domains):
            return {d: saved[d] for d in domains}
        if self._allow_defaults:
            return {d: saved.get(d) or self._defaults([d])[d] for d in domains}
        problem = "; ".join(self._unreadable[d] for d in domains)
        raise LiveConfigUnavailable(f"{problem}; no saved settings in {self._state} (pass allow_defaults=True "
                                    "to start on the built-in defaults)")

    def _swap(self, fresh: Mapping[str, LiveRow], *, notify: bool) -> None:
        old = self._rows
        # A row read again from the database after a start on saved settings is not news, but it is the source.
        changed = {d: r for d, r in fresh.items() if d not in old or (old[d].key, old[d].source) != (r.key, r.source)}
        if not changed:
            return
        self._rows = MappingProxyType({**old, **changed})  # one reference: readers see all of it or none
        for domain, row in changed.items() if notify else ():
            if domain not in old or old[domain].key == row.key:
                continue
            for callback in list(self._subscribers[domain]):
                try:
                    callback(old[domain], row)
                except Exception:  # one subscriber's bug must not keep the others from hearing
                    log.exception("a callback on %s failed", domain)
        with self._changed:  # waiters see a change once it is fully handled, callbacks included
            self._handled = self._rows
            self._changed.notify_all()

    def _save(self) -> None:
        document = {"saved_at": time.time(), "domains": {d: _saved(r) for d, r in self._rows.items()}}
        try:
            self._state.parent.mkdir(parents=True, exist_ok=True)
            partial = self._state.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(document))
            os.replace(partial, self._state)  # whole file or none, even if we die mid-write
        except OSError as exc:
            log.warning("could not save the settings to %s: %s", self._state, exc)

    def _read_saved(self, require_all: bool = True) -> dict[str, LiveRow] | None:
        try:
            document = json.loads(self._state.read_text())
            rows = {d: _unsaved(d, e) for d, e in document["domains"].items() if d in self._subscribers}
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged file is no settings at all, and we say so
            log.warning("ignored the saved settings in %s: %s", self._state, exc)
            return None
        if require_all and set(rows) != set(self._domains):
            return None
        self._synced = float(document["saved_at"])
        return rows


def _saved(row: LiveRow) -> dict[str, Any]:
    return {"id": str(row.id) if row.id else None, "version": row.version, "name": row.name,
            "activated_at": row.activated_at.isoformat() if row.activated_at else None,
            "activation": row.activation, "actor": row.actor, "reason": row.reason, "settings": plain(row.settings)}


def _unsaved(domain: str, entry: dict[str, Any]) -> LiveRow:
    when = entry.get("activated_at")
    return LiveRow(domain, UUID(entry["id"]) if entry["id"] else None, entry["version"],
                   MODELS[domain].model_validate(entry["settings"]), entry.get("name") or "saved settings",
                   datetime.fromisoformat(when) if when else None, int(entry.get("activation") or 0),
                   entry.get("actor"), entry.get("reason"), source="saved")
