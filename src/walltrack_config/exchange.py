"""Settings as files a person reviews in git: export the active settings, import them as drafts."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import lifecycle
from .diff import Change, diff
from .errors import FieldError, InvalidFile, InvalidValue, NothingToDo, UnknownDomain, UnknownField
from .lifecycle import ConfigRow, _field_errors
from .models import DOMAINS, MODELS, Settings, plain

if TYPE_CHECKING:
    import psycopg

FORMAT = "walltrack-config/1"


@dataclass(frozen=True)
class ImportPlan:
    """One domain of an import: the active row, the settings imported over it, and what differs."""

    domain: str
    active: ConfigRow
    settings: Settings
    changes: list[Change]
    name: str | None = None
    description: str | None = None


def export_document(conn: psycopg.Connection, domains: list[str] | None = None) -> dict[str, Any]:
    """The active settings of the domains (all by default), as one document."""
    chosen = domains or list(DOMAINS)
    for domain in chosen:
        lifecycle.model_of(domain)
    rows = {domain: lifecycle.active_row(conn, domain) for domain in chosen}
    return {
        "format": FORMAT,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "domains": {
            d: {"name": r.name, "version": r.version, "settings": plain(r.settings)} for d, r in rows.items()
        },
    }


def dumps(document: dict[str, Any], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def loads(text: str, source: str = "<input>") -> dict[str, Any]:
    """A YAML or JSON document (YAML reads both), as a mapping; InvalidFile otherwise."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidFile(source, f"not valid YAML or JSON: {reason}", mark.line + 1 if mark else None) from None
    if not isinstance(document, dict):
        raise InvalidFile(source, "expected a mapping with a 'domains' key")
    return document


def plan(conn: psycopg.Connection, document: dict[str, Any], source: str = "<input>") -> list[ImportPlan]:
    """Check every domain of a document against its model; the domains that differ from the active ones.

    Settings a domain leaves out keep their active values. Nothing is written.
    """
    domains = document.get("domains")
    if not isinstance(domains, dict) or not domains:
        raise InvalidFile(source, "expected 'domains:' with one entry per domain to import")
    errors: list[FieldError] = []
    plans = []
    for domain, entry in domains.items():
        if domain not in MODELS:
            raise UnknownDomain(str(domain), DOMAINS)
        settings = entry.get("settings") if isinstance(entry, dict) else None
        if not isinstance(settings, dict):
            raise InvalidFile(source, f"domains.{domain} needs a 'settings:' mapping")
        model = MODELS[domain]
        for field in settings:
            if field not in model.model_fields:
                close = difflib.get_close_matches(str(field), list(model.model_fields), n=1)
                raise UnknownField(f"{domain} (in {source})", str(field), close[0] if close else None)
        active = lifecycle.active_row(conn, domain)
        try:
            imported = model.model_validate(active.settings.model_dump() | settings)
        except ValidationError as exc:
            errors += [FieldError(f"{domain}.{e.field}", e.message) for e in _field_errors(exc)]
            continue
        changes = diff(active.settings, imported)
        if changes:
            plans.append(ImportPlan(domain, active, imported, changes, entry.get("name"), entry.get("description")))
    if errors:
        raise InvalidValue(source, errors)
    if not plans:
        raise NothingToDo(f"nothing to import: the active settings already match {source}")
    return plans


def apply(conn: psycopg.Connection, plans: list[ImportPlan], *, actor: str, reason: str | None = None,
          activate: bool = False) -> list[ConfigRow]:
    """One draft per plan (activated if asked), all in one transaction: all land or none."""
    done = []
    with conn.transaction():
        for p in plans:
            # The file's own name when it brings one; else the database picks a free '<active> (draft N)'.
            draft = lifecycle.clone(conn, p.domain, p.active.id, actor=actor, reason=reason,
                                    name=p.name if p.name and p.name != p.active.name else None)
            changes: dict[str, Any] = {c.field: getattr(p.settings, c.field) for c in p.changes}
            if p.description is not None:
                changes["description"] = p.description
            draft = lifecycle.edit(conn, p.domain, draft.id, draft.version, changes, actor=actor, reason=reason)
            if activate:
                draft = lifecycle.activate(conn, p.domain, draft.id, actor=actor, reason=reason)
            done.append(draft)
    return done

