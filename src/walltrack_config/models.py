"""Typed settings: one pydantic model per config table, its fields exactly the table's setting columns.

Each rule here is also a CHECK constraint in V9, with the same result (a property test holds them
to it). Descriptions are the columns' COMMENTs. Defaults are the story's presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Annotated, ClassVar, Literal, overload
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, StrictFloat, StrictInt, model_validator
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from .domains import DOMAINS as DOMAINS  # re-exported: models.DOMAINS is what the front doors read
from .domains import Domain

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1  # PostgreSQL's INTEGER
TIMES = "\N{MULTIPLICATION SIGN}"  # the unit of a factor, as the column COMMENTs write it
INT4 = (INT4_MIN, INT4_MAX)


@dataclass(frozen=True)
class Precision:
    """DECIMAL(precision, scale), as Annotated metadata: a value with more decimals than `scale`, or more digits
    than `precision - scale` before the point, is refused where PostgreSQL would round it or overflow.

    Pydantic runs it before its own Decimal check, as it would a BeforeValidator; `precision` and `scale` stay
    readable, so tests can build values at the column's edges.
    """

    precision: int
    scale: int

    def __call__(self, value: object) -> object:
        # PostgreSQL would round 12.345 into DECIMAL(5,2) silently; an operator's value is kept or refused.
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            return value  # let pydantic reject it with its own message
        text = str(value).strip()
        if not text.isascii():  # Python reads '١٢' as 12; PostgreSQL refuses it, and so do we
            raise PydanticCustomError("decimal_parsing", "{value} is not a number", {"value": text})
        try:
            number = Decimal(text)
        except InvalidOperation:
            return value
        if not number.is_finite():  # V11's chk_<field>_finite says the same
            raise PydanticCustomError("finite_number", "must be a finite number, not {value}", {"value": text})
        exponent = number.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > self.scale:  # an int: the number is finite
            raise PydanticCustomError("decimal_places", "{value} has more decimals than the {scale} it keeps",
                                      {"value": text, "scale": self.scale})
        if number and number.adjusted() >= self.precision - self.scale:  # before quantize, which fails on 1e400
            raise PydanticCustomError("numeric_overflow", "needs at most {digits} digits before the point",
                                      {"digits": self.precision - self.scale})
        return number.quantize(Decimal(1).scaleb(-self.scale))  # exact: it has no more decimals than the scale

    def __get_pydantic_core_schema__(self, source: object, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self, handler(source))


# Each setting's type, its column's precision and its CHECK bounds, in one place. The bounds are V9's rules;
# integers also stay within INTEGER, which PostgreSQL would refuse beyond.
Sol = Annotated[Decimal, Precision(20, 8), Field(allow_inf_nan=False, gt=0)]
Usd = Annotated[Decimal, Precision(20, 2), Field(allow_inf_nan=False, ge=0)]
Percent = Annotated[Decimal, Precision(5, 2), Field(allow_inf_nan=False, gt=0, le=100)]
PnlPercent = Annotated[Decimal, Precision(8, 2), Field(allow_inf_nan=False, ge=-100)]
LossPercent = Annotated[Decimal, Precision(8, 2), Field(allow_inf_nan=False, ge=-100, le=0)]
Ratio = Annotated[Decimal, Precision(4, 3), Field(allow_inf_nan=False, ge=0, le=1)]
SizeMultiplier = Annotated[Decimal, Precision(5, 2), Field(allow_inf_nan=False, ge=1, le=10)]
ScoreBoost = Annotated[Decimal, Precision(4, 3), Field(allow_inf_nan=False, ge=1)]
SpikeFactor = Annotated[Decimal, Precision(8, 2), Field(allow_inf_nan=False, ge=1)]
DelayFactor = Annotated[Decimal, Precision(4, 2), Field(allow_inf_nan=False, ge=1)]
Positive = Annotated[int, Field(strict=False, gt=0, ge=INT4_MIN, le=INT4_MAX)]
NonNegative = Annotated[int, Field(strict=False, ge=0, le=INT4_MAX)]
ClusterSize = Annotated[int, Field(strict=False, ge=2, le=INT4_MAX)]
BasisPoints = Annotated[int, Field(strict=False, gt=0, ge=INT4_MIN, le=10000)]
TierNumber = Annotated[StrictInt | StrictFloat, Field(ge=0, le=100, allow_inf_nan=False)]


def _cross(rule: str, message: str, *fields: str) -> PydanticCustomError:
    return PydanticCustomError(rule, message, {"fields": list(fields)})


class Settings(BaseModel):
    """Base of the seven models: unknown fields are refused, values are frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    #: the config table of this model, in schema walltrack
    table: ClassVar[str]
    #: CHECK constraints over several fields, by name (single-field ones are named chk_<field>)
    cross_rules: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def fields_of(cls, constraint: str) -> tuple[str, ...]:
        """The fields a V9 CHECK constraint is about."""
        if constraint in cls.cross_rules:
            return cls.cross_rules[constraint]
        if constraint in NAME_RULES:
            return ("name",)
        field = constraint.removeprefix("chk_").removesuffix("_finite")  # V11: chk_<field>_finite refuses NaN
        return (field,) if field in cls.model_fields else ()


class DrawdownTier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold_pct: TierNumber = Field(description="Drawdown from the peak at which the tier starts, in percent.")
    size_reduction_pct: TierNumber = Field(description="How much smaller new positions get in this tier, in percent.")


class TradingConfig(Settings):
    table: ClassVar[str] = "trading_config"
    cross_rules: ClassVar[dict[str, tuple[str, ...]]] = {
        "chk_position_sol_order": ("min_position_sol", "max_position_sol"),
        "chk_threshold_order": ("score_threshold", "high_conviction_threshold"),
    }

    base_position_pct: Percent = Field(Decimal("2.0"), description="Standard position size. Unit: % of capital.")
    max_position_sol: Sol = Field(Decimal("1.0"), description="Largest position. Unit: SOL.")
    min_position_sol: Sol = Field(Decimal("0.05"), description="Smallest position. Unit: SOL.")
    high_conviction_multiplier: SizeMultiplier = Field(
        Decimal("1.5"), description=f"Size multiplier for high-conviction signals, 1 to 10. Unit: {TIMES}.")
    sizing_mode: Literal["fixed", "risk_based"] = Field(
        "risk_based",
        description="How positions are sized: fixed (base_position_pct) or risk_based (risk_per_trade_pct).")
    risk_per_trade_pct: Percent = Field(
        Decimal("1.0"), description="Capital put at risk per trade. Unit: % of capital.")
    max_concurrent_positions: Positive = Field(5, description="Open positions allowed at once. Unit: positions.")
    daily_loss_limit_pct: Percent = Field(
        Decimal("5.0"), description="Daily loss that stops new entries. Unit: % of capital.")
    daily_loss_limit_enabled: bool = Field(True, description="Whether the daily loss limit applies.")
    max_concentration_token_pct: Percent = Field(
        Decimal("25.0"), description="Most capital in one token. Unit: % of capital.")
    max_concentration_cluster_pct: Percent = Field(
        Decimal("50.0"), description="Most capital in one wallet cluster. Unit: % of capital.")
    max_positions_per_cluster: Positive = Field(
        3, description="Open positions allowed per wallet cluster. Unit: positions.")
    drawdown_reduction_tiers: list[DrawdownTier] = Field(
        default_factory=lambda: [DrawdownTier(threshold_pct=t, size_reduction_pct=r)
                                 for t, r in ((5, 0), (10, 25), (15, 50), (20, 100))],
        min_length=1,
        description="Position size cuts by drawdown: rising thresholds, non-decreasing reductions. Unit: % (both).")
    score_threshold: Ratio = Field(
        Decimal("0.70"), description="Lowest signal score that opens a position, 0 to 1. Unit: score.")
    high_conviction_threshold: Ratio = Field(
        Decimal("0.85"), description="Signal score from which a signal is high-conviction, 0 to 1. Unit: score.")
    max_slippage_entry_bps: BasisPoints = Field(100, description="Slippage accepted on entry. Unit: basis points.")
    max_slippage_exit_bps: BasisPoints = Field(150, description="Slippage accepted on exit. Unit: basis points.")

    @model_validator(mode="after")
    def _orders(self) -> TradingConfig:
        if self.min_position_sol > self.max_position_sol:
            raise _cross("chk_position_sol_order", "min_position_sol must not exceed max_position_sol",
                         "min_position_sol", "max_position_sol")
        if self.score_threshold > self.high_conviction_threshold:
            raise _cross("chk_threshold_order", "score_threshold must not exceed high_conviction_threshold",
                         "score_threshold", "high_conviction_threshold")
        tiers = self.drawdown_reduction_tiers
        for lower, upper in pairwise(tiers):
            if not (lower.threshold_pct < upper.threshold_pct and lower.size_reduction_pct <= upper.size_reduction_pct):
                raise _cross("chk_drawdown_reduction_tiers",
                             "drawdown tiers need rising thresholds and non-decreasing reductions",
                             "drawdown_reduction_tiers")
        return self


WEIGHT_SUM_TOLERANCE = Decimal("0.001")


def _sums_to_one(model: BaseModel, rule: str, fields: tuple[str, ...]) -> None:
    weights: list[Decimal] = [getattr(model, f) for f in fields]
    total = sum(weights, Decimal(0))
    if abs(total - 1) > WEIGHT_SUM_TOLERANCE:
        raise PydanticCustomError(rule, "must sum to 1 (±0.001), not {total}",
                                  {"fields": list(fields), "total": str(total)})


class ScoringConfig(Settings):
    table: ClassVar[str] = "scoring_config"
    SCORE_WEIGHTS: ClassVar[tuple[str, ...]] = (
        "wallet_score_weight", "timing_score_weight", "market_score_weight", "cluster_score_weight")
    WALLET_WEIGHTS: ClassVar[tuple[str, ...]] = (
        "wallet_win_rate_weight", "wallet_avg_pnl_weight", "wallet_consistency_weight")
    cross_rules: ClassVar[dict[str, tuple[str, ...]]] = {
        "chk_score_weights_sum": SCORE_WEIGHTS, "chk_wallet_weights_sum": WALLET_WEIGHTS}

    wallet_score_weight: Ratio = Field(
        Decimal("0.30"), description="Weight of the wallet score in a signal's score; the four weights sum to 1. "
                                     "Unit: fraction.")
    timing_score_weight: Ratio = Field(
        Decimal("0.25"), description="Weight of the timing score in a signal's score; the four weights sum to 1. "
                                     "Unit: fraction.")
    market_score_weight: Ratio = Field(
        Decimal("0.20"), description="Weight of the market score in a signal's score; the four weights sum to 1. "
                                     "Unit: fraction.")
    cluster_score_weight: Ratio = Field(
        Decimal("0.25"), description="Weight of the cluster score in a signal's score; the four weights sum to 1. "
                                     "Unit: fraction.")
    wallet_win_rate_weight: Ratio = Field(
        Decimal("0.40"), description="Weight of win rate in the wallet score; the three weights sum to 1. "
                                     "Unit: fraction.")
    wallet_avg_pnl_weight: Ratio = Field(
        Decimal("0.30"), description="Weight of average PnL in the wallet score; the three weights sum to 1. "
                                     "Unit: fraction.")
    wallet_consistency_weight: Ratio = Field(
        Decimal("0.30"), description="Weight of consistency in the wallet score; the three weights sum to 1. "
                                     "Unit: fraction.")
    timing_decay_hours: Positive = Field(4, description="Time over which the timing score decays. Unit: hours.")
    timing_freshness_bonus: Ratio = Field(
        Decimal("0.2"), description="Bonus added to the timing score of a fresh signal, 0 to 1. Unit: score.")
    market_liquidity_threshold: Usd = Field(
        Decimal("10000"), description="Least token liquidity for a full market score. Unit: USD.")
    market_volume_threshold: Usd = Field(
        Decimal("5000"), description="Least 24-hour volume for a full market score. Unit: USD.")
    cluster_min_sync_ratio: Ratio = Field(
        Decimal("0.3"), description="Share of a cluster that must buy together to amplify, 0 to 1. Unit: fraction.")
    cluster_amplification_factor: ScoreBoost = Field(
        Decimal("1.2"), description=f"Score multiplier for a synchronised cluster, 1 or more. Unit: {TIMES}.")

    @model_validator(mode="after")
    def _sums(self) -> ScoringConfig:
        for rule, fields in self.cross_rules.items():
            _sums_to_one(self, rule, fields)
        return self


class DiscoveryConfig(Settings):
    table: ClassVar[str] = "discovery_config"

    run_interval_minutes: Positive = Field(60, description="Time between wallet discovery runs. Unit: minutes.")
    max_wallets_per_run: Positive = Field(100, description="Most wallets examined in one discovery run. Unit: wallets.")
    min_wallet_age_days: NonNegative = Field(30, description="Youngest wallet considered. Unit: days.")
    min_win_rate: Ratio = Field(
        Decimal("0.55"), description="Lowest win rate for a wallet to qualify, 0 to 1. Unit: fraction.")
    min_trades: Positive = Field(10, description="Fewest trades for a wallet to qualify. Unit: trades.")
    min_avg_pnl_pct: PnlPercent = Field(
        Decimal("20.0"), description="Lowest average PnL per trade for a wallet to qualify. Unit: %.")
    max_avg_loss_pct: LossPercent = Field(
        Decimal("-30.0"), description="Deepest average loss tolerated, -100 to 0. Unit: %.")
    decay_lookback_days: Positive = Field(30, description="History used to detect a wallet's decay. Unit: days.")
    decay_threshold: Ratio = Field(
        Decimal("0.15"), description="Drop in win rate that marks a wallet as decaying, 0 to 1. Unit: fraction.")
    decay_check_interval_hours: Positive = Field(24, description="Time between decay checks. Unit: hours.")
    pump_volume_spike_threshold: SpikeFactor = Field(
        Decimal("3.0"), description=f"Volume over its normal level that marks a pump, 1 or more. Unit: {TIMES}.")
    pump_price_spike_threshold: SpikeFactor = Field(
        Decimal("2.0"), description=f"Price over its normal level that marks a pump, 1 or more. Unit: {TIMES}.")


class ClusterConfig(Settings):
    table: ClassVar[str] = "cluster_config"
    cross_rules: ClassVar[dict[str, tuple[str, ...]]] = {
        "chk_cluster_size_order": ("min_cluster_size", "max_cluster_size")}

    min_cluster_size: ClusterSize = Field(
        3, description="Fewest wallets that form a cluster, 2 or more. Unit: wallets.")
    max_cluster_size: ClusterSize = Field(20, description="Most wallets in one cluster. Unit: wallets.")
    similarity_threshold: Ratio = Field(
        Decimal("0.7"), description="Lowest similarity for two wallets to share a cluster, 0 to 1. Unit: fraction.")
    sync_time_window_minutes: Positive = Field(
        60, description="Window in which buys count as synchronised. Unit: minutes.")
    sync_token_overlap_threshold: Ratio = Field(
        Decimal("0.3"), description="Share of tokens two wallets must have in common, 0 to 1. Unit: fraction.")
    leader_min_followers: Positive = Field(
        2, description="Fewest followers for a wallet to count as a leader. Unit: wallets.")
    leader_time_advantage_minutes: Positive = Field(
        5, description="How far a leader buys ahead of its followers. Unit: minutes.")
    enable_cluster_amplification: bool = Field(True, description="Whether synchronised clusters amplify signal scores.")
    amplification_max_boost: ScoreBoost = Field(
        Decimal("1.5"), description=f"Largest score multiplier from cluster amplification, 1 or more. Unit: {TIMES}.")

    @model_validator(mode="after")
    def _order(self) -> ClusterConfig:
        if self.min_cluster_size > self.max_cluster_size:
            raise _cross("chk_cluster_size_order", "min_cluster_size must not exceed max_cluster_size",
                         "min_cluster_size", "max_cluster_size")
        return self


class RiskConfig(Settings):
    table: ClassVar[str] = "risk_config"

    circuit_breaker_enabled: bool = Field(True, description="Whether the circuit breaker can halt trading.")
    circuit_breaker_loss_threshold: Percent = Field(
        Decimal("10.0"), description="Loss that trips the circuit breaker. Unit: % of capital.")
    circuit_breaker_cooldown_minutes: Positive = Field(
        60, description="Time trading stays halted after the breaker trips. Unit: minutes.")
    max_drawdown_pct: Percent = Field(
        Decimal("20.0"), description="Largest drawdown from the peak before trading stops. Unit: %.")
    drawdown_lookback_days: Positive = Field(30, description="Period over which drawdown is measured. Unit: days.")
    max_order_attempts: Positive = Field(3, description="Attempts per order before it is given up. Unit: attempts.")
    retry_delay_base_seconds: Positive = Field(5, description="Wait before the first order retry. Unit: seconds.")
    retry_delay_multiplier: DelayFactor = Field(
        Decimal("3.0"), description=f"Factor by which each retry's wait grows, 1 or more. Unit: {TIMES}.")
    emergency_exit_threshold_pct: Percent = Field(
        Decimal("50.0"), description="Loss on a position that forces an immediate exit. Unit: %.")


class ExitConfig(Settings):
    table: ClassVar[str] = "exit_config"

    default_strategy_standard_id: UUID | None = Field(
        None, description="Exit strategy for standard positions, or none. Unit: strategy id.")
    default_strategy_high_conviction_id: UUID | None = Field(
        None, description="Exit strategy for high-conviction positions, or none. Unit: strategy id.")
    default_max_hold_hours: Positive = Field(168, description="Longest a position is held. Unit: hours.")
    stagnation_hours: Positive = Field(
        24, description="Time without progress after which a position is stagnant. Unit: hours.")
    stagnation_threshold_pct: Percent = Field(
        Decimal("5.0"), description="Price move below which a position counts as stagnant. Unit: %.")
    price_collection_interval_seconds: Positive = Field(
        5, description="Time between price samples of open positions. Unit: seconds.")
    price_history_retention_days: Positive = Field(30, description="How long price history is kept. Unit: days.")


class ApiConfig(Settings):
    table: ClassVar[str] = "api_config"

    dexscreener_requests_per_minute: Positive = Field(
        30, description="DexScreener request budget. Unit: requests per minute.")
    birdeye_requests_per_minute: Positive = Field(60, description="Birdeye request budget. Unit: requests per minute.")
    jupiter_requests_per_minute: Positive = Field(100, description="Jupiter request budget. Unit: requests per minute.")
    helius_requests_per_minute: Positive = Field(100, description="Helius request budget. Unit: requests per minute.")
    api_timeout_seconds: Positive = Field(10, description="Timeout of an HTTP API call. Unit: seconds.")
    rpc_timeout_seconds: Positive = Field(30, description="Timeout of a Solana RPC call. Unit: seconds.")
    api_retry_count: NonNegative = Field(3, description="Retries of a failed API call, 0 for none. Unit: retries.")
    api_retry_backoff_seconds: Positive = Field(1, description="Wait before retrying an API call. Unit: seconds.")
    price_cache_ttl_seconds: Positive = Field(5, description="How long a cached price stays fresh. Unit: seconds.")
    token_info_cache_ttl_seconds: Positive = Field(
        300, description="How long cached token information stays fresh. Unit: seconds.")


#: The model of each domain, in domains.py's order (that file is the one list of domains).
MODELS: dict[str, type[Settings]] = {
    Domain.TRADING.value: TradingConfig,
    Domain.SCORING.value: ScoringConfig,
    Domain.DISCOVERY.value: DiscoveryConfig,
    Domain.CLUSTER.value: ClusterConfig,
    Domain.RISK.value: RiskConfig,
    Domain.EXIT.value: ExitConfig,
    Domain.API.value: ApiConfig,
}


def _check_models() -> None:
    """MODELS has exactly the domains of domains.py, in their order, each model on its domain's table."""
    if tuple(MODELS) != DOMAINS:
        raise RuntimeError(f"models.MODELS has {tuple(MODELS)}, domains.DOMAINS has {DOMAINS}")
    for domain in Domain:
        model = MODELS[domain.value]
        if model.table != domain.table:
            raise RuntimeError(f"{model.__name__} is on {model.table}, not {domain.table}")


_check_models()


NAME_LENGTH = 100  # VARCHAR(100), the story's
def _chars(*ranges: tuple[int, int]) -> frozenset[str]:
    return frozenset(chr(c) for low, high in ranges for c in range(low, high + 1))


# Never in a name: control characters and the bidi overrides that make text read other than it is stored.
# V11's chk_name_text holds the same sets, written as regular expression ranges.
_FORBIDDEN = _chars((0x01, 0x1F), (0x7F, 0x9F), (0x061C, 0x061C), (0x200E, 0x200F), (0x202A, 0x202E),
                    (0x2066, 0x2069), (0x00, 0x00))
# Not a visible character: blanks and the invisible format characters.
_INVISIBLE = _chars((0x20, 0x20), (0xA0, 0xA0), (0xAD, 0xAD), (0x1680, 0x1680), (0x180E, 0x180E), (0x2000, 0x200F),
                    (0x2028, 0x202F), (0x205F, 0x2064), (0x3000, 0x3000), (0xFEFF, 0xFEFF))
NAME_RULES = ("chk_name", "chk_name_text")  # V9's blank-name rule, V11's visible-and-printable one
NAME_RULE = "a name needs a visible character and no control or direction-override characters (tab, newline, ...)"


def name_problem(name: object) -> str | None:
    """Why a row name is refused (V11's chk_name_text says the same), or None when it is fine."""
    if not isinstance(name, str):
        return "a name is text"
    if any(ch in _FORBIDDEN for ch in name) or all(ch in _INVISIBLE for ch in name):
        return NAME_RULE
    if len(name) > NAME_LENGTH:
        return f"a name has at most {NAME_LENGTH} characters, not {len(name)}"
    return None


def meaning_and_unit(comment: str | None) -> tuple[str, str]:
    """A column comment, '<meaning>. Unit: <unit>.', split in two (unit '' when there is none)."""
    text = (comment or "").strip()
    meaning, _, unit = text.partition(" Unit: ")
    return meaning.rstrip("."), unit.rstrip(".")


@overload
def plain(value: BaseModel) -> dict[str, object]: ...
@overload
def plain(value: object) -> object: ...


def plain(value: object) -> object:
    """JSON- and YAML-ready data: exact decimals as numbers (strings only where a float would round).

    A model becomes a mapping of its fields; values of other types than these are returned as they are.
    """
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, BaseModel):
        return {k: plain(v) for k, v in value.model_dump().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    return value
