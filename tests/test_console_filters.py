"""How the console writes values and a client's progress (server/console/filters.py), pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from walltrack_config import fleet
from walltrack_config.models import TradingConfig, plain
from walltrack_config.server.console import filters


def test_a_value_reads_the_same_whether_it_came_as_a_decimal_or_a_float():
    # The domain page compares the active value with the default; one may be a float from plain(), the other
    # a Decimal from the database: 10 and 10.0 must not be marked as a change.
    assert filters.value(Decimal("10.00")) == filters.value(10.0) == "10"
    assert filters.value(Decimal("0.00000001")) == filters.value(1e-08) == "0.00000001"
    assert filters.value(Decimal("12.5")) == filters.value(12.5) == "12.5"
    assert filters.value(True) == "on" and filters.value(None) == "none"
    tiers = [{"threshold_pct": 5.0, "size_reduction_pct": 0}, {"threshold_pct": 12.5, "size_reduction_pct": 25}]
    assert filters.value(tiers) == "threshold_pct 5, size_reduction_pct 0; threshold_pct 12.5, size_reduction_pct 25"
    assert filters.value(plain(TradingConfig().drawdown_reduction_tiers)).startswith("threshold_pct 5, ")


def _client(domains: tuple[str, ...], lag: dict[str, int]) -> fleet.FleetClient:
    now = datetime.now(UTC)
    return fleet.FleetClient(uuid.uuid4(), "bot", "host", 1, "1", "http", domains, 15, now, now,
                             {d: 1 for d in lag}, False, lag, "postgres", "postgres")


def test_a_client_that_never_applied_a_domain_it_follows_is_behind_on_it():
    assert filters.behind(_client(("risk", "trading"), {"risk": 0, "trading": 0})) == {}
    assert filters.behind(_client(("risk", "trading"), {"risk": 2, "trading": 0})) == {"risk": "2 behind"}
    assert filters.behind(_client(("risk", "trading"), {"risk": 0})) == {"trading": "not applied"}
