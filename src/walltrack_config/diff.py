"""Field-by-field differences between two configurations: data in, data out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any


def diff(old: BaseModel, new: BaseModel) -> list[Change]:
    """The settings that differ, in field order, with their old and new values."""
    if type(old) is not type(new):
        raise TypeError(f"cannot compare {type(old).__name__} with {type(new).__name__}")
    return [
        Change(name, getattr(old, name), getattr(new, name))
        for name in type(old).model_fields
        if getattr(old, name) != getattr(new, name)
    ]
