"""A draft as the editor form shows it, and a posted form read back as the changes it asks for: data in, data out.

The editor posts every field; only the ones that differ from the draft as its author opened it (that version,
from the audit trail when the draft moved since) are changes, so a save never reverts someone else's work in
fields its author did not touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ... import fields
from ...errors import FieldError, InvalidValue
from ...lifecycle import LABELS, ConfigRow, model_of, table_of
from ...models import plain
from .filters import value

TIERS = "drawdown_reduction_tiers"  # the one setting that is a table of rows


@dataclass(frozen=True)
class Seen:
    """A draft's labels and settings at one version (diff.Labelled)."""

    name: str
    description: str | None
    settings: BaseModel


def as_seen(domain: str, snapshot: dict[str, Any] | None, fallback: ConfigRow) -> Seen | ConfigRow:
    """The row as an audit snapshot holds it; `fallback` (the row now) if there is none or it no longer reads."""
    if snapshot is None:
        return fallback
    model = model_of(domain)
    try:
        settings = model.model_validate({k: snapshot[k] for k in model.model_fields if k in snapshot})
    except ValidationError:
        return fallback
    return Seen(str(snapshot.get("name") or fallback.name), snapshot.get("description"), settings)


def version_of(domain: str, posted: dict[str, str]) -> int:
    """The version the form was opened at (its hidden field)."""
    text = posted.get("version", "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise InvalidValue(table_of(domain), [FieldError("version", "the form carries no version: reload the page")])
    return int(text)


def changes(domain: str, posted: dict[str, str], base: Seen | ConfigRow) -> dict[str, object]:
    """What the form changes in `base`: settings as fields.from_form reads them, then the name and description."""
    found = fields.from_form(domain, posted, base.settings)
    for label in LABELS:
        if label in posted and posted[label].strip() != (getattr(base, label) or ""):
            # An emptied description is none; an emptied name stays empty, for the name rule to refuse.
            found[label] = posted[label].strip() or (None if label == "description" else "")
    return found


def shown(domain: str, row: Seen | ConfigRow, posted: dict[str, str] | None = None,
          only: set[str] | None = None) -> dict[str, Any]:
    """Each input's value: the row's, or what was posted (all fields, or those in `only`) so nothing typed is lost.

    Scalars are text as an <input> takes it, booleans booleans, the tiers a list of (threshold, reduction) texts.
    """
    values: dict[str, Any] = {label: getattr(row, label) or "" for label in LABELS}
    specs = fields.specs(domain)
    for spec in specs:
        current = getattr(row.settings, spec.name)
        if spec.kind == "boolean":
            values[spec.name] = bool(current)
        elif spec.kind == "tiers":
            values[spec.name] = _stored_tiers(current)
        else:
            values[spec.name] = "" if current is None else value(current)
    if posted is None:
        return values
    kinds = {spec.name: spec.kind for spec in specs} | dict.fromkeys(LABELS, "text")
    for name, kind in kinds.items():
        if only is not None and name not in only:
            continue
        if kind == "boolean":
            values[name] = posted.get(name) in ("on", "true", "1")
        elif kind == "tiers":
            if any(key.startswith(f"{name}-") for key in posted):
                values[name] = _posted_tiers(name, posted)
        elif name in posted:
            values[name] = posted[name]
    return values


def _stored_tiers(current: object) -> list[tuple[str, str]]:
    """The tiers as texts; a row stored before a rule existed may hold them raw (dicts, or not even a list)."""
    rows = plain(current)
    threshold, reduction = fields.TIER_FIELDS
    if not isinstance(rows, list):
        return []
    return [(value(r.get(threshold)), value(r.get(reduction))) for r in rows if isinstance(r, dict)]


def _posted_tiers(name: str, posted: dict[str, str]) -> list[tuple[str, str]]:
    rows: dict[int, dict[str, str]] = {}
    for key, text in posted.items():
        found = fields.TIER_ROW.match(key)
        if found and found["field"] == name and found["part"] in fields.TIER_FIELDS \
                and int(found["row"]) < fields.MAX_TIERS:
            rows.setdefault(int(found["row"]), {})[found["part"]] = text
    threshold, reduction = fields.TIER_FIELDS
    kept = [row for _, row in sorted(rows.items()) if any(v.strip() for v in row.values())]
    return [(row.get(threshold, ""), row.get(reduction, "")) for row in kept]


def by_field(errors: list[FieldError]) -> dict[str, list[str]]:
    """Each refusal under the input it is about: a cross-field rule under each of its fields, a tier's under the
    tier table (naming the row); a pydantic union's several attempts at one value said once (the last)."""
    found: dict[tuple[str, str], str] = {}
    for error in errors:
        for part in error.field.split(", "):
            head, _, rest = part.partition(".")
            where = ""
            if rest:
                row, _, column = rest.partition(".")
                column = column.split(".")[0]
                where = f"tier {int(row) + 1}{' ' + column if column else ''}: " if row.isdigit() else f"{rest}: "
            found[(head, where)] = where + error.message
    grouped: dict[str, list[str]] = {}
    for (head, _), message in found.items():
        grouped.setdefault(head, []).append(message)
    return grouped


def units(domain: str) -> dict[str, str]:
    return {spec.name: spec.unit for spec in fields.specs(domain)}
