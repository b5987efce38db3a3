"""Live configuration for running processes: pushed by PostgreSQL, read from memory, kept through outages.

    live = LiveConfig(url).start()
    live.risk.max_drawdown_pct          # from memory: no I/O, no lock
    live.subscribe("risk", lambda old, new: ...)

A `Listener` (live.engine) keeps a connection that LISTENs, and hands each domain's new active row to
the LiveConfig, which swaps it in whole and tells its subscribers. When the connection drops, readers
keep the last good settings until the listener is back and has read every domain again. The last good
settings are saved under WALLTRACK_HOME, so a process can start while the database is down.
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
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol
from uuid import UUID

from .. import db, fleet, lifecycle
from ..domains import DOMAINS
from ..errors import AuthenticationFailed, LiveConfigUnavailable, SchemaOutdated
from ..models import (
    MODELS,
    ApiConfig,
    ClusterConfig,
    DiscoveryConfig,
    ExitConfig,
    RiskConfig,
    ScoringConfig,
    Settings,
    TradingConfig,
)
from .engine import CHANNEL, Listener, LiveRow, Reading, row_from_json, row_json
from .http import StreamSource, is_http, shown
from .report import DatabaseReports, HttpReports

__all__ = ["CHANNEL", "Callback", "ConnectionCallback", "Health", "LiveConfig", "LiveRow"]

log = logging.getLogger("walltrack_config.live")

# A callback hears rows of the domain it subscribed to: LiveRow[Any] lets it declare them as LiveRow[RiskConfig].
Callback = Callable[[LiveRow[Any], LiveRow[Any]], object]
ConnectionCallback = Callable[[bool, str | None], object]


class Source(Protocol):
    """Where live settings come from: the database (engine.Listener) or a server's stream (http.StreamSource)."""

    connected: bool
    error: str | None
    synced: float

    def connect(self) -> Exception | None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


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

    def __init__(self, url: str | None = None, *, token: str | None = None, domains: Iterable[str] = DOMAINS,
                 allow_defaults: bool = False, state_dir: Path | None = None, max_backoff: float | None = None,
                 poll: float = 0.5, verify: bool | str = True, name: str | None = None,
                 heartbeat: float = fleet.HEARTBEAT, report: bool = True) -> None:
        """`url`: a PostgreSQL URL (None: $WALLTRACK_DATABASE_URL, else the embedded server), or the http(s)
        URL of a `walltrack-config serve` with a `token` (role reader) to stream from it instead.

        The client reports itself to the fleet as `name` (default host:pid) every `heartbeat` seconds and after
        each change it applied, unless `report=False`.
        """
        over_http = is_http(url)
        if not over_http:
            url = db.resolve_url(url)
        assert url is not None
        self._domains = tuple(domains)
        for domain in self._domains:
            lifecycle.model_of(domain)
        self._allow_defaults = allow_defaults
        where = shown(url) if over_http else db.describe(url)
        digest = hashlib.sha256(where.encode()).hexdigest()[:16]
        self._state = (state_dir or db.home() / "live") / f"{digest}.json"
        self._rows: Mapping[str, LiveRow[Any]] = MappingProxyType({})
        self._handled = self._rows  # what wait_for sees: _rows once its callbacks have run
        self._subscribers: dict[str, list[Callback]] = {d: [] for d in self._domains}
        self._source = "database"
        self._since = 0.0  # when saved settings or the defaults were current; the listener's time once connected
        self._unreadable: dict[str, str] = {}  # domain -> why its stored active row is refused
        self._reported: set[tuple[str, object, int]] = set()  # each unreadable row is logged once
        self._on_connection: list[ConnectionCallback] = []
        self._changed = threading.Condition()
        self._listener: Source
        self._reporter = fleet.Reporter(fleet.info_for(name, "http" if over_http else "database", self._domains,
                                                       heartbeat))
        self._http_reports: HttpReports | None = None
        self._db_reports: DatabaseReports | None = None
        self._url = url
        if over_http:
            self._listener = StreamSource(url, token, self._domains, self._receive, on_connection=self._connection,
                                          max_backoff=30.0 if max_backoff is None else max_backoff, verify=verify)
            self._http_reports = HttpReports(self._reporter, url, token, verify) if report else None
        else:
            self._db_reports = DatabaseReports(self._reporter) if report else None
            self._listener = Listener(url, self._domains, self._receive, on_connection=self._connection,
                                      max_backoff=1.0 if max_backoff is None else max_backoff, poll=poll,
                                      on_idle=self._db_reports)

    # -- reading: memory only ------------------------------------------------------

    def get(self, domain: str) -> Settings:
        row: LiveRow = self._rows[domain]
        return row.settings

    def row(self, domain: str) -> LiveRow:
        return self._rows[domain]

    def snapshot(self) -> Mapping[str, LiveRow]:
        """Every domain at one instant: read several domains from one snapshot for a consistent view."""
        return self._rows

    # Seven typed doors. The row is only annotated, never converted: a read stays a dict lookup.
    @property
    def trading(self) -> TradingConfig:
        row: LiveRow[TradingConfig] = self._rows["trading"]
        return row.settings

    @property
    def scoring(self) -> ScoringConfig:
        row: LiveRow[ScoringConfig] = self._rows["scoring"]
        return row.settings

    @property
    def discovery(self) -> DiscoveryConfig:
        row: LiveRow[DiscoveryConfig] = self._rows["discovery"]
        return row.settings

    @property
    def cluster(self) -> ClusterConfig:
        row: LiveRow[ClusterConfig] = self._rows["cluster"]
        return row.settings

    @property
    def risk(self) -> RiskConfig:
        row: LiveRow[RiskConfig] = self._rows["risk"]
        return row.settings

    @property
    def exit(self) -> ExitConfig:
        row: LiveRow[ExitConfig] = self._rows["exit"]
        return row.settings

    @property
    def api(self) -> ApiConfig:
        row: LiveRow[ApiConfig] = self._rows["api"]
        return row.settings

    def health(self) -> Health:
        listener = self._listener
        connected = listener.connected
        age = 0.0 if connected else max(0.0, time.time() - max(listener.synced, self._since))
        # Connected: a stored row the models refuse, if any; not: why the connection failed.
        error = next(iter(self._unreadable.values()), None) if connected else listener.error
        rows = self._rows
        sources = {r.source for r in rows.values()}
        return Health(connected, sources.pop() if len(sources) == 1 else "mixed" if sources else self._source,
                      age, error,
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
        failure = self._listener.connect()  # once connected, changes are heard: the listener goes on with it
        if failure is not None:
            self._fall_back(failure)
        self._listener.start()
        if self._http_reports is not None:
            self._http_reports.start()
        return self

    def stop(self) -> None:
        self._listener.stop()
        if self._http_reports is not None:
            self._http_reports.stop()
        if self._db_reports is not None:
            self._db_reports.leave(self._url)

    def __enter__(self) -> LiveConfig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _fall_back(self, exc: Exception) -> None:
        if isinstance(exc, LiveConfigUnavailable | AuthenticationFailed):
            raise exc  # the source answered: nothing usable for some domain, or not for this token
        saved = self._read_saved()
        if saved is not None:
            self._swap(saved, notify=False)
            self._source = "saved"
            log.warning("database unreachable (%s); running on the settings saved at %s", exc,
                        datetime.fromtimestamp(self._since, UTC).isoformat(timespec="seconds"))
        elif isinstance(exc, SchemaOutdated):
            raise exc  # what to do is migrate, not start on defaults
        elif self._allow_defaults:
            self._swap(self._defaults(self._domains), notify=False)
            self._source, self._since = "defaults", time.time()
            log.warning("database unreachable (%s) and no saved settings; running on the built-in defaults", exc)
        else:
            raise LiveConfigUnavailable(f"{exc}; no saved settings in {self._state} (pass allow_defaults=True "
                                        "to start on the built-in defaults)") from exc

    def _defaults(self, domains: Iterable[str]) -> dict[str, LiveRow]:
        return {d: LiveRow(d, None, 0, MODELS[d](), source="defaults") for d in domains}

    # -- driven by the listener (its thread; start's for the first reading) -----------

    def _receive(self, reading: Reading) -> None:
        """Fresh rows from the database: swap them in, tell the subscribers, save them."""
        fresh: dict[str, LiveRow] = dict(reading.rows)
        for domain in reading.rows:
            self._unreadable.pop(domain, None)
        for domain, refused in reading.refused.items():
            # A live row the models refuse: keep the last good settings, say why once per change.
            self._unreadable[domain] = refused.problem
            if (domain, refused.id, refused.activation) not in self._reported:
                self._reported.add((domain, refused.id, refused.activation))
                log.error("%s; keeping the last good %s settings", refused.problem, domain)
        missing = [d for d in self._unreadable if d not in self._rows and d not in fresh]
        if missing:
            fresh |= self._stand_ins(missing)
        self._source = "database"
        self._swap(fresh, notify=True)
        self._save()
        # Callbacks done: what this process now runs on, for the fleet (--wait-applied waits for it).
        self._reporter.applied({d: r.activation for d, r in self._rows.items()})
        if self._http_reports is not None:
            self._http_reports.applied()

    def _connection(self, connected: bool, error: str | None) -> None:
        for callback in list(self._on_connection):
            try:
                callback(connected, error)
            except Exception:
                log.exception("a connection callback failed")

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

    # -- saved settings --------------------------------------------------------------

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
        self._since = float(document["saved_at"])
        return rows


def _saved(row: LiveRow) -> dict[str, Any]:
    return row_json(row)


def _unsaved(domain: str, entry: dict[str, Any]) -> LiveRow:
    return row_from_json(domain, entry, "saved")
