"""The active settings as this server process holds them: swapped in whole, read without a lock.

The live engine's listener hands every reading to `Snapshot.receive`, which builds a new immutable `View`
(rows, ETags and the JSON documents already encoded) and swaps it in; a request reads `snapshot.view` once
and serves from it, so it never sees half of a change, and the hot path does no I/O and no encoding.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..live.engine import LiveRow, Reading, row_json

log = logging.getLogger("walltrack_config.server")


def _encode(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class View:
    """One consistent state of every domain, with what is served from it."""

    rows: Mapping[str, LiveRow] = field(default_factory=dict)
    #: the highest activation sequence among the rows: the whole configuration's ETag
    activation: int = 0
    body: bytes = b'{"activation":0,"domains":{}}'
    domain_bodies: Mapping[str, bytes] = field(default_factory=dict)
    #: domains whose stored active row the models refuse: served on the last good row, with the reason
    refused: Mapping[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        return f'"a{self.activation}"'

    def domain_etag(self, domain: str) -> str:
        return f'"a{self.rows[domain].activation}"'


class Snapshot:
    def __init__(self) -> None:
        self.view = View()
        self._changed = threading.Condition()

    def receive(self, reading: Reading) -> list[LiveRow]:
        """A listener's reading: the rows it read replace those domains' rows; a refused row keeps the last good one.

        Returns the rows that changed (a new row, or the same row live again), oldest activation first.
        """
        old = self.view
        rows = {**old.rows, **reading.rows}
        refused = {d: r for d, r in old.refused.items() if d not in reading.rows}
        for domain, why in reading.refused.items():
            refused[domain] = why.problem
            log.warning("kept the last good %s settings: %s", domain, why.problem)
        docs = {d: row_json(r) for d, r in sorted(rows.items())}
        activation = max((r.activation for r in rows.values()), default=0)
        view = View(MappingProxyType(rows), activation, _encode({"activation": activation, "domains": docs}),
                    MappingProxyType({d: _encode(doc) for d, doc in docs.items()}), MappingProxyType(refused))
        with self._changed:
            self.view = view
            self._changed.notify_all()
        changed = [r for d, r in reading.rows.items() if d not in old.rows or old.rows[d].key != r.key]
        return sorted(changed, key=lambda r: r.activation)

    def wait_for(self, domain: str, activation: int, timeout: float) -> bool:
        """Block until this process serves the domain as of `activation` (its activation sequence) or later."""

        def arrived() -> bool:
            row = self.view.rows.get(domain)
            return row is not None and row.activation >= activation

        with self._changed:
            return self._changed.wait_for(arrived, timeout)
