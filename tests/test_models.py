"""The typed models and PostgreSQL agree: same fields, same defaults, same meanings, same rules."""

from __future__ import annotations

import typing
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from walltrack_config.lifecycle import META
from walltrack_config.models import INT4, MODELS, Precision, ScoringConfig, Settings, TradingConfig

PAIRS = list(MODELS.items())


def setting_columns(conn, table: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'walltrack' AND table_name = %s"
            " ORDER BY ordinal_position",
            [table],
        )
        if r[0] not in META
    ]


@pytest.mark.parametrize("domain, model", PAIRS)
def test_model_fields_are_exactly_the_setting_columns(conn, domain, model):
    assert list(model.model_fields) == setting_columns(conn, model.table)


@pytest.mark.parametrize("domain, model", PAIRS)
def test_model_defaults_are_the_default_row(conn, domain, model):
    row = conn.execute(
        sql.SQL("SELECT to_jsonb(t) FROM walltrack.{} t WHERE status = 'default'").format(sql.Identifier(model.table))
    ).fetchone()[0]
    assert model.model_validate({k: v for k, v in row.items() if k not in META}) == model()


@pytest.mark.parametrize("domain, model", PAIRS)
def test_descriptions_are_the_column_comments(conn, domain, model):
    comments = dict(
        conn.execute(
            "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a"
            " WHERE a.attrelid = %s::regclass AND a.attnum > 0",
            [f"walltrack.{model.table}"],
        ).fetchall()
    )
    for name, info in model.model_fields.items():
        assert info.description and comments[name] == info.description, name
    assert all(comments[m] for m in META)


@pytest.mark.parametrize("domain, model", PAIRS)
def test_every_check_constraint_names_real_fields(conn, domain, model):
    names = [
        r[0]
        for r in conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
            [f"walltrack.{model.table}"],
        )
    ]
    assert names
    for name in names:
        fields = model.fields_of(name) or (name.removeprefix("chk_"),)
        assert set(fields) <= set(model.model_fields) | {"name"}, name


def test_errors_name_the_field_and_the_rule():
    with pytest.raises(ValidationError) as err:
        TradingConfig(base_position_pct=150)
    assert err.value.errors()[0]["loc"] == ("base_position_pct",)
    with pytest.raises(ValidationError) as err:
        ScoringConfig(wallet_score_weight=Decimal("0.5"))
    error = err.value.errors()[0]
    assert error["type"] == "chk_score_weights_sum" and error["ctx"]["fields"] == list(ScoringConfig.SCORE_WEIGHTS)
    with pytest.raises(ValidationError, match="extra"):
        TradingConfig(base_position_percent=2)


def test_more_decimals_than_the_column_keeps_are_refused_not_rounded():
    assert TradingConfig(base_position_pct="99.990").base_position_pct == Decimal("99.99")  # trailing zeros are fine
    for value in ("100.004", "12.345", 12.345, "-0.0004"):
        with pytest.raises(ValidationError, match="more decimals than the 2 it keeps"):
            TradingConfig(base_position_pct=value)


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-Infinity", "inf", float("nan"), float("inf")])
def test_nan_and_infinities_are_refused(value):
    with pytest.raises(ValidationError, match="finite"):
        TradingConfig(max_position_sol=value)


# -- the property: the model accepts a row exactly when PostgreSQL does ----------------------------------------


def _bounds(info) -> list[Any]:
    found = []
    for meta in info.metadata:
        for attr in ("gt", "ge", "lt", "le"):
            value = getattr(meta, attr, None)
            if value is not None:
                found.append(value)
    return found


def _numeric_strategy(info, scale: int, precision: int) -> st.SearchStrategy:
    step, tie = Decimal(1).scaleb(-scale), Decimal(5).scaleb(-scale - 1)
    edges = [Decimal(10) ** (precision - scale) - step, Decimal(10) ** (precision - scale)]
    for b in _bounds(info):
        b = Decimal(b)
        edges += [
            b,
            b + step,
            b - step,
            b + tie,
            b - tie,
            b + tie - Decimal(1).scaleb(-scale - 3),
            b - tie + Decimal(1).scaleb(-scale - 3),
        ]
    edges += [-e for e in edges] + [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]
    return st.one_of(
        st.sampled_from(edges),
        st.decimals(
            -(10 ** (precision - scale)),
            10 ** (precision - scale),
            places=scale + 1,
            allow_nan=False,
            allow_infinity=False,
        ),
    )


def _field_strategy(name: str, info) -> st.SearchStrategy:
    ann = info.annotation
    default = info.get_default(call_default_factory=True)
    if name == "drawdown_reduction_tiers":
        number = st.one_of(st.integers(-5, 105), st.floats(-1, 101, allow_nan=False), st.just("5"), st.just(True))
        tier = st.one_of(
            st.fixed_dictionaries({"threshold_pct": number, "size_reduction_pct": number}),
            st.fixed_dictionaries({"threshold_pct": number, "size_reduction_pct": number, "extra": number}),
        )
        rising = st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=5).map(
            lambda pairs: [{"threshold_pct": t, "size_reduction_pct": r} for t, r in sorted(pairs)]
        )
        return st.one_of(rising, st.lists(tier, max_size=4))
    if typing.get_origin(ann) is typing.Literal:
        return st.sampled_from([*typing.get_args(ann), "Fixed", "kelly", ""])
    if ann is bool:
        return st.booleans()
    if ann is Decimal:
        shape = next(m for m in info.metadata if isinstance(m, Precision))
        precision, scale = _decimal_shape(shape)
        return st.one_of(_numeric_strategy(info, scale, precision), st.none())
    if ann is int:
        edges = [b + d for b in _bounds(info) for d in (-1, 0, 1)] + [INT4[1], INT4[1] + 1, INT4[0], INT4[0] - 1]
        return st.one_of(st.sampled_from(edges), st.integers(-5, 10_000), st.none())
    if default is None:
        return st.one_of(st.none(), st.uuids())
    raise AssertionError(f"no strategy for {name}: {ann}")


def _decimal_shape(shape: Precision) -> tuple[int, int]:
    """(precision, scale) of a DECIMAL field, as its Precision metadata knows them."""
    return shape.precision, shape.scale


def _rows(model: type[Settings]) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly defaults with a few fields changed, so that combined rules get near their edges."""
    defaults = model().model_dump()

    @st.composite
    def build(draw) -> dict[str, Any]:
        values = dict(defaults)
        for name in draw(st.lists(st.sampled_from(list(model.model_fields)), max_size=3, unique=True)):
            values[name] = draw(_field_strategy(name, model.model_fields[name]))
        orders = [f for f in model.cross_rules.values() if len(f) == 2]
        if orders and draw(st.booleans()):
            # An order rule (low <= high) at its edge: low one step under, at, or one step over high.
            low, high = draw(st.sampled_from(orders))
            high_value = values[high]
            if (isinstance(high_value, int) and not isinstance(high_value, bool)) or (
                isinstance(high_value, Decimal) and high_value.is_finite()
            ):
                step = 1 if isinstance(values[high], int) else Decimal(1).scaleb(values[high].as_tuple().exponent)
                values[low] = values[high] + draw(st.sampled_from([-step, 0, step]))
        if model is ScoringConfig and draw(st.booleans()):
            for group in (ScoringConfig.SCORE_WEIGHTS, ScoringConfig.WALLET_WEIGHTS):
                parts = [draw(st.decimals(0, Decimal("0.4"), places=3)) for _ in group[1:]]
                error = draw(st.sampled_from(["0", "0.001", "-0.001", "0.0011", "-0.002", "0.0004"]))
                values |= dict(zip(group, [1 - sum(parts) + Decimal(error), *parts], strict=True))
        return values

    return build()


def _model_accepts(model: type[Settings], values: dict[str, Any]) -> bool:
    try:
        model.model_validate(values)
        return True
    except ValidationError:
        return False


def _postgres_accepts(conn: psycopg.Connection, domain: str, values: dict[str, Any]) -> bool:
    """Through the write path every client shares: a draft of the defaults, then edit_config with the values."""
    payload = {c: str(v) if isinstance(v, (Decimal, UUID)) else v for c, v in values.items()}
    try:
        with conn.transaction(force_rollback=True):
            draft = conn.execute(
                f"SELECT walltrack.clone_config(%s, id, 'hypothesis') FROM walltrack.{MODELS[domain].table}"
                " WHERE status = 'default'",
                [domain],
            ).fetchone()[0]
            conn.execute("SELECT walltrack.edit_config(%s, %s, 1, %s)", [domain, draft, Jsonb(payload)])
        return True
    except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
        return False


@pytest.mark.parametrize("domain, model", PAIRS)
def test_the_model_accepts_a_row_exactly_when_postgresql_does(conn, domain, model):
    seen = {True: 0, False: 0}

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(values=_rows(model))
    def check(values):
        verdict = _postgres_accepts(conn, domain, values)
        assert _model_accepts(model, values) == verdict, values
        seen[verdict] += 1

    check()
    assert seen[True] and seen[False], seen  # both sides of every boundary were reached
