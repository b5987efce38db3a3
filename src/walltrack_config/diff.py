"""Field-by-field differences between two configurations: data in, data out."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel

LABELS = ("name", "description")  # a row's own fields beside its settings


@dataclass(frozen=True)
class Change:
    field: str
    old: object
    new: object


def diff(old: BaseModel, new: BaseModel) -> list[Change]:
    """The settings that differ, in field order, with their old and new values."""
    if type(old) is not type(new):
        raise TypeError(f"cannot compare {type(old).__name__} with {type(new).__name__}")
    return [
        Change(name, getattr(old, name), getattr(new, name))
        for name in type(old).model_fields
        if not _same(getattr(old, name), getattr(new, name))
    ]


def _same(a: object, b: object) -> bool:
    """Equal, where a NaN (stored before V11) is the same as a NaN, as it is in PostgreSQL."""
    if isinstance(a, Decimal) and isinstance(b, Decimal) and a.is_nan() and b.is_nan():
        return True
    return bool(a == b)


class Labelled(Protocol):
    """A config row as diff_rows needs it, read-only (lifecycle.ConfigRow, a frozen dataclass, fits)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def settings(self) -> BaseModel: ...


def diff_rows(old: Labelled, new: Labelled) -> list[Change]:
    """What differs between two rows: their name and description first, then their settings."""
    labels = [Change(f, getattr(old, f), getattr(new, f)) for f in LABELS if getattr(old, f) != getattr(new, f)]
    return labels + diff(old.settings, new.settings)
