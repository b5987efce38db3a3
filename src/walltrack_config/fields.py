"""Each setting as a form shows it, and a form's text read back into values: data in, data out.

The bounds come from the models' own rules (which are V9's CHECK constraints), so an input's min, max and
step say exactly what PostgreSQL will take; the step is the column's scale (DECIMAL(5,2): 0.01). Reading a
form does no checking of its own: the values go to lifecycle.edit, which refuses with the database's rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin
from uuid import UUID

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .models import INT4_MAX, MODELS, DrawdownTier, Precision, Settings, meaning_and_unit, plain

Kind = Literal["integer", "number", "decimal", "boolean", "choice", "uuid", "tiers"]
TIER_FIELDS = tuple(DrawdownTier.model_fields)
TIER_ROW = re.compile(r"^(?P<field>[a-z_]+)-(?P<row>\d{1,3})-(?P<part>[a-z_]+)$")
MAX_TIERS = 50  # rows a tier table may post: far more than anyone needs, few enough to read


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    meaning: str
    unit: str
    default: object
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    #: the bound itself is refused (gt / lt): the form says "more than", and the browser's min is a step past it
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    step: str = "1"  # an <input>'s step: "1", "0.01", or "any"
    choices: tuple[str, ...] = ()
    #: the maximum is only what the column can hold (INTEGER, DECIMAL(p, s)), not a rule worth saying
    capacity: bool = False

    @property
    def input_min(self) -> str | None:
        if self.minimum is None:
            return None
        return _text(self.minimum + self._step if self.exclusive_minimum else self.minimum)

    @property
    def input_max(self) -> str | None:
        if self.maximum is None:
            return None
        return _text(self.maximum - self._step if self.exclusive_maximum else self.maximum)

    @property
    def _step(self) -> Decimal:
        return Decimal(0) if self.step == "any" else Decimal(self.step)

    @property
    def bounds(self) -> str:
        """The rule in words: '> 0', '0 to 1', '≥ 1', or ''."""
        low = None if self.minimum is None else f"{'>' if self.exclusive_minimum else '≥'} {_text(self.minimum)}"
        high = None
        if self.maximum is not None and not self.capacity:
            high = f"{'<' if self.exclusive_maximum else '≤'} {_text(self.maximum)}"
        if low and high and self.minimum is not None and self.maximum is not None \
                and not self.exclusive_minimum and not self.exclusive_maximum:
            return f"{_text(self.minimum)} to {_text(self.maximum)}"
        return ", ".join(x for x in (low, high) if x)


def _text(number: Decimal) -> str:
    """A bound as a person and an <input> read it: 0.00000001, not 1E-8."""
    return format(number, "f")


def _limits(info: FieldInfo) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for meta in info.metadata:
        if isinstance(meta, at.Gt):
            found.update(minimum=Decimal(str(meta.gt)), exclusive_minimum=True)
        elif isinstance(meta, at.Ge):
            # A type can carry two lower bounds (gt=0 and INTEGER's ge): the tighter one holds.
            if "minimum" not in found or Decimal(str(meta.ge)) > found["minimum"]:
                found.update(minimum=Decimal(str(meta.ge)), exclusive_minimum=False)
        elif isinstance(meta, at.Lt):
            found.update(maximum=Decimal(str(meta.lt)), exclusive_maximum=True)
        elif isinstance(meta, at.Le):
            found.update(maximum=Decimal(str(meta.le)), exclusive_maximum=False, capacity=meta.le == INT4_MAX)
        elif isinstance(meta, Precision):
            found["step"] = _text(Decimal(1).scaleb(-meta.scale))
            if "maximum" not in found:  # DECIMAL(p, s) holds less than 10^(p-s): the column's own bound
                found.update(maximum=Decimal(10) ** (meta.precision - meta.scale) - Decimal(1).scaleb(-meta.scale),
                             capacity=True)
    return found


def _spec(name: str, info: FieldInfo) -> FieldSpec:
    meaning, unit = meaning_and_unit(info.description)
    default = plain(info.get_default(call_default_factory=True))
    kind: Kind
    annotation = info.annotation
    extra: dict[str, Any] = {}
    if annotation is bool:
        kind = "boolean"
    elif get_origin(annotation) is Literal:
        kind, extra["choices"] = "choice", tuple(str(a) for a in get_args(annotation))
    elif get_origin(annotation) is list:
        kind = "tiers"
    elif UUID in get_args(annotation) or annotation is UUID:
        kind = "uuid"
    elif annotation is Decimal:
        kind = "decimal"
        extra = _limits(info)
    elif float in {get_args(a)[0] if get_args(a) else a for a in get_args(annotation)}:  # a tier's int | float
        kind = "number"
        extra = {**_limits(info), "step": "any"}
    else:
        kind = "integer"
        extra = _limits(info)
    return FieldSpec(name, kind, meaning, unit, default, **extra)


def specs(domain: str) -> list[FieldSpec]:
    """Every setting of a domain, in the table's order."""
    model: type[Settings] = MODELS[domain]
    return [_spec(name, info) for name, info in model.model_fields.items()]


def tier_specs() -> list[FieldSpec]:
    """The two columns of a drawdown tier."""
    return [_spec(name, info) for name, info in DrawdownTier.model_fields.items()]


def _number(text: str) -> int | float | str:
    """A tier's number as typed: JSON's number types, so the model's own rules judge it ('abc' stays text)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return text
        return value if value == value and abs(value) != float("inf") else text


def from_form(domain: str, form: Mapping[str, str], current: BaseModel) -> dict[str, object]:
    """The changes a posted editor form asks for: only the fields whose value differs from `current`.

    Text goes as typed (the models parse and refuse it with the field's name); an unticked box is False; an
    empty strategy id is none; the tier table's rows 'drawdown_reduction_tiers-<n>-<column>' become its list,
    rows left wholly empty dropped (so a row can be removed by clearing it)."""
    changes: dict[str, object] = {}
    for spec in specs(domain):
        old = getattr(current, spec.name)
        value: object
        if spec.kind == "boolean":
            value = form.get(spec.name) in ("on", "true", "1")
        elif spec.kind == "tiers":
            if not any(key.startswith(f"{spec.name}-") for key in form):
                continue
            value = _tiers(spec.name, form)
            if value == plain(old):
                continue
        elif spec.name not in form:
            continue
        else:
            text = form[spec.name].strip()
            if spec.kind == "uuid":
                value = text or None
                if value == (str(old) if old is not None else None):
                    continue
            else:
                value = text
                if text == str(plain(old)) or (spec.kind == "decimal" and _same_number(text, old)):
                    continue
        if spec.kind == "boolean" and value == old:
            continue
        changes[spec.name] = value
    return changes


def _same_number(text: str, old: object) -> bool:
    try:
        return Decimal(text) == old
    except ArithmeticError:
        return False


def _tiers(name: str, form: Mapping[str, str]) -> list[dict[str, object]]:
    rows: dict[int, dict[str, str]] = {}
    for key, text in form.items():
        found = TIER_ROW.match(key)
        if found and found["field"] == name and found["part"] in TIER_FIELDS and int(found["row"]) < MAX_TIERS:
            rows.setdefault(int(found["row"]), {})[found["part"]] = text
    return [
        {part: _number(row.get(part, "")) for part in TIER_FIELDS}
        for _, row in sorted(rows.items())
        if any(row.get(part, "").strip() for part in TIER_FIELDS)
    ]
