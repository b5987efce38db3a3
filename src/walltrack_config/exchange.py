"""Settings as files a person reviews in git: export the active settings, import them as drafts."""

from __future__ import annotations

import codecs
import difflib
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from pydantic import ValidationError

from . import lifecycle
from .diff import Change, diff
from .domains import DOMAINS
from .errors import FieldError, InvalidFile, InvalidImport, NothingToDo, StaleVersion, UsageError
from .lifecycle import ConfigRow, field_errors
from .models import MODELS, Settings, plain

if TYPE_CHECKING:
    from collections.abc import Hashable

    import psycopg
    import yaml

FORMAT = "walltrack-config/1"

#: An export of every domain is a few KiB; anything near this is not a settings file.
MAX_FILE_BYTES = 1 << 20
#: One KEY=VALUE of `set`; the drawdown tiers, the longest value, take well under 1 KiB.
MAX_VALUE_BYTES = 64 << 10
#: A settings file nests about 7 levels (domains, domain, settings, tiers, tier, value); parsers
#: recurse once per level, so far deeper input would exhaust Python's stack instead of being refused.
MAX_DEPTH = 32


class ExportedDomain(TypedDict):
    name: str  # the active row's
    version: int
    settings: dict[str, object]  # plain values (see models.plain)


class Export(TypedDict):
    """A settings file, as export_document writes it and loads reads it back."""

    format: str  # FORMAT
    exported_at: str  # ISO 8601, UTC
    domains: dict[str, ExportedDomain]


@dataclass(frozen=True)
class ImportPlan:
    """One domain of an import: the active row, the settings imported over it, and what differs."""

    domain: str
    active: ConfigRow
    settings: Settings
    changes: list[Change]
    name: str | None = None
    description: str | None = None


def export_document(conn: psycopg.Connection, domains: list[str] | None = None) -> Export:
    """The active settings of the domains (all by default), as one document."""
    chosen = domains or list(DOMAINS)
    for domain in chosen:
        lifecycle.model_of(domain)
    rows = {domain: lifecycle.active_row(conn, domain).readable() for domain in chosen}
    return {
        "format": FORMAT,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "domains": {
            d: {"name": r.name, "version": r.version, "settings": plain(r.settings)} for d, r in rows.items()
        },
    }


def dumps(document: Mapping[str, object], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    import yaml

    return yaml.dump(document, Dumper=_dumper(), sort_keys=False, allow_unicode=True)


def read_file(path: Path) -> str:
    """A settings file's text (see read_text), reading no more of it than the size limit allows."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
            size = path.stat().st_size
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return read_text(data, str(path), size=size)


def read_text(data: bytes, source: str, *, size: int | None = None) -> str:
    """A settings file's bytes as text: UTF-8 (a BOM is fine), at most MAX_FILE_BYTES; InvalidFile otherwise.

    `size` is the file's real size, for the message, when `data` stops at the limit.
    """
    _check_size(max(size or 0, len(data)), MAX_FILE_BYTES, source)
    for boms, name in (((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE), "UTF-32"),
                       ((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE), "UTF-16")):
        if data.startswith(boms):
            raise InvalidFile(source, f"not UTF-8 text (it looks like {name}; save it as UTF-8)")
    head = data[:256]
    # UTF-16 without a BOM decodes as "valid" UTF-8 full of NULs; a NUL in every other byte gives it away.
    zeros = max(head[0::2].count(0), head[1::2].count(0))
    if zeros and zeros * 4 >= len(head):
        raise InvalidFile(source, "not UTF-8 text (it looks like UTF-16; save it as UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidFile(source, f"not UTF-8 text (byte 0x{data[exc.start]:02x} is not UTF-8; save it as UTF-8)",
                          line) from exc


def json_depth(text: str) -> int:
    """How deeply JSON text nests arrays and objects, found without parsing it (json.loads recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text: str, source: str = "<input>") -> dict[str, object]:
    """A YAML or JSON document (YAML reads both), as a mapping; InvalidFile otherwise.

    Also refused: a key given twice (one of its values would be dropped unseen), an alias (a few bytes
    can stand for a structure of any size or depth), nesting deeper than MAX_DEPTH, and text over
    MAX_FILE_BYTES.
    """
    import yaml

    _check_size(len(text) if len(text) > MAX_FILE_BYTES else len(text.encode("utf-8", "surrogatepass")),
                MAX_FILE_BYTES, source)
    if text.lstrip("\ufeff \t\r\n").startswith("{"):
        # JSON allows tabs between tokens, where YAML refuses them; JSON has no raw tab anywhere else.
        text = text.replace("\t", " ")
    loader = _loader()(text)
    try:
        document = loader.get_single_data()
    except _Refused as exc:
        raise InvalidFile(source, exc.reason, exc.line) from exc
    except RecursionError as exc:
        raise InvalidFile(source, f"nested too deeply (more than {MAX_DEPTH} levels)") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidFile(source, f"not valid YAML or JSON: {reason}", mark.line + 1 if mark else None) from exc
    finally:
        loader.dispose()
    if not isinstance(document, dict):
        raise InvalidFile(source, "expected a mapping with a 'domains' key")
    return document


def _check_size(size: int, limit: int, source: str) -> None:
    if size > limit:
        raise InvalidFile(source, f"too large: {size:,} bytes, and the limit is {_size(limit)}")


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} bytes"


class _Mark(Protocol):
    """A place in a YAML text, as both of PyYAML's Mark classes (pure Python and libyaml's) give it."""

    line: int  # from 0


class _Refused(Exception):
    """Raised inside the YAML loader; loads turns it into InvalidFile, which needs the source's name."""

    def __init__(self, reason: str, mark: _Mark | None = None):
        self.reason, self.line = reason, mark.line + 1 if mark is not None else None
        super().__init__(reason)


@functools.cache
def _loader() -> type[yaml.SafeLoader]:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader refusing duplicate keys, aliases and deep nesting, each with its line."""

        depth = 0

        def _next_mark(self) -> _Mark | None:
            # types-PyYAML leaves Parser.peek_event unannotated; it returns the next yaml.Event.
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            return event.start_mark

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            if self.check_event(yaml.AliasEvent):
                raise _Refused("uses an alias (*name); write the value out in full", self._next_mark())
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise _Refused(f"nested too deeply (more than {MAX_DEPTH} levels)", self._next_mark())
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
            if isinstance(node, yaml.MappingNode):
                first_seen: dict[Hashable, yaml.Node] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # '<<:' may repeat; the keys it brings in are overridable by design
                    key = self.construct_object(key_node, deep=True)
                    try:
                        first = first_seen.setdefault(key, key_node)
                    except TypeError:
                        continue  # an unhashable key: the base class refuses it with its own message
                    if first is not key_node:
                        raise _Refused(f"{key} given twice (first on line {first.start_mark.line + 1})",
                                       key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    return Loader


@functools.cache
def _dumper() -> type[yaml.SafeDumper]:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Writes shared values out in full: loads refuses aliases, and an export must import."""

        def ignore_aliases(self, data: object) -> bool:
            return True

    return Dumper


def plan(conn: psycopg.Connection, document: Mapping[str, object], source: str = "<input>") -> list[ImportPlan]:
    """Check every domain of a document against its model; the domains that differ from the active ones.

    Settings a domain leaves out keep their active values. Nothing is written. Every problem in the
    document is collected before any is raised, as one InvalidImport, so one run shows all of them.
    """
    from .models import name_problem

    domains = document.get("domains")
    if not isinstance(domains, dict) or not domains:
        raise InvalidFile(source, "expected 'domains:' with one entry per domain to import")
    problems: list[FieldError] = []
    plans = []
    for key, entry in domains.items():
        domain = str(key)
        if domain not in MODELS:
            close = difflib.get_close_matches(domain, DOMAINS, n=1)
            hint = f"did you mean {close[0]}?" if close else f"domains are {', '.join(DOMAINS)}"
            problems.append(FieldError("domains", f"unknown domain {domain!r}; {hint}"))
            continue
        settings = entry.get("settings") if isinstance(entry, dict) else None
        if not isinstance(settings, dict):
            given = "" if settings is None else f", not {type(settings).__name__} {_short(settings)}"
            problems.append(FieldError(domain, f"needs a 'settings:' mapping of setting: value{given}"))
            continue
        for label in ("name", "description"):
            if entry.get(label) is not None and not isinstance(entry[label], str):
                problems.append(FieldError(f"{domain}.{label}", f"must be text, not {_short(entry[label])}"))
        # Checked here, with everything else, so that a bad name is listed among all the problems rather
        # than found by apply after the preview, one name at a time.
        if isinstance(entry.get("name"), str) and (problem := name_problem(entry["name"])):
            problems.append(FieldError(f"{domain}.name", problem))
        model = MODELS[domain]
        known = {}
        for field, value in settings.items():
            if field in model.model_fields:
                known[field] = value
                continue
            close = difflib.get_close_matches(str(field), list(model.model_fields), n=1)
            hint = f"did you mean {close[0]}?" if close else f"not a setting of {domain}"
            problems.append(FieldError(f"{domain}.{field}", f"unknown field; {hint}"))
        active = lifecycle.active_row(conn, domain)
        try:
            imported = model.model_validate(active.settings.model_dump() | known)
        except ValidationError as exc:
            for raw, error in zip(exc.errors(), field_errors(exc), strict=True):
                # a rule over several fields is a CHECK constraint too: its name finds it in the schema
                rule = f" (rule {raw['type']})" if raw["type"].startswith("chk_") else ""
                problems.append(FieldError(f"{domain}.{error.field}", error.message + rule))
            continue
        # Settings are what an import compares; a name or description it brings labels the draft it makes.
        changes = diff(active.settings, imported)
        if changes:
            plans.append(ImportPlan(domain, active, imported, changes, entry.get("name"), entry.get("description")))
    if problems:
        raise InvalidImport(source, problems)
    if not plans:
        raise NothingToDo(f"nothing to import: the active settings already match {source}")
    return plans


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def apply(conn: psycopg.Connection, plans: list[ImportPlan], *, actor: str, reason: str | None = None,
          activate: bool = False) -> list[ConfigRow]:
    """One draft per plan (activated if asked), all in one transaction: all land or none.

    What lands is what was planned: if a domain's live row changed since `plan` read it, nothing is written.
    A draft that already holds exactly what the file brings is used instead of adding another.
    """
    done = []
    with conn.transaction():
        lifecycle.lock_writes(conn)  # from here to the commit, no other change can slip in
        for p in plans:
            live = lifecycle.active_row(conn, p.domain)
            if (live.id, live.version) != (p.active.id, p.active.version):
                raise StaleVersion(lifecycle.table_of(p.domain),
                                   f"the live {p.domain} config changed since the import was reviewed "
                                   f"('{p.active.name}' → '{live.name}'); review again", p.active.id,
                                   p.active.version)
            drafts = lifecycle.drafts(conn, p.domain)
            draft = next((d for d in drafts if _holds(d, p)), None)
            if draft is None:
                # The file's own name when it brings one (so the same file imported again changes nothing) and
                # no other draft has it; else the database picks a free '<active> (draft N)'.
                taken = any(d.name == p.name for d in drafts)
                draft = lifecycle.clone(conn, p.domain, p.active.id, actor=actor, reason=reason,
                                        name=None if taken else p.name)
                changes: dict[str, object] = {c.field: c.new for c in p.changes}
                if p.description is not None:
                    changes["description"] = p.description
                draft = lifecycle.edit(conn, p.domain, draft.id, draft.version, changes, actor=actor, reason=reason)
            if activate:
                draft = lifecycle.activate(conn, p.domain, draft.id, expected_version=draft.version, actor=actor,
                                           reason=reason)
            done.append(draft)
    return done


def _holds(draft: ConfigRow, p: ImportPlan) -> bool:
    """Whether a draft already holds the settings the file asks for."""
    return not draft.problems and draft.settings == p.settings
